"""`newsletter init`: a new publication from the skeleton shipped in the package."""

from __future__ import annotations

import shutil
from pathlib import Path

from newsletter.config import CONFIG_FILE, find_root
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
    outer = _publication_around(directory)
    if outer is not None:
        # A publication inside another would have its issues and lists found by the outer
        # one's commands from some folders, and by its own from others.
        raise ConfigError(f"{where(directory)} is inside the publication in {outer} ({where(outer / CONFIG_FILE)}): "
                          "create the new one outside it")
    shutil.copytree(SKELETON, directory, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    (directory / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    return sorted(p for p in directory.rglob("*") if p.is_file())


def _publication_around(directory: Path) -> Path | None:
    """The publication that `directory` (which may not exist yet) would be created inside."""
    try:
        return find_root(directory.resolve().parent)
    except ConfigError:
        return None
