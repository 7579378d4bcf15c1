"""`newsletter doctor`'s DNS part, against a real DNS server on 127.0.0.1 answering the records each test sets."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from newsletter.config import load_settings
from newsletter.deliverability.checks import check_sending_domain
from newsletter.doctor import DoctorReport
from newsletter.providers.smtp.services import smtp_service
from tests.account_helpers import DKIM_KEY as KEY
from tests.account_helpers import SENDER, ready_account, sendgrid_authenticated
from tests.account_helpers import SENDER_DOMAIN as DOMAIN
from tests.dns_server import DnsZone, silent_dns_server
from tests.send_helpers import generated, newsletter, write_list
from tests.sendgrid_double import SendGridDouble
from tests.smtp_server import SmtpServer
from tests.terminal_double import TerminalDouble
from tests.test_smtp_send import smtp  # noqa: F401 - a fixture


def sendgrid_signs_by_txt(dns: DnsZone) -> None:
    """DKIM keys published as TXT records, SPF left to the domain's own record."""
    for selector in ("s1", "s2"):
        dns.txt(f"{selector}._domainkey.{DOMAIN}", KEY)


def output_lines(result_output: str) -> list[str]:
    return result_output.strip().splitlines()


def doctor(sendgrid: SendGridDouble, publication: Path, terminal: TerminalDouble | None = None) -> list[str]:
    ready_account(sendgrid, publication)
    result = newsletter("doctor", terminal=terminal)
    return output_lines(result.output)


def test_a_domain_without_spf_is_told_the_record_to_add(publication: Path, sendgrid: SendGridDouble,
                                                         dns: DnsZone) -> None:
    sendgrid_signs_by_txt(dns)
    dns.txt(f"_dmarc.{DOMAIN}", "v=DMARC1; p=none")
    ready_account(sendgrid, publication)
    result = newsletter("doctor")
    assert result.exit_code == 1
    assert (f'error: {DOMAIN} has no SPF record: add TXT "v=spf1 include:sendgrid.net ~all" at {DOMAIN}'
            in output_lines(result.output))


def test_spf_that_does_not_name_the_provider_gets_the_record_with_its_include(
        publication: Path, sendgrid: SendGridDouble, dns: DnsZone) -> None:
    sendgrid_signs_by_txt(dns)
    dns.txt(DOMAIN, "v=spf1 include:_spf.google.com -all")
    dns.txt(DOMAIN, "google-site-verification=abc")
    dns.txt("_spf.google.com", "v=spf1 ip4:74.125.0.0/16 ~all")
    lines = doctor(sendgrid, publication)
    assert (f"error: the SPF record of {DOMAIN} does not name SendGrid: change it to "
            f'TXT "v=spf1 include:_spf.google.com include:sendgrid.net -all" at {DOMAIN}') in lines


def test_spf_over_ten_lookups_is_an_error(publication: Path, sendgrid: SendGridDouble, dns: DnsZone) -> None:
    sendgrid_signs_by_txt(dns)
    includes = [f"_spf{n}.{DOMAIN}" for n in range(5)]
    dns.txt(DOMAIN, "v=spf1 " + " ".join(f"include:{name}" for name in includes) + " include:sendgrid.net ~all")
    for name in includes:
        dns.txt(name, "v=spf1 a mx ~all")  # 3 lookups each: the include, a and mx
    dns.txt("sendgrid.net", "v=spf1 ip4:167.89.0.0/17 ~all")
    lines = doctor(sendgrid, publication)
    assert (f"error: the SPF record of {DOMAIN} needs 16 DNS lookups, over the 10 receivers allow "
            "(RFC 7208 §4.6.4), so SPF fails everywhere: drop the includes you no longer use, or put ip4:/ip6: "
            "ranges in place of a, mx and includes") in lines
    assert not any(line.startswith("ok: SPF") for line in lines)


def test_missing_dkim_is_an_error_and_with_a_strict_dmarc_policy_mail_is_refused(
        publication: Path, sendgrid: SendGridDouble, dns: DnsZone) -> None:
    dns.txt(DOMAIN, "v=spf1 include:sendgrid.net ~all")
    dns.txt("sendgrid.net", "v=spf1 ip4:167.89.0.0/17 ~all")
    dns.txt(f"_dmarc.{DOMAIN}", "v=DMARC1; p=quarantine")
    lines = doctor(sendgrid, publication)
    assert (f"error: no DKIM key at s1._domainkey.{DOMAIN} and s2._domainkey.{DOMAIN}, so receivers cannot tell "
            f"mail from {DOMAIN} is yours: add the DKIM records (CNAMEs whose values SendGrid shows under Settings > "
            "Sender Authentication)") in lines
    assert f"ok: DMARC: _dmarc.{DOMAIN} has policy quarantine (receivers put mail that fails in spam)" in lines
    assert (f"error: receivers will refuse mail from {DOMAIN} sent through SendGrid: its DMARC policy is quarantine "
            f"and SendGrid cannot sign for {DOMAIN} yet: publish the DKIM records above") in lines


