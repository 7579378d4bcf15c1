"""Our dry run against mailmerge's (PyPI `mailmerge`, the closest peer) on the same issue and list.

    python benchmarks/bench_mailmerge.py [--quick]

mailmerge is installed in a virtual environment of its own, kept in
build/bench-venvs/ (so later runs reuse it); when it cannot be installed the
figure is skipped with the reason. Its template is our rendered email (the same
HTML and text, tens of KB) as a multipart/alternative message, with each merge
tag turned into the Jinja expression that fills it the same way (HTML-escaped in
the HTML part, the fallback when empty, the unsubscribe link per address). Its
`--dry-run --limit N --output-format raw` renders and prints each message
(stdout goes to /dev/null); ours is `newsletter send ISSUE --dry-run`, which
writes every request body to build/. Both run on the same list of made-up
subscribers, as whole processes.

Two figures, because the issue does not say which it measured (and they differ):
- per recipient: time per recipient beyond start-up, from each one's time for
  many rows less its time for the first 10 (mailmerge: 10,000 rows, or 1,000 with
  `--quick`; ours: 100,000, since 10,000 take us only a tenth of a second);
- whole process: recipients per second of the whole run on the first 10,000
  rows, start-up included (ours is mostly start-up at that size; with `--quick`
  mailmerge's time for 10,000 is its time for 1,000 scaled, as its time per
  message is constant). Like for like, ours runs as an editor runs it: after
  `newsletter build` (or `preview`) has kept the inlined HTML and the compiled
  templates, since mailmerge too is handed the email rendered and inlined (its
  template is our output). Ours from an empty build/ is printed beside it, without
  a target: that run also renders the Markdown and runs premailer, which
  mailmerge's does not. And the floor no change of ours can pass: a bare
  interpreter importing the libraries a send after a build loads.
Both run as installed: with their bytecode compiled (harness.compile_package).
The lists are one list: each is the first rows of the largest, and mailmerge
reads the largest with `--limit N`. Target: at least 150 times mailmerge's
recipients per second.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import (ISSUE, NEWSLETTER, REPO, best_of, child_env, clean_build, clean_sends, figure, machine,
                     make_publication)

MAILMERGE_SPEC = "mailmerge~=2.3"
VENV = REPO / "build" / "bench-venvs" / "mailmerge"
TARGET = 150.0
SMALL, WHOLE, LARGE = 10, 10_000, 100_000
# What a dry run after a build imports beyond the standard library (premailer is skipped then).
SEND_LIBRARIES = "import PIL.Image, babel.dates, click, email_validator, jinja2, linkify_it, lxml.html, markdown_it, yaml"


def install_mailmerge() -> tuple[Path | None, str]:
    """mailmerge's executable in its own venv, or None and why not."""
    executable = VENV / "bin" / "mailmerge"
    if executable.exists():
        return executable, ""
    try:
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True)
        subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", MAILMERGE_SPEC],
                       check=True, capture_output=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        output = getattr(exc, "stderr", b"") or b""
        lines = [line for line in output.decode(errors="replace").splitlines() if "Location" not in line]
        return None, f"cannot install {MAILMERGE_SPEC}: {(lines or [str(exc)])[-1]}"
    return (executable, "") if executable.exists() else (None, f"{MAILMERGE_SPEC} installed no executable")


