"""What `newsletter check` reports about a rendered issue, and what `build`/`send` refuse.

Errors make the email unsendable (no unsubscribe link, no postal address, an
issue or template that does not load); warnings are worth a look (Gmail's
clipping, images without alt text, plain `http://` links, a long subject).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from newsletter import merge
from newsletter.colors import AA_CONTRAST, accent_failures
from newsletter.config import Settings
from newsletter.content import ISSUE_FILE, Article, Issue
from newsletter.errors import NewsletterError, where
from newsletter.findings import Finding
from newsletter.images import LARGE_BYTES, SVG_REFUSED, ImageCache, ImageError, is_svg
from newsletter.markdown import RefusedLink
from newsletter.placeholders import placeholders
from newsletter.render import RenderedEmail
from newsletter.render.web import takes_a_site_file, takes_the_page
from newsletter.sources import line_in_article, merge_field_pattern, where_in_templates, where_written

# Gmail hides everything after about 102 KB of HTML, the unsubscribe link included.
GMAIL_CLIP_BYTES = 102 * 1024
SUBJECT_MAX_CHARS = 78


@dataclass
class CheckReport:
    issue: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, message: str) -> None:
        self.findings.append(Finding("error", message))

    def warn(self, message: str) -> None:
        self.findings.append(Finding("warning", message))


class CheckFailed(NewsletterError):
    """The issue has errors that make it unsendable."""

    def __init__(self, report: CheckReport) -> None:
        self.report = report
        count = len(report.errors)
        super().__init__(
            f"{report.issue} has {count} error{'s' if count != 1 else ''}: "
            + "; ".join(f.message for f in report.errors)
        )


def check_email(settings: Settings, email: RenderedEmail, list_columns: Sequence[str] | None = None,
                images: ImageCache | None = None) -> CheckReport:
    """Check a rendered issue; never raises for what it finds.

    With `list_columns`, merge fields that are no column of the list are reported:
    a misspelt `subscriber.frist_name` would give every recipient the fallback.
    `images` is where processed images are looked up (default: processed in memory).
    """
    import lxml.html  # premailer's parser, already loaded by rendering

    report = CheckReport(email.issue.name)
    report.findings.extend(Finding("warning", note) for note in email.issue.warnings)
    tree = lxml.html.document_fromstring(email.html)
    unsubscribe_tag = merge.MergeField("html", merge.UNSUBSCRIBE_FIELD).tag
    hrefs = [a.get("href", "") for a in tree.iter("a")]
    if unsubscribe_tag not in hrefs:
        report.error("the HTML part has no unsubscribe link: keep {{ unsubscribe_url }} in an href of the footer")
    if merge.MergeField("text", merge.UNSUBSCRIBE_FIELD).tag not in email.text:
        report.error("the text part has no unsubscribe link: keep {{ unsubscribe_url }} in email.txt")
    address = " ".join(settings.postal_address.split())
    if address not in " ".join(tree.text_content().split()) or address not in " ".join(email.text.split()):
        report.error(
            "the postal address from newsletter.yaml is missing from the email "
            "(anti-spam laws require it): keep {{ publication.postal_address }} in the footer of both templates"
        )
    if not email.subject.strip():
        report.error("the subject is empty")
    if email.html_bytes > GMAIL_CLIP_BYTES:
        report.warn(
            f"the HTML is {email.html_bytes / 1024:.0f} KB: Gmail clips emails over 102 KB, hiding the rest "
            "and the unsubscribe link; shorten the issue or split it"
        )
    # Each warning about a link or an image starts with where it is written (newsletter.sources).
    for img in tree.iter("img"):
        if img.get("alt") is None or (not img.get("alt", "").strip() and img.get("role") != "presentation"):
            src = str(img.get("src", ""))
            report.warn(f"{_written(settings, email.issue, 'src', src, without_alt=True)}image "
                        f"{_as_written(email.issue, src)} has no alt text: describe it for readers who cannot see it")
    # Each address once, with the attribute it is found under (a link's href first).
    insecure = {str(img.get("src")): "src" for img in tree.iter("img") if str(img.get("src", "")).startswith("http://")}
    insecure.update({h: "href" for h in hrefs if h.startswith("http://")})
    for url, attribute in sorted(insecure.items()):
        report.warn(f"{_written(settings, email.issue, attribute, url)}{url} is an http:// link: "
                    "use https:// where the site has it")
    for url, name in _links_to_other_issues(settings, email.issue.name, hrefs):
        if not (settings.issues_dir / name).is_dir():
            report.warn(f"{_written(settings, email.issue, 'href', url)}the link {url} goes to issue {name}, "
                        f"which is not in {settings.issues_dir.name}/: a reader would find no page there")
    if len(email.subject) > SUBJECT_MAX_CHARS:
        report.warn(f"the subject is {len(email.subject)} characters: inboxes cut it after about {SUBJECT_MAX_CHARS}")
    for part, document in (("HTML", email.html), ("text", email.text)):
        for broken in dict.fromkeys(merge.broken_tags(document)):
            report.error(
                f"the {part} part has a broken merge field {broken}: only `| default(...)` may be applied "
                "to subscriber fields, and a fallback in a link may not contain spaces"
            )
    if list_columns is not None:
        known = set(merge.known_fields(list_columns))
        for name in dict.fromkeys(f.field for f in email.merge_fields if f.field not in known):
            report.warn(_unknown_column(settings, email, name, list_columns))
    for article in email.issue.articles:
        for repeated in _repeated_heading(article):
            report.warn(repeated)
    check_readability(report, email, settings.language)
    if not email.issue.preheader:
        report.warn(f"{where(email.issue.folder / ISSUE_FILE)}: no preheader: inboxes will show the first words "
                    "of the email instead; set `preheader` in issue.yaml")
    check_content(report, email.issue, images or ImageCache(None))
    check_brand(report, settings, images or ImageCache(None))
    return report


# Link texts that say nothing of where they lead, by the language's base (`fr` of `fr-CA`); a
# language not here is held to English's. Screen readers list a page's links by their text
# alone ("here, here, read more"), and a reader skimming the email looks for them.
VAGUE_LINK_TEXTS: dict[str, frozenset[str]] = {
    "en": frozenset({"here", "click here", "click", "read more", "more", "this", "this link", "link",
                     "learn more", "more here", "see here"}),
    "fr": frozenset({"ici", "cliquez ici", "cliquer ici", "clique ici", "lire la suite", "la suite", "plus",
                     "en savoir plus", "ceci", "ce lien", "lien", "voir ici"}),
    "de": frozenset({"hier", "hier klicken", "klicken sie hier", "klick hier", "weiterlesen", "mehr lesen", "mehr",
                     "mehr erfahren", "dies", "das", "dieser link", "link", "diesen link"}),
    "es": frozenset({"aquí", "aqui", "haz clic aquí", "haga clic aquí", "pulsa aquí", "clic aquí", "leer más",
                     "seguir leyendo", "más", "más información", "esto", "este enlace", "enlace"}),
}
# Characters around a link's text that do not change what it says ("Read more →", "here.").
_AROUND_LINK_TEXT = " \t.,:;!?¡¿…«»“”‘’\"'()[]<>→←»-–—"
# RFC 5322 2.1.1: a line of a message is at most 998 characters, counted as octets (UTF-8 bytes: an Arabic
# or CJK character is 2 to 3 of them); servers may cut longer ones.
MAX_LINE_OCTETS = 998


def check_readability(report: CheckReport, email: RenderedEmail, language: str) -> None:
    """What makes the issue hard to read for some: links whose text says nothing out of context,
    headings that skip a level, images whose alt text is their file name, and over-long lines in
    the text part. Each warning names the article's file and line."""
    from newsletter.strings import base_language

    vague = VAGUE_LINK_TEXTS.get(base_language(language), VAGUE_LINK_TEXTS["en"])
    for article in email.issue.articles:
        found: list[tuple[int, str]] = []  # (line, warning), told in the article's order
        for link in article.links:
            if link.kind == "link" and _link_words(link.text) in vague:
                found.append((link.line or 0, f"{where(article.source, link.line)}: the link “{link.text}” says nothing of where it "
                            "goes: screen readers list links by their text alone, and readers skim for them; "
                            "name what it leads to (“the full programme”, not “here”)"))
            elif link.kind == "image" and link.text and _is_file_name(link.text, link.url):
                found.append((link.line or 0, f"{where(article.source, link.line)}: image {link.url} has its file "
                              f"name as alt text (“{link.text}”): a screen reader reads that out; describe what "
                              "the image shows"))
        found.extend(_skipped_headings(article))
        for _line, warning in sorted(found, key=lambda pair: pair[0]):
            report.warn(warning)
    for number, line in enumerate(email.text.splitlines(), start=1):
        octets = len(line.encode("utf-8"))
        if octets > MAX_LINE_OCTETS:
            size = f"{len(line):,} characters" + (f" ({octets:,} bytes in UTF-8)" if octets != len(line) else "")
            report.warn(f"{_where_in_text(email.issue, line, number)}: the text part has a line of {size}: "
                        f"mail servers may cut lines over {MAX_LINE_OCTETS} (RFC 5322), breaking a word or link "
                        "in two; shorten it or put a line break in it")


