"""`doctor` and `stats` when SendGrid (or whatever answers at its address) gives an answer not shaped
as SendGrid's spec documents: one `error:` line saying which endpoint's answer was not understood,
never a traceback, a misleading finding or a table of zeros. Scripted answers of the SendGrid double."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from pathlib import Path

import pytest

from tests.account_helpers import account_spec, ready_account, spec_kept
from tests.helpers import run
from tests.send_helpers import generated, write_list
from tests.sendgrid_double import Accept, Respond, SendGridDouble

pytestmark = pytest.mark.usefixtures(account_spec.__name__, spec_kept.__name__)


def json_answer(raw: str) -> Respond:
    return Respond(200, {"Content-Type": "application/json"}, raw=raw.encode())


def one_error(stderr: str) -> str:
    """The one line of stderr, which must be an `error:` line."""
    shown = stderr.strip().splitlines()
    assert len(shown) == 1, stderr
    assert shown[0].startswith("error: "), stderr
    return shown[0]


@pytest.mark.parametrize(("before", "answer", "endpoint", "what"), [
    ((), "[1, 2]", "GET /v3/scopes", "the answer is a list, where SendGrid documents an object"),
    ((), '{"scopes": "x"}', "GET /v3/scopes", "scopes is a string, where SendGrid documents a list"),
    ((), '{"scopes": ["mail.send", 7]}', "GET /v3/scopes",
     "scopes[1] is an integer, where SendGrid documents a string"),
    ((), '{"permissions": []}', "GET /v3/scopes", "scopes is missing, which SendGrid documents as always there"),
    ((Accept(),), '{"results": [{"id": 1, "from_email": "a@b.example", "verified": "yes"}]}',
     "GET /v3/verified_senders", "results[0].verified is a string, where SendGrid documents true or false"),
    ((Accept(),), '["letters@riverside-writers-circle.internal"]', "GET /v3/verified_senders",
     "the answer is a list, where SendGrid documents an object"),
    ((Accept(), Accept()), '{"id": "101"}', "GET /v3/asm/groups/101",
     "id is a string, where SendGrid documents an integer"),
], ids=["list-for-scopes", "string-for-scopes", "number-in-scopes", "no-scopes", "verified-as-text",
        "list-for-senders", "group-id-as-text"])
def test_doctor_says_an_answer_out_of_shape_was_not_understood(
        publication: Path, sendgrid: SendGridDouble, before: tuple[Accept, ...], answer: str, endpoint: str,
        what: str) -> None:
    group = ready_account(sendgrid, publication)
    assert group == 101
    sendgrid.account.script(*before, json_answer(answer))
    result = run("doctor")
    assert result.exit_code == 1
    assert one_error(result.stderr) == (
        f"error: SendGrid's answer to {endpoint} was not understood: {what} (is NEWSLETTER_SENDGRID_URL, or a "
        "proxy, answering in SendGrid's place?); nothing was taken from it")
    assert "lacks the scope" not in result.output


def test_doctor_reads_authenticated_domains_only_in_their_documented_shape(
        publication: Path, sendgrid: SendGridDouble) -> None:
    ready_account(sendgrid, publication)
    sendgrid.account.verified_senders.clear()  # so the domains are asked
    sendgrid.account.script(Accept(), Accept(), json_answer('{"domain": "riverside-writers-circle.internal"}'))
    result = run("doctor")
    assert result.exit_code == 1
    assert "SendGrid's answer to GET /v3/whitelabel/domains was not understood: the answer is an object, " \
           "where SendGrid documents a list" in one_error(result.stderr)


def test_create_group_reads_the_groups_only_in_their_documented_shape(
        publication: Path, sendgrid: SendGridDouble) -> None:
    sendgrid.account.script(json_answer('{"groups": []}'))
    config = (publication / "newsletter.yaml").read_text(encoding="utf-8")
    result = run("doctor", "--create-group", "Riverside letters")
    assert result.exit_code == 1
    assert "SendGrid's answer to GET /v3/asm/groups was not understood" in one_error(result.stderr)
    assert sendgrid.account.groups == {}, "no group created on an answer not understood"
    assert (publication / "newsletter.yaml").read_text(encoding="utf-8") == config


def sent(publication: Path) -> None:
    write_list(publication, generated(3))
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("answer", "what"), [
    ("[1, 2]", "the answer[0] is an integer, where SendGrid documents an object"),
    ('{"metrics": {"delivered": "lots"}}', "the answer is an object, where SendGrid documents a list"),
    ('[{"date": "2026-12-01", "stats": [{"type": "category", "name": "issue-1", "metrics": '
     '{"delivered": "lots"}}]}]', "[0].stats[0].metrics.requests is missing"),
    ("", "the answer is empty (or null), where SendGrid documents a list"),
], ids=["list-of-numbers", "an-object", "a-count-as-text", "empty"])
def test_stats_says_an_answer_out_of_shape_was_not_understood(
        publication: Path, sendgrid: SendGridDouble, answer: str, what: str) -> None:
    sent(publication)
    sendgrid.account.script(json_answer(answer))
    result = run("stats", "issue-1")
    assert result.exit_code == 1
    line = one_error(result.stderr)
    assert line.startswith("error: SendGrid's answer to GET /v3/categories/stats was not understood: "), line
    assert what in line
    assert "requests" not in result.stdout, "no table of zeros"


def test_stats_refuses_a_count_that_is_not_an_integer(publication: Path, sendgrid: SendGridDouble) -> None:
    sent(publication)
    metrics = dict.fromkeys(["requests", "processed", "delivered", "opens", "unique_opens", "clicks",
                             "unique_clicks", "bounces", "bounce_drops", "spam_reports", "spam_report_drops",
                             "unsubscribes", "unsubscribe_drops", "blocks", "deferred", "invalid_emails"], 0)
    metrics["delivered"] = "lots"  # type: ignore[assignment]
    import json

    day = {"date": dt.date.today().isoformat(), "stats": [{"type": "category", "name": "issue-1", "metrics": metrics}]}
    sendgrid.account.script(json_answer(json.dumps([day])))
    result = run("stats")
    assert result.exit_code == 1
    assert ("the answer[0].stats[0].metrics.delivered is a string, where SendGrid documents an integer"
            in one_error(result.stderr))


def at(hours: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%MZ")


def test_stats_first_sent_is_the_first_accepted_batch_not_a_cancelled_one(
        publication: Path, sendgrid: SendGridDouble) -> None:
    write_list(publication, generated(3))
    assert run("send", "issue-1", "--yes", "--at", at(hours=2)).exit_code == 0
    assert run("cancel", "issue-1", "--yes").exit_code == 0
    ledger = publication / "sent" / "issue-1.sqlite"
    with sqlite3.connect(ledger) as db:  # as if that cancelled send had been made two days ago
        db.execute("UPDATE batches SET created = ?, send_at = ?", (time.time() - 2 * 86400, time.time() - 86400))
    result = run("stats", "issue-1")
    assert result.exit_code == 1, "a cancelled send reached nobody"
    assert "issue-1 has not been sent yet" in result.stderr

    later = at(hours=5)
    assert run("send", "issue-1", "--yes", "--at", later).exit_code == 0
    shown = run("stats", "issue-1")
    assert shown.exit_code == 0, shown.output
    when = dt.datetime.strptime(later, "%Y-%m-%dT%H:%MZ")
    assert shown.output.startswith(f"issue-1: scheduled for {when:%Y-%m-%d %H:%M} UTC; "), shown.output
