"""Subscriber lists: `subscribers/<list>.csv`, streamed as `Subscriber` rows.

(A first cut: the full store, import and locking come with the subscribers issue.)
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.config import Settings
from newsletter.errors import SubscriberError, where

STATUSES = ("subscribed", "unsubscribed", "bounced", "complained")
COLUMNS = ("email", "first_name", "last_name", "status", "tags", "subscribed_at", "updated_at")
DEFAULT_LIST = "main"


@dataclass(slots=True)
class Subscriber:
    email: str
    first_name: str = ""
    last_name: str = ""
    status: str = "subscribed"
    tags: tuple[str, ...] = ()
    subscribed_at: str = ""
    updated_at: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def fields(self) -> dict[str, str]:
        """Every column as text: the values merge fields are filled from."""
        values = dict(self.extra)
        values.update(
            email=self.email, first_name=self.first_name, last_name=self.last_name,
            status=self.status, tags=";".join(self.tags),
            subscribed_at=self.subscribed_at, updated_at=self.updated_at,
        )
        return values


def list_path(settings: Settings, name: str = DEFAULT_LIST) -> Path:
    return settings.subscribers_dir / f"{name}.csv"


def iter_subscribers(path: Path) -> Iterator[Subscriber]:
    """Stream the rows of a list file, in file order."""
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise SubscriberError(f"{where(path)}: no such subscriber list") from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or header[0] != "email":
            raise SubscriberError(f"{where(path, 1)}: a subscriber list starts with the header {','.join(COLUMNS)}")
        extra_names = header[len(COLUMNS):]
        for row in reader:
            if not row:
                continue
            row += [""] * (len(header) - len(row))
            yield Subscriber(
                email=row[0], first_name=row[1], last_name=row[2], status=row[3] or "subscribed",
                tags=tuple(t for t in row[4].split(";") if t), subscribed_at=row[5], updated_at=row[6],
                extra=dict(zip(extra_names, row[len(COLUMNS):])),
            )