def _link_words(text: str) -> str:
    return " ".join(text.strip(_AROUND_LINK_TEXT).casefold().split())


def _is_file_name(alt: str, src: str) -> bool:
    """`IMG_2041.jpg` or `IMG_2041` as the alt text of `photos/IMG_2041.jpg`."""
    from urllib.parse import unquote, urlsplit

    name = unquote(urlsplit(src).path).rstrip("/").rsplit("/", 1)[-1].casefold()
    alt = alt.strip().casefold()
    return bool(name) and alt in {name, name.rsplit(".", 1)[0]}


def _skipped_headings(article: Article) -> list[tuple[int, str]]:
    """A heading more than one level below the one before it (`##` then `####`). The article's
    top level is shown right under its title, so its first heading may not start deeper either."""
    if not article.headings:
        return []
    found = []
    top = min(heading.level for heading in article.headings)
    previous_level, previous = top - 1, "the article's title"
    for heading in article.headings:
        if heading.level > previous_level + 1:
            found.append((heading.line or 0, f"{where(article.source, heading.line)}: the heading “{heading.text}” "
                         f"({'#' * heading.level}) skips a level after {previous}: screen-reader users move "
                         f"by heading levels and would look for the one missing; make it "
                         f"{'#' * (previous_level + 1)}"))
        previous_level, previous = heading.level, f"“{heading.text}” ({'#' * heading.level})"
    return found


