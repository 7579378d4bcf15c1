"""`newsletter send` when the network or SendGrid misbehaves: retried, stopped, or uncertain."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import run, wait_for
from tests.send_helpers import files_under, generated, set_timeout, write_list
from tests.sendgrid_double import Accept, Cut, Drop, Respond, SendGridDouble, Stall, Trickle, too_many_requests
from tests.terminal_double import TerminalDouble, quick_retries

# A real send first checks that the issue is online: here it is, built and served locally.
pytestmark = pytest.mark.usefixtures("published_site")


def status(*extra: str) -> dict[str, int]:
    shown = json.loads(run("status", "issue-1", "--json", *extra).stdout)
    # No send here is scheduled (tests/test_scheduling.py has those): the counts are what is compared.
    assert (shown.pop("cancelled"), shown.pop("scheduled_at"), shown.pop("batch_id")) == (0, None, None)
    return shown


def test_rate_limited_then_accepted(publication: Path, sendgrid: SendGridDouble) -> None:
    """429 with X-RateLimit-Reset: wait, post again, each recipient once."""
    limited = too_many_requests(reset_in=1)
    sendgrid.script(limited)
    result = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert result.exit_code == 0, result.output
    assert len(sendgrid.mail_requests) == 2
    # Posted again only once the limit was reset, rather than hammering.
    assert sendgrid.mail_times[1] >= int(limited.headers["X-RateLimit-Reset"])
    assert Counter(sendgrid.accepted_recipients()).most_common(1)[0][1] == 1
    assert status()["sent"] == 5


@pytest.mark.parametrize("faults", [
    pytest.param([Respond(500), Respond(500)], id="500-twice"),
    pytest.param([Respond(503)], id="503"),
])
def test_transient_failures_are_retried(publication: Path, sendgrid: SendGridDouble, faults: list) -> None:
    write_list(publication, generated(1500))
    sendgrid.script(*faults)
    result = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert result.exit_code == 0, result.output
    assert len(sendgrid.mail_requests) == 2 + len(faults)
    assert sorted(sendgrid.accepted_recipients()) == [f"reader{i:06d}@example.org" for i in range(1500)]


def test_server_errors_that_persist_stop_the_send(publication: Path, sendgrid: SendGridDouble) -> None:
    """Bounded attempts, then a clear stop; the next run sends to those left."""
    write_list(publication, generated(2500))
    sendgrid.script(*[Respond(503)] * 6)
    result = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert result.exit_code == 1
    assert "error: SendGrid answered 503: scripted 503 (gave up after 6 attempts)" in result.stderr
    assert "not sent       1,500" in result.output
    assert sendgrid.accepted == []
    assert status() == {"sent": 0, "pending": 0, "failed": 1000, "uncertain": 0, "not_sent": 1500}
    again = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert again.exit_code == 0, again.output
    assert sorted(sendgrid.accepted_recipients()) == [f"reader{i:06d}@example.org" for i in range(2500)]


def test_wrong_key_stops_with_sendgrids_message(publication: Path, sendgrid: SendGridDouble,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    write_list(publication, generated(2500))
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.not-the-key")
    result = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: SendGrid refused the request (401: The provided authorization grant is invalid, "
        "expired, or revoked): check SENDGRID_API_KEY: SendGrid does not accept that key\n")
    assert len(sendgrid.mail_requests) == 0 and len(sendgrid.request_headers) == 1


def test_bad_request_stops_with_sendgrids_message(publication: Path, sendgrid: SendGridDouble) -> None:
    """A 400 pointing at personalizations.N names that recipient and says to fix or remove it."""
    write_list(publication, generated(2500))
    sendgrid.script(Respond(400, body={"errors": [
        {"field": "personalizations.2.to", "message": "Does not contain a valid address.", "help": None}]}))
    result = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: SendGrid refused the request (400: personalizations.2.to: Does not contain a valid address.)")
    assert ": SendGrid refused the recipient reader000002@example.org: fix or remove it in the list, " \
           "then send again" in result.stderr
    assert result.stderr.count("\n") == 1
    assert len(sendgrid.mail_requests) == 1


def test_stalled_answer_is_uncertain_until_retried(publication: Path, sendgrid: SendGridDouble) -> None:
    """No answer within sendgrid.timeout: not posted again, listed, exit 1; --retry-uncertain sends."""
    # The stall lasts until the client hangs up; the timeout is long enough that a normal
    # answer comes in time on a loaded machine (the double validates each body's schema).
    set_timeout(publication, 3)
    write_list(publication, generated(1500))
    sendgrid.script(Stall(accept=False))
    result = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert result.exit_code == 1
    assert "uncertain      1,000  (no answer came)" in result.output
    assert "  reader000000@example.org\n" in result.output and "--retry-uncertain" in result.output
    assert len(sendgrid.mail_requests) == 2
    assert status() == {"sent": 500, "pending": 0, "failed": 0, "uncertain": 1000, "not_sent": 0}
    listed = run("status", "issue-1", "--uncertain").stdout.splitlines()
    assert listed[4:] == [f"reader{i:06d}@example.org" for i in range(1000)]
    again = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert again.exit_code == 1 and len(sendgrid.mail_requests) == 2
    retried = run("send", "issue-1", "--yes", "--concurrency", "1", "--retry-uncertain")
    assert retried.exit_code == 0, retried.output
    assert sorted(sendgrid.accepted_recipients()) == [f"reader{i:06d}@example.org" for i in range(1500)]
    assert status() == {"sent": 1500, "pending": 0, "failed": 0, "uncertain": 0, "not_sent": 0}


def test_a_retry_of_the_uncertain_killed_counts_them_once(publication: Path, sendgrid: SendGridDouble) -> None:
    """--retry-uncertain posts again to readers the ledger holds: killed in flight, its not-sent
    count is the new readers it did not reach, not the uncertain ones a second time."""
    write_list(publication, generated(1500))
    sendgrid.script(Drop())  # the first request: uncertain
    assert run("send", "issue-1", "--yes", "--concurrency", "1").exit_code == 1
    assert status() == {"sent": 500, "pending": 0, "failed": 0, "uncertain": 1000, "not_sent": 0}
    write_list(publication, generated(1700))  # 200 new readers
    sendgrid.script(Stall(30.0, accept=True))
    process = _start_send(publication, sendgrid, "--concurrency", "1", "--retry-uncertain")
    wait_for(lambda: len(sendgrid.mail_requests) == 3)  # the 1,000 uncertain, posted again
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert status() == {"sent": 500, "pending": 0, "failed": 0, "uncertain": 1000, "not_sent": 200}
    assert run("send", "issue-1", "--yes").exit_code == 1  # the new readers; the uncertain stay so
    assert status() == {"sent": 700, "pending": 0, "failed": 0, "uncertain": 1000, "not_sent": 0}


def test_concurrent_requests_keep_the_ledger_exact(publication: Path, sendgrid: SendGridDouble) -> None:
    write_list(publication, generated(6500))
    sendgrid.script(Respond(500))
    result = run("send", "issue-1", "--yes", "--concurrency", "3")
    assert result.exit_code == 0, result.output
    assert sorted(sendgrid.accepted_recipients()) == [f"reader{i:06d}@example.org" for i in range(6500)]
    assert sendgrid.connections <= 3
    assert status()["sent"] == 6500


def _start_send(publication: Path, sendgrid: SendGridDouble, *options: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, NEWSLETTER_SENDGRID_URL=sendgrid.url, SENDGRID_API_KEY=sendgrid.api_key)
    return subprocess.Popen([sys.executable, "-m", "newsletter", "send", "issue-1", "--yes", *options],
                            cwd=publication, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_killed_mid_send_and_rerun_nobody_gets_two(publication: Path, sendgrid: SendGridDouble) -> None:
    """SIGKILL while a request is in flight (SendGrid took it): the rerun sends the rest, not it."""
    write_list(publication, generated(4500))
    sendgrid.script(Respond(202, {"X-Message-Id": "first"}), Stall(30.0, accept=True))
    process = _start_send(publication, sendgrid, "--concurrency", "1")
    wait_for(lambda: len(sendgrid.mail_requests) == 2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    # Half sent, and the status says so: the 2,500 never posted were in no count before.
    assert run("status", "issue-1").stdout == (
        "sent           1,000\npending            0\nfailed             0\nuncertain      1,000\n"
        "not sent       2,500  (the send stopped before them: run `newsletter send issue-1` again)\n")
    rerun = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert rerun.exit_code == 1  # the killed request stays uncertain
    counts = Counter(sendgrid.accepted_recipients())
    assert max(counts.values()) == 1
    # The first request's scripted 202 does not count at the double; the second one does.
    assert len(counts) == 3500 and "reader001000@example.org" in counts
    assert "reader000000@example.org" not in counts
    assert "uncertain      1,000" in rerun.output
    assert status() == {"sent": 3500, "pending": 0, "failed": 0, "uncertain": 1000, "not_sent": 0}


def test_killed_at_any_moment_nobody_gets_two(publication: Path, sendgrid: SendGridDouble) -> None:
    """SIGKILL at an arbitrary point of a running send; then rerun: still nobody twice."""
    write_list(publication, generated(8000))
    process = _start_send(publication, sendgrid)
    wait_for(lambda: len(sendgrid.accepted) >= 3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    run("send", "issue-1", "--yes")
    counts = Counter(sendgrid.accepted_recipients())
    assert max(counts.values()) == 1
    ledger = status()
    assert ledger["sent"] + ledger["uncertain"] == 8000 and ledger["failed"] == ledger["pending"] == 0


def test_refused_connection_is_retried_then_stops(publication: Path, sendgrid: SendGridDouble,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listening: bounded retries, a one-line error, nothing recorded as sent."""
    import socket

    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    monkeypatch.setenv("NEWSLETTER_SENDGRID_URL", f"http://127.0.0.1:{port}")
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot connect to 127.0.0.1:{port}")
    assert "(gave up after 6 attempts)" in result.stderr and result.stderr.count("\n") == 1
    assert status() == {"sent": 0, "pending": 0, "failed": 5, "uncertain": 0, "not_sent": 0}


