"""`newsletter site`: every published issue → `build/site/`, the web edition.

    build/site/
      index.html            the archive, newest first
      feed.xml              an Atom feed (RFC 4287) of the latest issues
      style.css             the one stylesheet of every page
      <issue>/index.html    the issue's web page, at the URL the email links to
      <issue>/<image>       its processed images, at the URLs the email loads them from

An issue with `draft: true` is left out of all of it. The same input gives the same
bytes (no build time anywhere: the feed's dates are the issues' dates), and a file
whose bytes did not change is not written again, so whatever publishes the folder
uploads only what changed.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.build import image_cache
from newsletter.config import Settings
from newsletter.content import ISSUE_FILE, Issue, load_issue
from newsletter.errors import NewsletterError, where
from newsletter.images import ImageCache, ImageError
from newsletter.render.web import (
    FEED,
    STYLESHEET,
    RenderedPage,
    archive_url,
    feed_url,
    render_archive,
    render_stylesheet,
    render_web_page,
)

SITE_DIR = "site"
PAGE = "index.html"
FEED_ENTRIES = 20
# The files the last build wrote, so that a rebuild removes what is no longer published
# (an issue made a draft again, an image taken out) and nothing else in the folder.
MANIFEST = ".newsletter-site"


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

    @property
    def ok(self) -> bool:
        return not self.errors


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


def issue_images(issue: Issue) -> list[tuple[str, Path]]:
    """(path under the issue's folder of the site, source file) of each image it publishes.

    The path is the image's URL under the issue's web address: the email's
    `<base_url>/<issue>/<path>` is the site's file `<issue>/<path>`.
    """
    found = []
    for image in issue.images:
        relative = issue.published_path(image)
        if relative is not None:
            found.append((relative, image.path))
    return found


def write_issue_images(issue: Issue, folder: Path, cache: ImageCache) -> tuple[list[Path], list[Path]]:
    """Write the processed images of `issue` under `folder`; (files written, all files)."""
    written, files = [], []
    for relative, source in issue_images(issue):
        target = folder / relative
        if write_if_changed(target, cache.get(source).data):
            written.append(target)
        files.append(target)
    return written, files


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
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.tmp{os.getpid()}.{threading.get_ident()}")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError as exc:
        raise NewsletterError(f"{where(path)}: cannot write it ({exc.strerror or exc})") from None
    finally:
        temporary.unlink(missing_ok=True)
    return True


def published_issue_names(settings: Settings) -> list[str]:
    return sorted(p.parent.name for p in settings.issues_dir.glob(f"*/{ISSUE_FILE}"))


def build_site(settings: Settings, folder: Path | None = None) -> SiteReport:
    """Write the web edition of every issue that is not a draft to `folder` (`build/site/`).

    Raises `SiteFailed` when an issue does not load or an image cannot be read, after
    writing everything else.
    """
    folder = folder if folder is not None else site_dir(settings)
    report = SiteReport(folder)
    cache = image_cache(settings)
    issues: list[Issue] = []
    for name in published_issue_names(settings):
        try:
            issue = load_issue(settings, name)
        except NewsletterError as exc:
            report.errors.append(str(exc))
            continue
        if issue.draft:
            report.drafts.append(name)
        elif issue.date is None:
            report.errors.append(f"{where(issue.folder / ISSUE_FILE)}: `date` is required on the web edition "
                                 "(the archive and the feed are ordered by it), or set `draft: true`")
        else:
            issues.append(issue)
    issues.sort(key=lambda issue: (issue.date or dt.date.min, issue.name), reverse=True)
    report.issues = [issue.name for issue in issues]

    outputs: list[Path] = []

    def put(path: Path, data: bytes) -> None:
        outputs.append(path)
        if write_if_changed(path, data):
            report.written.append(path)

    entries: list[RenderedPage] = []
    for issue in issues:
        page = render_web_page(settings, issue)
        put(folder / issue.name / PAGE, page.html.encode("utf-8"))
        if len(entries) < FEED_ENTRIES:
            entries.append(page)
    # Images are processed in threads: Pillow decodes, scales and encodes without the GIL.
    with ThreadPoolExecutor(max_workers=min(4, (os.cpu_count() or 1) + 1)) as pool:
        results = pool.map(lambda issue: _issue_images_or_error(issue, folder, cache), issues)
        for written, files, error in results:
            report.written.extend(written)
            outputs.extend(files)
            if error:
                report.errors.append(error)
    if settings.logo is not None:  # beside the archive page, where the email and every page link it
        try:
            put(folder / settings.logo.name, cache.get(settings.logo).data)
        except ImageError as exc:
            report.errors.append(str(exc))
    put(folder / STYLESHEET, render_stylesheet(settings).encode("utf-8"))
    put(folder / PAGE, render_archive(settings, issues).encode("utf-8"))
    put(folder / FEED, atom_feed(settings, entries))
    report.removed = _remove_unpublished(folder, outputs)
    report.files = len(outputs)
    if report.errors:
        raise SiteFailed(report)
    return report


def _issue_images_or_error(issue: Issue, folder: Path, cache: ImageCache) -> tuple[list[Path], list[Path], str]:
    try:
        written, files = write_issue_images(issue, folder / issue.name, cache)
    except ImageError as exc:
        return [], [], str(exc)
    return written, files, ""


def _remove_unpublished(folder: Path, outputs: Iterable[Path]) -> list[Path]:
    """Remove what the previous build wrote and this one did not; record this build's files."""
    manifest = folder / MANIFEST
    current = sorted({path.relative_to(folder).as_posix() for path in outputs})
    try:
        previous = manifest.read_text(encoding="utf-8").splitlines()
    except OSError:
        previous = []
    removed = []
    keep = set(current)
    for name in previous:
        path = folder / name
        if name and name not in keep and ".." not in Path(name).parts and path.is_file():
            path.unlink()
            removed.append(path)
            _remove_empty_folders(path.parent, folder)
    write_if_changed(manifest, "".join(f"{name}\n" for name in current).encode("utf-8"))
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

