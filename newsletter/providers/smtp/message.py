"""One MIME message per recipient, as an SMTP server receives it.

An issue is rendered once, with merge-field tags in both parts (see `merge`). Over
SMTP each recipient gets a whole message of their own: their greeting and their
unsubscribe link filled in, `To` naming them and nobody else. Building each message
with `email.message.EmailMessage` costs about 3.4 ms here (a send of 10,000 spends
34 s of CPU on it), so the parts are encoded once, as pieces:

- each part (text, then HTML) is split at its merge tags; the literal pieces are
  quoted-printable encoded once, by `binascii` (C), and joined per recipient with
  their values, each encoded on its own;
- a soft line break (`=` at the end of a line, RFC 2045 6.7) ends every piece, so
  each piece's lines stay under 76 characters whatever stands beside it, and the
  decoded part is exactly the filled-in text;
- the boundary starts with `=_`, which quoted-printable text can never hold (it
  writes `=` as `=3D`), so no part can end the body early.

The headers come from the standard library's own encoders (`email.utils.formataddr`,
`email.header.Header`): RFC 2047 encoded words where a name or the subject needs them.
The tests parse every message with the `email` package, as a mail program would.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.header import Header
from email.utils import formataddr, formatdate

import idna

from newsletter import merge
from newsletter.config import Address
from newsletter.headers import ONE_CLICK, header_text

SOFT_BREAK = b"=\n"
WIRE_SOFT_BREAK = b"=\r\n"
_LINE_START_DOT = re.compile(rb"(?m)^\.")


def _encoded_header(name: str, value: str) -> str:
    """`Name: value` folded at 78 columns, RFC 2047-encoded where `value` is not ASCII.

    An ASCII value with nowhere to fold (a link) is written whole on its line: folding
    it before its first character would put a space in front of it.
    """
    value = header_text(value)
    if value.isascii() and " " not in value:
        return f"{name}: {value}"
    charset = "us-ascii" if value.isascii() else "utf-8"
    return f"{name}: " + Header(value, charset, maxlinelen=78, header_name=name).encode(linesep="\n")


def ascii_address(email: str) -> str:
    """`email` with its domain in IDNA (`xn--`) form: what a server without SMTPUTF8 takes."""
    local, _, domain = email.rpartition("@")
    if domain.isascii():
        return email
    return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"


def needs_smtputf8(email: str) -> bool:
    """An address whose local part is not ASCII: only a server that offers SMTPUTF8 takes it."""
    return not email.rpartition("@")[0].isascii()


def mailbox(address: Address) -> str:
    """`Name <email>` for a header, the name quoted or RFC 2047-encoded as it needs.

    An address with a non-ASCII local part is written as UTF-8 (RFC 6532): the message
    then goes only to a server that offers SMTPUTF8 (`needs_smtputf8`).
    """
    email = ascii_address(address.email)
    if email.isascii():
        return formataddr((header_text(address.name), email), charset="utf-8")
    local, _, domain = email.rpartition("@")
    return formataddr((header_text(address.name), f"x@{domain}"), charset="utf-8").replace("<x@", f"<{local}@")


def _qp(text: str) -> bytes:
    return binascii.b2a_qp(text.encode("utf-8"), istext=True)


@dataclass(frozen=True)
class _Piece:
    """A part between two merge tags: its literal text encoded once, then the tag after it."""

    encoded: bytes
    field: merge.MergeField | None


def _pieces(document: str) -> tuple[_Piece, ...]:
    """`document` cut at its merge tags, the literal text quoted-printable encoded."""
    document = document.replace("\r\n", "\n")
    pieces: list[_Piece] = []
    start = 0
    for match in merge.TAG_PATTERN.finditer(document):
        pieces.append(_Piece(_qp(document[start:match.start()]), merge.fields_in(match[0])[0]))
        start = match.end()
    pieces.append(_Piece(_qp(document[start:]), None))
    return tuple(pieces)


def _on_the_wire(chunk: bytes) -> bytes:
    """`chunk`, which starts a line, as SMTP's DATA carries it: CRLF line ends, a leading dot
    doubled (RFC 5321 4.5.2), what smtplib's `data` does to a whole message each time."""
    chunk = chunk.replace(b"\n", b"\r\n")
    return _LINE_START_DOT.sub(b"..", chunk) if b"." in chunk else chunk


def _wire_pieces(pieces: tuple[_Piece, ...]) -> tuple[_Piece, ...]:
    # Each piece starts a line (after the part's headers, or a soft break): made ready for DATA once.
    return tuple(_Piece(_on_the_wire(piece.encoded), piece.field) for piece in pieces)


