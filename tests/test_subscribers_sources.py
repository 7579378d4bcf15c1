"""`newsletter subscribers import` of the exports people migrate from: nobody who opted out is subscribed.

The cases are data: tests/data/imports/<case>.csv (a tool's export, with its real header
line) and <case>.expect (what the list and the report must say); see the README there.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run
from tests.subscriber_helpers import import_csv, rows

CASES = Path(__file__).parent / "data" / "imports"


def expectations(case: Path) -> list[tuple[str, str]]:
    """The statements of a case's .expect file as (kind, rest of the line)."""
    lines = case.with_suffix(".expect").read_text(encoding="utf-8").splitlines()
    return [(line.split(" ", 1)[0], line.split(" ", 1)[1]) for line in lines if line.strip()]


@pytest.mark.parametrize("case", sorted(CASES.glob("*.csv")), ids=lambda case: case.stem)
def test_an_export_is_imported_as_its_tool_meant_it(publication: Path, case: Path) -> None:
    result = import_csv(case.read_text(encoding="utf-8"))
    assert result.exit_code == 0, result.output
    listed = rows()
    report = result.output.splitlines()
    subscribed = run("subscribers", "list", "--status", "subscribed").stdout
    statuses = 0
    for kind, rest in expectations(case):
        if kind == "status":
            address, status = rest.split(" ")
            assert listed[address]["status"] == status, (address, result.output)
            # As a send would see it: only the subscribed are listed as subscribed.
            assert (f"{address}\t" in subscribed) == (status == "subscribed"), address
            statuses += status != "subscribed"
        elif kind == "absent":
            assert rest not in listed, result.output
            assert rest not in subscribed
        elif kind == "field":
            address, column, *value = rest.split(" ", 2)
            assert listed[address][column] == (value[0] if value else ""), (address, column)
        elif kind == "nocolumn":
            assert rest not in next(iter(listed.values())), f"column {rest!r} is in the list"
        elif kind == "line":
            assert rest in report, f"{rest!r} not in:\n{result.output}"
        else:
            raise AssertionError(f"{case.with_suffix('.expect').name}: unknown statement {kind!r}")
    # Each shape shows someone who opted out (Mailchimp's subscribed export is the one shape without).
    assert statuses or "absent" in dict(expectations(case)) or case.stem.endswith("_subscribed"), \
        "a case needs someone who opted out"


def test_every_case_has_its_expectations() -> None:
    assert all(case.with_suffix(".expect").is_file() for case in CASES.glob("*.csv"))


def test_a_status_word_a_known_export_does_not_write_leaves_the_row_out_named(publication: Path) -> None:
    result = import_csv("uuid,email,name,attributes,status,created_at,updated_at\n"
                        "u1,ann@example.org,Ann,{},enabled,,\n"
                        "u2,bob@example.org,Bob,{},paused,,\n")
    assert result.exit_code == 0, result.output
    assert "bob@example.org" not in rows()
    assert ("people.csv:3: column 'status' says 'paused', which a listmonk export does not write "
            "(it writes enabled, disabled, blocklisted); the row is left out rather than imported on a word "
            "the import cannot read") in result.output.splitlines()


def test_a_consent_column_blank_in_every_row_warns_that_the_file_gives_no_consent(publication: Path) -> None:
    result = import_csv("Timestamp,Email Address,Join our mailing list? (newsletter)\n"
                        "2024-03-15 10:00:00,ann@example.org,\n"
                        "2024-03-15 11:00:00,bob@example.org,\n")
    assert result.exit_code == 0, result.output
    assert ("people.csv: warning: column 'Join our mailing list? (newsletter)' is blank in every row: the file "
            "gives no consent information, so nobody in it is imported as subscribed") in result.output.splitlines()
    assert {row["status"] for row in rows().values() if row["email"].startswith(("ann@", "bob@"))} == {"unsubscribed"}


def test_a_ghost_export_without_status_column_cells_is_not_subscribed(publication: Path) -> None:
    """A short row (its subscribed_to_emails cell missing altogether) is a blank: no consent."""
    result = import_csv("id,email,name,note,subscribed_to_emails,complimentary_plan,stripe_customer_id,created_at,"
                        "deleted_at,labels,tiers\n1,short@example.org,Short\n")
    assert result.exit_code == 0, result.output
    assert rows()["short@example.org"]["status"] == "unsubscribed"
    assert "  unsubscribed        1 (Ghost: subscribed_to_emails blank, no consent)" in result.output.splitlines()


