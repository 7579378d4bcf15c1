"""Each reader's data: show everything held about one address; erase it everywhere.

`newsletter subscribers show EMAIL` answers a subject access request (GDPR art. 15):
the address's row in every list under `subscribers/` (every column, its consent
evidence included), every request of every send ledger that held it (issue, when, what
came of it), and the files under `build/` that hold it (a dry run's request bodies).

`newsletter subscribers delete EMAIL` answers an erasure request (art. 17): the rows go
from every list, each ledger row of the address becomes a keyed hash (so exactly-once
still holds: `subscribers/erasure.py` says why and how), the files under `build/` that
hold it are removed (all of build/ is made again by the next build or dry run), and the
hash is kept in `sent/erased.csv` so that no import of an old spreadsheet adds the person
back quietly.

Both also cover the sign-up server's records, `signup.sqlite` in the publication folder
(`newsletter serve`'s default) when that file is here, or the file given as `--db` (as to
`serve --db`): pending and confirmed sign-ups with their IPs and page, unsubscribes, the
emails of its outbox (`signup/records.py`). A server run elsewhere keeps its own file: the
delete's report says to erase the address there too.

Addresses are matched by `address_key`, the one address identity. This module sits
above `subscribers/` and `sending/` (it reads both), not inside `subscribers/` as
LAYOUT.md sketched: the ledgers belong to `sending/`, which `subscribers/` must not import.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from newsletter.config import Settings
from newsletter.errors import SendError, SubscriberError, where
from newsletter.signup.records import BUSY_SECONDS, SignupRecords, erase_records, read_records
from newsletter.signup.store import DEFAULT_DB
from newsletter.sending.ledger import (
    OLD_LEDGER, OLD_LOCK, SENT_DIR, RecipientRecord, SendLock, lock_path, old_ledger_path, records_of,
    replace_recipient,
)
from newsletter.subscribers.addresses import address_key
from newsletter.subscribers.erasure import (
    REGISTER_LOCK, create_hasher, erased_addresses, record_erasure, register_path,
)
from newsletter.subscribers.importing import plural
from newsletter.subscribers.lists import erase_rows
from newsletter.subscribers.store import COLUMNS, EMAIL, iso_utc, open_list

# Files under build/ that are not caches: an old ledger is erased as a ledger, not removed.
_NOT_CACHES = (OLD_LEDGER, f"{OLD_LEDGER}-wal", f"{OLD_LEDGER}-shm", OLD_LOCK)


@dataclass(frozen=True)
class ListRow:
    """The address's row in one list: every column as the file holds it."""

    path: Path
    row: int
    columns: dict[str, str]


@dataclass(frozen=True)
class LedgerEntry:
    """One request of one issue's send that held the address."""

    issue: str
    path: Path
    record: RecipientRecord

    def line(self) -> str:
        record = self.record
        what = f"{self.issue}: {record.state} (request {record.batch}, recorded {iso_utc(record.created)}"
        if record.updated != record.created:
            what += f", answered {iso_utc(record.updated)}"
        if record.send_at:
            what += f", delivered at {iso_utc(record.send_at)}"
        if record.message_id:
            what += f", SendGrid message id {record.message_id}"
        if record.error:
            what += f", error: {record.error}"
        return f"{where(self.path)}: {what})"

    def as_json(self) -> dict[str, Any]:
        record = self.record
        return {"issue": self.issue, "ledger": where(self.path), "request": record.batch, "state": record.state,
                "recorded": iso_utc(record.created), "answered": iso_utc(record.updated),
                "delivered_at": iso_utc(record.send_at) if record.send_at else None,
                "message_id": record.message_id, "status": record.status, "error": record.error}


@dataclass
class HeldData:
    """Everything the publication holds about one address."""

    address: str
    lists: list[ListRow] = field(default_factory=list)
    sends: list[LedgerEntry] = field(default_factory=list)
    build_files: list[Path] = field(default_factory=list)
    erased_on: str | None = None  # the date it was erased, when the register holds its hash
    register: Path | None = None
    signup: SignupRecords | None = None  # the sign-up server's records, when its signup.sqlite is here

    @property
    def signup_records(self) -> int:
        return len(self.signup.records) if self.signup else 0

    @property
    def held(self) -> bool:
        return bool(self.lists or self.sends or self.build_files or self.signup_records)

    def lines(self) -> list[str]:
        if not self.held:
            lines = [f"{self.address}: no data held (no list, send ledger or file under build/ holds it)"]
        else:
            lines = [f"{self.address}: held in {plural(len(self.lists), 'list row')}, "
                     f"{plural(len(self.sends), 'send ledger request')}, "
                     f"{plural(len(self.build_files), 'file')} under build/"
                     + (f", {plural(self.signup_records, 'sign-up server record')}" if self.signup_records else "")]
        for entry in self.lists:
            lines.append(f"{where(entry.path, entry.row)}:")
            width = max(map(len, entry.columns))
            lines += [f"  {name:<{width}}  {value}" for name, value in entry.columns.items()]
        lines += [entry.line() for entry in self.sends]
        lines += [f"{where(path)}: holds the address (made by a build or dry run)" for path in self.build_files]
        lines += self.signup.lines() if self.signup else []
        if self.erased_on is not None and self.register is not None:
            lines.append(f"{where(self.register)}: erased on {self.erased_on}, kept as a keyed hash so that no "
                         "import adds it back")
        return lines

    def as_json(self) -> str:
        return json.dumps({
            "address": self.address,
            "held": self.held,
            "lists": [{"list": entry.path.stem, "file": where(entry.path), "row": entry.row,
                       "columns": entry.columns} for entry in self.lists],
            "sends": [entry.as_json() for entry in self.sends],
            "build_files": [where(path) for path in self.build_files],
            "signup": self.signup.as_json() if self.signup else None,
            "erased_on": self.erased_on,
        }, ensure_ascii=False, indent=2)


