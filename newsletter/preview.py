"""`newsletter preview`: a page with the email at desktop and phone widths, its text part
and the check results, written beside the build and optionally served with live rebuilds.
"""

from __future__ import annotations

import errno
import html
import mimetypes
import os
import posixpath
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from newsletter import merge
from newsletter.files.atomic import write_text as write_atomically
from newsletter.build import image_cache, output_dir, render_and_check
from newsletter.checks import CheckReport
from newsletter.config import Settings, load_settings
from newsletter.content import issue_folder
from newsletter.errors import NewsletterError, PreviewError, where
from newsletter.images import ImageCache, ImageError
from newsletter.links import offline_note
from newsletter.render import RenderedEmail, template_sources
from newsletter.render.templates import environment, logo_of, render
from newsletter.site import write_if_changed

PREVIEW_PAGE = "preview.html"
PREVIEW_EMAIL = "preview-email.html"
PREVIEW_TEXT = "preview-email.txt"
PREVIEW_IMAGES = "preview-images"
PREVIEW_TEMPLATE = "preview.html"
WIDTHS = (("Desktop", 600), ("Phone", 375))
DARK_FRAME = "Dark mode"


@dataclass(frozen=True)
class Preview:
    page: Path
    email: Path
    report: CheckReport


# What `serve` tells its `on_rebuild`: the URL once serving, then each rebuild's Preview, or
# the exception that stopped a rebuild or the answer to a request (the server keeps running).
OnRebuild = Callable[[str | Preview | Exception], None]


def sample_values(settings: Settings, as_email: str | None = None) -> dict[str, str]:
    """Merge values for a preview: those of subscriber `as_email` (`--as`), else the
    list's first subscribed address, else none (the fallbacks show)."""
    from newsletter.subscribers import Subscriber, iter_subscribers, list_path
    from newsletter.subscribers.addresses import address_key

    found: Subscriber | None = None
    path = list_path(settings)
    if as_email is not None:
        wanted = address_key(as_email)
        try:
            found = next((s for s in iter_subscribers(path) if address_key(s.email) == wanted), None)
        except NewsletterError as exc:
            raise PreviewError(f"--as {as_email}: {exc}") from None
        if found is None:
            raise PreviewError(f"{where(path)}: {as_email} is not in the list: --as takes an address of "
                               f"{where(path)} (see `newsletter subscribers list`)")
    else:
        try:
            found = next((s for s in islice(iter_subscribers(path), 50) if s.status == "subscribed"), None)
        except NewsletterError:
            pass  # no list yet: the fallbacks show
    address = found.email if found is not None else "reader@example.org"
    # As a send fills it: SendGrid's own page when the publication uses an unsubscribe group.
    link = (merge.unsubscribe_link(settings.unsubscribe_url, address)
            if settings.unsubscribe_url and settings.sendgrid.asm_group_id is None
            else "https://example.org/sendgrid-unsubscribe-page")
    # Without a list, a reader of whom only the address is known: every column shows its fallback.
    return found.fields(link) if found is not None else merge.values_for(merge.Reader(address, link, {}))


@dataclass(frozen=True)
class InboxRow:
    """One message in an inbox's list, cut where that inbox cuts it."""

    client: str
    sender: str
    subject: str
    preheader: str


# Where Gmail cuts an inbox row, in characters of an average text (they vary with the letters'
# widths and the window): the web inbox on a desktop screen, and the Android and iOS apps.
GMAIL_CUTS = (
    # client, sender, subject, subject and preheader together
    ("Gmail on the web", 20, 70, 130),
    ("Gmail app", 25, 40, 90),
)
ELLIPSIS = "…"


def _cut(text: str, limit: int) -> str:
    """`text` cut at `limit` characters, as an inbox does: at a word where one is near, then "…"."""
    if len(text) <= limit:
        return text
    head = text[:limit - 1]
    space = head.rfind(" ")
    if space >= limit * 2 // 3:
        head = head[:space]
    return head.rstrip(" ,;:–-") + ELLIPSIS


def inbox_rows(sender: str, subject: str, preview_text: str) -> list[InboxRow]:
    """The issue as Gmail lists it: sender name, subject, and the preview text after it."""
    rows = []
    for client, sender_cut, subject_cut, line_cut in GMAIL_CUTS:
        shown_subject = _cut(subject, subject_cut)
        room = line_cut - len(shown_subject) - 3  # " - " between them
        rows.append(InboxRow(client, _cut(sender, sender_cut), shown_subject,
                             _cut(preview_text, room) if room > 0 else ""))
    return rows


