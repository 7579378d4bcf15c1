"""Import a CSV exported from anywhere (a spreadsheet, Mailchimp, a form tool) into a list.

Reading a foreign file: as `csvfile.open_csv` reads any CSV (UTF-8 with or without
BOM, Windows-1252 or UTF-16 after a BOM, named in the report; the delimiter from Excel's
`sep=` line or the header line; row numbers as a spreadsheet shows them; a quote left
open that would merge two people refused); header names in any case, with common
aliases. A row with filled-in cells past the header is left out, named (`too_wide`).

Tools' own layouts: the exports people migrate from (Ghost, Substack, listmonk,
Buttondown, Kit, MailerLite, beehiiv, Mailchimp) are told by their header line and
their own status columns read (`sources.py`, one entry per tool); Mailchimp's `TAGS`
(`"VIP","Donor"`) become tags VIP;Donor. A form tool's whole-name column (`Name`,
`Full name`) goes into first_name as written when there is no first-name column (a
split would guess wrong for "Mary Ann Smith"); its `Timestamp` becomes subscribed_at
only when it parses as a time, and is kept as written in the extra column `timestamp`
either way. A form's `Subscribed` or consent column of yes/no answers (true/false, 1/0,
or ticks and blanks) is the status: no is unsubscribed; the column is not copied into
the list unless it also holds something else (a date), and the report says how it was read.

Consent is read, never guessed: a blank status or answer is no consent (the row is
imported unsubscribed, named), a word the import cannot read leaves the row out, named,
and subscribed_at is the file's opt-in evidence or empty, never the time of the import.
A file with no status or consent column at all is imported subscribed, as before, on the
editor's word, and the report warns so.

Merging: only the *imported* rows are held in memory, one packed string per address;
the list itself is streamed once through `rewrite_list`, so importing into a list of a
million addresses costs no more memory than the imported file. An import never
resubscribes an address that unsubscribed, bounced or complained unless asked to,
never blanks a field (values only fill empty ones) and merges duplicates.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, UTC
from pathlib import Path

from newsletter.subscribers.erasure import erased_addresses, forget_erasure
from newsletter.subscribers.addresses import EmailNotValidError, address_key, normalize_address
from newsletter.subscribers.csvfile import LIMITS, named_width, open_csv
from newsletter.subscribers.sources import STATUS_WORDS, Source, recognise
from newsletter.config import Settings
from newsletter.errors import SubscriberError, where
from newsletter.files.textencoding import WINDOWS_1252
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
    # The list keeps its own time of change; an imported one would be misleading.
    "updated_at": ("updated_at", "last_changed"),
}
ALIAS_TO_COLUMN = {alias: column for column, aliases in HEADER_ALIASES.items() for alias in aliases}

# Headers of an opt-in date, the most telling first. Exports often carry several
# (`Created` and `Opt-in date`): the first of these the file has is the opt-in date,
# the others stay extra columns as written, so nothing is lost and nothing is an error.
DATE_HEADERS = (
    "subscribed_at", "optin_time", "opt_in_time", "opt_in_date", "optin_date", "signup_date", "sign_up_date",
    "signed_up", "signed_up_at", "signed_up_on", "subscribed_on", "subscription_date", "date_subscribed",
    "date_added", "created", "created_at", "created_on", "creation_date", "subscribed",
)
# "Subscribed" is an opt-in date in some exports and a yes/no answer in others (a form's
# "Subscribed? Yes"), sometimes both in one file. It is decided cell by cell, by the value:
# a yes/no word is an answer (no: the address is unsubscribed, so it is never mailed; yes:
# nothing to change), anything else is a date. The two cannot be confused: no date this
# tool reads is a yes/no word, and a number is a date only with 9 digits or more.
# The other headers here are only ever answers. The first of them the file has is read.
ANSWER_HEADERS = ("subscribed", "is_subscribed", "subscribed_yes_no", "opted_in", "opt_in", "optin")
ANSWERS = {
    **dict.fromkeys(("yes", "y", "true", "1", "subscribed", "checked", "oui", "ja", "sí", "si", "sim"), "subscribed"),
    **dict.fromkeys(("no", "n", "false", "0", "unsubscribed", "unchecked", "non", "nein", "nej", "nee", "não",
                     "nao"), "unsubscribed"),
}
# A spreadsheet's tick. A blank in an answer column is never a yes: an unticked box, or
# no answer at all, is no consent (issue 16: a form's blank imported the person as subscribed).
TICKS = frozenset(("x", "✓", "✔", "☑"))
# A consent question as a form tool heads its column ("I agree to receive the newsletter",
# "Subscribe to updates?"): a header with one of these word stems is a column of answers
# when the file has none of ANSWER_HEADERS. A ticked box of Google Forms or Microsoft Forms
# is written as the option's text ("Yes, send me the newsletter"): a cell with one of these
# stems, or that begins with a yes, and without a word of negation, is a tick, but only
# when it is the column's one option text (a checkbox has one label). A column of several
# ("Subscribe me to the newsletter", "Without newsletter", "Ohne Newsletter") is a
# multiple-choice answer: a refusal has a consent stem too and no negation word this list
# could ever hold, so there only yes/no words are read and any other text leaves the row
# out, named (a reviewer's form of six answers was imported as six subscribed).
CONSENT_STEMS = ("subscribe", "newsletter", "consent", "agree", "accept", "optin", "permission")
YES_FIRST = frozenset(("yes", "y", "oui", "ja", "si", "sí", "sim"))
NEGATIONS = frozenset(("no", "not", "don", "dont", "never", "nicht", "kein", "keine", "pas", "non", "nein", "nej",
                       "nee", "não", "nao", "ne",
                       # Words of a refusal: a column whose one option text is "Stop the newsletter"
                       # or "Ohne Newsletter" is a column of refusals, never of ticks.
                       "unsubscribe", "unsubscribed", "stop", "without", "ohne", "sans", "sin", "sem", "off",
                       "remove", "cancel", "optout", "decline", "refuse"))
# Headers that are evidence or identifiers, never an answer (`OPTIN_TIME`, `newsletter_id`).
NOT_ANSWERS = ("_at", "_on", "_time", "_date", "_ip", "_id")


def read_answer(cell: str, checkbox: bool = True) -> str | None:
    """A "Subscribed" cell's answer: "subscribed" (yes, a tick), "unsubscribed" (no) or None.

    `checkbox`: the column has one option text at most, so that text is a tick; otherwise
    an option text is no answer this tool reads (None).
    """
    text = cell.strip()
    if text.lower() in TICKS:
        return "subscribed"
    key = header_key(text)
    answer = ANSWERS.get(key)
    if answer is not None or not key:
        return answer
    if checkbox:
        return "subscribed" if _is_option_text(key) else None
    # One option of several ("Yes, send me the newsletter" / "I do not agree"): a refusal or a
    # negation is a no, an option that begins with a yes and refuses nothing a yes; any other
    # text ("Subscribe me to the newsletter" beside five refusals) is no answer read on a guess.
    parts = key.split("_")
    if NEGATIONS.intersection(parts):
        return "unsubscribed"
    return "subscribed" if parts[0] in YES_FIRST else None


def is_option_text(cell: str) -> bool:
    """Whether `cell` reads as a form's option text (not a yes/no word nor a tick): see CONSENT_STEMS."""
    key = header_key(cell.strip())
    return bool(key) and key not in ANSWERS and cell.strip().lower() not in TICKS and _is_option_text(key)


