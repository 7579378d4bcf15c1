"""`newsletter doctor`'s DNS part, against a real DNS server on 127.0.0.1 answering the records each test sets."""

from __future__ import annotations

import json
import os
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
from tests.helpers import run
from tests.send_helpers import generated, write_list
from tests.sendgrid_double import SendGridDouble
from tests.smtp_server import SmtpServer
from tests.terminal_double import TerminalDouble


def sendgrid_signs_by_txt(dns: DnsZone) -> None:
    """DKIM keys published as TXT records, SPF left to the domain's own record."""
    for selector in ("s1", "s2"):
        dns.txt(f"{selector}._domainkey.{DOMAIN}", KEY)


def sendgrid_after_includes(dns: DnsZone, includes: list[str]) -> None:
    """SendGrid signing, and the domain's SPF record naming `includes` and then SendGrid."""
    sendgrid_signs_by_txt(dns)
    dns.txt(DOMAIN, "v=spf1 " + " ".join(f"include:{name}" for name in includes) + " include:sendgrid.net ~all")
    dns.txt("sendgrid.net", "v=spf1 ip4:167.89.0.0/17 ~all")


def output_lines(result_output: str) -> list[str]:
    return result_output.strip().splitlines()


def doctor(sendgrid: SendGridDouble, publication: Path, terminal: TerminalDouble | None = None) -> list[str]:
    ready_account(sendgrid, publication)
    result = run("doctor", terminal=terminal)
    return output_lines(result.output)


def test_a_domain_without_spf_is_told_the_record_to_add(publication: Path, sendgrid: SendGridDouble,
                                                         dns: DnsZone) -> None:
    sendgrid_signs_by_txt(dns)
    dns.txt(f"_dmarc.{DOMAIN}", "v=DMARC1; p=none")
    ready_account(sendgrid, publication)
    result = run("doctor")
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


def test_spf_naming_the_provider_after_all_is_told_to_move_it(publication: Path, sendgrid: SendGridDouble,
                                                             dns: DnsZone) -> None:
    """An include added at the end of an existing record: receivers stop at `~all` and never reach it."""
    sendgrid_signs_by_txt(dns)
    dns.txt(DOMAIN, "v=spf1 mx ~all include:sendgrid.net")
    dns.txt("sendgrid.net", "v=spf1 ip4:167.89.0.0/17 ~all")
    lines = doctor(sendgrid, publication)
    assert (f"error: the SPF record of {DOMAIN} names SendGrid after `all`, where receivers stop reading it: "
            f'change it to TXT "v=spf1 mx include:sendgrid.net ~all" at {DOMAIN}') in lines
    assert not any(line.startswith("ok: SPF") for line in lines)


def test_sendgrids_per_account_spf_include_names_sendgrid(publication: Path, sendgrid: SendGridDouble,
                                                          dns: DnsZone) -> None:
    """A domain authenticated without automated security publishes include:u<n>.wl<n>.sendgrid.net, whose
    record lists SendGrid's addresses and includes no sendgrid.net: it was "does not name SendGrid"."""
    own_include = "u1234.wl001.sendgrid.net"
    sendgrid_signs_by_txt(dns)
    dns.txt(DOMAIN, f"v=spf1 include:{own_include} -all")
    dns.txt(own_include, "v=spf1 ip4:149.72.0.0/16 ip4:167.89.0.0/17 -all")
    lines = doctor(sendgrid, publication)
    assert f"ok: SPF: {DOMAIN} names SendGrid (include:{own_include}, 1 DNS lookup)" in lines
    assert not any(line.startswith("error: the SPF record") for line in lines), lines

    dns.clear()  # SendGrid's servers out of reach: the include still names it, its lookups go uncounted
    sendgrid_signs_by_txt(dns)
    dns.txt(DOMAIN, f"v=spf1 mx include:{own_include} -all")
    dns.fail(own_include)
    lines = output_lines(run("doctor").output)
    assert (f"ok: SPF: {DOMAIN} names SendGrid (include:{own_include}, at least 2 DNS lookups; {own_include} did "
            "not answer here, so the lookups under it are not counted)") in lines
    assert not any(line.startswith(("error: the SPF record", "warning: cannot check SPF")) for line in lines), lines


