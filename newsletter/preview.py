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
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from newsletter import merge
from newsletter.atomic import write_text as write_atomically
from newsletter.build import image_cache, output_dir, render_and_check
from newsletter.checks import CheckReport
from newsletter.config import Settings, load_settings
from newsletter.content import issue_folder
from newsletter.errors import NewsletterError, PreviewError
from newsletter.images import ImageCache, ImageError
from newsletter.links import offline_note
from newsletter.render import RenderedEmail, template_sources
from newsletter.render.templates import environment, render
from newsletter.site import issue_images, write_if_changed

PREVIEW_PAGE = "preview.html"
PREVIEW_EMAIL = "preview-email.html"
PREVIEW_TEXT = "preview-email.txt"
PREVIEW_IMAGES = "preview-images"
PREVIEW_TEMPLATE = "preview.html"
WIDTHS = (("Desktop", 600), ("Phone", 375))


@dataclass(frozen=True)
class Preview:
    page: Path
    email: Path
    report: CheckReport


def sample_values(settings: Settings, email: str = "reader@example.org", first_name: str = "") -> dict[str, str]:
    """Merge values for a preview: the list's first subscriber if there is one."""
    from newsletter.subscribers import iter_subscribers, list_path

    values = {"email": email, "first_name": first_name}
    try:
        for subscriber in islice(iter_subscribers(list_path(settings)), 50):
            if subscriber.status == "subscribed":
                values = subscriber.fields()
                break
    except NewsletterError:
        pass  # no list yet: the fallbacks show
    # As a send fills it: SendGrid's own page when the publication uses an unsubscribe group.
    values[merge.UNSUBSCRIBE_FIELD] = (
        merge.unsubscribe_link(settings.unsubscribe_url, values["email"])
        if settings.unsubscribe_url and settings.sendgrid.asm_group_id is None
        else "https://example.org/sendgrid-unsubscribe-page"
    )
    return values


def write_preview(settings: Settings, issue_name: str) -> Preview:
    """Render issue `issue_name` and write the preview page; raises if it does not render.

    The email shows the processed images (as readers will get them), written to
    `build/<issue>/preview-images/`; the page says so when the web edition, where
    readers load them from, is not online yet.
    """
    email, report = render_and_check(settings, issue_name)
    values = sample_values(settings)
    folder = output_dir(settings, email.issue.name)
    published = _preview_images(email, folder / PREVIEW_IMAGES, image_cache(settings))
    filled_html = _local_images(merge.fill(email.html, values), email, published)
    filled_text = merge.fill(email.text, values)
    email_path = write_atomically(folder / PREVIEW_EMAIL, filled_html)
    write_atomically(folder / PREVIEW_TEXT, filled_text)
    page = render(environment(settings.templates_dir), PREVIEW_TEMPLATE, {
        "email": email, "report": report, "sender": settings.sender, "shown_as": values.get("email", ""),
        "widths": WIDTHS, "filled_html": filled_html, "filled_text": filled_text,
        "offline": offline_note(settings, email),
    })
    page_path = write_atomically(folder / PREVIEW_PAGE, page)
    return Preview(page_path, email_path, report)


def _preview_images(email: RenderedEmail, folder: Path, cache: ImageCache) -> set[str]:
    """Write the issue's processed images under `folder`; the paths (under the issue's URL) written.

    An image that cannot be read is left out: the checks report it.
    """
    written = set()
    for relative, source in issue_images(email.issue):
        try:
            data = cache.get(source).data
        except ImageError:
            continue
        write_if_changed(folder / relative, data)
        written.add(relative)
    return written


_IMAGE_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]*)(")')


def _local_images(document: str, email: RenderedEmail, published: set[str]) -> str:
    """Point the issue's images at their processed files in `preview-images/`.

    An image's URL is its path under the issue's web URL (subfolders included); the
    link is relative to the preview, beside which `preview-images/` is.
    """
    web_url = email.issue.web_url

    def local(match: re.Match[str]) -> str:
        url = html.unescape(match[2])
        if not url.startswith(web_url):
            return match[0]
        relative = unquote(url[len(web_url):].split("#")[0].split("?")[0])
        if relative not in published:
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
    files = [settings.config_path, *templates,
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
    report = None  # called with an error in answering a request

    def handle_error(self, request: object, client_address: object) -> None:
        exc = sys.exc_info()[1]
        if self.report and not isinstance(exc, ConnectionError):  # not a browser that went away
            self.report(exc)


def serve(settings: Settings, issue_name: str, port: int, on_rebuild=None, poll_seconds: float = 0.5,  # noqa: ANN001
          stop: threading.Event | None = None) -> None:
    """Serve the preview on 127.0.0.1:`port`, rebuilding when a watched file changes.

    Runs until interrupted, or until `stop` is set. `on_rebuild` is called with the
    URL once serving, then after each rebuild with the `Preview` or with the exception
    that stopped the rebuild (any exception: the server keeps running).
    """
    state = {"version": str(time.time_ns())}
    issue = issue_folder(settings, issue_name)
    seen = _snapshot(settings, issue)  # before the build: a change during it rebuilds
    preview = write_preview(settings, issue_name)
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
            try:
                fresh = load_settings(settings.root)
                result: object = write_preview(fresh, issue_name)
                settings = fresh
            except Exception as exc:  # reported; the editor fixes it and saves again
                result = exc
            state["version"] = str(time.time_ns())
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