def _preview_text(email: RenderedEmail, filled_html: str) -> str:
    """What an inbox shows after the subject: the preheader, or without one the email's first visible words."""
    if email.issue.preheader:
        return email.issue.preheader
    import lxml.html

    body = lxml.html.document_fromstring(filled_html).body
    return " ".join(body.text_content().split())[:200]


_DARK_QUERY = re.compile(r"@media\s*\(\s*prefers-color-scheme\s*:\s*dark\s*\)")


def dark_mode(document: str) -> str:
    """The email as a client in dark mode that honours its dark styles (Apple Mail, Outlook.com) renders it:
    the `prefers-color-scheme: dark` rules applied whatever the system's scheme."""
    return _DARK_QUERY.sub("@media all", document)


def write_preview(settings: Settings, issue_name: str, as_email: str | None = None, version: str = "") -> Preview:
    """Render issue `issue_name` and write the preview page; raises if it does not render.

    The merge fields are those of subscriber `as_email` (`--as`), or of the list's first
    subscribed address. The email shows the processed images (as readers will get them),
    written to `build/<issue>/preview-images/`; the page says so when the web edition,
    where readers load them from, is not online yet. `version` (with `--serve`) is written
    into the page, which reloads itself once the server has a newer one.
    """
    email, report = render_and_check(settings, issue_name)
    values = sample_values(settings, as_email)
    folder = output_dir(settings, email.issue.name)
    published = _preview_images(settings, email, folder / PREVIEW_IMAGES, image_cache(settings))
    filled_html = _local_images(merge.fill(email.html, values), published)
    filled_text = merge.fill(email.text, values)
    email_path = write_atomically(folder / PREVIEW_EMAIL, filled_html)
    write_atomically(folder / PREVIEW_TEXT, filled_text)
    frames = [(label, width, filled_html) for label, width in WIDTHS]
    frames.append((DARK_FRAME, WIDTHS[-1][1], dark_mode(filled_html)))
    sender = settings.sender.name or settings.sender.email
    page = render(environment(settings.templates_dir), PREVIEW_TEMPLATE, {
        "email": email, "report": report, "sender": settings.sender, "shown_as": values.get("email", ""),
        "widths": WIDTHS, "frames": frames, "filled_html": filled_html, "filled_text": filled_text,
        "inbox": inbox_rows(sender, email.subject, _preview_text(email, filled_html)),
        "offline": offline_note(settings, email), "version": version,
    })
    page_path = write_atomically(folder / PREVIEW_PAGE, page)
    return Preview(page_path, email_path, report)


# The processed logo's place in `preview-images/`, apart from the issue's own images.
LOGO_FOLDER = "_publication"


def _preview_images(settings: Settings, email: RenderedEmail, folder: Path, cache: ImageCache) -> dict[str, str]:
    """Write the issue's processed images (and the logo) under `folder`: {their URL: their path in it}.

    An image that cannot be read is left out: the checks report it.
    """
    written = {}
    sources = []
    for image in email.issue.images:
        relative = email.issue.published_path(image)
        if relative is not None:
            sources.append((image.url.split("#")[0].split("?")[0], relative, image.path))
    logo = logo_of(settings)
    if logo is not None and settings.logo is not None:
        sources.append((logo.url, f"{LOGO_FOLDER}/{logo.file}", settings.logo))
    for url, relative, source in sources:
        try:
            data = cache.get(source).data
        except ImageError:
            continue
        write_if_changed(folder / relative, data)
        written[url] = relative
    return written