def _is_option_text(key: str) -> bool:
    """A form's ticked checkbox, written as its option's text: a consent word or a leading yes, no negation."""
    parts = key.split("_")
    if NEGATIONS.intersection(parts):
        return False
    return parts[0] in YES_FIRST or any(part.startswith(CONSENT_STEMS) for part in parts)


def consent_header(keys: Sequence[str]) -> str | None:
    """The header key of the file's column of yes/no answers or consent ticks, if it has one."""
    exact = next((key for key in ANSWER_HEADERS if key in keys), None)
    if exact is not None:
        return exact
    for key in keys:
        if key in ALIAS_TO_COLUMN or key in DATE_HEADERS or key.endswith(NOT_ANSWERS):
            continue
        parts = key.split("_")
        if any(part.startswith(CONSENT_STEMS) for part in parts) or "opt_in" in key:
            return key
    return None


@dataclass
class AnswerColumn:
    """How the cells of a "Subscribed" column were read, for the report."""

    position: int  # in the file's rows
    name: str  # as the file's header writes it
    is_date_column: bool  # it is also the column of opt-in dates (no other date column)
    yes: int = 0
    no: int = 0
    ticks: int = 0
    blank: int = 0
    other: int = 0  # neither an answer nor blank: a date, or a word this tool does not read

    @property
    def is_checkbox(self) -> bool:
        """Only ticks and blanks: a blank is an unticked box."""
        return bool(self.ticks) and not (self.yes or self.no or self.other)

    @property
    def kept_as_extra(self) -> bool:
        """The column is copied into the list as written: it holds more than answers."""
        return bool(self.other) and not self.is_date_column

    def line(self, date_column: str) -> str:
        """What the import read from the column, for the report."""
        name = repr(self.name)
        if self.is_checkbox:
            text = (f"column {name} read as a checkbox: {self.ticks:,} ticked (subscribed), "
                    f"{self.blank:,} blank (not subscribed)")
        else:
            how = "cell by cell" if self.other else "as yes/no"
            text = f"column {name} read {how}: {self.yes + self.ticks:,} yes (subscribed), {self.no:,} no (not subscribed)"
            if self.blank:
                text += f", {self.blank:,} blank (no answer, so not subscribed)"
            if self.other:
                text += f", {self.other:,} other " + (
                    "read as opt-in dates" if self.is_date_column else f"kept as written in column {self.name!r}")
        if date_column and not self.is_date_column:
            text += f"; opt-in dates from column {date_column!r}"
        return text


# An imported address is held as one string, its fields joined by this separator:
# about half the memory of a tuple of strings, which matters at a million rows.
PACK = "\x1f"
# Marks an imported address already merged into the list (compared by identity).
MERGED = "\x00merged"
# The fields of a packed record, in its order; the file's extra columns follow. `row` is
# the file's row whose values the record keeps (for the report of duplicates), marked
# with DUPLICATED once another row was merged into it.
PACKED_COLUMNS = ("email", "first_name", "last_name", "status", "tags", "subscribed_at", "row")
P_EMAIL, P_FIRST, P_LAST, P_STATUS, P_TAGS, P_SUBSCRIBED_AT, P_ROW = range(len(PACKED_COLUMNS))
FILLABLE = ((P_FIRST, FIRST_NAME), (P_LAST, LAST_NAME))
DUPLICATED = "*"

SHOWN_INVALID = 20  # rows of each kind the report names, one line each
# The most characters a cell of a list may get from an import. SendGrid takes at most
# 10,000 bytes of merge values per recipient, so a longer cell could never be sent
# anyway; a stated limit keeps a list something every command (and a spreadsheet) reads.
CELL_LIMIT = 10_000
PROGRESS_EVERY = 20_000  # rows between two calls of a progress callback

Progress = Callable[[str, int], None]


def no_progress(stage: str, rows: int) -> None:
    """The progress callback that shows nothing."""


