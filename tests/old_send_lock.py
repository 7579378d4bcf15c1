"""The lock an older newsletter takes while it sends an issue, run as a process of its own.

Versions before the ledger moved to `sent/` (commit 380f5e3) kept it in `build/ISSUE/` and
locked `build/ISSUE/send.lock` with exactly this: `os.open(O_RDWR | O_CREAT)` and
`fcntl.flock(LOCK_EX | LOCK_NB)`, refusing to send when the flock is taken.

`python -m tests.old_send_lock PATH` prints `locked` once it holds the lock, then holds it
until its standard input closes; it prints `refused` and exits when another holds it.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path


def main(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        print("refused", flush=True)
        return 0
    print("locked", flush=True)
    sys.stdin.read()  # held until the test closes our input
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
