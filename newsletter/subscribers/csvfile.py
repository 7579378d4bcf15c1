"""Opening a CSV that a person or a tool wrote: the one way lists and imports are read.

- UTF-8, with or without a BOM. Anything else is refused, with the row where it stops
  being UTF-8 and the advice to save the file as "CSV UTF-8".
- The delimiter: the one an Excel `sep=;` first line names (Excel hides that line, so
  the header stays row 1), or else the one the header line uses most (comma, semicolon
  or tab), so a file a spreadsheet saved in a semicolon locale reads too.
- Rows are numbered as a spreadsheet shows them: the header is row 1.
- A spreadsheet's own file (.xlsx, .xls, .ods, .numbers) given instead of its CSV is
  told by its first bytes, whatever its name, and refused with how to save it as CSV.
- No limit on the size of a cell (the csv module's default is 128 KB): whatever a list
  was given, every command can read it back. Imports refuse cells over their own,
  stated limit (`importing.CELL_LIMIT`), naming the row, so lists stay sane.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import sys
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from newsletter.errors import SubscriberError, where

Row = list[str]

DELIMITERS = (",", ";", "\t")
# The csv module's limit on a cell, process-wide: as large as a cell can be written.
FIELD_LIMIT = sys.maxsize


@dataclass
class CsvReading:
    """An open CSV: its header row, and its other rows streamed once as (row number, cells)."""

    path: Path
    header: Row
    delimiter: str
    rows: Iterator[tuple[int, Row]]


def cannot_read(path: Path, exc: OSError) -> SubscriberError:
    """An OSError of reading `path` as a one-line error."""
    return SubscriberError(f"{where(path)}: cannot read it ({exc.strerror or exc})")


def no_such_file(path: Path) -> SubscriberError:
    return SubscriberError(f"{where(path)}: no such file")


@contextmanager
def open_csv(
    path: Path, missing: Callable[[Path], Exception] = no_such_file, unreadable: str = "unreadable row",
) -> Iterator[CsvReading]:
    """Open `path` for streaming; a missing file raises `missing(path)`.

    Bytes that are not UTF-8, or a row the csv module cannot parse, met while the rows
    are read inside the `with` block, become one-line errors naming the row
    (`unreadable` begins the second kind). The rows are those the csv module reads
    (see `split_rows`), numbered by `enumerate`.
    """
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        raise missing(path) from None
    except IsADirectoryError as exc:
        if path.suffix.lower() == ".numbers":  # Numbers saves a document as a folder too
            raise not_csv(path, "Numbers") from None
        raise cannot_read(path, exc) from None
    except OSError as exc:
        raise cannot_read(path, exc) from None
    try:
        kind = spreadsheet_kind(path, raw.peek(len(OLE2_SIGNATURE))[:len(OLE2_SIGNATURE)])
    except OSError as exc:
        raw.close()
        raise cannot_read(path, exc) from None
    if kind is not None:
        raw.close()
        raise not_csv(path, kind)
    handle = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    csv.field_size_limit(FIELD_LIMIT)
    with handle:
        delimiter, sep_lines = ",", 0
        try:
            first_line = handle.readline()
            if "\x00" in first_line:  # NUL, the other half of every ASCII letter in UTF-16
                raise SubscriberError(
                    f"{where(path, 1)}: this is UTF-16 text, not UTF-8; save the file as \"CSV UTF-8\" and try again"
                )
            if first_line.lower().startswith("sep=") and len(first_line.rstrip("\r\n")) == 5:
                delimiter, sep_lines, first_line = first_line[4], 1, handle.readline()
            else:
                delimiter = sniff_delimiter(first_line)
            reader = csv.reader(itertools.chain([first_line], handle), delimiter=delimiter)
            header = next(reader, [])
        except UnicodeDecodeError:
            raise not_utf8(path, delimiter, sep_lines) from None
        except csv.Error as exc:
            raise SubscriberError(f"{where(path, 1)}: unreadable header ({exc})") from None
        try:
            # The header's reader has read its line(s) and no further: the rows follow in `handle`.
            yield CsvReading(path, header, delimiter, enumerate(split_rows(handle, delimiter), start=2))
        except UnicodeDecodeError:
            raise not_utf8(path, delimiter, sep_lines) from None
        except csv.Error as exc:
            raise SubscriberError(f"{where(path, _row_of_error(path, delimiter, sep_lines))}: {unreadable} ({exc})") from None


def split_rows(lines: Iterator[str], delimiter: str) -> Iterator[Row]:
    """The rows the csv module reads from `lines`, the quick way where that is the same.

    A line without a quote (nearly every line of a list) is one row: its cells are the
    text between delimiters, without the line ending (the lines come from a file opened
    with `newline=""`, so a line holds one ending, at its end). That is what csv.reader
    gives for it, in a `str.split` that costs half as much at a million rows. A line with
    a quote goes to one csv.reader, which reads on from `lines` as far as its row goes
    (a quoted cell may hold line breaks), so quoting is the csv module's alone.
    """
    pending: list[str] = []

    def quoted_lines() -> Iterator[str]:
        while True:
            if pending:
                yield pending.pop()
                continue
            line = next(lines, None)
            if line is None:
                return
            yield line

    quoted = csv.reader(quoted_lines(), delimiter=delimiter)
    for line in lines:
        if '"' in line:
            pending.append(line)
            yield next(quoted)
            continue
        content = line.rstrip("\r\n")
        yield content.split(delimiter) if content else []


# The first bytes of a spreadsheet's own files: Office Open XML (.xlsx), OpenDocument
# (.ods) and Numbers documents are ZIP archives; Excel 97-2003 (.xls) is an OLE2 file.
ZIP_SIGNATURE = b"PK\x03\x04"
OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# How each application saves a copy as CSV in UTF-8.
SAVE_AS_CSV = {
    "Excel": 'in Excel, File › Save As › "CSV UTF-8 (Comma delimited)"',
    "OpenDocument": 'in LibreOffice, File › Save As › "Text CSV", character set "Unicode (UTF-8)"',
    "Numbers": 'in Numbers, File › Export To › CSV, text encoding "Unicode (UTF-8)"',
    "ZIP": "from the application that made it",
}


def spreadsheet_kind(path: Path, head: bytes) -> str | None:
    """Which application's file `path` is, from its first bytes `head`; None for text.

    The content decides, not the name (a workbook renamed `people.csv` is still one);
    inside a ZIP the member names tell the three apart.
    """
    if head.startswith(OLE2_SIGNATURE):
        return "Excel"
    if not head.startswith(ZIP_SIGNATURE):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        names = []
    if any(name.startswith("xl/") for name in names):
        return "Excel"
    if "mimetype" in names or "content.xml" in names:
        return "OpenDocument"
    if any(name.startswith("Index/") or name == "Index.zip" for name in names):
        return "Numbers"
    return {".xlsx": "Excel", ".xlsm": "Excel", ".ods": "OpenDocument", ".numbers": "Numbers"}.get(
        path.suffix.lower(), "ZIP")


def not_csv(path: Path, kind: str) -> SubscriberError:
    """The error for a spreadsheet's own file given where a CSV belongs."""
    described = {"Excel": "an Excel workbook", "OpenDocument": "an OpenDocument spreadsheet (LibreOffice)",
                 "Numbers": "a Numbers document", "ZIP": "a ZIP archive"}[kind]
    return SubscriberError(
        f"{where(path)}: this is {described}, not a CSV file: save it as \"CSV UTF-8\" "
        f"({SAVE_AS_CSV[kind]}) and use that file"
    )


