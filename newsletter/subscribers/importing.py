"""Import a CSV exported from anywhere (a spreadsheet, Mailchimp, a form tool) into a list.

Reading a foreign file: as `csvfile.open_csv` reads any CSV (UTF-8 with or without
BOM, the delimiter from Excel's `sep=` line or the header line, row numbers as a
spreadsheet shows them); header names in any case, with common aliases.

Tools' own layouts: Mailchimp's per-status exports have no status column but an
`UNSUB_TIME` or `CLEAN_TIME` one; a filled-in `CLEAN_TIME` means bounced, `UNSUB_TIME`
unsubscribed (never subscribed). Mailchimp's `TAGS` (`"VIP","Donor"`) become tags
VIP;Donor. A form tool's whole-name column (`Name`, `Full name`) goes into first_name
as written when there is no first-name column (a split would guess wrong for
"Mary Ann Smith"); its `Timestamp` becomes subscribed_at only when it parses as a
time, and is kept as written in the extra column `timestamp` either way.

Merging: only the *imported* rows are held in memory, one packed string per address;
the list itself is streamed once through `rewrite_list`, so importing into a list of a
million addresses costs no more memory than the imported file. An import never
resubscribes an address that unsubscribed, bounced or complained unless asked to,
never blanks a field (values only fill empty ones) and merges duplicates.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, UTC
from pathlib import Path

from newsletter.subscribers.addresses import EmailNotValidError, address_key, normalize_address
from newsletter.subscribers.csvfile import open_csv
from newsletter.config import Settings
from newsletter.errors import SubscriberError, where
from newsletter.subscribers.store import (
    COLUMNS, DEFAULT_LIST, EMAIL, FIRST_NAME, LAST_NAME, STATUS, STATUS_RANK, SUBSCRIBED_AT, TAGS,
    UPDATED_AT, ListFile, Row, clean_tags, header_key, list_path, merge_tags,
    now_iso, rewrite_list, split_tags, subscribe_row, widen,
)

# Header names as people write them, after `header_key` (lower case, words joined by "_").
HEADER_ALIASES = {
    "email": ("email", "e_mail", "email_address", "e_mail_address", "mail", "emailaddress",
              "email_adresse", "e_mail_adresse", "adresse_e_mail", "courriel"),
    "first_name": ("first_name", "firstname", "first", "given_name", "forename", "fname", "vorname", "prénom"),
    "last_name": ("last_name", "lastname", "last", "surname", "family_name", "lname", "nachname", "nom"),
    "status": ("status", "subscription_status", "subscriber_status"),
    "tags": ("tags", "tag", "labels", "groups"),
    "subscribed_at": ("subscribed_at", "optin_time", "opt_in_time", "signup_date", "date_added", "subscribed_on"),
    # The list keeps its own time of change; an imported one would be misleading.
    "updated_at": ("updated_at", "last_changed"),
}
ALIAS_TO_COLUMN = {alias: column for column, aliases in HEADER_ALIASES.items() for alias in aliases}

STATUS_ALIASES = {
    **{status: status for status in STATUS_RANK},
    "active": "subscribed", "subscribe": "subscribed",
    "unsubscribe": "unsubscribed", "cleaned": "bounced", "bounce": "bounced",
    "spam": "complained", "spam_report": "complained", "complaint": "complained",
}

# An imported address is held as one string, its fields joined by this separator:
# about half the memory of a tuple of strings, which matters at a million rows.
PACK = "\x1f"
# Marks an imported address already merged into the list (compared by identity).
MERGED = "\x00merged"
# The fields of a packed record, in its order; the file's extra columns follow.
PACKED_COLUMNS = ("email", "first_name", "last_name", "status", "tags", "subscribed_at")
P_EMAIL, P_FIRST, P_LAST, P_STATUS, P_TAGS, P_SUBSCRIBED_AT = range(len(PACKED_COLUMNS))
FILLABLE = ((P_FIRST, FIRST_NAME), (P_LAST, LAST_NAME))

SHOWN_INVALID = 20
# The most characters a cell of a list may get from an import. SendGrid takes at most
# 10,000 bytes of merge values per recipient, so a longer cell could never be sent
# anyway; a stated limit keeps a list something every command (and a spreadsheet) reads.
CELL_LIMIT = 10_000
PROGRESS_EVERY = 20_000  # rows between two calls of a progress callback

Progress = Callable[[str, int], None]


def no_progress(stage: str, rows: int) -> None:
    """The progress callback that shows nothing."""


@dataclass
class ImportReport:
    """What an import did (or, with `dry_run`, would do)."""

    source: Path
    target: Path
    dry_run: bool = False
    new_list: bool = False
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    kept_unsubscribed: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)
    # Rows whose opt-in date did not parse (`15/03/2024` is ambiguous): kept as written.
    dates_as_written: list[int] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report as a person reads it."""
        lines = [
            f"{where(self.source)} → {where(self.target)}{' (new list)' if self.new_list else ''}: {self.rows} row{'s' if self.rows != 1 else ''} read"
            + (" (dry run: nothing written)" if self.dry_run else ""),
            f"  added               {self.added}",
            f"  updated             {self.updated}",
            f"  unchanged           {self.unchanged}",
            f"  duplicates in file  {self.duplicates} (merged)",
            f"  kept unsubscribed   {self.kept_unsubscribed}"
            + (" (use --resubscribe to subscribe them again)" if self.kept_unsubscribed else ""),
            f"  invalid             {len(self.invalid)}" + _row_numbers(n for n, _ in self.invalid),
            f"  dates as written    {len(self.dates_as_written)}" + _row_numbers(self.dates_as_written)
            + (": not a date this tool reads (ISO 8601, epoch seconds), so kept as the file wrote them"
               if self.dates_as_written else ""),
        ]
        lines += [f"{where(self.source, number)}: {reason}" for number, reason in self.invalid[:SHOWN_INVALID]]
        return lines


