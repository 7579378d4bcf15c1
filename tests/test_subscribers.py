"""`newsletter subscribers ...`: importing files as people produce them, and the everyday commands."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from newsletter.subscribers.store import COLUMNS, Subscriber, iter_subscribers
from tests.helpers import run
from tests.subscriber_helpers import MAIN_LIST, import_csv, rows, write


def test_excel_export_with_bom_and_semicolons_is_imported(publication: Path) -> None:
    """Excel's "CSV UTF-8" in a semicolon locale: BOM, `;`, headers with spaces and aliases."""
    result = import_csv("\ufeffE-Mail Address;First Name;Surname;City\r\n"
                        "jose@example.org;José;Núñez;Sevilla\r\n"
                        "MARIE@Example.COM;Marie;Curie-Skłodowska;Paris\r\n")
    assert result.exit_code == 0, result.output
    assert "added               2" in result.output
    listed = rows()
    assert listed["jose@example.org"]["first_name"] == "José"
    assert listed["jose@example.org"]["last_name"] == "Núñez"
    assert listed["jose@example.org"]["city"] == "Sevilla"
    # The domain is lower-cased, the local part kept as typed.
    assert listed["MARIE@example.com"]["status"] == "subscribed"
    assert listed["MARIE@example.com"]["subscribed_at"] == ""  # no opt-in date in the file: none invented
    # The sample rows are still there, untouched.
    assert listed["ada.lovelace@example.org"]["tags"] == "members;poetry"


def test_excel_sep_line_names_the_delimiter(publication: Path) -> None:
    """Excel writes and hides a `sep=;` line; the header is still row 1 for the row numbers."""
    result = import_csv("sep=;\nEmail;Vorname;Nachname\nlena@example.org;Lena;Weiß\n;Ohne;\n")
    assert result.exit_code == 0, result.output
    assert (rows()["lena@example.org"]["first_name"], rows()["lena@example.org"]["last_name"]) == ("Lena", "Weiß")
    assert "people.csv:3: no email address" in result.output


def test_tab_separated_file_from_a_form_tool(publication: Path) -> None:
    result = import_csv("EMAIL\tFIRSTNAME\tTags\nform@example.org\tFrancis\tfair, garden\n", name="form.tsv")
    assert result.exit_code == 0, result.output
    assert rows()["form@example.org"]["first_name"] == "Francis"
    assert rows()["form@example.org"]["tags"] == "fair;garden"


def test_duplicate_in_different_case_is_merged(publication: Path) -> None:
    """Two rows for one address: one list row, the second fills what the first left empty."""
    result = import_csv("email,first_name,last_name,tags\n"
                        "Dup@Example.org,Dana,,a\n"
                        "dup@example.ORG,Other,Upton,b\n")
    assert result.exit_code == 0, result.output
    assert "duplicates in file  1" in result.output
    assert "added               1" in result.output
    matching = [row for email, row in rows().items() if email.lower() == "dup@example.org"]
    assert len(matching) == 1
    assert (matching[0]["first_name"], matching[0]["last_name"], matching[0]["tags"]) == ("Dana", "Upton", "a;b")


def test_address_already_on_list_in_other_case_is_not_added_again(publication: Path) -> None:
    result = import_csv("email\nADA.LOVELACE@EXAMPLE.ORG\n")
    assert "added               0" in result.output
    assert "unchanged           1" in result.output
    assert sum(email.lower() == "ada.lovelace@example.org" for email in rows()) == 1


def test_name_with_comma_and_quotes_survives(publication: Path) -> None:
    import_csv('email,first_name,last_name\nking@example.com,"Martin ""Marty""","King, Jr."\n')
    row = rows()["king@example.com"]
    assert (row["first_name"], row["last_name"]) == ('Martin "Marty"', "King, Jr.")


def test_rows_without_or_with_invalid_email_are_reported_by_spreadsheet_row(publication: Path) -> None:
    """Row numbers count rows as a spreadsheet shows them, even across a cell holding a line break."""
    people = write(publication / "people.csv",
                   "email,first_name,notes\n"
                   'one@example.org,One,"two\nlines"\n'   # row 2, two lines of text
                   ",NoAddress,\n"                        # row 3
                   "not-an-address,Bad,\n"                # row 4
                   "three@example.org,Three,\n")          # row 5
    result = run("subscribers", "import", str(people))
    assert result.exit_code == 0, result.output
    assert "invalid             2 (rows 3, 4)" in result.output
    assert "people.csv:3: no email address" in result.output
    assert "people.csv:4: 'not-an-address' is not a valid address" in result.output
    assert {"one@example.org", "three@example.org"} <= set(rows())
    assert rows()["one@example.org"]["notes"] == "two\nlines"


