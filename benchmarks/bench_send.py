"""Benchmark of `newsletter send`: dry runs and a real send to a local SendGrid double.

    python benchmarks/bench_send.py [--quick]

Each run is a child process, timed from start to exit (imports and rendering
included), with its peak memory (ru_maxrss from wait4). The reference is the
straightforward pipeline of the issue, run in the same way on the same list:
stream the CSV, build plain-dict bodies of 1,000 personalizations, json.dumps
each whole, write each to a file (dry) or POST it over one keep-alive connection
(send). Figures are ratios to it, because these machines are noisy.

The double runs in a process of its own, with schema validation off. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.sendgrid_double import SendGridDouble  # noqa: E402

ISSUE = "issue-1"
HEADER = ["email", "first_name", "last_name", "status", "tags", "subscribed_at", "updated_at"]


def baseline(mode: str, url: str = "") -> None:
    """The straightforward pipeline, run as a child: `bench_send.py --baseline dry|send`."""
    import html
    import http.client
    import json
    from urllib.parse import quote, urlsplit

    from newsletter.build import render_and_check
    from newsletter.config import load_settings

    settings = load_settings()
    email, _ = render_and_check(settings, ISSUE)
    out = settings.build_dir / ISSUE / "baseline"
    out.mkdir(parents=True, exist_ok=True)
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30) if mode == "send" else None
    key = os.environ.get("SENDGRID_API_KEY", "")

    def flush(personalizations: list[dict], number: int) -> None:
        body = {
            "personalizations": personalizations,
            "from": {"email": settings.sender.email, "name": settings.sender.name},
            "reply_to": {"email": settings.reply_to.email} if settings.reply_to else None,
            "subject": email.subject,
            "content": [{"type": "text/plain", "value": email.text}, {"type": "text/html", "value": email.html}],
            "categories": list(settings.sendgrid.categories),
            "custom_args": {"issue": ISSUE},
        }
        data = json.dumps(body)
        if conn is None:
            (out / f"{number:05d}.json").write_text(data)
        else:
            conn.request("POST", "/v3/mail/send", body=data.encode(),
                         headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            assert response.status == 202, response.status

    batch: list[dict] = []
    number = 0
    with open(settings.subscribers_dir / "main.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["status"] != "subscribed":
                continue
            url = settings.unsubscribe_url.replace("{email}", quote(row["email"]))
            first = row["first_name"] or "friend"
            batch.append({
                "to": [{"email": row["email"], "name": f"{row['first_name']} {row['last_name']}".strip()}],
                "headers": {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
                "substitutions": {
                    "[%text:first_name|friend%]": first, "[%text:unsubscribe_url%]": url,
                    "[%html:first_name|friend%]": html.escape(first), "[%html:unsubscribe_url%]": html.escape(url),
                },
            })
            if len(batch) == 1000:
                number += 1
                flush(batch, number)
                batch = []
    if batch:
        flush(batch, number + 1)


def serve_double() -> None:
    """The double in its own process (`--double`): prints its URL and key, forgets bodies."""
    with SendGridDouble(validate=False) as double:
        print(double.url, double.api_key, flush=True)
        while True:  # until terminated; the bodies it keeps are of no use here
            time.sleep(0.2)
            with double.lock:
                double.mail_requests.clear()
                double.accepted.clear()
                double.request_headers.clear()


@dataclass
class Run:
    seconds: float
    peak_mb: float


def run_child(args: list[str], cwd: Path, env: dict[str, str]) -> Run:
    """Run a child process to its end: wall time and peak resident memory.

    Both pipes are drained at once, as `communicate()` does (reading one to its end
    first would deadlock on a child that fills the other); the child is then reaped
    with wait4, which `communicate()` would not allow, for its own ru_maxrss.
    """
    started = time.perf_counter()
    process = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with ThreadPoolExecutor(2) as readers:
        out, err = readers.submit(process.stdout.read), readers.submit(process.stderr.read)  # type: ignore[union-attr]
        output = out.result() + err.result()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({process.returncode}):\n{output.decode(errors='replace')}")
    return Run(seconds, usage.ru_maxrss / 1024)


def make_publication(folder: Path, subscribers: int) -> Path:
    root = folder / f"pub-{subscribers}"
    root.mkdir()
    for name in ("newsletter.yaml",):
        shutil.copy(REPO / name, root / name)
    for name in ("issues", "templates"):
        shutil.copytree(REPO / name, root / name)
    (root / "subscribers").mkdir()
    with open(root / "subscribers" / "main.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(subscribers):
            writer.writerow([f"reader.{i:07d}@example.org", f"Reader{i}", "Smith", "subscribed",
                             "members", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"])
    return root


MAX_RATIO = 1.3      # the targets: no slower than 1.3x the straightforward pipeline
AIM_RATIO = 1.0
MAX_PEAK_MB = 300.0  # for the dry run at 1,000,000


def verdict(ratio: float, peak_mb: float | None = None) -> str:
    """Whether a figure meets its target, in words."""
    meets = ratio <= MAX_RATIO and (peak_mb is None or peak_mb < MAX_PEAK_MB)
    target = f"<= {MAX_RATIO}x" + (f", < {MAX_PEAK_MB:.0f} MB" if peak_mb is not None else "")
    aim = f"; below the aim of {AIM_RATIO}x" if ratio < AIM_RATIO else ""
    return f"{'meets' if meets else 'MISSES'} target ({target}){aim}"


def compare(label: str, subscribers: int, ours: list[str], theirs: list[str], root: Path,
            env: dict[str, str], repeats: int, peak_target: bool = False) -> tuple[float, float]:
    """Run both `repeats` times, alternating; best time of each. Prints one line and the verdict."""
    best_ours = best_base = None
    for _ in range(repeats):
        for args, which in ((theirs, "base"), (ours, "ours")):
            # Each run starts as a first send: no bodies of a dry run, no ledger (in sent/).
            shutil.rmtree(root / "build", ignore_errors=True)
            shutil.rmtree(root / "sent", ignore_errors=True)
            run = run_child(args, root, env)
            if which == "base":
                best_base = run if best_base is None or run.seconds < best_base.seconds else best_base
            else:
                best_ours = run if best_ours is None or run.seconds < best_ours.seconds else best_ours
    assert best_ours is not None and best_base is not None
    ratio = best_ours.seconds / best_base.seconds
    print(f"{label:<22} {subscribers:>9,}  ours {subscribers / best_ours.seconds:>9,.0f}/s "
          f"{best_ours.seconds:6.2f} s {best_ours.peak_mb:6.0f} MB   baseline "
          f"{subscribers / best_base.seconds:>9,.0f}/s {best_base.seconds:6.2f} s "
          f"{best_base.peak_mb:6.0f} MB   ratio {ratio:.2f}x", flush=True)
    print(f"{'':<22} {verdict(ratio, best_ours.peak_mb if peak_target else None)}", flush=True)
    return ratio, best_ours.peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller lists, one repeat")
    parser.add_argument("--baseline", choices=("dry", "send"), help=argparse.SUPPRESS)
    parser.add_argument("--double", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.double:
        serve_double()
        return
    if args.baseline:
        baseline(args.baseline, os.environ.get("NEWSLETTER_SENDGRID_URL", ""))
        return
    dry_sizes = (20_000, 100_000) if args.quick else (100_000, 1_000_000)
    send_size = 20_000 if args.quick else 100_000
    repeats = 1 if args.quick else 2
    me = [sys.executable, str(Path(__file__).resolve())]
    newsletter = [sys.executable, "-m", "newsletter", "send", ISSUE]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("SENDGRID_API_KEY", None)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; best of {repeats}")
    with tempfile.TemporaryDirectory(prefix="bench-send-") as tmp:
        for size in dry_sizes:
            root = make_publication(Path(tmp), size)
            compare("dry run", size, newsletter + ["--dry-run"], me + ["--baseline", "dry"],
                    root, env, repeats, peak_target=size == dry_sizes[-1])
            shutil.rmtree(root)
        root = make_publication(Path(tmp), send_size)
        double = subprocess.Popen([*me, "--double"], stdout=subprocess.PIPE, text=True)
        try:
            url, api_key = double.stdout.readline().split()  # type: ignore[union-attr]
            send_env = dict(env, NEWSLETTER_SENDGRID_URL=url, SENDGRID_API_KEY=api_key)
            compare("send to the double", send_size, newsletter + ["--yes"], me + ["--baseline", "send"],
                    root, send_env, repeats)
        finally:
            double.terminate()
            double.wait()
    print(f"targets: dry run at 1,000,000 <= {MAX_RATIO}x with peak < {MAX_PEAK_MB:.0f} MB; send of 100,000 "
          f"<= {MAX_RATIO}x; aim < {AIM_RATIO}x" + (" (--quick: smaller lists, the verdicts are indicative)"
                                                    if args.quick else ""))


if __name__ == "__main__":
    main()
