"""One selection of subscribers (status and tags) for `send`, `subscribers list` and `export`:
several tags take an address with any one of them, in every command alike."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from newsletter.errors import SubscriberError
from newsletter.subscribers.selection import Selection
from tests.helpers import run
from tests.sendgrid_double import SendGridDouble

# The sample list's subscribed rows with tag poetry (ada) or prose (tomasz, kim).
POETRY_OR_PROSE = ["ada.lovelace@example.org", "kim@example.org", "tomasz@example.org"]


def test_list_export_and_send_take_the_same_readers_for_several_tags(publication: Path,
                                                                    sendgrid: SendGridDouble) -> None:
    tags = ("--tag", "poetry", "--tag", "prose")
    listed = run("subscribers", "list", "--status", "subscribed", *tags)
    assert listed.exit_code == 0
    assert sorted(line.split("\t")[0] for line in listed.stdout.splitlines()) == POETRY_OR_PROSE
    exported = run("subscribers", "export", "--status", "subscribed", *tags)
    assert sorted(row["email"] for row in csv.DictReader(io.StringIO(exported.stdout))) == POETRY_OR_PROSE
    assert run("send", "issue-1", "--yes", *tags).exit_code == 0
    assert sorted(sendgrid.accepted_recipients()) == POETRY_OR_PROSE


@pytest.mark.parametrize("command", ["list", "export"])
def test_several_tags_none_in_the_list_are_one_error_naming_them(publication: Path, command: str) -> None:
    result = run("subscribers", command, "--tag", "member", "--tag", "poems")
    assert result.exit_code == 1
    assert result.stderr == "error: no address has tag member or poems (tags in this list: members, poetry, prose)\n"


def test_a_selection_filters_rows_by_status_and_any_of_its_tags() -> None:
    rows = [(2, ["a@x.org", "", "", "subscribed", "members;poetry"]), (3, ["b@x.org", "", "", "bounced", "prose"]),
            (4, ["c@x.org", "", "", "subscribed", " prose ; x"]), (5, ["d@x.org", "", "", "subscribed", ""])]

    def taken(selection: Selection) -> list[int]:
        return [number for number, _ in selection.rows(iter(rows))]

    assert taken(Selection()) == [2, 3, 4, 5]
    assert taken(Selection("subscribed")) == [2, 4, 5]
    assert taken(Selection(tags=("prose",))) == [3, 4]
    assert taken(Selection("subscribed", ("poetry", "prose"))) == [2, 4]
    with pytest.raises(SubscriberError, match="unknown status 'gone'"):
        Selection("gone")
