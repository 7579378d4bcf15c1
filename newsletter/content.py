"""An issue on disk (`issues/<name>/issue.yaml` and its articles) read into an `Issue`."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from newsletter.config import Settings
from newsletter.errors import ContentError, where
from newsletter.files.reading import read_file
from newsletter.files.yamlfile import YamlMapping, did_you_mean, parse_mapping, read_mapping

# Markdown (markdown-it and linkify, 40 ms) is imported when an article is read, not for an issue's
# folder: `status`, `stats` and `cancel` only find the issue (`issue_folder`) and read its ledger.
if TYPE_CHECKING:
    from newsletter.markdown import Heading, LocalImage, RefusedLink, RenderedMarkdown, WrittenLink

ISSUE_FILE = "issue.yaml"
# draft and id: `newsletter new` writes them (id: what ties the issue to its send ledger, whatever its folder)
ISSUE_KEYS = {"subject", "preheader", "date", "articles", "draft", "id"}
ARTICLE_KEYS = {"title", "author", "summary"}


@dataclass(frozen=True)
class Article:
    slug: str
    source: Path
    title: str
    author: str
    summary: str
    html: str
    text: str
    warnings: tuple[str, ...] = ()
    images: tuple[LocalImage, ...] = ()  # the images it gives relative to itself, files on disk
    refused: tuple[RefusedLink, ...] = ()  # links and images shown as text: `javascript:`, `file:`…; lines in its file
    headings: tuple[Heading, ...] = ()  # as written, lines in its file (for `check`)
    links: tuple[WrittenLink, ...] = ()  # links and images as written, lines in its file (for `check`)


@dataclass(frozen=True)
class Issue:
    name: str
    folder: Path
    subject: str
    preheader: str
    date: dt.date | None
    articles: tuple[Article, ...]
    web_url: str
    warnings: tuple[str, ...] = ()
    draft: bool = False  # `draft: true`: kept off the web edition, its archive and its feed
    issue_id: str = ""   # `id:`, written by `newsletter new`: its ledger records it (a renamed folder is the same issue)

    @property
    def images(self) -> tuple[LocalImage, ...]:
        """Every local image of the issue's articles, once each, in order of use."""
        return tuple({image.url: image for article in self.articles for image in article.images}.values())

    def published_path(self, image: LocalImage) -> str | None:
        """Where `image` is in the issue's folder of the web edition: its URL under the
        issue's web address. None when it is outside the issue's folder (`../x.png`),
        where the web edition does not publish it."""
        if not image.url.startswith(self.web_url):
            return None
        relative = unquote(image.url[len(self.web_url):].split("#")[0].split("?")[0])
        inside = image.path.resolve().is_relative_to(self.folder.resolve())
        # Never a path out of the folder (`%2e%2e/` in a name).
        return relative if relative and inside and ".." not in Path(relative).parts else None


def issue_folder(settings: Settings, name: str) -> Path:
    """The folder of issue `name`: a folder directly in `issues/` holding an issue.yaml.

    `issue-12` and `issues/issue-12` (as a shell completes it) both name it; anything
    that leads elsewhere is refused, since the issue's name becomes its web address
    and its folder in `build/`.
    """
    cleaned = name.strip().rstrip("/")
    parts = Path(cleaned).parts
    if len(parts) == 2 and parts[0] == settings.issues_dir.name:
        cleaned = parts[1]
    folder = settings.issues_dir / cleaned
    if len(Path(cleaned).parts) != 1 or cleaned in (".", "..") or not (folder / ISSUE_FILE).is_file():
        known = sorted(p.parent.name for p in settings.issues_dir.glob(f"*/{ISSUE_FILE}"))
        hint = f" (issues here: {', '.join(known)})" if known else ""
        shown = folder / ISSUE_FILE if len(Path(cleaned).parts) == 1 else settings.issues_dir
        raise ContentError(
            f"{where(shown)}: no such issue {name!r}: an issue is a folder in "
            f"{where(settings.issues_dir)}/ with an {ISSUE_FILE}{hint}"
        )
    return folder