def test_brevos_older_sendinblue_spf_include_names_brevo(publication: Path, dns: DnsZone) -> None:
    dns.txt(DOMAIN, "v=spf1 include:spf.sendinblue.com ~all")
    dns.txt("spf.sendinblue.com", "v=spf1 ip4:185.41.28.0/22 ~all")
    dns.address("smtp-relay.brevo.com", "1.179.112.1")
    report = DoctorReport()
    check_sending_domain(load_settings(publication), smtp_service(_smtp_settings("smtp-relay.brevo.com")), report)
    assert f"ok: SPF: {DOMAIN} names Brevo (include:spf.sendinblue.com, 1 DNS lookup)" in report.lines()


@pytest.mark.parametrize(("qualifier", "result"), [("-", "fail"), ("~", "softfail"), ("?", "neutral")])
def test_an_spf_include_with_a_qualifier_other_than_plus_does_not_authorise(
        publication: Path, sendgrid: SendGridDouble, dns: DnsZone, qualifier: str, result: str) -> None:
    """A matching mechanism's qualifier is the result (RFC 7208 §4.6.2): `-include:sendgrid.net` fails
    SendGrid's mail; it was read as naming SendGrid, and doctor said ok."""
    sendgrid_signs_by_txt(dns)
    dns.txt(DOMAIN, f"v=spf1 mx {qualifier}include:sendgrid.net ~all")
    dns.txt("sendgrid.net", "v=spf1 ip4:167.89.0.0/17 ~all")
    lines = doctor(sendgrid, publication)
    assert (f"error: the SPF record of {DOMAIN} has {qualifier}include:sendgrid.net: its {qualifier} makes SPF "
            f"{result} for SendGrid's mail, not pass (only include: or +include: authorises a service): change it to "
            f'TXT "v=spf1 mx include:sendgrid.net ~all" at {DOMAIN}') in lines
    assert not any(line.startswith("ok: SPF") for line in lines), lines


def test_a_plus_qualified_spf_include_authorises(publication: Path, sendgrid: SendGridDouble, dns: DnsZone) -> None:
    sendgrid_signs_by_txt(dns)
    dns.txt(DOMAIN, "v=spf1 +include:sendgrid.net ~all")
    dns.txt("sendgrid.net", "v=spf1 ip4:167.89.0.0/17 ~all")
    assert f"ok: SPF: {DOMAIN} names SendGrid (include:sendgrid.net, 1 DNS lookup)" in doctor(sendgrid, publication)


def test_spf_over_ten_lookups_is_an_error(publication: Path, sendgrid: SendGridDouble, dns: DnsZone) -> None:
    includes = [f"_spf{n}.{DOMAIN}" for n in range(5)]
    sendgrid_after_includes(dns, includes)
    for name in includes:
        dns.txt(name, "v=spf1 a mx ~all")  # 3 lookups each: the include, a and mx
    lines = doctor(sendgrid, publication)
    assert (f"error: the SPF record of {DOMAIN} needs 16 DNS lookups, over the 10 receivers allow "
            "(RFC 7208 §4.6.4), so SPF fails everywhere: drop the includes you no longer use, or put ip4:/ip6: "
            "ranges in place of a, mx and includes") in lines
    assert not any(line.startswith("ok: SPF") for line in lines)


def test_more_than_two_spf_lookups_finding_nothing_is_an_error(publication: Path, sendgrid: SendGridDouble,
                                                               dns: DnsZone) -> None:
    """Includes of services long gone: receivers stop after 2 lookups that find nothing (RFC 7208 §4.6.4)."""
    gone = ["mail.oldcrm.internal", "spf.oldshop.internal", "_spf.oldforms.internal"]
    sendgrid_after_includes(dns, gone)
    lines = doctor(sendgrid, publication)
    assert (f"error: the SPF record of {DOMAIN} makes 3 DNS lookups that find nothing (include:mail.oldcrm.internal, "
            "include:spf.oldshop.internal, include:_spf.oldforms.internal), over the 2 receivers allow "
            "(RFC 7208 §4.6.4), so SPF fails everywhere: remove the includes of domains that publish nothing") in lines
    assert not any(line.startswith("ok: SPF") for line in lines)

    dns.clear()  # two are within what receivers allow
    sendgrid_after_includes(dns, gone[:2])
    assert not any("find nothing" in line for line in output_lines(run("doctor").output))


