"""A CSV is read as the spreadsheet meant it, or refused (issue 16, §2): quotes, wide rows, encodings, limits."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from newsletter.subscribers.csvfile import read_rows
from tests.helpers import run
from tests.subscriber_helpers import MAIN_LIST, import_csv, rows, write

HEADER = "email,first_name,last_name,status,tags,subscribed_at,updated_at\n"


def one_line_error(result_stderr: str) -> str:
    """The error line, checked to be the only one."""
    lines = result_stderr.strip().splitlines()
    assert len(lines) == 1, result_stderr
    return lines[0]


# -- a quote left open (or a stray one) never merges two people --------------------------

def test_an_open_quote_that_swallows_the_next_persons_row_is_refused_naming_the_row(publication: Path) -> None:
    """It imported as one row: u1's first name held u2's address, and u2 was never imported."""
    before = MAIN_LIST.read_bytes()
    result = import_csv("email,first_name,last_name,status\n"
                        "u0@example.org,Zed,Z,subscribed\n"
                        'u1@example.org,"Ann,B,subscribed\n'
                        "u2@example.org,C,D,subscribed\n")
    assert result.exit_code == 1
    assert one_line_error(result.stderr) == (
        "error: people.csv:3: the quote that opens cell 2 is not closed on its line, so the cell would run on "
        "into the next line, which starts another row (u2@example.org): close the quote or remove it, then try "
        "again (nothing was read from the file)")
    assert MAIN_LIST.read_bytes() == before


def test_a_stray_quote_in_a_semicolon_file_is_refused_too(publication: Path) -> None:
    result = import_csv('email;first_name\nu1@example.org;"Ann\nu2@example.org;Bo\n')
    assert result.exit_code == 1
    assert one_line_error(result.stderr).startswith("error: people.csv:2: the quote that opens cell 2 ")


def test_a_quoted_note_with_a_line_break_still_reads(publication: Path) -> None:
    result = import_csv('email,first_name,note\n'
                        'a@example.org,Ann,"Met at the fair,\nsays hi, write to\nbo@example.org"\n'
                        "b@example.org,Bo,\n")
    assert result.exit_code == 0, result.output
    assert rows()["a@example.org"]["note"] == "Met at the fair,\nsays hi, write to\nbo@example.org"
    assert "b@example.org" in rows()


def test_a_list_with_an_open_quote_is_refused_by_a_send_naming_the_row(publication: Path) -> None:
    write(MAIN_LIST, HEADER + 'a@example.org,"Ann,,subscribed,,,\nb@example.org,Bo,,subscribed,,,\n')
    for result in (run("send", "issue-1", "--dry-run"), run("subscribers", "list")):
        assert result.exit_code == 1, result.output
        assert one_line_error(result.stderr).startswith(
            "error: subscribers/main.csv:2: the quote that opens cell 2 is not closed on its line")


# -- rows with more cells than the header ------------------------------------------------

def test_a_row_with_more_cells_than_the_header_is_left_out_named(publication: Path) -> None:
    """`Smith, Ann` unquoted moves the status one cell right: read as cut, 'Ann' was her status."""
    result = import_csv("email,name,status\n"
                        "a@example.org,Smith, Ann,unsubscribed\n"
                        "b@example.org,Bo,subscribed,,\n")
    assert result.exit_code == 0, result.output
    assert ("people.csv:2: 4 cells, but the header names 3 columns: a comma inside a cell "
            "that is not in quotes? put that cell in quotes, or name the extra column in row 1") in result.output
    assert "people.csv → subscribers/main.csv: 2 rows read" in result.output
    assert "a@example.org" not in rows()
    assert rows()["b@example.org"]["status"] == "subscribed"  # empty cells past the header are padding


# -- encodings -------------------------------------------------------------------------

def test_excel_csv_on_windows_is_read_as_windows_1252_and_the_report_says_so(publication: Path) -> None:
    result = import_csv("email,first_name\na@example.org,Ana\nb@example.org,Bérénice\n", encoding="cp1252")
    assert result.exit_code == 0, result.output
    assert rows()["b@example.org"]["first_name"] == "Bérénice"
    assert "people.csv: read as Windows-1252 text, not UTF-8 (Excel's \"CSV (Comma delimited)\" on Windows)" \
        in result.output


def test_bytes_neither_utf8_nor_windows_1252_name_the_row(publication: Path) -> None:
    good = "".join(f"person{i}@example.org,Name{i}\n" for i in range(2, 1000))
    write(Path("people.csv"), "sep=,\nemail,first_name\n" + good)
    with Path("people.csv").open("ab") as handle:
        handle.write(b"b@example.org,B\x81r\n")
    result = run("subscribers", "import", "people.csv")
    assert result.exit_code == 1
    assert one_line_error(result.stderr) == (
        'error: people.csv:1000: neither UTF-8 nor Windows-1252 text (byte 0x81); '
        'save the file as "CSV UTF-8" and try again')


def test_excel_unicode_text_is_read_as_utf16(publication: Path) -> None:
    """Excel's "Unicode Text": UTF-16 with a BOM, tab-separated."""
    result = import_csv("Email\tFirst Name\nann@example.org\tÅsa\n", encoding="utf-16")
    assert result.exit_code == 0, result.output
    assert rows()["ann@example.org"]["first_name"] == "Åsa"
    assert "people.csv: read as UTF-16 text, not UTF-8" in result.output


