"""The tests' one helper module: the CLI run in-process or as a process, the one-line-error
assertion, waiting on an event, and small builders for test publications."""

from __future__ import annotations

import datetime as dt
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


# An article as writers send them: each paragraph one line of 700 to 1,400 characters (a link
# in one), a table in a code block whose spaces line its columns up, and words between wide
# East Asian characters. Rendered and inlined, its lines pass SMTP's 998 octets.
LONG_PARAGRAPH = (
    "The lock-keeper at Haddon Weir has kept a ledger of the river since 1987, one line a day in a hand that "
    "has not changed in all that time: the height of the water against the painted gauge, the colour of it "
    "(she has eleven words for brown), whether the kingfisher came, and who passed through the lock going "
    "upstream or down. When the council wrote last spring to say the lock would be automated and her post "
    "closed, she did not argue; she asked only whether anyone would want the ledgers, and nobody at the "
    "council knew what to say. So the circle said it: we have spent the autumn reading them, thirty-nine "
    "volumes on the kitchen table of the boathouse, and what follows is what we found there, in her words "
    "where we could and ours where we had to, with the floods and the droughts and the long dull weeks in "
    "between, which she recorded with exactly the same care as the rest. It is the dull weeks, she told us, "
    "that tell you what the river is; the floods only tell you what it can do."
)
LINKED_PARAGRAPH = (
    "Her first volume opens in a January so cold that the gauge froze and she measured the water with a boat "
    "hook and a pencil mark instead. The entries are short at first, as if she were not sure the ledger was "
    "allowed, and then longer, as she found that nobody minded and that writing the river down made her look "
    "at it harder. The whole of that winter is in the [town archive's river collection]"
    "(https://archive.riverside-writers-circle.internal/collections/river/haddon-weir-ledgers/volume-1), "
    "where anyone may read it on a Tuesday afternoon, and where the archivist will tell you, unasked, that "
    "it is the best thing they hold. We think she is right, and we think you will too, once you have read "
    "about the swan that spent a week in the lock chamber and would not be moved."
)
CODE_TABLE = "\n".join((
    "year    highest (m)    lowest (m)    kingfisher days    boats through    notes",
    "1987    2.41           0.62          41                 1,203            the gauge froze in January;"
    " measured by boat hook and pencil mark for nine days          " + "  ".join(["."] * 140),
    "1988    2.87           0.58          37                 1,188            flood in March,"
    " lock closed for eleven days",
))
WIDE_SENTENCE = "川の 記録 を 読む 会 は 毎週 火曜 に 開かれます, and everyone is welcome at them."


def long_paragraph_issue(root: Path, name: str = "ledgers") -> Path:
    """An issue `name` with one article of long paragraphs (see LONG_PARAGRAPH)."""
    body = f"{LONG_PARAGRAPH}\n\n{LINKED_PARAGRAPH}\n\n```\n{CODE_TABLE}\n```\n\n{WIDE_SENTENCE}\n"
    return write_issue(root, name, {"01-ledgers.md": article("The lock-keeper's ledgers", body, "Ruth Okafor")},
                       subject="Thirty-nine volumes of the river", articles=["01-ledgers.md"], date=dt.date(2026, 12, 9))


def folded_and_unfolded(root: Path, name: str) -> tuple[str, str]:
    """Issue `name`'s email HTML as rendered (folded) and as premailer made it (unfolded): the one
    entry of the inline cache of a publication that has rendered nothing else."""
    from newsletter.config import load_settings
    from newsletter.content import load_issue
    from newsletter.render import render_issue
    from newsletter.render.email import INLINE_CACHE_DIR

    settings = load_settings(root)
    folded = render_issue(settings, load_issue(settings, name)).html
    (inlined,) = (settings.build_dir / INLINE_CACHE_DIR).iterdir()
    return folded, inlined.read_text(encoding="utf-8")
