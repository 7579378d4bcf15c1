"""A publication's files from what the package ships: `newsletter init` and `templates eject`."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.files.atomic import make_folder, write_text
from newsletter.config import CONFIG_FILE, Settings, find_root
from newsletter.errors import ConfigError, where
from newsletter.render import PACKAGE_TEMPLATES

SKELETON = Path(__file__).parent / "skeleton"
# Named as `newsletter new` names issues, so that the next one is issue-2.
FIRST_ISSUE = "issue-1"

GITIGNORE = """\
build/
# Subscriber lists are personal data: keep them out of version control.
subscribers/*.csv
subscribers/*.lock
# Send ledgers: who has received each issue (addresses, so personal data too). Back them up.
sent/
# `newsletter backup` copies sent/ and subscribers/ here: personal data as well.
backups/
# The sign-up server's records (`newsletter serve`): addresses and IP addresses, personal data.
signup.sqlite*
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
    # The first issue is dated today, as `newsletter new` dates the next ones.
    first = directory / "issues" / FIRST_ISSUE / "issue.yaml"
    first.write_text(first.read_text(encoding="utf-8").replace("date: 2026-01-01", f"date: {dt.date.today()}"),
                     encoding="utf-8")
    return sorted(p for p in directory.rglob("*") if p.is_file())


def _publication_around(directory: Path) -> Path | None:
    """The publication that `directory` (which may not exist yet) would be created inside."""
    try:
        return find_root(directory.resolve().parent)
    except ConfigError:
        return None


@dataclass
class EjectReport:
    """The default templates copied into the publication, and those it already had."""

    copied: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)

    def lines(self) -> list[str]:
        lines = [f"copied {where(path)}" for path in self.copied]
        lines += [f"kept {where(path)}: it exists already (your version is left as it is)" for path in self.kept]
        if self.copied:
            lines.append("Edit the copies: a template in templates/ replaces the default of the same name.")
        return lines


def default_templates() -> list[str]:
    """The names of the templates the package ships."""
    return sorted(p.name for p in PACKAGE_TEMPLATES.iterdir() if p.is_file() and not p.name.startswith("."))


def eject_templates(settings: Settings, names: Sequence[str] = ()) -> EjectReport:
    """Copy the named default templates (all, without names) into the publication's `templates/`.

    A template the publication has already is never overwritten: named, it is an error
    (and nothing is copied); when ejecting all, it is kept and reported.
    """
    available = default_templates()
    unknown = [name for name in names if name not in available]
    if unknown:
        raise ConfigError(f"no default template {', '.join(unknown)}: the defaults are {', '.join(available)}")
    target = settings.templates_dir
    existing = [target / name for name in dict.fromkeys(names) if (target / name).exists()]
    if existing:
        raise ConfigError(f"{', '.join(where(p) for p in existing)} exists already: "
                          "move it aside to eject the default again (nothing was copied)")
    report = EjectReport()
    make_folder(target)
    for name in dict.fromkeys(names) if names else available:
        destination = target / name
        if destination.exists():
            report.kept.append(destination)
            continue
        # Atomic, as every file the project writes: a copy stopped by a full disk once left
        # a 0-byte template that blocked the next eject and failed `check`.
        write_text(destination, (PACKAGE_TEMPLATES / name).read_bytes().decode("utf-8"))
        report.copied.append(destination)
    return report