def _row_numbers(numbers: Iterable[int]) -> str:
    """` (rows 2, 5, …)` for a report line, at most SHOWN_INVALID of them; "" for none."""
    shown = list(itertools.islice(numbers, SHOWN_INVALID + 1))
    if not shown:
        return ""
    more = ", …" if len(shown) > SHOWN_INVALID else ""
    return f" (rows {', '.join(str(n) for n in shown[:SHOWN_INVALID])}{more})"


@dataclass
class ImportedRows:
    """The valid rows of an imported file, one packed record per address, in file order."""

    extra_columns: tuple[str, ...]
    records: dict[str, str]


def read_import(
    path: Path, tags: tuple[str, ...] = (), progress: Progress = no_progress,
) -> tuple[ImportedRows, ImportReport]:
    """Read a foreign CSV: its valid rows merged by address, and a report of what was skipped."""
    report = ImportReport(source=path, target=path)
    with open_csv(path, unreadable="unreadable CSV") as reading:
        header = reading.header
        if not "".join(header).strip():
            raise SubscriberError(f"{where(path, 1)}: the file is empty; it needs a header row with an email column")
        layout = _map_header(path, header)
        extras = layout.extras
        # Where each field of a packed record is in the file's rows.
        positions = (*(layout.columns.get(name) for name in PACKED_COLUMNS),
                     *(layout.columns[name] for name in extras))
        records: dict[str, str] = {}
        for number, row in reading.rows:
            _read_row(number, row, positions, layout, tags, records, report)
            if number % PROGRESS_EVERY == 0:
                progress(f"reading {where(path)}", number - 1)
    return ImportedRows(extra_columns=extras, records=records), report


@dataclass
class Layout:
    """Where things are in an imported file's rows."""

    columns: dict[str, int]  # our column name (or an extra column's name) → position
    extras: tuple[str, ...]
    # Without a status column: (position, status) of columns whose being filled in implies
    # a status, strongest first (Mailchimp's per-status exports: CLEAN_TIME, UNSUB_TIME).
    implied_status: tuple[tuple[int, str], ...] = ()
    # subscribed_at comes from a form tool's Timestamp: used only when it parses as a time
    # (the column is kept as written in the extra column `timestamp` as well).
    strict_time: bool = False