def _row_of_error(path: Path, delimiter: str, sep_lines: int) -> int | None:
    """The row at which the csv module stops reading `path` (rows may span lines): read it again."""
    number = 0
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
            for _ in range(sep_lines):
                handle.readline()
            for _row in csv.reader(handle, delimiter=delimiter):
                number += 1
    except csv.Error:
        return number + 1
    except OSError:
        pass
    return None


def sniff_delimiter(header_line: str) -> str:
    """The delimiter the header line uses most (outside quotes); a comma when none."""
    unquoted = re.sub(r'"[^"]*"', "", header_line)
    counts = {d: unquoted.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8, as surrogateescape keeps them


def undecodable_row(path: Path, delimiter: str = ",", skip_lines: int = 0) -> int | None:
    """The row (the header is 1) of the first bytes of `path` that are not UTF-8; None if none.

    Decoding errors surface per chunk of 8 KB, not per row: this second reading finds the row.
    `skip_lines` lines before the header are not rows (Excel's `sep=;`).
    """
    try:
        with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
            for _ in range(skip_lines):
                handle.readline()
            for number, row in enumerate(csv.reader(handle, delimiter=delimiter), start=1):
                if any(_UNDECODED.search(cell) for cell in row):
                    return number
    except (OSError, csv.Error):
        pass
    return None


def not_utf8(path: Path, delimiter: str = ",", skip_lines: int = 0) -> SubscriberError:
    """The error for a file that is not UTF-8, naming the row where it stops being so."""
    return SubscriberError(
        f"{where(path, undecodable_row(path, delimiter, skip_lines))}: not UTF-8 text; "
        "save the file as \"CSV UTF-8\" and try again"
    )