@dataclass
class Duplicate:
    """An address in more than one row of an imported file, and how its rows were merged."""

    email: str
    kept: int  # the first row: its values stand
    rows: list[int] = field(default_factory=list)  # the later rows merged into it (the first SHOWN_INVALID)
    count: int = 0  # how many later rows
    filled: dict[str, int] = field(default_factory=dict)  # column → the later row that filled it
    status: tuple[str, int] | None = None  # a stronger status, and the later row it came from
    tags_from: list[int] = field(default_factory=list)  # later rows that added tags

    def line(self) -> str:
        """What the merge did, for the report."""
        parts = [f"{self.email} is also in {rows_text(self.rows, self.count)}: merged into one, "
                 f"row {self.kept}'s values kept"]
        by_row: dict[int, list[str]] = {}
        for column, number in self.filled.items():
            by_row.setdefault(number, []).append(column)
        parts += [f"empty {', '.join(columns)} filled from row {number}" for number, columns in by_row.items()]
        if self.status is not None:
            parts.append(f"status {self.status[0]} from row {self.status[1]} (the stronger status stands)")
        if self.tags_from:
            parts.append(f"tags of {rows_text(self.tags_from)} added")
        return "; ".join(parts)


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
    duplicates: int = 0  # rows merged into an earlier row of the same address
    duplicate_addresses: int = 0
    # The first SHOWN_INVALID addresses in more than one row, by address key.
    duplicated: dict[str, Duplicate] = field(default_factory=dict)
    kept_unsubscribed: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)
    # Opt-in dates that did not parse (`15/03/2024` is ambiguous), kept as written:
    # how many, and the first SHOWN_INVALID as (row, value).
    dates_as_written: int = 0
    dates_shown: list[tuple[int, str]] = field(default_factory=list)
    # The file's column the opt-in dates came from, as its header names it; and whether a
    # date that does not parse is dropped (a form's Timestamp, kept in its own column).
    date_column: str = ""
    dates_dropped: bool = False
    answers: AnswerColumn | None = None  # the file's "Subscribed" column of yes/no answers
    # The known export the file was recognised as (sources.SOURCES); None: read by its columns.
    export: Source | None = None
    # How many rows took each status from each source of status, by (status, the file's
    # column as its header writes it, the word read there: "" for a blank cell); a column
    # of "" is a row whose file says nothing about its status.
    status_counts: dict[tuple[str, str, str], int] = field(default_factory=dict)
    # Rows whose consent or status cell is blank, so imported as unsubscribed: how many,
    # and the first SHOWN_INVALID as (row, column).
    blanks: int = 0
    blanks_shown: list[tuple[int, str]] = field(default_factory=list)
    consent_column: str = ""  # the column the file's statuses or answers are read from
    # The file has no column that says anything about consent (no status, answer or
    # implied-status column, and no known export): everyone is subscribed on the editor's word.
    no_consent_column: bool = False
    consent_rows: int = 0  # rows that reached it
    # Rows not imported because the tool says the person is gone (Ghost's deleted_at).
    left_out: list[tuple[int, str]] = field(default_factory=list)
    # Opt-in dates no reading took at first, in file order: (row, as written, address key).
    unparsed_dates: list[tuple[int, str, str]] = field(default_factory=list, repr=False)
    # Slashed dates read in the order the file shows (day-first or month-first): how many,
    # the order, and the (row, value) that shows it.
    dates_ordered: int = 0
    date_order: str = ""
    date_order_shown_by: tuple[int, str] = (0, "")

    erased: list[tuple[int, str]] = field(default_factory=list)  # rows of erased addresses (subscribers delete)
    encoding: str = "UTF-8"  # the file's, as csvfile.open_csv read it
    new_columns: tuple[str, ...] = ()  # the file's extra columns the list did not have

    def count_status(self, status: str, column: str, word: str) -> None:
        """One more row took `status` from `column` saying `word`."""
        key = (status, column, word)
        self.status_counts[key] = self.status_counts.get(key, 0) + 1

    def blank(self, number: int, column: str) -> None:
        """Row `number` left its consent or status cell blank: no consent."""
        self.blanks += 1
        if len(self.blanks_shown) < SHOWN_INVALID:
            self.blanks_shown.append((number, column))

    def _status_lines(self) -> list[str]:
        """One line per source of status: `  unsubscribed        14 (Ghost: subscribed_to_emails=false)`."""
        name = self.export.name if self.export is not None else ""
        lines = []
        for (status, column, word), count in sorted(self.status_counts.items(),
                                                    key=lambda item: (STATUS_RANK[item[0][0]], -item[1])):
            if not column:
                said = (f"{name}: no {' or '.join(filled.upper() for filled, _ in self.export.filled)}"
                        if self.export is not None and self.export.filled else "no status or consent column in the file")
            elif not word:
                said = f"{name + ': ' if name else ''}{column} blank, no consent"
            elif word == FILLED:
                said = f"{name + ': ' if name else ''}{column} filled in"
            elif word == EXPORT_STATUS:
                said = f"{name}: {column} blank: every row of its export is {status}"
            else:
                said = f"{name + ': ' if name else 'column '}{column}={word}"
            lines.append(f"  {status:<19} {count:,} ({said})")
        return lines

    def lines(self) -> list[str]:
        """The report as a person reads it."""
        dates_note = (
            "not ISO 8601 or epoch seconds, and not guessed at (03/04/2024 could be March or April), so kept "
            + (f"as written in column {self.date_column!r} only; subscribed_at is left empty"
               if self.dates_dropped else "as written")
        )
        lines = [
            f"{where(self.source)} → {where(self.target)}{' (new list)' if self.new_list else ''}: {plural(self.rows, 'row')} read"
            + (" (dry run: nothing written)" if self.dry_run else ""),
            f"  added               {self.added}",
            f"  updated             {self.updated}",
            f"  unchanged           {self.unchanged}",
            f"  duplicates in file  {self.duplicates}" + (
                f" ({plural(self.duplicate_addresses, 'address', 'addresses')} in more than one row: "
                "the later rows merged into the first)" if self.duplicates else ""),
            f"  kept unsubscribed   {self.kept_unsubscribed}"
            + (" (use --resubscribe to subscribe them again)" if self.kept_unsubscribed else ""),
            f"  invalid             {len(self.invalid)}" + _in_rows([n for n, _ in self.invalid[:SHOWN_INVALID]],
                                                                   len(self.invalid)),
            f"  dates as written    {self.dates_as_written}"
            + _in_rows([n for n, _ in self.dates_shown], self.dates_as_written)
            + (f": {dates_note}" if self.dates_as_written else ""),
        ]
        if self.left_out:
            lines.append(f"  left out            {len(self.left_out):,}"
                         + _in_rows([n for n, _ in self.left_out[:SHOWN_INVALID]], len(self.left_out)))
        if self.blanks:
            lines.append(f"  blank consent       {self.blanks:,}"
                         + _in_rows([n for n, _ in self.blanks_shown], self.blanks) + ": imported as unsubscribed")
        lines += self._status_lines()
        if self.export is not None:
            lines.append(f"{where(self.source)}: read as a {self.export.name} export (by its header)")
        if self.no_consent_column and self.status_counts.get(("subscribed", "", "")):
            # Read as before (an unrecognised file is no reason to refuse it), but never silently.
            lines.append(f"{where(self.source)}: warning: the file gives no status or consent column, so everyone in "
                         "it is imported as subscribed on your word alone: import only people who asked for the "
                         "newsletter")
        if self.consent_column and self.consent_rows and self.blanks == self.consent_rows:
            lines.append(f"{where(self.source)}: warning: column {self.consent_column!r} is blank in every row: "
                         "the file gives no consent information, so nobody in it is imported as subscribed")
        if self.encoding not in ("UTF-8", "UTF-8 with a BOM"):
            lines.append(f"{where(self.source)}: read as {self.encoding} text, not UTF-8"
                         + (WINDOWS_1252_NOTE if self.encoding == WINDOWS_1252.name else ""))
        if self.new_columns:
            lines.append(f"{where(self.source)}: {plural(len(self.new_columns), 'column')} added to "
                         f"{where(self.target)} (filled in by the file's rows): {', '.join(self.new_columns)}")
        if self.answers is not None:
            lines.append(f"{where(self.source)}: {self.answers.line(self.date_column)}")
        if self.dates_ordered:
            row, value = self.date_order_shown_by
            other = "month" if self.date_order == "day-first" else "day"
            lines.append(f"{where(self.source)}: {plural(self.dates_ordered, 'slashed date')} read {self.date_order}: "
                         f"row {row}'s {value!r} shows the order, and no date says otherwise (no {other} over 12 "
                         "in that place)")
        lines += [f"{where(self.source, number)}: {reason}" for number, reason in self.left_out[:SHOWN_INVALID]]
        lines += _more(self.source, len(self.left_out) - SHOWN_INVALID, "row left out")
        lines += [f"{where(self.source, number)}: column {column!r} is blank: no consent, imported as unsubscribed"
                  for number, column in self.blanks_shown]
        lines += _more(self.source, self.blanks - len(self.blanks_shown), "blank consent cell")
        lines += [f"{where(self.source, number)}: {reason}" for number, reason in self.invalid[:SHOWN_INVALID]]
        lines += [f"{where(self.source, number)}: {reason}" for number, reason in self.erased]
        lines += _more(self.source, len(self.invalid) - SHOWN_INVALID, "invalid row")
        lines += [f"{where(self.source, d.kept)}: {d.line()}" for d in self.duplicated.values()]
        lines += _more(self.source, self.duplicate_addresses - len(self.duplicated), "address in more than one row",
                       "addresses in more than one row")
        lines += [f"{where(self.source, number)}: the opt-in date {value!r} is kept as written"
                  + (f" in column {self.date_column!r} only" if self.dates_dropped else "")
                  for number, value in self.dates_shown]
        lines += _more(self.source, self.dates_as_written - len(self.dates_shown), "date kept as written",
                       "dates kept as written")
        return lines


