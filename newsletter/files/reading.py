"""Reading a whole file a person gave, or one line saying which file could not be read and why."""

from __future__ import annotations

from pathlib import Path

from newsletter.errors import NewsletterError, where


def read_file(path: Path, error: type[NewsletterError], what: str = "it") -> bytes:
    """The bytes of `path`; `error` ("<path>: cannot read <what> (<reason>)") when the system refuses.

    Bytes, not text: each reader decodes by its own rule (an article is UTF-8 and says at
    which line it is not; a submission is judged by `textencoding`).
    """
    try:
        return path.read_bytes()
    except OSError as exc:
        raise error(f"{where(path)}: cannot read {what} ({exc.strerror or exc})") from None
