"""An `Issue` → its web page, and the published issues → the archive page.

The web page is the email's content with nothing personal in it: no merge-field
tags, no greeting, no unsubscribe link. It is made from the same article HTML as
the email, links one shared stylesheet (not inlined), and carries what links
shared on the web show (title, description, Open Graph) and a link to the feed.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from newsletter import merge
from newsletter.config import Settings
from newsletter.content import Issue
from newsletter.render.templates import environment, render, shared_context, without_tags

PAGE_TEMPLATE = "web.html"
CONTENT_TEMPLATE = "issue-content.html"
ARCHIVE_TEMPLATE = "web-archive.html"
STYLESHEET_TEMPLATE = "web.css"
STYLESHEET = "style.css"
FEED = "feed.xml"
PAGE = "index.html"     # each issue's page, and the archive
# The files the last build wrote (and what it published of each issue), so that a rebuild
# removes what is no longer published and keeps what failed to build this time.
MANIFEST = ".newsletter-site"
# The names at the top of the site that nothing else may take (an issue's folder, the logo).
SITE_FILES = (PAGE, STYLESHEET, FEED, MANIFEST)


def takes_a_site_file(name: str) -> bool:
    """Whether a file or folder `name` at the top of the site would overwrite one of its own
    files. Compared without case: a site served from a Mac or Windows disk sees one file."""
    return name.casefold() in SITE_FILES


def takes_the_page(relative: str) -> bool:
    """Whether an image published at `relative` in an issue's folder would be its page."""
    return relative.casefold() == PAGE


@dataclass(frozen=True)
class RenderedPage:
    """An issue's web page, and its content with absolute URLs for the feed."""

    issue: Issue
    html: str
    content: str       # the articles, URLs absolute: the feed entry's content
    og_image: str | None


def archive_url(settings: Settings) -> str:
    return f"{settings.base_url}/"


def feed_url(settings: Settings) -> str:
    return f"{settings.base_url}/{FEED}"


def render_web_page(settings: Settings, issue: Issue) -> RenderedPage:
    """Render the web page of `issue`; its own images are linked relative to the page."""
    env = environment(settings.templates_dir)
    issue = without_tags(issue)  # an article that reads `[%html:email%]` keeps reading so
    content = _public(render(env, CONTENT_TEMPLATE, _context(settings, issue)))
    og_image = issue.images[0].url if issue.images else None
    page = render(env, PAGE_TEMPLATE, {
        **_context(settings, issue),
        # The page is at the issue's URL, so its images are beside it: the site works
        # wherever it is copied, and a page saved to disk still shows them.
        "content": _relative_to(content, issue.web_url),
        "og_image": og_image,
        "home": "../",
        "stylesheet_url": f"../{STYLESHEET}",
    })
    return RenderedPage(issue=issue, html=_public(page), content=content, og_image=og_image)


def render_archive(settings: Settings, issues: Sequence[Issue]) -> str:
    """The archive page: `issues` as given (newest first), each with its subject, date and preheader."""
    env = environment(settings.templates_dir)
    # As on the issue's page: a subject that reads `[%html:email%]` keeps reading so here.
    return _public(render(env, ARCHIVE_TEMPLATE, {
        **shared_context(settings, markup=True), "issues": [without_tags(issue) for issue in issues],
        "archive_url": archive_url(settings),
        "feed_url": feed_url(settings), "home": "./", "stylesheet_url": STYLESHEET,
    }))


def render_stylesheet(settings: Settings) -> str:
    return render(environment(settings.templates_dir), STYLESHEET_TEMPLATE, shared_context(settings, markup=False))


def _context(settings: Settings, issue: Issue) -> dict[str, Any]:
    return {
        **shared_context(settings, markup=True),
        "issue": issue,
        "archive_url": archive_url(settings),
        "feed_url": feed_url(settings),
        # The shared parts (article.html, contents.html) may greet by name: on the web
        # every subscriber field shows its fallback. There is no `unsubscribe_url` here.
        "subscriber": merge.SubscriberFields("html"),
        "in_email": False,  # the titles keep their id, without the email's <a name> (obsolete in HTML5)
    }


def _public(document: str) -> str:
    """`document` with any merge field replaced by its fallback: nothing personal on the web."""
    return merge.fill(document, {}) if "[%" in document else document


def _relative_to(document: str, web_url: str) -> str:
    """Links and images under `web_url` made relative to it."""
    for attribute in ("src", "href"):
        for quoted in (web_url, html.escape(web_url, quote=True)):
            document = document.replace(f'{attribute}="{quoted}', f'{attribute}="./')
    return document
