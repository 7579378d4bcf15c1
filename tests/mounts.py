"""Folders the tests make read-only or full, with mounts: the tests run as root, and root
writes through `chmod`. Where mounting is not allowed (no CAP_SYS_ADMIN), the test skips,
saying why."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here ({' '.join(done.stderr.split()) or done.returncode}): "
                    "a read-only or full folder needs `mount`")


def _unmount(path: Path) -> None:
    subprocess.run(["umount", str(path)], check=True, capture_output=True)


@contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """`folder` as a read-only bind mount of itself (writes fail with EROFS), until the block ends."""
    _mount("--bind", str(folder), str(folder))
    try:
        _mount("-o", "remount,ro,bind", str(folder))
        yield folder
    finally:
        _unmount(folder)


@contextmanager
def full_disk(folder: Path, size: str = "64k") -> Iterator[Path]:
    """An empty `folder` on a small file system filled to the last byte by `.filler` (writes
    fail with ENOSPC; removing the filler makes room again)."""
    folder.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder))
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
        _unmount(folder)
