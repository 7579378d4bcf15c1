"""Markdown → the HTML and the plain text of an article.

CommonMark via markdown-it-py, parsed once per article; both outputs are made
from the same token stream. Typographic quotes and dashes stay as the writer
typed them (no "smartypants"): a writer who typed ’ gets ’, one who typed ' gets '.
Raw HTML in an article is shown as text, not passed into the email.
"""

from __future__ import annotations

import itertools
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urljoin, urlsplit

from markdown_it import MarkdownIt
from markdown_it.common.normalize_url import validateLink
from markdown_it.token import Token

from newsletter.errors import ContentError
from newsletter.images import display_size

TEXT_WIDTH = 78

# Images are given an integer width and height for Outlook (it ignores CSS widths)
# and a fluid style for everyone else; 552 is the 600 px column less its padding.
# An image narrower than that, found beside the article, keeps its own width (that
# of the processed file, see `images`).
IMAGE_WIDTH = 552


def _image_style(width: int) -> str:
    return f"width:100%;max-width:{width}px;height:auto;display:block;border:0"

# How deep lists, quotes, links and emphasis may sit inside each other in an article. An
# article nested 50,000 deep (`> > > …`, `*****…`) was reported as "the postal address is
# missing": markdown-it stops parsing blocks at its `maxNesting` without a word (the rest of
# the article is lost), and emphasis it nests without limit, into HTML so deep that lxml
# (premailer's and check's parser, 256 levels at most) silently drops the email's footer.
# Twelve levels of a list (24 of HTML) is more than any article needs; markdown-it's own
# limit is kept above ours, so whatever it would cut off is refused here first.
MAX_NESTING = 24
_md = MarkdownIt("commonmark", {"html": False, "linkify": True, "typographer": False,
                                "maxNesting": 2 * MAX_NESTING}).enable(["linkify", "strikethrough"])
# markdown-it's own guard against `javascript:`, `vbscript:`, `file:` and `data:` (but images')
# addresses turns such a link or image into its Markdown as plain text, without a word. Every
# link is parsed here instead, and `_refuse_unsafe` applies that same guard, noting each one
# it refuses, so that `check` can name it (and build, send and site refuse the issue).
_md.validateLink = lambda url: True  # type: ignore[method-assign]
# Bare links a writer pasted become links only when they plainly are addresses
# (`https://…`, `www.…`, an email address): see `_keep_plain_links`.
_LINK_PREFIXES = ("http://", "https://", "www.", "mailto:")


@dataclass(frozen=True)
class LocalImage:
    """An image an article gives relative to itself: as written, its URL, and its file."""

    src: str
    url: str
    path: Path


@dataclass(frozen=True)
class RefusedLink:
    """A link or image whose address markdown-it deems unsafe: shown as its text (an image as
    its alt text), never as a link; `line` is counted in the Markdown given (1 is its first)."""

    kind: Literal["link", "image"]
    url: str  # as written (markdown-it's normalising undone: `alert("x")`, not `alert(%22x%22)`)
    line: int | None


@dataclass(frozen=True)
class Heading:
    """A heading as the writer wrote it: `level` 2 for `## …` (or a `---` underline); `line` is
    counted in the Markdown given. The email shifts every level alike (see `FIRST_ARTICLE_HEADING`)."""

    level: int
    text: str
    line: int | None


@dataclass(frozen=True)
class WrittenLink:
    """A link or image as written, for `check`: its address as written, its text (an image's alt
    text), and its line in the Markdown given."""

    kind: Literal["link", "image"]
    url: str
    text: str
    line: int | None


@dataclass(frozen=True)
class RenderedMarkdown:
    html: str
    text: str
    images: tuple[LocalImage, ...] = ()
    refused: tuple[RefusedLink, ...] = ()
    headings: tuple[Heading, ...] = ()
    links: tuple[WrittenLink, ...] = ()


class NestedTooDeep(ContentError):
    """Markdown nested past `MAX_NESTING`; `line` is counted in the Markdown given (1 is its first)."""

    def __init__(self, line: int | None) -> None:
        self.line = line
        # What is wrong, after the name of what holds it ("the article", "the welcome email").
        self.detail = (f"is nested too deep (lists, quotes, links or emphasis more than {MAX_NESTING} levels "
                       "inside each other): flatten it")
        super().__init__(f"the article {self.detail}")


