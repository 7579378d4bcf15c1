"""An `Issue` → the email's final HTML and plain text, rendered and inlined once.

Both parts carry merge-field tags (see `merge`) in place of per-subscriber
values, so a send renders and inlines the issue once, whatever the list's size.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import re
import sys
import threading
import types
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from newsletter import merge
from newsletter.files.atomic import write_text
from newsletter.config import Settings
from newsletter.errors import NewsletterError
from newsletter.content import Issue
from newsletter.render.fold import fold_html
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


INLINE_CACHE_DIR = "inline-cache"  # in build/: premailer's output by its exact input


def render_issue(settings: Settings, issue: Issue, write_cache: bool = True) -> RenderedEmail:
    """Render `issue` with the publication's templates (falling back to the package's).

    The inlined HTML's long lines are folded where a line break shows as the space it
    replaces (see `fold`): a writer's paragraph on one line would pass SMTP's 998 octets.
    The inlined HTML is kept in `build/inline-cache/` by its exact input, so a later
    command on the same issue skips premailer (about half a second with its import),
    and the compiled templates in `build/template-cache/`; `write_cache=False` reads
    those caches but adds nothing to them (`check` writes nothing).
    """
    env = environment(settings.templates_dir, settings.build_dir, write_cache)
    issue = without_tags(issue)
    html = render(env, HTML_TEMPLATE, {**shared_context(settings, markup=True), "issue": issue,
                                       **_merge_context("html")})
    text = render(env, TEXT_TEMPLATE, {**shared_context(settings, markup=False), "issue": issue,
                                       **_merge_context("text")})
    inlined = inline_css(html, settings.build_dir / INLINE_CACHE_DIR, write_cache)
    return RenderedEmail(issue=issue, subject=issue.subject, html=fold_html(inlined), text=_tidy_text(text))


def _merge_context(part: merge.Part) -> dict[str, Any]:
    """What only the email has: the subscriber's fields and the unsubscribe link, as tags;
    `in_email` lets the templates shared with the web (article.html) add what only mail
    clients need, such as the named anchors the contents jump to."""
    return {"subscriber": merge.SubscriberFields(part),
            "unsubscribe_url": merge.MergeTag(part, merge.UNSUBSCRIBE_FIELD), "in_email": True}


_PREMAILER_OPTIONS: dict[str, Any] = {
    "allow_network": False,
    "remove_classes": False,
    "disable_basic_attributes": ["width", "height"],
    "cssutils_logging_level": logging.CRITICAL,
    "disable_validation": True,
}


# premailer has cssutils parse each <style> it inlines, and cssutils fetches an `@import`d
# stylesheet over the network whatever premailer's `allow_network` says (a build was seen
# connecting), only for premailer to leave the rule out of the email. Taken out first: the
# email is the same, and no build reaches another host. A `<style data-premailer="ignore">`
# block, which premailer neither parses nor inlines, keeps its @import (a web font, say).
_STYLE_INLINED = re.compile(r"(<style(?![^>]*data-premailer=[\"']?ignore)[^>]*>)(.*?)(</style>)", re.S | re.I)
_IMPORT_RULE = re.compile(r"""@import\s*(?:url\([^)]*\)|"[^"]*"|'[^']*')[^;{}]*;?""", re.I)


def inline_css(html: str, cache: Path | None = None, write_cache: bool = True) -> str:
    """Move the `<style>` rules onto the elements, once per issue.

    Rules premailer cannot inline (media queries, dark mode, client hacks) live in
    `<style data-premailer="ignore">`, which it leaves alone, `!important` included.

    premailer is a pure function of the HTML, its options and its (and cssutils' and
    lxml's) version: with `cache`, its output is kept under a hash of exactly those, so
    no change anywhere upstream (an article, a template, a setting) can meet a stale copy.
    """
    if "@import" in html:
        html = _STYLE_INLINED.sub(lambda style: style[1] + _IMPORT_RULE.sub("", style[2]) + style[3], html)
    cached = cache / f"{_inline_key(html)}.html" if cache is not None else None
    if cached is not None:
        try:
            return cached.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            pass  # not there yet, or unreadable: inline again
    Premailer = _premailer()  # imported here: it is slow to import and only build needs it

    # premailer's Outlook fix for floated images (an `align` from the `float`) parses
    # every image's style with validation on: a tenth of a second of cssutils' regular
    # expressions, wasted on templates that float nothing (ours do not).
    floats = "float" in html
    inlined = str(Premailer(html, **_PREMAILER_OPTIONS, align_floating_images=floats).transform(pretty_print=False))
    if cached is not None and write_cache:
        try:
            write_text(cached, inlined)
            _prune(cached.parent)
        except (NewsletterError, OSError):
            pass  # a cache that cannot be written only makes the next command slower
    return inlined


