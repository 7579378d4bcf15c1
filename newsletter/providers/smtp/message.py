"""One MIME message per recipient, as an SMTP server receives it.

An issue is rendered once, with merge-field tags in both parts (see `merge`). Over
SMTP each recipient gets a whole message of their own: their greeting and their
unsubscribe link filled in, `To` naming them and nobody else. Building each message
with `email.message.EmailMessage` costs about 3.4 ms here (a send of 10,000 spends
34 s of CPU on it), so each part (text, then HTML) is split at its merge tags once and
its literal pieces made ready once, in both the encodings it may go in (see `_Part`): as
written (7bit or 8bit) where its lines allow, else quoted-printable.

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
from newsletter.headers import ONE_CLICK, ascii_url, header_text

SOFT_BREAK = b"=\n"
WIRE_SOFT_BREAK = b"=\r\n"
_LINE_START_DOT = re.compile(rb"(?m)^\.")
# SMTP's limit on a line, 998 octets and its CRLF (RFC 5321 4.5.3.1.6), which an 8bit part must keep.
LONGEST_LINE = 998


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


def _address_header(name: str, address: Address) -> str:
    """`Name: Display name <email>`; folded where the line would pass SMTP's 998 octets.

    `mailbox` writes the name as one quoted string or encoded word: a reader's name of
    1,000 letters made a `To` line the server refused their message for (`500 Line too
    long`). Such a name is written as encoded words, one a line (RFC 2047 readers join
    them); a name of the usual length keeps its one line.
    """
    line = f"{name}: {mailbox(address)}"
    display = header_text(address.name)
    if len(line.encode()) < LONGEST_LINE or not display:
        return line
    folded = Header(display, "utf-8", maxlinelen=78, header_name=name).encode(linesep="\n")
    return f"{name}: {folded}\n <{ascii_address(address.email)}>"


def _qp(text: str) -> bytes:
    """`text` (LF line ends) quoted-printable, each CR that is not a line end written `=0D`.

    binascii copies a CR alone as it is, and on the wire it went bare: RFC 5321 forbids
    it, and `\\r.\\r\\n` in a list cell is what SMTP smuggling ends DATA early with on some
    servers. Each stretch between CRs is encoded on its own, the `=0D` on a line of its own
    between soft breaks, so every line stays as short as binascii makes it.
    """
    if "\r" not in text:
        return binascii.b2a_qp(text.encode("utf-8"), istext=True)
    return b"=\n=0D=\n".join(binascii.b2a_qp(stretch.encode("utf-8"), istext=True) for stretch in text.split("\r"))


@dataclass(frozen=True)
class _Piece:
    """A part between two merge tags: its literal text encoded once, then the tag after it."""

    encoded: bytes
    field: merge.MergeField | None


def _on_the_wire(chunk: bytes) -> bytes:
    """`chunk`, which starts a line, as SMTP's DATA carries it: CRLF line ends, a leading dot
    doubled (RFC 5321 4.5.2), what smtplib's `data` does to a whole message each time."""
    chunk = chunk.replace(b"\n", b"\r\n")
    return _LINE_START_DOT.sub(b"..", chunk) if b"." in chunk else chunk