def test_a_list_stays_utf8_only(publication: Path) -> None:
    write(MAIN_LIST, HEADER + "b@example.org,Bérénice,,subscribed,,,\n", encoding="cp1252")
    result = run("subscribers", "stats")
    assert result.exit_code == 1
    assert one_line_error(result.stderr).startswith("error: subscribers/main.csv:2: not UTF-8 text")


# -- bounded work on any input -----------------------------------------------------------

def test_a_file_of_more_than_1000_columns_is_refused_naming_the_count(publication: Path) -> None:
    before = MAIN_LIST.read_bytes()
    header = "email," + ",".join(f"c{i}" for i in range(1_000))
    result = import_csv(header + "\na@example.org" + "," * 1_000 + "\n")
    assert result.exit_code == 1
    assert one_line_error(result.stderr) == (
        "error: people.csv:1: the header has 1,001 columns; a file may have at most 1,000: "
        "remove the columns nobody needs, then try again")
    assert MAIN_LIST.read_bytes() == before


def test_a_list_wider_than_1000_columns_is_refused_by_a_send_naming_the_count(publication: Path) -> None:
    """A list an older version widened (100,000 columns made a dry run of 5,000 rows take 82 s)."""
    write(MAIN_LIST, HEADER.rstrip("\n") + "".join(f",old{i}" for i in range(994)) + "\n")
    result = run("send", "issue-1", "--dry-run")
    assert result.exit_code == 1
    assert one_line_error(result.stderr).startswith(
        "error: subscribers/main.csv:1: the header has 1,001 columns; a file may have at most 1,000")


def test_empty_header_cells_past_the_last_named_column_do_not_count(publication: Path) -> None:
    """Excel pads a header with empty cells when a cell far to the right was once filled in."""
    result = import_csv("email,first_name" + "," * 2_000 + "\na@example.org,Ann\n")
    assert result.exit_code == 0, result.output
    assert rows()["a@example.org"]["first_name"] == "Ann"


def test_a_giant_line_is_an_error_naming_its_row(publication: Path) -> None:
    result = import_csv("email,note\na@example.org,short\nb@example.org," + "x" * 1_000_000 + "\n")
    assert result.exit_code == 1
    assert one_line_error(result.stderr).startswith(
        "error: people.csv:3: the row holds 1,000,000 characters or more; a row holds fewer")


def test_a_quote_left_open_to_the_end_of_a_big_file_is_an_error_naming_its_row(publication: Path) -> None:
    notes = "".join(f"line {i} of a note that never ends\n" for i in range(40_000))  # 1.3 MB
    result = import_csv('email,note\na@example.org,"' + notes)
    assert result.exit_code == 1
    assert one_line_error(result.stderr).startswith("error: people.csv:2: the row holds 1,000,000 characters or more")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_dev_zero_is_one_line_error(publication: Path) -> None:
    result = run("subscribers", "import", "/dev/zero")
    assert result.exit_code == 1
    assert one_line_error(result.stderr) == (
        "error: /dev/zero: this is a device, not a CSV file: save the CSV as a file and use that")