class _ImportedOnUse(types.ModuleType):
    """Stands in for the module of its name, which is imported the first time one of its names is used."""

    def __getattr__(self, attribute: str) -> Any:
        if sys.modules.get(self.__name__) is self:  # used while still standing in: the real one takes its place
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attribute)


_premailer_import = threading.Lock()


def _premailer() -> Any:
    """premailer's `Premailer`, imported without `requests`, with cssutils validating nothing.

    premailer imports requests (with urllib3, charset_normalizer and chardet) at its top,
    for the one thing we turn off: fetching stylesheets over the network (`allow_network`
    is False). That import was 80 ms of a cold `build`'s 0.7 s of CPU. While premailer is
    imported, `requests` is a stand-in that imports the real one when premailer first uses
    it (it never does here); the stand-in is gone from `sys.modules` straight after, so
    anything else that imports requests gets the real one.
    """
    with _premailer_import:
        stand_in = None
        if "premailer.premailer" not in sys.modules and "requests" not in sys.modules:
            stand_in = sys.modules["requests"] = _ImportedOnUse("requests")
        try:
            from premailer import Premailer
        finally:
            if stand_in is not None and sys.modules.get("requests") is stand_in:
                del sys.modules["requests"]
        import cssutils

        # premailer checks each element's own style="" against cssutils' CSS profiles, whatever
        # `disable_validation` says (its merge_styles does not pass it on), only for cssutils to
        # log what is invalid, which `cssutils_logging_level` silences. The `border` shorthand's
        # pattern alone (15,000 characters, for the images' `border:0`) took 30-50 ms to compile
        # in every cold build. Without profiles cssutils parses and writes the CSS the same; only
        # the checks whose findings nobody reads are gone (cssutils is premailer's alone here).
        if cssutils.profile.profiles:
            cssutils.profile.removeProfile(all=True)
    return Premailer


INLINE_CACHE_KEPT = 100  # the newest inlined versions kept; `preview --serve` makes one per edit


def _prune(cache: Path) -> None:
    """Keep the cache to its newest entries."""
    entries = sorted(cache.glob("*.html"), key=lambda path: path.stat().st_mtime, reverse=True)
    for old in entries[INLINE_CACHE_KEPT:]:
        old.unlink(missing_ok=True)


@lru_cache(maxsize=1)
def _inliner_versions() -> str:
    """What identifies the installed premailer, cssutils and lxml, without importing them.

    Each one's dist-info folder beside it (its name holds the version) and its module
    file's size and time: `importlib.metadata.version` gives the same but scans every
    distribution on the path, a tenth of a warm send's start-up.
    """
    found = []
    for name in ("premailer", "cssutils", "lxml"):
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            found.append(f"{name}=missing")
            continue
        module = Path(spec.origin)
        stat = module.stat()
        dists = sorted(p.name for p in module.parent.parent.glob(f"{name}-*.dist-info"))
        found.append(f"{name}={','.join(dists)}:{module}:{stat.st_size}:{stat.st_mtime_ns}")
    return " ".join(found)


def _inline_key(html: str) -> str:
    digest = hashlib.sha256(f"{_inliner_versions()}\0{_PREMAILER_OPTIONS!r}\0".encode())
    digest.update(html.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _tidy_text(text: str) -> str:
    """At most one blank line in a row, no trailing spaces, one final newline."""
    text = "\n".join(line.rstrip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"