def _where_in_text(issue: Issue, line: str, number: int) -> str:
    """The article (and line) a line of the text part comes from, found by its longest word (a
    link, most often); else its line in the text part (a template's)."""
    longest = max(line.split(), key=len, default="")[:60]
    for article in issue.articles:
        if line.strip() not in article.text:
            continue
        try:
            source = article.source.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError):
            return where(article.source)
        written = next((n for n, text in enumerate(source, start=1) if longest and longest in text), None)
        return where(article.source, written)
    return f"a template of the email (line {number} of the text part)"


def check_content(report: CheckReport, issue: Issue, images: ImageCache) -> None:
    """What `check` finds in the issue's own articles, without rendering its email: unsafe links
    and images, and its local images. The web edition holds an issue to these (`site`)."""
    for article in issue.articles:
        for link in article.refused:
            report.error(_refused(article, link))
    check_images(report, issue, images)


def _written(settings: Settings, issue: Issue, attribute: str, url: str, without_alt: bool = False) -> str:
    """`issues/x/a.md:7: `, the prefix of a warning about a link or an image of the email."""
    return f"{where_written(settings, issue, attribute, url, without_alt) or 'a template of the email'}: "


def _refused(article: Article, link: RefusedLink) -> str:
    """The error for a link or image shown without its address, the address being unsafe."""
    scheme = link.url.split(":", 1)[0].lower()
    why = {"javascript": "runs a script, which mail clients refuse and the web edition must not run",
           "vbscript": "runs a script, which mail clients refuse and the web edition must not run",
           "file": "is a file on the writer's own computer, which no reader can open"}.get(
               scheme, "is not one mail clients show")
    if link.kind == "image":
        shown, fix = "is not shown (only its alt text is)", "put the image beside the article and give its name"
    else:
        shown, fix = "is not made a link (only its text is shown)", "link to an https:// page"
    return f"{where(article.source, link.line)}: the {link.kind} {link.url} {shown}: a {scheme}: address {why}; {fix}"


def _as_written(issue: Issue, url: str) -> str:
    """An image's address as its article gives it (`pic.png`), else as the email has it."""
    return next((image.src for image in issue.images if image.url == url), url)


