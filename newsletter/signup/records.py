"""What the sign-up server's records (`signup.sqlite`) hold about one address: read for
`subscribers show`, erased for `subscribers delete` (newsletter.rights).

The server keeps an address for up to 30 days after a sync (store.py's docstring says
what and how long); an erasure request cannot wait for that. Its rows are deleted, not
hashed as in the send ledgers: the events' cursor is AUTOINCREMENT, so a deleted number
is never given again and `/changes?after=N` reads the same order with a gap (retention
makes such gaps every day); no row has to stay for exactly-once, the ledgers and
`sent/erased.csv` do that. A confirmed sign-up not yet synced is dropped with the rest:
the person asked to be erased, not added. The `rates` rows of the IPs the address
signed up from go too (each is an IP's count this hour; dropping one only lets that IP
sign up again sooner).

The file is the server's, opened by another process: the delete waits `BUSY_SECONDS` for
its write lock, and says to stop the server or retry beyond that.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsletter.errors import SubscriberError, where
from newsletter.signup.store import SUBSCRIBED
from newsletter.subscribers.addresses import address_key
from newsletter.subscribers.store import iso_utc

BUSY_SECONDS = 5.0  # how long a delete waits for the running server's write to end


@dataclass(frozen=True)
class SignupRecord:
    """One row of signup.sqlite that holds the address, as `show` prints it."""

    table: str  # pending, events, outbox, confirmations
    what: str  # one line: what it is and its times, IPs and page
    fields: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"table": self.table, **self.fields}


@dataclass
class SignupRecords:
    """Every row of one signup.sqlite that holds the address."""

    path: Path
    records: list[SignupRecord] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"{where(self.path)}: {record.what}" for record in self.records]

    def as_json(self) -> dict[str, Any]:
        return {"file": where(self.path), "records": [record.as_json() for record in self.records]}


def read_records(path: Path, email: str) -> SignupRecords:
    """What `path` (the server's signup.sqlite) holds about `email`, read without writing."""
    key = address_key(email)
    found = SignupRecords(path)
    with _connection(path, "read", timeout=BUSY_SECONDS) as db:
        for email_, list_name, first_name, requested_at, ip, page in db.execute(
                "SELECT email, list, first_name, requested_at, ip, page FROM pending WHERE address = ?", (key,)):
            found.records.append(SignupRecord("pending", (
                f"sign-up to {list_name} awaiting confirmation, requested {iso_utc(requested_at)} from IP {ip or '?'}"
                f"{_page(page)}{_name(first_name)}"), {
                "email": email_, "list": list_name, "first_name": first_name, "requested_at": iso_utc(requested_at),
                "ip": ip, "page": page}))
        for cursor, kind, email_, list_name, first_name, tags, requested_at, request_ip, page, confirm_ip, at in \
                db.execute("SELECT cursor, kind, email, list, first_name, tags, requested_at, request_ip, page, "
                           "confirm_ip, at FROM events WHERE address = ? ORDER BY cursor", (key,)):
            if kind == SUBSCRIBED:
                what = (f"confirmed sign-up to {list_name} (event {cursor}), requested {iso_utc(requested_at)} from IP "
                        f"{request_ip or '?'}, confirmed {iso_utc(at)} from IP {confirm_ip or '?'}{_page(page)}"
                        f"{_name(first_name)}")
            else:
                what = f"unsubscribe from {list_name} (event {cursor}) at {iso_utc(at)}"
            found.records.append(SignupRecord("events", what, {
                "event": cursor, "kind": kind, "email": email_, "list": list_name, "first_name": first_name,
                "tags": tags, "requested_at": iso_utc(requested_at), "request_ip": request_ip, "page": page,
                "confirmed_at" if kind == SUBSCRIBED else "at": iso_utc(at), "confirm_ip": confirm_ip}))
        for outbox_id, kind, state, created_at, done_at, subject in _outbox_of(db, key):
            found.records.append(SignupRecord("outbox", (
                f"{kind} email {subject!r} (outbox {outbox_id}): {state}, queued {iso_utc(created_at)}"
                + (f", done {iso_utc(done_at)}" if done_at else "")), {
                "id": outbox_id, "kind": kind, "subject": subject, "state": state, "queued_at": iso_utc(created_at),
                "done_at": iso_utc(done_at)}))
        for (sent_at,) in db.execute("SELECT sent_at FROM confirmations WHERE address = ?", (key,)):
            found.records.append(SignupRecord("confirmations", (
                f"last confirmation email {iso_utc(sent_at)} (kept a day: one a day at most)"),
                {"sent_at": iso_utc(sent_at)}))
    return found


def erase_records(path: Path, email: str, busy_wait: float = BUSY_SECONDS) -> int:
    """Delete every row of `path` that holds `email`, in one transaction; how many. A server
    writing to it is waited for `busy_wait` seconds.

    `secure_delete` zeroes what this connection frees; a VACUUM then rewrites the file, so
    rows the server deleted before (a pending sign-up once confirmed, without
    secure_delete) leave no copy in its free space either; the WAL is checkpointed and
    truncated, so no older page image of the address stays beside it.
    """
    key = address_key(email)
    with _connection(path, "erase the address from", timeout=busy_wait) as db:
        try:
            db.execute("PRAGMA secure_delete=ON")
            db.execute("BEGIN IMMEDIATE")
            ips = {ip for (ip,) in db.execute(
                "SELECT ip FROM pending WHERE address = ? UNION SELECT request_ip FROM events WHERE address = ? "
                "UNION SELECT confirm_ip FROM events WHERE address = ?", (key, key, key)) if ip}
            erased = db.execute("DELETE FROM pending WHERE address = ?", (key,)).rowcount
            erased += db.execute("DELETE FROM events WHERE address = ?", (key,)).rowcount
            erased += db.execute("DELETE FROM confirmations WHERE address = ?", (key,)).rowcount
            for outbox_id, *_ in _outbox_of(db, key):
                erased += db.execute("DELETE FROM outbox WHERE id = ?", (outbox_id,)).rowcount
            db.executemany("DELETE FROM rates WHERE ip = ?", [(ip,) for ip in sorted(ips)])
            db.execute("COMMIT")
            db.execute("VACUUM")
            busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.OperationalError as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if "locked" in str(exc) or "busy" in str(exc):
                raise _busy(path, busy_wait) from None
            raise
        if busy:
            raise _busy(path, busy_wait)
    return erased


def _busy(path: Path, waited: float) -> SubscriberError:
    return SubscriberError(f"{where(path)}: the sign-up server is using it (still locked after {waited:g} s): "
                           "stop `newsletter serve` or retry the delete; the erasure is not finished")


def _outbox_of(db: sqlite3.Connection, key: str) -> Iterator[tuple[int, str, str, int, int | None, str]]:
    """(id, kind, state, created_at, done_at, subject) of the emails to the address: each row's message
    is JSON whose `to` is the reader (the address is matched as the list matches it, any case)."""
    rows = db.execute("SELECT id, kind, state, created_at, done_at, message FROM outbox ORDER BY id").fetchall()
    for outbox_id, kind, state, created_at, done_at, message in rows:
        try:
            email = json.loads(message)
        except ValueError:
            continue
        if address_key(str(email.get("to", ""))) == key:
            yield outbox_id, kind, state, created_at, done_at, str(email.get("subject", ""))


@contextmanager
def _connection(path: Path, doing: str, timeout: float) -> Iterator[sqlite3.Connection]:
    try:
        db = sqlite3.connect(str(path), isolation_level=None, timeout=timeout)
    except sqlite3.Error as exc:
        raise SubscriberError(f"{where(path)}: cannot open the sign-up server's records ({exc})") from None
    try:
        yield db
    except sqlite3.Error as exc:
        raise SubscriberError(f"{where(path)}: cannot {doing} the sign-up server's records ({exc}); is it the "
                              "server's signup.sqlite?") from None
    finally:
        db.close()


def _page(page: str) -> str:
    return f", on the page {page}" if page else ""


def _name(first_name: str) -> str:
    return f", first name {first_name!r}" if first_name else ""
