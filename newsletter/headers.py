"""Text for a mail header, the same whichever provider carries it (and the sign-up server).

Control characters would break a header: a CRLF ends it and starts another. One once
reached a request from newsletter.yaml's from.name and proof_prefix as it was; a
name from a list row, the subject and the publication's name all go through here.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit, urlunsplit

import idna

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


# Every printable ASCII character: `quote` leaves them (and the link's own %-escapes) as they are.
_URL_ASCII = "".join(map(chr, range(0x21, 0x7F)))


def ascii_url(url: str) -> str:
    """`url` in ASCII, as a header must carry it: an international host in IDNA form, every
    other non-ASCII character %-encoded as UTF-8 (RFC 3987 3.1), what a browser sends for it."""
    if url.isascii():
        return url
    parts = urlsplit(url)
    userinfo, at, host_port = parts.netloc.rpartition("@")
    host, colon, port = host_port.partition(":")  # an IPv6 host is ASCII, and left as it is
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError:  # not a name IDNA takes: %-encoded, which RFC 3986 also allows a host
            host = quote(host, safe=_URL_ASCII)
    netloc = quote(userinfo, safe=_URL_ASCII) + at + host + colon + port
    return urlunsplit((parts.scheme, netloc, *(quote(part, safe=_URL_ASCII) for part in parts[2:])))
