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
  space (any `white-space` or `white-space-collapse` value but `normal`, `nowrap`, `wrap`,
  `collapse` and the global ones: `pre-line`, `wrap preserve-breaks`, `var(--x)` all may),
  with everything inside it;
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
    # An element whose content is raw text (no tags in it), or keeps its white space: one token.
    rb"|(?P<raw><(?P<raw_name>script|style|textarea|title|xmp)\b[^>]*>.*?(?:</(?P=raw_name)\s*>|\Z))"
    rb"|(?P<end></(?P<end_name>[A-Za-z][^\s/>]*)\s*>)"
    rb"|(?P<start><(?P<name>[A-Za-z][^\s/>]*)(?P<attributes>(?:\s+[^\s\"'>/=]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?)*)\s*/?>)"
    # A `<` that starts no tag the grammar knows: up to the next `>`, folded nowhere.
    rb"|(?P<opaque><[A-Za-z/][^>]*>?)"
    rb"|(?P<text>[^<]+|<)",
    re.DOTALL | re.IGNORECASE,
)
# One attribute and the white space before it (a fold there is never inside its value).
_ATTRIBUTE = re.compile(rb"(?P<space>\s+)(?P<name>[^\s\"'>/=]+)(?:\s*=\s*(?P<value>\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?")
# A `white-space` or `white-space-collapse` declaration and its value (up to `;`, `}` or a quote).
_WHITE_SPACE = re.compile(rb"white-space(?:-collapse)?\s*:\s*([^;}\"']*)", re.IGNORECASE)
# The values under which a line break in text shows as a space: any other keeps white space, or may
# (`pre`, `preserve-breaks` in CSS Text 4's `white-space: wrap preserve-breaks`, a `var(...)`, an escape).
_COLLAPSING = frozenset({b"normal", b"nowrap", b"wrap", b"collapse", b"initial", b"inherit", b"unset", b"!important"})
# Whose white space is kept, and that of everything inside (with `raw` tokens: no text folded).
_KEEPS_SPACE = frozenset({b"pre", b"listing", b"plaintext"})
_VOID = frozenset({b"area", b"base", b"br", b"col", b"embed", b"hr", b"img", b"input", b"link", b"meta",
                   b"param", b"source", b"track", b"wbr", b"basefont", b"bgsound", b"frame", b"keygen"})
_MERGE_TAG = re.compile(merge.TAG_PATTERN.pattern.encode("ascii"))
_WORD_SPACE = re.compile(rb"(?<=[^\s<>&;]) (?=[^\s<>&;])")
_STYLE_ELEMENT = re.compile(rb"<style\b[^>]*>(.*?)</style", re.IGNORECASE | re.DOTALL)


def fold_html(html: str, width: int = FOLD_WIDTH) -> str:
    """`html` with each line longer than `width` octets (UTF-8) folded at spaces where a line
    break shows the same (see the module's notes); a line with no such space stays as it is."""
    document = html.encode("utf-8")
    long_lines: list[tuple[int, int]] = []  # (start, end) offsets of the lines to fold
    start = 0
    for line in document.split(b"\n"):
        if len(line) > width:
            long_lines.append((start, start + len(line)))
        start += len(line) + 1
    if not long_lines:
        return html  # most issues: nothing to do, and no pass over the markup
    breaks = _breaks(document, long_lines)
    folded = bytearray(document)
    for start, end in long_lines:
        # Greedily: at the last space that keeps the line within `width`, or where none does,
        # at the first after it (the line stays long, but no longer than it must).
        while end - start > width:
            at = bisect.bisect_right(breaks, start + width) - 1
            if at < 0 or breaks[at] <= start:
                at += 1
                if at >= len(breaks) or breaks[at] >= end:
                    break
            folded[breaks[at]] = ord("\n")
            start = breaks[at] + 1
    return folded.decode("utf-8")


def _breaks(document: bytes, long_lines: list[tuple[int, int]]) -> list[int]:
    """The offsets of the spaces that may become line breaks in the tokens on `long_lines`, in
    order. The markup before them is only followed (what is open), up to the last of them."""
    breaks: list[int] = []
    fold_text = not any(_keeps_space(match[1]) for match in _STYLE_ELEMENT.finditer(document))
    kept: bytes | None = None  # the element whose white space is kept (<pre>, ...), while inside it
    depth = 0  # how many elements of its name are open, it included
    lines = iter(long_lines)
    line_start, line_end = next(lines)
    last_end = long_lines[-1][1]
    for token in _TOKEN.finditer(document):
        if token.start() >= last_end:
            break
        kind = token.lastgroup
        if kind == "text":
            if fold_text and kept is None and token.end() > line_start:
                breaks.extend(_word_spaces(token))
        elif kind == "start":
            name, attributes = token["name"].lower(), token["attributes"]
            if token.end() > line_start:
                attributes_at = token.start("attributes")
                breaks.extend(attributes_at + attribute.start("space") + attribute["space"].find(b" ")
                              for attribute in _ATTRIBUTE.finditer(attributes) if b" " in attribute["space"])
            if name in _VOID:
                pass
            elif kept is None and (name in _KEEPS_SPACE or _styled_to_keep_space(attributes)):
                kept, depth = name, 1
            elif name == kept:
                depth += 1
        elif kind == "end" and kept is not None and token["end_name"].lower() == kept:
            depth -= 1
            if depth == 0:
                kept = None
        while line_end <= token.end() and line_end < last_end:
            line_start, line_end = next(lines)
    return breaks


def _keeps_space(css: bytes) -> bool:
    """Whether a declaration in `css` may keep white space: any `white-space` value but those known
    to collapse it. Looking for `pre` and `preserve` at its start missed `wrap preserve-breaks`
    and `var(--keep)`, and a template's rule with either had its lines run together."""
    return any(set(value.lower().replace(b"!", b" !").split()) - _COLLAPSING
               for value in _WHITE_SPACE.findall(css))


def _styled_to_keep_space(attributes: bytes) -> bool:
    if not _keeps_space(attributes):
        return False  # nearly every tag: no need to read its attributes one by one
    return any(attribute["name"].lower() == b"style" and _keeps_space((attribute["value"] or b"").strip(b"\"'"))
               for attribute in _ATTRIBUTE.finditer(attributes))


def _word_spaces(token: re.Match[bytes]) -> list[int]:
    """The spaces between two words of a text token, outside its merge tags."""
    text, text_at = token[0], token.start()
    tags = [(tag.start(), tag.end()) for tag in _MERGE_TAG.finditer(text)]
    return [text_at + space.start() for space in _WORD_SPACE.finditer(text)
            if not any(start < space.start() < end for start, end in tags)
            and not _removable_break(text, space.start())]


def _removable_break(text: bytes, at: int) -> bool:
    """Whether CSS could remove a line break at `at` rather than show a space (CSS Text 3,
    4.1.3): beside a wide East Asian character or an invisible one (a zero-width space)."""
    if text[at - 1] < 0x80 and text[at + 1] < 0x80:
        return False
    before = text[max(0, at - 4):at].decode("utf-8", "ignore")[-1:]
    after = text[at + 1:at + 5].decode("utf-8", "ignore")[:1]
    return any(unicodedata.east_asian_width(char) in ("F", "W", "H") or unicodedata.category(char) == "Cf"
               for char in before + after)
