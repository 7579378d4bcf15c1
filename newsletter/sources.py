"""Where a piece of the rendered email came from: an article's file and line, or a template's.

`check` works on the rendered email, where every link and image is a resolved URL and
merge fields are tags. To tell the editor which file to open, the article is found by
its own HTML (the one holding that link or image), and the line by reading its Markdown
again: each link target written on a line is resolved as rendering resolved it and
compared. Merge fields come only from templates (article text cannot make one, see
`merge.defuse`), so they are looked for in the templates the email uses.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urljoin

import jinja2
import jinja2.meta

from newsletter.config import Settings
from newsletter.content import Article, Issue
from newsletter.errors import where
from newsletter.render.templates import environment

EMAIL_TEMPLATES = ("email.html", "email.txt")

# Link and image targets as Markdown writes them: `](target "title")`, `](<target>)`,
# a reference definition `[name]: target`, and a bare address linkify turns into a link.
_TARGETS = re.compile(
    r"\]\(\s*<([^>]*)>"
    r"|\]\(\s*([^)\s]+)"
    r"|^\s{0,3}\[[^\]]+\]:\s*<?([^>\s]+)"
    r"|((?:https?://|www\.)[^\s<>()\[\]]+)",
    re.MULTILINE,
)


def article_base_url(issue: Issue, article: Article) -> str:
    """The address an article's relative links resolve against: its folder's URL (as `content` makes it)."""
    sub = article.source.parent.relative_to(issue.folder).as_posix() if article.source.is_relative_to(
        issue.folder) else "."
    return issue.web_url if sub == "." else f"{issue.web_url}{quote(sub)}/"


def article_with(issue: Issue, attribute: str, url: str, without_alt: bool = False) -> Article | None:
    """The first article whose own HTML has `attribute="url"` (an href or an img src); with
    `without_alt`, one where that image has no alt text, when there is one."""
    needle = f'{attribute}="{html.escape(url)}"'
    holding = [article for article in issue.articles if needle in article.html]
    if without_alt:
        bare = f'{needle} alt=""'
        holding = [a for a in holding if bare in a.html] or holding
    return holding[0] if holding else None


def line_in_article(issue: Issue, article: Article, url: str, without_alt: bool = False) -> int | None:
    """The line of the article's file where a link or image target resolving to `url` is written;
    with `without_alt`, preferably one written `![](…)`, the same image without alt text."""
    try:
        text = article.source.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    base = article_base_url(issue, article)
    first = None
    for number, line in enumerate(text.splitlines(), start=1):
        for match in _TARGETS.finditer(line):
            target = next(group for group in match.groups() if group is not None)
            if _resolves_to(base, target, url):
                if not without_alt or line[max(match.start() - 2, 0):match.start() + 1] == "![]":
                    return number
                first = first or number
    return first


def _resolves_to(base: str, target: str, url: str) -> bool:
    if target.lower().startswith("www."):
        return url.split("://", 1)[-1].rstrip("/") == target.rstrip("/")
    resolved = urljoin(base, target.strip())
    return resolved == url or quote(resolved, safe=":/?#[]@!$&'()*+,;=%~") == url


def where_in_articles(issue: Issue, attribute: str, url: str, without_alt: bool = False) -> str | None:
    """`issues/x/a.md:7` (or without a line when it cannot be found) for a link or image of an article."""
    article = article_with(issue, attribute, url, without_alt)
    if article is None:
        return None
    return where(article.source, line_in_article(issue, article, url, without_alt))


def email_templates(settings: Settings) -> Iterator[tuple[Path, str]]:
    """(file, source) of every template the email renders: email.html, email.txt and all
    they include or extend, each as the loader finds it (the publication's before the package's)."""
    env = environment(settings.templates_dir)
    pending, seen = list(EMAIL_TEMPLATES), set()
    while pending:
        name = pending.pop(0)
        if name in seen:
            continue
        seen.add(name)
        try:
            source, filename, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
            referenced = jinja2.meta.find_referenced_templates(env.parse(source))
        except jinja2.TemplateError:
            continue  # rendering already reported it
        yield Path(filename or name), source
        pending.extend(found for found in referenced if found is not None)


def where_in_templates(settings: Settings, pattern: re.Pattern[str]) -> list[str]:
    """`templates/header.html:3` for every line of the email's templates that `pattern` matches."""
    found = []
    for path, source in email_templates(settings):
        for number, line in enumerate(source.splitlines(), start=1):
            if pattern.search(line):
                found.append(where(path, number))
    return found


def where_written(settings: Settings, issue: Issue, attribute: str, url: str, without_alt: bool = False) -> str:
    """Where a link or image of the email comes from: an article, else a template that writes the
    address as it is; "" when neither can be told (a template that builds it from variables).
    `without_alt`: where the image is given without alt text, if it is given more than once."""
    located = where_in_articles(issue, attribute, url, without_alt)
    if located is not None:
        return located
    in_templates = where_in_templates(settings, re.compile(re.escape(url)))
    return in_templates[0] if in_templates else ""


def merge_field_pattern(name: str) -> re.Pattern[str]:
    """`subscriber.NAME` or `subscriber['NAME']` in a template's source."""
    return re.compile(rf"\bsubscriber\s*(?:\.\s*{re.escape(name)}\b|\[\s*['\"]{re.escape(name)}['\"]\s*\])")