# Columns that imply a status when the file has no status column, strongest first.
IMPLIED_STATUS = (("clean_time", "bounced"), ("unsub_time", "unsubscribed"))
# A whole name ("Name", "Full name" in a form tool) goes into first_name, when the file has
# no first-name column: splitting it would guess wrong for "Mary Ann Smith" or "van Gogh",
# and "Hello {{ first_name }}" still reads right with a whole name.
WHOLE_NAME = ("name", "full_name", "your_name")


def _map_header(path: Path, header: Row) -> Layout:
    """Where our columns and the extra ones are, and what else the header tells."""
    columns: dict[str, int] = {}
    extras: list[str] = []
    for position, name in enumerate(header):
        key = header_key(name)
        if not key:
            continue
        column = ALIAS_TO_COLUMN.get(key, key)
        if column in columns:
            raise SubscriberError(
                f"{where(path, 1)}: columns {columns[column] + 1} and {position + 1} both hold {column}; "
                "remove one of them"
            )
        columns[column] = position
        if column not in COLUMNS:
            extras.append(column)
    if "email" not in columns:
        found = ", ".join(repr(name) for name in header) or "none"
        raise SubscriberError(
            f"{where(path, 1)}: no email column (headers found: {found}); "
            "name the column of addresses \"email\""
        )
    layout = Layout(columns, ())
    whole_name = next((name for name in WHOLE_NAME if name in columns), None)
    if "first_name" not in columns and whole_name is not None:
        columns["first_name"] = columns.pop(whole_name)
        extras.remove(whole_name)
    if "subscribed_at" not in columns and "timestamp" in columns:
        columns["subscribed_at"] = columns["timestamp"]
        layout.strict_time = True
    if "status" not in columns:
        layout.implied_status = tuple((columns[name], status) for name, status in IMPLIED_STATUS if name in columns)
    layout.extras = tuple(extras)
    return layout


def _cells(row: Row, positions: tuple[int | None, ...]) -> list[str]:
    """The row's cells at `positions` (None, or past the row's end: empty), trimmed."""
    width = len(row)
    return [row[p].strip() if p is not None and p < width else "" for p in positions]


def _read_row(
    number: int, row: Row, positions: tuple[int | None, ...], layout: Layout, tags: tuple[str, ...],
    records: dict[str, str], report: ImportReport,
) -> None:
    """Check one row of an imported file and add it to `records` (merging a duplicate)."""
    joined = "".join(row)
    if not joined.strip():
        return  # blank lines at the end of a spreadsheet export are not rows anyone meant
    report.rows += 1
    if len(joined) > CELL_LIMIT:  # one length per row; the cells are looked at only then
        too_long = next((p for p, cell in enumerate(row) if len(cell.strip()) > CELL_LIMIT), None)
        if too_long is not None:
            report.invalid.append((number, (
                f"cell {too_long + 1}{_column_name(layout, too_long)} holds {len(row[too_long].strip()):,} "
                f"characters; a cell holds at most {CELL_LIMIT:,} characters")))
            return
    values = _cells(row, positions)
    given = values[P_EMAIL]
    if not given:
        report.invalid.append((number, "no email address"))
        return
    try:
        values[P_EMAIL] = normalize_address(given)
    except EmailNotValidError as exc:
        report.invalid.append((number, f"{given!r} is not a valid address ({exc})"))
        return
    if values[P_STATUS]:
        given_status = values[P_STATUS]
        values[P_STATUS] = STATUS_ALIASES.get(header_key(given_status), "")
        if not values[P_STATUS]:
            report.invalid.append((number, f"unknown status {given_status!r} (one of {', '.join(STATUS_RANK)})"))
            return
    else:
        values[P_STATUS] = next((status for position, status in layout.implied_status
                                 if position < len(row) and row[position].strip()), "")
    if values[P_TAGS] or tags:
        values[P_TAGS] = merge_tags(imported_tags(values[P_TAGS]), tags)
    given_time = values[P_SUBSCRIBED_AT]
    if given_time:
        values[P_SUBSCRIBED_AT] = iso_time(given_time)
        if not values[P_SUBSCRIBED_AT]:
            report.dates_as_written.append(number)
            # A form's Timestamp is used only when it parses (the column keeps it as written).
            values[P_SUBSCRIBED_AT] = "" if layout.strict_time else given_time
    packed = PACK.join(values)
    if packed.count(PACK) != len(values) - 1:  # a separator inside a cell: take it out
        packed = PACK.join(value.replace(PACK, " ") for value in values)
    key = address_key(values[P_EMAIL])
    earlier = records.get(key)
    if earlier is None:
        records[key] = packed
        return
    merged = _merge_duplicates(earlier, packed)
    merged_tags = merged.split(PACK)[P_TAGS]
    if len(merged_tags) > CELL_LIMIT:
        report.invalid.append((number, (
            f"its tags and those of the earlier rows of {values[P_EMAIL]} would make a cell of {len(merged_tags):,} "
            f"characters; a cell holds at most {CELL_LIMIT:,} characters")))
        return
    report.duplicates += 1
    records[key] = merged