def _unknown_column(settings: Settings, email: RenderedEmail, name: str, list_columns: Sequence[str]) -> str:
    """The warning for a merge field no column of the list fills: where the templates use it, and
    what each recipient gets instead (its fallback, or nothing where it has none)."""
    places = where_in_templates(settings, merge_field_pattern(name))
    prefix = f"{places[0]}: " if places else "a template of the email: "
    also = f" (also at {', '.join(places[1:])})" if len(places) > 1 else ""
    fallbacks = list(dict.fromkeys(f.fallback for f in email.merge_fields if f.field == name))
    given = [repr(fallback) for fallback in fallbacks if fallback]
    if not given:
        gets = (f"every recipient gets nothing there, as it has no fallback: correct the name, add the column, "
                f"or give it one ({{{{ subscriber.{name} | default('...') }}}})")
    else:
        gets = f"every recipient gets its fallback {' or '.join(given)}" + (
            " (and nothing where it has none)" if "" in fallbacks else "")
    return (f"{prefix}subscriber.{name}{also} is not a column of the subscriber list "
            f"(columns: {', '.join(list_columns)}): {gets}")


def check_brand(report: CheckReport, settings: Settings, images: ImageCache) -> None:
    """The accent colour's contrast in both schemes, and the logo's file."""
    for failure in accent_failures(settings.accent_color, settings.accent_color_dark):
        fix = ("a darker accent_color" if failure.scheme == "light"
               else "a lighter `dark` colour under accent_color, or leave it out to have one chosen")
        report.warn(
            f"{where(settings.config_path)}: accent_color {failure.color} has a contrast of {failure.ratio:.1f}:1 "
            f"on the {failure.scheme} background {failure.background}, below the {AA_CONTRAST}:1 that "
            f"WCAG AA asks of text: links and titles are hard to read in {failure.scheme} mode; choose {fix}"
        )
    logo = settings.logo
    if logo is None:
        return
    named = f"{where(settings.config_path)}: logo {where(logo)}"
    if not logo.is_file():
        report.error(f"{named} does not exist: readers would see a broken image atop every email; "
                     "correct the path (relative to newsletter.yaml) or remove `logo`")
    elif takes_a_site_file(logo.name) or (settings.issues_dir / logo.name).is_dir():
        report.error(f"{named} would be published as {logo.name}, which the web edition already has (its "
                     "archive, stylesheet, feed or an issue's folder): rename the logo")
    elif is_svg(logo):
        report.error(f"{named} {SVG_REFUSED}")
    else:
        try:
            processed = images.get(logo)
        except ImageError as exc:
            report.error(f"{named} {exc.reason}")
            return
        if processed.bytes > LARGE_BYTES:
            report.warn(f"{named} is {_megabytes(processed.bytes)} even after processing: slow to load atop "
                        "every email; use a smaller PNG")