def show_address(settings: Settings, email: str, signup_db: Path | None = None) -> HeldData:
    """Everything held about `email`: list rows, ledger requests, files under build/, and the sign-up
    server's records (`signup_db`, default signup.sqlite in the publication when it is there)."""
    address = _address(email)
    key = address_key(address)
    held = HeldData(address, lists=_list_rows(settings, key))
    for issue, path in _ledgers(settings):
        held.sends += [LedgerEntry(issue, path, record) for record in records_of(path, key)]
    held.build_files = list(_build_files_holding(settings, _written_forms(address, held.lists)))
    db = _signup_db(settings, signup_db)
    held.signup = read_records(db, address) if db else None
    erased = erased_addresses(settings)
    held.erased_on = erased.erased_on(address)
    held.register = register_path(settings)
    return held


@dataclass
class ErasureReport:
    """What `erase_address` erased where."""

    address: str
    erased_on: str
    list_rows: dict[Path, int] = field(default_factory=dict)
    ledger_rows: dict[Path, int] = field(default_factory=dict)
    build_files: list[Path] = field(default_factory=list)
    register: Path | None = None
    build_dir: Path = Path("build")
    signup_db: Path | None = None  # the sign-up server's records erased here, and how many rows held it
    signup_rows: int = 0
    signup_elsewhere: str | None = None  # signup.url, when `signup:` is set but its records are not here

    def lines(self) -> list[str]:
        register = where(self.register) if self.register else f"{SENT_DIR}/"
        elsewhere = ([f"  the sign-up server at {self.signup_elsewhere} keeps its own records where it runs: erase "
                      "the address there too (run this delete in its folder)"] if self.signup_elsewhere else [])
        if not (self.list_rows or self.ledger_rows or self.build_files or self.signup_rows):
            return [f"{self.address} was held nowhere (no list, send ledger or file under build/); recorded as "
                    f"erased in {register} (a keyed hash, since {self.erased_on}), so no import adds it back",
                    *elsewhere]
        lines = [f"Erased {self.address}; {register} keeps a keyed hash of it (erased on {self.erased_on}), so no "
                 "import adds it back without --resubscribe"]
        lines += [f"  {where(path)}: {plural(rows, 'row')} removed" for path, rows in self.list_rows.items()]
        lines += [f"  {where(path)}: {plural(rows, 'request')} now hold{'s' if rows == 1 else ''} the keyed hash "
                  f"instead (the issue is still not sent to it twice)" for path, rows in self.ledger_rows.items()]
        if self.build_files:
            lines.append(f"  {where(self.build_dir)}/: {plural(len(self.build_files), 'file')} removed (dry-run "
                         "request bodies and caches; made again by the next build or dry run)")
        if self.signup_db and self.signup_rows:
            lines.append(f"  {where(self.signup_db)}: {plural(self.signup_rows, 'record')} of the sign-up server "
                         "erased (sign-ups, unsubscribes, emails)")
        return lines + elsewhere


def erase_address(settings: Settings, email: str, signup_db: Path | None = None,
                  busy_wait: float | None = None) -> ErasureReport:
    """Erase `email` from every list, ledger and file under build/, and from the sign-up server's
    records (`signup_db`, as for `show_address`); keep its keyed hash. A sign-up server writing its
    records is waited for `busy_wait` seconds (None: `BUSY_SECONDS`).

    Refused while any send runs: every issue's send lock is held throughout, so no send
    reads the list before the erasure and records the address after it.
    """
    address = _address(email)
    key = address_key(address)
    with _every_send_lock(settings):
        db = _signup_db(settings, signup_db)  # a --db that is not there stops it before anything is erased
        list_rows = _list_rows(settings, key)
        forms = _written_forms(address, list_rows)
        build_files = list(_build_files_holding(settings, forms))
        # The hash first: an erasure stopped half-way still keeps the person from being
        # imported again, and running it again finishes it.
        hasher = create_hasher(settings)
        report = ErasureReport(address, record_erasure(settings, hasher, address), register=register_path(settings),
                               build_dir=settings.build_dir)
        # The server's records before the lists: a running server that holds its file's lock
        # stops the erasure here, the lists still untouched, and the delete is simply run again.
        if db is not None:
            report.signup_db, report.signup_rows = db, erase_records(
                db, address, BUSY_SECONDS if busy_wait is None else busy_wait)
        elif settings.signup is not None:
            report.signup_elsewhere = settings.signup.url
        for path in sorted({entry.path for entry in list_rows}):
            report.list_rows[path] = erase_rows(settings, address, path.stem)
        token = hasher.token(address)
        for _, path in _ledgers(settings):
            rows = replace_recipient(path, key, token, forms)
            if rows:
                report.ledger_rows[path] = rows
        for path in build_files:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise SubscriberError(f"{where(path)}: cannot remove it ({exc.strerror or exc}); remove it by "
                                      "hand, it holds the address") from None
            report.build_files.append(path)
    return report


