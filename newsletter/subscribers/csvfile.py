"""Opening a CSV that a person or a tool wrote: the one way lists and imports are read.

- A list: UTF-8, with or without a BOM (the tool writes it). Anything else is refused,
  with the row where it stops being UTF-8 and the advice to save the file as "CSV UTF-8".
  An import (`any_encoding`): as `textencoding` tells it (UTF-16 after a BOM, UTF-8,
  else Windows-1252, Excel's "CSV (Comma delimited)"), named in `CsvReading.encoding`.
- The delimiter: the one an Excel `sep=;` first line names (Excel hides that line, so
  the header stays row 1), or else the one the header line uses most (comma, semicolon
  or tab), so a file a spreadsheet saved in a semicolon locale reads too.
- Rows are numbered as a spreadsheet shows them: the header is row 1.
- A spreadsheet's own file (.xlsx, .xls, .ods, .numbers) given instead of its CSV is
  told by its first bytes, whatever its name, and refused with how to save it as CSV.
- No limit on the size of a cell (the csv module's default is 128 KB) below that of a
  row: whatever a list was given, every command can read it back. Imports refuse cells
  over their own, stated limit (`importing.CELL_LIMIT`), naming the row, so lists stay sane.
- Bounded work on any input (`Limits`): so many columns, a row of fewer than so many
  characters (read with `readline(limit)`, never whole), regular files only.
- A quote left open never merges two people (`read_rows`).
"""

from __future__ import annotations

import csv
import errno
import io
import os
import re
import stat
import sys
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from newsletter.errors import SubscriberError, where
from newsletter.files.textencoding import UTF8_BOM, TextEncoding, UndecodableText, text_encoding

Row = list[str]

DELIMITERS = (",", ";", "\t")
# The csv module's limit on a cell, process-wide: as large as a cell can be written
# (a row is bounded by `Limits.row_characters`).
FIELD_LIMIT = sys.maxsize
ENCODING_CHUNK = 1 << 20  # bytes read at a time to tell an imported file's encoding


@dataclass(frozen=True)
class Limits:
    """How much of any file is read, so that no input (`/dev/zero`, a 1 GB line) costs unbounded work.

    A file of 100,000 columns once grew a list of 5,000 rows from 529 KB to 501 MB, and a
    1 GB line took 4.2 GB of memory (7.4 GB with a quote left open).
    """

    columns: int = 1_000  # in the header
    # Characters in one row (its line, or its lines when a quoted cell holds line breaks):
    # 100 cells of the 10,000 characters an import allows (importing.CELL_LIMIT) at most.
    row_characters: int = 1_000_000


LIMITS = Limits()


@dataclass
class CsvReading:
    """An open CSV: its header row, and its other rows streamed once as (row number, cells)."""

    path: Path
    header: Row
    delimiter: str
    rows: Iterator[tuple[int, Row]]
    encoding: str = "UTF-8"  # as a person reads it: "Windows-1252", "UTF-16"


def cannot_read(path: Path, exc: OSError) -> SubscriberError:
    """An OSError of reading `path` as a one-line error."""
    return SubscriberError(f"{where(path)}: cannot read it ({exc.strerror or exc})")


def no_such_file(path: Path) -> SubscriberError:
    return SubscriberError(f"{where(path)}: no such file")


class RowError(Exception):
    """A row that cannot be read as written: its number (as a spreadsheet shows it) and why."""

    def __init__(self, number: int, message: str) -> None:
        super().__init__(message)
        self.number, self.message = number, message


