"""The everyday operations on one list: add, remove, delete, list, stats, export.

Edits stream the list through `rewrite_list` (locked, atomic); reads stream it
without the lock, since a list file is only ever replaced whole.
"""

from __future__ import annotations

import csv
import itertools
import operator
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from newsletter.subscribers.erasure import erased_addresses, forget_erasure
from newsletter.subscribers.selection import EVERYONE, Selection, no_such_tag, tags_in_list
from newsletter.subscribers.list_growth import ListGrowth
from newsletter.subscribers.addresses import EmailNotValidError, RepeatFinder, address_key, normalize_address
from newsletter.files.atomic import atomic_file, writes_in_place
from newsletter.config import Settings
from newsletter.errors import SubscriberError, where
from newsletter.subscribers.store import (
    COLUMNS, DEFAULT_LIST, EMAIL, FIRST_NAME, LAST_NAME, STATUS, STATUSES, SUBSCRIBED_AT, TAGS,
    UPDATED_AT, ListFile, Row, Subscriber, cannot_write, clean_tags, join_tags, list_path, merge_tags,
    now_iso, open_list, rewrite_list, split_tags, subscribe_row, subscriber_from_row, widen,
)

SHOWN_REPEATS = 20  # rows named when a list holds addresses twice

# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class EditReport:
    """What an edit of one address did, as one line."""

    message: str

    def lines(self) -> list[str]:
        return [self.message]


def valid_address(email: str) -> str:
    """`email` as the list stores it (trimmed, domain lower-cased), or a SubscriberError."""
    try:
        return normalize_address(email)
    except EmailNotValidError as exc:
        raise SubscriberError(f"{email.strip()!r} is not a valid address ({exc})") from None


@dataclass
class _Edit:
    """What `_edit_one` found: the row of the address before the edit, and how many rows it has."""

    path: Path
    before: Row | None = None  # None: the address was not on the list
    rows: int = 0

    def note(self) -> str:
        """A remark for the report when the list holds the address more than once."""
        if self.rows < 2:
            return ""
        return f" (the list holds {self.rows} rows for this address, all changed alike: merge them)"


def _edit_one(
    settings: Settings, list_name: str, email: str, edit: Callable[[Row], Row | None], create: Row | None = None,
) -> _Edit:
    """Stream the list, applying `edit(row)` to every row of `email` (a row, or None to drop it).

    Rows are matched by `address_key`, so every form the list may hold the address in is
    found (and a list holding it twice has both rows edited, never one left mailable).
    When the address is not on the list and `create` is given, that row is appended.
    The file is rewritten only when something changed.
    """
    found = _Edit(list_path(settings, list_name))
    key = address_key(email)
    changed = False

    def transform(listing: ListFile) -> tuple[tuple[str, ...], Iterator[Row]]:
        def rows() -> Iterator[Row]:
            nonlocal changed
            for _, row in listing.rows:
                if address_key(row[EMAIL]) == key:
                    before = list(row)
                    found.before, found.rows = before, found.rows + 1
                    edited = edit(row)
                    changed = changed or edited != before
                    if edited is None:
                        continue
                    row = edited
                yield row
            if found.before is None and create is not None:
                changed = True
                yield widen(create, (), listing.extra_columns)
        return listing.extra_columns, rows()

    rewrite_list(found.path, transform, changed=lambda: changed)
    return found


def add_subscriber(
    settings: Settings, email: str, list_name: str = DEFAULT_LIST, first_name: str = "", last_name: str = "",
    tags: tuple[str, ...] = (), resubscribe: bool = False,
) -> EditReport:
    """Add `email` as subscribed, or update its names and tags when it is on the list already.

    An address that unsubscribed, bounced or complained stays so unless `resubscribe`.
    """
    email = valid_address(email)
    erased_on = erased_addresses(settings).erased_on(email)
    if erased_on is not None and not resubscribe:
        raise SubscriberError(f"{email} was erased on {erased_on} at their request; not added (use --resubscribe "
                              "if they asked to subscribe again)")
    first_name, last_name, tags = first_name.strip(), last_name.strip(), clean_tags(tags)
    stamp = now_iso()
    kept: list[str] = []
    updated: list[bool] = []

    def edit(row: Row) -> Row:
        before = list(row)
        row[FIRST_NAME] = first_name or row[FIRST_NAME]
        row[LAST_NAME] = last_name or row[LAST_NAME]
        row[TAGS] = merge_tags(split_tags(row[TAGS]), tags)
        if not subscribe_row(row, resubscribe, stamp):
            kept.append(row[STATUS])
        if row != before:
            row[UPDATED_AT] = stamp
            updated.append(True)
        return row

    new = [email, first_name, last_name, "subscribed", join_tags(tags), stamp, stamp]
    found = _edit_one(settings, list_name, email, edit, create=new)
    if erased_on is not None:
        forget_erasure(settings, [email])  # subscribed again at their request: no longer refused
    path, note = found.path, found.note()
    if found.before is None:
        return EditReport(f"{where(path)}: added {email}")
    if kept:
        return EditReport(
            f"{where(path)}: {email} is {kept[0]} and stays so (use --resubscribe if they asked to subscribe again)"
            + note
        )
    return EditReport(f"{where(path)}: {'updated' if updated else 'unchanged'} {email}{note}")