# -- where the publication keeps addresses ---------------------------------------------------

def _address(email: str) -> str:
    address = email.strip()
    if "@" not in address:
        raise SubscriberError(f"{address!r} is not an email address (no @)")
    return address


def _signup_db(settings: Settings, given: Path | None) -> Path | None:
    """The sign-up server's records: the file given (`--db`), which must be there, or else the one in the
    publication folder (`newsletter serve`'s default), if it is there."""
    if given is not None:
        if not given.is_file():
            raise SubscriberError(f"{where(given)}: no such file (--db): give the sign-up server's records, the file "
                                  "`newsletter serve --db` was given (signup.sqlite by default); nothing was read "
                                  "or erased")
        return given
    path = settings.root / DEFAULT_DB
    return path if path.is_file() else None


def _lists(settings: Settings) -> list[Path]:
    folder = settings.subscribers_dir
    return sorted(path for path in folder.glob("*.csv") if path.is_file()) if folder.is_dir() else []


def _ledgers(settings: Settings) -> list[tuple[str, Path]]:
    """(issue, file) of every send ledger: `sent/*.sqlite` (saved copies too) and old `build/*/ledger.sqlite`."""
    found = [(path.stem.split(".saved-")[0], path) for path in sorted((settings.root / SENT_DIR).glob("*.sqlite"))]
    found += [(path.parent.name, path) for path in sorted(settings.build_dir.glob(f"*/{OLD_LEDGER}"))]
    return found


def _list_rows(settings: Settings, key: str) -> list[ListRow]:
    """The rows of every list whose address is `key` (an `address_key`)."""
    found: list[ListRow] = []
    for path in _lists(settings):
        with open_list(path) as listing:
            names = (*COLUMNS, *listing.extra_columns)
            found += [ListRow(path, number, dict(zip(names, row, strict=False)))
                      for number, row in listing.rows if address_key(row[EMAIL]) == key]
    return found


def _written_forms(address: str, list_rows: list[ListRow]) -> tuple[str, ...]:
    """The address as it may be written in a file: as typed, as each list holds it, JSON- and URL-escaped."""
    spellings = {address, address_key(address), *(entry.columns.get("email", "").strip() for entry in list_rows)}
    forms = set()
    for spelling in filter(None, spellings):
        forms |= {spelling, json.dumps(spelling)[1:-1], quote(spelling, safe="@"), quote(spelling, safe="")}
    return tuple(sorted(forms, key=len, reverse=True))


def _build_files_holding(settings: Settings, forms: tuple[str, ...]) -> Iterator[Path]:
    """The files under build/ (old ledgers aside) that hold one of `forms`, any case, as a whole address."""
    if not settings.build_dir.is_dir():
        return
    # Not inside a longer address: `ann@example.org` is not found in `joann@example.org`.
    pattern = re.compile(rb"(?<![\w.%+-])(?:" + b"|".join(re.escape(form.encode()) for form in forms)
                         + rb")(?![\w-]|\.\w)", re.IGNORECASE)
    for folder, _, names in sorted(os.walk(settings.build_dir)):
        for name in sorted(names):
            if name in _NOT_CACHES:
                continue
            path = Path(folder, name)
            try:
                data = path.read_bytes()
            except OSError:
                continue  # a file that cannot be read is not held by us (a socket, a file gone since)
            if pattern.search(data):
                yield path


@contextmanager
def _every_send_lock(settings: Settings) -> Iterator[None]:
    """Hold the send lock of every issue (sent or not), or refuse naming the send that runs."""
    sent = settings.root / SENT_DIR
    issues = {path.stem for path in sent.glob("*.sqlite") if ".saved-" not in path.stem}
    issues |= {path.stem for path in sent.glob("*.lock") if path.name != REGISTER_LOCK}
    issues |= {path.parent.name for path in settings.issues_dir.glob("*/issue.yaml")}
    issues |= {path.parent.name for path in settings.build_dir.glob(f"*/{OLD_LEDGER}")}
    with ExitStack() as stack:
        for issue in sorted(issues):
            old = old_ledger_path(settings, issue)
            lock = SendLock(lock_path(settings, issue), old if old.parent.is_dir() else None)
            try:
                taken = lock.try_acquire()
            except OSError as exc:
                raise SendError(f"{where(lock.path)}: cannot take the send lock ({exc.strerror or exc}); nothing "
                                "was erased") from None
            if not taken:
                raise SendError(f"a send of {issue} is running ({where(lock.path)} is locked): erase once it has "
                                "finished; nothing was erased")
            stack.callback(lock.release)
        yield
