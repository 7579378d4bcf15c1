"""The Jinja environment both targets render with, and its errors as one line each.

Templates come from the publication's `templates/` first, then the package's
defaults; autoescaping for `.html`, strict undefined variables, and errors that
name the template file and line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from newsletter import merge
from newsletter.config import Settings
from newsletter.content import Issue
from newsletter.errors import TemplateError, where
from newsletter.images import display_size
from newsletter.markdown import wrap
from newsletter.strings import DEFAULT_LANGUAGE, Strings, text_direction

PACKAGE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def without_tags(issue: Issue) -> Issue:
    """The issue with text that looks like a merge tag made inert (see `merge.defuse`).

    Both targets render this: only the templates' `{{ subscriber.… }}` make live tags.
    """
    articles = tuple(
        replace(a, title=merge.defuse(a.title), author=merge.defuse(a.author), summary=merge.defuse(a.summary),
                html=merge.defuse(a.html), text=merge.defuse(a.text))
        for a in issue.articles)
    return replace(issue, subject=merge.defuse(issue.subject), preheader=merge.defuse(issue.preheader),
                   articles=articles)


def template_sources(settings: Settings) -> list[Path]:
    """The template files in use, for `preview --serve` to watch."""
    folders = (settings.templates_dir, PACKAGE_TEMPLATES)
    return sorted(p for folder in folders if folder.is_dir() for p in folder.iterdir())


TEMPLATE_CACHE_DIR = "template-cache"  # in build/: Jinja's compiled templates

# Everything that shapes what Jinja compiles, besides a template's own source (which
# Jinja checks itself): a compiled template is only reused under the same options.
_OPTIONS: dict[str, Any] = {"trim_blocks": True, "lstrip_blocks": True, "keep_trailing_newline": True}
_AUTOESCAPED = ("html", "xml")  # templates by extension, escaped as they are compiled


class _CompiledTemplates(jinja2.FileSystemBytecodeCache):
    """Jinja's compiled templates, kept in `build/template-cache/` across commands.

    Compiling the email's templates is a tenth of a warm send's start-up. Jinja reuses
    a compiled template only for the same source and Python (it checks both); the file
    names carry Jinja's version and our options. With `write=False` (`check`, which
    writes nothing) the cache is only read.
    """

    def __init__(self, folder: Path, write: bool) -> None:
        key = hashlib.sha256(f"{jinja2.__version__}\0{_OPTIONS!r}\0{_AUTOESCAPED}".encode()).hexdigest()[:16]
        super().__init__(str(folder), pattern=f"{key}-%s.cache")
        self.write = write

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        if not self.write:
            return
        try:
            Path(self.directory).mkdir(parents=True, exist_ok=True)
            super().dump_bytecode(bucket)
        except OSError:
            pass  # a cache that cannot be written only makes the next command slower


_environments: dict[tuple[Path, tuple[str, ...], Path | None, bool], jinja2.Environment] = {}


def environment(templates_dir: Path, build_dir: Path | None = None, write: bool = True) -> jinja2.Environment:
    """The environment over `templates_dir` and the package's templates.

    With `build_dir`, compiled templates are kept in its `template-cache/` (read-only
    unless `write`).
    """
    # One environment per process, folder and set of overrides: Jinja caches compiled
    # templates in it, and an override added later (while `preview --serve` runs)
    # must win over the package's template Jinja already loaded.
    overrides = tuple(sorted(p.name for p in templates_dir.iterdir())) if templates_dir.is_dir() else ()
    key = (templates_dir, overrides, build_dir, write)
    env = _environments.get(key)
    if env is None:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(templates_dir), str(PACKAGE_TEMPLATES)]),
            autoescape=jinja2.select_autoescape(enabled_extensions=_AUTOESCAPED, default_for_string=False),
            undefined=jinja2.StrictUndefined,
            auto_reload=True,
            bytecode_cache=_CompiledTemplates(build_dir / TEMPLATE_CACHE_DIR, write) if build_dir else None,
            **_OPTIONS,
        )
        env.filters["default"] = _default
        env.filters["d"] = _default
        env.filters["longdate"] = _longdate
        env.filters["anchor"] = anchor
        env.filters["wrap"] = wrap  # for the text part: lines of at most 78 characters
        _environments[key] = env
    return env


@jinja2.pass_context
def _longdate(context: jinja2.runtime.Context, day: dt.date) -> str:
    """`day` written out in the publication's language, by Babel ("2 décembre 2026")."""
    publication = context.get("publication")
    language = publication.language if isinstance(publication, Settings) else DEFAULT_LANGUAGE
    return Strings(language).date(day)


