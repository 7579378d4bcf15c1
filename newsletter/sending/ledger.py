"""The ledger of a send: which recipients were posted in which request, and what came of it.

SQLite in `build/ISSUE/ledger.sqlite`, WAL. A request (batch) is written with its
recipients, state `sending`, and committed *before* it is posted; SendGrid's 202
marks it `accepted` with its X-Message-Id. A recipient's state is the state of the
last batch that holds it: a recipient of a failed or uncertain request that is
posted again appears in a later batch. The recipients of a batch are one text
column (one address a line), so recording 1,000 of them is one row, not 1,000
index updates. A `sending` batch found by whoever holds the issue's `SendLock` (a
send, or a `status` or dry run while no send runs) belongs to a process that died
with it in flight: `recover()` makes it `uncertain`, the one place that does. While
a send holds the lock, its `sending` batches are pending.

`synchronous=FULL`: each commit is on disk before the next request goes out, so not
even a power loss can lose a batch that was posted. It costs two fsyncs per request
of 1,000 recipients, which the benchmark does not notice.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from newsletter.errors import SendError, where
from newsletter.locking import FileLock

SENDING, ACCEPTED, FAILED, UNCERTAIN = "sending", "accepted", "failed", "uncertain"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    size INTEGER NOT NULL,
    recipients TEXT NOT NULL,
    message_id TEXT,
    status INTEGER,
    error TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
"""


@dataclass(frozen=True)
class LedgerCounts:
    """Recipients by state: `pending` are in a request still in flight."""

    sent: int = 0
    pending: int = 0
    failed: int = 0
    uncertain: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Ledger:
    """One issue's ledger; `Ledger(None)` keeps it in memory (dry runs, proofs)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path) if path else ":memory:", isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise SendError(f"{where(path or ':memory:')}: cannot open the send ledger: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def recover(self) -> int:
        """Turn batches left `sending` by a dead process into `uncertain`; how many recipients."""
        with self._db:
            (count,) = self._db.execute(
                "SELECT coalesce(sum(size), 0) FROM batches WHERE state = ?", (SENDING,)).fetchone()
            self._db.execute(
                "UPDATE batches SET state = ?, error = 'the process stopped before an answer came', "
                "updated = ? WHERE state = ?", (UNCERTAIN, time.time(), SENDING))
        return count

    def states(self) -> dict[str, str]:
        """Each recipient's state: that of the last batch it was posted in."""
        latest: dict[str, str] = {}
        for state, recipients in self._db.execute("SELECT state, recipients FROM batches ORDER BY id"):
            latest.update(dict.fromkeys(recipients.split("\n"), state))
        return latest

    def keys_in(self, *states: str) -> set[str]:
        """The recipients whose last request is in one of `states`."""
        return {key for key, state in self.states().items() if state in states}

    def record(self, keys: list[str]) -> int:
        """Write a batch and its recipients as in flight, durably, before it is posted."""
        now = time.time()
        with self._db:
            batch = self._db.execute(
                "INSERT INTO batches (state, size, recipients, created, updated) VALUES (?, ?, ?, ?, ?)",
                (SENDING, len(keys), "\n".join(keys), now, now)).lastrowid
        assert batch is not None
        return batch

    def settle(self, batch: int, state: str, *, message_id: str = "", status: int | None = None,
               error: str = "") -> None:
        """Record what came of a batch: accepted (with SendGrid's message id), failed, uncertain."""
        with self._db:
            self._db.execute(
                "UPDATE batches SET state = ?, message_id = ?, status = ?, error = ?, updated = ? "
                "WHERE id = ?", (state, message_id or None, status, error or None, time.time(), batch))

    def forget(self, batch: int) -> None:
        """Remove a batch that was recorded but never posted: its recipients are as they were."""
        with self._db:
            self._db.execute("DELETE FROM batches WHERE id = ?", (batch,))

    def counts(self) -> LedgerCounts:
        """Recipients by state; `pending` are in a batch still marked in flight."""
        by_state = Counter(self.states().values())
        return LedgerCounts(sent=by_state.get(ACCEPTED, 0), pending=by_state.get(SENDING, 0),
                            failed=by_state.get(FAILED, 0), uncertain=by_state.get(UNCERTAIN, 0))

    def first_accepted_at(self) -> float | None:
        """When the first request SendGrid accepted was recorded (unix seconds); None before any."""
        (first,) = self._db.execute("SELECT min(created) FROM batches WHERE state = ?", (ACCEPTED,)).fetchone()
        return float(first) if first is not None else None


class SendLock:
    """An exclusive lock on one issue's sends, so two processes never post the same batch."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = FileLock(path)

    def acquire(self, issue: str) -> None:
        """Take the lock or raise `SendError` naming the other send."""
        if not self.try_acquire():
            raise SendError(f"another `newsletter send {issue}` is running ({where(self.path)} is locked); "
                            "wait for it to finish")

    def try_acquire(self) -> bool:
        return self._lock.acquire(blocking=False)

    def release(self) -> None:
        self._lock.release()
