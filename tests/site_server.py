"""A real static web server on 127.0.0.1 for the web edition's tests: it serves a folder
(the built site) under a path prefix, as a static host would serve it at `base_url`."""

from __future__ import annotations

import re
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit


class StaticSite:
    """`with StaticSite(folder, "/issues") as site:` serves `folder` at `site.base_url`.

    `refuse_head` paths answer HEAD with 405 (as some servers do) and GET normally;
    `redirects` maps a path to where it redirects (301). `rate_limited` maps a path to
    (how many of its next requests get 429 Too Many Requests, their Retry-After header or
    None), as a rate-limiting server answers. `requests` records (method, path) of each request.
    """

    def __init__(self, folder: Path, prefix: str = "/issues") -> None:
        self.folder = folder
        self.prefix = prefix.rstrip("/")
        self.refuse_head: set[str] = set()
        self.redirects: dict[str, str] = {}
        self.rate_limited: dict[str, tuple[int, str | None]] = {}
        self.requests: list[tuple[str, str]] = []
        site = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs) -> None:
                super().__init__(*args, directory=str(site.folder), **kwargs)

            def do_HEAD(self) -> None:
                site.requests.append(("HEAD", self.path))
                if self._too_many():
                    return
                if urlsplit(self.path).path in site.refuse_head:
                    self.send_error(405)
                    return
                if not self._redirected():
                    super().do_HEAD()

            def do_GET(self) -> None:
                site.requests.append(("GET", self.path))
                if not self._too_many() and not self._redirected():
                    super().do_GET()

            def _too_many(self) -> bool:
                path = urlsplit(self.path).path
                count, retry_after = site.rate_limited.get(path, (0, None))
                if count <= 0:
                    return False
                site.rate_limited[path] = (count - 1, retry_after)
                self.send_response(429)
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return True

            def _redirected(self) -> bool:
                target = site.redirects.get(urlsplit(self.path).path)
                if target is None:
                    return False
                self.send_response(301)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return True

            def translate_path(self, path: str) -> str:
                plain = unquote(urlsplit(path).path)
                if not (plain == site.prefix or plain.startswith(site.prefix + "/")):
                    return str(site.folder / "__outside_the_site__")
                return super().translate_path(path[len(site.prefix):] or "/")

            def log_message(self, format: str, *args: object) -> None:
                pass  # CliRunner captures stderr while a command runs: keep it clean

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.root = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.base_url = self.root + self.prefix

    def __enter__(self) -> StaticSite:
        # A short poll, so that shutdown at the end of each test is quick.
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()


def point_base_url(root: Path, base_url: str) -> None:
    """Set base_url in `newsletter.yaml` by editing its line (comments and layout kept)."""
    config = root / "newsletter.yaml"
    text, count = re.subn(r"(?m)^base_url:.*$", f"base_url: {base_url}", config.read_text(encoding="utf-8"))
    assert count == 1, "newsletter.yaml has one base_url line"
    config.write_text(text, encoding="utf-8")
