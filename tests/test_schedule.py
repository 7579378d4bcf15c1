"""Scheduled sends: WHEN as a person writes it, SendGrid's 72 hours and 10 minutes, cancel, status."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from newsletter.providers.sendgrid.schedule import parse_when
from newsletter.when import ScheduleError
from tests.account_helpers import account_spec, spec_kept
from tests.helpers import run
from tests.send_helpers import at, generated, write_list
from tests.sendgrid_double import Accept, SendGridDouble, Stall
from tests.terminal_double import TerminalDouble

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-12-02T09:00+01:00", dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)),
    ("2026-12-01T10:30Z", dt.datetime(2026, 12, 1, 10, 30, tzinfo=dt.UTC)),
    ("2026-12-04T08:59:59+00:00", dt.datetime(2026, 12, 4, 8, 59, 59, tzinfo=dt.UTC)),
])
def test_iso_8601_with_an_offset(text: str, expected: dt.datetime) -> None:
    assert parse_when(text, NOW) == expected


def test_local_time_as_typed() -> None:
    when = parse_when("2026-12-02 09:00", NOW)
    assert when.tzinfo is not None
    assert when.replace(tzinfo=None) == dt.datetime(2026, 12, 2, 9, 0)


@pytest.mark.parametrize(("text", "message"), [
    ("tomorrow", "is not a time: write 2026-12-02T09:00+01:00"),
    ("2026-12-02T09:00", "has no offset: add one"),
    ("2026-12-01T08:59Z", "is not in the future"),
    ("2026-12-04T09:00:01Z", "is more than 72 hours ahead, which SendGrid refuses: nothing was sent"),
])
def test_times_sendgrid_would_not_schedule_are_refused(text: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=re.escape(message)):
        parse_when(text, NOW)


# -- send --at, cancel and status against the double ------------------------------------

def epoch(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp())


def status_json() -> dict:
    return json.loads(run("status", "issue-1", "--json").stdout)


@pytest.mark.usefixtures(account_spec.__name__, spec_kept.__name__)
class TestScheduledSends:
    def test_every_request_carries_one_send_at_and_batch_id(self, publication: Path,
                                                            sendgrid: SendGridDouble) -> None:
        write_list(publication, generated(2500))
        when = at(hours=2)
        result = run("send", "issue-1", "--yes", "--at", when)
        assert result.exit_code == 0, result.output
        [batch] = sendgrid.account.batches
        assert {(body["send_at"], body["batch_id"]) for body in sendgrid.accepted} == {(epoch(when), batch)}
        assert len(sendgrid.accepted) == 3
        assert "When:     " in result.output and "UTC: SendGrid holds every request until then" in result.output
        assert result.output.startswith("Issue:") and "\nScheduled issue-1 in " in result.output
        assert "Scheduled: SendGrid delivers it at " in result.output and f"(batch {batch})" in result.output
        shown = status_json()
        assert shown["sent"] == 2500
        assert shown["scheduled_at"] == dt.datetime.fromtimestamp(epoch(when), dt.UTC).isoformat().replace(
            "+00:00", "Z")
        assert shown["batch_id"] == batch
        text = run("status", "issue-1").stdout
        assert re.search(rf"^scheduled  .*UTC\)?, batch {batch}$", text, re.M)

    def test_the_question_says_when_in_local_time_and_utc(self, publication: Path, sendgrid: SendGridDouble,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TZ", "America/Sao_Paulo")  # three hours behind UTC, no daylight saving
        time.tzset()
        try:
            when = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(hours=3)
            result = run("send", "issue-1", "--at", when.isoformat(), input="n\n",
                         terminal=TerminalDouble(can_ask=True))
            local = when.astimezone()
        finally:
            monkeypatch.delenv("TZ")
            time.tzset()
        assert result.exit_code == 1  # declined
        assert (f"Schedule it for {local:%Y-%m-%d %H:%M}" in result.output
                and f"({when:%Y-%m-%d %H:%M} UTC)? [y/N]" in result.output)
        assert sendgrid.mail_requests == [] and sendgrid.account.batches == []

    def test_a_time_in_utc_where_local_time_is_utc_is_said_once(self, publication: Path, sendgrid: SendGridDouble,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TZ", "UTC")
        time.tzset()
        try:
            write_list(publication, generated(3))
            result = run("send", "issue-1", "--yes", "--at", at(hours=2))
        finally:
            monkeypatch.delenv("TZ")
            time.tzset()
        assert result.exit_code == 0, result.output
        assert "When:     " in result.output and "UTC: SendGrid holds" in result.output
        assert " UTC (20" not in result.output, result.output  # no second, identical form

    def test_a_time_too_near_to_cancel_is_warned_about(self, publication: Path, sendgrid: SendGridDouble) -> None:
        write_list(publication, generated(3))
        result = run("send", "issue-1", "--yes", "--at", at(minutes=5))
        assert result.exit_code == 0, result.output
        assert "is less than 10 minutes away: SendGrid lets no one cancel it any more" in result.stderr

    def test_a_scheduled_dry_run_offers_no_cancel(self, publication: Path) -> None:
        write_list(publication, generated(3))
        result = run("send", "issue-1", "--dry-run", "--at", at(hours=2))
        assert result.exit_code == 0, result.output
        assert "Scheduled: a real send would be delivered at " in result.output
        assert "newsletter cancel" not in result.output

    @pytest.mark.parametrize(("delta", "message"), [
        ({"minutes": -5}, "is not in the future"),
        ({"hours": 73}, "is more than 72 hours ahead, which SendGrid refuses: nothing was sent"),
    ])
    def test_times_out_of_bounds_post_nothing(self, publication: Path, sendgrid: SendGridDouble,
                                              delta: dict, message: str) -> None:
        result = run("send", "issue-1", "--yes", "--at", at(**delta))
        assert result.exit_code == 1
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("error: --at ") and message in line
        assert sendgrid.mail_requests == [] and sendgrid.account.requests == []

    def test_a_proof_is_not_scheduled(self, publication: Path, sendgrid: SendGridDouble) -> None:
        result = run("send", "issue-1", "--yes", "--to", "me@riverside-writers-circle.internal",
                     "--at", at(hours=1))
        assert result.exit_code == 1
        assert "a proof (--to) is sent at once" in result.stderr

    def test_a_dry_run_shows_send_at_and_asks_sendgrid_nothing(self, publication: Path,
                                                               sendgrid: SendGridDouble) -> None:
        when = at(hours=1)
        result = run("send", "issue-1", "--dry-run", "--at", when)
        assert result.exit_code == 0, result.output
        [body] = [json.loads(p.read_text()) for p in (publication / "build" / "issue-1" / "dry-run").glob("*.json")]
        assert body["send_at"] == epoch(when) and "batch_id" not in body
        assert sendgrid.account.requests == []

    def test_a_rerun_after_a_kill_keeps_the_moment_and_the_batch(self, publication: Path,
                                                                 sendgrid: SendGridDouble) -> None:
        write_list(publication, generated(3500))
        when = at(hours=5)
        sendgrid.script(Accept(), Stall(30.0, accept=True))
        env = dict(os.environ, NEWSLETTER_SENDGRID_URL=sendgrid.url, SENDGRID_API_KEY=sendgrid.api_key)
        # One request at a time: the second one is the one killed in flight.
        process = subprocess.Popen([sys.executable, "-m", "newsletter", "send", "issue-1", "--yes", "--at", when,
                                    "--concurrency", "1"],
                                   cwd=publication, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while len(sendgrid.mail_requests) < 2:
                assert time.monotonic() < deadline, "the send never posted its second request"
                time.sleep(0.02)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        assert status_json()["not_sent"] == 1500  # neither scheduled nor in doubt: never posted
        rerun = run("send", "issue-1", "--yes")  # no --at: the earlier run's moment holds
        assert rerun.exit_code == 1, rerun.output  # the killed request stays uncertain
        assert "(as the earlier run of this send)" in rerun.output
        [batch] = sendgrid.account.batches
        assert {(body["send_at"], body["batch_id"]) for body in sendgrid.mail_requests} == {(epoch(when), batch)}
        assert len(sendgrid.mail_requests) == 4  # the two of the killed run, the two for the rest
        shown = status_json()
        assert (shown["sent"], shown["uncertain"], shown["not_sent"], shown["batch_id"]) == (2500, 1000, 0, batch)

        other = run("send", "issue-1", "--yes", "--at", at(hours=6))
        assert other.exit_code == 1
        assert "issue-1 is already scheduled for " in other.stderr
        assert "run `newsletter cancel issue-1` first" in other.stderr

    def test_a_rerun_after_the_moment_says_so_and_sends_the_rest_now(self, publication: Path,
                                                                     sendgrid: SendGridDouble) -> None:
        write_list(publication, generated(10))
        assert run("send", "issue-1", "--yes", "--at", at(hours=1)).exit_code == 0
        # As if that hour had gone by.
        with sqlite3.connect(publication / "sent" / "issue-1.sqlite") as db:
            db.execute("UPDATE batches SET send_at = ?", (int(time.time()) - 60,))
        write_list(publication, generated(12))  # two new subscribers
        result = run("send", "issue-1", "--yes")
        assert result.exit_code == 0, result.output
        assert "which has passed; the rest go out at once" in result.output
        late = sendgrid.accepted[-1]
        assert "send_at" not in late and "batch_id" not in late
        assert [to["email"] for p in late["personalizations"] for to in p["to"]] == [
            "reader000010@example.org", "reader000011@example.org"]

    def test_cancel_then_send_again(self, publication: Path, sendgrid: SendGridDouble) -> None:
        write_list(publication, generated(1500))
        assert run("send", "issue-1", "--yes", "--at", at(hours=2)).exit_code == 0
        [batch] = sendgrid.account.batches
        result = run("cancel", "issue-1", "--yes")
        assert result.exit_code == 0, result.output
        assert sendgrid.account.scheduled == {batch: "cancel"}
        assert result.output.splitlines()[1] == (
            "  1,500 recipients will not get it; `newsletter send issue-1` sends to them again (now, or --at a "
            "new time).")
        shown = status_json()
        assert (shown["sent"], shown["cancelled"], shown["not_sent"], shown["scheduled_at"], shown["batch_id"]) == (
            0, 1500, 0, None, None)
        told = run("status", "issue-1").stdout
        assert "cancelled      1,500" in told and "not sent" not in told  # counted once, as cancelled

        again = run("send", "issue-1", "--yes", "--at", at(hours=3))
        assert again.exit_code == 0, again.output
        new_batch = sendgrid.account.batches[-1]
        assert new_batch != batch
        resent = [b for b in sendgrid.accepted if b["batch_id"] == new_batch]
        assert sorted(to["email"] for b in resent for p in b["personalizations"] for to in p["to"]) == [
            f"reader{i:06d}@example.org" for i in range(1500)]
        assert status_json()["sent"] == 1500

    def test_a_send_after_a_cancel_can_go_now(self, publication: Path, sendgrid: SendGridDouble) -> None:
        write_list(publication, generated(3))
        assert run("send", "issue-1", "--yes", "--at", at(hours=2)).exit_code == 0
        assert run("cancel", "issue-1", "--yes").exit_code == 0
        now = run("send", "issue-1", "--yes")
        assert now.exit_code == 0, now.output
        assert "When:" not in now.output
        assert "send_at" not in sendgrid.accepted[-1] and "batch_id" not in sendgrid.accepted[-1]
        assert status_json()["sent"] == 3

    def test_cancel_too_late_asks_sendgrid_nothing(self, publication: Path, sendgrid: SendGridDouble) -> None:
        write_list(publication, generated(3))
        assert run("send", "issue-1", "--yes", "--at", at(minutes=6)).exit_code == 0
        result = run("cancel", "issue-1", "--yes")
        assert result.exit_code == 1
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("error: too late to cancel issue-1: its send time ")
        assert line.endswith("is less than 10 minutes away, and SendGrid refuses a cancel later than 10 minutes "
                             "before it; SendGrid was not asked")
        assert sendgrid.account.requested("POST", "/v3/user/scheduled_sends") == []
        assert status_json()["sent"] == 3

    def test_cancel_without_a_scheduled_send(self, publication: Path, sendgrid: SendGridDouble) -> None:
        result = run("cancel", "issue-1", "--yes")
        assert result.exit_code == 1
        assert result.stderr.strip() == "error: issue-1 has no scheduled send to cancel (it was never sent)"
        assert run("send", "issue-1", "--yes").exit_code == 0
        result = run("cancel", "issue-1", "--yes")
        assert result.stderr.strip() == (
            "error: issue-1 has no scheduled send to cancel (sent/issue-1.sqlite records none standing)")
