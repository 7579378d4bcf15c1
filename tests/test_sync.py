"""`newsletter subscribers sync` against the SendGrid double, which pages as SendGrid does."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from newsletter.providers.sendgrid import suppressions
from tests.helpers import run
from tests.sendgrid_double import Drop, Respond, SendGridDouble, Stall
from tests.subscriber_helpers import MAIN_LIST, rows

PAGE = suppressions.PAGE_SIZE



def filler(kind: str, count: int) -> list[dict]:
    """`count` made-up suppressions of one kind, in the shape SendGrid's spec gives them."""
    shapes = {
        "unsubscribes": lambda e: {"created": 1700000000, "email": e},
        "bounces": lambda e: {"created": 1700000000, "email": e, "reason": "550 5.1.1 unknown user", "status": "5.1.1"},
        "spam_reports": lambda e: {"created": 1700000000, "email": e, "ip": "192.0.2.1"},
        "invalid_emails": lambda e: {"created": 1700000000, "email": e, "reason": "Mail domain mentioned in email address is unknown"},
        "blocks": lambda e: {"created": 1700000000, "email": e, "reason": "421 try again later", "status": "4.0.0"},
    }
    return [shapes[kind](f"{kind}-{i}@example.com") for i in range(count)]


def enable_group(publication: Path, group: int) -> None:
    config = publication / "newsletter.yaml"
    config.write_text(config.read_text().replace("# asm_group_id: 12345", f"asm_group_id: {group}"))


def test_sync_follows_every_page_of_every_kind(publication: Path, sendgrid: SendGridDouble) -> None:
    """Each list spans three pages; the list's addresses sit on the last pages, some in other case."""
    for kind in ("unsubscribes", "bounces", "spam_reports", "invalid_emails", "blocks"):
        sendgrid.suppressions[kind] = filler(kind, 2 * PAGE + 50)
    sendgrid.suppressions["unsubscribes"][-1]["email"] = "ADA.LOVELACE@example.org"
    sendgrid.suppressions["bounces"][PAGE + 3]["email"] = "o.brien@example.com"
    sendgrid.suppressions["spam_reports"][-2]["email"] = "tomasz@example.org"
    sendgrid.suppressions["invalid_emails"][2 * PAGE]["email"] = "reader.one@example.com"
    sendgrid.suppressions["blocks"][-1]["email"] = "kim@example.org"

    result = run("subscribers", "sync")
    assert result.exit_code == 0, result.output
    statuses = {email: row["status"] for email, row in rows().items()}
    assert statuses == {
        "ada.lovelace@example.org": "unsubscribed",
        "o.brien@example.com": "bounced",
        "tomasz@example.org": "complained",
        "reader.one@example.com": "bounced",
        "kim@example.org": "subscribed",          # blocks are temporary: ignored
        "left.us@example.com": "unsubscribed",
        "bounced@example.org": "bounced",
    }
    for label in ("global unsubscribes", "bounces", "invalid emails", "spam reports"):
        assert f"pulled {2 * PAGE + 50} {label}" in result.output
    assert "changed 4 addresses" in result.output
    assert "ada.lovelace@example.org: subscribed → unsubscribed" in result.output
    # Three pages of each of the four kinds, and never the blocks or a group.
    requested = sendgrid.suppression_requests
    assert len(requested) == 4 * 3
    assert not any("blocks" in path or "/asm/" in path for path in requested)
    assert rows()["ada.lovelace@example.org"]["updated_at"] > "2026-01-12T09:30:00Z"


def test_group_unsubscribes_only_when_a_group_is_configured(publication: Path, sendgrid: SendGridDouble) -> None:
    sendgrid.group_suppressions[4242] = ["kim@example.org", "stranger@example.com"]
    result = run("subscribers", "sync")
    assert result.exit_code == 0, result.output
    assert rows()["kim@example.org"]["status"] == "subscribed"
    assert not any("/asm/" in path for path in sendgrid.suppression_requests)

    enable_group(publication, 4242)
    result = run("subscribers", "sync")
    assert result.exit_code == 0, result.output
    assert "pulled 2 group 4242 unsubscribes" in result.output
    assert "not on the list    1" in result.output
    assert rows()["kim@example.org"]["status"] == "unsubscribed"
    assert "stranger@example.com" not in rows()


def test_unknown_group_is_a_one_line_error(publication: Path, sendgrid: SendGridDouble) -> None:
    enable_group(publication, 999)
    result = run("subscribers", "sync")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: SendGrid has no group 999 (404): check sendgrid.asm_group_id in newsletter.yaml"]


def test_a_status_never_gets_weaker(publication: Path, sendgrid: SendGridDouble) -> None:
    """A bounced address also in the unsubscribes stays bounced; a complaint beats both."""
    sendgrid.suppressions["unsubscribes"] = [{"created": 1, "email": "bounced@example.org"},
                                             {"created": 1, "email": "kim@example.org"}]
    sendgrid.suppressions["spam_reports"] = [{"created": 1, "email": "kim@example.org", "ip": "192.0.2.1"}]
    result = run("subscribers", "sync")
    assert rows()["bounced@example.org"]["status"] == "bounced"
    assert rows()["kim@example.org"]["status"] == "complained"
    assert "already so         1" in result.output