# Excel's "CSV (Comma delimited)" on a Mac is Mac Roman, which no byte tells from
# Windows-1252 reliably: the report says what was read rather than guess.
WINDOWS_1252_NOTE = (" (Excel's \"CSV (Comma delimited)\" on Windows); if names show Ž or Ÿ where é or ü belong, "
                     "the file is Mac Roman: save it as \"CSV UTF-8\" and import it again")


def wider_than(row: Row, width: int) -> bool:
    """Whether `row` has a filled-in cell past the header's `width` columns (empty ones are padding)."""
    return any(cell.strip() for cell in row[width:])


DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


def too_wide(row: Row, width: int, delimiter: str) -> str:
    """Why a row with more cells than the header is left out.

    Its cells cannot be matched to columns without a guess: a comma in a cell that is not
    quoted (`Smith, Ann`) moves every cell after it, a status or a "no" too. The row is
    left out, named, never read with its cells cut or shifted.
    """
    return (f"{len(row):,} cells, but the header names {width:,} columns: a {DELIMITER_NAMES.get(delimiter, delimiter)} "
            "inside a cell that is not in quotes? put that cell in quotes, or name the extra column in row 1")


def plural(count: int, singular: str, plural_form: str = "") -> str:
    """`1 row`, `2 rows` (or the plural given)."""
    return f"{count:,} {singular if count == 1 else plural_form or singular + 's'}"


def rows_text(numbers: Sequence[int], total: int | None = None) -> str:
    """`row 4`, `rows 4, 9`, `rows 2, 3, 5 and 17 more`: the first numbers of `total` rows."""
    total = len(numbers) if total is None else total
    shown = ", ".join(str(n) for n in numbers)
    more = f" and {total - len(numbers):,} more" if total > len(numbers) else ""
    return f"row{'s' if total != 1 else ''} {shown}{more}"


def _in_rows(numbers: Sequence[int], total: int) -> str:
    """` (rows 2, 5 and 3 more)` for a report line; "" for none."""
    return f" ({rows_text(numbers, total)})" if numbers else ""


def _more(source: Path, count: int, singular: str, plural_form: str = "") -> list[str]:
    """The line that says how many were not shown, if any."""
    noun = singular if count == 1 else plural_form or singular + "s"
    return [f"{where(source)}: … and {count:,} more {noun}"] if count > 0 else []


@dataclass
class ImportedRows:
    """The valid rows of an imported file, one packed record per address, in file order."""

    extra_columns: tuple[str, ...]
    records: dict[str, str]
    # Where each of `extra_columns` is in a packed record (a column of answers read as the
    # status is in the record but not among them).
    extra_fields: tuple[int, ...] = ()


