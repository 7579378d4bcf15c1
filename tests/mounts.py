"""Folders the tests make read-only or full. The tests run as root, and root writes through
`chmod`: a read-only bind mount does it (writes fail with EROFS), else `chattr +i` on every
file and folder (EPERM), else the test skips, saying why; a full disk is a small tmpfs."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _run(*command: str) -> str:
    """Run `command`; "" when it worked, else why not, on one line."""
    try:
        done = subprocess.run(list(command), capture_output=True, text=True)
    except OSError as exc:
        return f"{command[0]}: {exc.strerror}"
    return "" if done.returncode == 0 else " ".join(done.stderr.split()) or f"{command[0]} exited {done.returncode}"


@contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """`folder` and everything in it unwritable until the block ends."""
    why_not_mount = _run("mount", "--bind", str(folder), str(folder))
    if not why_not_mount:
        try:
            why_not_mount = _run("mount", "-o", "remount,ro,bind", str(folder))
            if not why_not_mount:
                yield folder
                return
        finally:
            _run("umount", str(folder))
    why_not_chattr = _run("chattr", "-R", "+i", str(folder))
    if why_not_chattr:
        _run("chattr", "-R", "-i", str(folder))
        pytest.skip(f"cannot make {folder} read-only as root: mount: {why_not_mount}; chattr: {why_not_chattr}")
    try:
        yield folder
    finally:
        assert not _run("chattr", "-R", "-i", str(folder))


@contextmanager
def full_disk(folder: Path, size: str = "64k") -> Iterator[Path]:
    """An empty `folder` on a small file system filled to the last byte by `.filler` (writes
    fail with ENOSPC; removing the filler makes room again)."""
    folder.mkdir(parents=True, exist_ok=True)
    why_not = _run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder))
    if why_not:
        pytest.skip(f"cannot mount a small tmpfs for a full disk: {why_not}")
    try:
        filler = folder / ".filler"
        try:
            with filler.open("wb") as handle:
                while True:
                    handle.write(b"x" * 512)
                    handle.flush()
        except OSError:
            pass
        yield folder
    finally:
        _run("umount", str(folder))