def test_header_without_email_column_lists_the_headers_found(publication: Path) -> None:
    before = MAIN_LIST.read_bytes()
    result = import_csv("Name;Phone\nAda;123\n")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "error: people.csv:1: no email column (headers found: 'Name', 'Phone'); "
        'name the column of addresses "email"'
    ]
    assert MAIN_LIST.read_bytes() == before


def test_status_column_is_honoured(publication: Path) -> None:
    """New addresses take the file's status; a subscribed one can be marked unsubscribed by a file.
    A blank status is no consent: the address is imported unsubscribed, named (issue 16; it
    was subscribed before)."""
    result = import_csv("email,status\n"
                        "gone@example.org,Unsubscribed\n"
                        "ada.lovelace@example.org,unsubscribed\n"
                        "fresh@example.org,\n"
                        "new@example.org,subscribed\n")
    assert result.exit_code == 0, result.output
    listed = rows()
    assert listed["gone@example.org"]["status"] == "unsubscribed"
    assert listed["ada.lovelace@example.org"]["status"] == "unsubscribed"
    assert listed["fresh@example.org"]["status"] == "unsubscribed"
    assert listed["new@example.org"]["status"] == "subscribed"
    lines = result.output.splitlines()
    assert "  blank consent       1 (row 4): imported as unsubscribed" in lines
    assert "people.csv:4: column 'status' is blank: no consent, imported as unsubscribed" in lines
    assert "  unsubscribed        2 (column status=unsubscribed)" in lines


def test_unknown_status_is_an_invalid_row(publication: Path) -> None:
    result = import_csv("email,status\nmaybe@example.org,perhaps\n")
    assert "people.csv:2: unknown status 'perhaps'" in result.output
    assert "maybe@example.org" not in rows()


def test_reimport_never_resubscribes_without_resubscribe(publication: Path) -> None:
    """Unsubscribed, bounced and complained stay so; `--resubscribe` is the only way back."""
    people = write(publication / "people.csv",
                   "email,first_name,status\n"
                   "left.us@example.com,Sam,subscribed\n"
                   "bounced@example.org,Pat,subscribed\n"
                   "ada.lovelace@example.org,Ada,subscribed\n")
    assert run("subscribers", "remove", "ada.lovelace@example.org").exit_code == 0
    result = run("subscribers", "import", str(people))
    assert "kept unsubscribed   3" in result.output
    listed = rows()
    assert [listed[e]["status"] for e in ("left.us@example.com", "bounced@example.org", "ada.lovelace@example.org")] \
        == ["unsubscribed", "bounced", "unsubscribed"]

    result = run("subscribers", "import", str(people), "--resubscribe")
    assert "kept unsubscribed   0" in result.output
    assert {rows()[e]["status"] for e in ("left.us@example.com", "bounced@example.org")} == {"subscribed"}


def test_import_never_blanks_a_field_and_only_fills_empty_ones(publication: Path) -> None:
    before = rows()["kim@example.org"]
    result = import_csv("email,first_name,last_name,tags\n"
                        "kim@example.org,,,\n"
                        "reader.one@example.com,Rea,Der,new\n")
    assert "updated             1" in result.output
    assert "unchanged           1" in result.output
    assert rows()["kim@example.org"] == before
    filled = rows()["reader.one@example.com"]
    assert (filled["first_name"], filled["last_name"], filled["tags"]) == ("Rea", "Der", "new")
    assert filled["updated_at"] > filled["subscribed_at"]


def test_dry_run_reports_and_writes_nothing(publication: Path) -> None:
    before = MAIN_LIST.read_bytes()
    result = import_csv("email\nnew.one@example.org\nleft.us@example.com\n", "--dry-run", "--tag", "x")
    assert result.exit_code == 0, result.output
    assert "2 rows read (dry run: nothing written)" in result.output
    assert "added               1" in result.output
    assert "kept unsubscribed   1" in result.output
    assert MAIN_LIST.read_bytes() == before
    assert not list(MAIN_LIST.parent.glob("*.tmp*"))


