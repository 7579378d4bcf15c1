"""Markdown → the HTML and the plain text of an article.

CommonMark via markdown-it-py, parsed once per article; both outputs are made
from the same token stream. Typographic quotes and dashes stay as the writer
typed them (no "smartypants"): a writer who typed ’ gets ’, one who typed ' gets '.
Raw HTML in an article is shown as text, not passed into the email.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token

TEXT_WIDTH = 78

# Images are given an integer width for Outlook (it ignores CSS widths) and a
# fluid style for everyone else; 552 is the 600 px column less its padding.
# An image narrower than that, found beside the article, keeps its own width.
IMAGE_WIDTH = 552


def _image_style(width: int) -> str:
    return f"width:100%;max-width:{width}px;height:auto;display:block;border:0"

_md = MarkdownIt("commonmark", {"html": False, "linkify": True, "typographer": False}).enable(
    ["linkify", "strikethrough"]
)


@dataclass(frozen=True)
class RenderedMarkdown:
    html: str
    text: str


def render_markdown(source: str, base_url: str, folder: Path | None = None) -> RenderedMarkdown:
    """Render `source` to HTML and to plain text; relative links resolve under `base_url`.

    `folder` is where the article's relative images are on disk, to read their widths.
    """
    tokens = _md.parse(source)
    _adapt_for_email(tokens, base_url, folder)
    html = _md.renderer.render(tokens, _md.options, {})
    return RenderedMarkdown(html=html, text=_PlainText().render(tokens))


def _is_relative(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.scheme and not url.startswith(("#", "//"))


# The email's <h1> is the publication and each article's title an <h2>, so an
# article's own top heading level, whatever the writer used, becomes <h3>.
FIRST_ARTICLE_HEADING = 3


def _adapt_for_email(tokens: list[Token], base_url: str, folder: Path | None) -> None:
    levels = [int(t.tag[1]) for t in tokens if t.type == "heading_open"]
    shift = FIRST_ARTICLE_HEADING - min(levels) if levels else 0
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + shift, 6)}"
    _absolutize(tokens, base_url, folder)


def _absolutize(tokens: list[Token], base_url: str, folder: Path | None) -> None:
    for token in tokens:
        if token.children:
            _absolutize(token.children, base_url, folder)
        if token.type == "image":
            src = str(token.attrGet("src") or "")
            width = IMAGE_WIDTH
            if _is_relative(src):
                token.attrSet("src", urljoin(base_url, src))
                natural = image_width(folder / src) if folder else None
                width = min(natural or IMAGE_WIDTH, IMAGE_WIDTH)
            token.attrSet("width", str(width))
            token.attrSet("style", _image_style(width))
        elif token.type == "link_open":
            href = str(token.attrGet("href") or "")
            if href and _is_relative(href):
                token.attrSet("href", urljoin(base_url, href))


def image_width(path: Path) -> int | None:
    """The pixel width of a PNG, GIF or JPEG file, from its header; None if unknown."""
    try:
        with path.open("rb") as handle:
            head = handle.read(32)
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                return int.from_bytes(head[16:20], "big")
            if head[:6] in (b"GIF87a", b"GIF89a"):
                return int.from_bytes(head[6:8], "little")
            if head.startswith(b"\xff\xd8"):
                return _jpeg_width(handle)
    except OSError:
        return None
    return None


def _jpeg_width(handle: BinaryIO) -> int | None:
    # Walk the JPEG segments to the first start-of-frame marker, which holds the size.
    handle.seek(2)
    while True:
        marker = handle.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        length = int.from_bytes(handle.read(2), "big")
        if marker[1] in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            frame = handle.read(5)
            return int.from_bytes(frame[3:5], "big") if len(frame) == 5 else None
        handle.seek(length - 2, 1)


class _PlainText:
    """Walks markdown-it block tokens and writes readable, wrapped plain text."""

    def render(self, tokens: list[Token]) -> str:
        self.tokens = tokens
        self.pos = 0
        blocks = self._blocks(until=None)
        return "\n\n".join(b for b in blocks if b.strip()) + "\n"

    def _blocks(self, until: str | None) -> list[str]:
        blocks: list[str] = []
        while self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            self.pos += 1
            if until and token.type == until:
                break
            if token.type == "heading_open":
                text = self._inline_text(self.tokens[self.pos])
                self.pos += 2  # inline, heading_close
                underline = "=" if token.tag == "h3" else "-"
                blocks.append(f"{text}\n{underline * min(len(text), TEXT_WIDTH)}")
            elif token.type == "paragraph_open":
                text = self._inline_text(self.tokens[self.pos])
                self.pos += 2  # inline, paragraph_close
                blocks.append(_wrap(text))
            elif token.type in ("bullet_list_open", "ordered_list_open"):
                blocks.append(self._list(token))
            elif token.type == "blockquote_open":
                inner = "\n\n".join(self._blocks(until="blockquote_close"))
                blocks.append("\n".join(("> " + line).rstrip() for line in inner.splitlines()))
            elif token.type in ("fence", "code_block"):
                blocks.append("\n".join("    " + line for line in token.content.rstrip("\n").splitlines()))
            elif token.type == "hr":
                blocks.append("-" * 20)
        return blocks

    def _list(self, opener: Token) -> str:
        closer = opener.type.replace("_open", "_close")
        ordered = opener.type == "ordered_list_open"
        number = int(opener.attrGet("start") or 1)
        items: list[str] = []
        while self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            self.pos += 1
            if token.type == closer:
                break
            if token.type == "list_item_open":
                marker = f"{number}. " if ordered else "- "
                number += 1
                body = self._list_item_blocks()
                lines = "\n".join(body).splitlines() or [""]
                indent = " " * len(marker)
                items.append("\n".join([marker + lines[0]] + [indent + line if line else "" for line in lines[1:]]))
        return "\n".join(items)

    def _list_item_blocks(self) -> list[str]:
        # Tight lists hide their paragraphs; render item content with a narrower width.
        blocks = self._blocks(until="list_item_close")
        return [_wrap(" ".join(b.split("\n")), TEXT_WIDTH - 3) if "\n" not in b.strip() else b for b in blocks]

    def _inline_text(self, inline: Token) -> str:
        out: list[str] = []
        href_stack: list[tuple[str, int]] = []
        for child in inline.children or []:
            if child.type == "text" or child.type == "code_inline":
                out.append(child.content)
            elif child.type == "softbreak":
                out.append(" ")
            elif child.type == "hardbreak":
                out.append("\n")
            elif child.type == "link_open":
                href_stack.append((str(child.attrGet("href") or ""), len(out)))
            elif child.type == "link_close" and href_stack:
                href, start = href_stack.pop()
                label = "".join(out[start:])
                bare = href.removeprefix("mailto:")
                if href and label.strip() not in (href, bare):
                    out.append(f" ({href})")
            elif child.type == "image":
                alt = child.content or "image"
                out.append(f"[{alt}] ({child.attrGet('src')})")
        return "".join(out).strip()


def _wrap(text: str, width: int = TEXT_WIDTH) -> str:
    """Wrap at `width` without breaking URLs or words; hard breaks are kept."""
    return "\n".join(
        textwrap.fill(line, width=width, break_long_words=False, break_on_hyphens=False) or ""
        for line in text.split("\n")
    )
