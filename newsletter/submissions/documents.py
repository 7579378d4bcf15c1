"""Word documents and HTML (a Google Docs export) → HTML → the blocks of a `Draft`.

mammoth turns a .docx into semantic HTML (headings, paragraphs, lists, emphasis,
links, images with their alt text) and leaves Word's styling behind. A Google Docs
export is HTML already, but class soup: bold and italic live in CSS rules of its
`<style>`, links go through `https://www.google.com/url?q=…`, and empty paragraphs
space it out. Both are walked by one reader (BeautifulSoup) into the blocks that
`draft.py` writes as Markdown, with the same escaping as plain text; a Markdown
converter would escape by its own rules, and the text must come out as written.
The writer's habits that survive in documents (a placeholder line, the byline
under the title, a label over citations) are recognised with `plaintext`'s rules.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from bs4 import BeautifulSoup
from bs4.element import NavigableString, Tag
from bs4.element import Comment, Doctype, PageElement, ProcessingInstruction

from newsletter.errors import ContentError, where
from newsletter.files.reading import read_file
from newsletter.submissions import pictures, plaintext
from newsletter.submissions.draft import (
    Block, Draft, Emphasis, Heading, Image, Inline, LineBreak, Link, ListBlock, ListItem, Note, Paragraph, Quote, Text,
    all_inlines, plain, without_images,
)


@dataclass(frozen=True)
class SourceImage:
    """An image a document holds or names, checked (`pictures`); `key` is its `src` in the
    draft until it is named. Its bytes are read once: what was checked is what is written."""

    key: str
    alt: str
    data: bytes
    extension: str = "png"


@dataclass
class DocumentDraft:
    draft: Draft
    images: list[SourceImage]


# -- .docx ------------------------------------------------------------------------------

def read_docx(path: Path) -> DocumentDraft:
    """A Word document's text and images; each image keeps its alt text.

    An image Word holds in a format no email shows (EMF, TIFF, SVG) is left out with a
    warning at its paragraph."""
    import mammoth

    held: dict[str, tuple[bytes | None, str]] = {}  # key → bytes (None: not in the document), content type

    def keep_image(image: mammoth.documents.Image) -> dict[str, str]:
        try:
            with image.open() as handle:
                data: bytes | None = handle.read()
        except Exception:  # noqa: BLE001 - a linked image (mammoth reads none) or a part missing from the zip
            data = None
        key = f"image-{len(held) + 1}"
        held[key] = (data, image.content_type or "")
        return {"src": key}

    try:
        with path.open("rb") as handle:
            # A picture linked rather than embedded names a file outside the document
            # (any path, or a URL): never read.
            result = mammoth.convert_to_html(handle, convert_image=mammoth.images.img_element(keep_image),
                                             external_file_access=False)
    except OSError as exc:
        raise ContentError(f"{where(path)}: cannot read it ({exc.strerror})") from None
    except Exception as exc:  # noqa: BLE001 - a file that is no Word document fails in zipfile or XML parsing
        raise ContentError(f"{where(path)}: not a Word document mammoth can read ({type(exc).__name__}: {exc})") from None
    draft = html_to_draft(result.value, path, unit="paragraph")
    images: list[SourceImage] = []
    refused: set[str] = set()
    for key, alt, paragraph in _image_sources(draft):
        if key not in held:
            continue
        data, content_type = held[key]
        try:
            if data is None:
                raise pictures.RefusedImage("is linked, not inside the document: insert the picture itself")
            extension = pictures.picture_extension(data, content_type=content_type)
        except pictures.RefusedImage as refusal:
            refused.add(key)
            described = f"“{alt}”" if alt else "without alt text"
            draft.notes.append(Note(path, paragraph, f"an image ({described}, {content_type or 'of no declared type'}) "
                                                     f"{refusal}: left out", "paragraph"))
            continue
        images.append(SourceImage(key, alt, data, extension))
    if refused:
        draft.blocks = without_images(draft.blocks, refused)
    return DocumentDraft(draft, images)


# -- .html ------------------------------------------------------------------------------

def read_html(path: Path) -> DocumentDraft:
    """An HTML file (a Google Docs export, a page saved from a browser) and the images it names.

    An image is taken when it is embedded (`data:`) or a file beside the HTML file, and is
    an image an email shows (`pictures`); one on the web stays as it is; any other is
    left out with a warning at its line, and nothing of it is read into the issue."""
    raw = read_file(path, ContentError)
    text, _ = plaintext.decode_text(raw, path)
    draft = html_to_draft(text, path, unit="line")
    images: list[SourceImage] = []
    refused: set[str] = set()
    for src, alt, line in _image_sources(draft):
        if pictures.is_web_address(src):
            continue
        try:
            picture = _embedded_picture(src) if src.lower().startswith("data:") else \
                pictures.read_picture(pictures.file_beside(path, src))
        except pictures.RefusedImage as refusal:
            refused.add(src)
            hint = "; export the document with its images (a .zip) and unpack it" if refusal.missing else ""
            draft.notes.append(Note(path, line, f"the image {pictures.shown(src)} {refusal}: left out{hint}"))
            continue
        images.append(SourceImage(src, alt, picture.data, picture.extension))
    if refused:
        draft.blocks = without_images(draft.blocks, refused)
    return DocumentDraft(draft, images)


def _embedded_picture(src: str) -> pictures.Picture:
    """The image of a `data:` URI, checked as a file beside the document would be."""
    header, _, payload = src.partition(",")
    content_type = header[5:].split(";")[0]
    try:
        data = base64.b64decode(payload, validate=False) if ";base64" in header.lower() else unquote(payload).encode()
    except ValueError:
        raise pictures.RefusedImage("is embedded but cannot be decoded") from None
    return pictures.Picture(data, pictures.picture_extension(data, content_type=content_type))


def _image_sources(draft: Draft) -> list[tuple[str, str, int | None]]:
    found: list[tuple[str, str, int | None]] = []
    seen: set[str] = set()
    for block in draft.blocks:
        for run in _block_runs(block):
            if isinstance(run, Image) and run.src not in seen:
                seen.add(run.src)
                found.append((run.src, run.alt, getattr(block, "line", None)))
    return found


def _block_runs(block: Block) -> list[Inline]:
    return all_inlines([block])


# -- HTML → blocks ----------------------------------------------------------------------

_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")
_BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "blockquote", "div", "table", "section",
           "article", "main", "header", "footer", "figure", "figcaption", "li", "pre", "hr", "tr", "td", "th", "tbody",
           "thead", "body", "center"}
_DROPPED = {"script", "style", "head", "title", "meta", "link", "noscript", "template", "svg", "iframe", "object"}


@dataclass(frozen=True)
class _Styles:
    """Which CSS classes of a document make text bold or italic (Google Docs puts it there)."""

    bold: frozenset[str]
    italic: frozenset[str]

    @staticmethod
    def of(soup: BeautifulSoup) -> _Styles:
        bold: set[str] = set()
        italic: set[str] = set()
        for style in soup.find_all("style"):
            for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", style.get_text()):
                for selector in selectors.split(","):
                    match = re.fullmatch(r"\s*\.([\w-]+)\s*", selector)
                    if match:
                        if _is_bold(body):
                            bold.add(match.group(1))
                        if _is_italic(body):
                            italic.add(match.group(1))
        return _Styles(frozenset(bold), frozenset(italic))


def _is_bold(css: str) -> bool:
    match = re.search(r"font-weight\s*:\s*(\w+)", css)
    if not match:
        return False
    return match.group(1) == "bold" or (match.group(1).isascii() and match.group(1).isdigit()
                                         and int(match.group(1)) >= 600)


def _is_italic(css: str) -> bool:
    return bool(re.search(r"font-style\s*:\s*italic", css))


def real_url(href: str) -> str:
    """The address behind Google's redirect (`https://www.google.com/url?q=REAL&sa=D…`)."""
    parts = urlsplit(href)
    if parts.netloc.lower() in ("www.google.com", "google.com") and parts.path == "/url":
        target = parse_qs(parts.query).get("q") or parse_qs(parts.query).get("url")
        if target and target[0]:
            return target[0]
    return href


