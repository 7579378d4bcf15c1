"""Subscriber lists: `subscribers/<list>.csv`, streamed as rows and rewritten atomically.

A list file is a CSV a person can open in a spreadsheet: the columns of `COLUMNS`
in that order, then any extra columns. One row per address, addresses compared by
`addresses.address_key`.

Reading streams the file row by row, so a list of a million addresses is never
held in memory by a command that does not need it. Every write goes through
`rewrite_list`: it holds the list's lock (`subscribers/<list>.lock`, newsletter.files.locking)
across read-modify-write, writes a temporary file in the same folder, fsyncs it
and renames it over the list, so two commands never lose each other's changes
and a crash leaves the old file whole. A list that is a symbolic link is written
through it (atomically, beside the file it names); a full disk is one line.
"""

from __future__ import annotations

import csv
import itertools
import mmap
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, UTC
from pathlib import Path
from typing import overload

from newsletter.files.atomic import atomic_file, real_path, write_failure
from newsletter.config import Settings
from newsletter.errors import SubscriberError, where
from newsletter.files.locking import FileLock
from newsletter.subscribers.addresses import address_key
# Row: a list's row, handed on to the list's readers and writers (an explicit re-export).
from newsletter.subscribers.csvfile import Row as Row
from newsletter.subscribers.csvfile import open_csv

STATUSES = ("subscribed", "unsubscribed", "bounced", "complained")
COLUMNS = ("email", "first_name", "last_name", "status", "tags", "subscribed_at", "updated_at")
DEFAULT_LIST = "main"
TAG_SEPARATOR = ";"

# Positions of the columns in a canonical row (a list of texts, COLUMNS then extras).
EMAIL, FIRST_NAME, LAST_NAME, STATUS, TAGS, SUBSCRIBED_AT, UPDATED_AT = range(len(COLUMNS))

# How strongly each status keeps mail away: when two sources disagree the stronger one
# wins, so a merge or a sync can never quietly make an address mailable again.
STATUS_RANK = {"subscribed": 0, "unsubscribed": 1, "bounced": 2, "complained": 3}

LIST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")



@dataclass(slots=True)
class Subscriber:
    email: str
    first_name: str = ""
    last_name: str = ""
    status: str = "subscribed"
    tags: tuple[str, ...] = ()
    subscribed_at: str = ""
    updated_at: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def fields(self, unsubscribe_url: str = "") -> dict[str, str]:
        """Every merge field's value as text (the columns, then the computed fields of
        `merge.COMPUTED_FIELDS`), with `unsubscribe_url` as their link."""
        from newsletter import merge  # only previews and tests call it: no start-up cost for the rest

        cells = dict(self.extra)
        cells.update(
            email=self.email, first_name=self.first_name, last_name=self.last_name,
            status=self.status, tags=join_tags(self.tags),
            subscribed_at=self.subscribed_at, updated_at=self.updated_at,
        )
        return merge.values_for(merge.Reader(self.email, unsubscribe_url, cells))


def list_path(settings: Settings, name: str = DEFAULT_LIST) -> Path:
    """The file of list `name`; the name must be a plain file name, never a path."""
    if not LIST_NAME.fullmatch(name):
        raise SubscriberError(
            f"{name!r} is not a list name: use letters, digits, '-' and '_' (the default list is {DEFAULT_LIST})"
        )
    return settings.subscribers_dir / f"{name}.csv"


def clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Tags trimmed, without blanks or repeats, in order."""
    return tuple(dict.fromkeys(t.strip() for t in tags if t.strip()))


def split_tags(text: str) -> tuple[str, ...]:
    """`a;b` as ("a", "b"), without blanks or repeats, in order."""
    if not text:
        return ()  # most rows of most lists: skip the work
    return clean_tags(text.split(TAG_SEPARATOR))


def join_tags(tags: Iterable[str]) -> str:
    return TAG_SEPARATOR.join(tags)


def merge_tags(*groups: Iterable[str]) -> str:
    """The tags of several sources (each a sequence of tags) as one cell, first ones first."""
    return join_tags(clean_tags(itertools.chain(*groups)))


def subscribe_row(row: Row, resubscribe: bool, stamp: str) -> bool:
    """Someone asks to subscribe the address of `row`: whether it is subscribed afterwards.

    The one rule for every command: an address that unsubscribed, bounced or complained
    stays so unless `resubscribe` (they asked again); then it is subscribed as of `stamp`.
    """
    if row[STATUS] == "subscribed":
        return True
    if resubscribe:
        row[STATUS], row[SUBSCRIBED_AT] = "subscribed", stamp
        return True
    return False


ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"  # how the lists, the ledgers' and the sign-up server's reports write a time


def now_iso() -> str:
    """The current time as the lists store it: ISO 8601, UTC, whole seconds."""
    return datetime.now(UTC).strftime(ISO_UTC)


@overload
def iso_utc(seconds: float) -> str: ...
@overload
def iso_utc(seconds: None) -> None: ...
def iso_utc(seconds: float | None) -> str | None:
    """A unix time written as the lists write times (None, a time not known, stays None)."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).strftime(ISO_UTC)


# -- reading ----------------------------------------------------------------------------

@dataclass
class ListFile:
    """An open list: its extra column names and its rows, as canonical rows, streamed once."""

    path: Path
    extra_columns: tuple[str, ...]
    rows: Iterator[tuple[int, Row]]  # (row number as a spreadsheet shows it, canonical row)
    exists: bool = True  # False: a missing file opened with `missing_ok`


def no_such_list(path: Path) -> SubscriberError:
    """The error for a list that does not exist, naming those that do (a typo shows)."""
    try:
        names = sorted(p.stem for p in path.parent.glob("*.csv") if p.is_file())
    except OSError:
        names = []
    return SubscriberError(f"{where(path)}: no such list (lists here: {', '.join(names) or 'none'})")


class _Missing(Exception):
    """The list file does not exist (an empty list or an error, as `open_list` is asked)."""


@contextmanager
def open_list(path: Path, missing_ok: bool = False) -> Iterator[ListFile]:
    """Open a list file for streaming; with `missing_ok`, a missing file is an empty list.

    Columns are found by name, so a hand-made file with the columns in another order
    or without some of them still reads; rows come out in canonical column order.
    The file is read as `open_csv` reads any CSV, so a list a spreadsheet saved again
    with `;` (and a BOM) reads too; the next write puts it back in the canonical form.
    """
    with ExitStack() as stack:
        try:
            reading = stack.enter_context(open_csv(path, missing=lambda _: _Missing()))
        except _Missing:
            if not missing_ok:
                raise no_such_list(path) from None
            yield ListFile(path, (), iter(()), exists=False)
            return
        header = _header(path, reading.header)
        if "email" not in header:
            raise SubscriberError(
                f"{where(path, 1)}: no email column; a subscriber list starts with the header {','.join(COLUMNS)}"
            )
        extras = tuple(name for name in header if name and name not in COLUMNS)
        yield ListFile(path, extras, _canonical_rows(path, reading.rows, header, extras))


def header_key(name: str) -> str:
    """`" E-Mail Address "` as `e_mail_address`: how column names are compared."""
    return re.sub(r"\W+", "_", name.strip().lower()).strip("_")


def _header(path: Path, names: Row) -> Row:
    """A list's header: our own column names in any case, extra columns as named.

    A column without a name, or two columns whose names differ only in case, spaces or
    punctuation, would lose data on the next write: they are errors.
    """
    header: Row = []
    seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        name = name.strip()
        if not name:
            raise SubscriberError(f"{where(path, 1)}: column {position} has no name: name it or remove it")
        key = header_key(name) or name
        if key in seen:
            raise SubscriberError(
                f"{where(path, 1)}: columns {seen[key]} ({names[seen[key] - 1]!r}) and {position} ({names[position - 1]!r}) "
                "name the same column: rename one or merge them"
            )
        seen[key] = position
        header.append(name.lower() if name.lower() in COLUMNS else name)
    return header


def _check_width(path: Path, number: int, row: Row, width: int) -> None:
    """A filled-in cell to the right of the last named column would be dropped: an error."""
    for position in range(width, len(row)):
        if row[position].strip():
            raise SubscriberError(
                f"{where(path, number)}: cell {position + 1} is beyond the header's {width} columns: "
                "give its column a name in row 1 or remove it"
            )


