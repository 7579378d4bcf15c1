"""Text for a mail header, the same whichever provider carries it (and the sign-up server).

Control characters would break a header: a CRLF ends it and starts another. One once
reached a request from newsletter.yaml's from.name and proof_prefix as it was; a
name from a list row, the subject and the publication's name all go through here.
"""

from __future__ import annotations

import re

ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058: the List-Unsubscribe-Post value, and the body of its POST

HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f]+")
_SPACES = re.compile(r"\s{2,}")


def header_text(text: str, unsafe: re.Pattern[str] = HEADER_UNSAFE) -> str:
    """`text` for a header (a subject, a name): each run of `unsafe` characters (control
    characters, CR and LF among them) one space, on one line."""
    text = text.strip()
    if unsafe.search(text):
        text = _SPACES.sub(" ", unsafe.sub(" ", text)).strip()
    return text
