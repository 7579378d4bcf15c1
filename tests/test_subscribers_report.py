"""`newsletter subscribers import`: what its report tells an editor, and the files it refuses."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.helpers import run
from tests.subscriber_helpers import MAIN_LIST, import_csv, rows


def report_lines(output: str) -> list[str]:
    return output.splitlines()


# -- duplicates within the file -------------------------------------------------------------

def test_duplicates_are_named_with_their_rows_and_the_row_kept(publication: Path) -> None:
    """Each address in several rows: its rows as the spreadsheet shows them, the row whose values
    stand, and what each later row filled in."""
    result = import_csv("email,first_name,last_name,tags,status,city\n"
                        "Dup@Example.org,Dana,,a,subscribed,\n"          # row 2: kept
                        "solo@example.org,Solo,,,subscribed,\n"          # row 3
                        "dup@example.ORG,Other,Upton,b,subscribed,Oslo\n"  # row 4: fills last_name and city, adds b
                        "twice@example.org,Tia,,,subscribed,\n"          # row 5: kept
                        "dup@example.org,,,,unsubscribed,\n"             # row 6: the stronger status
                        "TWICE@example.org,,,,subscribed,\n")            # row 7: adds nothing
    assert result.exit_code == 0, result.output
    lines = report_lines(result.output)
    assert "  duplicates in file  3 (2 addresses in more than one row: the later rows merged into the first)" in lines
    assert ("people.csv:2: Dup@example.org is also in rows 4, 6: merged into one, row 2's values kept; "
            "empty last_name, city filled from row 4; status unsubscribed from row 6 (the stronger status stands); "
            "tags of row 4 added") in lines
    assert "people.csv:5: twice@example.org is also in row 7: merged into one, row 5's values kept" in lines
    dana = rows()["Dup@example.org"]
    assert (dana["first_name"], dana["last_name"], dana["city"], dana["tags"], dana["status"]) == (
        "Dana", "Upton", "Oslo", "a;b", "unsubscribed")


def test_duplicate_rows_are_numbered_as_the_spreadsheet_shows_them(publication: Path) -> None:
    """A cell holding a line break is one row of the spreadsheet, though two lines of the file."""
    result = import_csv('email,notes\nann@example.org,"two\nlines"\nbo@example.org,\nANN@example.org,again\n')
    assert result.exit_code == 0, result.output
    assert "people.csv:2: ann@example.org is also in row 4: merged into one, row 2's values kept" in result.output


def test_many_duplicates_are_shortened_with_and_n_more(publication: Path) -> None:
    """One address in 30 rows and 25 addresses twice: the report names the first ones, then counts."""
    lines = "".join("same@example.org\n" for _ in range(30))                       # rows 2-31
    lines += "".join(f"p{i}@example.org\np{i}@example.org\n" for i in range(25))    # rows 32-81
    result = import_csv("email\n" + lines)
    assert result.exit_code == 0, result.output
    out = report_lines(result.output)
    assert "  duplicates in file  54 (26 addresses in more than one row: the later rows merged into the first)" in out
    later = ", ".join(str(n) for n in range(3, 23))
    assert f"people.csv:2: same@example.org is also in rows {later} and 9 more: merged into one, row 2's values kept" in out
    assert "people.csv: … and 6 more addresses in more than one row" in out
    assert sum(line.endswith("values kept") for line in out) == 20


# -- singular and plural ------------------------------------------------------------------

def test_one_row_is_row_and_several_are_rows(publication: Path) -> None:
    one = import_csv("email,optin_time\nnot-an-address,\nok@example.org,03/04/2024\n")
    assert one.exit_code == 0, one.output
    assert "people.csv → subscribers/main.csv: 2 rows read" in one.output
    assert "  invalid             1 (row 2)" in report_lines(one.output)
    assert "  dates as written    1 (row 3): not ISO 8601" in one.output
    several = import_csv("email\nbad-one\nok2@example.org\nbad-two\n")
    assert "  invalid             2 (rows 2, 4)" in report_lines(several.output)


def test_a_long_list_of_invalid_rows_says_and_n_more(publication: Path) -> None:
    result = import_csv("email\nok@example.org\n" + "".join(f"bad-{i}\n" for i in range(25)))
    assert result.exit_code == 0, result.output
    out = report_lines(result.output)
    shown = ", ".join(str(n) for n in range(3, 23))
    assert f"  invalid             25 (rows {shown} and 5 more)" in out
    assert "people.csv: … and 5 more invalid rows" in out
    assert sum(": 'bad-" in line for line in out) == 20


# -- dates kept as written -----------------------------------------------------------------

def test_dates_kept_as_written_show_their_values(publication: Path) -> None:
    result = import_csv("email,Signup date\n"
                        "a@example.org,03/04/2024\n"
                        "b@example.org,2024-03-04\n"
                        "c@example.org,4 March\n")
    assert result.exit_code == 0, result.output
    out = report_lines(result.output)
    assert "  dates as written    2 (rows 2, 4): not ISO 8601 or epoch seconds, and not guessed at " \
           "(03/04/2024 could be March or April), so kept as written" in out
    assert "people.csv:2: the opt-in date '03/04/2024' is kept as written" in out
    assert "people.csv:4: the opt-in date '4 March' is kept as written" in out
    assert rows()["c@example.org"]["subscribed_at"] == "4 March"


def test_a_form_timestamp_that_does_not_parse_says_where_it_is_kept(publication: Path) -> None:
    result = import_csv("Timestamp,Email address\n3/4/2024 14:23:45,form@example.org\n")
    assert result.exit_code == 0, result.output
    assert "people.csv:2: the opt-in date '3/4/2024 14:23:45' is kept as written in column 'Timestamp' only" \
        in report_lines(result.output)
    assert rows()["form@example.org"]["timestamp"] == "3/4/2024 14:23:45"
    assert rows()["form@example.org"]["subscribed_at"] == ""  # not the time of the import


# -- opt-in date headers -------------------------------------------------------------------

@pytest.mark.parametrize("header", ["Signed up", "Signup date", "Date added", "Created", "Opt-in date",
                                    "Subscribed", "created_at"])
def test_opt_in_date_headers_as_tools_name_them(publication: Path, header: str) -> None:
    result = import_csv(f"Email,{header}\nnew@example.org,2024-03-15T10:00:00Z\n")
    assert result.exit_code == 0, result.output
    assert rows()["new@example.org"]["subscribed_at"] == "2024-03-15T10:00:00Z"
    assert len(MAIN_LIST.read_text(encoding="utf-8").splitlines()[0].split(",")) == 7  # no extra column


def test_the_most_telling_date_column_wins_and_the_other_is_kept(publication: Path) -> None:
    result = import_csv("email,Created,Opt-in date\nnew@example.org,2020-01-01,2024-03-15\n")
    assert result.exit_code == 0, result.output
    row = rows()["new@example.org"]
    assert (row["subscribed_at"], row["created"]) == ("2024-03-15T00:00:00Z", "2020-01-01")


def test_subscribed_as_a_yes_no_column_is_a_status_not_a_date(publication: Path) -> None:
    """A form's "Subscribed" answers: "no" is never mailed, "yes" subscribes; no date is invented from them."""
    result = import_csv("Email,Subscribed\nyes@example.org,Yes\nno@example.org,No\nboth@example.org,2024-03-15\n")
    assert result.exit_code == 0, result.output
    listed = rows()
    assert listed["yes@example.org"]["status"] == "subscribed"
    assert listed["no@example.org"]["status"] == "unsubscribed"
    assert listed["both@example.org"]["subscribed_at"] == "2024-03-15T00:00:00Z"
    assert "  dates as written    0" in report_lines(result.output)  # "Yes" and "No" are no dates
    assert "subscribed" not in MAIN_LIST.read_text(encoding="utf-8").splitlines()[0].split(",")[7:]


