"""Helpers of the send tests: generated lists, a send made, a moment to schedule one at."""

from __future__ import annotations

import csv
import datetime as dt
import os
import threading
from pathlib import Path

from click.testing import Result

from tests.helpers import run

# The day the tests' sends are made (SendGrid's statistics are kept by day).
TODAY = dt.datetime.now(dt.UTC).date()

HEADER = ["email", "first_name", "last_name", "status", "tags", "subscribed_at", "updated_at"]


def write_list(root: Path, rows: list[list[str]], name: str = "main") -> Path:
    """Write `subscribers/NAME.csv` with these rows (email, first, last, status, tags)."""
    path = root / "subscribers" / f"{name}.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for row in rows:
            writer.writerow(list(row) + [""] * (len(HEADER) - len(row)))
    return path


def generated(count: int, status: str = "subscribed", prefix: str = "reader") -> list[list[str]]:
    return [[f"{prefix}{i:06d}@example.org", f"Reader{i}", "Smith", status, "members"] for i in range(count)]


def set_timeout(root: Path, seconds: float) -> None:
    config = root / "newsletter.yaml"
    config.write_text(config.read_text().replace("timeout: 30", f"timeout: {seconds}"))


def files_under(root: Path) -> list[Path]:
    return [Path(folder, name) for folder, _, names in os.walk(root) for name in names]


def send_in_background(results: list[Result], *args: str) -> threading.Thread:
    """`newsletter send issue-1 --yes ARGS` in a thread of its own; its result lands in `results`."""
    thread = threading.Thread(target=lambda: results.append(run("send", "issue-1", "--yes", *args)),
                              daemon=True)
    thread.start()
    return thread


def sent(issue: str = "issue-1") -> None:
    """`newsletter send ISSUE --yes`, which must succeed."""
    result = run("send", issue, "--yes")
    assert result.exit_code == 0, result.output


def at(**delta: float) -> str:
    """A --at value `delta` from now, in UTC, to the minute."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(**delta)).strftime("%Y-%m-%dT%H:%MZ")
