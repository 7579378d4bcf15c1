"""`newsletter site`: every published issue → `build/site/`, the web edition.

    build/site/
      index.html            the archive, newest first
      feed.xml              an Atom feed (RFC 4287) of the latest issues
      style.css             the one stylesheet of every page
      <issue>/index.html    the issue's web page, at the URL the email links to
      <issue>/<image>       its processed images, at the URLs the email loads them from

An issue with `draft: true` is left out of all of it, and so is one that `check` finds
errors in (it is an error of the command, as it is of `build`). An issue published before that
fails to build this time (its YAML has a typo, an image cannot be read) keeps its last
published page, images, archive entry and feed entry: everything is rendered and
processed before anything is written, so one issue's failure never removes another's
output, nor leaves the shared files (style.css, feed.xml, the archive) half-updated.

The same input gives the same
bytes (no build time anywhere: the feed's dates are the issues' dates), and a file
whose bytes did not change is not written again, so whatever publishes the folder
uploads only what changed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from newsletter.files.atomic import CannotWrite, make_folder, write_failure
from newsletter.build import image_cache
from newsletter.checks import CheckReport, check_content
from newsletter.config import Settings
from newsletter.content import ISSUE_FILE, Article, Issue, load_issue, marked_draft
from newsletter.errors import NewsletterError, where
from newsletter.images import ImageCache, ImageError
from newsletter.markdown import LocalImage
from newsletter.render.web import (
    FEED,
    MANIFEST,
    PAGE,
    STYLESHEET,
    RenderedPage,
    archive_url,
    feed_url,
    render_archive,
    render_stylesheet,
    render_web_page,
    takes_a_site_file,
    takes_the_page,
)
from newsletter.sources import line_in_article

SITE_DIR = "site"
FEED_ENTRIES = 20
MANIFEST_FORMAT = 2


Level = Literal["error", "warning"]  # of a line a report prints on standard error


@dataclass
class SiteReport:
    """What `newsletter site` did."""

    folder: Path
    issues: list[str] = field(default_factory=list)    # published, newest first
    drafts: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)  # files whose bytes changed
    removed: list[Path] = field(default_factory=list)
    files: int = 0
    errors: list[str] = field(default_factory=list)
    # Issues published before that did not build this time: their last output is kept.
    kept: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def lines(self) -> list[str]:
        """What `newsletter site` prints on standard output: what was written, and the drafts left out."""
        count = len(self.issues)
        lines = [f"{where(self.folder)}/: {count} issue{'s' if count != 1 else ''}, the archive and the feed; "
                 f"{len(self.written)} of {self.files} files changed"
                 + (f", {len(self.removed)} removed" if self.removed else "")]
        if self.drafts:
            lines.append(f"Drafts left out: {', '.join(self.drafts)}")
        return lines

    def problems(self) -> list[tuple[Level, str]]:
        """What it prints on standard error, each with its level: the issues kept as last published, the errors."""
        problems: list[tuple[Level, str]] = []
        if self.kept:
            several, errors = len(self.kept) > 1, len(self.errors) > 1
            problems.append(("warning", f"Kept as last published, as {'they' if several else 'it'} did not build this "
                             f"time: {', '.join(self.kept)} ({'their pages' if several else 'its page'}, images, "
                             f"archive and feed entries stay as they were until the error{'s' if errors else ''} "
                             f"below {'are' if errors else 'is'} fixed)"))
        if len(self.errors) > 1:  # one alone is the command's own error line
            problems += [("error", f"error: {error}") for error in self.errors]
        return problems


class SiteFailed(NewsletterError):
    """Some of the site could not be built; the report says what was."""

    def __init__(self, report: SiteReport) -> None:
        self.report = report
        errors = report.errors
        super().__init__(errors[0] if len(errors) == 1 else
                         f"{len(errors)} problems kept parts of the site from being written (listed above); "
                         "the rest was written")


def site_dir(settings: Settings) -> Path:
    return settings.build_dir / SITE_DIR


def claim_folder(settings: Settings, folder: Path) -> None:
    """Make sure `folder` is one `site` may write: its own (its record, MANIFEST, is there),
    or new, or empty (hidden files aside), and then claimed with an empty record before anything is written.

    `site -o DIR` once replaced a hand-made index.html without a word, and `site -o /`
    wrote its files into / as root: a folder holding files and no record is refused,
    naming one of them, and /, the home folder and the publication's own never taken.
    """
    resolved = folder.expanduser().resolve()
    forbidden = {Path("/"): "the root folder", Path.home().resolve(): "your home folder",
                 settings.root.resolve(): "the publication's own folder"}
    if resolved in forbidden:
        raise NewsletterError(f"{where(folder)}: is {forbidden[resolved]}, where the web edition would mix with "
                              "other files: give `site -o` a folder of its own (public/, say), or leave -o out "
                              f"for {where(site_dir(settings))}/")
    if (folder / MANIFEST).is_file():
        return
    try:
        # Hidden entries (a .git of a GitHub Pages checkout, .nojekyll) do not count: the
        # site never writes a name starting with a dot other than its record.
        found = sorted(entry.name for entry in folder.iterdir() if not entry.name.startswith("."))
    except FileNotFoundError:
        found = []
    except NotADirectoryError:
        raise NewsletterError(f"{where(folder)}: is a file, not a folder: give `site -o` a folder") from None
    except OSError as exc:
        raise NewsletterError(f"{where(folder)}: cannot read it ({exc.strerror or exc})") from None
    if found:
        raise NewsletterError(
            f"{where(folder)}: holds files `newsletter site` did not write ({where(folder / found[0])}"
            f"{f' and {len(found) - 1} more' if len(found) > 1 else ''}), which it would overwrite: "
            "give `site -o` a new or empty folder, or empty this one")
    # Claimed before the first file goes in: a build stopped half-way leaves a folder still its own.
    write_if_changed(folder / MANIFEST, (json.dumps(
        {"format": MANIFEST_FORMAT, "files": [], "issues": {}}, indent=1) + "\n").encode("utf-8"))


def issue_images(issue: Issue) -> list[tuple[str, Path]]:
    """(path under the issue's folder of the site, source file) of each image it publishes.

    The path is the image's URL under the issue's web address: the email's
    `<base_url>/<issue>/<path>` is the site's file `<issue>/<path>`.
    """
    return [(relative, image.path) for relative, image, _ in _published_images(issue)]


def _published_images(issue: Issue) -> list[tuple[str, LocalImage, Article]]:
    """(path in the issue's folder of the site, image, the article that first uses it)."""
    found, seen = [], set()
    for article in issue.articles:
        for image in article.images:
            relative = issue.published_path(image)
            if relative is not None and relative not in seen:
                seen.add(relative)
                found.append((relative, image, article))
    return found


def _named(issue: Issue, article: Article, image: LocalImage) -> str:
    """`issues/x/a.md:7: image pic.png`: where an image with a problem is written."""
    return f"{where(article.source, line_in_article(issue, article, image.url))}: image {image.src}"


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write `data` to `path` unless it holds those bytes already; True when written.

    A build product: renamed into place (an upload in progress never sees half a
    file), not fsynced.
    """
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except OSError:
        pass
    make_folder(path.parent)
    temporary = path.with_name(f"{path.name}.tmp{os.getpid()}.{threading.get_ident()}")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError as exc:
        _remove_leftover(temporary)
        raise CannotWrite(write_failure(path, exc)) from None
    return True


def _remove_leftover(temporary: Path) -> None:
    """Remove a temporary file a failed write left, if any: on a read-only disk even
    removing a file that is not there fails (EROFS), which must not hide the write's error."""
    try:
        temporary.unlink(missing_ok=True)
    except OSError:
        pass


def published_issue_names(settings: Settings) -> list[str]:
    return sorted(p.parent.name for p in settings.issues_dir.glob(f"*/{ISSUE_FILE}"))


@dataclass(frozen=True)
class _Entry:
    """An issue as the archive and the feed show it: built now, or kept from the last build."""

    issue: Issue
    content: str | None  # the feed entry's content; None for a kept issue that was not in the feed


@dataclass(frozen=True)
class _Manifest:
    """What the last build published: its files (relative to the site), and each issue's
    archive entry, so that an issue that fails to build keeps its place."""

    files: list[str]
    issues: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class _BuiltIssue:
    page: RenderedPage
    files: list[tuple[str, bytes]]  # (path in the issue's folder, bytes): the page and its images


def build_site(settings: Settings, folder: Path | None = None) -> SiteReport:
    """Write the web edition of every issue that is not a draft to `folder` (`build/site/`).

    Raises `SiteFailed` when an issue does not load or an image cannot be read, after
    writing everything else; such an issue keeps what the last build published of it.
    """
    folder = folder if folder is not None else site_dir(settings)
    claim_folder(settings, folder)
    report = SiteReport(folder)
    cache = image_cache(settings)
    previous = _read_manifest(folder)
    failed: list[str] = []
    loaded: list[Issue] = []
    for name in published_issue_names(settings):
        if takes_a_site_file(name):
            report.errors.append(f"{where(settings.issues_dir / name)}: an issue may not be named {name!r}, "
                                 "the name of a file of the web edition: rename its folder")
            continue  # never published: there is nothing of it to keep
        try:
            issue = load_issue(settings, name)
        except NewsletterError as exc:
            if marked_draft(settings, name):  # unfinished, and left out anyway
                report.drafts.append(name)
                continue
            report.errors.append(str(exc))
            failed.append(name)
            continue
        if issue.draft:
            report.drafts.append(name)
        elif issue.date is None:
            report.errors.append(f"{where(issue.folder / ISSUE_FILE)}: `date` is required on the web edition "
                                 "(the archive and the feed are ordered by it), or set `draft: true`")
            failed.append(name)
        else:
            loaded.append(issue)

    # Everything is rendered and processed before anything is written.
    built: dict[str, _BuiltIssue] = {}
    pages: list[RenderedPage] = []
    for issue in loaded:
        try:
            pages.append(render_web_page(settings, issue))
        except NewsletterError as exc:
            report.errors.append(f"{issue.name}: {exc}")
            failed.append(issue.name)
    # Images are processed in threads: Pillow decodes, scales and encodes without the GIL.
    with ThreadPoolExecutor(max_workers=min(4, (os.cpu_count() or 1) + 1)) as pool:
        for page, (files, errors) in zip(pages, pool.map(lambda page: _issue_files(page, cache), pages), strict=True):
            if errors:
                report.errors.extend(errors)
                failed.append(page.issue.name)
            else:
                built[page.issue.name] = _BuiltIssue(page, files)
    # Then what `check` finds, its images processed by now (in the threads above).
    for name, issue_built in list(built.items()):
        try:
            check_errors = _check_errors(settings, issue_built.page.issue, cache)
        except NewsletterError as exc:
            check_errors = [f"{name}: {exc}"]
        if check_errors:
            report.errors.extend(check_errors)
            failed.append(name)
            del built[name]

    entries = [_Entry(b.page.issue, b.page.content) for b in built.values()]
    kept_files: list[Path] = []
    for name in failed:
        published = [folder / f for f in previous.files if f.startswith(f"{name}/") and (folder / f).is_file()]
        record = previous.issues.get(name)
        if record is not None and folder / name / PAGE in published:  # never an entry linking to no page
            entries.append(_kept_entry(settings, name, record))
        if published or record is not None:
            report.kept.append(name)
            kept_files.extend(published)
    entries.sort(key=lambda entry: (entry.issue.date or dt.date.min, entry.issue.name), reverse=True)
    report.issues = [entry.issue.name for entry in entries]
    report.kept.sort()
    in_feed = [entry for entry in entries if entry.content is not None][:FEED_ENTRIES]

    shared: list[tuple[str, bytes]] = []
    logo_kept: list[Path] = []
    if settings.logo is not None:  # beside the archive page, where the email and every page link it
        logo_error = _logo_error(settings, [entry.issue.name for entry in entries])
        if not logo_error:
            try:
                shared.append((settings.logo.name, cache.get(settings.logo).data))
            except ImageError as exc:
                logo_error = f"{where(settings.config_path)}: logo {where(settings.logo)} {exc.reason}"
        if logo_error:
            report.errors.append(logo_error)
            if settings.logo.name in previous.files and not takes_a_site_file(settings.logo.name):
                logo_kept.append(folder / settings.logo.name)  # the last good logo stays
    shared.append((STYLESHEET, render_stylesheet(settings).encode("utf-8")))
    shared.append((PAGE, render_archive(settings, [entry.issue for entry in entries]).encode("utf-8")))
    shared.append((FEED, atom_feed(settings, [RenderedPage(e.issue, "", e.content or "", None) for e in in_feed])))

    outputs: list[Path] = []

    def put(path: Path, data: bytes) -> None:
        outputs.append(path)
        if write_if_changed(path, data):
            report.written.append(path)

    for issue_built in built.values():
        for relative, data in issue_built.files:
            put(folder / issue_built.page.issue.name / relative, data)
    for name, data in shared:
        put(folder / name, data)
    outputs.extend(kept_files + logo_kept)
    records = {name: record for name, record in previous.issues.items() if name in report.kept}
    feed_names = {entry.issue.name for entry in in_feed}
    for issue_built in built.values():
        issue = issue_built.page.issue
        records[issue.name] = _record(issue, issue_built.page.content if issue.name in feed_names else None)
    report.removed = _remove_unpublished(folder, outputs, previous, records)
    report.files = len(outputs)
    if report.errors:
        raise SiteFailed(report)
    return report


def _check_errors(settings: Settings, issue: Issue, cache: ImageCache) -> list[str]:
    """The errors `newsletter check` finds in `issue`'s own articles, each naming where it is: an
    issue with an unsafe link or a bad image is not published (an image outside its folder was,
    as a broken image), as `build` and `send` refuse it. Its email is not rendered for this: the
    templates' own errors are the email's, which check, build and send hold it to, and rendering
    every issue's email doubled the time of a site of 100 issues (benchmarks/bench_site.py).
    The logo is checked once, for the whole site, below."""
    report = CheckReport(issue.name)
    check_content(report, issue, cache)
    named = f"{where(issue.folder)}/"
    return [error.message if error.message.startswith(named) else f"{issue.name}: {error.message}"
            for error in report.errors]


def _issue_files(page: RenderedPage, cache: ImageCache) -> tuple[list[tuple[str, bytes]], list[str]]:
    """The files of an issue's folder of the site (its page, its processed images), and its errors."""
    issue = page.issue
    files, errors = [(PAGE, page.html.encode("utf-8"))], []
    for relative, image, article in _published_images(issue):
        if takes_the_page(relative):
            errors.append(f"{_named(issue, article, image)} would be published as {issue.name}/{relative}, the "
                          "issue's own page: rename the image")
            continue
        try:
            files.append((relative, cache.get(image.path).data))
        except ImageError as exc:
            errors.append(f"{_named(issue, article, image)} {exc.reason} ({where(image.path)})")
    return files, errors


def _logo_error(settings: Settings, issue_names: list[str]) -> str:
    """Why the logo cannot be published beside the archive page, or ""."""
    assert settings.logo is not None
    name = settings.logo.name
    taken = takes_a_site_file(name) or name.casefold() in {issue.casefold() for issue in issue_names}
    if not taken:
        return ""
    return (f"{where(settings.config_path)}: logo {where(settings.logo)} would be published as {name}, "
            "which the web edition already has (its archive, stylesheet, feed or an issue's folder): rename the logo")


def _record(issue: Issue, content: str | None) -> dict[str, Any]:
    """What the manifest keeps of a published issue, to show it again should it fail to build."""
    return {"subject": issue.subject, "preheader": issue.preheader,
            "date": issue.date.isoformat() if issue.date else None, "content": content}


def _kept_entry(settings: Settings, name: str, record: dict[str, Any]) -> _Entry:
    date = None
    try:
        date = dt.date.fromisoformat(str(record.get("date")))
    except ValueError:
        pass
    issue = Issue(name=name, folder=settings.issues_dir / name, subject=str(record.get("subject") or name),
                  preheader=str(record.get("preheader") or ""), date=date, articles=(),
                  web_url=settings.web_url(name))
    content = record.get("content")
    return _Entry(issue, content if isinstance(content, str) else None)


def _read_manifest(folder: Path) -> _Manifest:
    """The last build's manifest: JSON since format 2, one file a line before it."""
    try:
        text = (folder / MANIFEST).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return _Manifest([], {})
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):  # the first format: its file names, one a line
        return _Manifest(_safe_names(text.splitlines()), {})
    files = data.get("files")
    issues = data.get("issues")
    return _Manifest(_safe_names(files if isinstance(files, list) else []),
                     {name: record for name, record in (issues if isinstance(issues, dict) else {}).items()
                      if isinstance(name, str) and isinstance(record, dict)})


def _safe_names(names: Iterable[object]) -> list[str]:
    """Names inside the site only: an edited manifest never makes a build remove a file elsewhere."""
    return [name for name in names if isinstance(name, str) and name and not Path(name).is_absolute()
            and ".." not in Path(name).parts]


def _remove_unpublished(folder: Path, outputs: Iterable[Path], previous: _Manifest,
                        records: dict[str, dict[str, Any]]) -> list[Path]:
    """Remove what the previous build wrote and this one did not; record this build's files."""
    current = sorted({path.relative_to(folder).as_posix() for path in outputs})
    removed = []
    keep = set(current)
    for name in previous.files:
        path = folder / name
        if name not in keep and path.is_file():
            path.unlink()
            removed.append(path)
            _remove_empty_folders(path.parent, folder)
    manifest = {"format": MANIFEST_FORMAT, "files": current, "issues": dict(sorted(records.items()))}
    write_if_changed(folder / MANIFEST, (json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    return removed


def _remove_empty_folders(folder: Path, top: Path) -> None:
    while folder != top and folder.is_relative_to(top):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _entry_time(issue: Issue) -> dt.datetime:
    """An issue's date as the feed's time: midnight UTC of that day (no build time, ever)."""
    assert issue.date is not None
    return dt.datetime.combine(issue.date, dt.time(), tzinfo=dt.UTC)


def atom_feed(settings: Settings, pages: list[RenderedPage]) -> bytes:
    """The Atom feed of `pages` (newest first), with feedgen: absolute URLs, each entry's content."""
    from feedgen.feed import FeedGenerator

    feed = FeedGenerator()
    feed.id(archive_url(settings))
    feed.title(settings.name)
    feed.author({"name": settings.name})
    feed.link(href=archive_url(settings), rel="alternate")
    feed.link(href=feed_url(settings), rel="self")
    feed.language(settings.language)
    feed.generator("newsletter")
    feed.updated(_entry_time(pages[0].issue) if pages else dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
    # feedgen puts the entry added last first: add the oldest first, so the newest leads.
    for page in reversed(pages):
        issue = page.issue
        entry = feed.add_entry()
        entry.id(issue.web_url)
        entry.title(issue.subject)
        entry.link(href=issue.web_url, rel="alternate")
        entry.updated(_entry_time(issue))
        entry.published(_entry_time(issue))
        if issue.preheader:
            entry.summary(issue.preheader)
        entry.content(page.content, type="html")
    return bytes(feed.atom_str(pretty=True))