_IMAGE_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]*)(")')


def _local_images(document: str, published: dict[str, str]) -> str:
    """Point the images written to `preview-images/` at their processed files there.

    `published` maps an image's URL to its path under `preview-images/`, beside the
    preview; a URL's query or fragment is ignored.
    """
    def local(match: re.Match[str]) -> str:
        url = html.unescape(match[2]).split("#")[0].split("?")[0]
        relative = published.get(url)
        if relative is None:
            return match[0]
        return f"{match[1]}{html.escape(PREVIEW_IMAGES + '/' + quote(relative), quote=True)}{match[3]}"

    return _IMAGE_SRC.sub(local, document)


def _file_under(folder: Path, relative_url: str) -> Path | None:
    """The file of `folder` at URL path `relative_url`; None if it is not one.

    Never a path outside the folder: the preview server serves what this allows.
    """
    root = folder.resolve()
    path = (root / unquote(relative_url)).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def _snapshot(settings: Settings, issue: Path) -> dict[Path, int]:
    """When each file was last changed whose change triggers a rebuild: the issue's
    folder (subfolders too), the templates, the settings.

    Files come and go while an editor saves (swap files, renames): a file or folder
    that vanishes while being listed or read is left out, its absence the change.
    """
    try:
        templates = template_sources(settings)
    except OSError:
        templates = []
    files = [settings.config_path, *templates, *([settings.logo] if settings.logo else []),
             *(Path(top, name) for top, _, names in os.walk(issue) for name in names)]
    mtimes = {}
    for path in files:
        try:
            mtimes[path] = os.stat(path).st_mtime_ns
        except OSError:
            pass
    return mtimes


class _PreviewServer(ThreadingHTTPServer):
    daemon_threads = True
    report: OnRebuild | None = None  # called with an error in answering a request

    def handle_error(self, request: object, client_address: object) -> None:
        exc = sys.exc_info()[1]
        # socketserver calls this for an Exception only; a ConnectionError is a browser that went away
        if self.report and isinstance(exc, Exception) and not isinstance(exc, ConnectionError):
            self.report(exc)


def serve(settings: Settings, issue_name: str, port: int, on_rebuild: OnRebuild | None = None,
          poll_seconds: float = 0.5, stop: threading.Event | None = None, as_email: str | None = None,
          build: Callable[[Settings, str, str | None, str], Preview] = write_preview) -> None:
    """Serve the preview on 127.0.0.1:`port`, rebuilding (with `build`) when a watched file changes.

    Runs until interrupted, or until `stop` is set. `on_rebuild` is called with the
    URL once serving, then after each rebuild with the `Preview` or with the exception
    that stopped the rebuild (any exception: the server keeps running).
    """
    # The page carries the version it was built as, and reloads when the server's differs: a
    # rebuild that ends before the page's first look is not missed.
    state = {"version": str(time.time_ns())}
    issue = issue_folder(settings, issue_name)
    seen = _snapshot(settings, issue)  # before the build: a change during it rebuilds
    preview = build(settings, issue_name, as_email, state["version"])
    folder = preview.page.parent

    # The processed images are linked as `preview-images/<path>`, relative to the page at "/".
    images = f"/{PREVIEW_IMAGES}/"

    class Handler(BaseHTTPRequestHandler):
        """The preview's three files, its version, and the processed images; nothing else of the publication."""

        def do_GET(self) -> None:
            path = posixpath.normpath(urlsplit(self.path).path)  # still %-encoded, as an image's link
            if path == "/__version__":
                return self._send(state["version"].encode(), "text/plain; charset=utf-8")
            name = {"/": PREVIEW_PAGE}.get(path, path.lstrip("/"))
            if name in (PREVIEW_PAGE, PREVIEW_EMAIL, PREVIEW_TEXT):
                return self._send_file(folder / name)
            if path.startswith(images):
                image = _file_under(folder / PREVIEW_IMAGES, path[len(images):])
                if image is not None and (mimetypes.guess_type(image.name)[0] or "").startswith("image/"):
                    return self._send_file(image)
            self.send_error(404)

        def _send_file(self, path: Path) -> None:
            try:
                body = path.read_bytes()
            except OSError:
                return self.send_error(404)
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self._send(body, f"{kind}; charset=utf-8" if kind.startswith("text/") else kind)

        def _send(self, body: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    try:
        server = _PreviewServer(("127.0.0.1", port), Handler)
    except OSError as exc:
        raise PreviewError(_cannot_serve(port, exc)) from None
    server.report = on_rebuild
    threading.Thread(target=server.serve_forever, daemon=True).start()
    if on_rebuild:
        on_rebuild(f"http://127.0.0.1:{server.server_address[1]}/")
    stop = stop or threading.Event()
    try:
        while not stop.wait(poll_seconds):
            current = _snapshot(settings, issue)
            if current == seen:
                continue
            seen = current
            version = str(time.time_ns())
            try:
                fresh = load_settings(settings.root)
                result: Preview | Exception = build(fresh, issue_name, as_email, version)
                settings = fresh
            except Exception as exc:  # noqa: BLE001 - reported; the editor fixes it and saves again
                result = exc
            state["version"] = version
            if on_rebuild:
                on_rebuild(result)
    finally:
        server.shutdown()
        server.server_close()


def _cannot_serve(port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (f"port {port} on 127.0.0.1 is in use (another preview?): add --port N to use "
                "another port, or --port 0 for any free one")
    return f"cannot serve on 127.0.0.1:{port} ({exc.strerror or exc}): add --port 0 for any free port"