def test_import_tags_every_row_and_creates_a_new_list(publication: Path) -> None:
    result = import_csv("email\nfair1@example.org\nfair2@example.org\n", "--list", "fair", "--tag", "fair-2026")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("people.csv → subscribers/fair.csv (new list): 2 rows read")
    fair = rows(Path("subscribers/fair.csv"))
    assert set(fair) == {"fair1@example.org", "fair2@example.org"}
    assert {row["tags"] for row in fair.values()} == {"fair-2026"}


def test_list_name_cannot_be_a_path(publication: Path) -> None:
    result = run("subscribers", "stats", "--list", "../etc")
    assert result.exit_code == 1
    assert "is not a list name" in result.stderr


def test_formula_in_a_name_is_kept_in_the_list_and_defused_on_export(publication: Path) -> None:
    import_csv("email,first_name,last_name\n"
               "evil@example.org,=HYPERLINK(\"http://example.com\";\"click\"),@SUM(A1)\n"
               "minus@example.org,-2+3,+1\n")
    assert rows()["evil@example.org"]["first_name"].startswith("=HYPERLINK")
    result = run("subscribers", "export", "-o", "out.csv")
    assert result.exit_code == 0, result.output
    assert "exported 9 rows from subscribers/main.csv into out.csv" in result.output
    exported = {row["email"]: row for row in csv.DictReader(io.StringIO(Path("out.csv").read_text("utf-8-sig")))}
    assert exported["evil@example.org"]["first_name"] == "'=HYPERLINK(\"http://example.com\";\"click\")"
    assert exported["evil@example.org"]["last_name"] == "'@SUM(A1)"
    assert (exported["minus@example.org"]["first_name"], exported["minus@example.org"]["last_name"]) == ("'-2+3", "'+1")
    assert exported["kim@example.org"]["last_name"] == "Lee, Jr."


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@A1", "\tx", "\rx"])
def test_export_defuses_every_formula_start(publication: Path, cell: str) -> None:
    """Cells as another tool may have left them in the list file (quoted, so `\r` is kept)."""
    with MAIN_LIST.open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\r\n").writerow(["cell@example.org", cell, "", "subscribed", "", "", ""])
    result = run("subscribers", "export", "--status", "subscribed")
    exported = {row["email"]: row for row in csv.DictReader(io.StringIO(result.stdout, newline=""))}
    assert exported["cell@example.org"]["first_name"] == "'" + cell


def test_carriage_return_in_a_value_does_not_split_the_row(publication: Path) -> None:
    run("subscribers", "add", "cr@example.org", "--first-name", "Line\rbreak", "--last-name", "Two\r\nlines")
    listed = rows()
    assert len(listed) == 8
    assert (listed["cr@example.org"]["first_name"], listed["cr@example.org"]["last_name"]) == ("Line\nbreak", "Two\nlines")


def test_export_filters_by_status_and_tag_to_stdout_without_bom(publication: Path) -> None:
    result = run("subscribers", "export", "--status", "subscribed", "--tag", "prose")
    assert result.exit_code == 0
    assert result.stdout.startswith("email,first_name,")
    assert [row["email"] for row in csv.DictReader(io.StringIO(result.stdout))] == ["tomasz@example.org", "kim@example.org"]


def test_add_then_update_then_remove_keeps_the_row(publication: Path) -> None:
    result = run("subscribers", "add", "New@Example.ORG", "--first-name", "Nia", "--tag", "members")
    assert result.exit_code == 0 and "added New@example.org" in result.output
    assert rows()["New@example.org"]["status"] == "subscribed"

    run("subscribers", "add", "new@example.org", "--last-name", "Ode", "--tag", "prose")
    row = rows()["New@example.org"]
    assert (row["first_name"], row["last_name"], row["tags"]) == ("Nia", "Ode", "members;prose")

    result = run("subscribers", "remove", "NEW@example.org")
    assert "is unsubscribed" in result.output
    assert rows()["New@example.org"]["status"] == "unsubscribed"

    result = run("subscribers", "add", "new@example.org")
    assert "stays so" in result.output
    assert rows()["New@example.org"]["status"] == "unsubscribed"
    run("subscribers", "add", "new@example.org", "--resubscribe")
    assert rows()["New@example.org"]["status"] == "subscribed"


