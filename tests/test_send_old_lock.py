"""An older newsletter (ledger and lock in build/ISSUE/) and this one never send an issue at once:
each refuses while the other holds its lock. The older version's lock is taken by a process of its
own, with the flock that version used (tests/old_send_lock.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import run
from tests.send_helpers import generated, write_list
from tests.sendgrid_double import SendGridDouble, Stall

OLD_LOCK_HOLDER = Path(__file__).with_name("old_send_lock.py")

pytestmark = pytest.mark.usefixtures("published_site")  # a real send first checks the issue is online


def old_version_lock(root: Path, issue: str = "issue-1") -> subprocess.Popen[str]:
    """A process taking build/ISSUE/send.lock as an older newsletter's send does."""
    return subprocess.Popen([sys.executable, str(OLD_LOCK_HOLDER), str(root / "build" / issue / "send.lock")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


@contextmanager
def older_version_sending(root: Path) -> Iterator[None]:
    """While this runs, an older version holds its lock on issue-1 (as it does while it sends)."""
    holder = old_version_lock(root)
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "locked"  # waits until it holds the lock
        yield
    finally:
        holder.stdin.close()  # it lets go and exits
        holder.wait()


def test_a_send_is_refused_while_an_older_version_sends_the_issue(publication: Path, sendgrid: SendGridDouble) -> None:
    with older_version_sending(publication):
        result = run("send", "issue-1", "--yes")
    assert result.exit_code == 1, result.output
    assert result.stderr == ("error: another `newsletter send issue-1` is running, by an older version of newsletter "
                             "(build/issue-1/send.lock is locked); wait for it to finish\n")
    assert sendgrid.mail_requests == []
    assert not (publication / "sent" / "issue-1.sqlite").exists()
    # Once it is done, the send goes ahead.
    after = run("send", "issue-1", "--yes")
    assert after.exit_code == 0, after.output
    assert len(sendgrid.accepted_recipients()) == 5


def test_status_leaves_the_ledger_of_an_older_version_that_is_sending(publication: Path,
                                                                       sendgrid: SendGridDouble) -> None:
    """The older version writes build/issue-1/ledger.sqlite while it sends: status does not move it."""
    assert run("send", "issue-1", "--yes").exit_code == 0
    old = publication / "build" / "issue-1" / "ledger.sqlite"
    shutil.move(publication / "sent" / "issue-1.sqlite", old)  # as the older version keeps it
    with older_version_sending(publication):
        run("status", "issue-1")
        assert old.is_file() and not (publication / "sent" / "issue-1.sqlite").exists()
    assert run("status", "issue-1").exit_code == 0  # now idle: moved to sent/
    assert not old.exists() and (publication / "sent" / "issue-1.sqlite").is_file()


def test_an_older_version_is_refused_while_a_send_is_in_flight(publication: Path, sendgrid: SendGridDouble) -> None:
    """A send waiting for SendGrid's answer holds build/issue-1/send.lock too, so an older version
    trying to send the issue then finds it locked (and refuses, as it always did)."""
    write_list(publication, generated(10))
    release = threading.Event()
    sendgrid.script(Stall(300.0, release=release))
    env = dict(os.environ, NEWSLETTER_SENDGRID_URL=sendgrid.url, SENDGRID_API_KEY=sendgrid.api_key)
    sending = subprocess.Popen([sys.executable, "-m", "newsletter", "send", "issue-1", "--yes"],
                               cwd=publication, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not sendgrid.mail_requests:  # the request is posted: the send holds its locks
            assert sending.poll() is None, sending.communicate()
            assert time.monotonic() < deadline, "the send posted nothing"
            time.sleep(0.02)
        older = old_version_lock(publication)
        out, _ = older.communicate("")
        assert out.strip() == "refused"
    finally:
        release.set()
    out_b, err_b = sending.communicate(timeout=300)
    assert sending.returncode == 0, out_b.decode() + err_b.decode()
    assert len(sendgrid.accepted_recipients()) == 10
    # and the lock is let go at the end: an older version could take it now
    older = old_version_lock(publication)
    out, _ = older.communicate("")
    assert out.strip() == "locked"