def test_an_spf_include_reached_by_two_paths_costs_its_lookups_twice(
        publication: Path, sendgrid: SendGridDouble, dns: DnsZone) -> None:
    """Receivers evaluate an include each time they reach it: 11 lookups here, counted as 8 when each
    include was read once."""
    sendgrid_signs_by_txt(dns)
    dns.txt(DOMAIN, "v=spf1 include:crm.mailhost.internal include:shop.mailhost.internal include:sendgrid.net ~all")
    dns.txt("crm.mailhost.internal", "v=spf1 include:relay.mailhost.internal ~all")
    dns.txt("shop.mailhost.internal", "v=spf1 include:relay.mailhost.internal ~all")
    dns.txt("relay.mailhost.internal", "v=spf1 a:one.mailhost.internal a:two.mailhost.internal mx ~all")
    dns.txt("sendgrid.net", "v=spf1 ip4:167.89.0.0/17 ~all")
    lines = doctor(sendgrid, publication)
    assert any(line.startswith(f"error: the SPF record of {DOMAIN} needs 11 DNS lookups, over the 10") for line in lines), \
        lines
    assert not any(line.startswith("ok: SPF") for line in lines)


def test_an_spf_loop_is_a_broken_record(publication: Path, sendgrid: SendGridDouble, dns: DnsZone) -> None:
    """An include that leads back to a record it is within: receivers follow it until their 10 lookups run
    out (permerror) before they reach include:sendgrid.net."""
    sendgrid_signs_by_txt(dns)
    dns.txt(DOMAIN, "v=spf1 include:spf.mailhost.internal include:sendgrid.net ~all")
    dns.txt("spf.mailhost.internal", f"v=spf1 include:{DOMAIN} ~all")
    dns.txt("sendgrid.net", "v=spf1 ip4:167.89.0.0/17 ~all")
    lines = doctor(sendgrid, publication)
    assert (f"error: the SPF record of {DOMAIN} has include:{DOMAIN}, which leads back to the record of {DOMAIN} "
            "(a loop), so receivers fail SPF (permerror): remove or fix that term") in lines
    assert not any(line.startswith("ok: SPF") for line in lines)


def test_an_spf_term_naming_no_domain_is_a_broken_record_and_the_rest_is_still_checked(
        publication: Path, sendgrid: SendGridDouble, dns: DnsZone) -> None:
    """`include:_spf..example.com` is a permerror at every receiver: the record's fault, not the DNS's
    (it was "cannot check SPF, DKIM and DMARC …: run doctor again once the DNS answers")."""
    sendgrid_signs_by_txt(dns)
    dns.txt(DOMAIN, "v=spf1 include:_spf..mailhost.internal include:sendgrid.net ~all")
    dns.txt("sendgrid.net", "v=spf1 ip4:167.89.0.0/17 ~all")
    dns.txt(f"_dmarc.{DOMAIN}", "v=DMARC1; p=none")
    lines = doctor(sendgrid, publication)
    assert (f"error: the SPF record of {DOMAIN} has include:_spf..mailhost.internal, which is no domain name, so "
            "receivers fail SPF (permerror): remove or fix that term") in lines
    assert f"ok: DKIM: SendGrid can sign mail from {DOMAIN} (a key at s1._domainkey.{DOMAIN}, s2._domainkey.{DOMAIN})" \
        in lines
    assert f"ok: DMARC: _dmarc.{DOMAIN} has policy none (receivers deliver mail that fails and only report it)" in lines
    assert not any(line.startswith("warning: cannot check") for line in lines), lines


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
    result = run("doctor")
    assert result.exit_code == 0, result.output
    assert (f"warning: {DOMAIN} has no DMARC record, which Gmail and Yahoo require of senders of over 5,000 a day "
            f'(5 subscribed readers here): add TXT "v=DMARC1; p=none" at _dmarc.{DOMAIN}'
            ) in output_lines(result.output)

    write_list(publication, generated(5_001))
    result = run("doctor")
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
    result = run("doctor")
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
    result = run("doctor")
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


