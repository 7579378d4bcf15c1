"""What the benchmarks share: child processes timed from start to exit, made-up
publications, the SendGrid double in a process of its own, and one line per figure.

Not a benchmark itself (run.py runs only bench_*.py). `python benchmarks/harness.py
--double [--latency S]` is the double's process: it prints its URL and key.
"""

from __future__ import annotations

import argparse
import compileall
import csv
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ISSUE = "issue-1"
HEADER = ["email", "first_name", "last_name", "status", "tags", "subscribed_at", "updated_at"]
NEWSLETTER = [sys.executable, "-m", "newsletter"]


@dataclass
class Run:
    seconds: float
    peak_mb: float
    cpu_seconds: float = 0.0  # user + system: steadier than wall time on a machine others load too


def compile_package() -> None:
    """Our modules' bytecode, as `pip install` writes it for an installed newsletter.

    The checkout is installed editable, and these machines set PYTHONDONTWRITEBYTECODE:
    without this, every timed child would compile all of newsletter/ from source (about
    50 ms of a send's start-up), which no installed copy does, and mailmerge's venv
    does not either (pip compiled it). Stale or missing files only are written.
    """
    compileall.compile_dir(REPO / "newsletter", quiet=1)


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child `newsletter`: this checkout first (its bytecode compiled), no real API key."""
    compile_package()
    env = dict(os.environ, PYTHONPATH=str(REPO), **extra)
    if "SENDGRID_API_KEY" not in extra:
        env.pop("SENDGRID_API_KEY", None)
    return env


def run_child(args: list[str], cwd: Path, env: dict[str, str], discard_stdout: bool = False) -> Run:
    """Run a child process to its end: wall time and peak resident memory.

    Both pipes are drained at once, as `communicate()` does (reading one to its end
    first would deadlock on a child that fills the other); the child is then reaped
    with wait4, which `communicate()` would not allow, for its own ru_maxrss.
    `discard_stdout` sends stdout to /dev/null (mailmerge prints every message).
    """
    started = time.perf_counter()
    process = subprocess.Popen(args, cwd=cwd, env=env, stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL if discard_stdout else subprocess.PIPE)
    with ThreadPoolExecutor(2) as readers:
        out = readers.submit(process.stdout.read) if process.stdout else None
        err = readers.submit(process.stderr.read)  # type: ignore[union-attr]
        output = (out.result() if out else b"") + err.result()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({process.returncode}):\n{output.decode(errors='replace')[-3000:]}")
    return Run(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)


def best_of(repeats: int, args: list[str], cwd: Path, env: dict[str, str], before: Callable[[], object] | None = None,
            discard_stdout: bool = False) -> Run:
    """The fastest of `repeats` runs (the least disturbed by the other engineers' work)."""
    best: Run | None = None
    for _ in range(repeats):
        if before is not None:
            before()
        run = run_child(args, cwd, env, discard_stdout)
        best = run if best is None or run.seconds < best.seconds else best
    assert best is not None
    return best


def make_publication(folder: Path, subscribers: int, name: str = "") -> Path:
    """A copy of the sample publication with a made-up list of `subscribers`, all subscribed."""
    root = folder / (name or f"pub-{subscribers}")
    root.mkdir()
    shutil.copy(REPO / "newsletter.yaml", root / "newsletter.yaml")
    for folder_name in ("issues", "templates"):
        shutil.copytree(REPO / folder_name, root / folder_name)
    (root / "subscribers").mkdir()
    with open(root / "subscribers" / "main.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(subscribers):
            writer.writerow([f"reader.{i:07d}@example.org", f"Reader{i}", "Smith", "subscribed",
                             "members", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"])
    return root


def clean_build(root: Path) -> None:
    """Start the next run as a first send: no bodies of a dry run, no ledger (in sent/)."""
    shutil.rmtree(root / "build", ignore_errors=True)
    shutil.rmtree(root / "sent", ignore_errors=True)


def clean_sends(root: Path) -> None:
    """Start the next run as a first send after a `build` (or `preview`): the caches kept, no bodies, no ledger."""
    shutil.rmtree(root / "build" / ISSUE / "dry-run", ignore_errors=True)
    shutil.rmtree(root / "sent", ignore_errors=True)


@contextmanager
def double_process(latency: float = 0.0) -> Iterator[tuple[str, str]]:
    """The SendGrid double in a process of its own (so it takes no time from ours): (url, key)."""
    args = [sys.executable, str(Path(__file__).resolve()), "--double", "--latency", str(latency)]
    double = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        url, api_key = double.stdout.readline().split()  # type: ignore[union-attr]
        yield url, api_key
    finally:
        double.terminate()
        double.wait()


def serve_double(latency: float) -> None:
    """The double's process: schema validation off, bodies forgotten as they come."""
    from tests.sendgrid_double import SendGridDouble

    with SendGridDouble(validate=False, latency=latency) as double:
        print(double.url, double.api_key, flush=True)
        while True:  # until terminated; the bodies it keeps are of no use here
            time.sleep(0.2)
            with double.lock:
                double.mail_requests.clear()
                double.accepted.clear()
                double.request_headers.clear()
                double.mail_times.clear()


def machine() -> str:
    """The conditions of a run: these machines are shared, and their load changes every figure."""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load}"


def figure(label: str, value: str, target: str, met: bool | None, quick: bool = False) -> None:
    """One figure of the issue: what was measured, its target, and whether it was met."""
    verdict = "skipped" if met is None else ("met" if met else "NOT MET")
    if quick and met is not None:
        verdict += " (quick: indicative)"
    print(f"  {label:<56} {value:<38} target {target:<9} {verdict}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--double", action="store_true", required=True)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each mail/send answer")
    serve_double(parser.parse_args().latency)
