"""`newsletter send` when the network or SendGrid misbehaves: retried, stopped, or uncertain."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.send_helpers import generated, newsletter, quick_retries, set_timeout, write_list  # noqa: F401
from tests.sendgrid_double import Accept, Drop, Respond, SendGridDouble, Stall, too_many_requests

# A real send first checks that the issue is online: here it is, built and served locally.
pytestmark = pytest.mark.usefixtures("quick_retries", "published_site")


def status(*extra: str) -> dict[str, int]:
    return json.loads(newsletter("status", "issue-1", "--json", *extra).stdout)


def test_rate_limited_then_accepted(publication: Path, sendgrid: SendGridDouble) -> None:
    """429 with X-RateLimit-Reset: wait, post again, each recipient once."""
    limited = too_many_requests(reset_in=1)
    sendgrid.script(limited)
    result = newsletter("send", "issue-1", "--yes")
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
    result = newsletter("send", "issue-1", "--yes")
    assert result.exit_code == 0, result.output
    assert len(sendgrid.mail_requests) == 2 + len(faults)
    assert sorted(sendgrid.accepted_recipients()) == [f"reader{i:06d}@example.org" for i in range(1500)]


def test_server_errors_that_persist_stop_the_send(publication: Path, sendgrid: SendGridDouble) -> None:
    """Bounded attempts, then a clear stop; the next run sends to those left."""
    write_list(publication, generated(2500))
    sendgrid.script(*[Respond(503)] * 6)
    result = newsletter("send", "issue-1", "--yes")
    assert result.exit_code == 1
    assert "error: SendGrid answered 503: scripted 503 (gave up after 6 attempts)" in result.stderr
    assert "not sent       1,500" in result.output
    assert sendgrid.accepted == []
    assert status() == {"sent": 0, "pending": 0, "failed": 1000, "uncertain": 0}
    again = newsletter("send", "issue-1", "--yes")
    assert again.exit_code == 0, again.output
    assert sorted(sendgrid.accepted_recipients()) == [f"reader{i:06d}@example.org" for i in range(2500)]


def test_wrong_key_stops_with_sendgrids_message(publication: Path, sendgrid: SendGridDouble,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    write_list(publication, generated(2500))
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.not-the-key")
    result = newsletter("send", "issue-1", "--yes")
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
    result = newsletter("send", "issue-1", "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: SendGrid refused the request (400: personalizations.2.to: Does not contain a valid address.)")
    assert ": SendGrid refused the recipient reader000002@example.org: fix or remove it in the list, " \
           "then send again" in result.stderr
    assert result.stderr.count("\n") == 1
    assert len(sendgrid.mail_requests) == 1


def test_stalled_answer_is_uncertain_until_retried(publication: Path, sendgrid: SendGridDouble) -> None:
    """No answer within sendgrid.timeout: not posted again, listed, exit 1; --retry-uncertain sends."""
    set_timeout(publication, 0.5)
    write_list(publication, generated(1500))
    sendgrid.script(Stall(2.0, accept=False))
    result = newsletter("send", "issue-1", "--yes")
    assert result.exit_code == 1
    assert "uncertain      1,000  (no answer came)" in result.output
    assert "  reader000000@example.org\n" in result.output and "--retry-uncertain" in result.output
    assert len(sendgrid.mail_requests) == 2
    assert status() == {"sent": 500, "pending": 0, "failed": 0, "uncertain": 1000}
    listed = newsletter("status", "issue-1", "--uncertain").stdout.splitlines()
    assert listed[4:] == [f"reader{i:06d}@example.org" for i in range(1000)]
    again = newsletter("send", "issue-1", "--yes")
    assert again.exit_code == 1 and len(sendgrid.mail_requests) == 2
    retried = newsletter("send", "issue-1", "--yes", "--retry-uncertain")
    assert retried.exit_code == 0, retried.output
    assert sorted(sendgrid.accepted_recipients()) == [f"reader{i:06d}@example.org" for i in range(1500)]
    assert status() == {"sent": 1500, "pending": 0, "failed": 0, "uncertain": 0}


def test_concurrent_requests_keep_the_ledger_exact(publication: Path, sendgrid: SendGridDouble) -> None:
    write_list(publication, generated(6500))
    sendgrid.script(Respond(500))
    result = newsletter("send", "issue-1", "--yes", "--concurrency", "3")
    assert result.exit_code == 0, result.output
    assert sorted(sendgrid.accepted_recipients()) == [f"reader{i:06d}@example.org" for i in range(6500)]
    assert sendgrid.connections <= 3
    assert status()["sent"] == 6500


def _start_send(publication: Path, sendgrid: SendGridDouble) -> subprocess.Popen[bytes]:
    env = dict(os.environ, NEWSLETTER_SENDGRID_URL=sendgrid.url, SENDGRID_API_KEY=sendgrid.api_key)
    return subprocess.Popen([sys.executable, "-m", "newsletter", "send", "issue-1", "--yes"],
                            cwd=publication, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(condition, seconds: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_killed_mid_send_and_rerun_nobody_gets_two(publication: Path, sendgrid: SendGridDouble) -> None:
    """SIGKILL while a request is in flight (SendGrid took it): the rerun sends the rest, not it."""
    write_list(publication, generated(4500))
    sendgrid.script(Respond(202, {"X-Message-Id": "first"}), Stall(30.0, accept=True))
    process = _start_send(publication, sendgrid)
    _wait_for(lambda: len(sendgrid.mail_requests) == 2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    rerun = newsletter("send", "issue-1", "--yes")
    assert rerun.exit_code == 1  # the killed request stays uncertain
    counts = Counter(sendgrid.accepted_recipients())
    assert max(counts.values()) == 1
    # The first request's scripted 202 does not count at the double; the second one does.
    assert len(counts) == 3500 and "reader001000@example.org" in counts
    assert "reader000000@example.org" not in counts
    assert "uncertain      1,000" in rerun.output
    assert status() == {"sent": 3500, "pending": 0, "failed": 0, "uncertain": 1000}


def test_killed_at_any_moment_nobody_gets_two(publication: Path, sendgrid: SendGridDouble) -> None:
    """SIGKILL at an arbitrary point of a running send; then rerun: still nobody twice."""
    write_list(publication, generated(8000))
    process = _start_send(publication, sendgrid)
    _wait_for(lambda: len(sendgrid.accepted) >= 3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    newsletter("send", "issue-1", "--yes")
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
    result = newsletter("send", "issue-1", "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot connect to 127.0.0.1:{port}")
    assert "(gave up after 6 attempts)" in result.stderr and result.stderr.count("\n") == 1
    assert status() == {"sent": 0, "pending": 0, "failed": 5, "uncertain": 0}


def test_ctrl_c_waits_for_the_request_in_flight(publication: Path, sendgrid: SendGridDouble) -> None:
    """SIGINT while a request is in flight: its answer is still recorded, so nothing is uncertain."""
    write_list(publication, generated(3000))
    sendgrid.script(Stall(1.0, accept=True))
    process = _start_send(publication, sendgrid)
    _wait_for(lambda: len(sendgrid.mail_requests) == 1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stderr
    assert status() == {"sent": 1000, "pending": 0, "failed": 0, "uncertain": 0}
    assert newsletter("send", "issue-1", "--yes").exit_code == 0
    assert sorted(sendgrid.accepted_recipients()) == [f"reader{i:06d}@example.org" for i in range(3000)]


def test_ctrl_c_during_a_rate_limit_wait_stops_at_once(publication: Path, sendgrid: SendGridDouble) -> None:
    """SIGINT while waiting out a 429 (reset an hour ahead): the wait ends, nothing more is posted,
    the batch never accepted is not left uncertain, and the next run sends to everyone once."""
    write_list(publication, generated(4500))
    sendgrid.script(too_many_requests(reset_in=3600))
    process = _start_send(publication, sendgrid)
    _wait_for(lambda: len(sendgrid.mail_requests) == 1)
    process.send_signal(signal.SIGINT)
    try:
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    assert b"Traceback" not in stderr
    assert stderr.decode().endswith("interrupted: run `newsletter send issue-1` again to send to the rest\n")
    assert b"Nothing sent: issue-1 (" in stdout and b"accepted           0" in stdout
    assert len(sendgrid.mail_requests) == 1
    assert status() == {"sent": 0, "pending": 0, "failed": 0, "uncertain": 0}
    again = newsletter("send", "issue-1", "--yes")
    assert again.exit_code == 0, again.output
    assert sorted(sendgrid.accepted_recipients()) == [f"reader{i:06d}@example.org" for i in range(4500)]


@pytest.mark.parametrize("limited", [
    pytest.param(Respond(429, {"Retry-After": "0"}), id="retry-after-0"),
    pytest.param(Respond(429, {"X-RateLimit-Reset": "1000000000"}), id="reset-in-the-past"),
])
def test_rate_limit_waits_are_never_shorter_than_the_backoff(sendgrid: SendGridDouble, limited: Respond) -> None:
    """A 429 that says "now" still waits the backoff of that attempt, growing, before posting again."""
    from newsletter.sending.retry import RetryPolicy, post_with_retries
    from newsletter.sending.sendgrid import SendGridTransport
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


def test_rate_limited_too_many_times_in_a_row_stops(publication: Path, sendgrid: SendGridDouble,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A cap on 429s in a row (a RetryPolicy setting): then a clear stop, nothing counted as sent."""
    from newsletter.sending import send as send_module
    from newsletter.sending.retry import RetryPolicy

    monkeypatch.setattr(send_module, "RetryPolicy",
                        lambda: RetryPolicy(backoff=0.01, max_backoff=0.05, max_rate_limited=4))
    write_list(publication, generated(1500))
    sendgrid.script(*[Respond(429, {"Retry-After": "0"})] * 10)
    result = newsletter("send", "issue-1", "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: SendGrid answered 429 (too many requests) 4 times in a row")
    assert result.stderr.count("\n") == 1 and "try again later" in result.stderr
    assert len(sendgrid.mail_requests) == 4 and sendgrid.accepted == []
    assert status() == {"sent": 0, "pending": 0, "failed": 1000, "uncertain": 0}