def _column_name(layout: Layout, position: int) -> str:
    """` (notes)`: the name the import gives the file's column at `position`, for messages."""
    name = next((name for name, where_ in layout.columns.items() if where_ == position), "")
    return f" ({name})" if name else ""


def imported_tags(text: str) -> tuple[str, ...]:
    """Tags as tools write them: `a;b`, `a, b`, or Mailchimp's quoted list `"VIP","Donor"`."""
    if not text:
        return ()
    parts = next(csv.reader([text.replace("\n", " ")], skipinitialspace=True), [])
    return split_tags(";".join(part.strip().strip('"') for part in parts))


EPOCH = re.compile(r"\d{9,10}(\.\d+)?|\d{12,13}")  # seconds or milliseconds since 1970


def iso_time(text: str) -> str:
    """An imported time as ISO 8601 UTC, or "" when it is not a form read without guessing.

    Read: ISO 8601 (`2024-03-15T10:00:00Z`, `2024-03-15 10:00:00`, `2024-03-15`; no zone
    means UTC) and epoch seconds or milliseconds. `15/03/2024` could be March or, as
    `03/04/2024`, either month: it is not guessed at.
    """
    try:
        if EPOCH.fullmatch(text):
            seconds = float(text) / (1000 if len(text) >= 12 and "." not in text else 1)
            moment = datetime.fromtimestamp(seconds, UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _merge_duplicates(earlier: str, later: str) -> str:
    """Two rows of one file for one address: the earlier values stand, the later fill gaps.

    Of two statuses the stronger stands (complained > bounced > unsubscribed > subscribed),
    so a duplicate can never make an address mailable; tags are combined.
    """
    first, second = earlier.split(PACK), later.split(PACK)
    merged = [a or b for a, b in zip(first, second, strict=False)]
    merged[P_STATUS] = max(first[P_STATUS], second[P_STATUS], key=lambda s: STATUS_RANK.get(s, -1))
    merged[P_TAGS] = merge_tags(split_tags(first[P_TAGS]), split_tags(second[P_TAGS]))
    return PACK.join(merged)


def import_file(
    settings: Settings, source: Path, list_name: str = DEFAULT_LIST, tags: tuple[str, ...] = (),
    resubscribe: bool = False, dry_run: bool = False, progress: Progress = no_progress,
) -> ImportReport:
    """Merge the CSV `source` into list `list_name` and report what changed.

    Addresses already unsubscribed, bounced or complained stay so unless `resubscribe`;
    a `status` column in the file is honoured; values only fill empty fields.
    `progress(stage, rows)` is called now and then, for a progress display.
    """
    target = list_path(settings, list_name)
    tags = clean_tags(tags)
    imported, report = read_import(source, tags, progress)
    report.target, report.dry_run = target, dry_run
    stamp = now_iso()

    def merge(listing: ListFile) -> tuple[tuple[str, ...], Iterator[Row]]:
        # An imported column lands in the list's column of the same key (`company` in `Company`).
        report.new_list = not listing.exists
        existing = {header_key(name) or name: name for name in listing.extra_columns}
        targets = tuple(existing.get(name, name) for name in imported.extra_columns)
        extras = listing.extra_columns + tuple(name for name in targets if name not in listing.extra_columns)
        return extras, _merged_rows(listing, extras, targets, imported, resubscribe, stamp, report, progress)

    rewrite_list(target, merge, dry_run=dry_run, create=True)
    return report


def _merged_rows(
    listing: ListFile, extras: tuple[str, ...], targets: tuple[str, ...], imported: ImportedRows, resubscribe: bool,
    stamp: str, report: ImportReport, progress: Progress,
) -> Iterator[Row]:
    """The list's rows with the imported ones merged in, then the new addresses appended.

    `targets` names the list column each imported extra column goes to.
    """
    records = imported.records
    # Where each imported extra column lands in an output row.
    extra_positions = [(len(PACKED_COLUMNS) + i, len(COLUMNS) + extras.index(name))
                       for i, name in enumerate(targets)]
    for number, row in listing.rows:
        if number % PROGRESS_EVERY == 0:
            progress(f"merging into {where(listing.path)}", number - 1)
        key = address_key(row[EMAIL])
        packed = records.get(key)
        if packed is None:
            yield widen(row, listing.extra_columns, extras)
            continue
        if packed is MERGED:
            raise SubscriberError(
                f"{where(listing.path, number)}: {row[EMAIL]} is on the list a second time; "
                "a list holds one row per address: merge the two rows, then import again"
            )
        records[key] = MERGED
        row = widen(row, listing.extra_columns, extras)
        changed = _merge_into(row, packed.split(PACK), extra_positions, resubscribe, stamp, report,
                              listing.path, number)
        if changed:
            row[UPDATED_AT] = stamp
            report.updated += 1
        else:
            report.unchanged += 1
        yield row
    width = len(COLUMNS) + len(extras)
    for packed in records.values():
        if packed is MERGED:
            continue
        values = packed.split(PACK)
        row = [""] * width
        row[EMAIL], row[FIRST_NAME], row[LAST_NAME] = values[P_EMAIL], values[P_FIRST], values[P_LAST]
        row[STATUS] = values[P_STATUS] or "subscribed"
        row[TAGS] = values[P_TAGS]
        row[SUBSCRIBED_AT] = values[P_SUBSCRIBED_AT] or stamp
        row[UPDATED_AT] = stamp
        for source, target in extra_positions:
            row[target] = values[source]
        report.added += 1
        yield row


def _merge_into(
    row: Row, values: list[str], extra_positions: list[tuple[int, int]], resubscribe: bool, stamp: str,
    report: ImportReport, listing_path: Path, number: int,
) -> bool:
    """Merge an imported record into a list row in place; whether anything changed."""
    before = list(row)
    for source, target in (*FILLABLE, (P_SUBSCRIBED_AT, SUBSCRIBED_AT), *extra_positions):
        if not row[target] and values[source]:
            row[target] = values[source]
    tags = merge_tags(split_tags(row[TAGS]), split_tags(values[P_TAGS]))
    if len(tags) > CELL_LIMIT and tags != row[TAGS]:
        raise SubscriberError(
            f"{where(listing_path, number)}: the tags imported for {row[EMAIL]} would make its tags cell "
            f"{len(tags):,} characters long; a cell holds at most {CELL_LIMIT:,} characters: remove some tags "
            "from the list or the file, then import again"
        )
    row[TAGS] = tags
    wanted = values[P_STATUS]
    if wanted in ("", "subscribed"):
        if not subscribe_row(row, resubscribe, stamp):
            report.kept_unsubscribed += 1
    elif STATUS_RANK[wanted] > STATUS_RANK[row[STATUS]]:
        row[STATUS] = wanted
    return row != before