@contextmanager
def open_csv(
    path: Path, missing: Callable[[Path], Exception] = no_such_file, unreadable: str = "unreadable row",
    any_encoding: bool = False, limits: Limits = LIMITS,
) -> Iterator[CsvReading]:
    """Open `path` for streaming; a missing file raises `missing(path)`.

    Bytes that are not UTF-8, or a row the csv module cannot parse, met while the rows
    are read inside the `with` block, become one-line errors naming the row
    (`unreadable` begins the second kind). The rows are those `read_rows` reads.
    With `any_encoding` (an import) the file is first read through once to tell its
    encoding (`textencoding`: UTF-16 after a BOM, UTF-8, else Windows-1252); a list is
    UTF-8 only, as the tool writes it.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise missing(path) from None
    except OSError as exc:
        raise cannot_read(path, exc) from None
    if stat.S_ISDIR(mode):
        if path.suffix.lower() == ".numbers":  # Numbers saves a document as a folder too
            raise not_csv(path, "Numbers")
        raise cannot_read(path, IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR)))
    if not stat.S_ISREG(mode):
        # A FIFO or a device (`/dev/zero`) may never end, and a FIFO cannot be read twice.
        what = "a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file"
        raise SubscriberError(f"{where(path)}: this is {what}, not a CSV file: save the CSV as a file and use that")
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        raise missing(path) from None
    except OSError as exc:
        raise cannot_read(path, exc) from None
    with raw:
        try:
            kind = spreadsheet_kind(path, raw.peek(len(OLE2_SIGNATURE))[:len(OLE2_SIGNATURE)])
            if kind is not None:
                raise not_csv(path, kind)
            encoding = _file_encoding(path, raw) if any_encoding else UTF8_BOM
        except OSError as exc:
            raise cannot_read(path, exc) from None
        handle = io.TextIOWrapper(raw, encoding=encoding.codec, newline="")
        csv.field_size_limit(FIELD_LIMIT)
        delimiter, sep_lines = ",", 0
        try:
            first_line = handle.readline(limits.row_characters)
            if "\x00" in first_line:
                raise nul_bytes(path, first_line)
            if is_sep_line(first_line):
                delimiter, sep_lines, first_line = first_line[4], 1, handle.readline(limits.row_characters)
            else:
                delimiter = sniff_delimiter(first_line)
            rows = read_rows(handle, delimiter, first_line, limits.row_characters)
            _, header = next(rows, (1, []))
            if named_width(header) > limits.columns:
                raise SubscriberError(
                    f"{where(path, 1)}: the header has {named_width(header):,} columns; a file may have at most "
                    f"{limits.columns:,}: remove the columns nobody needs, then try again")
            # The header's reading has read its line(s) and no further: the rows follow.
            yield CsvReading(path, header, delimiter, rows, encoding.name)
        except UnicodeDecodeError:
            raise not_utf8(path, delimiter, sep_lines) from None
        except RowError as exc:
            raise SubscriberError(f"{where(path, exc.number)}: {exc.message}") from None
        except csv.Error as exc:
            raise SubscriberError(f"{where(path, _row_of_error(path, delimiter, sep_lines))}: {unreadable} ({exc})") from None


def named_width(header: Row) -> int:
    """How many columns the header names: up to its last named one (Excel pads with empty cells)."""
    return next((position + 1 for position in range(len(header) - 1, -1, -1) if header[position].strip()), 0)


def _file_encoding(path: Path, raw: io.BufferedReader) -> TextEncoding:
    """The encoding of the whole file, read through once in chunks; the file is left at its start."""

    def chunks() -> Iterator[bytes]:
        while chunk := raw.read(ENCODING_CHUNK):
            yield chunk

    try:
        encoding = text_encoding(chunks())
    except UndecodableText as exc:
        codec = "utf-8-sig" if exc.encoding is UTF8_BOM else exc.encoding.codec
        with path.open(encoding=codec, errors="surrogateescape", newline="") as handle:
            first_line = handle.readline(8)
        row = undecodable_row(path, codec=codec, skip_lines=int(is_sep_line(first_line)))
        reason = ("starts as UTF-8 but is not" if exc.encoding is UTF8_BOM
                  else f"neither UTF-8 nor Windows-1252 text (byte 0x{exc.byte:02X})")
        raise SubscriberError(f"{where(path, row)}: {reason}; save the file as \"CSV UTF-8\" and try again") from None
    raw.seek(0)
    return encoding


def is_sep_line(line: str) -> bool:
    """Whether `line` is Excel's `sep=;` line, which names the delimiter and is not a row."""
    return line.lower().startswith("sep=") and len(line.rstrip("\r\n")) == 5


def nul_bytes(path: Path, first_line: str) -> SubscriberError:
    """The error for a file with NUL bytes: UTF-16 without a BOM when every other byte is one, else binary."""
    if first_line[1::2].count("\x00") * 2 >= len(first_line) - 1 or first_line[::2].count("\x00") * 2 >= len(first_line) - 1:
        if first_line.strip("\x00"):
            return SubscriberError(
                f"{where(path, 1)}: this is UTF-16 text, not UTF-8; save the file as \"CSV UTF-8\" and try again")
    return SubscriberError(f"{where(path)}: this is not text (it holds NUL bytes), not a CSV file: "
                           "save it as \"CSV UTF-8\" and use that file")


