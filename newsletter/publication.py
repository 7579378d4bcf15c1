"""`newsletter init`: a new publication from the skeleton shipped in the package."""

from __future__ import annotations

import shutil
from pathlib import Path

from newsletter.config import CONFIG_FILE
from newsletter.errors import ConfigError, where

SKELETON = Path(__file__).parent / "skeleton"

GITIGNORE = """\
build/
# Subscriber lists are personal data: keep them out of version control.
subscribers/*.csv
subscribers/*.lock
"""


def create_publication(directory: Path) -> list[Path]:
    """Copy the skeleton into `directory` (new or empty); returns the files written."""
    if (directory / CONFIG_FILE).exists():
        raise ConfigError(f"{where(directory / CONFIG_FILE)} already exists: {where(directory)} is a publication")
    if directory.exists() and any(directory.iterdir()):
        raise ConfigError(f"{where(directory)} is not empty: choose a new or empty folder")
    shutil.copytree(SKELETON, directory, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    (directory / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    return sorted(p for p in directory.rglob("*") if p.is_file())
