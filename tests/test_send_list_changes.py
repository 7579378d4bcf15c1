"""A list that changes during a send: someone who unsubscribes while it runs is not mailed.

The send read its list once, and 7 to 10 of 40 people unsubscribed during a send were
still posted a second or more later. Now, when the list file changes, the statuses are
read again before the next request; when it does not, a request costs one stat().
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import Result

from newsletter.subscribers.store import subscribed_keys
from tests.helpers import run
from tests.send_helpers import generated, send_in_background, write_list
from tests.sendgrid_double import SendGridDouble, Stall
from tests.terminal_double import TerminalDouble

pytestmark = pytest.mark.usefixtures("published_site")

LEAVERS = ["reader001500@example.org", "reader002999@example.org"]  # in the second and the last request


def test_readers_who_unsubscribe_during_a_send_are_not_mailed(publication: Path, sendgrid: SendGridDouble) -> None:
    write_list(publication, generated(3000))
    arrived, release = threading.Event(), threading.Event()
    sendgrid.script(Stall(release=release, arrived=arrived))  # the first request waits for the test
    results: list[Result] = []
    thread = send_in_background(results, "--concurrency", "1")
    try:
        assert arrived.wait(120), "the first request never came"
        # The second request is built by now, waiting for the first one's answer.
        for address in LEAVERS:
            removed = subprocess.run([sys.executable, "-m", "newsletter", "subscribers", "remove", address],
                                     capture_output=True, text=True, check=False)
            assert removed.returncode == 0, removed.stderr
    finally:
        release.set()
        thread.join(120)
    [result] = results
    assert result.exit_code == 0, result.output
    accepted = sendgrid.accepted_recipients()
    assert [address for address in LEAVERS if address in accepted] == []
    assert len(accepted) == 2998 and len(set(accepted)) == 2998
    assert "  left               2  (unsubscribed during the send: not mailed)" in result.stdout
    assert result.stdout.endswith("Not mailed: 2 unsubscribed or left the list during the send:\n"
                                  + "".join(f"  {address}\n" for address in LEAVERS))


def test_an_unchanged_list_is_not_read_again(publication: Path, sendgrid: SendGridDouble) -> None:
    write_list(publication, generated(2500))
    readings: list[Path] = []

    def reread(path: Path) -> set[str]:
        readings.append(path)
        return subscribed_keys(path)

    result = run("send", "issue-1", "--yes", "--concurrency", "1", terminal=TerminalDouble(reread_list=reread))
    assert result.exit_code == 0, result.output
    assert (len(sendgrid.accepted_recipients()), readings) == (2500, [])


@pytest.mark.parametrize("in_place", [False, True], ids=["renamed-over", "appended-in-place"])
def test_a_list_that_cannot_be_read_again_stops_the_send_in_one_line(publication: Path, sendgrid: SendGridDouble,
                                                                     in_place: bool) -> None:
    path = write_list(publication, generated(2500))
    arrived, release = threading.Event(), threading.Event()
    sendgrid.script(Stall(release=release, arrived=arrived))
    results: list[Result] = []
    thread = send_in_background(results, "--concurrency", "1")
    try:
        assert arrived.wait(120), "the first request never came"
        # A hand edit gone wrong: appended in place (the send streams that very file), or saved
        # as most editors save (a new file renamed over the list).
        if in_place:
            with path.open("a", encoding="utf-8") as handle:
                handle.write("late@example.org,,,maybe,,,\n")
        else:
            edited = path.with_name("main.csv.edited")
            edited.write_text(path.read_text(encoding="utf-8") + "late@example.org,,,maybe,,,\n", encoding="utf-8")
            edited.replace(path)
    finally:
        release.set()
        thread.join(120)
    [result] = results
    assert result.exit_code == 1
    assert result.stderr == (
        "error: subscribers/main.csv:2502: unknown status 'maybe' (one of subscribed, unsubscribed, bounced, "
        "complained): the list changed during the send and cannot be read again; the send stopped and posted "
        "nothing more: fix it and run `newsletter send issue-1` again\n")
    assert len(sendgrid.accepted_recipients()) == 1000  # the first request only
    status = json.loads(run("status", "issue-1", "--json").stdout)
    assert (status["sent"], status["uncertain"]) == (1000, 0)  # its answer is recorded