STOPPING = b"stopping: no new request will be posted"


def _read_stderr_until(process: subprocess.Popen[bytes], text: bytes) -> bytes:
    """The child's stderr up to the line holding `text` (it says it received the signal)."""
    assert process.stderr is not None
    seen = b""
    while text not in seen:
        line = process.stderr.readline()
        assert line, f"the send ended without printing {text!r}: {seen!r}"
        seen += line
    return seen


def test_ctrl_c_waits_for_the_request_in_flight(publication: Path, sendgrid: SendGridDouble) -> None:
    """SIGINT while a request is in flight: its answer is still recorded, so nothing is uncertain."""
    write_list(publication, generated(3000))
    answer = threading.Event()
    sendgrid.script(Stall(accept=True, release=answer))
    process = _start_send(publication, sendgrid, "--concurrency", "1")
    wait_for(lambda: len(sendgrid.mail_requests) == 1)
    process.send_signal(signal.SIGINT)
    _read_stderr_until(process, STOPPING)
    answer.set()  # only once the send has stopped taking new batches
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stderr
    # Its headline said "Sent issue-1 in 1.2 s", as if everyone had it.
    assert re.search(rb"^Stopped issue-1 after \d+\.\d s: 1,000 sent, 2,000 not yet \(", stdout, re.M), stdout
    assert status() == {"sent": 1000, "pending": 0, "failed": 0, "uncertain": 0, "not_sent": 2000}
    assert run("send", "issue-1", "--yes", "--concurrency", "1").exit_code == 0
    assert sorted(sendgrid.accepted_recipients()) == [f"reader{i:06d}@example.org" for i in range(3000)]