def test_subscribed_no_beside_a_date_column_still_unsubscribes(publication: Path) -> None:
    result = import_csv("email,Signup date,Subscribed\nno@example.org,2024-03-15,FALSE\n")
    assert result.exit_code == 0, result.output
    row = rows()["no@example.org"]
    assert (row["status"], row["subscribed_at"]) == ("unsubscribed", "2024-03-15T00:00:00Z")
    assert "subscribed" not in row  # the answer is the status, not an extra column


def test_a_yes_no_subscribed_column_beside_a_date_column_is_the_status(publication: Path) -> None:
    """`Email,Name,Subscribed,Signed up`: the answers decide who is subscribed, the dates stay
    the opt-in dates, and the report says how the column was read."""
    result = import_csv("Email,Name,Subscribed,Signed up\n"
                        "ann@example.org,Ann,yes,2024-03-01\n"
                        "bob@example.org,Bob,no,2024-03-02\n"
                        "cy@example.org,Cy,True,2024-03-03\n"
                        "di@example.org,Di,0,2024-03-04\n"
                        "ed@example.org,Ed,,2024-03-05\n")
    assert result.exit_code == 0, result.output
    assert ("people.csv: column 'Subscribed' read as yes/no: 2 yes (subscribed), 2 no (not subscribed), "
            "1 blank (no answer, so not subscribed); opt-in dates from column 'Signed up'") in report_lines(result.output)
    assert "people.csv:6: column 'Subscribed' is blank: no consent, imported as unsubscribed" in report_lines(result.output)
    listed = rows()
    assert {email: listed[email]["status"] for email in ("ann@example.org", "bob@example.org", "cy@example.org",
                                                        "di@example.org", "ed@example.org")} == {
        "ann@example.org": "subscribed", "bob@example.org": "unsubscribed", "cy@example.org": "subscribed",
        "di@example.org": "unsubscribed", "ed@example.org": "unsubscribed"}  # a blank is no consent (issue 16)
    assert listed["bob@example.org"]["subscribed_at"] == "2024-03-02T00:00:00Z"
    assert listed["bob@example.org"]["first_name"] == "Bob"
    header = MAIN_LIST.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert "subscribed" not in header and "Subscribed" not in header