def _first_too_deep(tokens: list[Token]) -> Token | None:
    """The first block nested past `MAX_NESTING`, or holding text nested past it with its own."""
    for token in tokens:
        children = token.children or []
        if token.level >= MAX_NESTING or any(token.level + child.level >= MAX_NESTING for child in children):
            return token
    return None


def render_markdown(source: str, base_url: str, folder: Path | None = None) -> RenderedMarkdown:
    """Render `source` to HTML and to plain text; relative links resolve under `base_url`.

    `folder` is where the article's relative images are on disk, to read their sizes.
    Raises `NestedTooDeep` for Markdown nested past `MAX_NESTING`.
    """
    tokens = _md.parse(source)
    deep = _first_too_deep(tokens)
    if deep is not None:
        raise NestedTooDeep(deep.map[0] + 1 if deep.map else None)
    refused = _refuse_unsafe(tokens, source.split("\n"))
    headings, links = _as_written(tokens)  # before the levels are shifted and the addresses resolved
    images: list[LocalImage] = []
    _adapt_for_email(tokens, base_url, folder, images)
    html = _md.renderer.render(tokens, _md.options, {})
    return RenderedMarkdown(html=html, text=_PlainText().render(tokens), images=tuple(images),
                            refused=tuple(refused), headings=headings, links=links)


def _as_written(tokens: list[Token]) -> tuple[tuple[Heading, ...], tuple[WrittenLink, ...]]:
    """The headings, links and images of the Markdown, each with its line (a link's counted from its
    block's first line by the line breaks before it)."""
    headings: list[Heading] = []
    links: list[WrittenLink] = []
    for index, block in enumerate(tokens):
        if block.type == "heading_open" and index + 1 < len(tokens):
            text = "".join(c.content for c in tokens[index + 1].children or [] if c.type in ("text", "code_inline"))
            headings.append(Heading(int(block.tag[1]), " ".join(text.split()), block.map[0] + 1 if block.map else None))
        if block.type != "inline":
            continue
        line = block.map[0] + 1 if block.map else None
        open_links: list[tuple[str, int | None, list[str]]] = []  # (href, line, text so far), innermost last
        for child in block.children or []:
            if child.type in ("softbreak", "hardbreak"):
                line = line and line + 1
            elif child.type in ("text", "code_inline"):
                for _href, _line, text_parts in open_links:
                    text_parts.append(child.content)
            elif child.type == "link_open":
                open_links.append((str(child.attrGet("href") or ""), line, []))
            elif child.type == "link_close" and open_links:
                href, at, text_parts = open_links.pop()
                links.append(WrittenLink("link", href, " ".join("".join(text_parts).split()), at))
            elif child.type == "image":
                links.append(WrittenLink("image", str(child.attrGet("src") or ""), child.content, line))
    return tuple(headings), tuple(links)


def _refuse_unsafe(tokens: list[Token], lines: list[str]) -> list[RefusedLink]:
    """Unlink every link and image whose address markdown-it's `validateLink` refuses: a link
    keeps its text, an image becomes its alt text. Returns them, with the line each is on."""
    refused: list[RefusedLink] = []
    for block in tokens:
        if not block.children:
            continue
        kept: list[Token] = []
        unlinked = False
        for token in block.children:
            url = str(token.attrGet("href") or token.attrGet("src") or "")
            if token.type in ("link_open", "image") and not validateLink(url):
                written = unquote(url)
                refused.append(RefusedLink("link" if token.type == "link_open" else "image", written,
                                           _line_of(written, block.map, lines)))
                if token.type == "image":
                    kept.append(Token("text", "", 0, content=token.content))
                unlinked = token.type == "link_open"
                continue
            if token.type == "link_close" and unlinked:
                unlinked = False  # links do not nest: this closes the one unlinked
                continue
            kept.append(token)
        block.children = kept
    return refused


def _line_of(url: str, where: list[int] | None, lines: list[str]) -> int | None:
    """The line of the block at `where` that holds `url`, else the first line of the Markdown that
    does (a reference definition), else the block's first line."""
    start, end = where or (0, 0)
    for number in itertools.chain(range(start, end), range(len(lines))):
        if number < len(lines) and url in lines[number]:
            return number + 1
    return start + 1 if where else None