def test_ctrl_c_at_concurrency_4_counts_everyone_not_sent(publication: Path, sendgrid: SendGridDouble) -> None:
    """Four requests in flight, Ctrl-C: their answers are recorded and the report counts all
    10,000 still to send (it once said 1,000: only the batch being built)."""
    write_list(publication, generated(14_000))
    answer = threading.Event()
    sendgrid.script(*[Stall(accept=True, release=answer)] * 4)
    env = dict(os.environ, NEWSLETTER_SENDGRID_URL=sendgrid.url, SENDGRID_API_KEY=sendgrid.api_key)
    process = subprocess.Popen([sys.executable, "-m", "newsletter", "send", "issue-1", "--yes", "--concurrency", "4"],
                               cwd=publication, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: len(sendgrid.mail_requests) == 4)
    process.send_signal(signal.SIGINT)
    _read_stderr_until(process, STOPPING)
    answer.set()
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert b"accepted       4,000" in stdout and b"not sent      10,000" in stdout, stdout
    assert status() == {"sent": 4000, "pending": 0, "failed": 0, "uncertain": 0, "not_sent": 10000}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["INT", "TERM", "HUP"])
def test_a_stop_signal_during_a_rate_limit_wait_stops_at_once(publication: Path, sendgrid: SendGridDouble,
                                                              signum: int) -> None:
    """SIGINT, SIGTERM or SIGHUP while waiting out a 429: the wait ends, nothing more is posted,
    the batch that got a definite 429 is not left uncertain, the exit status is 128 + the signal,
    and the next run sends to everyone once."""
    write_list(publication, generated(4500))
    sendgrid.script(too_many_requests(reset_in=100))  # within one wait: waited out, unless stopped
    process = _start_send(publication, sendgrid, "--concurrency", "1")
    wait_for(lambda: len(sendgrid.mail_requests) == 1)
    process.send_signal(signum)
    try:
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signum, stderr
    assert b"Traceback" not in stderr
    assert stderr.decode().endswith("interrupted: run `newsletter send issue-1` again to send to the rest\n")
    assert b"Nothing sent: issue-1 (" in stdout and b"accepted           0" in stdout
    assert len(sendgrid.mail_requests) == 1
    assert status() == {"sent": 0, "pending": 0, "failed": 0, "uncertain": 0, "not_sent": 4500}
    again = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert again.exit_code == 0, again.output
    assert sorted(sendgrid.accepted_recipients()) == [f"reader{i:06d}@example.org" for i in range(4500)]