def test_a_relay_on_this_machine_needs_no_reverse_dns(publication: Path, dns: DnsZone) -> None:
    """smtp.host: localhost, a working relay: dnspython reads no /etc/hosts, so it had "no address in the
    DNS"; its address is the system resolver's, as the SMTP connection's is, and a loopback relay hands
    mail on from another address, the one receivers see."""
    dns.txt(DOMAIN, "v=spf1 mx ~all")
    report = DoctorReport()
    check_sending_domain(load_settings(publication), smtp_service(_smtp_settings("localhost")), report)
    assert [line for line in report.lines() if "reverse DNS" in line or "localhost has" in line] == [
        "ok: localhost (127.0.0.1) is a relay on this machine, so it needs no reverse DNS of its own: receivers see "
        "the address it passes the mail on from"]
    assert "PTR 1.0.0.127.in-addr.arpa" in dns.questions  # a PTR published for it is still read


def test_all_well_through_smtp(publication: Path, smtp: SmtpServer, dns: DnsZone) -> None:
    config = publication / "newsletter.yaml"
    config.write_text(config.read_text() + "  dkim_selector: news2026\n")
    dns.txt(DOMAIN, "v=spf1 ip4:127.0.0.0/8 -all")
    dns.txt(f"news2026._domainkey.{DOMAIN}", KEY)
    dns.txt(f"_dmarc.{DOMAIN}", "v=DMARC1; p=reject; rua=mailto:dmarc@riverside-writers-circle.internal")
    dns.ptr("127.0.0.1", f"mail.{DOMAIN}")
    dns.address(f"mail.{DOMAIN}", "127.0.0.1")
    result = run("doctor")
    assert result.exit_code == 0, result.output
    assert output_lines(result.stdout)[-4:] == [
        f"ok: SPF: {DOMAIN} names 127.0.0.1 (0 DNS lookups)",
        f"ok: DKIM: 127.0.0.1 can sign mail from {DOMAIN} (a key at news2026._domainkey.{DOMAIN})",
        f"ok: DMARC: _dmarc.{DOMAIN} has policy reject (receivers refuse mail that fails)",
        f"ok: 127.0.0.1's reverse DNS names mail.{DOMAIN}, which points back at it",
    ]
    findings = json.loads(run("doctor", "--json").stdout)["findings"]
    assert [f["check"] for f in findings][-4:] == ["spf", "dkim", "dmarc", "reverse-dns"]


def test_a_dns_server_that_does_not_answer_is_one_warning_within_the_deadline(
        publication: Path, sendgrid: SendGridDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    with silent_dns_server() as address:
        monkeypatch.setenv("NEWSLETTER_DNS", address)
        lines = doctor(sendgrid, publication, TerminalDouble(dns_deadline=0.3))
    assert lines[-1] == (f"warning: cannot check SPF, DKIM and DMARC for {DOMAIN}: {address} (NEWSLETTER_DNS) did "
                         "not answer within 0.3 s; run doctor again once the DNS answers")


def test_a_name_that_fails_leaves_only_its_own_part_unchecked(publication: Path, sendgrid: SendGridDouble,
                                                              dns: DnsZone) -> None:
    """The domain's TXT records answered SERVFAIL: SPF cannot be checked, DKIM and DMARC still are (it was
    "cannot check SPF, DKIM and DMARC")."""
    sendgrid_signs_by_txt(dns)
    dns.txt(f"_dmarc.{DOMAIN}", "v=DMARC1; p=none")
    dns.fail(DOMAIN)
    lines = doctor(sendgrid, publication)
    assert f"ok: DKIM: SendGrid can sign mail from {DOMAIN} (a key at s1._domainkey.{DOMAIN}, s2._domainkey.{DOMAIN})" \
        in lines
    assert f"ok: DMARC: _dmarc.{DOMAIN} has policy none (receivers deliver mail that fails and only report it)" in lines
    assert lines[-1] == (f"warning: cannot check SPF for {DOMAIN}: {os.environ['NEWSLETTER_DNS']} (NEWSLETTER_DNS) "
                         "gave no usable answer (SERVFAIL); run doctor again once the DNS answers")


def test_a_bad_dkim_selector_is_one_line(publication: Path, smtp: SmtpServer) -> None:
    config = publication / "newsletter.yaml"
    config.write_text(config.read_text() + "  dkim_selector: fm1._domainkey\n")
    result = run("doctor")
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
