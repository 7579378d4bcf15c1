"""The exceptions the core raises. Only `cli.py` turns them into exit codes.

Every message says what went wrong, where (a file, and a line where known) and,
where it helps, what to do about it, so the CLI can print it as one line.
"""

from __future__ import annotations

from pathlib import Path


class NewsletterError(Exception):
    """Base of every error a user can cause and fix."""


def where(path: Path | str, line: int | None = None) -> str:
    """`path:line` for messages, relative to the current directory when possible."""
    shown = str(path)
    try:
        shown = str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        pass
    return f"{shown}:{line}" if line else shown


class ConfigError(NewsletterError):
    """`newsletter.yaml` is missing, unreadable or invalid."""


class ContentError(NewsletterError):
    """An issue or an article is missing or invalid."""


class TemplateError(NewsletterError):
    """A template does not parse or refers to something that does not exist."""


class SubscriberError(NewsletterError):
    """A subscriber list or an imported file is invalid."""


class SendError(NewsletterError):
    """A send could not start or was stopped."""


class PreviewError(NewsletterError):
    """The preview cannot be served."""


class SendGridError(NewsletterError):
    """A call to SendGrid's API (other than mail send) failed; `status` is its HTTP status, if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