def _batch_states(publication: Path) -> list[str]:
    """The states of the batches in the ledger, as a running send has committed them."""
    ledger = publication / "sent" / "issue-1.sqlite"
    if not ledger.exists():
        return []
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        return [state for (state,) in db.execute("SELECT state FROM batches ORDER BY id")]
    except sqlite3.OperationalError:  # the table is being made
        return []
    finally:
        db.close()


@pytest.mark.parametrize("concurrency", ["1", "3"])
def test_killed_while_waiting_out_a_429_the_rerun_reaches_that_batch(publication: Path, sendgrid: SendGridDouble,
                                                                     concurrency: str) -> None:
    """kill -9 while a batch waits out a 429 (Retry-After: 100): SendGrid refused it, so it was
    never delivered. It was left uncertain, and a plain re-run never reached those 1,000; now
    it is recorded as waiting, not in flight, and the re-run sends to them, nobody twice."""
    write_list(publication, generated(2500))
    sendgrid.script(Respond(429, {"Retry-After": "100"}))
    process = _start_send(publication, sendgrid, "--concurrency", concurrency)
    try:
        # With 3 at once, the other two batches are answered, and recorded, while one waits
        # (whichever reached the double first).
        waited = ["waiting"] if concurrency == "1" else ["accepted", "accepted", "waiting"]
        wait_for(lambda: sorted(_batch_states(publication)) == waited, seconds=60)
    finally:
        process.kill()
        process.communicate()
    rerun = run("send", "issue-1", "--yes")
    assert rerun.exit_code == 0, rerun.output
    assert "uncertain          0" in rerun.output
    counts = Counter(sendgrid.accepted_recipients())
    assert sorted(counts) == [f"reader{i:06d}@example.org" for i in range(2500)]
    assert max(counts.values()) == 1
    assert status() == {"sent": 2500, "pending": 0, "failed": 0, "uncertain": 0, "not_sent": 0}


def test_a_rate_limit_reset_hours_away_stops_at_once_saying_when(publication: Path,
                                                                 sendgrid: SendGridDouble) -> None:
    """429 with X-RateLimit-Reset three hours ahead: no silent waiting; the send stops, says
    when the limit resets and how to resume; nobody is failed or uncertain."""
    write_list(publication, generated(2500))
    limited = too_many_requests(reset_in=3 * 3600)
    sendgrid.script(limited)
    result = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert result.exit_code == 1
    reset = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(int(limited.headers["X-RateLimit-Reset"])))
    assert result.stderr.startswith(f"error: SendGrid's rate limit is used up (429) until {reset}, ")
    assert result.stderr.endswith("nothing more was posted: run `newsletter send issue-1` again after then "
                                  "for the rest\n")
    assert result.stderr.count("\n") == 1
    assert "not sent       2,500" in result.output
    assert len(sendgrid.mail_requests) == 1
    assert status() == {"sent": 0, "pending": 0, "failed": 0, "uncertain": 0, "not_sent": 2500}