def _jinja_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mailmerge_template(root: Path) -> str:
    """Our rendered email as mailmerge's template: the merge tags filled by Jinja per row."""
    sys.path.insert(0, str(REPO))
    from newsletter import merge
    from newsletter.build import render_and_check
    from newsletter.config import load_settings

    settings = load_settings(root)
    email, _ = render_and_check(settings, ISSUE)
    prefix, _, suffix = settings.unsubscribe_url.partition("{email}")

    def jinja(part: str, document: str) -> str:
        def fill(match: object) -> str:
            kind, field, fallback = match[1], match[2], match[3] or ""  # type: ignore[index]
            if field == merge.UNSUBSCRIBE_FIELD:
                value = f"({_jinja_string(prefix)} ~ (email | urlencode) ~ {_jinja_string(suffix)})"
            else:
                value = f"({field} or {_jinja_string(fallback)})"
            return "{% endraw %}{{ " + value + (" | e" if kind == "html" else "") + " }}{% raw %}"
        return "{% raw %}" + merge.TAG_PATTERN.sub(fill, document) + "{% endraw %}"

    sender = settings.sender
    return (f"TO: {{{{ email }}}}\nFROM: {sender.name} <{sender.email}>\nSUBJECT: {email.subject}\n"
            "MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"bench-boundary\"\n\n"
            "--bench-boundary\nContent-Type: text/plain; charset=utf-8\n\n" + jinja("text", email.text) +
            "\n--bench-boundary\nContent-Type: text/html; charset=utf-8\n\n" + jinja("html", email.html) +
            "\n--bench-boundary--\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="mailmerge on the first 1,000 rows, scaled")
    args = parser.parse_args()
    their_rows = 1_000 if args.quick else WHOLE
    executable, why_not = install_mailmerge()
    if executable is None:
        figure("mailmerge: ours/theirs recipients/s", why_not, f">= {TARGET:.0f}x", None)
        return
    env = child_env()
    with tempfile.TemporaryDirectory(prefix="bench-mailmerge-") as tmp:
        small, whole, large = (make_publication(Path(tmp), rows) for rows in (SMALL, WHOLE, LARGE))
        template = Path(tmp) / "mailmerge_template.txt"
        template.write_text(mailmerge_template(large), encoding="utf-8")
        config = Path(tmp) / "mailmerge_server.conf"
        config.write_text("[smtp_server]\nhost = localhost\nport = 25\nsecurity = Never\nratelimit = 0\n")
        theirs = [str(executable), "--dry-run", "--output-format", "raw", "--template", str(template),
                  "--database", str(large / "subscribers" / "main.csv"), "--config", str(config)]
        their_small = best_of(2, [*theirs, "--limit", str(SMALL)], large, env, discard_stdout=True)
        their_many = best_of(1, [*theirs, "--limit", str(their_rows)], large, env, discard_stdout=True)
        ours = [*NEWSLETTER, "send", ISSUE, "--dry-run"]
        our = {root: best_of(2, ours, root, env, before=lambda root=root: clean_build(root))
               for root in (small, whole, large)}
        best_of(1, [*NEWSLETTER, "build", ISSUE], whole, env)
        warm = best_of(3, ours, whole, env, before=lambda: clean_sends(whole))
        floor = best_of(3, [sys.executable, "-c", SEND_LIBRARIES], whole, env)
        body = next((large / "build" / ISSUE / "dry-run").iterdir()).stat().st_size
    their_per_row = (their_many.seconds - their_small.seconds) / (their_rows - SMALL)
    their_whole = their_small.seconds + their_per_row * (WHOLE - SMALL)  # measured, unless --quick
    our_per_row = (our[large].seconds - our[small].seconds) / (LARGE - SMALL)
    scaled = f" (its first {their_rows:,} timed and scaled)" if their_rows != WHOLE else ""
    print(f"  mailmerge: {SMALL} rows {their_small.seconds:.2f} s, {WHOLE:,} rows {their_whole:.2f} s{scaled}; "
          f"ours: {SMALL} rows {our[small].seconds:.2f} s, {WHOLE:,} {our[whole].seconds:.2f} s, "
          f"{LARGE:,} {our[large].seconds:.2f} s; our body for 1,000 {body / 1000:.0f} KB; {machine()}")
    per_recipient = their_per_row / our_per_row
    whole_ratio = their_whole / our[whole].seconds
    warm_ratio = their_whole / warm.seconds
    figure("mailmerge: ours/theirs recipients/s, per recipient",
           f"{1 / our_per_row:,.0f}/s vs {1 / their_per_row:,.0f}/s = {per_recipient:,.0f}x",
           f">= {TARGET:.0f}x", per_recipient >= TARGET, args.quick)
    figure(f"mailmerge: same, whole process on {WHOLE:,}, after a build",
           f"{WHOLE / warm.seconds:,.0f}/s vs {WHOLE / their_whole:,.0f}/s = {warm_ratio:,.0f}x",
           f">= {TARGET:.0f}x", warm_ratio >= TARGET, args.quick)
    print(f"  (from an empty build/, rendering and premailer included, which mailmerge is handed done: "
          f"{WHOLE / our[whole].seconds:,.0f}/s = {whole_ratio:,.0f}x; no target)")
    budget = their_whole / TARGET
    print(f"  (whole process: {TARGET:.0f}x leaves us {budget:.2f} s for {WHOLE:,}; ours takes {our[whole].seconds:.2f} s "
          f"cold, {warm.seconds:.2f} s after a build; importing the libraries a send loads takes {floor.seconds:.2f} s "
          f"alone, and {our[whole].seconds - our[small].seconds:.2f} s go to the rows)")


if __name__ == "__main__":
    main()
