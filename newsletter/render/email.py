"""An `Issue` → the email's final HTML and plain text, rendered and inlined once.

Both parts carry merge-field tags (see `merge`) in place of per-subscriber
values, so a send renders and inlines the issue once, whatever the list's size.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from newsletter import merge
from newsletter.config import Settings
from newsletter.content import Issue
from newsletter.render.templates import environment, render, shared_context, without_tags

HTML_TEMPLATE = "email.html"
TEXT_TEMPLATE = "email.txt"


@dataclass(frozen=True)
class RenderedEmail:
    """The two parts of an issue's email, with merge-field tags still in them."""

    issue: Issue
    subject: str
    html: str
    text: str

    @cached_property
    def merge_fields(self) -> tuple[merge.MergeField, ...]:
        return merge.fields_in(self.text, self.html)

    @property
    def html_bytes(self) -> int:
        return len(self.html.encode("utf-8"))


def render_issue(settings: Settings, issue: Issue) -> RenderedEmail:
    """Render `issue` with the publication's templates (falling back to the package's)."""
    env = environment(settings.templates_dir)
    issue = without_tags(issue)
    html = render(env, HTML_TEMPLATE, {**shared_context(settings, markup=True), "issue": issue,
                                       **_merge_context("html")})
    text = render(env, TEXT_TEMPLATE, {**shared_context(settings, markup=False), "issue": issue,
                                       **_merge_context("text")})
    return RenderedEmail(
        issue=issue, subject=issue.subject, html=inline_css(html), text=_tidy_text(text)
    )


def _merge_context(part: merge.Part) -> dict[str, Any]:
    """What only the email has: the subscriber's fields and the unsubscribe link, as tags."""
    return {"subscriber": merge.SubscriberFields(part),
            "unsubscribe_url": merge.MergeTag(part, merge.UNSUBSCRIBE_FIELD)}


def inline_css(html: str) -> str:
    """Move the `<style>` rules onto the elements, once per issue.

    Rules premailer cannot inline (media queries, dark mode, client hacks) live in
    `<style data-premailer="ignore">`, which it leaves alone, `!important` included.
    """
    from premailer import Premailer  # imported here: it is slow to import and only build needs it

    return str(Premailer(
        html,
        allow_network=False,
        remove_classes=False,
        disable_basic_attributes=["width", "height"],
        cssutils_logging_level=logging.CRITICAL,
        disable_validation=True,
    ).transform(pretty_print=False))


def _tidy_text(text: str) -> str:
    """At most one blank line in a row, no trailing spaces, one final newline."""
    text = "\n".join(line.rstrip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"