@pytest.mark.parametrize("limited", [
    pytest.param(Respond(429, {"Retry-After": "0"}), id="retry-after-0"),
    pytest.param(Respond(429, {"X-RateLimit-Reset": "1000000000"}), id="reset-in-the-past"),
    pytest.param(Respond(429, {"Retry-After": "nan"}), id="retry-after-nan"),
    pytest.param(Respond(429, {"Retry-After": "inf"}), id="retry-after-inf"),
    pytest.param(Respond(429, {"Retry-After": "soon"}), id="retry-after-garbage"),
    pytest.param(Respond(429, {"X-RateLimit-Reset": "nan"}), id="reset-nan"),
])
def test_rate_limit_waits_are_never_shorter_than_the_backoff(sendgrid: SendGridDouble, limited: Respond) -> None:
    """A 429 that says "now" still waits the backoff of that attempt, growing, before posting again."""
    from newsletter.providers.sendgrid.retry import RetryPolicy, post_with_retries
    from newsletter.providers.sendgrid.transport import SendGridTransport
    from newsletter.sending.transport import PreparedBatch

    policy = RetryPolicy(backoff=0.5, max_backoff=8.0)
    waits: list[float] = []
    transport = SendGridTransport(sendgrid.url, sendgrid.api_key, 5.0)
    sendgrid.script(*[limited] * 4)
    body = json.dumps({"personalizations": [{"to": [{"email": "a@example.org"}]}],
                       "from": {"email": "me@example.org"}, "subject": "s",
                       "content": [{"type": "text/plain", "value": "x"}]}).encode()
    try:
        outcome = post_with_retries(transport, PreparedBatch(1, ["a@example.org"], body), policy,
                                    lambda seconds: waits.append(seconds) or False)
    finally:
        transport.close()
    assert outcome.state == "accepted" and len(sendgrid.mail_requests) == 5
    # wait(0) before each post asks whether the send is being stopped; the waits come between.
    assert waits[0::2] == [0] * 5
    assert [w >= 0.5 * 0.5 * 2 ** n for n, w in enumerate(waits[1::2])] == [True] * 4


def test_rate_limited_too_many_times_in_a_row_stops(publication: Path, sendgrid: SendGridDouble) -> None:
    """A cap on 429s in a row (a RetryPolicy setting): then a clear stop, nothing counted as sent."""
    capped = TerminalDouble(retry=quick_retries(max_rate_limited=4))
    write_list(publication, generated(1500))
    sendgrid.script(*[Respond(429, {"Retry-After": "0"})] * 10)
    result = run("send", "issue-1", "--yes", "--concurrency", "1", terminal=capped)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: SendGrid answered 429 (too many requests) 4 times in a row")
    assert result.stderr.count("\n") == 1 and "try again later" in result.stderr
    assert len(sendgrid.mail_requests) == 4 and sendgrid.accepted == []
    assert status() == {"sent": 0, "pending": 0, "failed": 1000, "uncertain": 0, "not_sent": 500}


def test_an_address_twice_is_counted_once_whatever_its_state(publication: Path, sendgrid: SendGridDouble) -> None:
    """Rows of one address in two cases: skipped or uncertain once, the other row a duplicate."""
    set_timeout(publication, 3)
    write_list(publication, [["a@example.org", "A", "", "subscribed"], ["b@example.org", "B", "", "subscribed"]])
    sendgrid.script(Stall(accept=False))
    assert run("send", "issue-1", "--yes").exit_code == 1  # both uncertain
    write_list(publication, [["a@example.org", "A", "", "subscribed"], ["A@Example.org", "A", "", "subscribed"],
                             ["b@example.org", "B", "", "subscribed"], ["c@example.org", "C", "", "subscribed"],
                             ["C@example.org", "C", "", "subscribed"]])
    second = run("send", "issue-1", "--yes")
    assert "uncertain          2  (no answer came)" in second.output
    assert second.output.count("  a@example.org\n") == 1
    assert "duplicates         2" in second.output
    third = run("send", "issue-1", "--yes")
    assert "skipped            1  (already sent)" in third.output
    assert "uncertain          2" in third.output and "duplicates         2" in third.output
    assert sendgrid.accepted_recipients() == ["c@example.org"]


