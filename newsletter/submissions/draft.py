"""A submission read into blocks and inline runs, and those written out as Markdown.

Plain text (`plaintext.py`) and documents (`documents.py`) both end up as a `Draft`,
so one writer decides how an article's Markdown looks and, above all, what is
escaped: the text a writer typed must render character for character. Every ASCII
character CommonMark could act on in running text is backslash-escaped (an
escaped punctuation character always renders as itself); URLs and email addresses
are written as autolinks, which CommonMark never parses inside.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsletter.errors import where


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Emphasis:
    children: tuple[Inline, ...]
    strong: bool = False


@dataclass(frozen=True)
class Link:
    href: str
    children: tuple[Inline, ...]


@dataclass(frozen=True)
class Image:
    src: str
    alt: str


@dataclass(frozen=True)
class LineBreak:
    pass


Inline = Text | Emphasis | Link | Image | LineBreak


@dataclass(frozen=True)
class Paragraph:
    inlines: tuple[Inline, ...]
    line: int | None = None


@dataclass(frozen=True)
class Heading:
    level: int
    inlines: tuple[Inline, ...]
    line: int | None = None


@dataclass(frozen=True)
class ListItem:
    inlines: tuple[Inline, ...]
    children: tuple[ListBlock, ...] = ()


@dataclass(frozen=True)
class ListBlock:
    items: tuple[ListItem, ...]
    ordered: bool = False
    line: int | None = None


@dataclass(frozen=True)
class Quote:
    blocks: tuple[Block, ...]
    line: int | None = None


Block = Paragraph | Heading | ListBlock | Quote


@dataclass(frozen=True)
class Note:
    """A guess the converter was unsure of, at a line (or paragraph) of the submission."""

    source: Path
    line: int | None
    message: str
    unit: str = "line"  # a .docx has no lines: its notes name a paragraph

    def __str__(self) -> str:
        if self.line is None:
            return f"{where(self.source)}: {self.message}"
        if self.unit == "line":
            return f"{where(self.source, self.line)}: {self.message}"
        return f"{where(self.source)}, {self.unit} {self.line}: {self.message}"


@dataclass
class Draft:
    """What was recognised in one submission, before it is written as an article."""

    title: str = ""
    author: str = ""
    blocks: list[Block] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    front_matter: Any = None  # a Markdown submission's own front matter (a ruamel mapping), comments kept
    body_markdown: str | None = None  # a Markdown submission's body, kept as written
    body_line: int = 1  # the submission's line where `body_markdown` starts
    encoding: str = ""


# -- counting what was recognised -----------------------------------------------------

def _inlines_of(block: Block) -> list[tuple[Inline, ...]]:
    if isinstance(block, (Paragraph, Heading)):
        return [block.inlines]
    if isinstance(block, Quote):
        return [runs for inner in block.blocks for runs in _inlines_of(inner)]
    found: list[tuple[Inline, ...]] = []
    for item in block.items:
        found.append(item.inlines)
        for child in item.children:
            found.extend(_inlines_of(child))
    return found


def _walk(inlines: tuple[Inline, ...]) -> list[Inline]:
    found: list[Inline] = []
    for run in inlines:
        found.append(run)
        if isinstance(run, (Emphasis, Link)):
            found.extend(_walk(run.children))
    return found


def all_inlines(blocks: list[Block]) -> list[Inline]:
    return [run for block in blocks for runs in _inlines_of(block) for run in _walk(runs)]


def plain(inlines: tuple[Inline, ...]) -> str:
    """The text a reader sees in `inlines` (an image counts as its alt text)."""
    out: list[str] = []
    for run in inlines:
        if isinstance(run, Text):
            out.append(run.text)
        elif isinstance(run, (Emphasis, Link)):
            out.append(plain(run.children))
        elif isinstance(run, LineBreak):
            out.append("\n")
        elif isinstance(run, Image):
            out.append(run.alt)
    return "".join(out)


# -- Markdown --------------------------------------------------------------------------

# Anywhere in running text: backslash, code, emphasis, links, raw HTML and autolinks,
# strikethrough. `&` only where it would start an entity (`&copy;` stays `&copy;`).
_ALWAYS = re.compile(r"[\\`*_\[\]<~]|&(?=#?\w+;)")
# At the start of a line: headings, quotes, list items (`-`, `+`, `1998.`), setext
# underlines and thematic breaks.
_LINE_START = re.compile(r"^(?:(#)|([-+=>])|(\d{1,9})([.)]))")
_SCHEME_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*$")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")


def escape_text(text: str) -> str:
    """`text` as Markdown that renders as exactly `text` within a line."""
    return _ALWAYS.sub(lambda m: "\\" + m.group(0), text)


def escape_line_start(markdown: str) -> str:
    """Escape what would make a block of an already escaped line (`# `, `- `, `1998. `)."""
    match = _LINE_START.match(markdown)
    if not match:
        return markdown
    if match.group(3):
        return f"{match.group(3)}\\{match.group(4)}{markdown[match.end():]}"
    return "\\" + markdown


def _destination(url: str) -> str:
    """A link destination: as it is when plain, else in `<…>` so spaces and parentheses need no care."""
    if re.fullmatch(r"[^\s()<>\\]+", url):
        return url
    return "<" + url.replace("\\", "%5C").replace("<", "%3C").replace(">", "%3E").replace("\n", "%0A") + ">"


def inline_markdown(inlines: tuple[Inline, ...]) -> str:
    """Inline runs as Markdown; a `LineBreak` is a backslash at the end of the line."""
    out: list[str] = []
    for run in inlines:
        if isinstance(run, Text):
            out.append(escape_text(run.text))
        elif isinstance(run, Emphasis):
            inner = inline_markdown(run.children)
            core = inner.strip()
            if not core:
                out.append(inner)
                continue
            lead, trail = inner[: len(inner) - len(inner.lstrip())], inner[len(inner.rstrip()):]
            mark = "**" if run.strong else "*"
            out.append(f"{lead}{mark}{core}{mark}{trail}")
        elif isinstance(run, Link):
            label = plain(run.children)
            if label == run.href and _SCHEME_URL.match(run.href) and "\\" not in run.href:
                out.append(f"<{run.href}>")
            elif label == run.href and _EMAIL.match(run.href) and "\\" not in run.href:
                out.append(f"<{run.href}>")
            elif label == run.href.removeprefix("mailto:") and _EMAIL.match(label) and "\\" not in label:
                out.append(f"<{label}>")
            else:
                out.append(f"[{inline_markdown(run.children)}]({_destination(run.href)})")
        elif isinstance(run, Image):
            out.append(f"![{escape_text(run.alt)}]({_destination(run.src)})")
        elif isinstance(run, LineBreak):
            out.append("\\\n")
    lines = "".join(out).split("\n")
    return "\n".join(escape_line_start(line.strip(" \t")) for line in lines)


def _block_markdown(block: Block) -> str:
    if isinstance(block, Paragraph):
        return inline_markdown(block.inlines)
    if isinstance(block, Heading):
        text = inline_markdown(block.inlines).replace("\\\n", " ")
        return f"{'#' * max(1, min(block.level, 6))} {text}"
    if isinstance(block, Quote):
        inner = "\n\n".join(_block_markdown(b) for b in block.blocks)
        return "\n".join(f"> {line}".rstrip() for line in inner.split("\n"))
    return _list_markdown(block)


def _list_markdown(block: ListBlock) -> str:
    items: list[str] = []
    for number, item in enumerate(block.items, start=1):
        marker = f"{number}. " if block.ordered else "- "
        indent = " " * len(marker)
        body = inline_markdown(item.inlines) or ""
        lines = body.split("\n")
        text = "\n".join([marker + lines[0]] + [indent + line for line in lines[1:]])
        for child in item.children:
            text += "\n" + "\n".join(indent + line if line else "" for line in _list_markdown(child).split("\n"))
        items.append(text.rstrip())
    return "\n".join(items)


def blocks_markdown(blocks: list[Block]) -> str:
    """The body of an article: blocks separated by blank lines, ending in a newline."""
    parts = [_block_markdown(block) for block in blocks]
    return "\n\n".join(part for part in parts if part.strip()) + "\n"


def _renamed_runs(runs: tuple[Inline, ...], names: dict[str, str | None]) -> tuple[Inline, ...]:
    out: list[Inline] = []
    for run in runs:
        if isinstance(run, Image):
            name = names.get(run.src, run.src)
            if name is not None:
                out.append(Image(name, run.alt))
        elif isinstance(run, Emphasis):
            out.append(Emphasis(_renamed_runs(run.children, names), run.strong))
        elif isinstance(run, Link):
            out.append(Link(run.href, _renamed_runs(run.children, names)))
        else:
            out.append(run)
    return tuple(out)


def rename_images(blocks: list[Block], names: dict[str, str | None]) -> list[Block]:
    """`blocks` with each image's `src` replaced by `names[src]` (the file written for it);
    an image named None is left out, and so is a paragraph it leaves empty."""
    def block(b: Block) -> Block | None:
        if isinstance(b, Paragraph):
            runs = _renamed_runs(b.inlines, names)
            return Paragraph(runs, b.line) if runs or not b.inlines else None
        if isinstance(b, Heading):
            return Heading(b.level, _renamed_runs(b.inlines, names), b.line)
        if isinstance(b, Quote):
            inner = tuple(kept for kept in (block(i) for i in b.blocks) if kept is not None)
            return Quote(inner, b.line) if inner or not b.blocks else None
        return listing(b)

    def listing(b: ListBlock) -> ListBlock:
        return ListBlock(tuple(ListItem(_renamed_runs(item.inlines, names), tuple(listing(c) for c in item.children))
                               for item in b.items), b.ordered, b.line)

    return [kept for kept in (block(b) for b in blocks) if kept is not None]


def without_images(blocks: list[Block], srcs: set[str]) -> list[Block]:
    """`blocks` without the images whose `src` is in `srcs`, wherever they stand."""
    return rename_images(blocks, dict.fromkeys(srcs))