def test_missing_dmarc_is_a_warning_for_a_small_list_and_an_error_for_a_large_one(
        publication: Path, sendgrid: SendGridDouble, dns: DnsZone) -> None:
    sendgrid_authenticated(dns)
    ready_account(sendgrid, publication)
    result = newsletter("doctor")
    assert result.exit_code == 0, result.output
    assert (f"warning: {DOMAIN} has no DMARC record, which Gmail and Yahoo require of senders of over 5,000 a day "
            f'(5 subscribed readers here): add TXT "v=DMARC1; p=none" at _dmarc.{DOMAIN}'
            ) in output_lines(result.output)

    write_list(publication, generated(5_001))
    result = newsletter("doctor")
    assert result.exit_code == 1
    assert (f"error: {DOMAIN} has no DMARC record, which Gmail and Yahoo require of senders of over 5,000 a day "
            f'(5,001 subscribed readers here): add TXT "v=DMARC1; p=none" at _dmarc.{DOMAIN}'
            ) in output_lines(result.output)


def test_a_gmail_address_sent_through_sendgrid_is_refused(publication: Path, sendgrid: SendGridDouble,
                                                         dns: DnsZone) -> None:
    config = publication / "newsletter.yaml"
    config.write_text(config.read_text().replace(f"email: {SENDER}", "email: riverside.letters@gmail.com"))
    dns.txt("_dmarc.gmail.com", "v=DMARC1; p=none; sp=quarantine")
    sendgrid.account.verify_sender("riverside.letters@gmail.com")
    result = newsletter("doctor")
    assert result.exit_code == 1
    lines = output_lines(result.output)
    assert "error: receivers will refuse mail from gmail.com sent through SendGrid: send from your own domain" in lines
    assert not any(re.match(r"\w+: (SPF|DKIM|DMARC|gmail.com has)", line) for line in lines), lines
    assert dns.questions == []  # nothing of gmail.com's DNS is the editor's to change


def test_a_placeholder_from_is_left_to_its_placeholder_finding(publication: Path, sendgrid: SendGridDouble,
                                                               dns: DnsZone) -> None:
    config = publication / "newsletter.yaml"
    config.write_text(config.read_text().replace(f"email: {SENDER}", "email: newsletter@example.org"))
    dns.txt("example.org", "v=spf1 -all")  # what example.org publishes: nobody sends from it
    sendgrid.account.verify_sender("newsletter@example.org")
    result = newsletter("doctor")
    assert result.exit_code == 1
    assert output_lines(result.output)[-1].startswith("error: newsletter.yaml:6: from newsletter@example.org is a "
                                                      "placeholder")
    assert not any("SPF" in line or "DKIM" in line or "DMARC" in line for line in output_lines(result.output))
    assert dns.questions == []


def test_a_gmail_address_through_gmails_own_server_is_fine(publication: Path, dns: DnsZone) -> None:
    dns.address("smtp.gmail.com", "142.250.27.108")
    dns.ptr("142.250.27.108", "rb-in-f108.1e100.net")
    dns.address("rb-in-f108.1e100.net", "142.250.27.108")
    settings = load_settings(publication)
    settings = replace(settings, sender=replace(settings.sender, email="riverside.letters@gmail.com"))
    report = DoctorReport()
    check_sending_domain(settings, smtp_service(_smtp_settings("smtp.gmail.com")), report)
    assert report.lines() == [
        "ok: from gmail.com goes through Google, gmail.com's own server, which signs for it: nothing to publish",
        "ok: smtp.gmail.com's reverse DNS names rb-in-f108.1e100.net, which points back at it",
    ]


def _smtp_settings(host: str, **options: object) -> object:
    from newsletter.config import SmtpSettings

    return SmtpSettings(host=host, port=587, **options)  # type: ignore[arg-type]