def remove_subscriber(settings: Settings, email: str, list_name: str = DEFAULT_LIST) -> EditReport:
    """Mark `email` unsubscribed, keeping its row so no later import can resubscribe it.

    An address not on the list is recorded as unsubscribed, for the same reason. A bounced
    or complained address keeps that status (it is the stronger one).
    """
    email = valid_address(email)
    stamp = now_iso()

    changed_any = False

    def edit(row: Row) -> Row:
        nonlocal changed_any
        if row[STATUS] == "subscribed":
            row[STATUS], row[UPDATED_AT] = "unsubscribed", stamp
            changed_any = True
        return row

    # An erased address is kept off every list already (import and add refuse it): a row
    # recording its unsubscribe would only hold the address again.
    erased_on = erased_addresses(settings).erased_on(email)
    new = None if erased_on is not None else [email, "", "", "unsubscribed", "", "", stamp]
    found = _edit_one(settings, list_name, email, edit, create=new)
    path, before, note = found.path, found.before, found.note()
    if before is None and erased_on is not None:
        return EditReport(f"{where(path)}: {email} was erased on {erased_on} and is on no list; nothing recorded "
                          "(import and add refuse it)")
    if before is None:
        return EditReport(f"{where(path)}: {email} was not on the list; recorded as unsubscribed")
    if before[STATUS] == "subscribed" or changed_any:
        return EditReport(
            f"{where(path)}: {email} is unsubscribed (the row stays, so no import subscribes it again){note}"
        )
    if before[STATUS] == "unsubscribed":
        return EditReport(f"{where(path)}: {email} was unsubscribed already; nothing changed{note}")
    return EditReport(f"{where(path)}: {email} is {before[STATUS]} and stays so (it receives no mail){note}")


def erase_rows(settings: Settings, email: str, list_name: str = DEFAULT_LIST) -> int:
    """Remove every row of `email` from a list (under its lock, atomically); how many there were.

    Only `newsletter.rights.erase_address` calls it, for every list at once: erasing a
    person from one list and not the others would not erase them.
    """
    return _edit_one(settings, list_name, email.strip(), lambda row: None).rows


# -- reading ----------------------------------------------------------------------------

def _refuse_unknown_tags(path: Path, selection: Selection) -> None:
    """After a listing or an export that matched no row: an error when no row at all has any tag
    of `selection` (a typo); a tag some rows have, but not of the status asked for, is an empty answer."""
    if not selection.tags:
        return
    _, found = tags_in_list(path)
    if set(selection.tags).isdisjoint(found):
        raise SubscriberError(no_such_tag(selection.tags, found))


def select_subscribers(
    settings: Settings, list_name: str = DEFAULT_LIST, selection: Selection = EVERYONE,
) -> Iterator[Subscriber]:
    """Stream the subscribers of a list that `selection` takes (by default, every one)."""
    path = list_path(settings, list_name)
    matched = False
    with open_list(path) as listing:
        for _, row in selection.rows(listing.rows):
            matched = True
            yield subscriber_from_row(row, listing.extra_columns)
    if not matched:
        _refuse_unknown_tags(path, selection)


