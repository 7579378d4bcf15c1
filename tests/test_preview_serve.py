"""`newsletter preview --serve`: served on 127.0.0.1, rebuilt when a file changes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode("utf-8")


def wait_for(predicate, timeout: float = 15.0):  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def test_serve_rebuilds_when_an_article_changes(publication: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "preview", "issue-1", "--serve", "--no-open", "--port", "0"],
        cwd=publication, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = server.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        url = match.group(0)
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
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
