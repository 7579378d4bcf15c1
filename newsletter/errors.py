"""The exceptions the core raises. Only `cli.py` turns them into exit codes.

Every message says what went wrong, where (a file, and a line where known) and,
where it helps, what to do about it, so the CLI can print it as one line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote


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


# What a SendGrid API key looks like (`SG.` + id + `.` + secret), so that a key other than
# ours (one a server echoes, one pasted in a message) is hidden too. Taken wide, with the
# base64 characters and any further segments: a narrower pattern once hid the head of
# `SG.AbCdEf123456.ghIJkl-789_x.THIRDSEGMENTSECRET` and showed `***.THIRDSEGMENTSECRET`.
_SENDGRID_KEY = re.compile(r"SG\.[A-Za-z0-9_+/=-]{6,}(?:\.[A-Za-z0-9_+/=-]+)*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
HIDDEN = "***"

# The secrets this process holds (the API key once read or handed to a client). Every
# scrub hides them first, wherever it is called: a message scrubbed by pattern alone, and
# only later by the exact key, once kept the tail of a key the pattern did not fit.
_KNOWN_SECRETS: set[str] = set()


def keep_secret(secret: str) -> str:
    """Have every later `scrub` hide `secret` (as written and quoted); returns it."""
    if secret:
        _KNOWN_SECRETS.add(secret)
    return secret


def scrub(text: str, *secrets: str, limit: int | None = None) -> str:
    """`text` safe to show or store, on one line: every secret hidden first, then cut to `limit`.

    The order is the point: cutting first, or hiding by pattern first, can leave a piece
    of a key that no later replace recognises. The secrets are `secrets` and every one
    given to `keep_secret`, longest first; each is hidden as written and in the forms a
    library may quote it in (JSON or Python escapes, URL-encoding). Then anything shaped
    like a SendGrid key is hidden whether or not it is ours. Control characters become
    spaces and runs of white space one space, so a message stays one line. Used for every
    message that carries text from a server or a library.
    """
    for secret in sorted({*secrets, *_KNOWN_SECRETS} - {""}, key=len, reverse=True):
        for form in sorted({secret, json.dumps(secret)[1:-1], repr(secret)[1:-1], quote(secret, safe="")},
                           key=len, reverse=True):
            text = text.replace(form, HIDDEN)
    text = _SENDGRID_KEY.sub(HIDDEN, text)
    text = " ".join(_CONTROL.sub(" ", text).split())
    if limit is not None and len(text) > limit:
        text = text[:max(limit - 1, 0)].rstrip() + "…"
    return text


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