def test_remove_an_address_not_on_the_list_records_it(publication: Path) -> None:
    result = run("subscribers", "remove", "stranger@example.org")
    assert "was not on the list; recorded as unsubscribed" in result.output
    assert rows()["stranger@example.org"]["status"] == "unsubscribed"


def test_delete_erases_the_row(publication: Path) -> None:
    result = run("subscribers", "delete", "KIM@example.org")
    assert result.exit_code == 0, result.output
    assert "kim@example.org" not in {email.lower() for email in rows()}
    assert len(rows()) == 6
    result = run("subscribers", "delete", "kim@example.org")
    assert result.exit_code == 0
    assert result.stdout.startswith("kim@example.org was held nowhere")


def test_add_rejects_an_invalid_address(publication: Path) -> None:
    result = run("subscribers", "add", "nobody@")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: 'nobody@' is not a valid address")


def test_list_filters_by_status_and_tag(publication: Path) -> None:
    result = run("subscribers", "list", "--tag", "members")
    assert [line.split("\t")[0] for line in result.stdout.splitlines()] == [
        "ada.lovelace@example.org", "o.brien@example.com", "tomasz@example.org"]
    result = run("subscribers", "list", "--status", "bounced")
    assert result.stdout.splitlines() == ["bounced@example.org\tbounced\tPat Stone\t"]


def test_stats_counts_by_status_and_tag(publication: Path) -> None:
    run("subscribers", "remove", "tomasz@example.org")
    result = run("subscribers", "stats")
    assert result.exit_code == 0
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == ["subscribers/main.csv:", "7", "addresses"]
    assert ["subscribed", "4"] in lines and ["unsubscribed", "2"] in lines and ["bounced", "1"] in lines
    assert ["complained", "0"] in lines
    assert ["members", "3", "2"] in lines and ["prose", "2", "1"] in lines


def test_missing_list_is_one_line_error(publication: Path) -> None:
    result = run("subscribers", "stats", "--list", "nope")
    assert result.exit_code == 1
    assert result.stderr == "error: subscribers/nope.csv: no such list (lists here: main)\n"


def test_bad_status_in_a_list_file_names_file_and_row(publication: Path) -> None:
    with MAIN_LIST.open("a", encoding="utf-8") as handle:
        handle.write("odd@example.org,,,maybe,,,\n")
    result = run("subscribers", "list")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("error: subscribers/main.csv:9: unknown status 'maybe' "
                                     "(one of subscribed, unsubscribed, bounced, complained)")


def test_iter_subscribers_streams_subscribers_with_extra_columns(publication: Path) -> None:
    """The interface sending depends on: Subscriber rows in file order, extras in `.extra`."""
    import_csv("email,city\nada.lovelace@example.org,London\n")
    subscribers = list(iter_subscribers(MAIN_LIST))
    assert [s.email for s in subscribers][:2] == ["ada.lovelace@example.org", "o.brien@example.com"]
    ada = subscribers[0]
    assert isinstance(ada, Subscriber) and ada.tags == ("members", "poetry")
    assert ada.extra == {"city": "London"}
    assert list(ada.fields())[:1] == ["city"] and set(COLUMNS) <= set(ada.fields())


def test_every_subscribers_command_has_help_with_an_example(publication: Path) -> None:
    from newsletter.cli import subscribers

    for name in subscribers.commands:
        result = run("subscribers", name, "--help")
        assert result.exit_code == 0
        assert "Example:" in result.output, name


def test_status_choices_of_the_cli_are_the_statuses() -> None:
    """cli.py spells the statuses out (lazy imports); they must stay the store's."""
    from newsletter.cli import subscribers
    from newsletter.subscribers.store import STATUSES

    status = next(p for p in subscribers.commands["list"].params if p.name == "status")
    assert tuple(status.type.choices) == STATUSES


def test_hand_made_duplicate_in_the_list_stops_the_import_and_changes_nothing(publication: Path) -> None:
    with MAIN_LIST.open("a", encoding="utf-8") as handle:
        handle.write("Kim@Example.org,Kim,,subscribed,,,\n")  # row 9, the same address as row 6
    before = MAIN_LIST.read_bytes()
    result = import_csv("email,first_name\nkim@example.org,Kim\nnew@example.org,New\n")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: subscribers/main.csv:9: Kim@Example.org is on the list a second time; "
        "a list holds one row per address: merge the two rows, then import again")
    assert MAIN_LIST.read_bytes() == before
    assert not list(MAIN_LIST.parent.glob("*.tmp*"))