def read_import(
    path: Path, tags: tuple[str, ...] = (), progress: Progress = no_progress,
) -> tuple[ImportedRows, ImportReport]:
    """Read a foreign CSV: its valid rows merged by address, and a report of what was skipped."""
    report = ImportReport(source=path, target=path)
    with open_csv(path, unreadable="unreadable CSV", any_encoding=True) as reading:
        header = reading.header
        report.encoding = reading.encoding
        if not "".join(header).strip():
            raise SubscriberError(f"{where(path, 1)}: the file is empty; it needs a header row with an email column")
        width = named_width(header)
        layout = _map_header(path, header)
        report.export = layout.export
        if layout.answers is not None:
            layout.option_texts = _count_option_texts(path, layout.answers)
        report.consent_column = layout.status_header or layout.answers_header
        report.no_consent_column = not (report.consent_column or layout.implied_status or layout.export)
        extras = layout.extras
        if "subscribed_at" in layout.columns:
            report.date_column = header[layout.columns["subscribed_at"]].strip()
            report.dates_dropped = layout.strict_time
        # Where each field of a packed record is in the file's rows (`row` is not a column).
        positions = (*(layout.columns.get(name) for name in PACKED_COLUMNS[:P_ROW]), None,
                     *(layout.columns[name] for name in extras))
        records: dict[str, str] = {}
        answers = None if layout.answers is None else AnswerColumn(
            layout.answers, layout.answers_header, layout.columns.get("subscribed_at") == layout.answers)
        # The extra columns no imported row has filled in yet: those left at the end are
        # not carried into the list (a file's empty columns would be empty for everyone).
        unfilled = {layout.columns[name]: name for name in extras}
        for number, row in reading.rows:
            if len(row) > width and wider_than(row, width):
                report.rows += 1
                report.invalid.append((number, too_wide(row, width, reading.delimiter)))
                continue
            key = _read_row(number, row, positions, layout, tags, records, report)
            if unfilled and key is not None:
                _note_filled(row, unfilled)
            if answers is not None and key is not None:
                _count_answer(answers, row[answers.position] if answers.position < len(row) else "",
                              layout.option_texts <= 1)
            if number % PROGRESS_EVERY == 0:
                progress(f"reading {where(path)}", number - 1)
    _read_slashed_dates(records, report, layout.strict_time)
    fields = tuple(range(len(PACKED_COLUMNS), len(PACKED_COLUMNS) + len(extras)))
    if answers is not None:
        report.answers = answers
        if not answers.kept_as_extra and answers.name and header_key(answers.name) in extras:
            # Only answers: the status says it all, so the column is not copied into the list.
            dropped = extras.index(header_key(answers.name))
            extras = extras[:dropped] + extras[dropped + 1:]
            fields = fields[:dropped] + fields[dropped + 1:]
    if unfilled:
        empty = set(unfilled.values())
        kept = [(name, field_) for name, field_ in zip(extras, fields, strict=True) if name not in empty]
        extras, fields = tuple(name for name, _ in kept), tuple(field_ for _, field_ in kept)
    return ImportedRows(extra_columns=extras, records=records, extra_fields=fields), report


def _note_filled(row: Row, unfilled: dict[int, str]) -> None:
    """Take out of `unfilled` (position → extra column) the columns `row` fills in."""
    width = len(row)
    for position in [p for p in unfilled if p < width and row[p].strip()]:
        del unfilled[position]


def _count_option_texts(path: Path, position: int) -> int:
    """How many different answers in words (`_answer_in_words`) the file's column at `position` holds.

    Read before the rows are, in a pass of its own: whether a text is a tick depends on
    the whole column (one label: a checkbox; several: a multiple-choice answer).
    """
    texts: set[str] = set()
    with open_csv(path, unreadable="unreadable CSV", any_encoding=True) as reading:
        for _, row in reading.rows:
            cell = row[position] if position < len(row) else ""
            if _answer_in_words(cell):
                texts.add(header_key(cell.strip()))
    return len(texts)


def _answer_in_words(cell: str) -> bool:
    """A cell that is neither blank, a yes/no word, a tick nor a date: an option's text, a
    refusal's ("Stop the newsletter") as much as a consent's. Two of them in a column make it
    a multiple-choice answer, whose texts are never read as ticks."""
    text = cell.strip()
    return bool(text) and header_key(text) not in ANSWERS and text.lower() not in TICKS \
        and not any(character.isdigit() for character in text)


def _count_answer(answers: AnswerColumn, cell: str, checkbox: bool) -> None:
    """Count one row's cell of the "Subscribed" column (`checkbox`: as read_answer's)."""
    answer = read_answer(cell, checkbox)
    if answer == "unsubscribed":
        answers.no += 1
    elif answer is not None:
        if header_key(cell) in ANSWERS:
            answers.yes += 1
        else:  # a tick, or a form's option text
            answers.ticks += 1
    elif cell.strip():
        answers.other += 1
    else:
        answers.blank += 1


# A date as spreadsheets and form tools write it: 15/03/2024, 3/15/2024 14:23:45, 15.03.24.
SLASHED = re.compile(r"(\d{1,2})([/.])(\d{1,2})\2(\d{4}|\d{2})(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?")


def _read_slashed_dates(records: dict[str, str], report: ImportReport, strict_time: bool) -> None:
    """Read the file's slashed opt-in dates in the one order its dates show, if they show one.

    `15/03/2024` has a day over 12: day-first. When some date shows day-first and none shows
    month-first (a second number over 12), every slashed date of the file is day-first, and
    likewise the other way; a file that shows neither, or both, is ambiguous and its dates
    stay as written. The rest go into the report's dates as written.
    """
    slashed = [(number, given, key, match) for number, given, key in report.unparsed_dates
               if (match := SLASHED.fullmatch(given))]
    day_first = next(((number, given) for number, given, _, match in slashed if int(match[1]) > 12), None)
    month_first = next(((number, given) for number, given, _, match in slashed if int(match[3]) > 12), None)
    unread = report.unparsed_dates
    if (day_first is None) != (month_first is None):
        report.date_order = "day-first" if day_first is not None else "month-first"
        report.date_order_shown_by = day_first or month_first or (0, "")
        done: set[int] = set()
        for number, given, key, match in slashed:
            iso = _slashed_iso(match, day_first is not None)
            values = records[key].split(PACK) if iso and key in records else None
            if values is None or values[P_SUBSCRIBED_AT] != ("" if strict_time else given):
                continue
            values[P_SUBSCRIBED_AT] = iso
            records[key] = PACK.join(values)
            done.add(number)
        report.dates_ordered = len(done)
        unread = [entry for entry in unread if entry[0] not in done]
    report.dates_as_written = len(unread)
    report.dates_shown = [(number, given) for number, given, _ in unread[:SHOWN_INVALID]]
    report.unparsed_dates = []


