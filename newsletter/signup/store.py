"""The server's records: one SQLite file (`signup.sqlite` by default), WAL, synchronous=FULL.

What it keeps, and for how long (docs/signups.md):
- `pending`: a sign-up not yet confirmed (address, first name, when, client IP, the form's
  page). Deleted when confirmed, or after 7 days (its confirm link has expired by then).
- `confirmations`: when an address was last sent a confirmation (or, confirmed already, the
  note saying so), to send at most one a day (the defence against subscription bombing).
  Deleted after 24 hours.
- `events`: confirmed sign-ups with their evidence (requested and confirmed times, the IP
  of each, the form's page) and unsubscribes, numbered by a cursor that only grows
  (AUTOINCREMENT: a number is never reused, even after deletes). `/changes` serves them;
  once the editor's sync has acknowledged one (asked for changes after it) it is deleted
  30 days later.
- `outbox`: the emails to send (confirmation, already-subscribed note, welcome), written in the same transaction
  as the sign-up they belong to, so a sign-up is never kept without its email or the
  other way round. Deleted 7 days after it is sent (or given up).
- `rates`: sign-ups per client IP per hour. Deleted when the hour is over.

Every write is committed with synchronous=FULL before its caller returns, so what the
server answered is on disk, a kill -9 included; the writes waiting at one moment share
one commit (see `SignupStore`).
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from newsletter.errors import ConfigError, where
from newsletter.sending.mailer import OutgoingEmail

T = TypeVar("T")
DEFAULT_DB = "signup.sqlite"
MAX_BATCH = 200  # writes committed together at most
PENDING_DAYS = 7
SYNCED_EVENT_DAYS = 30
SENT_EMAIL_DAYS = 7
CONFIRMATION_INTERVAL = 24 * 3600  # one confirmation per address per day
DAY = 24 * 3600
SUBSCRIBED = "subscribed"
ALREADY_SUBSCRIBED = "already-subscribed"  # the outbox kind of the note to an address confirmed already
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
    """The records of one server. Safe to use from several threads.

    Writes are group-committed: each is a function of the connection, handed to one writer
    thread, which runs every write waiting (each in a savepoint of its own, so one that
    fails undoes only itself) in one transaction and commits it, one fsync for them all,
    before any of them returns. A commit with synchronous=FULL takes about 3 ms on this
    disk: one per sign-up held 50 concurrent readers to a p99 of 470 ms.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # the connection: the writer's batches and the reads
        self._db = self._open(path)
        self._writes: queue.SimpleQueue[tuple[Callable[[sqlite3.Connection], Any], Future[Any]] | None] = \
            queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_batches, name="signup-store", daemon=True)
        self._writer.start()

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        """The connection, ready; a ConfigError in one line for a path that is no SQLite file of ours
        (a missing folder, a directory, another kind of file: `serve --db` printed a traceback)."""
        if path.is_dir():
            raise ConfigError(f"{where(path)}: is a folder, not the sign-up server's records; give --db a file name "
                              f"(such as {where(path / DEFAULT_DB)})")
        if not path.parent.is_dir():
            raise ConfigError(f"{where(path)}: the folder {where(path.parent)} does not exist; create it or give "
                              "--db a file in a folder that does")
        db: sqlite3.Connection | None = None
        try:
            db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=30000")
            db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            if db is not None:
                db.close()
            raise ConfigError(f"{where(path)}: cannot be opened as the sign-up server's records ({exc}); give --db "
                              "a new file name or this server's own signup.sqlite") from None
        return db

    def close(self) -> None:
        self._writes.put(None)
        self._writer.join()
        with self._lock:
            self._db.close()

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in a transaction; return its result once it is committed (on disk)."""
        done: Future[Any] = Future()
        self._writes.put((work, done))
        result: T = done.result()
        return result

    def _write_batches(self) -> None:
        stopping = False
        while not stopping:
            first = self._writes.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._writes.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            outcomes: list[tuple[Future[Any], Any, BaseException | None]] = []
            with self._lock:
                db = self._db
                try:
                    db.execute("BEGIN IMMEDIATE")
                    for work, done in batch:
                        db.execute("SAVEPOINT one_write")
                        try:
                            outcomes.append((done, work(db), None))
                        except Exception as exc:  # noqa: BLE001 - handed to the caller, whose write it was
                            db.execute("ROLLBACK TO one_write")
                            outcomes.append((done, None, exc))
                        db.execute("RELEASE one_write")
                    db.execute("COMMIT")
                except Exception as exc:  # noqa: BLE001 - the commit failed: none of the batch is written
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    outcomes = [(done, None, exc) for _, done in batch]
            for done, result, error in outcomes:
                if error is not None:
                    done.set_exception(error)
                else:
                    done.set_result(result)

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
        return self._write(lambda db: self._counted(db, ip, limit, now))

    def request_signup(self, address: str, list_name: str, pending: Pending, confirmation: OutgoingEmail,
                       limit: int, already_subscribed: OutgoingEmail | None = None) -> bool | None:
        """Count the sign-up against its IP's `limit` (None when over it: nothing else is kept), then keep
        it pending and queue `confirmation` unless this address had one in 24 h (False then).

        An address whose last event here is a confirmed sign-up to the list (it confirmed
        through this server and has not unsubscribed since) is sent `already_subscribed`
        instead, when given, under the same one-a-day rule: a second "confirm your
        subscription" puzzled readers who were on the list (listmonk #2987 calls it a bug).
        It still holds the confirm link, kept pending like any other, so a reader who left by
        a way this server never sees (the editor's `remove`, a bounce) can join again.

        One transaction: a sign-up is never kept without its email.
        """
        def work(db: sqlite3.Connection) -> bool | None:
            if not self._counted(db, pending.ip, limit, pending.requested_at):
                return None
            last = db.execute("SELECT sent_at FROM confirmations WHERE address = ?", (address,)).fetchone()
            sends = last is None or pending.requested_at - last[0] >= CONFIRMATION_INTERVAL
            # Only a request that sends a confirmation replaces a pending one: anyone may post any address,
            # and the evidence (and first name) of the request whose email is out must be what is confirmed.
            db.execute(f"INSERT OR {'REPLACE' if sends else 'IGNORE'} INTO pending VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (address, list_name, pending.email, pending.first_name, pending.requested_at,
                        pending.ip, pending.page))
            if not sends:
                return False
            db.execute("INSERT OR REPLACE INTO confirmations VALUES (?, ?)", (address, pending.requested_at))
            if already_subscribed is not None and self._subscribed_here(db, address, list_name):
                self._queue(db, ALREADY_SUBSCRIBED, already_subscribed, pending.requested_at)
            else:
                self._queue(db, "confirmation", confirmation, pending.requested_at)
            return True
        return self._write(work)

    @staticmethod
    def _subscribed_here(db: sqlite3.Connection, address: str, list_name: str) -> bool:
        """Whether the address's last event here is a confirmed sign-up to the list. Events go 30 days
        after a sync: an address confirmed longer ago is sent a confirmation again, as a new one is."""
        last = db.execute("SELECT kind FROM events WHERE address = ? AND list = ? ORDER BY cursor DESC LIMIT 1",
                          (address, list_name)).fetchone()
        return last is not None and last[0] == SUBSCRIBED

    def confirm(self, address: str, list_name: str, tags: str, confirm_ip: str, now: int,
                welcome: Callable[[Pending], OutgoingEmail]) -> bool:
        """Turn the pending sign-up into a confirmed one with its evidence, and queue the welcome.

        False when nothing is pending (confirmed already, or expired): nothing changes then,
        so a second click sends no second welcome.
        """
        def work(db: sqlite3.Connection) -> bool:
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
        return self._write(work)

    def unsubscribe(self, email: str, address: str, list_name: str, now: int) -> None:
        """Record an unsubscribe (and drop any pending sign-up), every time.

        Never skipped because the last event recorded here was an unsubscribe too: the editor
        may have resubscribed the reader since (`subscribers add --resubscribe`), which this
        server never sees, and a skipped second unsubscribe was silently lost. Applying one
        twice changes nothing in the list.
        """
        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM pending WHERE address = ? AND list = ?", (address, list_name))
            db.execute("INSERT INTO events (kind, email, address, list, at) VALUES (?, ?, ?, ?, ?)",
                       (UNSUBSCRIBED, email, address, list_name, now))
        self._write(work)

    # -- the changes feed

    def changes(self, after: int, limit: int) -> list[Change]:
        """Events after `after`, oldest first. Asking for them acknowledges those up to `after`:
        the editor's sync asks only once it has written them into the list."""
        def work(db: sqlite3.Connection) -> list[Change]:
            top = db.execute("SELECT COALESCE(MAX(cursor), 0) FROM events").fetchone()[0]
            synced = min(after, top)
            db.execute("INSERT INTO meta VALUES ('synced_through', ?) ON CONFLICT (key) DO UPDATE SET "
                       "value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))", (str(synced),))
            rows = db.execute("SELECT cursor, kind, email, list, at, first_name, tags, requested_at, request_ip, page, "
                              "confirm_ip FROM events WHERE cursor > ? ORDER BY cursor LIMIT ?",
                              (after, limit)).fetchall()
            return [Change(*row) for row in rows]
        return self._write(work)

    # -- retention

    def clean(self, now: float) -> None:
        """Delete what is no longer needed (the periods are in the module's docstring)."""
        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM pending WHERE requested_at < ?", (now - PENDING_DAYS * DAY,))
            db.execute("DELETE FROM confirmations WHERE sent_at <= ?", (now - CONFIRMATION_INTERVAL,))
            db.execute("DELETE FROM rates WHERE hour < ?", (int(now // 3600),))
            synced = db.execute("SELECT value FROM meta WHERE key = 'synced_through'").fetchone()
            db.execute("DELETE FROM events WHERE cursor <= ? AND at < ?",
                       (int(synced[0]) if synced else 0, now - SYNCED_EVENT_DAYS * DAY))
            db.execute("DELETE FROM outbox WHERE state IN (?, ?, ?) AND done_at < ?",
                       (SENT, UNCERTAIN, FAILED, now - SENT_EMAIL_DAYS * DAY))
        self._write(work)

    # -- the outbox

    @staticmethod
    def _queue(db: sqlite3.Connection, kind: str, email: OutgoingEmail, now: float) -> None:
        db.execute("INSERT INTO outbox (kind, message, next_attempt_at, created_at) VALUES (?, ?, ?, ?)",
                   (kind, json.dumps(asdict(email)), now, int(now)))

    def recover_interrupted(self, now: float) -> int:
        """Emails left `sending` by a server that stopped mid-post: uncertain, never resent blindly."""
        return self._write(lambda db: int(db.execute(
            "UPDATE outbox SET state = ?, done_at = ?, error = 'the server stopped while posting it' "
            "WHERE state = ?", (UNCERTAIN, int(now), SENDING)).rowcount))

    def next_due(self, now: float) -> OutboxItem | None:
        """The oldest email due, marked `sending` (committed) before anyone posts it."""
        def work(db: sqlite3.Connection) -> OutboxItem | None:
            row = db.execute("SELECT id, kind, message, attempts FROM outbox WHERE state = ? AND next_attempt_at <= ? "
                             "ORDER BY id LIMIT 1", (QUEUED, now)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE outbox SET state = ?, attempts = attempts + 1 WHERE id = ?", (SENDING, row[0]))
            return OutboxItem(row[0], row[1], OutgoingEmail(**json.loads(row[2])), row[3] + 1)
        return self._write(work)

    def next_attempt_at(self) -> float | None:
        with self._lock:
            (next_at,) = self._db.execute("SELECT MIN(next_attempt_at) FROM outbox WHERE state = ?",
                                          (QUEUED,)).fetchone()
        return float(next_at) if next_at is not None else None

    def finish(self, item_id: int, state: str, now: float, error: str = "") -> None:
        self._write(lambda db: db.execute("UPDATE outbox SET state = ?, done_at = ?, error = ? WHERE id = ?",
                                          (state, int(now), error, item_id)))

    def retry_later(self, item_id: int, at: float, error: str) -> None:
        self._write(lambda db: db.execute("UPDATE outbox SET state = ?, next_attempt_at = ?, error = ? WHERE id = ?",
                                          (QUEUED, at, error, item_id)))

    def outbox_counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall()
        return {state: count for state, count in rows}
