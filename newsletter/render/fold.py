"""The email's HTML with its long lines folded where a line break shows the same as a space.

A writer's paragraph is often one line of 500 to 1,500 characters, and premailer puts
every element's style inline: the paragraph's line in the email then passes SMTP's 998
octets, so the whole HTML part had to go quoted-printable (each `=` of its attributes
written `=3D`, a soft break every 76 characters: a third more lines and bytes for every
receiving server), and SendGrid asks for lines that keep within 998 characters as well.
Folding it here, once per issue, makes every provider's HTML fit, and what `build`
writes stays the exact part a send posts.

A space becomes a line break only where the two show the same in every mail program:

- between two attributes inside a start tag, never inside an attribute's value;
- between two words of text, outside a merge tag (`[%html:...%]`), outside `<pre>`,
  `<textarea>`, `<script>`, `<style>`, `<title>` and comments (Outlook's conditional
  ones hold markup of their own), and outside any element styled to keep its white
  space (`white-space: pre`, `pre-wrap`, `pre-line`, `break-spaces`, or
  `white-space-collapse` other than `collapse`), with everything inside it;
- not beside a wide East Asian character nor a zero-width space, where CSS removes a line
  break in text rather than showing it as a space (CSS Text 3, 4.1.3), and only between two
  characters of text (not beside a tag, an entity or more white space), so that neither
  neighbour can be one of those once rendered.

Where a `<style>` left in the document (media queries, client fixes) could itself set a
preserving `white-space`, which element it reaches is not known here, so text is not folded
at all. A line that cannot be folded short enough stays long, and the SMTP provider sends
the part quoted-printable, as before.

The HTML is lxml's serialization (premailer's output): every attribute's value quoted, `<`
and `&` escaped in text, an end tag for every element that is not void. That is the grammar
of `_TOKEN` below; lxml itself has no way to serialize with line breaks at chosen spaces (its
`pretty_print` adds white space between elements, which can show between inline ones).
"""

from __future__ import annotations

import bisect
import re
import unicodedata

from newsletter import merge

# Only lines longer than this many octets are folded, each into lines as close to it as the
# breaks allow. Half of SMTP's 998: the other half is room for the merge values a send puts in
# (the SMTP provider counts the longest line and every value). Not RFC 5322's 78, which the
# inline styles alone pass: folding to it more than doubled the sample's lines (110 to 248,
# 53 of them still over 78), and a receiving server's work grows with lines.
FOLD_WIDTH = 500

_TOKEN = re.compile(
    rb"(?P<comment><!--.*?-->)"
    rb"|(?P<declaration><[!?][^>]*>)"
    rb"|(?P<end></(?P<end_name>[A-Za-z][^\s/>]*)\s*>)"
    rb"|(?P<start><(?P<name>[A-Za-z][^\s/>]*)(?P<attributes>(?:\s+[^\s\"'>/=]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?)*)\s*/?>)"
    # A `<` that starts no tag the grammar knows: up to the next `>`, folded nowhere.
    rb"|(?P<opaque><[A-Za-z/][^>]*>?)"
    rb"|(?P<text>[^<]+|<)",
    re.DOTALL,
)
# One attribute and the white space before it (a fold there is never inside its value).
_ATTRIBUTE = re.compile(rb"(?P<space>\s+)(?P<name>[^\s\"'>/=]+)(?:\s*=\s*(?P<value>\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?")
_PRESERVING = re.compile(rb"white-space(?:-collapse)?\s*:\s*(?:pre|preserve|break-spaces)", re.IGNORECASE)
# Whose content is raw text (no tags in it) or keeps its white space: never folded.
_RAW_TEXT = frozenset({b"script", b"style", b"textarea", b"title", b"xmp", b"plaintext"})
_KEEPS_SPACE = frozenset({b"pre", b"listing"}) | _RAW_TEXT
_VOID = frozenset({b"area", b"base", b"br", b"col", b"embed", b"hr", b"img", b"input", b"link", b"meta",
                   b"param", b"source", b"track", b"wbr", b"basefont", b"bgsound", b"frame", b"keygen"})
