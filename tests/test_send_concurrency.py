"""Requests in flight at once (issue 11): the default, newsletter.yaml, --concurrency, progress,
and exactly-once while several requests wait for their answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from newsletter.config import DEFAULT_CONCURRENCY, MAX_CONCURRENCY
from tests.helpers import run, wait_for
from tests.send_helpers import generated, write_list
from tests.sendgrid_double import SendGridDouble, Stall
from tests.terminal_double import TerminalDouble, ticking_clock


def status() -> dict[str, int]:
    """The ledger's counts (`status --json` also says when a scheduled send goes)."""
    shown = json.loads(run("status", "issue-1", "--json").stdout)
    return {key: shown[key] for key in ("sent", "pending", "failed", "uncertain")}


def set_concurrency(root: Path, value: object) -> None:
    config = root / "newsletter.yaml"
    config.write_text(config.read_text().replace("  timeout: 30", f"  timeout: 30\n  concurrency: {value}"))


@pytest.mark.parametrize(("configured", "option", "in_flight"), [
    pytest.param(None, None, DEFAULT_CONCURRENCY, id="default"),
    pytest.param(2, None, 2, id="newsletter.yaml"),
    pytest.param(2, "3", 3, id="option-over-yaml"),
])
def test_requests_in_flight_each_recorded_before_it_is_posted(publication: Path, sendgrid: SendGridDouble,
                                                              configured: int | None, option: str | None,
                                                              in_flight: int) -> None:
    """With N requests held unanswered, the send posts no more than N, each one already in the
    ledger (pending) before it reached SendGrid; once answered, everyone has it once."""
    total = in_flight * 1000 + 2500  # then two requests more of 1,000 and one of 500
    write_list(publication, generated(total))
    if configured is not None:
        set_concurrency(publication, configured)
    release = threading.Event()
    sendgrid.script(*[Stall(300.0, release=release) for _ in range(in_flight)])
    env = dict(os.environ, NEWSLETTER_SENDGRID_URL=sendgrid.url, SENDGRID_API_KEY=sendgrid.api_key)
    process = subprocess.Popen([sys.executable, "-m", "newsletter", "send", "issue-1", "--yes",
                                *(["--concurrency", option] if option else [])],
                               cwd=publication, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: len(sendgrid.mail_requests) == in_flight)
        # None answered, so no request more can be posted: the ledger holds exactly these.
        assert status() == {"sent": 0, "pending": in_flight * 1000, "failed": 0, "uncertain": 0}
    finally:
        release.set()
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, out.decode() + err.decode()
    assert len(sendgrid.mail_requests) == in_flight + 3
    assert sendgrid.connections == in_flight  # the later requests reuse the idle connections
    assert max(Counter(sendgrid.accepted_recipients()).values()) == 1
    assert status() == {"sent": total, "pending": 0, "failed": 0, "uncertain": 0}


def test_killed_with_requests_in_flight_nobody_gets_two(publication: Path, sendgrid: SendGridDouble) -> None:
    """SIGKILL while four requests wait for their answer (SendGrid takes them all): the four are
    uncertain, never posted again, and the rerun posts only the other 5,000."""
    write_list(publication, generated(9000))
    release = threading.Event()
    sendgrid.script(*[Stall(300.0, release=release) for _ in range(4)])
    env = dict(os.environ, NEWSLETTER_SENDGRID_URL=sendgrid.url, SENDGRID_API_KEY=sendgrid.api_key)
    process = subprocess.Popen([sys.executable, "-m", "newsletter", "send", "issue-1", "--yes", "--concurrency", "4"],
                               cwd=publication, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: len(sendgrid.mail_requests) == 4)
    process.kill()
    process.wait()
    release.set()  # the double accepted all four: SendGrid would have sent them
    rerun = run("send", "issue-1", "--yes")
    assert rerun.exit_code == 1, rerun.output  # the four stay uncertain
    counts = Counter(sendgrid.accepted_recipients())
    assert max(counts.values()) == 1 and len(counts) == 9000
    assert status() == {"sent": 5000, "pending": 0, "failed": 0, "uncertain": 4000}


def test_progress_says_how_many_requests_are_in_flight(publication: Path, sendgrid: SendGridDouble) -> None:
    """Without a terminal the progress line, here printed at every step, names the requests in flight."""
    write_list(publication, generated(2500))
    result = run("send", "issue-1", "--yes", terminal=TerminalDouble(clock=ticking_clock(60.0)))
    assert result.exit_code == 0, result.output
    assert "... 0 accepted, 1 request so far, 1 request in flight" in result.output
    counts = [int(line.rsplit(", ", 1)[1].split()[0]) for line in result.output.splitlines()
              if line.startswith("... ")]
    assert max(counts) <= DEFAULT_CONCURRENCY and counts[-1] == 0


@pytest.mark.parametrize("value", [0, 17, "four", 2.5, True])
def test_a_concurrency_that_is_no_whole_number_from_1_to_16_is_refused(publication: Path, value: object) -> None:
    set_concurrency(publication, value)
    result = run("send", "issue-1", "--dry-run")
    assert result.exit_code == 1
    assert "sendgrid.concurrency must be a whole number from 1 to 16" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def test_the_option_takes_what_newsletter_yaml_takes(publication: Path) -> None:
    """--help states the default; the option's range is the config's (cli.py writes both out)."""
    assert f"else {DEFAULT_CONCURRENCY}]" in " ".join(run("send", "--help").output.split())
    assert run("send", "issue-1", "--dry-run", "--concurrency", str(MAX_CONCURRENCY)).exit_code == 0
    assert run("send", "issue-1", "--dry-run", "--concurrency", str(MAX_CONCURRENCY + 1)).exit_code == 2