def _slashed_iso(match: re.Match[str], day_first: bool) -> str:
    """A SLASHED match as ISO 8601 UTC, day or month first; "" for no such date (31/02/2024)."""
    first, second, year = int(match[1]), int(match[3]), int(match[4])
    day, month = (first, second) if day_first else (second, first)
    if len(match[4]) == 2:
        year += 2000 if year < 69 else 1900  # as strptime's %y
    try:
        moment = datetime(year, month, day, int(match[5] or 0), int(match[6] or 0), int(match[7] or 0), tzinfo=UTC)
    except ValueError:
        return ""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Layout:
    """Where things are in an imported file's rows."""

    columns: dict[str, int]  # our column name (or an extra column's name) → position
    extras: tuple[str, ...]
    # Without a status column: (position, status) of columns whose being filled in implies
    # a status, strongest first (Mailchimp's per-status exports: CLEAN_TIME, UNSUB_TIME).
    implied_status: tuple[tuple[int, str], ...] = ()
    # A known export's implied-status column is its per-status export: its status holds for
    # every row, a blank cell too (sources.Source.filled).
    implied_by_column: bool = False
    # subscribed_at comes from a form tool's Timestamp: used only when it parses as a time
    # (the column is kept as written in the extra column `timestamp` as well).
    strict_time: bool = False
    # The position of a "Subscribed" column, whose yes/no answers are a status (see ANSWERS).
    answers: int | None = None
    answers_header: str = ""  # that column's name as the file writes it, for messages
    # How many different option texts that column holds (see CONSENT_STEMS): at most one
    # is a checkbox's label, read as a tick; more are a multiple choice, not read.
    option_texts: int = 0
    names: tuple[str, ...] = ()  # the fields of a packed record: PACKED_COLUMNS, then the extras
    export: Source | None = None  # the known export the header shows, if any
    # The status column's header as the file writes it ("": none), and how its words read.
    status_header: str = ""
    words: Mapping[str, str] = field(default_factory=lambda: STATUS_WORDS)
    # A column whose filled cell leaves the row out (Ghost's deleted_at): position, header.
    left_out: int | None = None
    left_out_header: str = ""
    # The header of each implied-status column (IMPLIED_STATUS), by position, for the report.
    implied_headers: dict[int, str] = field(default_factory=dict)


# Columns that imply a status when the file has no status column, strongest first (a
# Mailchimp export not recognised by its whole header still has them).
IMPLIED_STATUS = (("clean_time", "bounced"), ("unsub_time", "unsubscribed"))
FILLED = "\x00filled"  # the "word" of an implied status, in ImportReport.status_counts
EXPORT_STATUS = "\x00export"  # the "word" of a known export's implied status on a blank cell
# Microsoft Forms writes "Completion time" where Google Forms writes "Timestamp".
FORM_TIMES = ("timestamp", "completion_time")
# A whole name ("Name", "Full name" in a form tool) goes into first_name, when the file has
# no first-name column: splitting it would guess wrong for "Mary Ann Smith" or "van Gogh",
# and "Hello {{ first_name }}" still reads right with a whole name.
WHOLE_NAME = ("name", "full_name", "your_name")


def _map_header(path: Path, header: Row) -> Layout:
    """Where our columns and the extra ones are, and what else the header tells."""
    columns: dict[str, int] = {}
    extras: list[str] = []
    keys = [header_key(name) for name in header]
    export = recognise(keys)
    date_header = next((key for key in DATE_HEADERS if key in keys), None)
    for position, key in enumerate(keys):
        if not key:
            continue
        if export is not None and key == export.status_column:
            column = "status"
        elif export is not None and ALIAS_TO_COLUMN.get(key) == "status":
            # Another column is this export's status: this one is kept, as the export wrote it.
            column = f"{key}_in_{header_key(export.name)}"
        else:
            column = "subscribed_at" if key == date_header else ALIAS_TO_COLUMN.get(key, key)
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
    layout = Layout(columns, (), export=export)
    if export is not None:
        layout.words = export.words
        if export.left_out in keys:
            layout.left_out = keys.index(export.left_out)
            layout.left_out_header = header[layout.left_out].strip()
            # Empty in every row imported: a column of nothing is not carried into the list.
            extras.remove(export.left_out)
    else:
        answer_header = consent_header(keys)
        if answer_header is not None:
            layout.answers = keys.index(answer_header)
            layout.answers_header = header[layout.answers].strip()
    if "status" in columns:
        layout.status_header = header[columns["status"]].strip()
    whole_name = next((name for name in WHOLE_NAME if name in columns), None)
    if "first_name" not in columns and whole_name is not None:
        columns["first_name"] = columns.pop(whole_name)
        extras.remove(whole_name)
    form_time = next((name for name in FORM_TIMES if name in columns), None)
    if "subscribed_at" not in columns and form_time is not None:
        columns["subscribed_at"] = columns[form_time]
        layout.strict_time = True
    if "status" not in columns:
        implied = export.filled if export is not None else IMPLIED_STATUS
        layout.implied_status = tuple((columns[name], status) for name, status in implied if name in columns)
        layout.implied_headers = {position: header[position].strip() for position, _ in layout.implied_status}
        layout.implied_by_column = export is not None
    layout.extras = tuple(extras)
    layout.names = (*PACKED_COLUMNS, *layout.extras)
    return layout


def _cells(row: Row, positions: tuple[int | None, ...]) -> list[str]:
    """The row's cells at `positions` (None, or past the row's end: empty), trimmed."""
    width = len(row)
    return [row[p].strip() if p is not None and p < width else "" for p in positions]


