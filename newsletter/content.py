"""An issue on disk (`issues/<name>/issue.yaml` and its articles) read into an `Issue`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from newsletter.config import Settings
from newsletter.errors import ContentError, where
from newsletter.markdown import render_markdown
from newsletter.yamlfile import parse_mapping, read_mapping

ISSUE_FILE = "issue.yaml"
ISSUE_KEYS = {"subject", "preheader", "date", "articles"}
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

    @property
    def sources(self) -> tuple[Path, ...]:
        """Every file the issue is made from, for `preview --serve` to watch."""
        return (self.folder / ISSUE_FILE, *(a.source for a in self.articles))


def issue_folder(settings: Settings, name: str) -> Path:
    """The folder of issue `name`, which must exist."""
    name = name.strip().rstrip("/")
    folder = Path(name) if "/" in name else settings.issues_dir / name
    if not (folder / ISSUE_FILE).is_file():
        known = sorted(p.parent.name for p in settings.issues_dir.glob(f"*/{ISSUE_FILE}"))
        hint = f" (issues here: {', '.join(known)})" if known else ""
        raise ContentError(
            f"{where(folder / ISSUE_FILE)}: no such issue {name!r}{hint}"
        )
    return folder


def load_issue(settings: Settings, name: str) -> Issue:
    """Read issue `name`: its `issue.yaml` and every article it lists, rendered once."""
    folder = issue_folder(settings, name)
    name = folder.name
    meta = read_mapping(folder / ISSUE_FILE, ContentError)
    notes = [
        f"{meta.where(key)}: unknown key {key!r} is ignored" for key in meta.data if key not in ISSUE_KEYS
    ]
    subject = meta.data.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        raise ContentError(f"{meta.where('subject')}: `subject` is required: the email's subject line")
    preheader = meta.data.get("preheader") or ""
    if not isinstance(preheader, str):
        raise ContentError(f"{meta.where('preheader')}: `preheader` must be text")
    date = meta.data.get("date")
    if date is not None and not isinstance(date, dt.date):
        raise ContentError(f"{meta.where('date')}: `date` must be a date like 2026-11-25")
    web_url = settings.web_url(name)
    articles = tuple(
        load_article(path, web_url) for path in _article_paths(folder, meta.data.get("articles"), meta.where("articles"))
    )
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
    )


def _article_paths(folder: Path, listed: object, listed_where: str) -> list[Path]:
    if listed is None:
        return sorted(folder.glob("*.md"))
    if not isinstance(listed, list) or not all(isinstance(item, str) for item in listed):
        raise ContentError(f"{listed_where}: `articles` must be a list of file names")
    paths = []
    for item in listed:
        path = folder / item
        if not path.is_file():
            raise ContentError(f"{listed_where}: article {item!r} does not exist in {where(folder)}")
        paths.append(path)
    return paths


def load_article(path: Path, base_url: str) -> Article:
    """Read one article: YAML front matter between `---` lines, then Markdown."""
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ContentError(f"{where(path)}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    source = source.removeprefix("\ufeff").replace("\r\n", "\n")
    lines = source.split("\n")
    if not lines or lines[0].strip() != "---":
        raise ContentError(
            f"{where(path, 1)}: an article starts with YAML front matter: "
            "a `---` line, `title: ...`, then another `---` line"
        )
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() in ("---", "..."))
    except StopIteration:
        raise ContentError(f"{where(path, 1)}: the front matter is not closed by a `---` line") from None
    meta = parse_mapping("\n".join(lines[1:end]), path, ContentError, line_offset=1)
    title = meta.data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ContentError(f"{meta.where('title')}: `title` is required in the front matter")
    for key in ("author", "summary"):
        if not isinstance(meta.data.get(key) or "", str):
            raise ContentError(f"{meta.where(key)}: `{key}` must be text")
    body = render_markdown("\n".join(lines[end + 1 :]), base_url, path.parent)
    return Article(
        slug=path.stem,
        source=path,
        title=" ".join(title.split()),
        author=" ".join((meta.data.get("author") or "").split()),
        summary=" ".join((meta.data.get("summary") or "").split()),
        html=body.html,
        text=body.text,
    )