def test_status_and_dry_run_during_a_live_send_call_in_flight_pending(publication: Path,
                                                                      sendgrid: SendGridDouble) -> None:
    """While a send waits for an answer its recipients are pending, not uncertain; once that
    process is dead they are uncertain. `status --uncertain --json` prints one JSON object."""
    write_list(publication, generated(2500))
    sendgrid.script(Stall(30.0, accept=True))
    process = _start_send(publication, sendgrid, "--concurrency", "1")
    try:
        wait_for(lambda: len(sendgrid.mail_requests) == 1)
        live = run("status", "issue-1", "--uncertain", "--json")
        assert json.loads(live.stdout) == {"sent": 0, "pending": 1000, "failed": 0, "uncertain": 0, "cancelled": 0,
                                           "not_sent": 1500, "scheduled_at": None, "batch_id": None,
                                           "uncertain_recipients": []}
        # Not reached yet, not stopped before: nothing to run again while it runs.
        assert "not sent       1,500  (the send running now has yet to reach them)" in run("status", "issue-1").stdout
        dry = run("send", "issue-1", "--dry-run")
        assert "pending        1,000  (in a request of the send running now)" in dry.output
        assert "uncertain          0" in dry.output and "would send     1,500" in dry.output
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    dead = json.loads(run("status", "issue-1", "--uncertain", "--json").stdout)
    assert dead["uncertain"] == 1000 and dead["pending"] == 0 and dead["not_sent"] == 1500
    assert dead["uncertain_recipients"] == [f"reader{i:06d}@example.org" for i in range(1000)]


def test_an_idle_connection_the_server_closed_is_not_reused(publication: Path, sendgrid: SendGridDouble) -> None:
    """The server closes the kept-alive connection after answering (as it closes idle ones): the
    send sees it is closed before reusing it and posts the next request on a new connection, so
    nothing is uncertain and nothing is posted twice."""
    write_list(publication, generated(1500))
    sendgrid.script(Accept(then_close=True))
    result = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert result.exit_code == 0, result.output
    assert len(sendgrid.mail_requests) == 2 and sendgrid.connections == 2
    assert sorted(sendgrid.accepted_recipients()) == [f"reader{i:06d}@example.org" for i in range(1500)]


@pytest.mark.parametrize("fault", [
    pytest.param(Drop(accept=True), id="closed-without-an-answer"),
    pytest.param(Cut(), id="reset-after-the-answer-began"),
])
def test_a_reused_connection_lost_after_the_request_is_uncertain(publication: Path, sendgrid: SendGridDouble,
                                                                 fault: Drop | Cut) -> None:
    """The second request, on the kept-alive connection the first one used, was processed and
    then the connection closed without an answer, or was reset after `HTTP/1.1 202` and a few
    header bytes. The connection looked alive, so the server had the request: uncertain, never
    posted again (retrying it once sent 2,000 duplicates out of 5,000)."""
    write_list(publication, generated(2500))
    sendgrid.script(Accept(), fault)
    result = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert result.exit_code == 1, result.output
    assert "uncertain      1,000  (no answer came)" in result.output
    assert len(sendgrid.mail_requests) == 3
    assert max(Counter(sendgrid.accepted_recipients()).values()) == 1
    assert len(sendgrid.accepted_recipients()) == 2500  # the double did accept the lost one
    assert status() == {"sent": 1500, "pending": 0, "failed": 0, "uncertain": 1000, "not_sent": 0}
    again = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert len(sendgrid.mail_requests) == 3 and again.exit_code == 1


