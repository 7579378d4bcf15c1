"""Atomic file writes: a reader sees the old file or the new one, never half of either.

The new content goes to a temporary file beside the target (`<name>.tmp<pid>`), is
fsynced, and only when everything was written is it renamed over the target, and the
folder synced so the rename survives a crash. On any error the temporary file is
removed and the target is left as it was.

- A symbolic link is written through: the temporary file goes beside the file the link
  names, and is renamed over that file, so the link stays a link and the real file
  gets the content (a `subscribers/main.csv` linked into a synced folder, say).
- A target that is not a regular file (a FIFO, a device, `/dev/stdout`) cannot be
  replaced and would be destroyed by a rename: it is written directly, as it comes.
- Every OSError of the write itself (a full disk, a file-size limit, a folder that is
  not writable) is passed through `on_os_error`, so callers turn it into one line
  naming the file (`write_failure`: the folder, when it is the folder that refuses);
  errors of the caller's own code inside the block are left alone.
"""

from __future__ import annotations

import errno
import io
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from newsletter.errors import NewsletterError, where

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

# Turns an OSError of the write itself (not of the caller's code) into the caller's error.
OnOSError = Callable[[Path, OSError], Exception]


class CannotWrite(NewsletterError):
    """A file or folder of the publication could not be written (a read-only or full disk)."""


# What a folder answers when it takes no new file: a read-only disk or mount (EROFS), no
# write permission (EACCES), an immutable folder (EPERM). The folder is what to fix, so the
# message names it: a read-only publication once gave tracebacks in six commands.
FOLDER_REFUSES = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def write_failure(path: Path, exc: OSError) -> str:
    """The one line for an OSError of writing `path` (a file or a folder being made).

    `build/issue-1/email.html: cannot write it (No space left on device)`, or, when its
    folder refuses, `build/: cannot write in this folder (Read-only file system), so
    build/issue-1 was not written`.
    """
    reason = exc.strerror or str(exc)
    if exc.errno in FOLDER_REFUSES:
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        shown = where(folder)
        shown = str(folder.resolve()) if shown == "." else shown
        return f"{shown.rstrip('/')}/: cannot write in this folder ({reason}), so {where(path)} was not written"
    return f"{where(path)}: cannot write it ({reason})"


def cannot_write(path: Path, exc: OSError) -> NewsletterError:
    """The default: `build/issue-1/preview.html: cannot write it (No space left on device)`."""
    return CannotWrite(write_failure(path, exc))


def make_folder(path: Path, on_os_error: OnOSError = cannot_write) -> Path:
    """`path` made (with its parents) if missing; an OSError as `on_os_error` words it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise on_os_error(path, exc) from None
    return path


BUFFER = 1 << 16  # bytes written at a time: a write call per 64 KB, not per row


def temporary_path(path: Path) -> Path:
    """The temporary file a write of `path` by this process uses (beside the real file)."""
    real = real_path(path)
    return real.with_name(f"{real.name}.tmp{os.getpid()}")


def real_path(path: Path) -> Path:
    """The file a write of `path` replaces: `path` itself, or the file its links lead to."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def writes_in_place(path: Path) -> bool:
    """Whether `path` is written directly rather than replaced: it exists and is no regular file.

    Paths under /dev and /proc name open descriptors and devices (`/dev/stdout` leads to
    `/proc/self/fd/1`, which may lead to a pipe that has no name to rename over).
    """
    if str(path).startswith(("/dev/", "/proc/")):
        return True
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False


class _TrackedFile(io.FileIO):
    """The raw file under a write's text handle; it remembers an OSError of writing.

    The buffer above it calls `write` once per BUFFER bytes, so the check costs nothing
    per row, and a full disk met in the caller's `handle.write` is known for the write's.
    """

    failure: OSError | None = None

    def write(self, data: ReadableBuffer, /) -> int:
        try:
            return super().write(data)
        except OSError as exc:
            self.failure = exc
            raise


def _open_text(path: Path, encoding: str) -> tuple[TextIO, _TrackedFile]:
    raw = _TrackedFile(path, "w")
    try:
        handle = io.TextIOWrapper(io.BufferedWriter(raw, BUFFER), encoding=encoding, newline="")
    except BaseException:
        raw.close()
        raise
    return handle, raw


@contextmanager
def atomic_file(
    path: Path, encoding: str = "utf-8", on_os_error: OnOSError = cannot_write,
    before_replace: Callable[[Path], None] | None = None,
) -> Iterator[TextIO]:
    """A text handle whose content replaces `path` when the `with` block ends without error.

    `before_replace(temporary)` runs once the content is fsynced, just before the rename
    (not for a target written in place: see `writes_in_place`). OSErrors of opening,
    writing, syncing and renaming are passed through `on_os_error(path, exc)`; other
    errors raised inside the block propagate unchanged (and `path` is not touched).
    """
    if writes_in_place(path):
        with _in_place(path, encoding, on_os_error) as handle:
            yield handle
        return
    target = real_path(path)
    temporary = temporary_path(path)
    try:
        handle, raw = _open_text(temporary, encoding)
    except OSError as exc:
        raise on_os_error(path, exc) from None
    try:
        with _translated(path, raw, on_os_error), handle:
            with _translated(path, raw, on_os_error):
                yield handle
            try:
                handle.flush()
                os.fsync(handle.fileno())
            except OSError as exc:
                raise on_os_error(path, exc) from None
        if before_replace is not None:
            before_replace(temporary)
        try:
            os.replace(temporary, target)
        except OSError as exc:
            raise on_os_error(path, exc) from None
    except BaseException:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass  # on a read-only disk even this fails (EROFS): the write's own error is the one to tell
        raise
    try:  # the rename itself is durable only once the folder is synced
        folder = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError:
        pass  # the new file is in place; some file systems cannot sync a folder


@contextmanager
def _in_place(path: Path, encoding: str, on_os_error: OnOSError) -> Iterator[TextIO]:
    """Write a FIFO or a device directly (it cannot be replaced; a reader takes what comes)."""
    try:
        handle, raw = _open_text(path, encoding)
    except OSError as exc:
        raise on_os_error(path, exc) from None
    with _translated(path, raw, on_os_error), handle:
        with _translated(path, raw, on_os_error):
            yield handle
        handle.flush()


@contextmanager
def _translated(path: Path, raw: _TrackedFile, on_os_error: OnOSError) -> Iterator[None]:
    """An OSError of writing `raw` (a full disk) as `on_os_error` words it; the caller's own left alone.

    Used twice: around the caller's block, and around closing, which flushes what is left.
    """
    try:
        yield
    except OSError as exc:
        if raw.failure is None:
            raise
        raise on_os_error(path, exc) from None


def write_text(path: Path, text: str, on_os_error: OnOSError = cannot_write) -> Path:
    """Write `text` to `path` atomically, creating its folder when needed."""
    make_folder(real_path(path).parent, lambda _folder, exc: on_os_error(path, exc))
    with atomic_file(path, on_os_error=on_os_error) as handle:
        handle.write(text)
    return path