def test_a_fifo_is_one_line_error_without_waiting_for_a_writer(publication: Path) -> None:
    os.mkfifo("people.csv")
    result = run("subscribers", "import", "people.csv")
    assert result.exit_code == 1
    assert one_line_error(result.stderr) == (
        "error: people.csv: this is a FIFO, not a CSV file: save the CSV as a file and use that")


@pytest.mark.parametrize(("content", "message"), [
    (bytes(range(256)) * 8, "people.csv:3: neither UTF-8 nor Windows-1252 text (byte 0x81)"),
    (b"\x00" * 100_000, "people.csv: this is not text (it holds NUL bytes), not a CSV file"),
])
def test_a_binary_file_is_one_line_error(publication: Path, content: bytes, message: str) -> None:
    Path("people.csv").write_bytes(content)
    result = run("subscribers", "import", "people.csv")
    assert result.exit_code == 1
    assert one_line_error(result.stderr).startswith(f"error: {message}")


def test_a_folder_is_one_line_error(publication: Path) -> None:
    Path("people.csv").mkdir()
    result = run("subscribers", "import", "people.csv")
    assert result.exit_code == 1
    assert one_line_error(result.stderr) == "error: people.csv: cannot read it (Is a directory)"


# -- the quick reading is the csv module's ------------------------------------------------

@pytest.mark.parametrize("text", [
    "a@example.org,Ann,,subscribed\r\nb@example.org,Bo\n\nc@example.org\n",
    'a@example.org,"Smith, Ann","say ""hi""",x\nb@example.org,Bo\n',
    'a@example.org,"a note\r\nover lines",x\nb@example.org,Ann "Bee" Bo,y\n',
    'a@example.org,"unterminated note\nwith no address after it\n',
    "a;b;c\n;;\n",
    "email,name\rann@example.org,Ann\r\rbo@example.org,\"B\ro\"\r\r\n",  # Excel's "CSV (Macintosh)": \r endings
    'a@example.org,"x\r\ny"\r\nb@example.org,"\rz",w\r\nc@example.org,v\r\n',  # Windows, a \r in a cell
])
@pytest.mark.parametrize("chunk", [2, 1 << 16])
def test_the_quick_reading_gives_what_csv_reader_gives(text: str, chunk: int) -> None:
    """Chunks of 2 characters cut every line, and a `\r\n` in two."""
    delimiter = ";" if ";" in text.split("\n")[0] else ","
    handle = io.StringIO(text, newline="")
    first = handle.readline()
    quick = [row for _, row in read_rows(handle, delimiter, first, 1_000, chunk)]
    assert quick == list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


# -- the extra columns an import carries into the list ------------------------------------

def test_an_imports_empty_columns_are_not_carried_into_the_list(publication: Path) -> None:
    """A form export's columns nobody filled in would be empty for everyone on the list."""
    result = import_csv("email,optin_ip,Company,Fax,Notes\n"
                        "a@example.org,192.0.2.1,Acme,,\n"
                        "b@example.org,,,,\n"
                        "not an address,,,+44 1,a note of a row left out\n")
    assert result.exit_code == 0, result.output
    assert ("people.csv: 2 columns added to subscribers/main.csv (filled in by the file's rows): optin_ip, company"
            in result.output)
    header = MAIN_LIST.read_text().splitlines()[0].split(",")
    assert "fax" not in header and "notes" not in header
    assert rows()["a@example.org"]["optin_ip"] == "192.0.2.1"  # consent evidence is kept
    assert rows()["a@example.org"]["company"] == "Acme"


def test_an_import_that_would_make_the_list_wider_than_1000_columns_is_refused(publication: Path) -> None:
    write(MAIN_LIST, HEADER.rstrip("\n") + "".join(f",old{i}" for i in range(993)) + "\n"
          + "a@example.org,Ann,,subscribed,,," + "," * 992 + "x\n")
    before = MAIN_LIST.read_bytes()
    result = import_csv("email,new1,new2\nb@example.org,1,2\n")
    assert result.exit_code == 1
    assert one_line_error(result.stderr) == (
        "error: people.csv: importing it would give subscribers/main.csv 1,002 columns (2 new); a list holds at "
        "most 1,000: remove the columns nobody needs from the file or the list, then import again")
    assert MAIN_LIST.read_bytes() == before
