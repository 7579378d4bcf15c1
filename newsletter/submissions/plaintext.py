"""The rules for text as writers type it: placeholders, title, byline, paragraphs, labels, lists.

A submission pasted from an email or saved from a word processor as text has no
markup, only habits: a line naming a logo that did not come along, the title on
the first line, "by NAME" under it, paragraphs between blank lines (hard-wrapped
at about 70 characters by some mail programs, one long line in others), a label
ending in ":" over a list of links or citations, and a closing call for replies.
`parse_plain_text` recognises these into a `Draft`; every guess it is unsure of
becomes a `Note` naming the line of the submission.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from newsletter.errors import ContentError, where
from newsletter.files.textencoding import UTF8_BOM, UndecodableText, text_encoding
from newsletter.submissions.draft import (
    Block, Draft, Emphasis, Inline, LineBreak, Link, ListBlock, ListItem, Note, Paragraph, Text, plain,
)

# -- reading the bytes ------------------------------------------------------------------


def decode_text(raw: bytes, source: Path) -> tuple[str, str]:
    """The text of a submission and the encoding it was in (`textencoding` decides which).

    UTF-8, else Windows-1252, what Word and Outlook on Windows save as "plain text";
    UTF-16 after a BOM (Notepad's "Unicode").
    """
    try:
        encoding = text_encoding([raw])
    except UndecodableText as exc:
        line = raw.count(b"\n", 0, exc.offset) + 1
        if exc.encoding is UTF8_BOM:
            raise ContentError(f"{where(source, line)}: "
                               f"starts as UTF-8 but is not ({exc.reason}): save it as UTF-8") from None
        raise ContentError(f"{where(source, line)}: neither UTF-8 nor Windows-1252 text "
                           f"(byte 0x{exc.byte:02X}): save it as UTF-8") from None
    return raw.decode(encoding.codec), encoding.name


@dataclass(frozen=True)
class Line:
    number: int  # 1-based, as an editor shows it
    text: str


def split_lines(text: str) -> list[Line]:
    """The lines of `text` (CRLF, CR or LF), without trailing spaces or non-breaking spaces."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return [Line(number, raw.rstrip(" \t\u00a0\u202f\f\v")) for number, raw in enumerate(text.split("\n"), start=1)]


def split_blocks(lines: list[Line]) -> list[list[Line]]:
    """Runs of lines between blank lines, each line without its indentation."""
    blocks: list[list[Line]] = []
    current: list[Line] = []
    for line in lines:
        stripped = line.text.strip(" \t\u00a0")
        if stripped:
            current.append(Line(line.number, stripped))
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


# -- what a line is ---------------------------------------------------------------------

_IMAGE_WORDS = (r"image|images|photo|photos|photograph|photography|picture|pic|logo|graphic|graphics|"
                r"illustration|figure|chart|map|cartoon|banner|diagram|screenshot|infographic|video")
# "[Image: the march]", "(photo)", "[insert logo here]", "<picture of the hall>"
_BRACKETED = re.compile(rf"^[\[(<{{]\s*(?:insert|add|see|place|put)?\s*(?:the\s+|a\s+|an\s+)?(?:{_IMAGE_WORDS})\b"
                        r"[^\])>}]*[\])>}]$", re.IGNORECASE)
# "Photo: Sam O’Connor", "Image – the towpath at dawn"
_CAPTIONED = re.compile(rf"^(?:{_IMAGE_WORDS})\s*[:–—-]\s*\S.{{0,100}}$", re.IGNORECASE)
# "Riverside Circle Logo", "Group photo": a short line ending in one of the words that
# never end a title ("The Big Picture" is left alone).
_NAMED = re.compile(r"^[^.!?:;,]{0,50}\b(?:logo|photo|photograph|image|graphic|banner|screenshot|pic)$", re.IGNORECASE)
_FILE_NAME = re.compile(r"^[\w .()-]{1,80}\.(?:png|jpe?g|gif|webp|heic|tiff?|bmp|svg)$", re.IGNORECASE)


def is_placeholder(text: str, alone: bool = True) -> bool:
    """Whether a line names an image rather than holding text ("Riverside Circle Logo", "[Image: …]").

    `alone`: the line is a block of its own; only then are the unbracketed forms trusted.
    """
    if _BRACKETED.match(text):
        return True
    if not alone or len(text.split()) > 14:
        return False
    return bool(_CAPTIONED.match(text) or _NAMED.match(text) or _FILE_NAME.match(text))


_BYLINE = re.compile(r"^(?:written\s+by|words\s+by|by)\b\s*:?\s*(?P<name>\S.*)$", re.IGNORECASE)
# Words that may stand lowercase in a name: "Ludwig van Beethoven", "Ana de la Cruz".
_NAME_PARTICLES = {"de", "da", "di", "du", "del", "della", "la", "le", "van", "von", "der", "den", "ter", "bin",
                   "al", "el", "y", "e", "and", "&"}


def byline_author(text: str) -> str | None:
    """The author named by a byline ("by NAME", "By: NAME", "Written by NAME"), affiliation kept.

    "Tomasz Wiśniewski (Riverside Poetry Group)" and "Ada Lovelace, Eastside Branch" are
    each the whole author; "By the second week of December…" is a sentence, not a byline.
    """
    match = _BYLINE.match(text)
    if not match:
        return None
    name = match.group("name").strip()
    core = re.split(r"\s*[(,–—;]|\s+-\s+|\s+of\s+|\s+for\s+", name, maxsplit=1)[0]
    words = core.split()
    if not words or len(words) > 6 or len(name.split()) > 16:
        return None
    if not all(w[0].isupper() or w.lower() in _NAME_PARTICLES or not w[0].isalpha() for w in words):
        return None
    if not words[0][0].isupper():
        return None
    return name


def is_label(text: str) -> bool:
    """A short line ending in ":" that heads what follows ("Some links:", "Sources:")."""
    return text.endswith(":") and 1 <= len(text.split()) <= 8 and len(text) <= 60 and not _URL.search(text)


_CLOSING_CALL = re.compile(
    r"^(?:give|send|tell|share|let)\s+us\b|\byour\s+(?:thoughts|views|comments|feedback|letters|replies|responses)\b"
    r"|\b(?:write|reply|respond)\s+(?:to\s+us|back|in)\b|\bget\s+in\s+touch\b|\blet\s+us\s+know\b"
    r"|\bwhat\s+do\s+you\s+think\b|\bwe(?:'d|’d|\s+would)\s+love\s+to\s+hear\b|\b(?:email|contact|write\s+to)\s+us\b",
    re.IGNORECASE,
)


def is_closing_call(text: str) -> bool:
    """A short line asking readers to answer ("Give us your thoughts...", "Let us know what you think")."""
    return len(text.split()) <= 30 and bool(_CLOSING_CALL.search(text))


_BULLET = re.compile(r"^(?:[-*•–—]|\u2022|\u25e6|\u25aa)\s+(?=\S)")
_NUMBERED = re.compile(r"^(\d{1,3})[.)]\s+(?=\S)")
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"“”]+", re.IGNORECASE)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_YEAR = re.compile(r"\b(?:1[5-9]|20)\d\d\b")
_SENTENCE_END = ".!?…"


