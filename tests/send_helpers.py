"""Helpers of the send tests: generated lists, the CLI run in-process (at a terminal double)."""

from __future__ import annotations

import csv
import os
import threading
from pathlib import Path

from click.testing import Result

from newsletter.terminal import Terminal
from tests.terminal_double import invoke

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


def newsletter(*args: str, terminal: Terminal | None = None) -> Result:
    """Run `newsletter ARGS` in-process, as a user without a terminal would (unless `terminal` says)."""
    return invoke(args, terminal)


def set_timeout(root: Path, seconds: float) -> None:
    config = root / "newsletter.yaml"
    config.write_text(config.read_text().replace("timeout: 30", f"timeout: {seconds}"))


def files_under(root: Path) -> list[Path]:
    return [Path(folder, name) for folder, _, names in os.walk(root) for name in names]


def send_in_background(results: list[Result], *args: str) -> threading.Thread:
    """`newsletter send issue-1 --yes ARGS` in a thread of its own; its result lands in `results`."""
    thread = threading.Thread(target=lambda: results.append(newsletter("send", "issue-1", "--yes", *args)),
                              daemon=True)
    thread.start()
    return thread