def test_a_listed_smtp_service_is_looked_for_by_its_include_and_selectors(publication: Path, dns: DnsZone) -> None:
    dns.txt(DOMAIN, "v=spf1 mx ~all")
    dns.address("smtp.fastmail.com", "103.168.172.45")
    dns.txt(f"_dmarc.{DOMAIN}", "v=DMARC1; p=none")
    report = DoctorReport()
    check_sending_domain(load_settings(publication), smtp_service(_smtp_settings("smtp.fastmail.com")), report)
    lines = report.lines()
    assert (f"error: the SPF record of {DOMAIN} does not name Fastmail: change it to "
            f'TXT "v=spf1 mx include:spf.messagingengine.com ~all" at {DOMAIN}') in lines
    assert (f"error: no DKIM key at fm1._domainkey.{DOMAIN} and fm2._domainkey.{DOMAIN} and fm3._domainkey.{DOMAIN}, "
            f"so receivers cannot tell mail from {DOMAIN} is yours: add CNAME fm1._domainkey.{DOMAIN} → "
            f"fm1.{DOMAIN}.dkim.fmhosted.com; CNAME fm2._domainkey.{DOMAIN} → fm2.{DOMAIN}.dkim.fmhosted.com; "
            f"CNAME fm3._domainkey.{DOMAIN} → fm3.{DOMAIN}.dkim.fmhosted.com") in lines
    assert "warning: smtp.fastmail.com (103.168.172.45) has no reverse DNS (PTR), which receivers distrust: ask " \
           "whoever runs the server to set one that names it" in lines


def test_all_well_through_smtp(publication: Path, smtp: SmtpServer, dns: DnsZone) -> None:  # noqa: F811
    config = publication / "newsletter.yaml"
    config.write_text(config.read_text() + "  dkim_selector: news2026\n")
    dns.txt(DOMAIN, "v=spf1 ip4:127.0.0.0/8 -all")
    dns.txt(f"news2026._domainkey.{DOMAIN}", KEY)
    dns.txt(f"_dmarc.{DOMAIN}", "v=DMARC1; p=reject; rua=mailto:dmarc@riverside-writers-circle.internal")
    dns.ptr("127.0.0.1", f"mail.{DOMAIN}")
    dns.address(f"mail.{DOMAIN}", "127.0.0.1")
    result = newsletter("doctor")
    assert result.exit_code == 0, result.output
    assert output_lines(result.stdout)[-4:] == [
        f"ok: SPF: {DOMAIN} names 127.0.0.1 (0 DNS lookups)",
        f"ok: DKIM: 127.0.0.1 can sign mail from {DOMAIN} (a key at news2026._domainkey.{DOMAIN})",
        f"ok: DMARC: _dmarc.{DOMAIN} has policy reject (receivers refuse mail that fails)",
        f"ok: 127.0.0.1's reverse DNS names mail.{DOMAIN}, which points back at it",
    ]
    findings = json.loads(newsletter("doctor", "--json").stdout)["findings"]
    assert [f["check"] for f in findings][-4:] == ["spf", "dkim", "dmarc", "reverse-dns"]


def test_a_dns_server_that_does_not_answer_is_one_warning_within_the_deadline(
        publication: Path, sendgrid: SendGridDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    with silent_dns_server() as address:
        monkeypatch.setenv("NEWSLETTER_DNS", address)
        lines = doctor(sendgrid, publication, TerminalDouble(dns_deadline=0.3))
    assert lines[-1] == (f"warning: cannot check SPF, DKIM and DMARC for {DOMAIN}: {address} (NEWSLETTER_DNS) did "
                         "not answer within 0.3 s; run doctor again once the DNS answers")


def test_a_bad_dkim_selector_is_one_line(publication: Path, smtp: SmtpServer) -> None:  # noqa: F811
    config = publication / "newsletter.yaml"
    config.write_text(config.read_text() + "  dkim_selector: fm1._domainkey\n")
    result = newsletter("doctor")
    assert result.exit_code == 1
    line = config.read_text().splitlines().index("  dkim_selector: fm1._domainkey") + 1
    assert result.stderr == (f"error: newsletter.yaml:{line}: smtp.dkim_selector must be the DKIM selector your provider "
                             "gave, the name before ._domainkey (fm1 for fm1._domainkey.example.org), "
                             "not 'fm1._domainkey'\n")


def test_a_mistyped_newsletter_dns_is_one_finding_after_the_accounts(
        publication: Path, sendgrid: SendGridDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_DNS", "127.0.0.1:99999")
    lines = doctor(sendgrid, publication)
    assert lines[0].startswith("ok: the API key works")
    assert lines[-1] == ("error: NEWSLETTER_DNS=127.0.0.1:99999: give the DNS server as host[:port], such as "
                         "127.0.0.1:5353 or [::1]:53 (the port is 1 to 65535)")
