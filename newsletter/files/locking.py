"""The one file lock: `fcntl.flock` on a lock file, held by an open descriptor.

Used by a list's writers (`subscribers/<list>.lock`, one read-modify-write at a time)
and by a send (`send.lock`, one send of an issue at a time). An flock belongs to the
open file, so the kernel drops it when the holder closes it or dies: a killed process
never leaves a lock that has to be cleared by hand.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class FileLock:
    """An exclusive lock on `path` (created, with its folder, when missing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, blocking: bool = True) -> bool:
        """Take the lock, waiting for it unless not `blocking`; whether it is held now.

        OSErrors of creating the lock file propagate, for the caller to word.
        """
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:  # Ctrl-C while waiting: nothing is held
            os.close(fd)
            raise
        self._fd = fd
        return True

    def note(self, text: str) -> None:
        """Replace what the lock file says with `text` (held only; a hint, so not fsynced)."""
        if self._fd is None:
            return
        data = text.encode()
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, data, 0)
        except OSError:
            pass  # a full disk: the ledger is the record; the note is only a trace of it

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