# What starts another person's row: an address in a cell of its own (trimmed of spaces
# and quotes: text@text.text without spaces, quotes, commas, semicolons or angle
# brackets). A line of two cells or more that a quoted cell runs into and that holds one
# is another row swallowed by a quote left open; a note's line ("write to me at
# ann@example.org") or a lone address on a line of its own is not.
_ADDRESS_LIKE = re.compile(r"[^\s@\"',;<>]+@[^\s@\"',;<>]+\.[^\s@\"',;<>]+")


def _starts_a_row(line: str, delimiter: str) -> str | None:
    """The address-like cell of `line` when it has more than one cell; None otherwise."""
    if delimiter not in line or "@" not in line:
        return None
    return next((cell.strip() for cell in line.split(delimiter)
                 if _ADDRESS_LIKE.fullmatch(cell.strip().strip('"'))), None)


READ_CHUNK = 1 << 14  # characters read at a time by `read_rows` (16 K: as quick as iterating the file)


class _LineTooLong(Exception):
    """A line of `limit` characters or more: `read_rows` names its row."""


def _line_batches(handle: TextIO, limit: int, chunk_size: int) -> Iterator[tuple[list[str], str]]:
    """The lines of `handle`, a chunk's worth at a time, as iterating it gives them: (lines, ending).

    Iterating a file holds a whole line, however long (a 1 GB line took 4.2 GB). This
    reads chunks; a line that reaches `limit` characters is _LineTooLong (raised once
    the lines before it are given), never more than that held. A chunk without a `\r`
    alone (every list the tool writes; Excel's `\r\n`) is split at `\n`, quicker than
    iterating the file, and its lines come without their `\n` (given as `ending`); one
    with a `\r` alone is split as a StringIO with `newline=""` does (`\r\n`, `\r` and
    `\n` each end a line), its lines keeping their endings (`ending` is ""). Either way
    a line and its ending are the file's own text, as csv.reader needs them.
    """
    held = ""
    while chunk := handle.read(chunk_size):
        if held:
            chunk = held + chunk
        if "\r" in chunk and chunk.count("\r") != chunk.count("\r\n"):  # a \r alone ends a line too
            lines, ending = io.StringIO(chunk, newline="").readlines(), ""
            held = "" if lines[-1].endswith("\n") else lines.pop()  # cut by the chunk (a \r may precede a \n)
        else:
            lines, ending = chunk.split("\n"), "\n"
            held = lines.pop()
        if len(chunk) >= limit:  # rare: a line may have reached the limit
            for index, line in enumerate([*lines, held]):
                if len(line) >= limit:
                    yield lines[:index], ending
                    raise _LineTooLong
        yield lines, ending
    if held:
        yield [held], ""


def read_rows(
    handle: TextIO, delimiter: str, first_line: str, limit: int, chunk_size: int = READ_CHUNK,
) -> Iterator[tuple[int, Row]]:
    """The rows the csv module reads from `first_line` and the lines of `handle`, numbered from 1.

    A line without a quote (nearly every line of a list) is one row: its cells are the
    text between delimiters, without the line ending (`_line_batches` gives a line with
    one ending at its end, or none). That is what csv.reader gives for it, in a `str.split` that
    costs half as much at a million rows. A line with a quote goes to one csv.reader,
    which reads on as far as its row goes (a quoted cell may hold line breaks), so
    quoting is the csv module's alone.

    Two guards, each a RowError naming the row:
    - A row takes fewer than `limit` characters (see `_lines`), so a 1 GB line, or a
      quote left open in a 1 GB file, is never held in memory.
    - A quoted cell that runs on into a line of several cells, one an address
      (`u2@example.org,C,D`), is a quote left open (or a stray one) that swallowed
      another person's row: never read as one cell. A note with a line break reads.
    """
    number = 0
    opening, taken = "", 0  # the first line of the quoted row being read, and its characters so far
    pending: list[str] = []
    batches = _line_batches(handle, limit, chunk_size)
    lines: Iterator[str] = iter([first_line] if first_line else [])  # the batch being read
    ending = ""  # what its lines lack of their line ending ("\n" or nothing)

    def quoted_lines() -> Iterator[str]:
        nonlocal taken, lines, ending
        while True:
            if pending:
                yield pending.pop()
                continue
            line = next(lines, None)
            if line is None:
                batch = next(batches, None)
                if batch is None:
                    return
                lines, ending = iter(batch[0]), batch[1]
                continue
            line += ending  # the csv module needs the line breaks inside a quoted cell
            taken += len(line)
            if taken >= limit:
                raise RowError(number, too_long(limit))
            address = _starts_a_row(line, delimiter)
            if address is not None:
                raise RowError(number, _open_quote(opening, delimiter, address))
            yield line

    quoted = csv.reader(quoted_lines(), delimiter=delimiter)
    try:
        while True:
            batch_lines = lines
            for line in batch_lines:
                number += 1
                if '"' in line:
                    line += ending
                    pending.append(line)
                    opening, taken = line, len(line)
                    try:
                        row = next(quoted)
                    except _LineTooLong:
                        raise RowError(number, too_long(limit)) from None
                    yield number, row
                    if lines is not batch_lines:
                        break  # the quoted row read on into the next batch: go on from there
                    continue
                content = line.rstrip("\r\n")
                yield number, content.split(delimiter) if content else []
            else:
                batch = next(batches, None)
                if batch is None:
                    return
                lines, ending = iter(batch[0]), batch[1]
    except _LineTooLong:
        raise RowError(number + 1, too_long(limit)) from None