# Longer than any mail program wraps at: a line this long is a paragraph typed as one line.
ONE_LINE_PARAGRAPH = 100


def _has_url(text: str) -> bool:
    return bool(_URL.search(text))


def is_hard_wrapped(lines: list[str]) -> bool:
    """Whether `lines` are one paragraph broken by a mail program at a fixed width.

    A greedy wrapper breaks a line only where the next word would not fit, so every
    line but the last is longer than the width less the next line's first word. A
    poem or an address (short lines, broken by meaning) fails that test.
    """
    if len(lines) < 2:
        return False
    widths = [len(line) for line in lines[:-1] if not _has_url(line)] + [len(lines[-1])]
    width = max(widths)
    if not 45 <= width <= ONE_LINE_PARAGRAPH:  # short lines are a poem's; long ones were typed so
        return False
    for current, following in zip(lines, lines[1:], strict=False):
        if _has_url(current):
            continue
        if len(current) + 1 + len(following.split()[0]) <= width:
            return False
    return True


def _continues_mid_sentence(lines: list[str]) -> bool:
    return any(nxt[:1].islower() for nxt in lines[1:])


# -- inline text ------------------------------------------------------------------------

_STRONG = re.compile(r"(?<![\w*\\])\*\*(?=[^\s*])(.+?)(?<=[^\s*\\])\*\*(?![\w*])")
_EM_STAR = re.compile(r"(?<![\w*\\])\*(?=[^\s*])([^*]+?)(?<=[^\s*\\])\*(?![\w*])")
_EM_UNDERSCORE = re.compile(r"(?<![\w_\\])_(?=[^\s_])([^_]+?)(?<=[^\s_\\])_(?![\w_])")
_URL_TRAILING = ".,;:!?'’\")]}"


def _url_end(url: str) -> str:
    """`url` without the punctuation of the sentence around it (a `)` it opened is kept)."""
    while url and url[-1] in _URL_TRAILING:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url


