"""Proofs (`send --to`) carry `[Proof]` before the subject; a real send never does."""

from __future__ import annotations

from pathlib import Path

from newsletter.config import load_settings
from newsletter.content import load_issue
from tests.helpers import run, update_config
from tests.sendgrid_double import SendGridDouble

SUBJECT = "Winter readings, a river in December, and what we’re reading"


def subjects(sendgrid: SendGridDouble) -> list[str]:
    return [body["subject"] for body in sendgrid.accepted]


def test_a_proof_says_so_in_its_subject_and_the_send_does_not(publication: Path, sendgrid: SendGridDouble) -> None:
    assert load_issue(load_settings(publication), "issue-1").subject == SUBJECT
    result = run("send", "issue-1", "--yes", "--to", "me@example.net")
    assert result.exit_code == 0, result.output
    assert subjects(sendgrid) == [f"[Proof] {SUBJECT}"]
    assert f"[Proof] {SUBJECT}" in result.output  # what it says it sent
    assert run("send", "issue-1", "--yes").exit_code == 0
    assert subjects(sendgrid)[1:] == [SUBJECT]


def test_proof_prefix_is_the_publications_own_or_none(publication: Path, sendgrid: SendGridDouble) -> None:
    update_config(publication, proof_prefix="[Test]")
    assert run("send", "issue-1", "--yes", "--to", "me@example.net").exit_code == 0
    update_config(publication, proof_prefix="")
    assert run("send", "issue-1", "--yes", "--to", "me@example.net").exit_code == 0
    assert subjects(sendgrid) == [f"[Test] {SUBJECT}", SUBJECT]


def test_a_dry_run_proof_writes_the_prefixed_subject(publication: Path) -> None:
    import json

    result = run("send", "issue-1", "--dry-run", "--to", "me@example.net")
    assert result.exit_code == 0, result.output
    bodies = [json.loads(p.read_text(encoding="utf-8"))
              for p in sorted((publication / "build" / "issue-1" / "dry-run").glob("*.json"))]
    assert bodies and all(b["subject"] == f"[Proof] {SUBJECT}" for b in bodies)


def test_a_line_break_in_from_name_or_proof_prefix_stays_out_of_the_request(publication: Path,
                                                                            sendgrid: SendGridDouble) -> None:
    """A CRLF in newsletter.yaml reached SendGrid's request as it was: a header of its own in the email."""
    update_config(publication, proof_prefix="[Proof]\r\nBcc: someone@example.net",
                  reply_to={"email": "editor@riverside-writers-circle.internal", "name": "The\reditor\n"},
                  **{"from": {"email": "letters@riverside-writers-circle.internal",
                              "name": "Riverside\r\nBcc: someone@example.net\x00"}})
    assert run("send", "issue-1", "--yes", "--to", "me@example.net").exit_code == 0
    [body] = sendgrid.accepted
    assert body["subject"] == f"[Proof] Bcc: someone@example.net {SUBJECT}"
    assert body["from"] == {"email": "letters@riverside-writers-circle.internal",
                            "name": "Riverside Bcc: someone@example.net"}
    assert body["reply_to"]["name"] == "The editor"