class _Part:
    """One part (the text or the HTML) cut at its merge tags, its literal pieces made ready once.

    Each recipient's part goes as it is written (`7bit`, or `8bit` where it is UTF-8) when it
    can: every line within SMTP's 998 octets with their values in, no bare CR or NUL, and a
    server that takes 8-bit data (8BITMIME) for one that is not ASCII. That is what most
    mail carries, and the smallest: quoted-printable writes each `=` of the HTML's
    attributes as `=3D` and breaks every 76 characters, which made each message a third
    longer in lines, and a receiving server's work grows with them (a send to aiosmtpd ran
    at 0.7x the speed of the same message in 8bit). A part that cannot go as written is
    quoted-printable:

    - the literal pieces are encoded once, by `binascii` (C), and joined per recipient with
      their values, each encoded on its own;
    - a soft line break (`=` at the end of a line, RFC 2045 6.7) ends every piece, so each
      piece's lines stay under 76 characters whatever stands beside it, and the decoded
      part is exactly the filled-in text.
    """

    def __init__(self, document: str, content_type: str) -> None:
        document = document.replace("\r\n", "\n")
        literal: list[str] = []
        fields: list[merge.MergeField | None] = []
        tags_by_line: dict[int, list[int]] = {}  # where a line starts: the fields on it, by index
        start = 0
        for index, match in enumerate(merge.TAG_PATTERN.finditer(document)):
            literal.append(document[start:match.start()])
            fields.append(merge.fields_in(match[0])[0])
            tags_by_line.setdefault(document.rfind("\n", 0, match.start()) + 1, []).append(index)
            start = match.end()
        literal.append(document[start:])
        fields.append(None)
        self._fields = tuple(fields)
        # The longest line as written, its tags counted as text: with every value's length
        # added, a bound on the longest line of any recipient's part (the quick check).
        self._longest = max(len(line.encode("utf-8")) for line in document.split("\n"))
        # Each line that holds tags, its length without them, and which values go in it: the
        # exact check, for a reader whose values fail the quick one (a name of 400 letters).
        self._tagged_lines = tuple(
            (_octets_without_tags(document, line_start), tuple(indices)) for line_start, indices in tags_by_line.items())
        longest_bare = max((length for length, _ in self._tagged_lines), default=0)
        untagged = (len(line.encode("utf-8")) for line in document.split("\n") if not merge.TAG_PATTERN.search(line))
        self._as_written = ("\r" not in document and "\0" not in document
                            and max(longest_bare, max(untagged, default=0)) < LONGEST_LINE)
        self._ascii = document.isascii()
        self._qp = tuple(_Piece(_qp(text), field) for text, field in zip(literal, fields, strict=True))
        # Each QP piece starts a line (after the part's headers, or a soft break): ready for DATA once.
        self._wire_qp = tuple(_Piece(_on_the_wire(piece.encoded), piece.field) for piece in self._qp)
        raw = [text.encode("utf-8") for text in literal]
        self._raw = tuple(raw)
        # As written, a piece starts a line only where what stands before it ends one: its inner
        # line starts are dot-doubled now, its first by `_joined` when it does start a line.
        self._wire_raw = tuple(piece.replace(b"\n", b"\r\n").replace(b"\n.", b"\n..") for piece in raw)
        self._heads = {
            (encoding, wire): _on_the_wire(head) if wire else head
            for encoding in ("7bit", "8bit", "quoted-printable") for wire in (False, True)
            for head in [f'Content-Type: {content_type}; charset="utf-8"\n'
                         f"Content-Transfer-Encoding: {encoding}\n\n".encode("ascii")]
        }

    def filled(self, values: Mapping[str, str], *, wire: bool, eight_bit: bool) -> bytes:
        """This part for one recipient, its headers first: as written where it can go so, else
        quoted-printable; with `wire`, as DATA carries it (CRLF, leading dots doubled)."""
        fills = [field.value_for(values) if field is not None else "" for field in self._fields]
        if self._as_written:
            encoded = [value.encode("utf-8") for value in fills]
            ascii_ = self._ascii and all(value.isascii() for value in encoded)
            if ((ascii_ or eight_bit) and self._fits(encoded)
                    and not any(b"\n" in value or b"\r" in value or b"\0" in value for value in encoded)):
                head = self._heads["7bit" if ascii_ else "8bit", wire]
                return head + _joined(self._wire_raw if wire else self._raw, encoded, wire)
        out = [self._heads["quoted-printable", wire]]
        soft_break = WIRE_SOFT_BREAK if wire else SOFT_BREAK
        for piece, value in zip(self._wire_qp if wire else self._qp, fills, strict=True):
            out.append(piece.encoded)
            out.append(soft_break)
            if piece.field is not None:
                encoded_value = _qp(value.replace("\r\n", "\n"))
                out.append(_on_the_wire(encoded_value) if wire else encoded_value)
                out.append(soft_break)
        return b"".join(out)


    def _fits(self, values: list[bytes]) -> bool:
        """Whether every line, with these values in, stays within SMTP's 998 octets."""
        if self._longest + sum(map(len, values)) < LONGEST_LINE:  # nearly every reader: one sum
            return True
        return all(length + sum(len(values[index]) for index in indices) < LONGEST_LINE
                   for length, indices in self._tagged_lines)