def parse_inline(text: str) -> tuple[Inline, ...]:
    """Runs of a line of plain text: bare URLs and addresses become links, `*emphasis*` emphasis."""
    runs: list[Inline] = []
    pos = 0
    for match in _URL_OR_EMAIL.finditer(text):
        if match.start() < pos:
            continue
        found = match.group(0)
        if "@" in found and not found.lower().startswith(("http", "www.")):
            address = found.rstrip(".")
            link: Inline = Link("mailto:" + address, (Text(address),))
        else:
            address = _url_end(found)
            href = "https://" + address if address.lower().startswith("www.") else address
            link = Link(href, (Text(address),))
        runs.extend(_emphasis(text[pos:match.start()]))
        runs.append(link)
        pos = match.start() + len(address)
    runs.extend(_emphasis(text[pos:]))
    return tuple(runs)


_URL_OR_EMAIL = re.compile(f"{_URL.pattern}|{_EMAIL.pattern}", re.IGNORECASE)


def _emphasis(text: str) -> list[Inline]:
    if not text:
        return []
    for pattern, strong in ((_STRONG, True), (_EM_STAR, False), (_EM_UNDERSCORE, False)):
        match = pattern.search(text)
        if match:
            inner = tuple(_emphasis(match.group(1)))
            return [*_emphasis(text[: match.start()]), Emphasis(inner, strong), *_emphasis(text[match.end():])]
    return [Text(text)]


def _joined(lines: list[Line], notes: list[Note], source: Path) -> str:
    """The lines of a hard-wrapped paragraph as one line; a word split at a hyphen is noted."""
    out = lines[0].text
    for line in lines[1:]:
        if re.search(r"[A-Za-z]-$", out) and line.text[:1].islower() and not re.search(r"\s-$", out):
            word = out.rsplit(" ", 1)[-1]
            notes.append(Note(source, line.number - 1,
                              f"joined “{word}” and “{line.text.split()[0]}” as one word at the line break: check it"))
            out += line.text
        else:
            out += " " + line.text
    return out


def _lines_inlines(lines: list[Line]) -> tuple[Inline, ...]:
    """Lines kept as lines (a poem, an address): hard line breaks between them."""
    runs: list[Inline] = []
    for index, line in enumerate(lines):
        if index:
            runs.append(LineBreak())
        runs.extend(parse_inline(line.text))
    return tuple(runs)


# -- blocks -----------------------------------------------------------------------------

@dataclass(frozen=True)
class PlainTextOptions:
    title_given: bool = False  # --title: the first line is the title only if it reads like one
    author_given: bool = False
    footer_invites_replies: bool = False
    footer_name: str = "footer.html"


NO_BYLINE = "no byline (“by NAME”) under the title: pass --author to name the writer"


def reads_like_title(text: str) -> bool:
    return len(text.split()) <= 20 and not text.endswith((".", "…", ",", ";")) and not _has_url(text)


def parse_plain_text(text: str, source: Path, options: PlainTextOptions = PlainTextOptions()) -> Draft:
    """Recognise the title, byline and body of a plain-text submission."""
    draft = Draft()
    notes = draft.notes
    blocks = [_drop_placeholders(block, notes, source) for block in split_blocks(split_lines(text))]
    blocks = [block for block in blocks if block]
    if not blocks:
        raise ContentError(f"{where(source)}: the submission has no text")

    first = blocks[0]
    if not options.title_given or reads_like_title(first[0].text):
        title_line = first.pop(0)
        draft.title = re.sub(r"^#+\s+", "", title_line.text).strip()
        if not reads_like_title(draft.title):
            notes.append(Note(source, title_line.number,
                              f"took “{_short(draft.title)}” as the title, though it reads like a sentence: "
                              "pass --title if it is not"))
        if not first:
            blocks.pop(0)
        if blocks and (author := byline_author(blocks[0][0].text)) is not None:
            draft.author = author
            blocks[0].pop(0)
            if not blocks[0]:
                blocks.pop(0)
        elif not options.author_given:
            notes.append(Note(source, title_line.number + 1, NO_BYLINE))
    draft.blocks = _body(blocks, notes, source)

    last = draft.blocks[-1] if draft.blocks else None
    if isinstance(last, Paragraph) and is_closing_call(_text_of(last)) and options.footer_invites_replies:
        notes.append(Note(source, last.line,
                          f"the closing call “{_short(_text_of(last))}” is kept, but the email's footer "
                          f"({options.footer_name}) already invites replies: remove one of them if they repeat"))
    return draft


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _text_of(paragraph: Paragraph) -> str:
    return plain(paragraph.inlines)


def _drop_placeholders(block: list[Line], notes: list[Note], source: Path) -> list[Line]:
    kept = []
    for line in block:
        if is_placeholder(line.text, alone=len(block) == 1):
            notes.append(Note(source, line.number,
                              f"“{_short(line.text)}” names an image that did not come with the text: "
                              "left out; add the image yourself"))
        else:
            kept.append(line)
    return kept


