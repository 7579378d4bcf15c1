"""`newsletter new` and `newsletter add`: an issue's issue.yaml, and submissions turned into its articles.

`create_issue` writes `issues/<issue>/issue.yaml` for a new issue. `add_submissions`
converts each submission (.txt, .md, .docx, .html) into `issues/<issue>/NN-slug.md`,
writes its images beside it, and appends the file to `articles` in issue.yaml with a
round-trip edit that keeps the editor's comments, key order and quoting. Every
submission is converted before anything is written, so a bad file leaves the issue
as it was.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from markdown_it.token import Token
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from newsletter.files.atomic import write_text
from newsletter.config import Settings
from newsletter.content import ISSUE_FILE, issue_folder, new_issue_id
from newsletter.errors import ContentError, where
from newsletter.files.reading import read_file
from newsletter.sending.ledger import LedgerCounts, Schedule, ledger_path, read_ledger
from newsletter.submissions import documents, pictures, plaintext
from newsletter.submissions.draft import (
    Block,
    Draft,
    Link,
    ListBlock,
    Note,
    Paragraph,
    Quote,
    all_inlines,
    blocks_markdown,
    plain,
    rename_images,
)
from newsletter.files.yamledit import DEFAULT_INDENTATION, dump_document, load_document, save_document

FORMATS = {
    ".txt": "plain text",
    ".md": "Markdown",
    ".markdown": "Markdown",
    ".docx": "Word",
    ".html": "HTML",
    ".htm": "HTML",
}


# -- new --------------------------------------------------------------------------------

@dataclass(frozen=True)
class NewIssue:
    name: str
    path: Path
    subject: str
    date: dt.date


_ISSUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_NUMBERED_ISSUE = re.compile(r"^issue-(\d+)$")


def next_issue_name(settings: Settings) -> str:
    """`issue-N` after the highest `issue-N` folder in issues/ (`issue-1` when there is none)."""
    numbers = [int(m.group(1)) for p in settings.issues_dir.glob("issue-*")
               if p.is_dir() and (m := _NUMBERED_ISSUE.match(p.name))]
    return f"issue-{max(numbers, default=0) + 1}"


def create_issue(settings: Settings, name: str | None, subject: str = "", date: dt.date | None = None) -> NewIssue:
    """Write `issues/<name>/issue.yaml`: subject, date, `draft: true`, no articles yet."""
    name = (name or next_issue_name(settings)).strip().rstrip("/")
    if name.startswith(f"{settings.issues_dir.name}/"):
        name = name.split("/", 1)[1]
    if not _ISSUE_NAME.match(name):
        raise ContentError(f"{name!r} cannot name an issue: it becomes a folder and a web address, so use "
                           "letters, digits, '-', '_' and '.' (like issue-12)")
    path = settings.issues_dir / name / ISSUE_FILE
    if path.exists():
        raise ContentError(f"{where(path)}: issue {name!r} already exists; nothing was changed")
    date = date or dt.date.today()
    data = CommentedMap()
    data["subject"] = " ".join(subject.split())
    if not data["subject"]:
        data.yaml_add_eol_comment("required: the email's subject line", "subject")
    data["date"] = date
    # Its send ledger records it: the issue is the same one after its folder is renamed.
    data["id"] = new_issue_id()
    data["draft"] = True
    data["articles"] = CommentedSeq()  # `newsletter add` appends to it
    save_document(path, data, ContentError)  # its folder made with it
    return NewIssue(name, path, data["subject"], date)


# -- add --------------------------------------------------------------------------------

@dataclass(frozen=True)
class WrittenImage:
    """An image of an article: its `src` (a file of the issue, or an address), and the bytes
    to write there (checked by `pictures`; None when nothing is to be written)."""

    filename: str
    alt: str
    data: bytes | None = None


@dataclass(frozen=True)
class ConvertedArticle:
    """One submission as an article: what was recognised, and the Markdown to write."""

    source: Path
    kind: str  # "plain text (UTF-8)", "Word", …
    filename: str
    path: Path
    title: str
    author: str
    markdown: str
    paragraphs: int
    lists: tuple[int, ...]  # the items of each list
    links: tuple[str, ...]
    images: tuple[WrittenImage, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class AddReport:
    issue: str
    issue_yaml: Path
    articles: tuple[ConvertedArticle, ...]
    dry_run: bool
    listed: tuple[str, ...]  # `articles` in issue.yaml afterwards
    notes: tuple[str, ...] = ()

    @property
    def warnings(self) -> list[str]:
        return [*self.notes, *(w for a in self.articles for w in a.warnings)]

    def lines(self) -> list[str]:
        """What was recognised in each submission (warnings are separate: `warnings`)."""
        out: list[str] = []
        for article in self.articles:
            out.append(f"{where(article.source)} ({article.kind}) → {where(article.path)}")
            out.append(f"  title:      {article.title}")
            out.append(f"  author:     {article.author or '(none)'}")
            out.append(f"  paragraphs: {article.paragraphs}")
            lists = ", ".join(f"{n} item{'s' if n != 1 else ''}" for n in article.lists)
            out.append(f"  lists:      {len(article.lists)}" + (f" ({lists})" if lists else ""))
            out.append(f"  links:      {len(article.links)}")
            out.extend(f"    {href}" for href in article.links)
            out.append(f"  images:     {len(article.images)}")
            out.extend(f"    {image.filename}: " + (f"“{image.alt}”" if image.alt else "(no alt text: add one)")
                       for image in article.images)
        if self.dry_run:
            for article in self.articles:
                out.append(f"--- {where(article.path)} (dry run: nothing written)")
                out.append(article.markdown.rstrip("\n"))
        else:
            count = len(self.listed)
            out.append(f"Listed in {where(self.issue_yaml)} ({count} article{'s' if count != 1 else ''}). "
                       f"Next: newsletter preview {self.issue}")
        return out


@dataclass
class _Plan:
    folder: Path
    listed: list[str]
    taken: set[str] = field(default_factory=set)
    images: dict[str, bytes] = field(default_factory=dict)  # images the submissions bring, by file name


def add_submissions(settings: Settings, issue: str, files: Sequence[Path], title: str | None = None,
                    author: str | None = None, dry_run: bool = False) -> AddReport:
    """Convert `files` into articles of `issue`, listed in its issue.yaml after the ones there."""
    if not files:
        raise ContentError("name at least one submission to add")
    if title and len(files) > 1:
        raise ContentError("--title names one article: add the submissions one at a time to give each its title")
    folder = issue_folder(settings, issue)
    yaml_path = folder / ISSUE_FILE
    data, indentation = load_document(yaml_path, ContentError)
    notes: list[str] = []
    listed = data.get("articles")
    if listed is None:
        # Without a list the issue has every *.md by name: write that list down, so adding
        # one file does not drop the others.
        current = sorted(p.name for p in folder.glob("*.md") if p.is_file())
        if current:
            notes.append(f"{where(yaml_path)}: had no `articles` list, so the issue was every *.md file; "
                         f"listed them ({', '.join(current)}) before the new ones")
        listed = CommentedSeq(current)
    elif not isinstance(listed, list) or not all(isinstance(item, str) for item in listed):
        raise ContentError(f"{where(yaml_path)}: `articles` must be a list of file names")
    footer = _footer_invitation(settings)
    plan = _Plan(folder, [str(item) for item in listed], {p.name for p in folder.iterdir()})
    converted = [_convert(path, plan, title, author, footer) for path in files]
    notes.extend(_added_twice(folder, [str(item) for item in listed], converted))
    notes.extend(_sent_already(settings, folder.name))
    if not dry_run:
        for article in converted:
            for image in article.images:
                if image.data is not None:
                    (folder / image.filename).parent.mkdir(parents=True, exist_ok=True)
                    (folder / image.filename).write_bytes(image.data)
            write_text(article.path, article.markdown)
        was_empty = not listed
        for article in converted:
            listed.append(article.filename)
        if was_empty and isinstance(listed, CommentedSeq):
            listed.fa.set_block_style()  # `articles: []` of `newsletter new` becomes a list of lines
        data["articles"] = listed
        save_document(yaml_path, data, ContentError, indentation)
    return AddReport(folder.name, yaml_path, tuple(converted), dry_run,
                     tuple(plan.listed) if dry_run else tuple(str(item) for item in listed), tuple(notes))


def _sent_already(settings: Settings, issue: str) -> list[str]:
    """A note when readers have the issue, or have it scheduled, without the new article.

    From the ledger's counts, not its existence: a scheduled send that was cancelled (or
    one SendGrid refused) leaves a ledger but no reader with the issue, and `add` said
    "has been sent already" then.
    """
    from newsletter.when import describe

    path = ledger_path(settings, issue)
    if not path.exists():
        return []
    # One opening of the ledger for both (each reader opens it, locks it and recovers it).
    never_sent: tuple[LedgerCounts, Schedule | None] = (LedgerCounts(), None)
    counts, schedule = read_ledger(settings, issue, lambda ledger: (ledger.counts(), ledger.schedule()), never_sent)
    if not (counts.sent or counts.pending or counts.uncertain):
        return []
    if schedule is not None and schedule.send_at > dt.datetime.now(dt.UTC).timestamp():
        when = describe(dt.datetime.fromtimestamp(schedule.send_at, dt.UTC))
        return [f"{where(path)}: {issue} is scheduled for {when} without this article; to include it, "
                f"`newsletter cancel {issue}` and send it again"]
    return [f"{where(path)}: {issue} has been sent already: whoever has it will not get "
            "this article; it is in the web edition once you run `newsletter site`"]


def _added_twice(folder: Path, listed: Sequence[str], converted: Sequence[ConvertedArticle]) -> list[str]:
    """A warning for each new article whose title an article of the issue already has."""
    slugs = {re.sub(r"^\d+-", "", name.removesuffix(".md")): name for name in listed}
    notes = []
    for article in converted:
        twin = slugs.get(slugify(article.title))
        if twin is not None:
            notes.append(f"{where(folder / twin)} has the title “{article.title}” already: "
                         f"was {where(article.source)} added before? (remove one of them from `articles`)")
        slugs[slugify(article.title)] = article.filename
    return notes


def _convert(path: Path, plan: _Plan, title: str | None, author: str | None,
             footer: str | None) -> ConvertedArticle:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise ContentError(f"{where(path)}: cannot read {suffix or 'a file without an extension'}; "
                           f"submissions are {known}")
    if not path.is_file():
        raise ContentError(f"{where(path)}: no such file")
    options = plaintext.PlainTextOptions(title_given=bool(title), author_given=bool(author),
                                         footer_invites_replies=footer is not None, footer_name=footer or "")
    images: list[documents.SourceImage] = []
    if suffix == ".txt":
        raw = read_file(path, ContentError)
        text, encoding = plaintext.decode_text(raw, path)
        draft = plaintext.parse_plain_text(text, path, options)
        kind = f"plain text, {encoding}"
    elif suffix in (".md", ".markdown"):
        draft = documents.read_markdown(path)
        kind = f"Markdown, {draft.encoding}"
    else:
        document = documents.read_docx(path) if suffix == ".docx" else documents.read_html(path)
        draft, images = document.draft, document.images
        kind = FORMATS[suffix]
        _note_closing_call(draft, path, footer)
    if title:
        draft.title = " ".join(title.split())
    if author is not None:
        draft.author = " ".join(author.split())
        draft.notes = [note for note in draft.notes if note.message != plaintext.NO_BYLINE]
    if not draft.title:
        raise ContentError(f"{where(path)}: no title found in the submission: pass --title")

    number = len(plan.listed) + 1
    filename = f"{number:02d}-{slugify(draft.title)}.md"
    while filename in plan.taken:  # never overwrite a file already in the issue's folder
        number += 1
        filename = f"{number:02d}-{slugify(draft.title)}.md"
    plan.taken.add(filename)
    plan.listed.append(filename)
    stem = filename.removesuffix(".md")

    written: list[WrittenImage] = []
    names: dict[str, str | None] = {}
    for index, image in enumerate(images, start=1):
        name = f"{stem}-{index}.{image.extension.lower()}"
        names[image.key] = name
        plan.taken.add(name)
        written.append(WrittenImage(name, image.alt, image.data))
    if names:
        draft.blocks = rename_images(draft.blocks, names)

    if draft.body_markdown is None:
        runs = all_inlines(draft.blocks)
        paragraphs = _paragraphs(draft.blocks)
        lists = tuple(len(b.items) for b in draft.blocks if isinstance(b, ListBlock))
        links = tuple(dict.fromkeys(r.href for r in runs if isinstance(r, Link)))
    else:  # a Markdown submission's body is kept as written: count what markdown-it sees in it
        paragraphs = _markdown_paragraphs(draft.body_markdown)
        lists = _markdown_lists(draft.body_markdown)
        links = _markdown_links(draft.body_markdown)
        written = [taken for src, alt, line in _markdown_images(draft.body_markdown, draft.body_line)
                   if (taken := _markdown_image(path, plan, src, alt, line, draft)) is not None]
    return ConvertedArticle(
        source=path, kind=kind, filename=filename, path=plan.folder / filename,
        title=draft.title, author=draft.author, markdown=_article_markdown(draft),
        paragraphs=paragraphs, lists=lists, links=links, images=tuple(written),
        warnings=tuple(str(note) for note in draft.notes),
    )


def _paragraphs(blocks: Sequence[Block]) -> int:
    """The paragraphs a writer would count: a label (`Links:`) over its list is part of the list."""
    def is_label(index: int) -> bool:
        block = blocks[index]
        return (isinstance(block, Paragraph) and index + 1 < len(blocks) and isinstance(blocks[index + 1], ListBlock)
                and plain(block.inlines).rstrip().endswith(":"))

    return sum(isinstance(b, (Paragraph, Quote)) and not is_label(i) for i, b in enumerate(blocks))


def _markdown_image(path: Path, plan: _Plan, src: str, alt: str, line: int | None,
                    draft: Draft) -> WrittenImage | None:
    """An image a Markdown submission names: copied in beside the article under the same name
    when it is an image file beside the submission (`pictures`), so the Markdown needs no
    change. An address stays as it is; anything else is a warning, and nothing is copied."""
    if pictures.is_web_address(src):
        return WrittenImage(src, alt)
    relative = pictures.local_path(src)
    try:
        picture = pictures.read_picture(pictures.file_beside(path, src))
        if ".." in Path(relative).parts:
            raise pictures.RefusedImage("names its file through `..`, and the article keeps that path: "
                                        "name it from the submission's folder down")
        if not pictures.has_image_suffix(relative):
            raise pictures.RefusedImage(f"is a {picture.extension.upper()} image named {Path(relative).suffix or 'without an extension'}: "
                                        f"the issue keeps its name, so rename it to end in .{picture.extension}")
        target = plan.folder / relative
        if not target.parent.resolve().is_relative_to(plan.folder.resolve()) or target.is_symlink():
            raise pictures.RefusedImage(f"would be written outside {where(plan.folder)}, through a symlink there")
        planned = plan.images.get(relative)
        if planned is not None and planned != picture.data:
            raise pictures.RefusedImage("is not the file of that name another submission brings")
        if target.exists():
            if not target.is_file() or target.read_bytes() != picture.data:
                raise pictures.RefusedImage(f"differs from the file of that name in {where(plan.folder)}")
            return WrittenImage(relative, alt)  # there already
    except pictures.RefusedImage as refusal:
        draft.notes.append(Note(path, line, f"the image {pictures.shown(src)} {refusal}: not copied; "
                                            "the article still names it"))
        return None
    except OSError as exc:
        draft.notes.append(Note(path, line, f"the image {pictures.shown(src)} is not copied "
                                            f"({exc.strerror or type(exc).__name__}); the article still names it"))
        return None
    plan.images[relative] = picture.data
    return WrittenImage(relative, alt, picture.data)


def _note_closing_call(draft: Draft, path: Path, footer: str | None) -> None:
    last = draft.blocks[-1] if draft.blocks else None
    if footer and isinstance(last, Paragraph) and plaintext.is_closing_call(plain(last.inlines)):
        unit = "line" if path.suffix.lower() in (".html", ".htm") else "paragraph"
        draft.notes.append(Note(path, last.line, f"the closing call “{plain(last.inlines)[:60]}” is kept, but the "
                                                 f"email's footer ({footer}) already invites replies: remove one "
                                                 "of them if they repeat", unit))


def _article_markdown(draft: Draft) -> str:
    front = draft.front_matter if draft.front_matter is not None else CommentedMap()
    front["title"] = draft.title
    if draft.author:
        front["author"] = draft.author
    elif "author" in front:
        del front["author"]
    if list(front).index("title") != 0:  # a new title goes first, as in every article
        value = front.pop("title")
        front.insert(0, "title", value)
    body = draft.body_markdown if draft.body_markdown is not None else blocks_markdown(draft.blocks)
    return "---\n" + dump_document(front, DEFAULT_INDENTATION) + "---\n" + body


def slugify(title: str) -> str:
    """The part of an article's file name that comes from its title: `the-river-in-december`."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", re.sub(r"['’`]", "", ascii_title)).strip("-")
    if len(slug) > 50:
        slug = slug[:51].rsplit("-", 1)[0]
    return slug or "article"


def _footer_invitation(settings: Settings) -> str | None:
    """The footer template that already invites replies, if one does (the publication's own first)."""
    package = Path(__file__).resolve().parents[1] / "templates"
    for name in ("footer.html", "email.txt"):
        for folder in (settings.templates_dir, package):
            template = folder / name
            if template.is_file():
                text = re.sub(r"\{[{%#].*?[}%#]\}", " ", template.read_text(encoding="utf-8", errors="replace"))
                if re.search(r"\brepl(?:y|ies)\b|\bwrite to us\b|\banswer\b", text, re.IGNORECASE):
                    return str(Path(folder.name) / name) if folder == settings.templates_dir else name
                break
    return None


# Counting what a Markdown submission holds, for the report: markdown-it's own parse.

def _markdown_tokens(body: str) -> list[Token]:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"linkify": True}).enable("linkify").parse(body)


def _markdown_paragraphs(body: str) -> int:
    tokens = _markdown_tokens(body)
    return sum(1 for t in tokens if t.type == "paragraph_open" and not t.hidden and t.level == 0)


def _markdown_lists(body: str) -> tuple[int, ...]:
    tokens = _markdown_tokens(body)
    counts: list[int] = []
    for index, token in enumerate(tokens):
        if token.type in ("bullet_list_open", "ordered_list_open") and token.level == 0:
            depth, items = 0, 0
            for inner in tokens[index + 1:]:
                if inner.type in ("bullet_list_open", "ordered_list_open"):
                    depth += 1
                elif inner.type in ("bullet_list_close", "ordered_list_close"):
                    if depth == 0:
                        break
                    depth -= 1
                elif inner.type == "list_item_open" and depth == 0:
                    items += 1
            counts.append(items)
    return tuple(counts)


def _children(body: str) -> list[Token]:
    return [c for t in _markdown_tokens(body) if t.type == "inline" for c in (t.children or [])]


def _markdown_links(body: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(c.attrGet("href")) for c in _children(body) if c.type == "link_open"))


def _markdown_images(body: str, first_line: int) -> list[tuple[str, str, int | None]]:
    """Each image of a Markdown body: its src, its alt text, and the submission's line it is on."""
    lines = body.split("\n")
    found: list[tuple[str, str, int | None]] = []
    for token in _markdown_tokens(body):
        if token.type != "inline":
            continue
        start, end = token.map if token.map else (0, 0)
        for child in token.children or []:
            if child.type == "image":
                src = str(child.attrGet("src"))
                wanted = unquote(src)
                line = next((n for n in range(start, min(end, len(lines))) if wanted in unquote(lines[n])), start)
                found.append((src, child.content, first_line + line if token.map else None))
    return found
