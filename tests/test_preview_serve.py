"""`newsletter preview`: the page, opening it, and `--serve` (served on 127.0.0.1, rebuilt when a file changes)."""

from __future__ import annotations

import http.client
import os
import queue
import re
import socket
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from newsletter import preview
from newsletter.cli import real_terminal
from newsletter.config import Settings, load_settings
from newsletter.images import ImageCache
from tests.helpers import assert_one_line_error, png, run, serving, update_config, wait_for
from tests.terminal_double import TerminalDouble


def fetch(url: str) -> str:
    return fetch_bytes(url).decode("utf-8")


def fetch_bytes(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read()


def status_of(url: str, path: str) -> int:
    """The status of GET `path`, sent as written (no client-side clean-up of `..`)."""
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def test_serve_rebuilds_when_an_article_changes(publication: Path) -> None:
    with serving(publication, "--port", "0") as (server, url):
        assert "The river in December" in fetch(url)
        version = fetch(url + "__version__")

        article = publication / "issues" / "issue-1" / "02-the-river-in-december.md"
        article.write_text(article.read_text(encoding="utf-8").replace(
            "title: The river in December", "title: The river in deep December"), encoding="utf-8")
        wait_for(lambda: fetch(url + "__version__") != version)
        assert "The river in deep December" in fetch(url)
        assert server.stdout.readline().startswith("rebuilt build/issue-1/preview.html")

        # A broken article is reported, and the server keeps going.
        article.write_text("no front matter\n", encoding="utf-8")
        assert "front matter" in server.stderr.readline()
        assert server.poll() is None


def test_serve_serves_the_issues_images_and_nothing_else(publication: Path) -> None:
    folder = publication / "issues" / "issue-1"
    (folder / "photos").mkdir()
    (folder / "photos" / "lock gate.png").write_bytes(png(40, 30))
    article = folder / "02-the-river-in-december.md"
    article.write_text(article.read_text(encoding="utf-8") + "\n![The lock gate](photos/lock%20gate.png)\n",
                       encoding="utf-8")
    with serving(publication, "--port", "0") as (server, url):
        email = fetch(url + "preview-email.html")
        sources = re.findall(r'<img[^>]*\bsrc="([^"]*)"', email)
        assert len(sources) == 2, sources
        for source, image in zip(sources, (folder / "towpath.png", folder / "photos" / "lock gate.png"), strict=True):
            assert not source.startswith("https:"), source
            # The processed file, as readers will get it from the web edition.
            assert fetch_bytes(urljoin(url, source)) == ImageCache(None).get(image).data
        # The frames of the page resolve the same links against the page itself.
        assert fetch(url).count(sources[1]) == 3  # desktop, phone and dark mode

        (publication / "build" / "issue-1" / "ledger.sqlite").write_bytes(b"who received it")
        for path in ("/subscribers/main.csv", "/issues/issue-1/../../subscribers/main.csv",
                     "/issues/issue-1/%2e%2e/%2e%2e/subscribers/main.csv", "/newsletter.yaml",
                     "/issues/issue-1/issue.yaml", "/issues/issue-1/01-editorial.md", "/ledger.sqlite",
                     "/issues/issue-1/", "/build/issue-1/preview.html"):
            assert status_of(url, path) == 404, path
        assert status_of(url, "/preview-email.txt") == 200


def test_serve_on_a_port_in_use_says_which_option_to_use(publication: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("preview", "issue-1", "--serve", "--no-open", "--port", str(port))
    assert_one_line_error(result, f"port {port}", "in use", "--port 0")


@contextmanager
def serving_here(publication: Path, **options: Any) -> Iterator[queue.Queue]:
    """`preview.serve` in a thread of this process (with `options`); what it reports arrives in the queue."""
    reports: queue.Queue = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(target=preview.serve, daemon=True, kwargs=dict(
        settings=load_settings(publication), issue_name="issue-1", port=0, on_rebuild=reports.put,
        poll_seconds=0.05, stop=stop, **options))
    thread.start()
    try:
        assert str(reports.get(timeout=15)).startswith("http://127.0.0.1:")
        yield reports
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def touch(path: Path, step: int) -> None:
    """A new modification time for `path`, whatever the file system's clock resolution."""
    mtime = path.stat().st_mtime_ns + step * 1_000_000_000
    os.utime(path, ns=(mtime, mtime))


def test_serve_survives_a_file_that_vanishes_while_it_looks(publication: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """An editor's swap file that is gone between two looks at it: the server keeps going."""
    folder = publication / "issues" / "issue-1"
    swap = folder / ".02-the-river-in-december.md.swp"
    real_stat, looks = os.stat, {}

    def stat_then_vanish(path, *args, **kwargs):
        result = real_stat(path, *args, **kwargs)
        if Path(path) == swap:
            looks[swap] = looks.get(swap, 0) + 1
            if looks[swap] == 2:
                os.unlink(swap)
        return result

    with serving_here(publication) as reports:
        swap.write_bytes(b"swap")
        monkeypatch.setattr(os, "stat", stat_then_vanish)
        for step in (1, 2):  # two rebuilds: the swap file was looked at in two polls at least
            touch(folder / "01-editorial.md", step)
            while not isinstance(built := reports.get(timeout=15), preview.Preview):
                assert not isinstance(built, Exception), built
        assert swap.name not in os.listdir(folder)


def test_serve_reports_an_unexpected_error_and_keeps_going(publication: Path) -> None:
    article = publication / "issues" / "issue-1" / "01-editorial.md"
    failing = threading.Event()

    def build(*args: Any) -> preview.Preview:
        if failing.is_set():
            raise RuntimeError("boom")
        return preview.write_preview(*args)

    with serving_here(publication, build=build) as reports:
        failing.set()
        touch(article, 1)
        assert repr(reports.get(timeout=15)) == "RuntimeError('boom')"
        failing.clear()
        touch(article, 2)
        assert isinstance(reports.get(timeout=15), preview.Preview)


def test_an_unexpected_error_while_serving_is_one_line(publication: Path) -> None:
    def serve(settings: Settings, issue_name: str, port: int, on_rebuild: preview.OnRebuild | None = None, *,
              as_email: str | None = None) -> None:
        assert on_rebuild is not None
        on_rebuild("http://127.0.0.1:8000/")
        on_rebuild(KeyError("a\nb"))

    result = run("preview", "issue-1", "--serve", "--no-open", terminal=TerminalDouble(serve_preview=serve))
    assert result.exit_code == 0
    assert result.stderr.count("\n") == 1 and "unexpected KeyError" in result.stderr, result.stderr


@pytest.mark.parametrize("opened", [0, 1])
def test_preview_says_so_when_no_browser_could_be_opened(publication: Path, monkeypatch: pytest.MonkeyPatch,
                                                         opened: int) -> None:
    launched: list[str] = []
    monkeypatch.setenv("DISPLAY", ":99")
    browser = replace(real_terminal(), launch=lambda target: launched.append(target) or opened)
    result = run("preview", "issue-1", terminal=browser)
    assert result.exit_code == 0, result.output
    assert launched == [str(publication / "build" / "issue-1" / "preview.html")]
    if opened == 0:
        assert result.stdout == "Opening build/issue-1/preview.html in the browser.\n"
    else:
        assert result.stdout == "build/issue-1/preview.html\n"
        assert "Opening" not in result.output
        assert "no browser could be opened" in result.stderr


def test_preview_builds_the_unsubscribe_link_as_a_send_does(publication: Path) -> None:
    subscribers = publication / "subscribers" / "main.csv"
    header, *rows = subscribers.read_text(encoding="utf-8").splitlines()
    subscribers.write_text("\n".join([header, "ada+news@example.org,Ada,,subscribed,,,", *rows]) + "\n",
                           encoding="utf-8")
    result = run("preview", "issue-1", "--no-open")
    assert result.exit_code == 0, result.output
    link = "https://riverside-writers-circle.internal/unsubscribe?email=ada%2Bnews@example.org"
    for name in ("preview-email.html", "preview-email.txt"):
        assert link in (publication / "build" / "issue-1" / name).read_text(encoding="utf-8"), name

    # With a SendGrid unsubscribe group, SendGrid's link goes out, not unsubscribe_url.
    update_config(publication, sendgrid={"asm_group_id": 12345})
    assert run("preview", "issue-1", "--no-open").exit_code == 0
    email = (publication / "build" / "issue-1" / "preview-email.html").read_text(encoding="utf-8")
    assert link not in email and "sendgrid-unsubscribe-page" in email


def test_preview_page_escapes_the_sender(publication: Path) -> None:
    update_config(publication, **{"from": {"email": "letters@example.org", "name": "Ada & <b>Co</b>"}})
    assert run("preview", "issue-1", "--no-open").exit_code == 0
    page = (publication / "build" / "issue-1" / "preview.html").read_text(encoding="utf-8")
    assert "<dd>Ada &amp; &lt;b&gt;Co&lt;/b&gt; &lt;letters@example.org&gt;</dd>" in page


def test_preview_without_a_display_says_so_instead_of_trying_browsers(
        publication: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No DISPLAY on Linux: no browser is tried (xdg-open would list each failure), the path is printed."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the display rule is for Linux")
    launched: list[str] = []
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    browser = replace(real_terminal(), launch=lambda target: launched.append(target) or 0)
    result = run("preview", "issue-1", terminal=browser)
    assert result.exit_code == 0, result.output
    assert launched == []
    assert result.stdout == "build/issue-1/preview.html\n"
    assert "no browser could be opened" in result.stderr
