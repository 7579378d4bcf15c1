"""The list store under real processes: two imports at once, a process killed mid-write.

Both tests pause a writer with `tests/paused_writer.py`: a writer that has written and
fsynced the new list, still holding the lock, creates the marker file and waits until it
is deleted. That gives the tests a moment known for certain to be "in the middle of a
write", without sleeping and hoping, and without a hook in the program's write path.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.subscriber_helpers import MAIN_LIST, rows, write

REPO = Path(__file__).resolve().parents[1]
WAIT = 30.0  # seconds: a generous bound on how long a step may take on a busy machine


def start(*args: str, pause_marker: Path | None = None) -> subprocess.Popen[str]:
    """`python -m newsletter ARGS...` as a separate process in the current directory."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    program = ["-m", "newsletter"] if pause_marker is None else ["-m", "tests.paused_writer", str(pause_marker)]
    return subprocess.Popen([sys.executable, *program, *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(marker: Path, process: subprocess.Popen[str]) -> None:
    """Until `process` has created `marker` (it is then paused mid-write, holding the lock)."""
    deadline = time.monotonic() + WAIT
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(f"the process ended before pausing: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the process never reached the pause before replacing the list")
        time.sleep(0.01)


def people(path: Path, prefix: str, count: int) -> Path:
    return write(path, "email,first_name\n" + "".join(f"{prefix}{i}@example.org,P{i}\n" for i in range(count)))


def test_two_imports_at_once_lose_no_rows(publication: Path) -> None:
    """B starts while A is mid-write holding the lock; B must wait, then merge into A's result."""
    first = people(publication / "first.csv", "first", 300)
    second = people(publication / "second.csv", "second", 300)
    marker = publication / "paused"
    a = start("subscribers", "import", str(first), pause_marker=marker)
    wait_for(marker, a)
    b = start("subscribers", "import", str(second))
    # B cannot finish while A holds the lock. (Without the lock B would finish here and
    # A's rename would then throw B's rows away.)
    with pytest.raises(subprocess.TimeoutExpired):
        b.wait(timeout=1.0)
    marker.unlink()
    assert a.wait(timeout=WAIT) == 0, a.communicate()
    assert b.wait(timeout=WAIT) == 0, b.communicate()
    listed = rows()
    assert len(listed) == 7 + 600
    assert {f"first{i}@example.org" for i in range(300)} <= set(listed)
    assert {f"second{i}@example.org" for i in range(300)} <= set(listed)


def test_process_killed_mid_write_leaves_the_old_list_intact(publication: Path) -> None:
    before = MAIN_LIST.read_bytes()
    marker = publication / "paused"
    process = start("subscribers", "import", str(people(publication / "many.csv", "many", 500)),
                    pause_marker=marker)
    wait_for(marker, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=WAIT)
    assert MAIN_LIST.read_bytes() == before
    leftovers = list(MAIN_LIST.parent.glob("main.csv.tmp*"))
    assert leftovers, "the killed writer should have left its temporary file behind"

    # The next write works, and clears the dead writer's temporary file.
    later = start("subscribers", "add", "after@example.org")
    assert later.wait(timeout=WAIT) == 0, later.communicate()
    assert "after@example.org" in rows() and len(rows()) == 8
    assert not list(MAIN_LIST.parent.glob("main.csv.tmp*"))