def _is_relative(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.scheme and not url.startswith(("#", "//"))


# The email's <h1> is the publication and each article's title an <h2>, so an
# article's own top heading level, whatever the writer used, becomes <h3>.
FIRST_ARTICLE_HEADING = 3


def _adapt_for_email(tokens: list[Token], base_url: str, folder: Path | None, images: list[LocalImage]) -> None:
    levels = [int(t.tag[1]) for t in tokens if t.type == "heading_open"]
    shift = FIRST_ARTICLE_HEADING - min(levels) if levels else 0
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + shift, 6)}"
    _absolutize(tokens, base_url, folder, images)


def _keep_plain_links(children: list[Token]) -> list[Token]:
    """Undo linkify's guesses at words that merely look like domains ("README.md",
    "Guardian.co.uk"), and send `www.` addresses to https rather than http."""
    kept: list[Token] = []
    skip_close = 0
    for index, token in enumerate(children):
        if token.type == "link_open" and token.markup == "linkify":
            text = children[index + 1].content if index + 1 < len(children) else ""
            if not text.lower().startswith(_LINK_PREFIXES) and "@" not in text:
                skip_close += 1
                continue
            if text.lower().startswith("www."):
                token.attrSet("href", "https://" + str(token.attrGet("href")).split("://", 1)[-1])
        elif token.type == "link_close" and token.markup == "linkify" and skip_close:
            skip_close -= 1
            continue
        kept.append(token)
    return kept


# A URL used as its own link text is shown shorter in the HTML when it is longer than this:
# as its host and the start of its path, at most this long (about two thirds of the column).
LONG_LINK_TEXT = 50


def short_url(url: str, limit: int = LONG_LINK_TEXT) -> str:
    """How a long URL that is its own link text reads: host and a shortened path.

    `https://www.example.org/content/8d1b2f5e…` → `example.org/content/8d1b2f5e…`; a URL
    within `limit` is kept as written.
    """
    if len(url) <= limit:
        return url
    parts = urlsplit(url if "://" in url else f"https://{url}")
    host = (parts.hostname or "").removeprefix("www.")
    rest = parts.path.rstrip("/") + ("?" + parts.query if parts.query else "") + (
        "#" + parts.fragment if parts.fragment else "")
    shown = host + rest
    if len(shown) <= limit:
        return shown
    if len(host) >= limit - 2:
        return f"{host}/…"
    return shown[:limit - 1].rstrip("/?#&=-_.") + "…"


def _shorten_url_texts(children: list[Token]) -> None:
    """Long URLs that are their own link text (pasted bare, or as `<…>` or `[url](url)`) shown
    shorter in the HTML; the href stays whole, and the text part (see `_PlainText`) keeps
    the whole URL, read from the token's meta."""
    for index, token in enumerate(children[:-2]):
        text, close = children[index + 1], children[index + 2]
        if token.type != "link_open" or text.type != "text" or close.type != "link_close":
            continue
        href = str(token.attrGet("href") or "")
        if text.content in (href, href.split("://", 1)[-1]) and len(text.content) > LONG_LINK_TEXT:
            text.meta = {**(text.meta or {}), "url_as_text": text.content}
            text.content = short_url(text.content)


def _absolutize(tokens: list[Token], base_url: str, folder: Path | None, images: list[LocalImage]) -> None:
    for token in tokens:
        if token.children:
            token.children = _keep_plain_links(token.children)
            _shorten_url_texts(token.children)
            _absolutize(token.children, base_url, folder, images)
        if token.type == "image":
            src = str(token.attrGet("src") or "")
            width, height = IMAGE_WIDTH, None
            if _is_relative(src):
                url = urljoin(base_url, src)
                token.attrSet("src", url)
                if folder is not None:
                    local = folder / unquote(src.split("?")[0].split("#")[0])
                    images.append(LocalImage(src, url, local))
                    # The size of the file readers get (upright, scaled), shown at most a column wide.
                    size = display_size(local)
                    if size is not None:
                        width = min(size[0], IMAGE_WIDTH)
                        height = max(1, round(size[1] * width / size[0]))
            token.attrSet("width", str(width))
            if height is not None:
                token.attrSet("height", str(height))
            token.attrSet("style", _image_style(width))
        elif token.type == "link_open":
            href = str(token.attrGet("href") or "")
            if href and _is_relative(href):
                token.attrSet("href", urljoin(base_url, href))