def too_long(limit: int) -> str:
    return (f"the row holds {limit:,} characters or more; a row holds fewer: is this a CSV file? "
            "(a quote left open makes a cell run on to the end of the file)")


def _open_quote(first_line: str, delimiter: str, address: str) -> str:
    """Why a row whose quoted cell ran into another person's row is refused, and what to do."""
    cells = next(csv.reader([first_line], delimiter=delimiter), [])
    return (f"the quote that opens cell {len(cells)} is not closed on its line, so the cell would run on into "
            f"the next line, which starts another row ({address}): close the quote or remove it, "
            "then try again (nothing was read from the file)")


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


def _rows_again(path: Path, delimiter: str, skip_lines: int, codec: str = "utf-8-sig") -> Iterator[tuple[int, Row]]:
    """The rows of `path` read again as `read_rows` reads them (bounded), bytes not `codec` kept as surrogates.

    To find the row where a first reading stopped. `skip_lines` lines before the header
    are not rows (Excel's `sep=;`).
    """
    limit = LIMITS.row_characters
    with path.open(encoding=codec, errors="surrogateescape", newline="") as handle:
        for _ in range(skip_lines):
            handle.readline(limit)
        yield from read_rows(handle, delimiter, handle.readline(limit), limit)


def _row_of_error(path: Path, delimiter: str, sep_lines: int) -> int | None:
    """The row at which the csv module stops reading `path` (rows may span lines): read it again."""
    read = 0
    try:
        for number, _row in _rows_again(path, delimiter, sep_lines):
            read = number
    except csv.Error:
        return read + 1
    except (OSError, RowError):
        pass
    return None


def sniff_delimiter(header_line: str) -> str:
    """The delimiter the header line uses most (outside quotes); a comma when none."""
    unquoted = re.sub(r'"[^"]*"', "", header_line)
    counts = {d: unquoted.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8, as surrogateescape keeps them


def undecodable_row(path: Path, delimiter: str = ",", skip_lines: int = 0, codec: str = "utf-8-sig") -> int | None:
    """The row (the header is 1) of the first bytes of `path` that are not `codec` (UTF-8); None if none.

    Decoding errors surface per chunk of 8 KB, not per row: this second reading finds the row.
    `skip_lines` lines before the header are not rows (Excel's `sep=;`).
    """
    try:
        for number, row in _rows_again(path, delimiter, skip_lines, codec):
            if any(_UNDECODED.search(cell) for cell in row):
                return number
    except RowError as exc:
        return exc.number  # too long to hold: decoding runs at most a chunk ahead, so the byte is in it
    except (OSError, csv.Error):
        pass
    return None


def not_utf8(path: Path, delimiter: str = ",", skip_lines: int = 0) -> SubscriberError:
    """The error for a file that is not UTF-8, naming the row where it stops being so."""
    return SubscriberError(
        f"{where(path, undecodable_row(path, delimiter, skip_lines))}: not UTF-8 text; "
        "save the file as \"CSV UTF-8\" and try again"
    )