def test_a_private_list_stays_private_after_a_write(publication: Path) -> None:
    MAIN_LIST.chmod(0o600)
    run("subscribers", "add", "private@example.org")
    assert "private@example.org" in rows()
    assert MAIN_LIST.stat().st_mode & 0o777 == 0o600


def test_failed_export_leaves_the_output_file_as_it_was(publication: Path) -> None:
    """A bad status on a later row stops the export; out.csv keeps its old content, whole."""
    Path("out.csv").write_text("old content\n", encoding="utf-8")
    with MAIN_LIST.open("a", encoding="utf-8") as handle:
        handle.write("odd@example.org,,,maybe,,,\n")
    result = run("subscribers", "export", "-o", "out.csv")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: subscribers/main.csv:9: unknown status 'maybe'")
    assert Path("out.csv").read_text(encoding="utf-8") == "old content\n"
    assert sorted(p.name for p in Path(".").glob("out.csv*")) == ["out.csv"]


def test_export_of_an_unknown_list_creates_no_file(publication: Path) -> None:
    result = run("subscribers", "export", "--list", "nope", "-o", "new.csv")
    assert result.exit_code == 1
    assert not Path("new.csv").exists()


def test_export_into_the_subscribers_folder_is_refused(publication: Path) -> None:
    before = MAIN_LIST.read_bytes()
    result = run("subscribers", "export", "--status", "subscribed", "-o", "subscribers/main.csv")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: subscribers/main.csv: will not export into the subscribers folder")
    assert MAIN_LIST.read_bytes() == before


def test_a_folder_named_like_a_list_is_one_line_error(publication: Path) -> None:
    Path("subscribers/odd.csv").mkdir()
    for command in (("stats",), ("list",), ("add", "x@example.org"), ("export", "-o", "out.csv")):
        result = run("subscribers", *command, "--list", "odd")
        assert result.exit_code == 1, (command, result.output)
        assert result.stderr == "error: subscribers/odd.csv: cannot read it (Is a directory)\n", command


def test_export_into_a_missing_folder_is_one_line_error(publication: Path) -> None:
    result = run("subscribers", "export", "-o", "nodir/out.csv")
    assert result.exit_code == 1
    assert result.stderr == "error: nodir/out.csv: cannot write it (No such file or directory)\n"


def test_a_folder_where_the_lock_file_goes_is_one_line_error(publication: Path) -> None:
    Path("subscribers/main.lock").mkdir()
    result = run("subscribers", "add", "x@example.org")
    assert result.exit_code == 1
    assert result.stderr == "error: subscribers/main.lock: cannot write the list's lock file (Is a directory)\n"


def test_a_folder_where_the_temporary_file_goes_is_one_line_error(publication: Path) -> None:
    """The store's temporary file cannot be created: the list is untouched, one line."""
    before = MAIN_LIST.read_bytes()
    # CliRunner runs the command in this process: this is the temporary file its write uses.
    Path(f"subscribers/main.csv.tmp{os.getpid()}").mkdir()
    result = run("subscribers", "add", "x@example.org")
    assert result.exit_code == 1
    assert result.stderr == "error: subscribers/main.csv: cannot write it (Is a directory)\n"
    assert MAIN_LIST.read_bytes() == before


MAILCHIMP_HEADER = ("Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME,CONFIRM_TIME,{time_column},"
                    "LEID,EUID,NOTES,TAGS\n")


@pytest.mark.parametrize(("time_column", "status"), [("UNSUB_TIME", "unsubscribed"), ("CLEAN_TIME", "bounced")])
def test_mailchimp_per_status_export_never_subscribes_anyone(publication: Path, time_column: str, status: str) -> None:
    """Mailchimp's unsubscribed/cleaned exports have no status column, only the time of it."""
    result = import_csv(MAILCHIMP_HEADER.format(time_column=time_column)
                        + 'ada.lovelace@example.org,Ada,,2,"2024-01-02 10:00:00",,"2024-06-01 09:00:00",1,a,,\n'
                        + 'gone@example.org,Gone,Away,2,"2024-01-02 10:00:00",,"2024-06-01 09:00:00",2,b,,'
                          '"""VIP"",""Donor"""\n', "--resubscribe")
    assert result.exit_code == 0, result.output
    listed = rows()
    assert listed["ada.lovelace@example.org"]["status"] == status
    assert listed["gone@example.org"]["status"] == status
    assert listed["gone@example.org"]["tags"] == "VIP;Donor"
    assert listed["gone@example.org"]["subscribed_at"] == "2024-01-02T10:00:00Z"