def _canonical_rows(
    path: Path, rows: Iterator[tuple[int, Row]], header: Row, extras: tuple[str, ...],
) -> Iterator[tuple[int, Row]]:
    columns = (*COLUMNS, *extras)
    width = len(columns)
    positions = [header.index(name) if name in header else None for name in columns]
    # The usual case, a file this module wrote: rows are already in canonical order.
    canonical = positions == list(range(width)) and len(header) == width
    if canonical:  # a row of the right width is used as it is: the loop a million rows take
        for number, row in rows:
            if len(row) != width:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                _check_width(path, number, row, width)
                row = (row + [""] * width)[:width]
            if row[STATUS] not in STATUS_RANK:
                _check_status(path, number, row)
            yield number, row
        return
    for number, row in rows:
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        _check_width(path, number, row, len(header))
        row += [""] * (len(header) - len(row))
        row = [row[i] if i is not None else "" for i in positions]
        if row[STATUS] not in STATUS_RANK:
            _check_status(path, number, row)
        yield number, row


def _check_status(path: Path, number: int, row: Row) -> None:
    """A row's status that is not one of STATUSES: blank is subscribed, anything else an error."""
    if row[STATUS]:
        raise SubscriberError(
            f"{where(path, number)}: unknown status {row[STATUS]!r} (one of {', '.join(STATUSES)})"
        )
    row[STATUS] = "subscribed"


# Every status but "subscribed", as a list file spells it (the reading refuses any other spelling).
_NOT_SUBSCRIBED = tuple(status.encode() for status in STATUS_RANK if status != "subscribed")


def not_subscribed_keys(path: Path, read_whole: bool = False) -> set[str]:
    """The address keys of the rows of the list at `path` that are not subscribed.

    A hand-edited list, or one written before addresses had one identity (when `remove`
    appended a second row), can hold an address twice, once unsubscribed: a send mails
    that person from neither row, whichever comes first, so it needs these keys before
    its first request, from a reading of its own. A real send asks for it whatever the
    file (`read_whole`), so that a bad row anywhere is refused before its first request
    rather than after some have gone out (about half a second a million rows, beside the
    minutes the requests take). A dry run skips it for a list in which no other status
    is written at all, told by one look at its bytes.
    """
    with path.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return set()
        if not read_whole:
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
                if all(data.find(word) == -1 for word in _NOT_SUBSCRIBED):
                    return set()
    with open_list(path) as listing:
        return {address_key(row[EMAIL]) for _, row in listing.rows if row[STATUS] != "subscribed"}


class ListWatch:
    """Tells whether a list file was changed since it was last looked at, by one `stat()`.

    A send reads its list once, then posts for minutes; 7 to 10 of 40 people who
    unsubscribed during a send were still mailed a second or more later. The send looks
    before each request: the file's inode, size and mtime_ns (a rewrite is a new inode)
    compared, and only when they differ is the list read again (`subscribed_keys`).
    Made before the send's own reading, so a change between the two is seen too.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen = self._signature()

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            status = os.stat(self.path)
        except OSError:
            return None
        return status.st_ino, status.st_size, status.st_mtime_ns

    def changed(self) -> bool:
        """Whether the file differs from the last look (which this one becomes)."""
        now = self._signature()
        if now == self._seen:
            return False
        self._seen = now
        return True


def subscribed_keys(path: Path) -> set[str]:
    """The address keys the list at `path` holds as subscribed now (and in no row as anything else).

    A missing list subscribes nobody.
    """
    subscribed: set[str] = set()
    not_subscribed: set[str] = set()
    with open_list(path, missing_ok=True) as listing:
        for _, row in listing.rows:
            (subscribed if row[STATUS] == "subscribed" else not_subscribed).add(address_key(row[EMAIL]))
    return subscribed - not_subscribed


def subscriber_from_row(row: Row, extra_columns: tuple[str, ...]) -> Subscriber:
    """A canonical row as a `Subscriber`."""
    return Subscriber(
        email=row[EMAIL], first_name=row[FIRST_NAME], last_name=row[LAST_NAME], status=row[STATUS],
        tags=split_tags(row[TAGS]), subscribed_at=row[SUBSCRIBED_AT], updated_at=row[UPDATED_AT],
        extra=dict(zip(extra_columns, row[len(COLUMNS):], strict=False)),
    )


def iter_subscribers(path: Path) -> Iterator[Subscriber]:
    """Stream the rows of a list file, in file order."""
    with open_list(path) as listing:
        for _, row in listing.rows:
            yield subscriber_from_row(row, listing.extra_columns)


# -- writing ----------------------------------------------------------------------------

def lock_path(path: Path) -> Path:
    return path.with_suffix(".lock")


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the list's lock: one writer at a time, for a whole read-modify-write."""
    lock = FileLock(lock_path(path))
    try:
        lock.acquire()
    except OSError as exc:
        raise SubscriberError(
            f"{where(lock_path(path))}: cannot write the list's lock file ({exc.strerror or exc})"
        ) from None
    try:
        yield
    finally:
        lock.release()