def test_an_answer_the_import_cannot_read_is_never_taken_for_a_yes(publication: Path) -> None:
    """`Nej`, `Não`, `unchecked` are a no; a mark or word it does not know (`✗`, `perhaps`) leaves the
    row out, named, instead of subscribing the person with the word kept as an opt-in date."""
    result = import_csv("Email,Subscribed\n"
                        "ann@example.org,Ja\n"
                        "bob@example.org,Nej\n"
                        "cy@example.org,Não\n"
                        "di@example.org,unchecked\n"
                        "ed@example.org,✗\n"
                        "flo@example.org,perhaps\n"
                        "gil@example.org,2024-03-07\n")
    listed = rows()
    assert {f"{name}@example.org": listed[f"{name}@example.org"]["status"] for name in ("ann", "bob", "cy", "di", "gil")} == {
        "ann@example.org": "subscribed", "bob@example.org": "unsubscribed", "cy@example.org": "unsubscribed",
        "di@example.org": "unsubscribed", "gil@example.org": "subscribed"}
    assert "ed@example.org" not in listed and "flo@example.org" not in listed
    assert listed["gil@example.org"]["subscribed_at"] == "2024-03-07T00:00:00Z"
    lines = report_lines(result.output)
    assert ("people.csv:6: column 'Subscribed' says '✗', which is neither yes, no nor a date: write yes or no "
            "(a row is never imported as subscribed on an answer it cannot read)") in lines
    assert any(line.startswith("people.csv:7: column 'Subscribed' says 'perhaps'") for line in lines)


def test_a_yes_in_a_reimport_never_resubscribes_who_said_no(publication: Path) -> None:
    """Who answered no (or unsubscribed since) stays unsubscribed when a later export says yes."""
    assert import_csv("Email,Subscribed,Signed up\nbob@example.org,no,2024-03-02\n").exit_code == 0
    result = import_csv("Email,Subscribed,Signed up\nbob@example.org,yes,2024-03-02\n")
    assert result.exit_code == 0, result.output
    assert "  kept unsubscribed   1 (use --resubscribe to subscribe them again)" in report_lines(result.output)
    assert rows()["bob@example.org"]["status"] == "unsubscribed"
    # and a "no" in a later export unsubscribes someone subscribed
    assert import_csv("Email,Subscribed,Signed up\nann@example.org,yes,2024-03-01\n").exit_code == 0
    assert import_csv("Email,Subscribed,Signed up\nann@example.org,no,2024-03-01\n").exit_code == 0
    assert rows()["ann@example.org"]["status"] == "unsubscribed"


def test_a_column_of_ticks_and_blanks_is_a_checkbox(publication: Path) -> None:
    """x/blank: a blank is an unticked box, so that address is not subscribed."""
    result = import_csv("Email,Subscribed,Created\nt@example.org,x,2024-01-01\nu@example.org,,2024-01-02\n")
    assert result.exit_code == 0, result.output
    assert ("people.csv: column 'Subscribed' read as a checkbox: 1 ticked (subscribed), 1 blank (not subscribed); "
            "opt-in dates from column 'Created'") in report_lines(result.output)
    listed = rows()
    assert (listed["t@example.org"]["status"], listed["u@example.org"]["status"]) == ("subscribed", "unsubscribed")
    assert listed["u@example.org"]["subscribed_at"] == "2024-01-02T00:00:00Z"