def test_mailchimp_quoted_tag_list_becomes_tags(publication: Path) -> None:
    result = import_csv('Email Address,TAGS\nvip@example.org,"""VIP"",""Major Donor"""\n', "--tag", "fair")
    assert result.exit_code == 0, result.output
    assert rows()["vip@example.org"]["tags"] == "VIP;Major Donor;fair"


def test_google_forms_name_and_timestamp(publication: Path) -> None:
    """A whole name goes to first_name as written; Timestamp becomes subscribed_at when it parses."""
    result = import_csv("Timestamp,Email address,Full name\n"
                        "2024-03-15 14:23:45,form1@example.org,Mary Ann Smith\n"
                        "3/15/2024 14:23:45,form2@example.org,Bo\n")
    assert result.exit_code == 0, result.output
    listed = rows()
    assert (listed["form1@example.org"]["first_name"], listed["form1@example.org"]["last_name"]) == ("Mary Ann Smith", "")
    assert listed["form1@example.org"]["subscribed_at"] == "2024-03-15T14:23:45Z"
    # 3/15/2024 has a month-first order the file shows (15 is no month); the original is kept too.
    assert listed["form2@example.org"]["subscribed_at"] == "2024-03-15T14:23:45Z"
    assert listed["form2@example.org"]["timestamp"] == "3/15/2024 14:23:45"


HEADER = "email,first_name,last_name,status,tags,subscribed_at,updated_at"


@pytest.mark.parametrize(("header", "row", "message"), [
    (HEADER + ",city,", "a@example.org,,,,,,,Oslo,note",
     "subscribers/main.csv:1: column 9 has no name: name it or remove it"),
    (HEADER + ",city,City", "a@example.org,,,,,,,Oslo,Bergen",
     "subscribers/main.csv:1: columns 8 ('city') and 9 ('City') name the same column: rename one or merge them"),
    (HEADER.replace("tags,", "tags ,") + ",tags", "a@example.org,,,,x,,,y",
     "subscribers/main.csv:1: columns 5 ('tags ') and 8 ('tags') name the same column: rename one or merge them"),
    (HEADER + ",city", "a@example.org,,,,,,,Oslo,stray",
     "subscribers/main.csv:2: cell 9 is beyond the header's 8 columns: give its column a name in row 1 or remove it"),
    ("first_name,email", "Ann,a@example.org,stray",
     "subscribers/main.csv:2: cell 3 is beyond the header's 2 columns: give its column a name in row 1 or remove it"),
])
def test_hand_edited_list_that_would_lose_data_is_an_error(publication: Path, header: str, row: str, message: str) -> None:
    write(MAIN_LIST, f"{header}\n{row}\n")
    before = MAIN_LIST.read_bytes()
    for command in (("list",), ("add", "b@example.org")):
        result = run("subscribers", *command)
        assert result.exit_code == 1
        assert result.stderr == f"error: {message}\n"
    assert MAIN_LIST.read_bytes() == before


def test_empty_cells_beyond_the_header_are_harmless(publication: Path) -> None:
    """A spreadsheet may pad rows with empty cells; nothing is lost by ignoring them."""
    write(MAIN_LIST, f"{HEADER}\na@example.org,Ann,,,,,,,\n")
    result = run("subscribers", "list")
    assert result.exit_code == 0, result.output
    assert result.stdout == "a@example.org\tsubscribed\tAnn\t\n"


def test_list_with_columns_in_another_order_reads(publication: Path) -> None:
    """As open_list promises: columns are found by name, `email` need not come first."""
    write(MAIN_LIST, "first_name,email,city\nAnn,a@example.org,Oslo\n")
    result = run("subscribers", "list")
    assert result.exit_code == 0, result.output
    assert result.stdout == "a@example.org\tsubscribed\tAnn\t\n"
    assert run("subscribers", "add", "b@example.org").exit_code == 0
    assert rows()["a@example.org"]["city"] == "Oslo"