class _Reader:
    def __init__(self, soup: BeautifulSoup, source: Path, unit: str) -> None:
        self.styles = _Styles.of(soup)
        self.source = source
        self.unit = unit
        self.count = 0  # paragraphs so far: a .docx has no lines to name

    def line(self, tag: Tag) -> int | None:
        if self.unit == "line":
            return getattr(tag, "sourceline", None)
        return self.count

    def blocks(self, parent: Tag) -> list[Block]:
        out: list[Block] = []
        loose: list[Inline] = []  # inline content directly in a <div> or <body>
        loose_from: list[Tag] = []  # the element it starts at, for its line

        def flush() -> None:
            runs = _trim(loose)
            if runs:
                self.count += 1
                out.append(Paragraph(runs, self.line(loose_from[0] if loose_from else parent)))
            loose.clear()
            loose_from.clear()

        docs_lists: list[tuple[int, Tag]] = []  # consecutive Google Docs lists, with their levels

        def flush_lists() -> None:
            if docs_lists:
                out.append(self.leveled_list(docs_lists))
            docs_lists.clear()

        for child in parent.children:
            if isinstance(child, (Comment, Doctype, ProcessingInstruction)):
                continue
            if isinstance(child, NavigableString):
                if docs_lists and not str(child).strip():
                    continue  # the space between two of a Docs list's levels
                flush_lists()
                loose.extend(self.inlines_of_string(str(child), in_link=False))
                continue
            if not isinstance(child, Tag) or child.name in _DROPPED:
                continue
            level = _docs_list_level(child)
            if level is not None:
                flush()
                docs_lists.append((level, child))
                continue
            flush_lists()
            if child.name not in _BLOCKS:
                # The element itself, not only what is inside it: an <img> right in the <body>, a
                # <div> or a <figure> was lost without a word.
                loose.extend(self.runs_of([child], bold=False, italic=False, in_link=False))
                loose_from.append(child)
                continue
            flush()
            out.extend(self.block(child))
        flush_lists()
        flush()
        return out

    def leveled_list(self, lists: list[tuple[int, Tag]]) -> ListBlock:
        """Google Docs' flat lists as one nested list.

        A Docs export writes each run of items of one nesting level as a list of its own,
        one after the other, with the level in a class (`lst-kix_<id>-1` is the second
        level): an item of a deeper level belongs to the item above it.
        """
        entries = [(level, tag.name == "ol", item) for level, tag in lists for item in self.list_block(tag).items]
        nested, _ = _nest(entries, 0, min(level for level, _, _ in entries))
        return replace(nested, line=self.line(lists[0][1]))

    def block(self, tag: Tag) -> list[Block]:
        name = tag.name
        if name in ("p", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "li", "td", "th"):
            if name in ("li", "td", "th") and tag.find(_BLOCKS - {"li"}):
                return self.blocks(tag)
            runs = _trim(self.inlines(tag, bold=False, italic=False, in_link=False))
            if not runs:
                return []
            self.count += 1
            classes = set(tag.get("class") or [])
            if name.startswith("h"):
                return [Heading(int(name[1]), _without_emphasis(runs), self.line(tag))]
            if "title" in classes:  # Google Docs' "Title" paragraph style
                return [Heading(1, _without_emphasis(runs), self.line(tag))]
            return [Paragraph(runs, self.line(tag))]
        if name in ("ul", "ol"):
            return [self.list_block(tag)]
        if name == "blockquote":
            inner = self.blocks(tag)
            return [Quote(tuple(inner), self.line(tag))] if inner else []
        if name == "hr":
            return []
        return self.blocks(tag)

    def list_block(self, tag: Tag) -> ListBlock:
        items: list[ListItem] = []
        line = self.line(tag)
        for child in tag.find_all("li", recursive=False):
            sublists = [self.list_block(s) for s in child.find_all(["ul", "ol"], recursive=False)]
            runs: list[Inline] = []
            for part in child.children:
                if isinstance(part, Tag) and part.name in ("ul", "ol"):
                    continue
                if isinstance(part, Tag) and part.name == "p":
                    if runs:
                        runs.append(LineBreak())
                    runs.extend(self.inlines(part, bold=False, italic=False, in_link=False))
                elif isinstance(part, NavigableString) and not isinstance(part, Comment):
                    runs.extend(self.inlines_of_string(str(part), in_link=False))
                elif isinstance(part, Tag) and part.name not in _DROPPED:
                    # The part itself, not only what is inside it: an <img> or <br> right in the item.
                    runs.extend(self.runs_of([part], bold=False, italic=False, in_link=False))
            self.count += 1
            items.append(ListItem(_trim(runs), tuple(sublists)))
        return ListBlock(tuple(items), ordered=tag.name == "ol", line=line)

    def inlines_of_string(self, text: str, in_link: bool) -> list[Inline]:
        text = _HTML_SPACE.sub(" ", text)
        if not text:
            return []
        return [Text(text)] if in_link else list(_plain_runs(text))

    def inlines(self, tag: Tag, bold: bool, italic: bool, in_link: bool) -> list[Inline]:
        return self.runs_of(tag.children, bold, italic, in_link)

    def runs_of(self, children: Iterable[PageElement], bold: bool, italic: bool, in_link: bool) -> list[Inline]:
        runs: list[Inline] = []
        for child in children:
            if isinstance(child, (Comment, Doctype, ProcessingInstruction)):
                continue
            if isinstance(child, NavigableString):
                runs.extend(self.inlines_of_string(str(child), in_link))
                continue
            if not isinstance(child, Tag) or child.name in _DROPPED:
                continue
            name = child.name
            if name == "br":
                runs.append(LineBreak())
            elif name == "img":
                src = str(child.get("src") or "").strip()
                if src:
                    alt = " ".join(str(child.get("alt") or child.get("title") or "").split())
                    runs.append(Image(src, alt))
            elif name == "a":
                href = real_url(str(child.get("href") or "").strip())
                inner = self.inlines(child, False, False, in_link=True)
                if _is_comment_marker(child, href):
                    continue
                if not href or href.startswith("#") or in_link:
                    runs.extend(inner)
                elif inner:
                    runs.append(Link(href, tuple(_trim(inner))))
            elif name in ("sup", "sub") and child.find("a", href=re.compile(r"^#(cmnt|ftnt)")):
                continue
            else:
                classes = set(child.get("class") or [])
                style = str(child.get("style") or "")
                strong = name in ("strong", "b") or bool(classes & self.styles.bold) or _is_bold(style)
                emphasised = name in ("em", "i") or bool(classes & self.styles.italic) or _is_italic(style)
                inner = self.inlines(child, bold or strong, italic or emphasised, in_link)
                if strong and not bold and _has_text(inner):
                    inner = [Emphasis(tuple(inner), strong=True)]
                if emphasised and not italic and _has_text(inner):
                    inner = [Emphasis(tuple(inner))]
                runs.extend(inner)
        return runs


