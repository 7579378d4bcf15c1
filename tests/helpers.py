"""The tests' one helper module: the CLI run in-process or as a process, the one-line-error
assertion, waiting on an event, and small builders for test publications."""

from __future__ import annotations

import os
import re
import resource
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TypeVar

import yaml
from click.testing import CliRunner, Result
from PIL import ExifTags, Image

from newsletter.cli import cli
from newsletter.terminal import Terminal
from tests.terminal_double import TerminalDouble

REPO = Path(__file__).resolve().parents[1]

T = TypeVar("T")


def run(*args: str, terminal: Terminal | None = None, input: str | None = None) -> Result:
    """`newsletter ARGS...` run in-process, as a person would type it, at `terminal` (unless one is
    given, a `TerminalDouble`: no one to ask, no screen, no browser, retries in milliseconds)."""
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False,
                              obj=terminal if terminal is not None else TerminalDouble())


def newsletter_process(*args: str, stdout: int | IO[bytes] = subprocess.PIPE,
                       file_size_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m newsletter ARGS...` as a separate process, optionally unable to grow a file.

    RLIMIT_FSIZE makes the kernel refuse a write past `file_size_limit` bytes, as a full
    disk does (EFBIG instead of ENOSPC; SIGXFSZ ignored so the write fails, as a full disk's).
    """
    def limit() -> None:
        if file_size_limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "newsletter", *args], stdout=stdout, stderr=subprocess.PIPE,
                          env=env, text=True, preexec_fn=limit, timeout=120)


def assert_one_line_error(result: Result, *fragments: str) -> None:
    """Exit 1 and a single `error:` line on stderr holding `fragments`; no traceback."""
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert "Traceback" not in result.output


def warnings_of(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


def wait_for(condition: Callable[[], T], what: str = "the condition", seconds: float = 60.0) -> T:
    """Poll `condition` until it gives something true (another thread or process works on it), and
    return that; fail after `seconds` (a bound for a stuck test, not a timed assertion)."""
    deadline = time.monotonic() + seconds
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def write_issue(root: Path, name: str, files: dict[str, str], **meta: object) -> Path:
    """Write `issues/<name>/` with `issue.yaml` (subject etc. from `meta`) and articles."""
    folder = root / "issues" / name
    folder.mkdir(parents=True, exist_ok=True)
    meta.setdefault("subject", "A test issue")
    meta.setdefault("preheader", "What this test issue is about.")
    (folder / "issue.yaml").write_text(yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
    for filename, text in files.items():
        (folder / filename).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return folder


def article(title: str, body: str = "Some text.", author: str = "") -> str:
    front = {"title": title}
    if author:
        front["author"] = author
    return "---\n" + yaml.safe_dump(front, allow_unicode=True) + "---\n" + textwrap.dedent(body).lstrip()


# Every phrase of the default templates in Hebrew, a language that is not built in and is written
# right to left: `strings:` must give them all.
HEBREW_PHRASES = {
    "hello": "שלום",
    "friend": "לכולם",
    "greeting": "{hello} {name},",
    "label": "{text}:",
    "in_this_issue": "בגיליון הזה",
    "by": "מאת {author}",
    "read_on_web": "לקריאה באתר",
    "read_issue_on_web": "לקריאת הגיליון באתר",
    "unsubscribe": "הסרה מרשימת התפוצה",
    "reply": "יש לך מה לומר על הגיליון? אפשר להשיב למייל הזה: אנחנו קוראים כל תשובה.",
    "why_you_get_it": "{publication} נשלח אליך כי נרשמת לקבל אותו.",
    "subscribe": "הרשמה ל־{publication}",
    "subscribe_why": "כדי לקבל כל גיליון במייל.",
    "email_label": "כתובת המייל שלך",
    "subscribe_button": "הרשמה",
    "all_issues": "כל הגיליונות",
    "feed": "הזנת Atom",
    "archive_title": "{publication}: כל הגיליונות",
    "archive_description": "כל הגיליונות של {publication}, מהחדש לישן.",
    "archive_dateline": "כל הגיליונות, מהחדש לישן",
    "no_issue_yet": "עדיין לא פורסם גיליון.",
}


def update_config(root: Path, **changes: object) -> None:
    """Change keys of `newsletter.yaml` (None removes a key)."""
    path = root / "newsletter.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def phone_exif() -> Image.Exif:
    """What a phone writes: stored sideways (orientation 6), its make, and where it was taken."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "PhoneMaker"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 45.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (1.0, 15.0, 30.25)
    return exif


def png(width: int, height: int) -> bytes:
    """A plain grey PNG of this size."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x99" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@contextmanager
def serving(publication: Path, *options: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """`newsletter preview issue-1 --serve` in a process of its own, and its URL."""
    server = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "preview", "issue-1", "--serve", "--no-open", *options],
        cwd=publication, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = server.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line + server.stderr.read()
        yield server, match.group(0)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