def test_imported_column_matches_the_lists_column_whatever_its_case(publication: Path) -> None:
    write(MAIN_LIST, "email,first_name,last_name,status,tags,subscribed_at,updated_at,Company\n"
                     "a@example.org,,,subscribed,,,,Acme\nb@example.org,,,subscribed,,,,\n")
    result = import_csv("email,company\na@example.org,Other Co\nb@example.org,Initech\nc@example.org,Globex\n")
    assert result.exit_code == 0, result.output
    header = MAIN_LIST.read_text(encoding="utf-8").splitlines()[0]
    assert header == "email,first_name,last_name,status,tags,subscribed_at,updated_at,Company"
    listed = rows()
    # Fill-empty-only holds: Acme stays, the empty cell is filled, the new address gets its value.
    assert [listed[a]["Company"] for a in ("a@example.org", "b@example.org", "c@example.org")] == [
        "Acme", "Initech", "Globex"]


def test_opt_in_dates_are_read_or_kept_as_written_never_replaced_by_now(publication: Path) -> None:
    result = import_csv("email,optin_time\n"
                        "iso@example.org,2024-03-15 10:00:00\n"
                        "epoch@example.org,1710496800\n"
                        "millis@example.org,1710496800000\n"
                        "dmy@example.org,15/03/2024\n"
                        "ambiguous@example.org,03/04/2024 09:30\n"
                        "none@example.org,\n")
    assert result.exit_code == 0, result.output
    listed = rows()
    assert listed["iso@example.org"]["subscribed_at"] == "2024-03-15T10:00:00Z"
    assert listed["epoch@example.org"]["subscribed_at"] == "2024-03-15T10:00:00Z"
    assert listed["millis@example.org"]["subscribed_at"] == "2024-03-15T10:00:00Z"
    # 15/03/2024 has a day over 12 and no date has a month over 12: the file's dates are day-first.
    assert listed["dmy@example.org"]["subscribed_at"] == "2024-03-15T00:00:00Z"
    assert listed["ambiguous@example.org"]["subscribed_at"] == "2024-04-03T09:30:00Z"
    assert listed["none@example.org"]["subscribed_at"] == ""  # no date given: none invented (it was the time of the import)
    assert ("people.csv: 2 slashed dates read day-first: row 5's '15/03/2024' shows the order, and no date says "
            "otherwise (no month over 12 in that place)\n") in result.output
    assert "  dates as written    0" in result.output


def test_slashed_dates_of_a_file_that_shows_both_orders_are_kept_as_written(publication: Path) -> None:
    result = import_csv("email,Signup date\n"
                        "a@example.org,15/03/2024\n"
                        "b@example.org,03/15/2024\n"
                        "c@example.org,03/04/2024\n")
    assert result.exit_code == 0, result.output
    assert [rows()[f"{name}@example.org"]["subscribed_at"] for name in "abc"] == ["15/03/2024", "03/15/2024", "03/04/2024"]
    assert "  dates as written    3 (rows 2, 3, 4): not ISO 8601 or epoch seconds, and not guessed at" in result.output


def test_slashed_dates_of_a_file_that_shows_month_first_are_read_month_first(publication: Path) -> None:
    result = import_csv("Timestamp,Email address\n3/15/2024 14:23:45,a@example.org\n4/3/2024 8:05:00,b@example.org\n")
    assert result.exit_code == 0, result.output
    listed = rows()
    assert (listed["a@example.org"]["subscribed_at"], listed["b@example.org"]["subscribed_at"]) == (
        "2024-03-15T14:23:45Z", "2024-04-03T08:05:00Z")
    assert listed["b@example.org"]["timestamp"] == "4/3/2024 8:05:00"  # the evidence as written stays


def test_unreadable_opt_in_date_fills_an_empty_one_as_written(publication: Path) -> None:
    write(MAIN_LIST, "email,first_name,last_name,status,tags,subscribed_at,updated_at\na@example.org,,,,,,\n")
    result = import_csv("email,signup_date\na@example.org,03/04/2024\n")
    assert result.exit_code == 0, result.output
    assert rows()["a@example.org"]["subscribed_at"] == "03/04/2024"


def test_list_not_utf8_names_the_row(publication: Path) -> None:
    good = "".join(f"person{i}@example.org,Name{i},,subscribed,,,\n" for i in range(2, 1000))
    write(MAIN_LIST, "email,first_name,last_name,status,tags,subscribed_at,updated_at\n" + good
          + "b@example.org,Bérénice,,subscribed,,,\n", encoding="cp1252")
    result = run("subscribers", "stats")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: subscribers/main.csv:1000: not UTF-8 text")


