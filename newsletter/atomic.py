"""Atomic file writes: a reader sees the old file or the new one, never half of either.

The new content goes to a temporary file beside the target (`<name>.tmp<pid>`), is
fsynced, and only when everything was written is it renamed over the target, and the
folder synced so the rename survives a crash. On any error the temporary file is
removed and the target is left as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

# Turns an OSError of the write itself (not of the caller's code) into the caller's error.
OnOSError = Callable[[Path, OSError], Exception]


def temporary_path(path: Path) -> Path:
    """The temporary file a write of `path` by this process uses."""
    return path.with_name(f"{path.name}.tmp{os.getpid()}")


def _reraise(path: Path, exc: OSError) -> Exception:
    return exc


@contextmanager
def atomic_file(
    path: Path, encoding: str = "utf-8", on_os_error: OnOSError = _reraise,
    before_replace: Callable[[Path], None] | None = None,
) -> Iterator[TextIO]:
    """A text handle whose content replaces `path` when the `with` block ends without error.

    `before_replace(temporary)` runs once the content is fsynced, just before the rename.
    OSErrors of opening, syncing and renaming are passed through `on_os_error(path, exc)`;
    errors raised inside the block propagate unchanged (and `path` is not touched).
    """
    temporary = temporary_path(path)
    try:
        handle = temporary.open("w", encoding=encoding, newline="")
    except OSError as exc:
        raise on_os_error(path, exc) from None
    try:
        with handle:
            yield handle
            try:
                handle.flush()
                os.fsync(handle.fileno())
            except OSError as exc:
                raise on_os_error(path, exc) from None
        if before_replace is not None:
            before_replace(temporary)
        try:
            os.replace(temporary, path)
        except OSError as exc:
            raise on_os_error(path, exc) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    try:  # the rename itself is durable only once the folder is synced
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError:
        pass  # the new file is in place; some file systems cannot sync a folder


def write_text(path: Path, text: str, on_os_error: OnOSError = _reraise) -> Path:
    """Write `text` to `path` atomically, creating its folder when needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, on_os_error=on_os_error) as handle:
        handle.write(text)
    return path