def test_dry_run_writes_nothing(publication: Path, sendgrid: SendGridDouble) -> None:
    before = MAIN_LIST.read_bytes()
    sendgrid.suppressions["bounces"] = [{"created": 1, "email": "kim@example.org", "reason": "x", "status": "5.0.0"}]
    result = run("subscribers", "sync", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would change 1 address (dry run: nothing written)" in result.output
    assert MAIN_LIST.read_bytes() == before


def test_rejected_key_is_one_line_and_never_shown(publication: Path, sendgrid: SendGridDouble,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    wrong_key = "SG.wrong-key-for-the-test"
    monkeypatch.setenv("SENDGRID_API_KEY", wrong_key)
    before = MAIN_LIST.read_bytes()
    result = run("subscribers", "sync")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: SendGrid refused the API key (401) when reading global unsubscribes: check SENDGRID_API_KEY "
        "(it needs read access to Suppressions)"]
    assert wrong_key not in result.output and sendgrid.api_key not in result.output
    assert MAIN_LIST.read_bytes() == before


def test_missing_key_is_a_config_error(publication: Path, sendgrid: SendGridDouble,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENDGRID_API_KEY")
    result = run("subscribers", "sync")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: SENDGRID_API_KEY is not set")
    assert sendgrid.suppression_requests == []


def test_unreachable_sendgrid_is_one_line(publication: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("NEWSLETTER_SENDGRID_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.unused-for-the-test")
    result = run("subscribers", "sync")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: could not reach SendGrid at http://127.0.0.1:{port} for global unsubscribes")
    assert lines[0].endswith("check NEWSLETTER_SENDGRID_URL and the network")
    assert "SG.unused-for-the-test" not in result.output


def test_rate_limits_server_errors_and_dropped_connections_are_retried(publication: Path,
                                                                        sendgrid: SendGridDouble) -> None:
    sendgrid.suppressions["unsubscribes"] = filler("unsubscribes", PAGE + 1)
    sendgrid.suppressions["unsubscribes"][-1]["email"] = "kim@example.org"
    sendgrid.script_suppressions(Respond(429, {"Retry-After": "0"}), Drop(), Respond(503))
    result = run("subscribers", "sync")
    assert result.exit_code == 0, result.output
    assert f"pulled {PAGE + 1} global unsubscribes" in result.output
    assert rows()["kim@example.org"]["status"] == "unsubscribed"


def test_server_error_that_persists_is_reported(publication: Path, sendgrid: SendGridDouble) -> None:
    sendgrid.script_suppressions(*[Respond(500, body={"errors": [{"message": "internal trouble"}]})] * suppressions.ATTEMPTS)
    result = run("subscribers", "sync")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: SendGrid answered 500 when reading global unsubscribes (GET /v3/suppression/unsubscribes): "
        "internal trouble")


def test_next_link_to_another_host_is_not_followed(publication: Path, sendgrid: SendGridDouble) -> None:
    """The key goes with every request, so a next-page link off SendGrid's host is refused."""
    sendgrid.script_suppressions(Respond(200, {"Link": '<https://elsewhere.example.com/v3/x?offset=500>; rel="next"'},
                                         body=[{"created": 1, "email": "someone@example.com"}]))
    result = run("subscribers", "sync")
    assert result.exit_code == 1
    assert "points to another host (elsewhere.example.com); not following it" in result.stderr


def test_pages_without_link_headers_are_followed_by_offset(publication: Path, sendgrid: SendGridDouble) -> None:
    sendgrid.suppression_links = False
    sendgrid.suppressions["bounces"] = filler("bounces", 2 * PAGE)  # exactly two full pages
    sendgrid.suppressions["bounces"][-1]["email"] = "kim@example.org"
    result = run("subscribers", "sync")
    assert result.exit_code == 0, result.output
    assert f"pulled {2 * PAGE} bounces" in result.output
    assert rows()["kim@example.org"]["status"] == "bounced"
    bounce_requests = [path for path in sendgrid.suppression_requests if "bounces" in path]
    assert len(bounce_requests) == 3  # two full pages, then an empty one says it is over


def set_timeout(publication: Path, seconds: float) -> None:
    config = publication / "newsletter.yaml"
    config.write_text(config.read_text().replace("timeout: 30", f"timeout: {seconds}"))


def test_every_request_has_a_timeout(publication: Path, sendgrid: SendGridDouble) -> None:
    """A stalled answer is given up on after sendgrid.timeout, retried, then reported."""
    # The stalls last until the client hangs up; the timeout leaves normal answers time on a loaded machine.
    set_timeout(publication, 1.0)
    sendgrid.suppressions["unsubscribes"] = [{"created": 1, "email": "kim@example.org"}]
    sendgrid.script_suppressions(Stall())
    result = run("subscribers", "sync")
    assert result.exit_code == 0, result.output
    assert rows()["kim@example.org"]["status"] == "unsubscribed"

    sendgrid.script_suppressions(*[Stall()] * suppressions.ATTEMPTS)
    result = run("subscribers", "sync")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: could not reach SendGrid at ")
    assert "timed out" in result.stderr


def test_a_key_quoted_back_by_sendgrid_is_hidden(publication: Path, sendgrid: SendGridDouble) -> None:
    """An error message that quotes the API key (a proxy, a misbehaving server) is printed
    with the key hidden."""
    sendgrid.script_suppressions(Respond(400, body={"errors": [
        {"message": f"key {sendgrid.api_key} may not read this", "field": None}]}))
    result = run("subscribers", "sync")
    assert result.exit_code == 1
    assert "key *** may not read this" in result.stderr
    assert sendgrid.api_key not in result.output and sendgrid.api_key[:12] not in result.stderr