def _filled(pieces: tuple[_Piece, ...], values: Mapping[str, str], wire: bool = False) -> bytes:
    """The encoded part for one recipient: every piece and value, each ended by a soft break."""
    out: list[bytes] = []
    soft_break = WIRE_SOFT_BREAK if wire else SOFT_BREAK
    for piece in pieces:
        out.append(piece.encoded)
        out.append(soft_break)
        if piece.field is not None:
            value = _qp(piece.field.value_for(values).replace("\r\n", "\n"))
            out.append(_on_the_wire(value) if wire else value)
            out.append(soft_break)
    return b"".join(out)


@dataclass(frozen=True)
class Recipient:
    """Who one message is for: the address as sent, the name, their merge values."""

    email: str
    name: str
    values: Mapping[str, str]  # every merge field's value, the unsubscribe link included
    unsubscribe_url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # more, as given (a sign-up email's)


class MessageBuilder:
    """Builds the messages of one issue (or one proof): everything shared encoded once."""

    def __init__(
        self, *, sender: Address, reply_to: Address | None, subject: str, text: str, html: str,
        list_id: str, one_click: bool, identity: str, message_id_domain: str = "",
    ) -> None:
        """`identity` names the issue in Message-IDs; `one_click`: the unsubscribe link
        takes RFC 8058's one-click POST (it is the publication's own handler); Message-IDs are
        at `message_id_domain`, the sender's domain unless given."""
        self._text = _pieces(text)
        self._html = _pieces(html)
        self._one_click = one_click
        self._identity = identity
        self._domain = ascii_address("x@" + (message_id_domain or sender.email.rpartition("@")[2])).rpartition("@")[2]
        self._boundary = f"=_{secrets.token_hex(12)}"
        self._dated: tuple[int, bytes] = (0, b"")
        shared = [
            f"From: {mailbox(sender)}",
            *([f"Reply-To: {mailbox(reply_to)}"] if reply_to is not None else []),
            _encoded_header("Subject", subject),
            _encoded_header("List-Id", list_id),
            "MIME-Version: 1.0",
        ]
        self._shared_headers = "\n".join(shared).encode("ascii")
        self._body = (
            f'Content-Type: multipart/alternative; boundary="{self._boundary}"\n\n'
            f"--{self._boundary}\n"
            'Content-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: quoted-printable\n\n'
        ).encode("ascii")
        self._between = (
            f"\n--{self._boundary}\n"
            'Content-Type: text/html; charset="utf-8"\nContent-Transfer-Encoding: quoted-printable\n\n'
        ).encode("ascii")
        self._end = f"\n--{self._boundary}--\n".encode("ascii")
        # The same, as DATA carries them (`message(wire=True)`): no pass over each whole message.
        self._wire_text, self._wire_html = _wire_pieces(self._text), _wire_pieces(self._html)
        self._wire_body, self._wire_between, self._wire_end = (
            _on_the_wire(part) for part in (self._body, self._between, self._end))

    def _date(self) -> bytes:
        """`Date: ...` for now, written once a second (email.utils takes ~10 µs to write it)."""
        second = int(time.time())
        dated = self._dated
        if dated[0] != second:
            dated = self._dated = (second, f"Date: {formatdate(second, usegmt=True)}".encode("ascii"))
        return dated[1]

    def message_id(self, email: str) -> str:
        """The same Message-ID for the same issue and address on every run.

        A message posted again after an uncertain end (`--retry-uncertain`) then
        carries the Message-ID of the first, which receivers such as Gmail use to
        drop the second copy. It holds a digest, not the address.
        """
        digest = hashlib.sha256(f"{self._identity}\0{email.lower()}".encode()).hexdigest()[:32]
        return f"<{digest}@{self._domain}>"

    def message(self, recipient: Recipient, *, wire: bool = False) -> bytes:
        """The whole message for `recipient`, lines ending in LF (as a file holds it); with `wire`,
        as SMTP's DATA carries it: CRLF line ends, leading dots doubled (the final `.` not added)."""
        headers = [
            self._shared_headers,
            f"To: {mailbox(Address(recipient.email, recipient.name))}".encode(),
            self._date(),
            f"Message-ID: {self.message_id(recipient.email)}".encode("ascii"),
        ]
        if recipient.unsubscribe_url:
            headers.append(f"List-Unsubscribe: <{header_text(recipient.unsubscribe_url)}>".encode())
            if self._one_click:
                headers.append(f"List-Unsubscribe-Post: {ONE_CLICK}".encode("ascii"))
        for name, value in recipient.headers.items():
            headers.append(_encoded_header(header_text(name), value).encode("ascii"))
        head = b"\n".join(headers) + b"\n"
        if wire:  # a header line never starts with a dot: a folded one starts with a space
            return b"".join((
                head.replace(b"\n", b"\r\n"), self._wire_body,
                _filled(self._wire_text, recipient.values, True), self._wire_between,
                _filled(self._wire_html, recipient.values, True), self._wire_end,
            ))
        return b"".join((
            head, self._body,
            _filled(self._text, recipient.values), self._between,
            _filled(self._html, recipient.values), self._end,
        ))