def _octets_without_tags(document: str, line_start: int) -> int:
    line_end = document.find("\n", line_start)
    line = document[line_start:line_end if line_end >= 0 else len(document)]
    return len(merge.TAG_PATTERN.sub("", line).encode("utf-8"))


def _joined(pieces: tuple[bytes, ...], values: list[bytes], wire: bool) -> bytes:
    """The literal pieces with each recipient's values between them (no value holds a line break).

    On the wire a piece or value that starts a line with a dot has it doubled here: the
    first piece always starts one, a later one when everything before it ends a line.
    """
    if not wire:
        return b"".join(chunk for pair in zip(pieces, values, strict=True) for chunk in pair)
    out: list[bytes] = []
    line_start = True
    for pair in zip(pieces, values, strict=True):
        for chunk in pair:
            if chunk:
                out.append(b"." + chunk if line_start and chunk[:1] == b"." else chunk)
                line_start = chunk[-1:] == b"\n"
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
        self._text = _Part(text, "text/plain")
        self._html = _Part(html, "text/html")
        self._one_click = one_click
        self._identity = identity
        self._domain = ascii_address("x@" + (message_id_domain or sender.email.rpartition("@")[2])).rpartition("@")[2]
        # `=_` and 96 random bits: quoted-printable text never holds `=_` (it writes `=` as `=3D`),
        # and text as written does not guess the rest, so no part can end the body early.
        self._boundary = f"=_{secrets.token_hex(12)}"
        self._dated: tuple[int, bytes] = (0, b"")
        shared = [
            _address_header("From", sender),
            *([_address_header("Reply-To", reply_to)] if reply_to is not None else []),
            _encoded_header("Subject", subject),
            _encoded_header("List-Id", list_id),
            "MIME-Version: 1.0",
        ]
        self._shared_headers = "\n".join(shared).encode("ascii")
        body = f'Content-Type: multipart/alternative; boundary="{self._boundary}"\n\n--{self._boundary}\n'
        between, end = f"\n--{self._boundary}\n", f"\n--{self._boundary}--\n"
        # Each as a file holds it and as DATA carries it (`message(wire=True)`): no pass over each whole message.
        self._frame = {wire: tuple(_on_the_wire(part.encode("ascii")) if wire else part.encode("ascii")
                                   for part in (body, between, end)) for wire in (False, True)}

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

    def message(self, recipient: Recipient, *, wire: bool = False, eight_bit: bool = True) -> bytes:
        """The whole message for `recipient`, lines ending in LF (as a file holds it); with `wire`,
        as SMTP's DATA carries it: CRLF line ends, leading dots doubled (the final `.` not added).

        Without `eight_bit` (a server that does not offer 8BITMIME) every byte is ASCII: a part
        that is not goes quoted-printable. A message that is not ASCII needs `BODY=8BITMIME`.
        """
        headers = [
            self._shared_headers,
            _address_header("To", Address(recipient.email, recipient.name)).encode(),
            self._date(),
            f"Message-ID: {self.message_id(recipient.email)}".encode("ascii"),
        ]
        if recipient.unsubscribe_url:
            # ASCII: a link with accents (`/désinscription`) made a header of UTF-8, which a server
            # without 8BITMIME refuses and none may take without SMTPUTF8.
            headers.append(f"List-Unsubscribe: <{ascii_url(header_text(recipient.unsubscribe_url))}>".encode())
            if self._one_click:
                headers.append(f"List-Unsubscribe-Post: {ONE_CLICK}".encode("ascii"))
        for name, value in recipient.headers.items():
            headers.append(_encoded_header(header_text(name), value).encode("ascii"))
        head = b"\n".join(headers) + b"\n"
        if wire:  # a header line never starts with a dot: a folded one starts with a space
            head = head.replace(b"\n", b"\r\n")
        body, between, end = self._frame[wire]
        return b"".join((
            head, body, self._text.filled(recipient.values, wire=wire, eight_bit=eight_bit),
            between, self._html.filled(recipient.values, wire=wire, eight_bit=eight_bit), end,
        ))