class _PlainText:
    """Walks markdown-it block tokens and writes readable plain text, wrapped at 78.

    Every block is wrapped to the width left after its prefixes (a list marker's
    indent, a quote's "> "), so no line grows past 78 characters except a URL that
    is longer on its own.
    """

    def render(self, tokens: list[Token]) -> str:
        self.tokens = tokens
        self.pos = 0
        return "\n\n".join(b for b in self._blocks(None, TEXT_WIDTH) if b.strip()) + "\n"

    def _blocks(self, until: str | None, width: int) -> list[str]:
        blocks: list[str] = []
        while self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            self.pos += 1
            if until and token.type == until:
                break
            if token.type == "heading_open":
                text = self._inline_text(self.tokens[self.pos])
                self.pos += 2  # inline, heading_close
                wrapped = wrap(text, width)
                longest = max(len(line) for line in wrapped.splitlines())
                blocks.append(f"{wrapped}\n{'-' * longest}")
            elif token.type == "paragraph_open":
                text = self._inline_text(self.tokens[self.pos])
                self.pos += 2  # inline, paragraph_close
                blocks.append(wrap(text, width))
            elif token.type in ("bullet_list_open", "ordered_list_open"):
                blocks.append(self._list(token, width))
            elif token.type == "blockquote_open":
                inner = "\n\n".join(self._blocks("blockquote_close", width - 2))
                blocks.append("\n".join(("> " + line).rstrip() for line in inner.splitlines()))
            elif token.type in ("fence", "code_block"):
                blocks.append("\n".join("    " + line for line in token.content.rstrip("\n").splitlines()))
            elif token.type == "hr":
                blocks.append("-" * 20)
        return blocks

    def _list(self, opener: Token, width: int) -> str:
        closer = opener.type.replace("_open", "_close")
        ordered = opener.type == "ordered_list_open"
        number = int(opener.attrGet("start") or 1)
        tight = not any(t.type == "paragraph_open" and not t.hidden for t in self.tokens[self.pos:self._closing(closer)])
        items: list[str] = []
        while self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            self.pos += 1
            if token.type == closer:
                break
            if token.type == "list_item_open":
                marker = f"{number}. " if ordered else "- "
                number += 1
                indent = " " * len(marker)
                body = ("\n" if tight else "\n\n").join(self._blocks("list_item_close", width - len(marker)))
                lines = body.splitlines() or [""]
                items.append("\n".join([marker + lines[0]] + [indent + line if line else "" for line in lines[1:]]))
        return ("\n" if tight else "\n\n").join(items)

    def _closing(self, closer: str) -> int:
        depth = 0
        opener = closer.replace("_close", "_open")
        for index in range(self.pos, len(self.tokens)):
            kind = self.tokens[index].type
            if kind == opener:
                depth += 1
            elif kind == closer:
                if depth == 0:
                    return index
                depth -= 1
        return len(self.tokens)

    def _inline_text(self, inline: Token) -> str:
        out: list[str] = []
        href_stack: list[tuple[str, int]] = []
        for child in inline.children or []:
            if child.type == "text":
                out.append((child.meta or {}).get("url_as_text", child.content))
            elif child.type == "code_inline":
                out.append(child.content)
            elif child.type == "softbreak":
                out.append(" ")
            elif child.type == "hardbreak":
                out.append("\n")
            elif child.type in ("s_open", "s_close"):
                out.append("~~")  # struck-out text keeps its meaning: "~~old~~ new"
            elif child.type == "link_open":
                href_stack.append((str(child.attrGet("href") or ""), len(out)))
            elif child.type == "link_close" and href_stack:
                href, start = href_stack.pop()
                label = "".join(out[start:]).strip()
                if href and label not in (href, href.removeprefix("mailto:"), href.split("://", 1)[-1]):
                    out.append(f" ({href})")
            elif child.type == "image":
                alt = child.content or "image"
                out.append(f"[{alt}] ({child.attrGet('src')})")
        return "".join(out).strip()


def wrap(text: str, width: int = TEXT_WIDTH, hanging: str = "") -> str:
    """Wrap at `width` without breaking URLs or words; hard breaks are kept.

    `hanging` indents every line but the first (a list item's text under its marker).
    """
    return "\n".join(
        textwrap.fill(line, width=max(width, 20), subsequent_indent=hanging,
                      break_long_words=False, break_on_hyphens=False) or ""
        for line in text.split("\n")
    )
