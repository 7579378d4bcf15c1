"""A list's growth by month, from the dates it holds: part of `subscribers stats` and of the stats report.

A list keeps each reader's present state only: `subscribed_at` (when they joined, the
opt-in evidence) and `updated_at` (the row's last change). A reader who is no longer
subscribed left in the month of `updated_at`: unsubscribing, a bounce and a spam
report all stamp it, and the list keeps no other date of leaving (a later edit of the
row's names or tags moves it). A reader who left and came back counts once, as the
joining the list holds. Rows without a readable date are counted apart and named.

Counting is done by `lists.list_stats` in its one pass over the list: it hands over how
often each (date, status) pair occurs, and only the few distinct months are parsed here.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from newsletter.subscribers.store import STATUSES

LEFT = STATUSES[1:]  # unsubscribed, bounced, complained
MONTH = re.compile(r"(\d{4})-(\d{2})")
# A longer run of months in which nobody joined or left is one line, not a row a month: one stray
# date (an export's 1900-01-01 for "unknown", a 9999 typo) drew thousands of empty rows, in the
# terminal and as the stats report's chart (120,000 months: 2 minutes and a 140 MB page).
QUIET_MONTHS_SHOWN = 12


@dataclass(frozen=True)
class Month:
    """One month of a list: who joined, who left and how, and the readers subscribed at its end."""

    month: str  # YYYY-MM
    joined: int
    left: dict[str, int]  # status → rows that left this month with it
    readers: int
    quiet_before: int = 0  # months right before it in which nobody joined or left, not shown

    @property
    def unsubscribed(self) -> int:
        return self.left["unsubscribed"]

    @property
    def bounced(self) -> int:
        return self.left["bounced"]

    @property
    def complained(self) -> int:
        return self.left["complained"]


@dataclass
class ListGrowth:
    months: list[Month] = field(default_factory=list)
    undated_joins: int = 0   # rows without a readable subscribed_at
    undated_leaves: int = 0  # rows no longer subscribed without a readable updated_at

    @classmethod
    def from_counts(cls, dates: Counter[tuple[str, str, str]]) -> ListGrowth:
        """From how many rows hold each (status, subscribed_at, updated_at) prefix triple (the first
        7 characters of each date, its YYYY-MM where it is ISO 8601)."""
        joined: Counter[str] = Counter()
        left: dict[str, Counter[str]] = {status: Counter() for status in LEFT}
        growth = cls()
        for (status, joined_at, changed_at), count in dates.items():
            month = _month(joined_at)
            if month is None:
                growth.undated_joins += count
            else:
                joined[month] += count
            if status in left:
                month = _month(changed_at)
                if month is None:
                    growth.undated_leaves += count
                else:
                    left[status][month] += count
        seen = set(joined).union(*left.values())
        if not seen:
            return growth
        readers = growth.undated_joins - growth.undated_leaves
        quiet: list[Month] = []
        for month in _months_between(min(seen), max(seen)):
            readers += joined[month] - sum(left[status][month] for status in LEFT)
            shown = Month(month, joined[month], {status: left[status][month] for status in LEFT}, readers)
            if month not in seen:
                quiet.append(shown)
                continue
            if len(quiet) > QUIET_MONTHS_SHOWN:
                shown, quiet = Month(month, shown.joined, shown.left, readers, quiet_before=len(quiet)), []
            growth.months += [*quiet, shown]
            quiet = []
        return growth

    @property
    def span(self) -> int:
        """The months from the first to the last, quiet runs not shown included."""
        return sum(1 + month.quiet_before for month in self.months)

    def lines(self) -> list[str]:
        if not self.months:
            return ["  by month: no row holds a subscribed_at or updated_at date"]
        lines = [f"  {'month':<9}{'joined':>8}{'unsubscribed':>14}{'bounced':>9}{'complained':>12}{'readers':>9}"]
        for m in self.months:
            if m.quiet_before:
                lines.append(f"  … {m.quiet_before:,} months in which nobody joined or left …")
            lines.append(f"  {m.month:<9}{m.joined:>8}{m.unsubscribed:>14}{m.bounced:>9}{m.complained:>12}{m.readers:>9}")
        lines.append("  (joined: subscribed_at; left: the month of updated_at, the row's last change; "
                     "readers: subscribed at the month's end)")
        if self.undated_joins:
            lines.append(f"  {self.undated_joins} row{'s' if self.undated_joins != 1 else ''} without a subscribed_at "
                         f"date: counted as readers from before {self.months[0].month}")
        if self.undated_leaves:
            lines.append(f"  {self.undated_leaves} row{'s' if self.undated_leaves != 1 else ''} no longer subscribed "
                         f"without an updated_at date: counted as gone before {self.months[0].month}")
        return lines


def _month(prefix: str) -> str | None:
    match = MONTH.fullmatch(prefix)
    if match is None or not 1 <= int(match[2]) <= 12:
        return None
    return prefix


def _months_between(first: str, last: str) -> list[str]:
    """Every month from `first` to `last`, both YYYY-MM, so that a quiet month shows as one."""
    year, month = int(first[:4]), int(first[5:])
    months = []
    while (current := f"{year:04d}-{month:02d}") <= last:
        months.append(current)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months