def test_an_address_twice_is_counted_once_whatever_its_state(publication: Path, sendgrid: SendGridDouble) -> None:
    """Rows of one address in two cases: skipped or uncertain once, the other row a duplicate."""
    set_timeout(publication, 0.5)
    write_list(publication, [["a@example.org", "A", "", "subscribed"], ["b@example.org", "B", "", "subscribed"]])
    sendgrid.script(Stall(2.0, accept=False))
    assert newsletter("send", "issue-1", "--yes").exit_code == 1  # both uncertain
    write_list(publication, [["a@example.org", "A", "", "subscribed"], ["A@Example.org", "A", "", "subscribed"],
                             ["b@example.org", "B", "", "subscribed"], ["c@example.org", "C", "", "subscribed"],
                             ["C@example.org", "C", "", "subscribed"]])
    second = newsletter("send", "issue-1", "--yes")
    assert "uncertain          2  (no answer came)" in second.output
    assert second.output.count("  a@example.org\n") == 1
    assert "duplicates         2" in second.output
    third = newsletter("send", "issue-1", "--yes")
    assert "skipped            1  (already sent)" in third.output
    assert "uncertain          2" in third.output and "duplicates         2" in third.output
    assert sendgrid.accepted_recipients() == ["c@example.org"]


def test_status_and_dry_run_during_a_live_send_call_in_flight_pending(publication: Path,
                                                                      sendgrid: SendGridDouble) -> None:
    """While a send waits for an answer its recipients are pending, not uncertain; once that
    process is dead they are uncertain. `status --uncertain --json` prints one JSON object."""
    write_list(publication, generated(2500))
    sendgrid.script(Stall(30.0, accept=True))
    process = _start_send(publication, sendgrid)
    try:
        _wait_for(lambda: len(sendgrid.mail_requests) == 1)
        live = newsletter("status", "issue-1", "--uncertain", "--json")
        assert json.loads(live.stdout) == {"sent": 0, "pending": 1000, "failed": 0, "uncertain": 0,
                                           "uncertain_recipients": []}
        dry = newsletter("send", "issue-1", "--dry-run")
        assert "pending        1,000  (in a request of the send running now)" in dry.output
        assert "uncertain          0" in dry.output and "would send     1,500" in dry.output
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    dead = json.loads(newsletter("status", "issue-1", "--uncertain", "--json").stdout)
    assert dead["uncertain"] == 1000 and dead["pending"] == 0
    assert dead["uncertain_recipients"] == [f"reader{i:06d}@example.org" for i in range(1000)]


