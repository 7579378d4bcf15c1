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
from newsletter.build import output_dir, render_and_check
from newsletter.checks import CheckReport
from newsletter.config import Settings, load_settings
from newsletter.content import issue_folder
from newsletter.errors import NewsletterError, PreviewError
from newsletter.render import RenderedEmail, template_sources

PREVIEW_PAGE = "preview.html"
PREVIEW_EMAIL = "preview-email.html"
PREVIEW_TEXT = "preview-email.txt"
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
    """Render issue `issue_name` and write the preview page; raises if it does not render."""
    email, report = render_and_check(settings, issue_name)
    values = sample_values(settings)
    folder = output_dir(settings, email.issue.name)
    filled_html = _local_images(merge.fill(email.html, values), email, folder)
    filled_text = merge.fill(email.text, values)
    email_path = write_atomically(folder / PREVIEW_EMAIL, filled_html)
    write_atomically(folder / PREVIEW_TEXT, filled_text)
    page = write_atomically(folder / PREVIEW_PAGE, _page(settings, email, report, filled_html, filled_text, values))
    return Preview(page, email_path, report)


_IMAGE_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]*)(")')


def _local_images(document: str, email: RenderedEmail, folder: Path) -> str:
    """Point images that are not published yet at their files in the issue's folder.

    An image's URL is its path under the issue's web URL (subfolders included), so it
    is found there on disk; the link is relative to `folder`, where the preview is.
    """
    web_url = email.issue.web_url

    def local(match: re.Match[str]) -> str:
        url = html.unescape(match[2])
        if not url.startswith(web_url):
            return match[0]
        path = _issue_file(email.issue.folder, url[len(web_url):].split("#")[0].split("?")[0])
        if path is None:
            return match[0]
        relative = Path(os.path.relpath(path, folder.resolve())).as_posix()
        return f"{match[1]}{html.escape(quote(relative), quote=True)}{match[3]}"

    return _IMAGE_SRC.sub(local, document)


def _issue_file(issue: Path, relative_url: str) -> Path | None:
    """The file of the issue's folder at URL path `relative_url`; None if it is not one.

    Never a path outside the folder: the preview server serves what this allows.
    """
    root = issue.resolve()
    path = (root / unquote(relative_url)).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def _page(settings: Settings, email: RenderedEmail, report: CheckReport,
          filled_html: str, filled_text: str, values: dict[str, str]) -> str:
    esc = html.escape
    frames = "".join(
        f'<figure><figcaption>{label} · {width} px</figcaption>'
        f'<iframe title="{label} preview" style="width:{width}px" srcdoc="{esc(filled_html, quote=True)}"></iframe></figure>'
        for label, width in WIDTHS
    )
    findings = "".join(f'<li class="{f.level}">{esc(str(f))}</li>' for f in report.findings) or '<li class="ok">No errors or warnings.</li>'
    sender = f"{esc(settings.sender.name)} &lt;{esc(settings.sender.email)}&gt;" if settings.sender.name else esc(settings.sender.email)
    size = f"{email.html_bytes / 1024:.1f} KB"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Preview: {esc(email.subject)}</title>
<style>
body{{margin:0;padding:16px;font:15px/1.45 system-ui,sans-serif;background:#e9e6e1;color:#222;overflow-wrap:anywhere}}
header{{max-width:1040px;margin:0 auto 16px}} h1{{font-size:20px;margin:0 0 4px}} dl{{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:8px 0}} dt{{font-weight:600}} dd{{margin:0}}
.frames{{display:flex;flex-wrap:wrap;gap:24px;justify-content:center;align-items:flex-start}}
figure{{margin:0;max-width:100%}} figcaption{{font-weight:600;margin:0 0 6px}}
iframe{{display:block;max-width:100%;height:900px;border:1px solid #bbb;background:#fff}}
section{{max-width:1040px;margin:24px auto 0}} pre{{white-space:pre-wrap;background:#fff;border:1px solid #bbb;padding:12px;max-width:80ch}}
.error{{color:#a40000;font-weight:600}} .warning{{color:#7a5200}} .ok{{color:#1d6b2f}}
</style></head><body>
<header><h1>{esc(email.subject)}</h1><dl>
<dt>From</dt><dd>{sender}</dd><dt>Preheader</dt><dd>{esc(email.issue.preheader) or "<em>none</em>"}</dd>
<dt>Shown as</dt><dd>{esc(values.get("email", ""))} (merge fields filled from this subscriber)</dd><dt>HTML size</dt><dd>{size} (Gmail clips at 102 KB)</dd>
</dl><h2>Checks</h2><ul class="checks">{findings}</ul></header>
<div class="frames">{frames}</div>
<section><h2>Plain-text part</h2><pre class="text-part">{esc(filled_text)}</pre></section>
<script>
// Fit each frame to its email so the page scrolls, not the frames.
for (const frame of document.querySelectorAll("iframe")) {{
  frame.addEventListener("load", () => {{ frame.style.height = frame.contentDocument.documentElement.scrollHeight + 24 + "px"; }});
}}
// Served with --serve: reload when the issue is rebuilt.
if (location.protocol.startsWith("http")) {{
  let seen = null;
  setInterval(async () => {{
    try {{ const v = await (await fetch("__version__", {{cache: "no-store"}})).text(); if (seen && v !== seen) location.reload(); seen = v; }} catch (e) {{}}
  }}, 1000);
}}
</script>
</body></html>
"""


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

    # The preview's local images are linked relative to the build folder; from the page at
    # "/", such a link resolves to this URL path. Only the issue's own images are served there.
    images = posixpath.normpath("/" + Path(os.path.relpath(issue.resolve(), folder.resolve())).as_posix()) + "/"

    class Handler(BaseHTTPRequestHandler):
        """The preview's three files, its version, and the issue's images; nothing else of the publication."""

        def do_GET(self) -> None:
            path = posixpath.normpath(urlsplit(self.path).path)  # still %-encoded, as an image's link
            if path == "/__version__":
                return self._send(state["version"].encode(), "text/plain; charset=utf-8")
            name = {"/": PREVIEW_PAGE}.get(path, path.lstrip("/"))
            if name in (PREVIEW_PAGE, PREVIEW_EMAIL, PREVIEW_TEXT):
                return self._send_file(folder / name)
            if path.startswith(images):
                image = _issue_file(issue, path[len(images):])
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