def check_sending_settings(settings: Settings, report: CheckReport) -> None:
    """What `check` adds about newsletter.yaml: placeholders, and an unsubscribe page of one's own.

    Warnings only: a dry run works with them. A real send refuses placeholders.
    """
    for placeholder in placeholders(settings):
        report.warn(f"{placeholder}; a real send is refused until then")
    if settings.signup is not None:
        # Which link wins: the sign-up server's signed one, then SendGrid's group, then unsubscribe_url.
        unused = [key for key, value in (("sendgrid.asm_group_id", settings.sendgrid.asm_group_id),
                                         ("unsubscribe_url", settings.unsubscribe_url)) if value]
        if unused:
            report.warn(f"signup: is set, so each email's unsubscribe link is {settings.signup.url}/unsubscribe/"
                        f"<token>, signed for its reader; {' and '.join(unused)} {'is' if len(unused) == 1 else 'are'} "
                        "not used (remove it, or remove signup:)")
    elif settings.provider == "smtp":
        # No SendGrid page through SMTP: the group does nothing, the publication's own page is all there is.
        if not settings.unsubscribe_url:
            report.warn("no way to unsubscribe yet: an SMTP send has no SendGrid unsubscribe page, so it needs "
                        "unsubscribe_url (with {email}) or signup: (newsletter serve); a real send is refused until then")
        else:
            report.warn("unsubscribe_url is a page of your own: its unsubscribes must come back into the list before "
                        "each send (`newsletter subscribers import FILE` with a status column), or use signup: "
                        "(newsletter serve), whose unsubscribes `subscribers sync` brings back")
    elif settings.sendgrid.asm_group_id is None and not settings.unsubscribe_url:
        report.warn("no way to unsubscribe yet: run `newsletter doctor --create-group NAME` to create a "
                    "SendGrid unsubscribe group (or set unsubscribe_url); a real send is refused until then")
    elif settings.sendgrid.asm_group_id is None and settings.unsubscribe_url:
        report.warn(
            "unsubscribe_url is a page of your own: its unsubscribes must come back into the list before "
            "each send (`newsletter subscribers import FILE` with a status column); or let SendGrid host "
            "the page and `subscribers sync` bring them back: `newsletter doctor --create-group NAME`"
        )


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def check_images(report: CheckReport, issue: Issue, images: ImageCache) -> None:
    """The issue's local images: missing or unreadable ones are errors (an email cannot
    be mended once sent), heavy or unshown ones warnings."""
    seen: set[str] = set()
    for article in issue.articles:
        for image in article.images:
            if image.url in seen:
                continue
            seen.add(image.url)
            named = f"{where(article.source, line_in_article(issue, article, image.url))}: image {image.src}"
            if not image.path.is_file():
                report.error(f"{named} does not exist ({where(image.path)}): readers would see a broken image; "
                             "put the file beside the article or correct the name")
                continue
            if issue.published_path(image) is None:
                report.error(f"{named} is outside the issue's folder, so the web edition does not publish it "
                             "and readers would see a broken image: copy it into the issue's folder")
                continue
            if takes_the_page(issue.published_path(image) or ""):
                report.error(f"{named} would be published as {issue.name}/{issue.published_path(image)}, the "
                             "issue's own page on the web edition: rename the image")
                continue
            if is_svg(image.path):
                report.error(f"{named} {SVG_REFUSED}")
                continue
            try:
                processed = images.get(image.path)
            except ImageError as exc:
                report.error(f"{named} {exc.reason} ({where(image.path)})")
                continue
            if processed.animated and processed.bytes > LARGE_BYTES:
                report.warn(f"{named} is an animated GIF of {_megabytes(processed.bytes)}: slow to load on a phone; "
                            "use fewer frames, or a still image")
            elif processed.bytes > LARGE_BYTES:
                report.warn(f"{named} is {_megabytes(processed.bytes)} even after processing: slow to load on a "
                            "phone; crop it or use a JPEG")


def _comparable(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text).casefold().split())


_BYLINE = re.compile(r"^(?:written\s+by|by)\b\s*:?\s*\S", re.IGNORECASE)


def _repeated_heading(article: Article) -> list[str]:
    """Opening paragraphs that repeat the title or the byline the email already shows above them
    (a submission pasted under its front matter prints "by by NAME")."""
    import lxml.html

    try:
        opening = [el for el in lxml.html.fragments_fromstring(article.html) if isinstance(el.tag, str)][:2]
    except Exception:  # noqa: BLE001 - lxml refuses an empty or text-only fragment
        return []
    found = []
    for position, element in zip(("first", "second"), opening, strict=False):
        text = " ".join(element.text_content().split())
        if not text:
            continue
        if _comparable(text) == _comparable(article.title):
            found.append(f"{where(article.source)}: the {position} paragraph repeats the title “{article.title}”, "
                         "which the email shows above it: remove it from the article")
        elif (_comparable(text) in {_comparable(article.author), _comparable(f"by {article.author}")}
              if article.author else bool(_BYLINE.match(text)) and len(text.split()) <= 12):
            found.append(f"{where(article.source)}: the {position} paragraph “{text}” repeats the byline, which "
                         "the email shows under the title from `author` in the front matter: remove it")
    return found


def _links_to_other_issues(settings: Settings, issue: str, hrefs: Sequence[str]) -> list[tuple[str, str]]:
    """(link, issue name) of every link into another issue's web page (`../issue-0/` resolves there)."""
    from urllib.parse import unquote, urlsplit

    prefix = settings.base_url + "/"
    found = []
    for href in dict.fromkeys(hrefs):
        if not href.startswith(prefix):
            continue
        first = unquote(urlsplit(href[len(prefix):]).path).split("/", 1)[0]
        # A name with a dot is a file of the site (its archive page, its feed), not an issue.
        if first and first != issue and "." not in first:
            found.append((href, first))
    return found
