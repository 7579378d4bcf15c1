"""The ledger of a send: which recipients were posted in which request, and what came of it.

SQLite in `sent/ISSUE.sqlite`, beside `subscribers/`: like the lists it is the
publication's data, not something `build/` may lose (`rm -rf build` once made the
whole list get an issue again). `.gitignore` keeps `sent/` out of git (it holds
addresses) and the README says to back it up. A ledger found where older versions
kept it, `build/ISSUE/ledger.sqlite`, is copied here whole (SQLite's backup API, so
what sits in its WAL comes along), checked, and only then removed.

WAL. A request (batch) is written with its recipients, state `sending`, and
committed *before* it is posted; SendGrid's 202 marks it `accepted` with its
X-Message-Id. A recipient's state is the state of the last batch that holds it: a
recipient of a failed or uncertain request that is posted again appears in a later
batch. The recipients of a batch are one text column (one address a line), so
recording 1,000 of them is one row, not 1,000 index updates. A `sending` batch
found by whoever holds the issue's `SendLock` (a send, or a `status` or dry run
while no send runs) belongs to a process that died with it in flight: `recover()`
makes it `uncertain`, the one place that does. While a send holds the lock, its
`sending` batches are pending.

A ledger that exists is never a fresh start: an empty file, one without its table
or one SQLite cannot read is an error naming the file and saying what to do (a
`truncate -s 0` once posted 20,000 again). A new ledger is made whole in a
temporary file and linked into place, so a crash cannot leave an empty one. A send
checks before each batch that its ledger is still the file at its path (same
inode): one deleted or replaced under it would record into a file nobody reads.

The file alone. While a send runs, its records are in `ISSUE.sqlite-wal`; the send
marks the main file at its start and, at its end, clears the mark and checkpoints, so
whenever no send runs the main file is the whole record (a backup that copied it alone
once lost a killed send's WAL, and the restored copy posted 10,000 again). A copy with
the mark and no -wal is refused (`begin_send`) unless the main file holds batches
recorded after the mark: a killed send's -wal checkpointed whole by whatever closed the
ledger last; `newsletter backup` copies ledgers whole.

The issue itself. The `meta` table records the issue's id (`id:` in issue.yaml) and the
sha256 of its subject and articles, so a send of a renamed folder finds this ledger
(`earlier_send`), as it finds a copy a stopped send saved and a lock file noting a ledger.

`synchronous=FULL`: each commit is on disk before the next request goes out, so not
even a power loss can lose a batch that was posted. A send commits each batch
together with the answers that came in before it (`transaction()`): one fsync per
request of 1,000 recipients. A write that fails (a
full disk) raises `LedgerWriteError`, one line naming the file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from newsletter.config import Settings
from newsletter.files.atomic import write_failure
from newsletter.errors import SendError, where
from newsletter.files.locking import FileLock
from newsletter.subscribers.addresses import address_keys

if TYPE_CHECKING:  # `newsletter status` reads ledgers without loading content (Markdown)
    from newsletter.content import Issue

T = TypeVar("T")

SENDING, ACCEPTED, FAILED, UNCERTAIN = "sending", "accepted", "failed", "uncertain"
# A batch that got a 429 and waits to be posted again: SendGrid refused it, so it is not in
# flight. A send running now counts it pending; a dead one's is forgotten (`recover`), so
# the next run posts to its recipients (once a kill -9 in the wait left 2,000 uncertain).
WAITING = "waiting"
# A scheduled batch cancelled before its time: SendGrid discards it, the recipients do not have it.
CANCELLED = "cancelled"

SENT_DIR = "sent"          # beside subscribers/: the publication's record of who has which issue
OLD_LEDGER = "ledger.sqlite"  # build/ISSUE/ledger.sqlite, where ledgers were kept before
OLD_LOCK = "send.lock"  # build/ISSUE/send.lock, the lock those versions take (an flock, as ours)

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
    updated REAL NOT NULL,
    send_at INTEGER,
    batch_id TEXT,
    provider TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# meta: SEND_RUNNING while a send writes (see `Ledger.begin_send`); the issue's identity.
_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
SEND_RUNNING = "send_running"
# The last batch id recorded when the mark was set: a batch after it in the main file, with no
# -wal beside it, came there by a whole checkpoint (see `Ledger._recorded_since_mark`).
MARKED_AFTER = "send_running_after_batch"
ISSUE_NAME, ISSUE_ID, FINGERPRINT = "issue", "issue_id", "fingerprint"
# The last send's plan (`Ledger.plan_send`): how many recipients it meant to reach, and the command
# that carries it on. A send killed or stopped part way left readers it never reached nowhere in the
# ledger, and `status` showed the issue as if it were sent to everyone it holds.
PLANNED, PLANNED_COMMAND = "planned_recipients", "planned_command"
# Earlier plans of other selections (another --list or --tag) that stopped part way, as a JSON object
# {command: readers it never reached}, counted when a send of another selection took the plan over. A
# stopped send of list A, then a send to list B, once left A's readers in no count again.
PLANNED_ELSEWHERE = "planned_elsewhere"


@dataclass(frozen=True)
class IssueIdentity:
    """What makes an issue itself, whatever its folder is called: its `id:` (issue.yaml, written
    by `newsletter new`) and, for issues made before ids, its subject and articles.

    A ledger records both when a send starts: renaming `issues/issue-1/` to `issue-1-final/`
    once sent the issue to 2,000 readers again, `sent/issue-1.sqlite` sitting beside it.
    """

    name: str
    issue_id: str      # '' for an issue without `id:`
    fingerprint: str   # sha256 of the subject and the articles' files, as first sent

    @classmethod
    def of(cls, issue: Issue) -> IssueIdentity:
        digest = hashlib.sha256(issue.subject.encode())
        for article in issue.articles:
            digest.update(b"\0")
            digest.update(article.source.read_bytes())
        return cls(issue.name, issue.issue_id, digest.hexdigest())

    def matches(self, recorded: dict[str, str]) -> str:
        """How a ledger's meta shows it is this issue: 'the same id …', 'the same subject and
        articles', or '' when it does not."""
        if self.issue_id and recorded.get(ISSUE_ID) == self.issue_id:
            return f"the same id, {self.issue_id}"
        if recorded.get(FINGERPRINT) == self.fingerprint:
            return "the same subject and articles"
        return ""
