"""The subscriber files as they really are: huge cells, foreign encodings, full disks, links, devices."""

from __future__ import annotations

from pathlib import Path

from tests.subscriber_helpers import MAIN_LIST, import_csv, rows, run, write

HEADER = "email,first_name,last_name,status,tags,subscribed_at,updated_at\n"


# -- cells larger than a list can hold (item 12) ----------------------------------------

def test_tags_merged_past_the_cell_limit_are_refused_naming_the_row(publication: Path) -> None:
    """15,000 rows of one address, each with its own tag, once made a 165 KB cell nothing could read."""
    lines = "".join(f"many@example.org,tag-number-{i:05d}\n" for i in range(15_000))
    result = import_csv("email,tags\n" + lines)
    assert result.exit_code == 0, result.output
    assert "people.csv:" in result.output and "at most 10,000 characters" in result.output
    listed = run("subscribers", "list", "--tag", "tag-number-00000")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.startswith("many@example.org\tsubscribed")
    assert len(rows()["many@example.org"]["tags"]) <= 10_000


def test_an_imported_cell_over_the_limit_is_refused_naming_the_row(publication: Path) -> None:
    result = import_csv("email,first_name,notes\nok@example.org,Ok,short\nlong@example.org,Long," + "x" * 20_000 + "\n")
    assert result.exit_code == 0, result.output
    assert ("people.csv:3: cell 3 (notes) holds 20,000 characters; a cell holds at most 10,000 characters"
            in result.output)
    assert "ok@example.org" in rows() and "long@example.org" not in rows()


def test_tags_that_would_pass_the_limit_in_the_list_stop_the_import_naming_the_row(publication: Path) -> None:
    tags = ";".join(f"old-{i:04d}" for i in range(1_100))  # 9,899 characters
    write(MAIN_LIST, HEADER + f"full@example.org,Full,,subscribed,{tags},,\n")
    before = MAIN_LIST.read_bytes()
    result = import_csv("email,tags\nfull@example.org," + ";".join(f"new-tag-{i:02d}" for i in range(20)) + "\n")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: subscribers/main.csv:2: the tags imported for full@example.org would make")
    assert MAIN_LIST.read_bytes() == before


def test_a_list_with_a_cell_larger_than_the_csv_modules_default_limit_reads(publication: Path) -> None:
    """Whatever a list was given (by hand, by an older version), every command reads it back."""
    write(MAIN_LIST, HEADER + "big@example.org,Big,,subscribed," + ";".join(f"t{i}" for i in range(40_000)) + ",,\n")
    result = run("subscribers", "list")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("big@example.org\tsubscribed\tBig\tt0;t1;")
    assert run("subscribers", "add", "new@example.org").exit_code == 0
    assert set(rows()) == {"big@example.org", "new@example.org"}


# -- UTF-16 (item 13) ----------------------------------------------------------------------

def test_utf16_without_a_bom_says_save_as_csv_utf8(publication: Path) -> None:
    """Excel's "Unicode Text" and some exports are UTF-16 without a BOM: no `E\\x00m\\x00a…` headers."""
    result = import_csv("Email,First Name\nann@example.org,Ann\n", encoding="utf-16-le")
    assert result.exit_code == 1
    assert result.stderr == ('error: people.csv:1: this is UTF-16 text, not UTF-8; '
                             'save the file as "CSV UTF-8" and try again\n')


def test_a_list_saved_as_utf16_says_save_as_csv_utf8(publication: Path) -> None:
    write(MAIN_LIST, HEADER + "ann@example.org,Ann,,subscribed,,,\n", encoding="utf-16-be")
    result = run("subscribers", "stats")
    assert result.exit_code == 1
    assert 'save the file as "CSV UTF-8"' in result.stderr and "\\x00" not in result.stderr


def test_utf16_with_a_bom_says_save_as_csv_utf8(publication: Path) -> None:
    result = import_csv("Email,First Name\nann@example.org,Ann\n", encoding="utf-16")
    assert result.exit_code == 1
    assert 'save the file as "CSV UTF-8"' in result.stderr
