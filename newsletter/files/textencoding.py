"""Which encoding a text file a person saved is in: the one rule every reader of such files uses.

UTF-16 with a BOM (Notepad's and Excel's "Unicode Text") is read as such. UTF-8 is tried
strictly first: text in any other encoding with a character past ASCII almost never
decodes as UTF-8, so success is proof. What fails is read as Windows-1252, what Word,
Outlook and Excel on Windows save as "plain text" or "CSV (Comma delimited)"; the five
bytes it leaves undefined make a clear error rather than a silent guess among dozens of
code pages, which is what a statistical detector would give on a short text.

The bytes come in chunks, so a file is judged in one pass without being held in memory
(a CSV import of a million rows); a submission passes its bytes as one chunk.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class TextEncoding:
    codec: str  # Python's name, for bytes.decode and open()
    name: str  # as a person reads it in a report


UTF8 = TextEncoding("utf-8", "UTF-8")
UTF8_BOM = TextEncoding("utf-8-sig", "UTF-8 with a BOM")
UTF16 = TextEncoding("utf-16", "UTF-16")
WINDOWS_1252 = TextEncoding("cp1252", "Windows-1252")

# The bytes Windows-1252 leaves undefined (looked for with bytes.find: a regular
# expression's character class took 30 ms a megabyte, find well under one).
_NOT_WINDOWS_1252 = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")


class UndecodableText(ValueError):
    """No encoding reads the text: the last one tried, the offset of its first bad byte, and why."""

    def __init__(self, encoding: TextEncoding, offset: int, byte: int, reason: str) -> None:
        super().__init__(f"{encoding.name}: byte 0x{byte:02X} at {offset}: {reason}")
        self.encoding, self.offset, self.byte, self.reason = encoding, offset, byte, reason


def text_encoding(chunks: Iterable[bytes]) -> TextEncoding:
    """The encoding of the text whose bytes are `chunks`, in one pass; UndecodableText if none.

    The candidates, in order: UTF-16 (only after its BOM), UTF-8, Windows-1252; a text
    that starts with UTF-8's BOM is UTF-8 or nothing.
    """
    pieces = iter(chunks)
    chunk = next(pieces, b"")
    if chunk.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        order = [UTF16, UTF8, WINDOWS_1252]
    elif chunk.startswith(codecs.BOM_UTF8):
        order = [UTF8_BOM]
    else:
        order = [UTF8, WINDOWS_1252]
    decoders = {encoding: codecs.getincrementaldecoder(encoding.codec)("strict")
                for encoding in order if encoding is not WINDOWS_1252}
    failed: dict[TextEncoding, tuple[int, int, str]] = {}
    offset = 0
    while True:
        following = next(pieces, None)
        ascii_only = chunk.isascii()  # most chunks of most files: valid in all but UTF-16, nothing to decode
        for encoding, decoder in decoders.items():
            if encoding in failed:
                continue
            held = len(decoder.getstate()[0])  # bytes of a character split across chunks
            if ascii_only and not held and encoding is not UTF16:
                continue
            try:
                decoder.decode(chunk, following is None)
            except UnicodeDecodeError as exc:
                start = max(exc.start - held, 0)
                failed[encoding] = (offset + start, chunk[start] if start < len(chunk) else 0, exc.reason)
        if WINDOWS_1252 in order and WINDOWS_1252 not in failed and not ascii_only:
            undefined = min((at for at in map(chunk.find, _NOT_WINDOWS_1252) if at >= 0), default=-1)
            if undefined >= 0:
                failed[WINDOWS_1252] = (offset + undefined, chunk[undefined], "a byte Windows-1252 does not define")
        if following is None or len(failed) == len(order):
            break
        offset += len(chunk)
        chunk = following
    for encoding in order:
        if encoding not in failed:
            return encoding
    last = order[-1]
    raise UndecodableText(last, *failed[last])