def _body(blocks: list[list[Line]], notes: list[Note], source: Path) -> list[Block]:
    out: list[Block] = []
    index = 0
    while index < len(blocks):
        block = blocks[index]
        index += 1
        texts = [line.text for line in block]
        if _is_bullet_block(texts):
            out.append(ListBlock(tuple(_bullet_items(block)), line=block[0].number))
            continue
        if _is_numbered_block(texts):
            numbered = [ListItem(parse_inline(_NUMBERED.sub("", line.text, count=1))) for line in block]
            out.append(ListBlock(tuple(numbered), ordered=True, line=block[0].number))
            continue
        if is_label(texts[0]) and not is_closing_call(texts[0]):
            label, rest = block[0], block[1:]
            items: list[tuple[Line, str]] = []
            if rest:
                rest_texts = [line.text for line in rest]
                if _is_bullet_block(rest_texts, under_label=True):
                    items = _bullet_lines(rest)
                elif is_hard_wrapped(rest_texts) and _continues_mid_sentence(rest_texts):
                    out.append(Paragraph(parse_inline(label.text), label.number))
                    out.append(Paragraph(parse_inline(_joined(rest, notes, source)), rest[0].number))
                    continue
                else:
                    items = [(line, line.text) for line in rest]
            while index < len(blocks) and (following := _items_of(blocks[index], notes, source)) is not None:
                items.extend(following)
                index += 1
            out.append(Paragraph(parse_inline(label.text), label.number))
            if items:
                for line, item in items:
                    if item.endswith(","):
                        notes.append(Note(source, line.number,
                                          f"the item “{_short(item)}” ends in a comma, as if its link was lost: "
                                          "kept as written; you may want to find the link"))
                out.append(ListBlock(tuple(ListItem(parse_inline(item)) for _, item in items), line=rest[0].number
                                     if rest else items[0][0].number))
            continue
        if len(block) == 1:
            out.append(Paragraph(parse_inline(texts[0]), block[0].number))
        elif is_hard_wrapped(texts):
            out.append(Paragraph(parse_inline(_joined(block, notes, source)), block[0].number))
        elif max(len(t) for t in texts) > ONE_LINE_PARAGRAPH:
            # Word's "Save as plain text": a paragraph per line, no blank lines between them.
            out.extend(Paragraph(parse_inline(line.text), line.number) for line in block)
        else:
            out.append(Paragraph(_lines_inlines(block), block[0].number))
    return out


def _is_bullet_block(texts: list[str], under_label: bool = False) -> bool:
    """Lines that begin with "- " (or "* ", "• "), a line without one continuing the item above.

    Without a label above, it takes two such lines: one line "* marks the free plots" is text.
    """
    starts = sum(1 for t in texts if _BULLET.match(t))
    return bool(texts) and _BULLET.match(texts[0]) is not None and starts >= (1 if under_label else 2)


def _bullet_lines(block: list[Line]) -> list[tuple[Line, str]]:
    """Each item's first line and its text; a line without a marker continues the item above."""
    items: list[tuple[Line, str]] = []
    for line in block:
        if _BULLET.match(line.text) or not items:
            items.append((line, _BULLET.sub("", line.text, count=1)))
        else:
            items[-1] = (items[-1][0], items[-1][1] + " " + line.text)
    return items


def _bullet_items(block: list[Line]) -> list[ListItem]:
    return [ListItem(parse_inline(item)) for _, item in _bullet_lines(block)]


def _is_numbered_block(texts: list[str]) -> bool:
    """"1. …", "2. …": two or more lines numbered in order from 1 (a year like "1998." is not)."""
    numbers = [_NUMBERED.match(t) for t in texts]
    return len(texts) >= 2 and all(numbers) and [int(m.group(1)) for m in numbers if m] == list(range(1, len(texts) + 1))


def item_like(text: str) -> bool:
    """Whether a block after a list's label is one more item: a link, a citation, a phrase."""
    if is_closing_call(text) or is_label(text):
        return False
    if _BULLET.match(text) or _has_url(text) or text.endswith(","):
        return True
    if len(text.split()) <= 12 and not text.endswith(tuple(_SENTENCE_END)):
        return True
    # A citation: a year and a quoted title, or an author written "Surname, Name."
    return bool(_YEAR.search(text) and (re.search(r"[“\"‘]", text) or re.match(r"^[A-Z][\w'’-]+, [A-Z]", text)))


def _items_of(block: list[Line], notes: list[Note], source: Path) -> list[tuple[Line, str]] | None:
    """The items of a block that continues a list after a blank line, or None if it does not."""
    texts = [line.text for line in block]
    if _is_bullet_block(texts, under_label=True):
        return _bullet_lines(block)
    if len(block) > 1 and is_hard_wrapped(texts):
        text = _joined(block, notes, source)
        return [(block[0], text)] if item_like(text) else None
    if all(item_like(t) for t in texts):
        return [(line, line.text) for line in block]
    return None