class _Unchanged(Exception):
    """Raised inside a write to drop it: the list is left exactly as it was."""


def write_atomically(
    path: Path, header: Iterable[str], rows: Iterable[Row], changed: Callable[[], bool] = lambda: True,
) -> None:
    """Write a whole CSV to a temporary file beside `path`, fsync it, rename it over `path`.

    The caller holds the lock when `path` is a list; leftovers of killed writers are
    removed first (under the lock no other writer can be using them). When `changed()`,
    asked once every row is written, says False, the write is dropped and `path` untouched.
    """
    real = real_path(path)  # a linked list is written beside the file the link names
    for stale in real.parent.glob(f"{real.name}.tmp*"):
        try:
            stale.unlink(missing_ok=True)
        except OSError:
            pass  # not ours to remove (a folder, say); the write below reports if it is in the way

    def keep_mode(temporary: Path) -> None:
        try:  # a list kept private (chmod 600: it is personal data) stays private
            os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
        except FileNotFoundError:
            pass

    with atomic_file(path, on_os_error=cannot_write, before_replace=keep_mode) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(_without_carriage_returns(rows))
        if not changed():
            raise _Unchanged


def cannot_write(path: Path, exc: OSError) -> SubscriberError:
    """An OSError of writing `path` as a one-line error."""
    return SubscriberError(write_failure(path, exc))


def _without_carriage_returns(rows: Iterable[Row]) -> Iterator[Row]:
    """Rows with line breaks inside cells as `\n`.

    The csv module quotes a cell holding `\n` but not one holding a bare `\r` when lines
    end in `\n`, and an unquoted `\r` would split the row when read back.
    """
    for row in rows:
        if "\r" in "".join(row):  # one C-level scan per row; the loop below is rare
            row = [cell.replace("\r\n", "\n").replace("\r", "\n") for cell in row]
        yield row


def rewrite_list(
    path: Path,
    transform: Callable[[ListFile], tuple[tuple[str, ...], Iterable[Row]]],
    dry_run: bool = False, create: bool = False, changed: Callable[[], bool] = lambda: True,
) -> None:
    """Stream list `path` through `transform` and write what it yields, under the lock.

    `transform` gets the open list and returns the extra columns of the new file and
    its rows (an iterable, consumed once, so nothing needs to be held in memory).
    With `dry_run` the rows are produced, so reports are complete, but nothing is written.
    A missing list is an error unless `create` (then it starts empty). When `changed()`,
    asked once the rows are consumed, says False, the file is not rewritten.
    """
    if not create and not path.exists():  # checked before the lock, so a typo leaves no lock file
        raise no_such_list(path)
    if dry_run:
        with open_list(path, missing_ok=create) as listing:
            _, rows = transform(listing)
            for _ in rows:
                pass
        return
    with locked(path), open_list(path, missing_ok=create) as listing:
        extras, rows = transform(listing)
        try:
            write_atomically(path, (*COLUMNS, *extras), rows, changed)
        except _Unchanged:
            pass


def widen(row: Row, old_extras: tuple[str, ...], new_extras: tuple[str, ...]) -> Row:
    """A canonical row of a file with `old_extras` laid out for a file with `new_extras`."""
    if old_extras == new_extras:
        return row
    values = dict(zip(old_extras, row[len(COLUMNS):], strict=False))
    return row[:len(COLUMNS)] + [values.get(name, "") for name in new_extras]