def test_a_kept_alive_connection_dropped_without_an_answer_is_retried(publication: Path,
                                                                      sendgrid: SendGridDouble) -> None:
    """The second request, on the connection the first one used, dropped: the server never acted
    on it (the keep-alive race), so it is posted again, on a new connection."""
    write_list(publication, generated(1500))
    sendgrid.script(Accept(), Drop())
    result = newsletter("send", "issue-1", "--yes")
    assert result.exit_code == 0, result.output
    assert len(sendgrid.mail_requests) == 3 and sendgrid.connections == 2
    assert sorted(sendgrid.accepted_recipients()) == [f"reader{i:06d}@example.org" for i in range(1500)]


def test_a_fresh_connection_dropped_after_the_request_is_uncertain(publication: Path,
                                                                   sendgrid: SendGridDouble) -> None:
    """A new connection closed after the whole body went out: SendGrid may have processed it,
    so its recipients are uncertain, not posted again; the other requests go on."""
    write_list(publication, generated(1500))
    sendgrid.script(Drop())
    result = newsletter("send", "issue-1", "--yes")
    assert result.exit_code == 1
    assert "uncertain      1,000  (no answer came)" in result.output
    assert len(sendgrid.mail_requests) == 2
    assert status() == {"sent": 500, "pending": 0, "failed": 0, "uncertain": 1000}