_MERGE_TAG = re.compile(merge.TAG_PATTERN.pattern.encode("ascii"))
_WORD_SPACE = re.compile(rb"(?<=[^\s<>&;]) (?=[^\s<>&;])")
_STYLE_ELEMENT = re.compile(rb"<style\b[^>]*>(.*?)</style", re.IGNORECASE | re.DOTALL)
_RAW_TEXT_END = {name: re.compile(rb"</" + name + rb"[\s/>]", re.IGNORECASE) for name in _RAW_TEXT}


def fold_html(html: str, width: int = FOLD_WIDTH) -> str:
    """`html` with each line longer than `width` octets (UTF-8) folded at spaces where a line
    break shows the same (see the module's notes); a line with no such space stays as it is."""
    document = html.encode("utf-8")
    if all(len(line) <= width for line in document.split(b"\n")):
        return html  # most issues: nothing to do, and no pass over the markup
    breaks = _breaks(document)
    folded = bytearray(document)
    start = 0
    for end in [*(match.start() for match in re.finditer(b"\n", document)), len(document)]:
        # Each line as written, folded greedily: at the last space that keeps it within `width`,
        # or where none does, at the first after (it stays long, but no longer than it must).
        while end - start > width:
            at = bisect.bisect_right(breaks, start + width) - 1
            if at < 0 or breaks[at] <= start:
                at += 1
                if at >= len(breaks) or breaks[at] >= end:
                    break
            folded[breaks[at]] = ord("\n")
            start = breaks[at] + 1
        start = end + 1
    return folded.decode("utf-8")


def _breaks(document: bytes) -> list[int]:
    """The offsets of the spaces in `document` that may become line breaks, in order."""
    breaks: list[int] = []
    fold_text = not any(_PRESERVING.search(match[1]) for match in _STYLE_ELEMENT.finditer(document))
    kept: bytes | None = None  # the element whose white space is kept (<pre>, ...), while inside it
    depth = 0  # how many elements of its name are open, it included
    position, size = 0, len(document)
    while position < size:
        token = _TOKEN.match(document, position)
        assert token is not None  # `<` alone is text: every position starts a token
        position = token.end()
        if token["start"] is not None:
            name = token["name"].lower()
            attributes_at, keeps_space = token.start("attributes"), name in _KEEPS_SPACE
            for attribute in _ATTRIBUTE.finditer(token["attributes"]):
                space = attribute["space"].find(b" ")
                if space >= 0:
                    breaks.append(attributes_at + attribute.start("space") + space)
                if attribute["name"].lower() == b"style" and _PRESERVING.search(attribute["value"] or b""):
                    keeps_space = True
            if name in _VOID:
                continue
            if kept is None and keeps_space:
                kept, depth = name, 1
            elif name == kept:
                depth += 1
            if name in _RAW_TEXT:  # its content is not markup: on to its end tag
                end = _RAW_TEXT_END[name].search(document, position)
                position = end.start() if end is not None else size
        elif token["end"] is not None:
            if token["end_name"].lower() == kept:
                depth -= 1
                if depth == 0:
                    kept = None
        elif token["text"] is not None and fold_text and kept is None:
            text_at = token.start()
            text = token["text"]
            tags = [(tag.start(), tag.end()) for tag in _MERGE_TAG.finditer(text)]
            for space in _WORD_SPACE.finditer(text):
                at = space.start()
                if any(tag_start < at < tag_end for tag_start, tag_end in tags):
                    continue
                if _removable_break(text, at):
                    continue
                breaks.append(text_at + at)
    return breaks


def _removable_break(text: bytes, at: int) -> bool:
    """Whether CSS could remove a line break at `at` rather than show a space (CSS Text 3,
    4.1.3): beside a wide East Asian character or an invisible one (a zero-width space)."""
    if text[at - 1] < 0x80 and text[at + 1] < 0x80:
        return False
    before = text[max(0, at - 4):at].decode("utf-8", "ignore")[-1:]
    after = text[at + 1:at + 5].decode("utf-8", "ignore")[:1]
    return any(unicodedata.east_asian_width(char) in ("F", "W", "H") or unicodedata.category(char) == "Cf"
               for char in before + after)