@pytest.mark.parametrize("command", [("add", "x@example.org"), ("remove", "x@example.org")])
def test_edit_of_a_mistyped_list_is_an_error_and_creates_nothing(publication: Path, command: tuple[str, ...]) -> None:
    result = run("subscribers", *command, "--list", "mian")
    assert result.exit_code == 1
    assert result.stderr == "error: subscribers/mian.csv: no such list (lists here: main)\n"
    assert sorted(p.name for p in Path("subscribers").iterdir()) == ["main.csv"]


def test_import_into_an_existing_list_does_not_say_new_list(publication: Path) -> None:
    result = import_csv("email\nx@example.org\n")
    assert result.output.startswith("people.csv → subscribers/main.csv: 1 row read")


def test_import_of_a_folder_is_one_line_error(publication: Path) -> None:
    Path("people.csv").mkdir()
    result = run("subscribers", "import", "people.csv")
    assert result.exit_code == 1
    assert result.stderr == "error: people.csv: cannot read it (Is a directory)\n"


def test_export_to_a_folder_is_one_line_error(publication: Path) -> None:
    Path("out").mkdir()
    result = run("subscribers", "export", "-o", "out")
    assert result.exit_code == 1
    assert result.stderr == "error: out: is a folder; name the file to write\n"


def test_unknown_option_stays_a_usage_error(publication: Path) -> None:
    result = run("subscribers", "export", "--bogus")
    assert result.exit_code == 2


def untouched(command: tuple[str, ...]) -> tuple[str, str]:
    """Run `subscribers COMMAND`; assert the list file was not replaced; (stdout, stderr)."""
    before = (MAIN_LIST.stat().st_ino, MAIN_LIST.read_bytes())
    result = run("subscribers", *command)
    assert (MAIN_LIST.stat().st_ino, MAIN_LIST.read_bytes()) == before, "the list was rewritten"
    return result.stdout, result.stderr


def test_remove_of_a_bounced_address_says_it_stays_bounced(publication: Path) -> None:
    out, _ = untouched(("remove", "bounced@example.org"))
    assert out == "subscribers/main.csv: bounced@example.org is bounced and stays so (it receives no mail)\n"


def test_remove_of_an_unsubscribed_address_changes_nothing(publication: Path) -> None:
    out, _ = untouched(("remove", "left.us@example.com"))
    assert out == "subscribers/main.csv: left.us@example.com was unsubscribed already; nothing changed\n"


def test_add_of_an_address_already_there_as_given_says_unchanged(publication: Path) -> None:
    out, _ = untouched(("add", "ada.lovelace@example.org", "--first-name", "Ada", "--tag", " poetry "))
    assert out == "subscribers/main.csv: unchanged ada.lovelace@example.org\n"


def test_delete_of_an_absent_address_changes_nothing(publication: Path) -> None:
    out, _ = untouched(("delete", "nobody@example.org"))
    assert out.startswith("nobody@example.org was held nowhere (no list, send ledger or file under build/)")


def test_add_trims_tags(publication: Path) -> None:
    run("subscribers", "add", "t@example.org", "--tag", " fair ", "--tag", "fair", "--tag", " ")
    assert rows()["t@example.org"]["tags"] == "fair"
    run("subscribers", "add", "ada.lovelace@example.org", "--tag", " members ", "--tag", "new ")
    assert rows()["ada.lovelace@example.org"]["tags"] == "members;poetry;new"


def test_list_saved_again_by_excel_with_bom_and_semicolons_reads(publication: Path) -> None:
    write(MAIN_LIST, "\ufeffemail;first_name;last_name;status;tags;subscribed_at;updated_at;City\r\n"
                     "ana@example.org;Ana;Núñez;subscribed;a;2026-01-01T00:00:00Z;2026-01-01T00:00:00Z;Sevilla, ES\r\n")
    result = run("subscribers", "list")
    assert result.exit_code == 0, result.output
    assert result.stdout == "ana@example.org\tsubscribed\tAna Núñez\ta\n"
    assert run("subscribers", "add", "b@example.org").exit_code == 0
    assert rows()["ana@example.org"]["City"] == "Sevilla, ES"