def test_the_timeout_is_a_deadline_for_the_whole_answer(publication: Path, sendgrid: SendGridDouble) -> None:
    """An answer trickling in a byte at a time (each read well within the timeout) is cut off
    once the timeout has passed since the request: uncertain, not a request held for a minute."""
    set_timeout(publication, 2)
    write_list(publication, generated(1500))
    sendgrid.script(Trickle(interval=0.25, length=240))  # the whole answer would take a minute
    result = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert result.exit_code == 1, result.output
    assert "uncertain      1,000  (no answer came)" in result.output
    assert status() == {"sent": 500, "pending": 0, "failed": 0, "uncertain": 1000, "not_sent": 0}


def test_a_fresh_connection_dropped_after_the_request_is_uncertain(publication: Path,
                                                                   sendgrid: SendGridDouble) -> None:
    """A new connection closed after the whole body went out: SendGrid may have processed it,
    so its recipients are uncertain, not posted again; the other requests go on."""
    write_list(publication, generated(1500))
    sendgrid.script(Drop())
    result = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert result.exit_code == 1
    assert "uncertain      1,000  (no answer came)" in result.output
    assert len(sendgrid.mail_requests) == 2
    assert status() == {"sent": 500, "pending": 0, "failed": 0, "uncertain": 1000, "not_sent": 0}


@pytest.mark.parametrize("answer", [
    pytest.param(Respond(201, raw=b'{"ok": true}'), id="201"),
    pytest.param(Respond(204, raw=b""), id="204"),
])
def test_any_2xx_is_accepted(publication: Path, sendgrid: SendGridDouble, answer: Respond) -> None:
    """A 201 or 204 is SendGrid taking the request: recorded as sent, never posted again."""
    write_list(publication, generated(1500))
    sendgrid.script(answer)
    result = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert result.exit_code == 0, result.output
    assert len(sendgrid.mail_requests) == 2
    assert status()["sent"] == 1500
    assert run("send", "issue-1", "--yes", "--concurrency", "1").exit_code == 0 and len(sendgrid.mail_requests) == 2


def test_a_redirect_says_to_check_the_url(publication: Path, sendgrid: SendGridDouble) -> None:
    write_list(publication, generated(1500))
    sendgrid.script(Respond(302, {"Location": "https://login.example.net/"}, raw=b""))
    result = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: SendGrid's address answered 302, a redirect to https://login.example.net/, instead of an "
        "answer: this request was not sent; check NEWSLETTER_SENDGRID_URL (or a proxy between here and "
        "SendGrid)\n")
    assert len(sendgrid.mail_requests) == 1


def test_an_html_error_page_is_named_not_dumped(publication: Path, sendgrid: SendGridDouble) -> None:
    """A proxy's 503 page: the message gives its title, not a screenful of markup."""
    page = (b"<!DOCTYPE html>\n<html><head><title>503 Service\n Unavailable</title><style>body{}</style></head>"
            b"<body><h1>Service Unavailable</h1>" + b"<p>Try later.</p>" * 100 + b"</body></html>")
    sendgrid.script(*[Respond(503, {"Content-Type": "text/html"}, raw=page)] * 6)
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: SendGrid answered 503: an HTML page titled '503 Service Unavailable' instead of SendGrid's JSON "
        "(gave up after 6 attempts)")
    assert "<" not in result.stderr and result.stderr.count("\n") == 1


def test_a_key_in_a_long_error_is_hidden_before_the_message_is_cut(publication: Path,
                                                                   sendgrid: SendGridDouble) -> None:
    """A server's plain-text error quoting the key just before the 300th character: the key is
    hidden first and the message cut after, so no part of it reaches stderr or the ledger."""
    text = "x" * 230 + " Authorization: Bearer " + sendgrid.api_key + " was refused"  # the key spans 300
    sendgrid.script(Respond(400, raw=text.encode()))
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 1
    assert "Bearer ***" in result.stderr
    assert sendgrid.api_key[:12] not in result.stderr
    for path in files_under(publication):
        assert sendgrid.api_key[:12].encode() not in path.read_bytes(), path


def test_a_failed_proof_names_the_proof_command(publication: Path, sendgrid: SendGridDouble) -> None:
    """Following a proof's advice must send the proof again, not the issue to the whole list."""
    sendgrid.script(*[Respond(503)] * 6)
    result = run("send", "issue-1", "--yes", "--to", "me@example.net")
    assert result.exit_code == 1
    assert result.stderr.endswith(
        "run `newsletter send issue-1 --to me@example.net` again later for the rest\n"), result.stderr