_DOCS_LIST_LEVEL = re.compile(r"lst-kix_\w+-(\d+)")


def _docs_list_level(tag: Tag) -> int | None:
    """The nesting level of a Google Docs export's `<ul class="lst-kix_x-1">`, or None."""
    if tag.name not in ("ul", "ol"):
        return None
    for name in tag.get("class") or []:
        match = _DOCS_LIST_LEVEL.fullmatch(name)
        if match:
            return int(match[1])
    return None


def _nest(entries: list[tuple[int, bool, ListItem]], start: int, level: int) -> tuple[ListBlock, int]:
    """The list of `level` that starts at `entries[start]`, with the deeper entries after each
    item as its sublists; and where it ends (an entry of a shallower level, or the end)."""
    items: list[tuple[tuple[Inline, ...], list[ListBlock]]] = []
    index = start
    while index < len(entries) and entries[index][0] >= level:
        entry_level, _, item = entries[index]
        if entry_level == level:
            items.append((item.inlines, list(item.children)))
            index += 1
            continue
        sublist, index = _nest(entries, index, entry_level)
        if items:
            items[-1][1].append(sublist)
        else:  # a list that starts deeper than it goes on: its first item holds only the sublist
            items.append(((), [sublist]))
    ordered = entries[start][1]
    return ListBlock(tuple(ListItem(inlines, tuple(children)) for inlines, children in items), ordered=ordered), index