def test_a_file_no_source_recognises_is_read_as_before(publication: Path) -> None:
    result = import_csv("email,first_name,city\nplain@example.org,Pia,Oslo\n")
    assert result.exit_code == 0, result.output
    row = rows()["plain@example.org"]
    assert (row["status"], row["city"], row["subscribed_at"]) == ("subscribed", "Oslo", "")
    lines = result.output.splitlines()
    assert "  subscribed          1 (no status or consent column in the file)" in lines
    assert ("people.csv: warning: the file gives no status or consent column, so everyone in it is imported as "
            "subscribed on your word alone: import only people who asked for the newsletter") in lines
    assert not any("read as a" in line for line in lines)


def test_a_file_with_a_consent_column_has_no_warning_about_it(publication: Path) -> None:
    result = import_csv("email,status\nann@example.org,subscribed\n")
    assert result.exit_code == 0, result.output
    assert not any("no status or consent column" in line for line in result.output.splitlines())


def test_a_status_column_beside_the_exports_own_is_kept_not_read(publication: Path) -> None:
    """Kit's status is `state`; a `status` column beside it (a custom field) is data, not a second status."""
    result = import_csv("first_name,email_address,state,status\nAnn,ann.kit@example.org,cancelled,VIP member\n")
    assert result.exit_code == 0, result.output
    row = rows()["ann.kit@example.org"]
    assert (row["status"], row["status_in_kit"]) == ("unsubscribed", "VIP member")


def test_a_multiple_choice_consent_column_reads_only_yes_and_no(publication: Path) -> None:
    """Several answer texts are a multiple-choice question, not a checkbox: a refusal in words
    the import does not know ("Without newsletter") was read as a tick and subscribed."""
    refusals = ("Unsubscribe me from the newsletter", "Without newsletter", "Ohne Newsletter", "Stop the newsletter",
                "Only events please - newsletter off")
    people = [(f"r{n}@example.org", answer) for n, answer in enumerate(refusals)]
    people += [("sub@example.org", "Subscribe me to the newsletter"), ("yes@example.org", "Yes"),
               ("no@example.org", "No"),
               ("maybe@example.org", "Maybe in 2025")]  # neither an answer nor a date (no date column here)
    result = import_csv("Timestamp,Email Address,Newsletter preference\n"
                        + "".join(f"2024-03-15 10:00:00,{address},{answer}\n" for address, answer in people))
    assert result.exit_code == 0, result.output
    listed = rows()
    # Each refusal is a no, as "No" is; a text neither a yes nor a refusal is left out, named.
    assert {address: listed[address]["status"] for address, _ in people if address in listed} == {
        "yes@example.org": "subscribed", "no@example.org": "unsubscribed",
        **{f"r{n}@example.org": "unsubscribed" for n in range(len(refusals))}}
    lines = result.output.splitlines()
    assert ("people.csv:7: column 'Newsletter preference' says 'Subscribe me to the newsletter', one of 6 different "
            "option texts in the column: a multiple-choice answer, not a checkbox's label, so only yes or no is read "
            "there; write yes or no (a row is never imported as subscribed on an answer it cannot read)") in lines
    assert "  invalid             2 (rows 7, 10)" in lines
    assert ("people.csv:10: column 'Newsletter preference' says 'Maybe in 2025', which is neither yes, no nor a date: "
            "write yes or no (a row is never imported as subscribed on an answer it cannot read)") in lines
    assert not any("checkbox: " in line for line in lines)


def test_a_consent_column_of_one_option_text_is_read_as_a_checkbox(publication: Path) -> None:
    result = import_csv("Timestamp,Email Address,Newsletter\n"
                        "2024-03-15 10:00:00,ann@example.org,Send me the newsletter\n"
                        "2024-03-15 11:00:00,bob@example.org,\n"
                        "2024-03-15 12:00:00,cy@example.org,Send me the newsletter\n")
    assert result.exit_code == 0, result.output
    listed = rows()
    assert {address: listed[address]["status"] for address in ("ann@example.org", "bob@example.org", "cy@example.org")} == {
        "ann@example.org": "subscribed", "bob@example.org": "unsubscribed", "cy@example.org": "subscribed"}
    assert ("people.csv: column 'Newsletter' read as a checkbox: 2 ticked (subscribed), 1 blank (not subscribed); "
            "opt-in dates from column 'Timestamp'") in result.output.splitlines()


def test_a_consent_column_whose_one_text_is_a_refusal_subscribes_nobody(publication: Path) -> None:
    """One option text is a checkbox's label, unless it is a refusal ("Stop the newsletter")."""
    path = publication / "refusals.csv"
    path.write_text("Timestamp,Email,Newsletter preference\n"
                    "2026/03/01 10:00:00,ann@example.org,Stop the newsletter\n"
                    "2026/03/01 10:05:00,bob@example.org,Stop the newsletter\n", encoding="utf-8")
    result = run("subscribers", "import", str(path))
    listing = run("subscribers", "list", "--status", "subscribed")
    assert "ann@example.org" not in listing.output and "bob@example.org" not in listing.output, result.output
