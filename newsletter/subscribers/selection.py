"""Which rows of a list a command takes: a status and tags, one rule for `send`, `subscribers
list` and `subscribers export` (and the counts they give when a `--tag` selects nobody).

Several tags select a row with any one of them (`send --tag members --tag poetry` reaches
both groups), as `send` always did; `list` and `export` took one tag, so the two could drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from newsletter.errors import SubscriberError
from newsletter.subscribers.store import STATUS, STATUSES, TAGS, Row, open_list, split_tags

NumberedRow = tuple[int, Row]  # (line number in the file, canonical row), as ListFile.rows gives them


@dataclass(frozen=True)
class Selection:
    """Rows with `status` (None: any) and, when `tags` are given, any one of them."""

    status: str | None = None
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise SubscriberError(f"unknown status {self.status!r} (one of {', '.join(STATUSES)})")

    def rows(self, rows: Iterable[NumberedRow]) -> Iterator[NumberedRow]:
        """The rows of `rows` this selection takes, streamed, numbers kept.

        The one filter of every command; a send runs it over a million rows, so each case
        is its own generator (no test per row of what was not asked for).
        """
        status, tags = self.status, frozenset(self.tags)
        if tags and status is None:
            return ((n, row) for n, row in rows if not tags.isdisjoint(split_tags(row[TAGS])))
        if tags:
            return ((n, row) for n, row in rows if row[STATUS] == status and not tags.isdisjoint(split_tags(row[TAGS])))
        if status is not None:
            return ((n, row) for n, row in rows if row[STATUS] == status)
        return iter(rows)


EVERYONE = Selection()  # every row of a list, whatever its status and tags


def tags_in_list(path: Path, status: str | None = None) -> tuple[int, list[str]]:
    """How many rows of the list have `status` (any, when None), and the tags those rows
    carry, sorted: what to show when a `--tag` selects nobody."""
    rows, tag_strings = 0, set()
    with open_list(path) as listing:
        for _, row in Selection(status).rows(listing.rows):
            rows += 1
            tag_strings.add(row[TAGS])
    return rows, sorted({tag for text in tag_strings for tag in split_tags(text)})


def no_such_tag(tags: Iterable[str], found: Sequence[str], status: str | None = None) -> str:
    """`no subscribed address has tag member (tags in this list: members, writers)`: a mistyped
    `--tag` once selected nobody and said nothing (list, export) or only "Nothing to send", exit 0."""
    return (f"no {status + ' ' if status else ''}address has tag {' or '.join(tags)} "
            f"(tags in this list: {', '.join(found) if found else 'none'})")