def test_a_subscribed_column_that_also_holds_dates_is_kept_as_written(publication: Path) -> None:
    """Beside another date column, a "Subscribed" cell that is no answer is not lost."""
    result = import_csv("Email,Created,Subscribed\na@example.org,2024-01-01,2024-02-01\nb@example.org,2024-01-02,no\n")
    assert result.exit_code == 0, result.output
    assert ("people.csv: column 'Subscribed' read cell by cell: 0 yes (subscribed), 1 no (not subscribed), "
            "1 other kept as written in column 'Subscribed'; opt-in dates from column 'Created'"
            ) in report_lines(result.output)
    listed = rows()
    assert (listed["a@example.org"]["status"], listed["a@example.org"]["subscribed"]) == ("subscribed", "2024-02-01")
    assert listed["b@example.org"]["status"] == "unsubscribed"


# -- nothing imported ----------------------------------------------------------------------

def test_every_row_invalid_exits_1_and_leaves_the_list_untouched(publication: Path) -> None:
    before = MAIN_LIST.read_bytes()
    result = import_csv("email,city\nnot-an-address,Oslo\n,Bergen\n")
    assert result.exit_code == 1
    assert "people.csv:2: 'not-an-address' is not a valid address" in result.stdout
    assert "people.csv:3: no email address" in result.stdout
    assert result.stderr == ("error: people.csv: nothing imported: none of its 2 rows is valid (see above); "
                             "subscribers/main.csv is unchanged\n")
    assert MAIN_LIST.read_bytes() == before


def test_a_file_with_only_a_header_exits_1_and_creates_no_list(publication: Path) -> None:
    result = import_csv("email,city\n", "--list", "fair")
    assert result.exit_code == 1
    assert result.stderr == ("error: people.csv: nothing imported: it has no rows below the header; "
                             "subscribers/fair.csv is unchanged\n")
    assert not Path("subscribers/fair.csv").exists()
    assert not Path("subscribers/fair.lock").exists()


def test_an_import_that_changes_no_row_leaves_the_list_untouched(publication: Path) -> None:
    """Nothing to add or update: the list is not rewritten with the file's column as a new, empty one."""
    before = MAIN_LIST.read_bytes()
    result = import_csv("email,favourite_colour\nada.lovelace@example.org,\n")
    assert result.exit_code == 0, result.output
    assert "unchanged           1" in result.output
    assert MAIN_LIST.read_bytes() == before


# -- a spreadsheet's own file --------------------------------------------------------------

def test_an_excel_workbook_is_refused_saying_save_as_csv_utf8(publication: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["email", "first_name"])
    book.active.append(["wb@example.org", "Wanda"])
    book.save("people.xlsx")
    before = MAIN_LIST.read_bytes()
    for name in ("people.xlsx", "renamed.csv"):  # the content decides, not the name
        Path(name).write_bytes(Path("people.xlsx").read_bytes())
        result = run("subscribers", "import", name)
        assert result.exit_code == 1
        assert result.stderr == (
            f"error: {name}: this is an Excel workbook, not a CSV file: save it as \"CSV UTF-8\" "
            "(in Excel, File › Save As › \"CSV UTF-8 (Comma delimited)\") and use that file\n")
    assert MAIN_LIST.read_bytes() == before


def test_an_old_excel_file_is_refused_saying_save_as_csv_utf8(publication: Path) -> None:
    Path("people.xls").write_bytes(bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504))  # an OLE2 header block
    result = run("subscribers", "import", "people.xls")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: people.xls: this is an Excel workbook, not a CSV file: save it as \"CSV UTF-8\"")


def test_an_opendocument_spreadsheet_is_refused_saying_save_as_csv_utf8(publication: Path) -> None:
    with zipfile.ZipFile("people.ods", "w") as archive:  # an ODS package: its mimetype member first
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", "<office:document-content/>")
    result = run("subscribers", "import", "people.ods")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: people.ods: this is an OpenDocument spreadsheet (LibreOffice), not a CSV file: save it as "
        "\"CSV UTF-8\" (in LibreOffice, File › Save As › \"Text CSV\", character set \"Unicode (UTF-8)\") "
        "and use that file\n")


def test_a_numbers_document_saved_as_a_folder_is_refused_saying_export_to_csv(publication: Path) -> None:
    Path("people.numbers").mkdir()
    result = run("subscribers", "import", "people.numbers")
    assert result.exit_code == 1
    assert "people.numbers: this is a Numbers document, not a CSV file" in result.stderr
    assert "File › Export To › CSV" in result.stderr