def _read_row(
    number: int, row: Row, positions: tuple[int | None, ...], layout: Layout, tags: tuple[str, ...],
    records: dict[str, str], report: ImportReport,
) -> str | None:
    """Check one row of an imported file and add it to `records` (merging a duplicate).

    Returns the address key of the record the row went into; None for a skipped row.
    """
    joined = "".join(row)
    if not joined.strip():
        return None  # blank lines at the end of a spreadsheet export are not rows anyone meant
    report.rows += 1
    if len(joined) > CELL_LIMIT:  # one length per row; the cells are looked at only then
        too_long = next((p for p, cell in enumerate(row) if len(cell.strip()) > CELL_LIMIT), None)
        if too_long is not None:
            report.invalid.append((number, (
                f"cell {too_long + 1}{_column_name(layout, too_long)} holds {len(row[too_long].strip()):,} "
                f"characters; a cell holds at most {CELL_LIMIT:,} characters")))
            return None
    values = _cells(row, positions)
    given = values[P_EMAIL]
    if not given:
        report.invalid.append((number, "no email address"))
        return None
    try:
        values[P_EMAIL] = normalize_address(given)
    except EmailNotValidError as exc:
        report.invalid.append((number, f"{given!r} is not a valid address ({exc})"))
        return None
    if layout.left_out is not None and layout.left_out < len(row) and row[layout.left_out].strip():
        report.left_out.append((number, (
            f"{values[P_EMAIL]} has {layout.left_out_header} {row[layout.left_out].strip()!r}: the member was deleted "
            f"in {layout.export.name if layout.export else 'the tool'}, so the row is not imported")))
        return None
    if layout.status_header:
        given_status = values[P_STATUS]
        if given_status:
            word = header_key(given_status)
            status = layout.words.get(word)
            if status is None:
                report.invalid.append((number, _unknown_status(layout, given_status)))
                return None
        else:  # a blank is no consent (issue 16)
            word, status = "", "unsubscribed"
            report.blank(number, layout.status_header)
        values[P_STATUS] = status
        report.consent_rows += 1
        report.count_status(status, layout.status_header, word)
    else:
        values[P_STATUS] = ""
        for position, status in layout.implied_status:
            if position < len(row) and row[position].strip():
                values[P_STATUS] = status
                if layout.answers is None:
                    report.count_status(status, layout.implied_headers[position], FILLED)
                break
        else:
            if layout.implied_by_column and layout.implied_status:
                # Mailchimp's export of the unsubscribed with an UNSUB_TIME left blank: the
                # file is still that export (a blank was imported as subscribed).
                position, status = layout.implied_status[0]
                values[P_STATUS] = status
                if layout.answers is None:
                    report.count_status(status, layout.implied_headers[position], EXPORT_STATUS)
            elif layout.answers is None:
                report.count_status("subscribed", "", "")
    if layout.answers is not None:
        cell = row[layout.answers].strip() if layout.answers < len(row) else ""
        report.consent_rows += 1
        checkbox = layout.option_texts <= 1
        answer = read_answer(cell, checkbox) if cell else "unsubscribed"
        if not cell:  # an unticked box, or no answer: never a yes
            report.blank(number, layout.answers_header)
        elif answer is None and not checkbox and is_option_text(cell):
            report.invalid.append((number, (
                f"column {layout.answers_header!r} says {cell!r}, one of {layout.option_texts:,} different option "
                "texts in the column: a multiple-choice answer, not a checkbox's label, so only yes or no is read "
                "there; write yes or no (a row is never imported as subscribed on an answer it cannot read)")))
            return None
        elif answer is None and (_unreadable_answer(cell) or header_key(layout.answers_header) not in DATE_HEADERS):
            # Only a "Subscribed" column may hold dates too; in any other a text with a
            # digit ("Maybe in 2025") is no answer either, not a yes.
            # Perhaps a "no" in words this tool does not know: never a reason to mail someone.
            report.invalid.append((number, (
                f"column {layout.answers_header!r} says {cell!r}, which is neither yes, no nor a date: "
                "write yes or no (a row is never imported as subscribed on an answer it cannot read)")))
            return None
        if answer is not None:
            # "no" unsubscribes (unless the row says something stronger); "yes" changes nothing.
            if answer == "unsubscribed" and STATUS_RANK.get(values[P_STATUS], -1) < STATUS_RANK[answer]:
                values[P_STATUS] = answer
            if layout.columns.get("subscribed_at") == layout.answers:
                values[P_SUBSCRIBED_AT] = ""  # an answer, not a date
    if values[P_TAGS] or tags:
        values[P_TAGS] = merge_tags(imported_tags(values[P_TAGS]), tags)
    given_time = values[P_SUBSCRIBED_AT]
    unparsed = ""
    if given_time:
        values[P_SUBSCRIBED_AT] = iso_time(given_time)
        if not values[P_SUBSCRIBED_AT]:
            unparsed = given_time  # read after the whole file, when its order of slashed dates is known
            # A form's Timestamp is used only when it parses (the column keeps it as written).
            values[P_SUBSCRIBED_AT] = "" if layout.strict_time else given_time
    values[P_ROW] = str(number)
    packed = PACK.join(values)
    if packed.count(PACK) != len(values) - 1:  # a separator inside a cell: take it out
        packed = PACK.join(value.replace(PACK, " ") for value in values)
    key = address_key(values[P_EMAIL])
    if unparsed:
        report.unparsed_dates.append((number, unparsed, key))
    earlier = records.get(key)
    if earlier is None:
        records[key] = packed
        return key
    first, later = earlier.split(PACK), packed.split(PACK)
    merged = _merge_duplicates(first, later)
    if len(merged[P_TAGS]) > CELL_LIMIT:
        report.invalid.append((number, (
            f"its tags and those of the earlier rows of {values[P_EMAIL]} would make a cell of {len(merged[P_TAGS]):,} "
            f"characters; a cell holds at most {CELL_LIMIT:,} characters")))
        return None
    report.duplicates += 1
    if not first[P_ROW].startswith(DUPLICATED):  # the address's first duplicate
        report.duplicate_addresses += 1
        merged[P_ROW] = DUPLICATED + first[P_ROW]
        if len(report.duplicated) < SHOWN_INVALID:
            report.duplicated[key] = Duplicate(first[P_EMAIL], int(first[P_ROW]))
    duplicate = report.duplicated.get(key)
    if duplicate is not None:
        _note_duplicate(duplicate, number, first, later, merged, layout.names)
    records[key] = PACK.join(merged)
    return key


def _unknown_status(layout: Layout, given: str) -> str:
    """Why a row whose status word the import cannot read is left out."""
    if layout.export is None:
        return f"unknown status {given!r} (one of {', '.join(STATUS_RANK)})"
    known = ", ".join(layout.words)
    return (f"column {layout.status_header!r} says {given!r}, which a {layout.export.name} export does not write "
            f"(it writes {known}); the row is left out rather than imported on a word the import cannot read")


