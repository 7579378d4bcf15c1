"""The server's records: one SQLite file (`signup.sqlite` by default), WAL, synchronous=FULL.

What it keeps, and for how long (README, "Sign-ups"):
- `pending`: a sign-up not yet confirmed (address, first name, when, client IP, the form's
  page). Deleted when confirmed, or after 7 days (its confirm link has expired by then).
- `confirmations`: when an address was last sent a confirmation, to send at most one a day
  (the defence against subscription bombing). Deleted after 24 hours.
- `events`: confirmed sign-ups with their evidence (requested and confirmed times, the IP
  of each, the form's page) and unsubscribes, numbered by a cursor that only grows
  (AUTOINCREMENT: a number is never reused, even after deletes). `/changes` serves them;
  once the editor's sync has acknowledged one (asked for changes after it) it is deleted
  30 days later.
- `outbox`: the emails to send (confirmation, welcome), written in the same transaction
  as the sign-up they belong to, so a sign-up is never kept without its email or the
  other way round. Deleted 7 days after it is sent (or given up).
- `rates`: sign-ups per client IP per hour. Deleted when the hour is over.

Every write is one `BEGIN IMMEDIATE` transaction, committed with synchronous=FULL: what
the server answered is on disk, a kill -9 included.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from newsletter.sending.mailer import OutgoingEmail

DEFAULT_DB = "signup.sqlite"
PENDING_DAYS = 7
SYNCED_EVENT_DAYS = 30
SENT_EMAIL_DAYS = 7
CONFIRMATION_INTERVAL = 24 * 3600  # one confirmation per address per day
DAY = 24 * 3600
SUBSCRIBED = "subscribed"
UNSUBSCRIBED = "unsubscribed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    address TEXT NOT NULL, list TEXT NOT NULL, email TEXT NOT NULL, first_name TEXT NOT NULL,
    requested_at INTEGER NOT NULL, ip TEXT NOT NULL, page TEXT NOT NULL,
    PRIMARY KEY (address, list));
CREATE TABLE IF NOT EXISTS confirmations (address TEXT PRIMARY KEY, sent_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    cursor INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, email TEXT NOT NULL, address TEXT NOT NULL,
    list TEXT NOT NULL, first_name TEXT NOT NULL DEFAULT '', tags TEXT NOT NULL DEFAULT '',
    requested_at INTEGER, request_ip TEXT NOT NULL DEFAULT '', page TEXT NOT NULL DEFAULT '',
    confirm_ip TEXT NOT NULL DEFAULT '', at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS events_by_address ON events (address, list, cursor);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, message TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued', attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL, created_at INTEGER NOT NULL, done_at INTEGER, error TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at);
CREATE TABLE IF NOT EXISTS rates (ip TEXT NOT NULL, hour INTEGER NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (ip, hour));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Outbox states. `sending` is written before the provider is asked; a row found `sending`
# at start-up was cut off mid-post (a crash, a kill): the provider may have it, so it
# becomes `uncertain` and is never sent again blindly.
QUEUED, SENDING, SENT, UNCERTAIN, FAILED = "queued", "sending", "sent", "uncertain", "failed"


@dataclass(frozen=True)
class Pending:
    email: str
    first_name: str
    requested_at: int
    ip: str
    page: str


@dataclass(frozen=True)
class Change:
    """One entry of `/changes`: a confirmed sign-up (with its evidence) or an unsubscribe."""

    cursor: int
    kind: str
    email: str
    list: str
    at: int
    first_name: str = ""
    tags: str = ""
    requested_at: int | None = None
    request_ip: str = ""
    page: str = ""
    confirm_ip: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    email: OutgoingEmail
    attempts: int


class SignupStore:
    """The records of one server. Safe to use from several threads (one connection, one lock:
    SQLite takes one writer at a time anyway)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- sign-ups

    @staticmethod
    def _counted(db: sqlite3.Connection, ip: str, limit: int, now: float) -> bool:
        hour = int(now // 3600)
        db.execute("INSERT INTO rates VALUES (?, ?, 1) ON CONFLICT (ip, hour) DO UPDATE SET count = count + 1",
                   (ip, hour))
        (count,) = db.execute("SELECT count FROM rates WHERE ip = ? AND hour = ?", (ip, hour)).fetchone()
        return bool(count <= limit)

    def take_rate(self, ip: str, limit: int, now: float) -> bool:
        """Count one sign-up from `ip` in this hour; whether it is within `limit`."""
        with self._transaction() as db:
            return self._counted(db, ip, limit, now)

    def request_signup(self, address: str, list_name: str, pending: Pending, confirmation: OutgoingEmail,
                       limit: int) -> bool | None:
        """Count the sign-up against its IP's `limit` (None when over it: nothing else is kept), then keep
        it pending and queue `confirmation` unless this address had one in 24 h (False then).

        One transaction, one write to disk: a sign-up is never kept without its email.
        """
        with self._transaction() as db:
            if not self._counted(db, pending.ip, limit, pending.requested_at):
                return None
            db.execute("INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (address, list_name, pending.email, pending.first_name, pending.requested_at,
                        pending.ip, pending.page))
            last = db.execute("SELECT sent_at FROM confirmations WHERE address = ?", (address,)).fetchone()
            if last is not None and pending.requested_at - last[0] < CONFIRMATION_INTERVAL:
                return False
            db.execute("INSERT OR REPLACE INTO confirmations VALUES (?, ?)", (address, pending.requested_at))
            self._queue(db, "confirmation", confirmation, pending.requested_at)
            return True

    def confirm(self, address: str, list_name: str, tags: str, confirm_ip: str, now: int,
                welcome: Callable[[Pending], OutgoingEmail]) -> bool:
        """Turn the pending sign-up into a confirmed one with its evidence, and queue the welcome.

        False when nothing is pending (confirmed already, or expired): nothing changes then,
        so a second click sends no second welcome.
        """
        with self._transaction() as db:
            row = db.execute("SELECT email, first_name, requested_at, ip, page FROM pending "
                             "WHERE address = ? AND list = ?", (address, list_name)).fetchone()
            if row is None:
                return False
            pending = Pending(*row)
            db.execute("DELETE FROM pending WHERE address = ? AND list = ?", (address, list_name))
            db.execute("INSERT INTO events (kind, email, address, list, first_name, tags, requested_at, request_ip, "
                       "page, confirm_ip, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (SUBSCRIBED, pending.email, address, list_name, pending.first_name, tags,
                        pending.requested_at, pending.ip, pending.page, confirm_ip, now))
            self._queue(db, "welcome", welcome(pending), now)
            return True

    def unsubscribe(self, email: str, address: str, list_name: str, now: int) -> bool:
        """Record an unsubscribe (and drop any pending sign-up); False when it was the last thing recorded."""
        with self._transaction() as db:
            db.execute("DELETE FROM pending WHERE address = ? AND list = ?", (address, list_name))
            last = db.execute("SELECT kind FROM events WHERE address = ? AND list = ? ORDER BY cursor DESC LIMIT 1",
                              (address, list_name)).fetchone()
            if last is not None and last[0] == UNSUBSCRIBED:
                return False
            db.execute("INSERT INTO events (kind, email, address, list, at) VALUES (?, ?, ?, ?, ?)",
                       (UNSUBSCRIBED, email, address, list_name, now))
            return True

    # -- the changes feed

    def changes(self, after: int, limit: int) -> list[Change]:
        """Events after `after`, oldest first. Asking for them acknowledges those up to `after`:
        the editor's sync asks only once it has written them into the list."""
        with self._transaction() as db:
            top = db.execute("SELECT COALESCE(MAX(cursor), 0) FROM events").fetchone()[0]
            synced = min(after, top)
            db.execute("INSERT INTO meta VALUES ('synced_through', ?) ON CONFLICT (key) DO UPDATE SET "
                       "value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))", (str(synced),))
            rows = db.execute("SELECT cursor, kind, email, list, at, first_name, tags, requested_at, request_ip, page, "
                              "confirm_ip FROM events WHERE cursor > ? ORDER BY cursor LIMIT ?",
                              (after, limit)).fetchall()
        return [Change(*row) for row in rows]

    # -- retention

    def clean(self, now: float) -> None:
        """Delete what is no longer needed (the periods are in the module's docstring)."""
        with self._transaction() as db:
            db.execute("DELETE FROM pending WHERE requested_at < ?", (now - PENDING_DAYS * DAY,))
            db.execute("DELETE FROM confirmations WHERE sent_at <= ?", (now - CONFIRMATION_INTERVAL,))
            db.execute("DELETE FROM rates WHERE hour < ?", (int(now // 3600),))
            synced = db.execute("SELECT value FROM meta WHERE key = 'synced_through'").fetchone()
            db.execute("DELETE FROM events WHERE cursor <= ? AND at < ?",
                       (int(synced[0]) if synced else 0, now - SYNCED_EVENT_DAYS * DAY))
            db.execute("DELETE FROM outbox WHERE state IN (?, ?, ?) AND done_at < ?",
                       (SENT, UNCERTAIN, FAILED, now - SENT_EMAIL_DAYS * DAY))

    # -- the outbox

    @staticmethod
    def _queue(db: sqlite3.Connection, kind: str, email: OutgoingEmail, now: float) -> None:
        db.execute("INSERT INTO outbox (kind, message, next_attempt_at, created_at) VALUES (?, ?, ?, ?)",
                   (kind, json.dumps(asdict(email)), now, int(now)))

    def recover_interrupted(self, now: float) -> int:
        """Emails left `sending` by a server that stopped mid-post: uncertain, never resent blindly."""
        with self._transaction() as db:
            return db.execute("UPDATE outbox SET state = ?, done_at = ?, error = 'the server stopped while posting it' "
                              "WHERE state = ?", (UNCERTAIN, int(now), SENDING)).rowcount

    def next_due(self, now: float) -> OutboxItem | None:
        """The oldest email due, marked `sending` (committed) before anyone posts it."""
        with self._transaction() as db:
            row = db.execute("SELECT id, kind, message, attempts FROM outbox WHERE state = ? AND next_attempt_at <= ? "
                             "ORDER BY id LIMIT 1", (QUEUED, now)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE outbox SET state = ?, attempts = attempts + 1 WHERE id = ?", (SENDING, row[0]))
        return OutboxItem(row[0], row[1], OutgoingEmail(**json.loads(row[2])), row[3] + 1)

    def next_attempt_at(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT MIN(next_attempt_at) FROM outbox WHERE state = ?", (QUEUED,)).fetchone()
        return row[0]

    def finish(self, item_id: int, state: str, now: float, error: str = "") -> None:
        with self._transaction() as db:
            db.execute("UPDATE outbox SET state = ?, done_at = ?, error = ? WHERE id = ?",
                       (state, int(now), error, item_id))

    def retry_later(self, item_id: int, at: float, error: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE outbox SET state = ?, next_attempt_at = ?, error = ? WHERE id = ?",
                       (QUEUED, at, error, item_id))

    def outbox_counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall()
        return {state: count for state, count in rows}
