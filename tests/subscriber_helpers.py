"""Helpers for the subscriber tests: read a list back as people would see it, import a file."""

from __future__ import annotations

import csv
from pathlib import Path

from click.testing import Result

from tests.helpers import run

MAIN_LIST = Path("subscribers/main.csv")


def rows(path: Path = MAIN_LIST) -> dict[str, dict[str, str]]:
    """The rows of a list file by address, each as {column: value}."""
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["email"]: row for row in csv.DictReader(handle)}


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """A file as a spreadsheet or a form tool would leave it (bytes exactly as given)."""
    path.write_bytes(text.encode(encoding))
    return path


def import_csv(text: str, *options: str, name: str = "people.csv", encoding: str = "utf-8") -> Result:
    """Write `text` to the file `name`, then `newsletter subscribers import NAME OPTIONS...`."""
    write(Path(name), text, encoding)
    return run("subscribers", "import", name, *options)