# Scheduled sends (`send --at`): when SendGrid delivers a batch (unix seconds) and the
# batch id its requests share; NULL for a send posted to go out at once. Ledgers made
# before scheduling get the two columns the first time they are opened.
# Columns added since the first ledgers: scheduled sends, then the provider each batch went through.
_LATER_COLUMNS = {"send_at": "INTEGER", "batch_id": "TEXT", "provider": "TEXT"}


@dataclass(frozen=True)
class Schedule:
    """When the requests of a scheduled send are delivered, and the batch id they share."""

    send_at: int      # unix seconds
    batch_id: str


def ledger_path(settings: Settings, issue: str) -> Path:
    """Where the ledger of `issue` (its folder name) lives: `sent/ISSUE.sqlite`."""
    return settings.root / SENT_DIR / f"{issue}.sqlite"


def lock_path(settings: Settings, issue: str) -> Path:
    """The lock file that one send of `issue` holds at a time, beside its ledger."""
    return settings.root / SENT_DIR / f"{issue}.lock"


def old_ledger_path(settings: Settings, issue: str) -> Path:
    return settings.build_dir / issue / OLD_LEDGER


class LedgerWriteError(SendError):
    """The ledger could not be written (a full disk, most often): the send must stop."""


def _restore_advice(path: Path, issue: str) -> str:
    return (f"it is the record of who already has {issue}, so nothing is sent without it: restore "
            f"{where(path)} from your backup of {SENT_DIR}/ and send again; only if {issue} was never "
            "sent, delete the file")


@dataclass(frozen=True)
class LedgerCounts:
    """Recipients by state: `pending` are in a request still in flight."""

    sent: int = 0
    pending: int = 0
    failed: int = 0
    uncertain: int = 0
    cancelled: int = 0  # in a scheduled send that was cancelled: a later send sends to them
    # Readers the last send meant to reach whom the ledger does not hold: it stopped (Ctrl-C, kill -9,
    # a day's limit, a quota, an error) before posting to them, or forgot a batch it could not post.
    # It is about that send's plan, the list as it read it: readers who subscribed since are not in it,
    # and readers who left the list since stay in it until a send runs again. None when no send
    # recorded a plan (never sent, or a ledger written by a version before plans were recorded).
    not_sent: int | None = None
    resume: str = ""       # the command that carries the last send on
    running: bool = False  # the last send is running now: it has yet to reach the `not_sent`
    # Of `not_sent`, those of earlier stopped sends of other selections: (the command that carries
    # each on, how many it never reached). Never fewer than are left; more where a send of another
    # selection reached some of them since (one list's readers in another), until that command runs.
    elsewhere: tuple[tuple[str, int], ...] = ()

    def as_dict(self) -> dict[str, int | None]:
        return {"sent": self.sent, "pending": self.pending, "failed": self.failed, "uncertain": self.uncertain,
                "cancelled": self.cancelled, "not_sent": self.not_sent}

    def lines(self) -> list[str]:
        """The counts as `newsletter status` prints them: cancelled only when there are any, and
        the readers the last send did not reach only when there are any."""
        rows = [("sent", self.sent), ("pending", self.pending), ("failed", self.failed),
                ("uncertain", self.uncertain)] + ([("cancelled", self.cancelled)] if self.cancelled else [])
        lines = [f"{label:<10} {count:>9,}" for label, count in rows]
        last = (self.not_sent or 0) - sum(count for _, count in self.elsewhere)
        if last > 0:
            why = ("the send running now has yet to reach them" if self.running
                   else f"the send stopped before them: run `{self.resume}` again")
            lines.append(f"{'not sent':<10} {last:>9,}  ({why})")
        for command, count in self.elsewhere:
            lines.append(f"{'not sent':<10} {count:>9,}  (the send stopped before them: run `{command}` again)")
        return lines