def anchor(slug: str) -> str:
    """The `id` of an article's title, for the contents' `href="#…"`: letters, digits and dashes."""
    cleaned = "-".join(re.findall(r"[^\W_]+", slug.casefold()))
    return f"article-{cleaned or 'untitled'}"


@dataclass(frozen=True)
class Logo:
    """The publication's logo as both targets show it: where it is published, and its size."""

    file: str     # its name at the top of the web edition, beside the archive page
    url: str      # its absolute address, for the email
    width: int
    height: int | None


LOGO_WIDTH = 200  # CSS pixels at most; a file twice as wide is sharp on high-density screens


def logo_of(settings: Settings) -> Logo | None:
    """The logo of newsletter.yaml, or None; shown at most `LOGO_WIDTH` wide (its file is
    processed like an article's images, see `images`)."""
    if settings.logo is None:
        return None
    name = settings.logo.name
    size = display_size(settings.logo)
    width, height = (LOGO_WIDTH, None) if size is None else (min(size[0], LOGO_WIDTH), size[1])
    if size is not None:
        height = max(1, round(size[1] * width / size[0]))
    return Logo(file=name, url=f"{settings.base_url}/{quote(name)}", width=width, height=height)


def shared_context(settings: Settings, markup: bool) -> dict[str, Any]:
    """What every template of both targets gets: the publication, its phrases, its logo, and its
    language's direction: `dir` (`ltr`, or `rtl` for Arabic, Hebrew, Persian…) and the sides a
    line `start`s and `end`s on, for the email's CSS (clients know too few logical properties)."""
    direction = text_direction(settings.language)
    start, end = ("right", "left") if direction == "rtl" else ("left", "right")
    return {"publication": settings, "t": settings.phrases(markup=markup), "logo": logo_of(settings),
            "accent": settings.accent_color, "accent_dark": settings.accent_color_dark,
            "dir": direction, "start": start, "end": end}


def _default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """Jinja's `default`, which for a merge field sets the fallback used when it is empty."""
    if isinstance(value, merge.MergeTag):
        return value.with_fallback(default_value)
    return jinja2.filters.do_default(value, default_value, boolean)


def render(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    """Render template `name`; any failure becomes a `TemplateError` naming file and line."""
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{where(exc.filename or exc.name or name, exc.lineno)}: {exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"template {exc.name!r} not found in {where(env.loader.searchpath[0])} or the package's defaults") from None  # type: ignore[union-attr]
    except Exception as exc:  # noqa: BLE001 - a template can fail in any way (`{{ 1/0 }}`)
        filename, line = _template_frame(exc)
        message = str(exc) if isinstance(exc, (jinja2.TemplateError, merge.MergeFieldMisuse)) else (
            f"{type(exc).__name__}: {exc}")
        if isinstance(exc, jinja2.UndefinedError):
            message += " (check the name against the template variables in templates/README.md)"
        raise TemplateError(f"{where(filename or name, line)}: {message}") from None


def _template_frame(exc: BaseException) -> tuple[str | None, int | None]:
    """The innermost template file and line in `exc`'s traceback, as Jinja rewrote it."""
    found: tuple[str | None, int | None] = (None, None)
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith((".html", ".txt", ".css", ".xml")):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found
