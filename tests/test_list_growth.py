"""`subscribers stats`: the list's growth by month, from the dates the list holds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.helpers import run
from tests.send_helpers import write_list


def months_shown(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(number for number, line in enumerate(lines) if line.split()[:2] == ["month", "joined"])
    return lines[start:]


def test_growth_by_month_from_the_dates_the_list_holds(publication: Path) -> None:
    write_list(publication, [
        ["ada@example.org", "Ada", "", "subscribed", "", "2025-11-02T09:00:00Z", "2025-11-02T09:00:00Z"],
        ["bo@example.org", "Bo", "", "subscribed", "", "2025-11-20T09:00:00Z", "2026-01-05T09:00:00Z"],
        ["cy@example.org", "Cy", "", "unsubscribed", "", "2025-11-21T09:00:00Z", "2026-02-10T09:00:00Z"],
        ["di@example.org", "Di", "", "bounced", "", "2026-01-03T09:00:00Z", "2026-02-28T23:59:59Z"],
        ["ed@example.org", "Ed", "", "complained", "", "2026-02-01T09:00:00Z", "2026-02-14T09:00:00Z"],
        ["fay@example.org", "Fay", "", "subscribed", "", "", ""],  # imported without a date
    ])
    result = run("subscribers", "stats")
    assert result.exit_code == 0, result.output
    assert months_shown(result.output) == [
        "  month      joined  unsubscribed  bounced  complained  readers",
        "  2025-11         3             0        0           0        4",
        "  2025-12         0             0        0           0        4",  # a quiet month still shows
        "  2026-01         1             0        0           0        5",  # Bo's edit in January is no leaving
        "  2026-02         1             1        1           1        3",
        "  (joined: subscribed_at; left: the month of updated_at, the row's last change; "
        "readers: subscribed at the month's end)",
        "  1 row without a subscribed_at date: counted as readers from before 2025-11",
    ]


def test_an_unsubscribe_shows_in_this_months_row(publication: Path) -> None:
    """The sample list, after `subscribers remove`: the reader leaves in the month it was done."""
    assert run("subscribers", "remove", "tomasz@example.org").exit_code == 0
    shown = months_shown(run("subscribers", "stats").output)
    this_month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    [row] = [line.split() for line in shown if line.split()[:1] == [this_month]]
    assert row[2] == "1" and row[-1] == "4"  # 5 subscribed in the sample, one gone


def test_a_list_without_dates_says_so(publication: Path) -> None:
    write_list(publication, [["ada@example.org", "Ada", "", "subscribed"]])
    result = run("subscribers", "stats")
    assert result.exit_code == 0
    assert "  by month: no row holds a subscribed_at or updated_at date" in result.output.splitlines()


def test_a_long_run_of_quiet_months_is_one_line(publication: Path) -> None:
    """One stray date (an export's 1900-01-01 for "unknown") printed a row for each of 1,500 empty months."""
    write_list(publication, [
        ["ada@example.org", "Ada", "", "subscribed", "", "1900-01-01T00:00:00Z", "1900-01-01T00:00:00Z"],
        ["bo@example.org", "Bo", "", "subscribed", "", "2025-11-20T09:00:00Z", "2025-11-20T09:00:00Z"],
        ["cy@example.org", "Cy", "", "unsubscribed", "", "2025-11-21T09:00:00Z", "2026-02-10T09:00:00Z"],
    ])
    result = run("subscribers", "stats")
    assert result.exit_code == 0, result.output
    assert months_shown(result.output)[:7] == [
        "  month      joined  unsubscribed  bounced  complained  readers",
        "  1900-01         1             0        0           0        1",
        "  … 1,509 months in which nobody joined or left …",
        "  2025-11         2             0        0           0        3",
        "  2025-12         0             0        0           0        3",  # a short quiet run still shows
        "  2026-01         0             0        0           0        3",
        "  2026-02         0             1        0           0        2",
    ]