def _is_comment_marker(tag: Tag, href: str) -> bool:
    return bool(re.match(r"^#(cmnt|ftnt)", href)) or str(tag.get("id") or "").startswith(("cmnt", "ftnt"))


def _has_text(runs: list[Inline]) -> bool:
    return bool(plain(tuple(runs)).strip())


def _plain_runs(text: str) -> tuple[Inline, ...]:
    """Text of a document outside links: bare URLs become links and `*emphasis*` emphasis,
    as in plain text."""
    return plaintext.parse_inline(text)


def _trim(runs: list[Inline]) -> tuple[Inline, ...]:
    """Merge neighbouring text, collapse spaces, and drop what stands at the ends of lines:
    spaces and non-breaking spaces, as a writer does not see them."""
    merged: list[Inline] = []
    for run in runs:
        if isinstance(run, Text) and merged and isinstance(merged[-1], Text):
            merged[-1] = Text(merged[-1].text + run.text)
        else:
            merged.append(run)
    for index, run in enumerate(merged):
        if isinstance(run, Text):
            text = re.sub(r" {2,}", " ", run.text)
            if index == 0 or isinstance(merged[index - 1], LineBreak):
                text = text.lstrip(" \u00a0")
            if index == len(merged) - 1 or isinstance(merged[index + 1], LineBreak):
                text = text.rstrip(" \u00a0")
            merged[index] = Text(text)
    kept = [run for run in merged if not (isinstance(run, Text) and not run.text)]
    while kept and isinstance(kept[-1], LineBreak):
        kept.pop()
    while kept and isinstance(kept[0], LineBreak):
        kept.pop(0)
    return tuple(kept)


