"""`newsletter doctor` against the SendGrid double's account API, checked against SendGrid's spec."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.account_helpers import (
    SENDER, account_spec, enable_group, ready_account, sendgrid_authenticated, spec_kept,
)
from tests.account_helpers import SENDER_DOMAIN as DOMAIN
from tests.dns_server import DnsZone
from tests.helpers import run
from tests.sendgrid_double import SendGridDouble

pytestmark = pytest.mark.usefixtures(account_spec.__name__, spec_kept.__name__)


def lines(text: str) -> list[str]:
    return text.strip().splitlines()


def test_a_ready_account_passes(publication: Path, sendgrid: SendGridDouble, dns: DnsZone) -> None:
    group = ready_account(sendgrid, publication)
    sendgrid_authenticated(dns)
    dns.txt(DOMAIN, "v=spf1 include:sendgrid.net ~all")
    dns.txt("sendgrid.net", "v=spf1 ip4:167.89.0.0/17 ip4:208.117.48.0/20 ~all")
    dns.txt(f"_dmarc.{DOMAIN}", "v=DMARC1; p=none; rua=mailto:dmarc@riverside-writers-circle.internal")
    result = run("doctor")
    assert result.exit_code == 0, result.output
    assert lines(result.output) == [
        f"ok: the API key works and has every permission the commands need ({len(sendgrid.account.scopes)} scopes)",
        f"ok: from {SENDER} is a verified sender",
        f"ok: unsubscribe group {group} (Riverside letters) exists",
        f"ok: SPF: {DOMAIN} has one record (1 DNS lookup), and SendGrid's automated security checks its own "
        f"em….{DOMAIN} return path",
        f"ok: DKIM: SendGrid can sign mail from {DOMAIN} (a key at s1._domainkey.{DOMAIN}, s2._domainkey.{DOMAIN})",
        f"ok: DMARC: _dmarc.{DOMAIN} has policy none (receivers deliver mail that fails and only report it)",
    ]
    shown = json.loads(run("doctor", "--json").output)
    assert shown["ok"] is True
    assert [f["check"] for f in shown["findings"]] == ["scopes", "sender", "group", "spf", "dkim", "dmarc"]
    assert {f["level"] for f in shown["findings"]} == {"ok"}


def test_an_authenticated_domain_will_do_for_the_sender(publication: Path, sendgrid: SendGridDouble) -> None:
    ready_account(sendgrid, publication)
    sendgrid.account.verified_senders.clear()
    sendgrid.account.authenticate_domain("riverside-writers-circle.internal")
    result = run("doctor")
    assert result.exit_code == 0, result.output
    assert f"ok: from {SENDER} is at riverside-writers-circle.internal, an authenticated domain" in lines(result.output)


def test_missing_scopes_are_named_with_the_command_that_needs_them(publication: Path,
                                                                    sendgrid: SendGridDouble) -> None:
    ready_account(sendgrid, publication)
    sendgrid.account.scopes.remove("mail.send")
    sendgrid.account.scopes.remove("categories.stats.read")
    result = run("doctor")
    assert result.exit_code == 1
    assert lines(result.output)[:2] == [
        "error: the API key lacks the scope mail.send, which `newsletter send` needs: give the key that "
        "permission (SendGrid > Settings > API Keys)",
        "warning: the API key lacks the scope categories.stats.read, which `newsletter stats` needs: give "
        "the key that permission (SendGrid > Settings > API Keys)",
    ]
    assert json.loads(run("doctor", "--json").output)["ok"] is False


def test_an_unverified_sender_is_an_error_saying_what_to_do(publication: Path, sendgrid: SendGridDouble) -> None:
    ready_account(sendgrid, publication)
    sendgrid.account.verified_senders.clear()
    result = run("doctor")
    assert result.exit_code == 1
    assert (f"error: newsletter.yaml: from {SENDER} is neither a verified sender nor at an authenticated domain, "
            "so SendGrid refuses mail from it (403): verify it under SendGrid > Settings > Sender Authentication"
            ) in lines(result.output)

    sendgrid.account.verify_sender(SENDER, verified=False)
    result = run("doctor")
    assert result.exit_code == 1
    assert (f"error: newsletter.yaml: from {SENDER} is a sender waiting for verification: follow the link "
            "SendGrid emailed to that address") in lines(result.output)

    sendgrid.account.authenticate_domain("riverside-writers-circle.internal", valid=False)
    result = run("doctor")
    assert result.exit_code == 1
    assert "the domain riverside-writers-circle.internal is added in SendGrid but its DNS records do not check out" \
        in result.output


def test_a_missing_group_is_an_error(publication: Path, sendgrid: SendGridDouble) -> None:
    sendgrid.account.verify_sender(SENDER)
    sendgrid.account.add_group("Another group")
    enable_group(publication, 999)
    result = run("doctor")
    assert result.exit_code == 1
    assert lines(result.output)[2] == (
        "error: newsletter.yaml: sendgrid.asm_group_id 999 is no unsubscribe group of this account: set the id "
        "of one (SendGrid > Suppressions > Unsubscribe Groups), or remove it and run "
        "`newsletter doctor --create-group \"NAME\"`")


def test_an_own_unsubscribe_page_is_a_warning(publication: Path, sendgrid: SendGridDouble) -> None:
    sendgrid.account.verify_sender(SENDER)
    result = run("doctor")
    assert result.exit_code == 0, result.output
    assert lines(result.output)[2].startswith(
        "warning: unsubscribe_url is a page of your own: its unsubscribes must come back with "
        "`newsletter subscribers import FILE`")


def test_a_rejected_key_is_one_finding(publication: Path, sendgrid: SendGridDouble,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.not-the-right-key")
    result = run("doctor")
    assert result.exit_code == 1
    # The account can tell no more; the DNS still can (here it refuses every query).
    assert lines(result.output) == [
        "error: SendGrid does not accept the key in SENDGRID_API_KEY (401): create one under "
        "SendGrid > Settings > API Keys and export it",
        f"warning: cannot check SPF, DKIM and DMARC for {DOMAIN}: {os.environ['NEWSLETTER_DNS']} (NEWSLETTER_DNS) gave "
        "no usable answer (REFUSED); run doctor again once the DNS answers"]
    assert "SG.not-the-right-key" not in result.output


def test_create_group_writes_its_id_keeping_comments_and_order(publication: Path, sendgrid: SendGridDouble) -> None:
    sendgrid.account.verify_sender(SENDER)
    config = publication / "newsletter.yaml"
    before = config.read_text()
    result = run("doctor", "--create-group", "Riverside letters")
    assert result.exit_code == 0, result.output
    [group] = sendgrid.account.groups
    assert sendgrid.account.groups[group]["name"] == "Riverside letters"
    assert sendgrid.account.groups[group]["description"] == "Issues of The Riverside Writers' Circle"
    assert lines(result.output)[:2] == [
        f"ok: created the unsubscribe group 'Riverside letters' (id {group})",
        f"ok: newsletter.yaml: wrote sendgrid.asm_group_id: {group}",
    ]
    assert f"ok: unsubscribe group {group} (Riverside letters) exists" in lines(result.output)
    # Exactly one line more: every comment, key and quote as it was.
    after = config.read_text()
    expected = before.rstrip("\n").splitlines()
    expected.insert(expected.index("  timeout: 30") + 1, f"  asm_group_id: {group}")  # the end of `sendgrid:`
    assert after.rstrip("\n").splitlines() == expected

    # The same name again (after a crash, say) takes the group the account has: no twin.
    config.write_text(before)
    result = run("doctor", "--create-group", "Riverside letters")
    assert result.exit_code == 0, result.output
    assert f"ok: the account already has an unsubscribe group named 'Riverside letters' (id {group}): using it" \
        in lines(result.output)
    assert len(sendgrid.account.groups) == 1


def test_create_group_refuses_a_long_name_or_a_group_already_set(publication: Path,
                                                                 sendgrid: SendGridDouble) -> None:
    result = run("doctor", "--create-group", "A name far longer than thirty characters")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: --create-group: a group's name is 1 to 30 characters (40 given)"
    enable_group(publication, 7)
    result = run("doctor", "--create-group", "Riverside letters")
    assert result.exit_code == 1
    assert "sendgrid.asm_group_id is already 7: remove it first" in result.stderr
    assert sendgrid.account.requested("POST", "/v3/asm/groups") == []


def test_init_then_create_group_gives_a_publication_with_a_group(tmp_path: Path, sendgrid: SendGridDouble,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("init", "letters")
    assert 'newsletter doctor --create-group "NAME"' in result.output
    monkeypatch.chdir(tmp_path / "letters")
    config = Path("newsletter.yaml")
    assert "unsubscribe_url" not in config.read_text().replace("# unsubscribe_url", "")
    check = run("check", "issue-1")
    assert "no way to unsubscribe yet: run `newsletter doctor --create-group NAME`" in check.stderr
    before = config.read_text()

    result = run("doctor", "--create-group", "My Newsletter")
    assert result.exit_code == 1  # the placeholders of a new publication are still there
    [group] = sendgrid.account.groups
    after = config.read_text()
    # The id lands in the sendgrid mapping; the comment lines after it stay after it.
    assert after.replace(f"  asm_group_id: {group}\n", "") == before
    assert after.index("  timeout: 30\n") < after.index(f"  asm_group_id: {group}\n") < after.index("# Or a page")
    assert "error: newsletter.yaml:5: from newsletter@example.org is a placeholder (example.org is reserved for " \
           "examples, RFC 2606): put the publication's own address there; a real send is refused until then" \
        in lines(result.output)
    assert any(line.startswith("error: newsletter.yaml:10: base_url https://example.org/newsletter is a placeholder")
               for line in lines(result.output))


def test_the_sender_matches_whatever_its_case(publication: Path, sendgrid: SendGridDouble) -> None:
    ready_account(sendgrid, publication)
    sendgrid.account.verified_senders.clear()
    sendgrid.account.verify_sender(SENDER.upper())
    result = run("doctor")
    assert result.exit_code == 0, result.output
    assert f"ok: from {SENDER} is a verified sender" in lines(result.output)
