"""Build an issue: load, render, check, and write `build/<issue>/email.html` and `email.txt`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from newsletter.files.atomic import write_text
from newsletter.checks import CheckFailed, CheckReport, check_email, check_sending_settings
from newsletter.config import Settings
from newsletter.content import load_issue
from newsletter.errors import NewsletterError
from newsletter.images import ImageCache
from newsletter.render import RenderedEmail, render_issue
from newsletter.subscribers import COLUMNS, DEFAULT_LIST, list_path, open_list


@dataclass(frozen=True)
class BuiltIssue:
    email: RenderedEmail
    report: CheckReport
    html_path: Path
    text_path: Path


def render_and_check(settings: Settings, name: str, list_name: str = DEFAULT_LIST,
                     write_cache: bool = True) -> tuple[RenderedEmail, CheckReport]:
    """Load and render issue `name` and check the result; raises if it does not load.

    The merge fields are checked against the columns of the list `list_name`. The
    images the checks process are kept for `site` and later commands; without
    `write_cache`, nothing is written (the inlining and image caches are only read).
    """
    email = render_issue(settings, load_issue(settings, name), write_cache)
    images = image_cache(settings, write=write_cache)
    return email, check_email(settings, email, list_columns(settings, list_name), images)


IMAGE_CACHE_DIR = "image-cache"


def image_cache(settings: Settings, write: bool = True) -> ImageCache:
    """The publication's processed images, `build/image-cache/` (read-only without `write`)."""
    return ImageCache(settings.build_dir / IMAGE_CACHE_DIR, write=write)


def list_columns(settings: Settings, list_name: str) -> tuple[str, ...] | None:
    """The columns of a subscriber list, or None when it does not exist (yet)."""
    path = list_path(settings, list_name)
    if not path.is_file():
        return None
    try:
        with open_list(path) as listed:
            return (*COLUMNS, *listed.extra_columns)
    except NewsletterError:
        return None  # an unreadable list is reported by the commands that read it


def check_issue(settings: Settings, name: str) -> CheckReport:
    """Every finding about issue `name`, a failure to load or render among them."""
    try:
        report = render_and_check(settings, name, write_cache=False)[1]  # `check` writes nothing
    except NewsletterError as exc:
        report = CheckReport(name)
        report.error(str(exc))
        return report
    check_sending_settings(settings, report)
    return report


def build_issue(settings: Settings, name: str) -> BuiltIssue:
    """Render issue `name`, refuse it if a check fails, and write both parts."""
    email, report = render_and_check(settings, name)
    if not report.ok:
        raise CheckFailed(report)
    folder = output_dir(settings, email.issue.name)
    html_path = write_text(folder / "email.html", email.html)
    text_path = write_text(folder / "email.txt", email.text)
    return BuiltIssue(email, report, html_path, text_path)


def output_dir(settings: Settings, issue_name: str) -> Path:
    return settings.build_dir / issue_name