def _without_emphasis(runs: tuple[Inline, ...]) -> tuple[Inline, ...]:
    """A heading's runs without the bold a word processor puts on every heading."""
    out: list[Inline] = []
    for run in runs:
        if isinstance(run, Emphasis):
            out.extend(_without_emphasis(run.children))
        else:
            out.append(run)
    return tuple(out)


# How deep elements may sit inside each other in a submission. The reader walks the tree
# recursively: a file of 50,000 nested <div>s (or <b>s, <blockquote>s, lists) ended `add`
# in a RecursionError traceback. A word processor's export nests a dozen deep at most.
MAX_HTML_DEPTH = 100


def _refuse_deep(soup: BeautifulSoup, source: Path, unit: str) -> None:
    """`ContentError` naming the first element nested past `MAX_HTML_DEPTH` (walked without recursion)."""
    pending: list[tuple[Tag, int]] = [(soup, 0)]
    while pending:
        tag, depth = pending.pop()
        if depth > MAX_HTML_DEPTH:
            line = getattr(tag, "sourceline", None) if unit == "line" else None
            raise ContentError(f"{where(source, line)}: elements are nested more than {MAX_HTML_DEPTH} deep "
                               "(lists, quotes, tables or formatting inside each other): nothing was added; "
                               "flatten the document, or paste its text into a .txt file")
        pending.extend((child, depth + 1) for child in tag.children if isinstance(child, Tag))


def html_to_draft(html: str, source: Path, unit: str) -> Draft:
    """Recognise the title, byline and body of an HTML document (or mammoth's HTML of a .docx)."""
    soup = BeautifulSoup(html, "html.parser")
    _refuse_deep(soup, source, unit)
    for marker in soup.find_all("a", id=re.compile(r"^cmnt\d")):
        holder = marker.find_parent("div")  # Google Docs puts each comment in a <div> at the end
        if holder is not None:
            holder.decompose()
    reader = _Reader(soup, source, unit)
    body = soup.body or soup
    blocks = reader.blocks(body)
    draft = Draft()
    _recognise(draft, blocks, source, unit)
    return draft