def marked_draft(settings: Settings, name: str) -> bool:
    """Whether issue `name`'s issue.yaml says `draft: true`, whatever else it holds.

    A draft is work in progress (`newsletter new` writes one with no subject and no
    articles yet): what would keep it from loading is no reason to fail a command
    that leaves drafts out anyway.
    """
    try:
        meta = read_mapping(issue_folder(settings, name) / ISSUE_FILE, ContentError)
    except ContentError:
        return False
    return meta.data.get("draft") is True


def new_issue_id() -> str:
    """A random id for an issue: 12 hex digits after a letter (so YAML reads it as text).

    `newsletter new` writes one; a send writes one into an issue that has none, so that
    its ledger knows the issue after its folder is renamed and its text edited."""
    return f"i{uuid.uuid4().hex[:12]}"


def load_issue(settings: Settings, name: str) -> Issue:
    """Read issue `name`: its `issue.yaml` and every article it lists, rendered once."""
    folder = issue_folder(settings, name)
    name = folder.name
    meta = read_mapping(folder / ISSUE_FILE, ContentError)
    notes = [
        f"{meta.where(key)}: unknown key {key!r} is ignored{_typo(key, ISSUE_KEYS)}"
        for key in meta.data if key not in ISSUE_KEYS
    ]
    subject = meta.data.get("subject")
    if subject is not None and (isinstance(subject, bool) or not isinstance(subject, str | int | float)):
        raise ContentError(f"{meta.where('subject')}: `subject` must be text (the email's subject line); "
                           "put it in quotes if it starts with [ or {")
    subject = "" if subject is None else str(subject)
    if not subject.strip():
        raise ContentError(_required(meta, "subject", ISSUE_KEYS, "`subject` is required: the email's subject line"))
    preheader = meta.data.get("preheader") or ""
    if not isinstance(preheader, str):
        raise ContentError(f"{meta.where('preheader')}: `preheader` must be text")
    date = meta.data.get("date")
    if date is not None and not isinstance(date, dt.date):
        raise ContentError(f"{meta.where('date')}: `date` must be a date like 2026-11-25")
    draft = meta.data.get("draft", False)
    if not isinstance(draft, bool):
        raise ContentError(f"{meta.where('draft')}: `draft` must be true or false")
    issue_id = meta.data.get("id", "")
    if isinstance(issue_id, bool) or not isinstance(issue_id, str | int):
        raise ContentError(f"{meta.where('id')}: `id` must be text (newsletter new writes one; keep it as it is)")
    web_url = settings.web_url(name)
    articles = tuple(
        load_article(path, _folder_url(web_url, folder, path))
        for path in _article_paths(folder, meta.data.get("articles"), meta.where("articles"))
    )
    for article in articles:
        notes.extend(article.warnings)
    if not articles:
        raise ContentError(f"{where(folder)}: the issue has no articles (no *.md files)")
    return Issue(
        name=name,
        folder=folder,
        subject=" ".join(subject.split()),
        preheader=" ".join(preheader.split()),
        date=date,
        articles=articles,
        web_url=web_url,
        warnings=tuple(notes),
        draft=draft,
        issue_id=str(issue_id).strip(),
    )


def _folder_url(web_url: str, issue: Path, article: Path) -> str:
    """The web address of the folder an article is in, for its relative images and links."""
    sub = article.parent.relative_to(issue).as_posix()
    return web_url if sub == "." else f"{web_url}{quote(sub)}/"


def _article_paths(folder: Path, listed: object, listed_where: str) -> list[Path]:
    if listed is None:
        return sorted(p for p in folder.glob("*.md") if p.is_file())
    if not isinstance(listed, list) or not all(isinstance(item, str) for item in listed):
        raise ContentError(f"{listed_where}: `articles` must be a list of file names")
    paths = []
    for item in listed:
        if listed.count(item) > 1:  # the email would show it twice
            raise ContentError(f"{listed_where}: article {item!r} is listed {listed.count(item)} times in "
                               "`articles`: list it once")
        path = folder / item
        if not path.resolve().is_relative_to(folder.resolve()) or ".." in Path(item).parts:
            raise ContentError(f"{listed_where}: article {item!r} is outside the issue's folder {where(folder)}")
        if not path.is_file():
            raise ContentError(f"{listed_where}: article {item!r} does not exist in {where(folder)}")
        paths.append(path)
    return paths