@dataclass
class ListStats:
    """Counts of one list by status, by tag and by month."""

    path: Path
    by_status: Counter[str] = field(default_factory=Counter)
    by_tag: Counter[str] = field(default_factory=Counter)
    subscribed_by_tag: Counter[str] = field(default_factory=Counter)
    growth: ListGrowth = field(default_factory=ListGrowth)
    # (row, earlier row, address) of rows holding an address an earlier row holds.
    repeats: list[tuple[int, int, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        total = sum(self.by_status.values())
        lines = [f"{where(self.path)}: {total} address{'es' if total != 1 else ''}"]
        lines += [f"  {status:<14}{self.by_status[status]:>10}" for status in STATUSES]
        if self.by_tag:
            lines.append(f"  {'tag':<14}{'all':>10}{'subscribed':>12}")
            lines += [f"  {tag:<14}{count:>10}{self.subscribed_by_tag[tag]:>12}"
                      for tag, count in sorted(self.by_tag.items())]
        lines += self.growth.lines()
        lines += [f"{where(self.path, number)}: {email} is the address of row {earlier} again "
                  "(one reader, two rows): merge them" for number, earlier, email in self.repeats[:SHOWN_REPEATS]]
        if len(self.repeats) > SHOWN_REPEATS:
            lines.append(f"{where(self.path)}: … and {len(self.repeats) - SHOWN_REPEATS} more rows like these")
        return lines


def list_stats(settings: Settings, list_name: str = DEFAULT_LIST) -> ListStats:
    """Count a list's addresses by status, tag and month, streaming it."""
    path = list_path(settings, list_name)
    stats = ListStats(path)
    by_status, by_tag, subscribed_by_tag = stats.by_status, stats.by_tag, stats.subscribed_by_tag
    # Most rows carry the same few tag strings: count the strings, split them once at the end.
    tag_strings: Counter[tuple[str, str]] = Counter()
    # The months a row joined and last changed in, as (status, YYYY-MM, YYYY-MM): a few hundred keys.
    dates: Counter[tuple[str, str, str]] = Counter()
    joined_of, changed_of, month_of = (operator.itemgetter(SUBSCRIBED_AT), operator.itemgetter(UPDATED_AT),
                                       operator.itemgetter(slice(0, 7)))
    finder = RepeatFinder()
    status_of, tags_of, email_of = (operator.itemgetter(column) for column in (STATUS, TAGS, EMAIL))
    with open_list(path) as listing:
        rows = map(operator.itemgetter(1), listing.rows)
        # A chunk at a time, so that counting and noting addresses are loops in C.
        while chunk := list(itertools.islice(rows, 8192)):
            by_status.update(map(status_of, chunk))
            tag_strings.update(zip(map(tags_of, chunk), map(status_of, chunk), strict=True))
            finder.add_all(list(map(email_of, chunk)))
            dates.update(zip(map(status_of, chunk), map(month_of, map(joined_of, chunk)),
                             map(month_of, map(changed_of, chunk)), strict=True))
    suspects = finder.suspects()
    if suspects:  # a second reading, only for a list that seems to hold an address twice
        with open_list(path) as listing:
            stats.repeats = finder.repeats(((number, row[EMAIL]) for number, row in listing.rows), suspects)
    for (tags, status), count in tag_strings.items():
        for tag in split_tags(tags):
            by_tag[tag] += count
            if status == "subscribed":
                subscribed_by_tag[tag] += count
    stats.growth = ListGrowth.from_counts(dates)
    return stats


def defuse(cell: str) -> str:
    """A cell a spreadsheet would run as a formula, made plain text with a leading `'`."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


@dataclass
class ExportReport:
    path: Path
    rows: int
    # Written into a device or a FIFO (`-o /dev/stdout`): the report must not join the CSV there.
    into_stream: bool = False
    target: Path | None = None  # the file written; None: a stream the caller gave

    def lines(self) -> list[str]:
        into = f" into {where(self.target)}" if self.target is not None else ""
        return [f"exported {self.rows} row{'s' if self.rows != 1 else ''} from {where(self.path)}{into}"]


def export_list(
    settings: Settings, out: IO[str], list_name: str = DEFAULT_LIST, selection: Selection = EVERYONE,
) -> ExportReport:
    """Write the rows of a list that `selection` takes to `out` as CSV, formulas defused."""
    path = list_path(settings, list_name)
    count = 0
    with open_list(path) as listing:
        # CRLF as spreadsheets write it; it also makes the csv module quote a cell holding "\r".
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow((*COLUMNS, *listing.extra_columns))
        for _, row in selection.rows(listing.rows):
            writer.writerow([defuse(cell) for cell in row])
            count += 1
    if not count:
        _refuse_unknown_tags(path, selection)
    return ExportReport(path, count)


def export_to_file(
    settings: Settings, output: Path, list_name: str = DEFAULT_LIST, selection: Selection = EVERYONE,
) -> ExportReport:
    """Export to the file `output`, atomically: a failed export leaves `output` as it was.

    The file gets a BOM so that spreadsheets read it as UTF-8. A file in the subscribers
    folder is refused: it would replace a live list, unlocked, with defused values.
    """
    folder = settings.subscribers_dir.resolve()
    if folder == output.resolve().parent or folder in output.resolve().parents:
        raise SubscriberError(
            f"{where(output)}: will not export into the subscribers folder (it holds the live lists); "
            "choose a file elsewhere"
        )
    if output.is_dir():
        raise SubscriberError(f"{where(output)}: is a folder; name the file to write")
    with atomic_file(output, encoding="utf-8-sig", on_os_error=cannot_write) as out:
        report = export_list(settings, out, list_name, selection)
    report.into_stream = writes_in_place(output)
    report.target = output
    return report


def list_lines(
    settings: Settings, list_name: str = DEFAULT_LIST, selection: Selection = EVERYONE,
) -> Iterator[str]:
    """One line per subscriber `selection` takes (address, status, name, tags), tab-separated, streamed."""
    for subscriber in select_subscribers(settings, list_name, selection):
        name = " ".join(part for part in (subscriber.first_name, subscriber.last_name) if part)
        yield "\t".join((subscriber.email, subscriber.status, name, join_tags(subscriber.tags)))