class Ledger:
    """One issue's ledger; `Ledger(None)` keeps it in memory (dry runs, proofs).

    `create`: make the file when there is none (a send); otherwise it must exist.
    """

    def __init__(self, path: Path | None, issue: str = "", *, create: bool = True, alone: bool = True) -> None:
        """`alone`: the caller holds the issue's `SendLock` (no other send writes it now)."""
        self.path = path
        self.issue = issue or (path.stem if path else "")
        self._identity: tuple[int, int] | None = None
        self._in_transaction = False
        # A worker thread marks its batch waiting out a 429 (`mark_waiting`) while the
        # sending thread commits: one writer at a time, a transaction held whole.
        self._lock = threading.RLock()
        # Writes of several threads gathered into one commit (`together`): one fsync for many.
        self._group = threading.Condition()
        self._queued: list[_GroupWrite[Any]] = []
        self._committing = False
        if path is None:
            self._db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            self._db.executescript(_SCHEMA)
            return
        if not path.exists():
            if not create:
                raise SendError(f"{where(path)}: no such send ledger")
            _create(path)
        # Looked at before connecting: SQLite makes a new, empty -wal for a file that has none.
        had_wal = wal_path(path).exists()
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise SendError(f"{where(path)}: cannot open the send ledger ({exc})") from None
        try:
            _check_readable(self._db, path, self.issue)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            _add_later_columns(self._db)
            _add_meta_table(self._db)
            if alone and not had_wal and self._meta(SEND_RUNNING) is not None and not self._recorded_since_mark():
                raise SendError(_copied_without_wal(path, self.issue))
        except sqlite3.Error as exc:
            self._db.close()
            raise self._write_error(exc, "open") from None
        except SendError:
            self._db.close()
            raise
        status = os.stat(path)
        self._identity = (status.st_dev, status.st_ino)

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _recorded_since_mark(self) -> bool:
        """Whether the main file holds batches recorded after the send mark was set.

        Then the -wal is gone because a whole checkpoint moved it in: a send killed -9,
        then anything that opened and closed the ledger (`sqlite3` for a look) checkpoints
        it as the last connection and removes the -wal. That is a killed send, to recover;
        `newsletter status` once told it apart from nothing and advised a full re-send. A
        send never checkpoints while it runs (`begin_send`), so a copy of the main file
        alone holds no batch after the mark. A mark set by an older version names no batch.
        """
        after = self._meta(MARKED_AFTER)
        if after is None or not after.isdigit():
            return False
        return self._db.execute("SELECT 1 FROM batches WHERE id > ? LIMIT 1", (int(after),)).fetchone() is not None

    def meta(self) -> dict[str, str]:
        """What the ledger records about itself and its issue (its id, its fingerprint)."""
        return {str(key): str(value) for key, value in self._db.execute("SELECT key, value FROM meta")}

    def set_meta(self, values: dict[str, str], *, keep: bool = False) -> None:
        """Record `values` in one commit; with `keep`, a key already recorded keeps its value."""
        verb = "INSERT OR IGNORE" if keep else "INSERT OR REPLACE"
        with self.transaction():
            for key, value in values.items():
                self._write(f"{verb} INTO meta (key, value) VALUES (?, ?)", (key, value))

    def plan_send(self, recipients: int, command: str, reached: int) -> None:
        """Record, before the send posts anything, how many `recipients` it means to reach: everyone
        the ledger holds (`reached` of them now) and everyone it would post to besides, each counted
        once (see `counts`). `command` carries it on. Durable at once: a kill -9 later leaves it for
        `status`. The plan of another command that stopped part way is kept aside with the readers
        it never reached (`PLANNED_ELSEWHERE`); this command's own earlier one is this plan now."""
        elsewhere = self._planned_elsewhere()
        standing, planned = self._meta(PLANNED_COMMAND), self._meta(PLANNED)
        if standing is not None and standing != command and planned is not None and planned.isdigit():
            left = int(planned) - reached - sum(elsewhere.values())
            if left > 0:
                elsewhere[standing] = left
        elsewhere.pop(command, None)
        self.set_meta({PLANNED: str(recipients + sum(elsewhere.values())), PLANNED_COMMAND: command,
                       PLANNED_ELSEWHERE: json.dumps(elsewhere)})

    def _planned_elsewhere(self) -> dict[str, int]:
        try:
            found = json.loads(self._meta(PLANNED_ELSEWHERE) or "{}")
        except ValueError:
            return {}
        if not isinstance(found, dict):
            return {}
        return {str(command): count for command, count in found.items() if isinstance(count, int) and count > 0}

    def reached(self) -> int:
        """How many recipients the ledger holds, whatever their state: those a plan counts as reached."""
        return len(self.states())

    def begin_send(self, identity: IssueIdentity | None = None) -> None:
        """Say, in the ledger's main file itself, that a send is writing to it now.

        While a send runs, its records are in the -wal file; they reach the main file at
        the end (`end_send`), or when a later command opens the ledger after a kill -9.
        A copy of the main file alone made in between held none of them, and restoring
        it posted the issue to everyone again: the mark makes such a copy an error.
        Checkpointed, so the mark is in the main file, not only in the -wal. The issue's
        identity is recorded with it (its name and fingerprint as first sent, its id).
        """
        with self.transaction():
            (last,) = self._db.execute("SELECT coalesce(max(id), 0) FROM batches").fetchone()
            self.set_meta({SEND_RUNNING: f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}",
                           MARKED_AFTER: str(last)})
            if identity is not None:
                self.set_meta({ISSUE_NAME: identity.name, FINGERPRINT: identity.fingerprint}, keep=True)
                if identity.issue_id:
                    self.set_meta({ISSUE_ID: identity.issue_id})
        self.checkpoint()
        # No automatic checkpoint until `end_send`: the send's batches stay in the -wal, so a
        # main file holding one after the mark was checkpointed whole (`_recorded_since_mark`).
        if self.path is not None:
            self._db.execute("PRAGMA wal_autocheckpoint=0")

    def end_send(self) -> None:
        """The send is over: its mark goes and every record moves into the main file, so the
        file holds the whole record on its own (a backup may copy it alone)."""
        with self._lock:
            if self._meta(SEND_RUNNING) is not None:
                with self.transaction():
                    self._write("DELETE FROM meta WHERE key IN (?, ?)", (SEND_RUNNING, MARKED_AFTER))
            self.checkpoint()

    def checkpoint(self) -> None:
        """Copy what the -wal holds into the main file and empty the -wal (one fsync)."""
        if self.path is None:
            return
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            except sqlite3.Error as exc:
                raise self._write_error(exc, "write") from None

    def close(self) -> None:
        try:
            self._db.close()
        except sqlite3.Error:
            pass  # every commit is already on disk; a final checkpoint that failed loses nothing

    def still_at_path(self) -> bool:
        """Whether the file at the ledger's path is still the one this ledger writes (same inode)."""
        if self.path is None or self._identity is None:
            return True
        try:
            status = os.stat(self.path)
        except OSError:
            return False
        return (status.st_dev, status.st_ino) == self._identity

    def save_copy(self) -> Path | None:
        """Write what this ledger holds to a new file beside its path (when it was replaced)."""
        if self.path is None:
            return None
        copy = self.path.with_name(f"{self.path.stem}.saved-{time.strftime('%Y%m%d-%H%M%S')}.sqlite")
        try:
            self.copy_to(copy)
        except (sqlite3.Error, OSError):
            return None
        return copy

    def copy_to(self, copy: Path) -> None:
        """Write a copy of this ledger that stands on its own (no -wal, no send marked running):
        SQLite's backup API, so a commit in progress is never half in it."""
        target = sqlite3.connect(str(copy))
        try:
            with self._lock:
                self._db.backup(target)
            with target:  # no send writes to the copy
                target.execute("DELETE FROM meta WHERE key IN (?, ?)", (SEND_RUNNING, MARKED_AFTER))
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()

    def _write_error(self, exc: Exception, doing: str) -> LedgerWriteError:
        text = str(exc)
        if disk_is_full(exc, self.path):
            return LedgerWriteError(f"{where(self.path or ':memory:')}: the disk is full ({text}); cannot {doing} "
                                    "the send ledger")
        return LedgerWriteError(f"{where(self.path or ':memory:')}: cannot {doing} the send ledger ({text})")

    def _write(self, sql: str, parameters: tuple[object, ...]) -> int | None:
        with self._lock:
            try:
                if self._in_transaction:  # committed with the rest of the transaction
                    return self._db.execute(sql, parameters).lastrowid
                with self._db:
                    return self._db.execute(sql, parameters).lastrowid
            except sqlite3.Error as exc:
                raise self._write_error(exc, "write") from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The writes in the block as one commit, so one fsync; if it fails, none of them.

        A send records the answers that came in and the next batch together: that
        batch is still on disk before it is posted, with half the fsyncs.
        """
        with self._lock:
            if self._in_transaction:
                yield
                return
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._write_error(exc, "write") from None
            self._in_transaction = True
            try:
                yield
            except BaseException:
                self._in_transaction = False
                self._rollback()
                raise
            self._in_transaction = False
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise self._write_error(exc, "write") from None

    def together(self, write: Callable[[], T]) -> T:
        """Run `write` in a commit shared with the other threads' writes waiting at the same time;
        return once that commit is on disk (`LedgerWriteError`, and none of them, if it fails).

        An SMTP message is recorded in flight before its DATA: one fsync a message, which
        the connections paid one after another (an fsync takes ~2.7 ms here: 370 messages
        a second at most, whatever the server). The thread whose write finds no commit
        running commits what is waiting then; the others' writes wait for the next one.
        """
        return self.wait_for(self.queue(write))

    def queue(self, write: Callable[[], T]) -> _GroupWrite[T]:
        """`write`, to go in the next commit (whichever thread makes it); `wait_for` it before relying on it."""
        mine = _GroupWrite(write)
        with self._group:
            self._queued.append(mine)
        return mine

    def wait_for(self, mine: _GroupWrite[T]) -> T:
        """The result of a queued write once its commit is on disk (committing it if no one is)."""
        with self._group:
            while not mine.done:
                if self._committing:
                    self._group.wait()
                    continue
                self._committing = True
                group, self._queued = self._queued, []
                self._group.release()
                try:
                    self._commit_group(group)
                finally:
                    self._group.acquire()
                    self._committing = False
                    self._group.notify_all()
        if mine.error is not None:
            raise mine.error
        return cast(T, mine.result)  # done without an error: what `write` returned

    def _commit_group(self, group: list[_GroupWrite[Any]]) -> None:
        error: BaseException | None = None
        try:
            with self.transaction():
                for queued in group:
                    queued.result = queued.write()
        except BaseException as exc:  # noqa: BLE001 - every write of the commit gets its failure
            error = exc
        for queued in group:
            queued.error, queued.done = error, True

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # no transaction left to roll back (SQLite ends one itself on some errors)

    def recover(self) -> int:
        """Clear what a dead send left (called with the issue's lock held); how many recipients
        are now uncertain.

        Its batches still `sending` may have reached SendGrid: they become uncertain. Its
        batches `waiting` out a 429 were refused and not posted again: they are forgotten,
        so the next run posts to their recipients. Its mark goes, and its records move
        from the -wal into the main file.
        """
        count, waiting = self._db.execute(
            "SELECT coalesce(sum(state = ? AND size), 0), coalesce(sum(state = ?), 0) FROM batches",
            (SENDING, WAITING)).fetchone()
        if count or waiting:
            with self.transaction():
                self._write("UPDATE batches SET state = ?, error = 'the process stopped before an answer came', "
                            "updated = ? WHERE state = ?", (UNCERTAIN, time.time(), SENDING))
                self._write("DELETE FROM batches WHERE state = ?", (WAITING,))
        if self._meta(SEND_RUNNING) is not None:
            self.end_send()
        return int(count)

    def mark_waiting(self, batch: int, waiting: bool) -> None:
        """A batch refused with a 429 waits to be posted again (`waiting`), or is about to be
        posted again (not `waiting`: in flight, so a crash from here leaves it uncertain).
        Called from the thread posting it; durable before it waits or posts."""
        self._write("UPDATE batches SET state = ?, updated = ? WHERE id = ?",
                    (WAITING if waiting else SENDING, time.time(), batch))

    def states(self) -> dict[str, str]:
        """Each recipient's state: that of the last batch it was posted in."""
        latest: dict[str, str] = {}
        # A batch waiting out a 429 belongs to the send running now: pending, like one in flight.
        for state, recipients in self._db.execute(
                "SELECT CASE state WHEN ? THEN ? ELSE state END, recipients FROM batches ORDER BY id",
                (WAITING, SENDING)):
            # Keyed again by today's address identity: a ledger written when keys were only
            # lower-cased holds `xn--` domains and decomposed accents as they were then.
            latest.update(dict.fromkeys(address_keys(recipients.split("\n")), state))
        return latest

    def keys_in(self, *states: str) -> set[str]:
        """The recipients whose last request is in one of `states`."""
        return {key for key, state in self.states().items() if state in states}

    def record(self, keys: list[str], schedule: Schedule | None = None, provider: str | None = None) -> int:
        """Write a batch and its recipients as in flight, durably, before it is posted
        (through `provider`: a re-run through another one still knows who has the issue)."""
        now = time.time()
        send_at, batch_id = (schedule.send_at, schedule.batch_id) if schedule else (None, None)
        batch = self._write("INSERT INTO batches (state, size, recipients, created, updated, send_at, batch_id, "
                            "provider) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (SENDING, len(keys), "\n".join(keys), now, now, send_at, batch_id, provider))
        assert batch is not None
        return batch

    def record_message(self, key: str, provider: str | None = None) -> int:
        """Write one message as in flight, just before its DATA (SMTP): a batch of one recipient.

        The messages an SMTP post carries are each written so as they start, not all when
        the post does, so that a send killed in the middle leaves uncertain only the message
        that had begun, never the ones after it."""
        now = time.time()
        batch = self._write("INSERT INTO batches (state, size, recipients, created, updated, provider) "
                            "VALUES (?, 1, ?, ?, ?, ?)", (SENDING, key, now, now, provider))
        assert batch is not None
        return batch

    def settle(self, batch: int, state: str, *, message_id: str = "", status: int | None = None,
               error: str = "") -> None:
        """Record what came of a batch: accepted (with SendGrid's message id), failed, uncertain."""
        self._write("UPDATE batches SET state = ?, message_id = ?, status = ?, error = ?, updated = ? WHERE id = ?",
                    (state, message_id or None, status, error or None, time.time(), batch))

    def forget(self, batch: int) -> None:
        """Remove a batch that was recorded but never posted: its recipients are as they were."""
        self._write("DELETE FROM batches WHERE id = ?", (batch,))

    def counts(self) -> LedgerCounts:
        """Recipients by state; `pending` are in a batch still marked in flight; `not_sent`, those of
        the last send's plan the ledger does not hold (`plan_send`), from the ledger alone: `status`
        reads no subscriber list."""
        states = self.states()
        by_state = Counter(states.values())
        planned = self._meta(PLANNED)
        # A plan counts everyone the ledger held when the send began, so what a send adds (a reader
        # posted to, failed or uncertain) is in both; what it forgot (a batch never posted) or never
        # reached is the difference. Never below 0: a reader who subscribed between the plan's count
        # and the send's own reading of the list is posted to, though not in the plan.
        # The readers of earlier stopped sends of other selections are in the plan as a count of
        # their own (`plan_send`), never below it.
        elsewhere = self._planned_elsewhere()
        not_sent = (max(sum(elsewhere.values()), int(planned) - len(states))
                    if planned is not None and planned.isdigit() else None)
        return LedgerCounts(sent=by_state.get(ACCEPTED, 0), pending=by_state.get(SENDING, 0),
                            failed=by_state.get(FAILED, 0), uncertain=by_state.get(UNCERTAIN, 0),
                            cancelled=by_state.get(CANCELLED, 0), not_sent=not_sent,
                            resume=self._meta(PLANNED_COMMAND) or f"newsletter send {self.issue}",
                            running=self._meta(SEND_RUNNING) is not None, elsewhere=tuple(elsewhere.items()))

    def schedule(self) -> Schedule | None:
        """The scheduled send still standing: that of the last batch recorded with one, unless cancelled.

        A re-run uses it for the rest, so everyone gets the issue at the same moment.
        """
        row = self._db.execute(
            "SELECT send_at, batch_id, state FROM batches WHERE batch_id IS NOT NULL ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is None or row[2] == CANCELLED:
            return None
        return Schedule(int(row[0]), str(row[1]))

    def cancel(self, batch_id: str) -> int:
        """Mark what was posted in scheduled batch `batch_id` cancelled; how many recipients it held."""
        (count,) = self._db.execute(
            "SELECT coalesce(sum(size), 0) FROM batches WHERE batch_id = ? AND state IN (?, ?, ?)",
            (batch_id, ACCEPTED, UNCERTAIN, SENDING)).fetchone()
        self._write("UPDATE batches SET state = ?, updated = ? WHERE batch_id = ? AND state IN (?, ?, ?)",
                    (CANCELLED, time.time(), batch_id, ACCEPTED, UNCERTAIN, SENDING))
        return int(count)

    def first_delivered_at(self) -> float | None:
        """When SendGrid delivers the first request it accepted (unix seconds): the send time
        of a scheduled one, else when it was accepted; None before any (cancelled ones never count)."""
        (first,) = self._db.execute("SELECT min(coalesce(send_at, created)) FROM batches WHERE state = ?",
                                    (ACCEPTED,)).fetchone()
        return float(first) if first is not None else None


@dataclass
class _GroupWrite(Generic[T]):
    """One thread's write waiting for a shared commit (`Ledger.together`)."""

    write: Callable[[], T]
    result: T | None = None
    error: BaseException | None = None
    done: bool = False


def _add_meta_table(db: sqlite3.Connection) -> None:
    """Give a ledger made before the meta table its table (not a write when it has one)."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone() is None:
        with db:
            db.execute(_META)


def _add_later_columns(db: sqlite3.Connection) -> None:
    """Give an older ledger the columns added since (NULL: sent at once; through SendGrid, the only one then)."""
    present = {row[1] for row in db.execute("PRAGMA table_info(batches)")}
    for name, kind in _LATER_COLUMNS.items():
        if name not in present:
            with db:
                db.execute(f"ALTER TABLE batches ADD COLUMN {name} {kind}")


def wal_path(path: Path) -> Path:
    """The -wal file beside a ledger: while a send runs (or after one was killed) its records."""
    return path.with_name(path.name + "-wal")


def _copied_without_wal(path: Path, issue: str) -> str:
    # Never advice that sends again: the lost -wal may hold thousands who have the issue.
    return (f"{where(path)} was copied without its {where(wal_path(path))} while a send of {issue} was running "
            "(or after one was killed), so it lacks that send's records: put back the -wal from where the "
            "ledger was copied, both files together (`newsletter backup` makes copies that need no -wal); if "
            f"the -wal is lost for good, this ledger cannot say who got {issue}: check your provider's activity "
            "(SendGrid's activity feed, the SMTP server's log) before sending it again")


# Below this much free space a write that failed is put down to a full disk: SQLite reports
# some writes that meet ENOSPC as "disk I/O error" (creating a ledger on a full disk did).
_FULL_BELOW = 256 * 1024


def disk_is_full(exc: BaseException, path: Path | None) -> bool:
    """Whether `exc`, from writing at `path`, came of a full disk."""
    if getattr(exc, "errno", None) == errno.ENOSPC or "full" in str(exc):
        return True
    if path is None:
        return False
    try:
        return shutil.disk_usage(path if path.is_dir() else path.parent).free < _FULL_BELOW
    except OSError:
        return False


def _check_readable(db: sqlite3.Connection, path: Path, issue: str) -> None:
    """Refuse a ledger that is empty, has no `batches` table, or that SQLite finds damaged."""
    try:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        damage = [row[0] for row in db.execute("PRAGMA quick_check")] if "batches" in tables else []
    except sqlite3.DatabaseError as exc:  # "file is not a database", "database disk image is malformed"
        raise SendError(f"{where(path)} is damaged ({_one_line(str(exc))}): {_restore_advice(path, issue)}") from None
    if "batches" not in tables:
        empty = "is empty" if path.stat().st_size == 0 else "holds no send records (no batches table)"
        raise SendError(f"{where(path)} {empty}: {_restore_advice(path, issue)}")
    if damage != ["ok"]:
        # SQLite's first finding starts "*** in database main ***" and a newline: one line of
        # the first two findings, not the seven lines random bytes once gave.
        findings = [line.strip() for row in damage for line in str(row).splitlines()
                    if line.strip() and not line.startswith("***")]
        raise SendError(f"{where(path)} is damaged ({'; '.join(findings[:2])[:200]}): "
                        f"{_restore_advice(path, issue)}")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _create(path: Path) -> None:
    """Make a new, empty ledger at `path`: built whole in a temporary file, then linked in place."""
    temporary = path.with_name(f".{path.name}.new")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.unlink(missing_ok=True)
        db = sqlite3.connect(str(temporary), isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
        finally:
            db.close()
        fsync(temporary)
        try:
            os.link(temporary, path)  # never over an existing ledger
        except FileExistsError:
            pass
        fsync(path.parent)
    except (sqlite3.Error, OSError) as exc:
        if disk_is_full(exc, path):
            raise LedgerWriteError(f"{where(path)}: the disk is full: cannot create the send ledger; nothing was "
                                   "sent: free some space and send again") from None
        raise LedgerWriteError(f"{where(path)}: cannot create the send ledger "
                               f"({getattr(exc, 'strerror', None) or exc})") from None
    finally:
        temporary.unlink(missing_ok=True)


def fsync(path: Path) -> None:
    """Make `path` (a file or a folder) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def lock_trace(settings: Settings, issue: str) -> Path | None:
    """`sent/ISSUE.lock` when a send noted in it that the issue has a ledger (`SendLock.note_ledger`)."""
    path = lock_path(settings, issue)
    try:
        return path if path.stat().st_size > 0 else None
    except OSError:
        return None


def saved_copies(settings: Settings, issue: str) -> list[Path]:
    """`sent/ISSUE.saved-*.sqlite`: what a send recorded when its ledger was deleted under it."""
    return sorted((settings.root / SENT_DIR).glob(f"{issue}.saved-*.sqlite"))


def read_only(path: Path) -> sqlite3.Connection:
    """Ledger `path` opened read-only (`mode=ro`): nothing is written to it or made beside it,
    and a send writing it meanwhile is not blocked (WAL readers do not block writers)."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def _recorded_identity(path: Path) -> dict[str, str]:
    """The meta of another ledger, read without changing it ({} when it has none or cannot be read)."""
    try:
        db = read_only(path)
    except sqlite3.Error:
        return {}
    try:
        return {str(key): str(value) for key, value in db.execute("SELECT key, value FROM meta")}
    except sqlite3.Error:
        return {}
    finally:
        db.close()


def ledger_of_same_issue(settings: Settings, identity: IssueIdentity) -> tuple[Path, str] | None:
    """Another issue's ledger that records a send of this one (renamed), and how it shows it."""
    for path in sorted((settings.root / SENT_DIR).glob("*.sqlite")):
        if ".saved-" in path.name or path.stem == identity.name:
            continue
        how = identity.matches(_recorded_identity(path))
        if how:
            return path, how
    return None


def earlier_send_without_ledger(settings: Settings, issue: Issue) -> str:
    """Why `issue`, whose ledger is missing, must not be sent as if for the first time ('' if nothing says so)."""
    if ledger_path(settings, issue.name).exists() or old_ledger_path(settings, issue.name).exists():
        return ""
    return earlier_send(settings, IssueIdentity.of(issue))


def earlier_send(settings: Settings, identity: IssueIdentity) -> str:
    """Why a send of an issue whose ledger is missing must not start as a first send ('' if none).

    A deleted or renamed ledger was a silent fresh start, although the publication showed
    the issue was sent: another ledger recording it (its folder renamed), a copy a stopped
    send saved, or its lock file noting a ledger. `--first-send` says the sender knows.
    """
    issue = identity.name
    ledger = ledger_path(settings, issue)
    other = ledger_of_same_issue(settings, identity)
    if other is not None:
        path, how = other
        new_name = where(ledger)
        return (f"{where(path)} records a send of this issue ({how}) under the name {path.stem}: if the folder "
                f"was renamed to {issue}, carry the record over with `mv {where(path)} {new_name}`, then send "
                f"again; if {issue} is another issue made from a copy, give it its own "
                + ("`id:` (delete that line of its issue.yaml) " if how.startswith("the same id") else
                   "subject or articles ")
                + "or send with --first-send")
    copies = saved_copies(settings, issue)
    if copies:
        copy = copies[-1]
        return (f"{where(ledger)} is missing, and {where(copy)} holds what an earlier send of {issue} recorded: make "
                f"it the ledger (`mv {where(copy)} {where(ledger)}`), check `newsletter status {issue}`, then send "
                "again; only if none of it matters any more, send with --first-send")
    lock = lock_trace(settings, issue)
    if lock is not None:
        return (f"{where(ledger)} is missing, but {where(lock)} shows {issue} was sent from here before: "
                f"restore {where(ledger)} from your backup of {SENT_DIR}/; only if {issue} was never sent, send "
                "with --first-send")
    return ""


def move_old_ledger(settings: Settings, issue: str) -> Path | None:
    """Move `build/ISSUE/ledger.sqlite` to `sent/ISSUE.sqlite`, losing nothing; the new path, if moved.

    Called with the issue's `SendLock` held. The old file is copied with SQLite's
    backup API (which reads its WAL too), the copy is checked to hold every batch,
    made durable and linked into place; only then are the old files removed.
    """
    old, new = old_ledger_path(settings, issue), ledger_path(settings, issue)
    if not old.is_file():
        return None
    if new.exists():
        raise SendError(f"{where(old)} and {where(new)} both exist: ledgers now live in {SENT_DIR}/; check that "
                        f"{where(new)} has the sends you expect (`newsletter status {issue}`), then delete "
                        f"{where(old)} (keep a copy if in doubt)")
    source = sqlite3.connect(str(old), isolation_level=None)
    temporary = new.with_name(f".{new.name}.moving")
    try:
        _check_readable(source, old, issue)
        new.parent.mkdir(parents=True, exist_ok=True)
        temporary.unlink(missing_ok=True)
        target = sqlite3.connect(str(temporary), isolation_level=None)
        try:
            source.backup(target)
            target.execute("PRAGMA journal_mode=WAL")
            copied = target.execute("SELECT count(*), coalesce(sum(size), 0) FROM batches").fetchone()
        finally:
            target.close()
        if copied != source.execute("SELECT count(*), coalesce(sum(size), 0) FROM batches").fetchone():
            raise SendError(f"{where(old)}: could not copy the send ledger to {where(new)} whole; it was left "
                            "where it is")
        fsync(temporary)
        os.link(temporary, new)
        fsync(new.parent)
    except (sqlite3.Error, OSError) as exc:
        raise LedgerWriteError(f"{where(old)}: could not move the send ledger to {where(new)} "
                               f"({getattr(exc, 'strerror', None) or exc}); it was left where it is") from None
    finally:
        source.close()
        temporary.unlink(missing_ok=True)
    for leftover in (old, old.with_name(OLD_LEDGER + "-wal"), old.with_name(OLD_LEDGER + "-shm")):
        leftover.unlink(missing_ok=True)
    return new


class SendLock:
    """An exclusive lock on one issue's sends, so two processes never post the same batch.

    With `old_ledger` (`old_ledger_path`), the lock older versions take beside their
    ledger (`build/ISSUE/send.lock`) is held too, so that an older and a newer newsletter
    never send one issue at once: either refuses while the other holds its lock. Both
    are taken without waiting, ours first.
    """

    def __init__(self, path: Path, old_ledger: Path | None = None) -> None:
        self.path = path
        self.old_path = None if old_ledger is None else old_ledger.with_name(OLD_LOCK)
        self._lock = FileLock(path)
        self._old = None if self.old_path is None else FileLock(self.old_path)
        self._held_by_old_version = False

    def acquire(self, issue: str) -> None:
        """Take the lock or raise `SendError` naming the other send (or the folder that refuses it)."""
        if not self.try_acquire():
            if self._held_by_old_version:
                raise SendError(f"another `newsletter send {issue}` is running, by an older version of newsletter "
                                f"({where(self.old_path or self.path)} is locked); wait for it to finish")
            raise SendError(f"another `newsletter send {issue}` is running ({where(self.path)} is locked); "
                            "wait for it to finish")

    def try_acquire(self) -> bool:
        """Whether the lock was free (and is held now); `SendError` when its file cannot be made."""
        self._held_by_old_version = False
        try:
            if not self._lock.acquire(blocking=False):
                return False
        except OSError as exc:  # sent/ read-only, say: one line naming it, not a traceback
            raise SendError(write_failure(self.path, exc)) from None
        if self._old is None:
            return True
        try:
            taken = self._old.acquire(blocking=False)
        except OSError:
            # build/ cannot be written (read-only, or a file in the way): then no older
            # version can take that lock or keep its ledger there either, so none is sending.
            return True
        if not taken:
            self._held_by_old_version = True
            self._lock.release()
        return taken

    def note_ledger(self, ledger: Path) -> None:
        """Write in the lock file (held) that the issue has a ledger: if the ledger goes missing,
        the note shows the issue was sent (an empty lock file is made by any attempt, even one
        refused or declined at the question)."""
        self._lock.note(f"{ledger.name} records the sends of {ledger.stem}: without it, do not send it again\n")

    def release(self) -> None:
        if self._old is not None:
            self._old.release()
        self._lock.release()


# -- one person's records (newsletter.rights: show and erase one address) ----------------

@dataclass(frozen=True)
class RecipientRecord:
    """One request of a ledger that held an address: what the ledger says of it."""

    batch: int
    state: str
    created: float
    updated: float
    message_id: str | None
    status: int | None
    error: str | None
    send_at: int | None


def records_of(path: Path, key: str) -> list[RecipientRecord]:
    """The requests of ledger `path` that hold the address whose `address_key` is `key`.

    Opened `read_only`: a subject access request changes nothing, and may run while a send
    writes the ledger.
    """
    try:
        db = read_only(path)
        try:
            present = {row[1] for row in db.execute("PRAGMA table_info(batches)")}
            columns = ", ".join(name if name in present else "NULL"
                                for name in ("id", "state", "created", "updated", "message_id", "status", "error",
                                             "send_at"))
            return [RecipientRecord(*row[:8]) for row in db.execute(f"SELECT {columns}, recipients FROM batches "
                                                                     "ORDER BY id")
                    if key in address_keys(row[8].split("\n"))]
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise SendError(f"{where(path)}: cannot read the send ledger ({exc}); {_restore_advice(path, path.stem)}"
                        ) from None


def replace_recipient(path: Path, key: str, token: str, written: tuple[str, ...]) -> int:
    """Put `token` where ledger `path` holds the address whose key is `key`; how many rows held it.

    Called with every issue's `SendLock` held. The address is also cut out of the error
    texts (`written`: the forms it may be quoted in). `secure_delete` zeroes the old
    bytes SQLite frees, and the WAL is checkpointed and truncated, so no copy of the
    address is left in the file or beside it.
    """
    db = sqlite3.connect(str(path), isolation_level=None, timeout=30)
    replaced = 0
    try:
        db.execute("PRAGMA secure_delete=ON")
        db.execute("BEGIN IMMEDIATE")
        for batch, recipients, error in db.execute("SELECT id, recipients, error FROM batches").fetchall():
            lines = recipients.split("\n")
            keys = address_keys(lines)
            if key not in keys:
                if error and any(form.lower() in error.lower() for form in written):
                    db.execute("UPDATE batches SET error = ? WHERE id = ?", (_without(error, written), batch))
                continue
            replaced += keys.count(key)
            lines = [token if line_key == key else line for line, line_key in zip(lines, keys, strict=True)]
            db.execute("UPDATE batches SET recipients = ?, error = ? WHERE id = ?",
                       ("\n".join(lines), _without(error, written) if error else error, batch))
        _clear_dead_send_mark(db)
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        raise LedgerWriteError(f"{where(path)}: cannot erase the address from the send ledger ({exc}); "
                               "run the erasure again") from None
    finally:
        db.close()
    return replaced


def _clear_dead_send_mark(db: sqlite3.Connection) -> None:
    """Clear the mark of a send that died (the caller holds the issue's lock): the checkpoint
    that follows removes the -wal, and a mark without it would read as a copy made mid-send."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone() is not None:
        db.execute("DELETE FROM meta WHERE key IN (?, ?)", (SEND_RUNNING, MARKED_AFTER))


def _without(text: str, written: tuple[str, ...]) -> str:
    """`text` with every form of the address in `written` replaced, whatever its case."""
    for form in written:
        text = re.sub(re.escape(form), "[erased]", text, flags=re.IGNORECASE)
    return text


# -- an issue's ledger read, for status, stats, cancel and add (not a send) ------------------


def open_ledger(settings: Settings, issue: str) -> Ledger | None:
    """The issue's ledger for reading, or None when it was never sent.

    When no send holds the issue's lock, a batch still in flight was left by a dead
    process: it is made uncertain here (under the lock), and a ledger still in the
    old place (`build/ISSUE/`) is moved to `sent/`. Otherwise it is pending.
    """
    from newsletter.content import issue_folder  # content is not loaded by every ledger reader

    issue = issue_folder(settings, issue).name  # refuses an unknown issue
    path = ledger_path(settings, issue)
    if not (path.exists() or old_ledger_path(settings, issue).exists()):
        return None  # never sent: nothing to lock, and no sent/ folder made by a status or dry run
    # An older version sending it (its build/ISSUE/send.lock held) is not idle: its ledger stays put.
    lock = SendLock(lock_path(settings, issue), old_ledger_path(settings, issue))
    idle = lock.try_acquire()
    try:
        if idle:
            move_old_ledger(settings, issue)
        if not path.exists():
            return None
        ledger = Ledger(path, issue, create=False, alone=idle)
        if idle:
            try:
                ledger.recover()
            except BaseException:
                ledger.close()
                raise
    finally:
        lock.release()
    return ledger


def read_ledger(settings: Settings, issue: str, read: Callable[[Ledger], T], never_sent: T) -> T:
    """`read(ledger)` on the issue's ledger, opened as `open_ledger` opens it, then closed;
    `never_sent` when the issue has no ledger."""
    ledger = open_ledger(settings, issue)
    if ledger is None:
        return never_sent
    try:
        return read(ledger)
    finally:
        ledger.close()


def issue_status(settings: Settings, issue: str) -> LedgerCounts:
    """The ledger's counts for `issue`; zeros when it was never sent."""
    return read_ledger(settings, issue, Ledger.counts, LedgerCounts())


def uncertain_recipients(settings: Settings, issue: str) -> list[str]:
    """Every recipient of `issue` whose request got no answer, sorted (in flight now: not listed)."""
    return read_ledger(settings, issue, lambda ledger: sorted(ledger.keys_in(UNCERTAIN)), [])


def first_delivered_at(settings: Settings, issue: str) -> float | None:
    """When SendGrid delivers the first request of `issue` it accepted (unix seconds): the send
    time of a scheduled one, else when it was accepted; None when none was (or all were cancelled)."""
    return read_ledger(settings, issue, Ledger.first_delivered_at, None)


def issue_schedule(settings: Settings, issue: str) -> Schedule | None:
    """The scheduled send of `issue` still standing (not cancelled), if any."""
    return read_ledger(settings, issue, Ledger.schedule, None)