@dataclass(frozen=True)
class FrontMatterFile:
    """A Markdown file that opens with YAML front matter between `---` lines (an article, welcome.md)."""

    path: Path
    what: str       # "the article", "the welcome email": what errors call it
    meta: YamlMapping
    body: str       # the Markdown after the closing line
    body_line: int  # the closing line's number: the body's line n is the file's line body_line + n

    def render(self, base_url: str) -> RenderedMarkdown:
        """The body as email HTML and text; a ContentError at the file's line for a list nested too deep."""
        from newsletter.markdown import NestedTooDeep, render_markdown

        try:
            return render_markdown(self.body, base_url, self.path.parent)
        except NestedTooDeep as exc:
            raise ContentError(f"{where(self.path, exc.line and self.body_line + exc.line)}: {self.what} "
                               f"{exc.detail}") from None


def read_front_matter(path: Path, what: str, opening: str) -> FrontMatterFile:
    """`path` read as UTF-8, its front matter parsed; a ContentError naming `what` ("the article") when it
    cannot be read, and saying `opening` (how such a file starts) when it does not start so."""
    raw = read_file(path, ContentError, what)
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ContentError(f"{where(path, line)}: not UTF-8 text: save the file as UTF-8 ({exc.reason})") from None
    source = source.removeprefix("\ufeff").replace("\r\n", "\n")
    lines = source.split("\n")
    if not lines or lines[0].strip() != "---":
        raise ContentError(f"{where(path, 1)}: {opening}")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() in ("---", "..."))
    except StopIteration:
        raise ContentError(f"{where(path, 1)}: the front matter is not closed by a `---` line") from None
    meta = parse_mapping("\n".join(lines[1:end]), path, ContentError, line_offset=1)
    return FrontMatterFile(path, what, meta, "\n".join(lines[end + 1 :]), end + 1)


def load_article(path: Path, base_url: str) -> Article:
    """Read one article: YAML front matter between `---` lines, then Markdown."""
    document = read_front_matter(path, "the article", "an article starts with YAML front matter: a `---` line, "
                                                      "`title: ...`, then another `---` line")
    meta = document.meta
    warnings = [f"{meta.where(key)}: unknown front matter key {key!r} is ignored{_typo(key, ARTICLE_KEYS)}"
                for key in meta.data if key not in ARTICLE_KEYS]
    title = _front_text(meta, "title")
    if not title:
        raise ContentError(_required(meta, "title", ARTICLE_KEYS, "`title` is required in the front matter"))
    body = document.render(base_url)
    shift = document.body_line
    refused = tuple(replace(link, line=link.line and shift + link.line) for link in body.refused)
    headings = tuple(replace(h, line=h.line and shift + h.line) for h in body.headings)
    links = tuple(replace(link, line=link.line and shift + link.line) for link in body.links)
    if not body.text.strip():
        warnings.append(f"{where(path)}: the article has no text after its front matter")
    return Article(
        slug=path.stem,
        source=path,
        title=title,
        author=_front_text(meta, "author"),
        summary=_front_text(meta, "summary"),
        html=body.html,
        text=body.text,
        warnings=tuple(warnings),
        images=body.images,
        refused=refused,
        headings=headings,
        links=links,
    )


def _typo(key: str, known: set[str]) -> str:
    """`: did you mean author?` after the warning about `autor:`, or nothing."""
    meant = did_you_mean(key, known)
    return f": did you mean {meant}?" if meant else ""


def _required(meta: YamlMapping, key: str, known: set[str], message: str) -> str:
    """The error for a missing `key`, at the line of its misspelling when there is one (`titel:`)."""
    written = meta.misspelling_of(key, known)
    if written is None:
        return f"{meta.where(key)}: {message}"
    return f"{meta.where(written)}: {message}; {written!r} here is ignored: did you mean {key}?"


def _front_text(meta: YamlMapping, key: str) -> str:
    """A front-matter value as one line of text; a number (`title: 1984`) is text too."""
    value = meta.data.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ContentError(f"{meta.where(key)}: `{key}` must be text")
    return " ".join(str(value).split())
