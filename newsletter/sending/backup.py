"""`newsletter backup [DIR]`: one consistent copy of `sent/` and `subscribers/`.

Copying `sent/ISSUE.sqlite` file by file lost what its -wal held (restored, it said
"not sent yet" and the next send posted 10,000 again). Here every ledger is copied
with SQLite's backup API into a file that stands on its own, and every list whole,
while nothing changes them: the command holds each issue's send lock (refusing, in
one line, while a send runs) and each list's lock. What it writes is new files in a
new folder; restoring is copying its `sent/` and `subscribers/` back.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.config import Settings
from newsletter.errors import SendError, where
from newsletter.files.locking import FileLock
from newsletter.sending.ledger import SENT_DIR, Ledger, SendLock, fsync, lock_path, read_only
from newsletter.subscribers.store import lock_path as list_lock_path

BACKUPS_DIR = "backups"  # the default place: backups/YYYY-MM-DD-HHMMSS/, kept out of git like sent/
SUBSCRIBERS_DIR = "subscribers"


@dataclass
class BackupReport:
    folder: Path
    ledgers: list[Path] = field(default_factory=list)  # sent/ISSUE.sqlite and saved copies
    lists: list[Path] = field(default_factory=list)    # everything in subscribers/ but locks
    others: list[Path] = field(default_factory=list)   # the other files of sent/: erased.csv, erasure.key

    def lines(self) -> list[str]:
        parts = [f"{len(self.ledgers)} send ledger{'s' if len(self.ledgers) != 1 else ''}"]
        if self.others:
            parts.append(f"{', '.join(p.name for p in self.others)} of {SENT_DIR}/")
        parts.append(f"{len(self.lists)} file{'s' if len(self.lists) != 1 else ''} of {SUBSCRIBERS_DIR}/")
        return [f"Backed up {', '.join(parts[:-1])} and {parts[-1]} into {where(self.folder)}/.",
                f"To restore, copy its {SENT_DIR}/ and {SUBSCRIBERS_DIR}/ back into the publication "
                "(each ledger is whole: no -wal file goes with it)."]


def make_backup(settings: Settings, folder: Path | None = None) -> BackupReport:
    """Copy `sent/` and `subscribers/` into `folder` (new or empty), nothing sending meanwhile."""
    root = settings.root
    folder = folder if folder is not None else root / BACKUPS_DIR / time.strftime("%Y-%m-%d-%H%M%S")
    folder = folder if folder.is_absolute() else Path.cwd() / folder
    _check_target(root, folder)
    sent, subscribers = root / SENT_DIR, root / SUBSCRIBERS_DIR
    ledgers = sorted(sent.glob("*.sqlite")) if sent.is_dir() else []
    # Beside the ledgers: what an erasure keeps (erased.csv and erasure.key), copied as files.
    kept = [p for p in _data_files(sent) if p.suffix != ".sqlite"]
    lists = _data_files(subscribers)
    report = BackupReport(folder)
    with ExitStack() as held:
        for ledger in ledgers:
            if ".saved-" in ledger.name:
                continue
            lock = SendLock(lock_path(settings, ledger.stem))
            if not lock.try_acquire():
                raise SendError(f"a send of {ledger.stem} is running ({where(lock.path)} is locked): back up once "
                                "it is over; nothing was copied")
            held.callback(lock.release)
        for listing in lists:
            if listing.suffix == ".csv":
                list_lock = FileLock(list_lock_path(listing))
                list_lock.acquire()  # a list's writers hold it for one rewrite
                held.callback(list_lock.release)
        try:
            (folder / SENT_DIR).mkdir(parents=True, exist_ok=True)
            (folder / SUBSCRIBERS_DIR).mkdir(exist_ok=True)
        except OSError as exc:
            raise SendError(f"{where(folder)}: cannot make the backup folder ({exc.strerror or exc})") from None
        for ledger in ledgers:
            _copy_ledger(ledger, folder / SENT_DIR / ledger.name)
            report.ledgers.append(ledger)
        for other in kept:
            _copy_file(other, folder / SENT_DIR / other.name)
            report.others.append(other)
        for listing in lists:
            _copy_file(listing, folder / SUBSCRIBERS_DIR / listing.name)
            report.lists.append(listing)
    return report


def _data_files(folder: Path) -> list[Path]:
    """The files of `folder` that hold data: not locks, -wal/-shm files or temporary files."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix != ".lock" and not p.name.startswith(".")
                  and ".tmp" not in p.name and not p.name.endswith(("-wal", "-shm", "-journal")))


def _check_target(root: Path, folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise SendError(f"{where(folder)} already exists and is not an empty folder: give a new one")
    for kept in (root / SENT_DIR, root / SUBSCRIBERS_DIR):
        if folder.resolve().is_relative_to(kept.resolve()):
            raise SendError(f"{where(folder)} is inside {where(kept)}/: put the backup somewhere else")


def _copy_ledger(source: Path, target: Path) -> None:
    """A ledger through `Ledger` (so a damaged one is an error, and a killed send's -wal and
    mark are dealt with first, under the lock held); a saved copy as it is."""
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        if ".saved-" in source.name:
            db = read_only(source)
            copy = sqlite3.connect(temporary)
            try:
                db.backup(copy)
            finally:
                copy.close()
                db.close()
        else:
            ledger = Ledger(source, source.stem, create=False)
            try:
                ledger.recover()
                ledger.copy_to(temporary)
            finally:
                ledger.close()
        fsync(temporary)
        os.replace(temporary, target)
    except (sqlite3.Error, OSError) as exc:
        raise SendError(f"{where(source)}: cannot copy it to {where(target)} "
                        f"({getattr(exc, 'strerror', None) or exc}); the backup is incomplete") from None
    finally:
        temporary.unlink(missing_ok=True)


def _copy_file(source: Path, target: Path) -> None:
    """Copied whole into a temporary file, synced, then renamed: never a half-written list.
    Made with the source's permissions from the start: erasure.key is readable by its owner only."""
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        mode = source.stat().st_mode & 0o777
        with source.open("rb") as reader, os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                                            mode), "wb") as writer:
            shutil.copyfileobj(reader, writer)
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        raise SendError(f"{where(source)}: cannot copy it to {where(target)} ({exc.strerror or exc}); the backup "
                        "is incomplete") from None
    finally:
        temporary.unlink(missing_ok=True)