def _unreadable_answer(cell: str) -> bool:
    """A "Subscribed" cell that is no answer read_answer knows and cannot be a date either.

    Every date has a digit; a word without one (`Nej`, `✗`, `unticked`) is an answer in
    words this tool does not read, which could be a no.
    """
    text = cell.strip()
    return bool(text) and not any(character.isdigit() for character in text)


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
# Go's time.Time.String(), as listmonk's export writes created_at:
# `2024-03-15 10:00:00.123456789 +0000 UTC`.
GO_TIME = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(\.\d{1,6})?\d* ([+-]\d\d)(\d\d)(?: [A-Z]+)?")


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
        elif go_time := GO_TIME.fullmatch(text):
            moment = datetime.fromisoformat(
                f"{go_time[1]}{go_time[2] or ''}{go_time[3]}:{go_time[4]}")
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _merge_duplicates(first: list[str], second: list[str]) -> list[str]:
    """Two rows of one file for one address: the earlier values stand, the later fill gaps.

    Of two statuses the stronger stands (complained > bounced > unsubscribed > subscribed),
    so a duplicate can never make an address mailable; tags are combined.
    """
    merged = [a or b for a, b in zip(first, second, strict=False)]
    merged[P_STATUS] = max(first[P_STATUS], second[P_STATUS], key=lambda s: STATUS_RANK.get(s, -1))
    merged[P_TAGS] = merge_tags(split_tags(first[P_TAGS]), split_tags(second[P_TAGS]))
    merged[P_ROW] = first[P_ROW]
    return merged


def _note_duplicate(
    duplicate: Duplicate, number: int, first: list[str], later: list[str], merged: list[str], names: tuple[str, ...],
) -> None:
    """Record in `duplicate` what row `number` (`later`) added to the record `first` (now `merged`)."""
    duplicate.count += 1
    if len(duplicate.rows) < SHOWN_INVALID:
        duplicate.rows.append(number)
    for position, name in enumerate(names):
        if position in (P_EMAIL, P_STATUS, P_TAGS, P_ROW):
            continue
        if not first[position] and later[position]:
            duplicate.filled[name] = number
    if merged[P_STATUS] != first[P_STATUS] and merged[P_STATUS] not in ("", "subscribed"):
        duplicate.status = (merged[P_STATUS], number)
    if merged[P_TAGS] != first[P_TAGS] and len(duplicate.tags_from) < SHOWN_INVALID:
        duplicate.tags_from.append(number)


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
    returning = _refuse_erased(settings, imported.records, resubscribe, report)
    if not imported.records:  # checked before the lock: the list is not even opened
        raise NothingImported(report)
    stamp = now_iso()

    def merge(listing: ListFile) -> tuple[tuple[str, ...], Iterator[Row]]:
        # An imported column lands in the list's column of the same key (`company` in `Company`).
        report.new_list = not listing.exists
        existing = {header_key(name) or name: name for name in listing.extra_columns}
        targets = tuple(existing.get(name, name) for name in imported.extra_columns)
        report.new_columns = tuple(name for name in targets if name not in listing.extra_columns)
        extras = listing.extra_columns + report.new_columns
        if len(COLUMNS) + len(extras) > LIMITS.columns:
            raise SubscriberError(
                f"{where(source)}: importing it would give {where(target)} {len(COLUMNS) + len(extras):,} columns "
                f"({len(report.new_columns):,} new); a list holds at most {LIMITS.columns:,}: remove the columns "
                "nobody needs from the file or the list, then import again")
        return extras, _merged_rows(listing, extras, targets, imported, resubscribe, stamp, report, progress)

    # A list no imported row changes is left as it was (not rewritten with the file's
    # extra columns as new, empty ones).
    rewrite_list(target, merge, dry_run=dry_run, create=True, changed=lambda: bool(report.added or report.updated))
    if returning and not dry_run:
        forget_erasure(settings, returning)  # they asked to subscribe again: a later import may update them
    return report


def _refuse_erased(settings: Settings, records: dict[str, str], resubscribe: bool, report: ImportReport) -> list[str]:
    """Leave out, named, the rows of addresses erased at their owner's request; with
    `resubscribe` keep them (the addresses returned) and say so."""
    erased = erased_addresses(settings)
    if erased.hasher is None:
        return []  # nothing was ever erased: no hashing
    returning: list[str] = []
    for key, packed in list(records.items()):
        values = packed.split(PACK)
        when = erased.erased_on(values[P_EMAIL])
        if when is None:
            continue
        row = int(values[P_ROW].lstrip(DUPLICATED))
        if resubscribe:
            returning.append(values[P_EMAIL])
            report.erased.append((row, f"{values[P_EMAIL].strip()} was erased on {when}; imported again "
                                       "(--resubscribe)"))
        else:
            del records[key]
            report.erased.append((row, erased.refusal(values[P_EMAIL])))
    report.erased.sort()
    return returning


class NothingImported(SubscriberError):
    """No row of the imported file is valid, so the list is left as it was; `report` says why."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        why = (f"none of its {plural(report.rows, 'row')} is valid (see above)" if report.rows
               else "it has no rows below the header")
        super().__init__(f"{where(report.source)}: nothing imported: {why}; {where(report.target)} is unchanged")


def _merged_rows(
    listing: ListFile, extras: tuple[str, ...], targets: tuple[str, ...], imported: ImportedRows, resubscribe: bool,
    stamp: str, report: ImportReport, progress: Progress,
) -> Iterator[Row]:
    """The list's rows with the imported ones merged in, then the new addresses appended.

    `targets` names the list column each imported extra column goes to.
    """
    records = imported.records
    # Where each imported extra column lands in an output row.
    extra_positions = [(field_, len(COLUMNS) + extras.index(name))
                       for field_, name in zip(imported.extra_fields, targets, strict=True)]
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
        # The opt-in evidence, or nothing: never the time of the import, which is no evidence.
        row[SUBSCRIBED_AT] = values[P_SUBSCRIBED_AT]
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