def _recognise(draft: Draft, blocks: list[Block], source: Path, unit: str) -> None:
    """The writer's habits in a document: placeholder lines, title, byline, a label over items."""
    notes = draft.notes
    kept: list[Block] = []
    for block in blocks:
        if isinstance(block, Paragraph) and not any(isinstance(r, Image) for r in block.inlines) \
                and plaintext.is_placeholder(plain(block.inlines)):
            notes.append(Note(source, block.line, f"“{plain(block.inlines)}” names an image that did not come "
                                                  "with the text: left out; add the image yourself", unit))
            continue
        kept.append(block)
    first = kept[0] if kept else None
    if isinstance(first, (Heading, Paragraph)) and not any(isinstance(r, Image) for r in first.inlines):
        kept.pop(0)
        draft.title = " ".join(plain(first.inlines).split())
        if isinstance(first, Paragraph) and not plaintext.reads_like_title(draft.title):
            notes.append(Note(source, first.line, f"took “{draft.title[:60]}” as the title, though it reads like "
                                                  "a sentence: pass --title if it is not", unit))
        if kept and isinstance(kept[0], Paragraph):
            author = plaintext.byline_author(" ".join(plain(kept[0].inlines).split()))
            if author is not None:
                draft.author = author
                kept.pop(0)
        if not draft.author:
            notes.append(Note(source, first.line, plaintext.NO_BYLINE, unit))
    draft.blocks = _labelled_lists(kept, notes, source, unit)


def _labelled_lists(blocks: list[Block], notes: list[Note], source: Path, unit: str) -> list[Block]:
    """A label paragraph ("Sources:") over one-line paragraphs of citations: a list under it."""
    out: list[Block] = []
    index = 0
    while index < len(blocks):
        block = blocks[index]
        index += 1
        out.append(block)
        if not (isinstance(block, Paragraph) and plaintext.is_label(plain(block.inlines))):
            continue
        items: list[Paragraph] = []
        while index < len(blocks):
            following = blocks[index]
            if not isinstance(following, Paragraph) or not plaintext.item_like(plain(following.inlines)):
                break
            items.append(following)
            index += 1
        if items:
            out.append(ListBlock(tuple(ListItem(p.inlines) for p in items), line=items[0].line))
    for block in out:
        if isinstance(block, ListBlock):
            for item in block.items:
                text = plain(item.inlines)
                if text.endswith(","):
                    notes.append(Note(source, block.line, f"the item “{text[:60]}” ends in a comma, as if its "
                                                          "link was lost: kept as written; you may want to find "
                                                          "the link", unit))
    return out


# -- .md --------------------------------------------------------------------------------

def read_markdown(path: Path) -> Draft:
    """A Markdown submission: its front matter kept (or made from its first lines), its body as written."""
    from newsletter.files.yamledit import parse_document

    raw = read_file(path, ContentError)
    text, encoding = plaintext.decode_text(raw, path)
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    draft = Draft(encoding=encoding)
    start = 0
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
        if end is None:
            raise ContentError(f"{where(path, 1)}: the front matter is not closed by a `---` line")
        front = parse_document("\n".join(lines[1:end]) + "\n", path, ContentError)
        draft.front_matter = front
        draft.title = " ".join(str(front.get("title") or "").split())
        draft.author = " ".join(str(front.get("author") or "").split())
        start = end + 1
    # Each line of the body with its number in the submission, for warnings about it.
    body = [(number, line.rstrip(" \t\u00a0")) for number, line in enumerate(lines[start:], start=start + 1)]
    if not draft.title:
        first = next((i for i, (_, line) in enumerate(body) if line.strip()), None)
        if first is not None:
            heading = re.match(r"^#{1,6}\s+(.*?)(?:\s+#+)?$", body[first][1].strip())
            line = re.sub(r"\\(.)", r"\1", heading.group(1) if heading else body[first][1].strip())
            draft.title = line
            del body[first]
            following = next((i for i, (_, text) in enumerate(body) if text.strip()), None)
            if following is not None and not draft.author:
                author = plaintext.byline_author(re.sub(r"[*_]", "", body[following][1].strip()))
                if author is not None:
                    draft.author = author
                    del body[following]
    while body and not body[0][1].strip():
        body.pop(0)
    if body:
        draft.body_line = body[0][0]
    draft.body_markdown = "\n".join(line for _, line in body).rstrip("\n") + "\n"
    return draft
