"""One address identity (`address_key`): what the list, import, remove, sync and send compare.

NFC, the domain in Unicode and lower-cased, the local part lower-cased: an address typed
exactly as the list holds it is always found, whatever form the list or the person used.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run
from tests.send_helpers import write_list
from tests.sendgrid_double import SendGridDouble
from tests.subscriber_helpers import MAIN_LIST, import_csv, rows, write

PUNYCODE = "bob@xn--exmple-cua.com"       # how a list exported by another tool may hold it
UNICODE = "bob@ex\u00e4mple.com"          # the same address, as email-validator normalizes it
DECOMPOSED = "jose\u0301@example.org"      # "josé" with a combining accent (macOS, some forms)
COMPOSED = "jos\u00e9@example.org"

HEADER = "email,first_name,last_name,status,tags,subscribed_at,updated_at\n"


def one_row_list(email: str, status: str = "subscribed") -> None:
    write(MAIN_LIST, HEADER + f"{email},Bo,,{status},,2026-01-01T00:00:00Z,2026-01-01T00:00:00Z\n")


@pytest.mark.parametrize("held, typed", [
    (PUNYCODE, PUNYCODE), (PUNYCODE, UNICODE), (UNICODE, PUNYCODE),
    (DECOMPOSED, DECOMPOSED), (DECOMPOSED, COMPOSED), (COMPOSED, DECOMPOSED),
])
def test_remove_finds_the_address_as_the_list_holds_it(publication: Path, held: str, typed: str) -> None:
    """The row the list holds is unsubscribed; no second row is appended beside it."""
    one_row_list(held)
    result = run("subscribers", "remove", typed)
    assert result.exit_code == 0, result.output
    assert "is unsubscribed" in result.stdout, result.stdout
    listed = rows()
    assert list(listed) == [held]
    assert listed[held]["status"] == "unsubscribed"


def test_import_merges_into_the_row_the_list_holds(publication: Path) -> None:
    one_row_list(PUNYCODE, status="unsubscribed")
    result = import_csv(f"email,first_name\n{UNICODE},Bob\n{DECOMPOSED},José\n")
    assert result.exit_code == 0, result.output
    assert "added               1" in result.output and "kept unsubscribed   1" in result.output
    listed = rows()
    assert listed[PUNYCODE]["status"] == "unsubscribed"
    assert UNICODE not in listed


def test_stats_reports_two_rows_of_one_address(publication: Path) -> None:
    """Rows that differ only in form are one reader: the list is reported, rows named."""
    write(MAIN_LIST, HEADER
          + f"{PUNYCODE},Bo,,unsubscribed,,,\n"
          + "ann@example.org,Ann,,subscribed,,,\n"
          + f"{UNICODE},Bo,,subscribed,,,\n"
          + f"{COMPOSED},,,subscribed,,,\n"
          + f"{DECOMPOSED.upper()},,,subscribed,,,\n")
    result = run("subscribers", "stats")
    assert result.exit_code == 0, result.output
    assert ("subscribers/main.csv:4: bob@exämple.com is the address of row 2 again "
            "(one reader, two rows): merge them") in result.stdout
    assert f"subscribers/main.csv:6: {DECOMPOSED.upper()} is the address of row 5 again" in result.stdout
    assert "ann@example.org is the address" not in result.stdout


def test_remove_unsubscribes_every_row_of_the_address(publication: Path) -> None:
    write(MAIN_LIST, HEADER + f"{PUNYCODE},Bo,,subscribed,,,\n{UNICODE},Bo,,subscribed,,,\n")
    result = run("subscribers", "remove", UNICODE)
    assert result.exit_code == 0, result.output
    assert {row["status"] for row in rows().values()} == {"unsubscribed"}
    assert "the list holds 2 rows for this address" in result.stdout


def test_a_send_recorded_in_one_form_is_not_sent_again_in_the_other(
    publication: Path, sendgrid: SendGridDouble,
) -> None:
    """The ledger keys by the same identity: a list re-exported with punycode is not mailed twice."""
    write_list(publication, [[UNICODE, "Bo", "", "subscribed", ""], [COMPOSED, "José", "", "subscribed", ""]])
    assert run("send", "issue-1", "--yes").exit_code == 0
    assert len(sendgrid.accepted_recipients()) == 2
    write_list(publication, [[PUNYCODE, "Bo", "", "subscribed", ""], [DECOMPOSED, "José", "", "subscribed", ""]])
    again = run("send", "issue-1", "--yes")
    assert again.exit_code == 0, again.output
    assert len(sendgrid.accepted_recipients()) == 2
    assert "Everyone already has issue-1: nothing was sent." in again.output


@pytest.mark.parametrize("unsubscribed_first", [False, True], ids=["subscribed-row-first", "unsubscribed-row-first"])
@pytest.mark.parametrize("form", ["as-written", "quoted-names", "crlf", "semicolons"])
@pytest.mark.parametrize("dry_run", [False, True], ids=["send", "dry-run"])
def test_an_address_listed_twice_once_unsubscribed_is_not_mailed_whichever_row_comes_first(
        publication: Path, sendgrid, unsubscribed_first: bool, form: str, dry_run: bool) -> None:
    """A list from before one identity (remove appended a second row): the unsubscribed row wins,
    in a list as this program writes it and in the forms a spreadsheet saves (quotes, CRLF, `;`).
    The dry run, which reads the list by a shortcut of its own, shows the editor the same."""
    import csv
    import json

    from tests.helpers import run

    twin = [["bob@xn--exmple-cua.com", "Bob", "Smith, Jr.", "subscribed"],
            ["BOB@exämple.com", "Bob", "Smith, Jr.", "unsubscribed"]]
    if unsubscribed_first:
        twin.reverse()
    # Another address is bounced, and a name holds a status word: neither stops Ana's mail.
    rows = [twin[0], ["ana@example.org", "Ana", "unsubscribed", "subscribed"], twin[1],
            ["cy@example.org", "Cy", "", "bounced"]]
    if form != "quoted-names":
        rows = [[cell.replace(", Jr.", " Jr.") for cell in row] for row in rows]
    with (publication / "subscribers" / "main.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";" if form == "semicolons" else ",",
                            lineterminator="\r\n" if form == "crlf" else "\n")
        writer.writerow(["email", "first_name", "last_name", "status", "tags"])
        writer.writerows(row + [""] for row in rows)
    result = run("send", "issue-1", *(["--dry-run"] if dry_run else ["--yes", "--no-web-check"]))
    assert result.exit_code == 0, result.output
    if dry_run:
        bodies = sorted((publication / "build" / "issue-1" / "dry-run").glob("*.json"))
        mailed = [p["to"][0]["email"] for body in bodies for p in json.loads(body.read_bytes())["personalizations"]]
        assert mailed == ["ana@example.org"] and sendgrid.mail_requests == []
    else:
        assert sendgrid.accepted_recipients() == ["ana@example.org"]
    assert "not mailed" in result.output and "another row of the address is not subscribed" in result.output


def test_a_ledger_keyed_before_one_identity_still_knows_who_has_the_issue(publication: Path, sendgrid) -> None:
    """Old ledgers hold lower-cased keys: `xn--` domains as punycode, accents decomposed."""
    import unicodedata

    from newsletter.config import load_settings
    from newsletter.sending.ledger import ACCEPTED, Ledger, ledger_path
    from tests.send_helpers import write_list

    decomposed = unicodedata.normalize("NFD", "josé@example.org")
    ledger = Ledger(ledger_path(load_settings(publication), "issue-1"), "issue-1")
    batch = ledger.record(["bob@xn--exmple-cua.com", decomposed])
    ledger.settle(batch, ACCEPTED, message_id="earlier", status=202)
    ledger.close()
    write_list(publication, [["bob@exämple.com", "Bob", "", "subscribed"],
                             ["josé@example.org", "José", "", "subscribed"],
                             ["ana@example.org", "Ana", "", "subscribed"]])
    result = run("send", "issue-1", "--yes", "--no-web-check")
    assert result.exit_code == 0, result.output
    assert sendgrid.accepted_recipients() == ["ana@example.org"]
