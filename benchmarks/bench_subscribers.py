"""Benchmark of the subscriber store at a million rows: wall time and peak memory.

    python benchmarks/bench_subscribers.py [--rows N]

Generates made-up data (example.org/example.com addresses) in a temporary folder, then
runs the real CLI (`python -m newsletter`) in a subprocess for each measurement:

1. import of N rows into an empty list;
2. `stats` on that list of N rows;
3. import of N rows into that full list (half the addresses already on it, with new
   tags and names, half new).

Peak memory is the child's `ru_maxrss`. RUSAGE_CHILDREN reports the largest child
waited for so far, so each measurement runs under its own small measuring process
(this script again, with `--probe`).
Prints the figures against the targets of the subscribers issue; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import compile_package

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"import": (40.0, 400.0), "stats": (3.0, 100.0)}  # seconds, MB

CONFIG = """\
name: Benchmark Weekly
from: letters@example.org
postal_address: 1 Example Street, Example Town
base_url: https://example.org/issues
"""
FIRST_NAMES = ["Ada", "José", "Siobhán", "Tomasz", "Kim", "Zoë", "Mary-Jane", "Łukasz", "Nia", "Omar"]
LAST_NAMES = ["Lovelace", "Núñez", "O'Brien", "Wiśniewski", "Lee, Jr.", "Smith", "Müller", "Okafor"]
TAGS = ["", "members", "prose", "poetry", "members;prose", "fair-2026"]


def write_import(path: Path, start: int, count: int, seed: int) -> None:
    """A Mailchimp-style export: aliases in the header, mixed-case addresses, some quoting."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("Email Address,First Name,Last Name,TAGS\n")
        for i in range(start, start + count):
            domain = f"example{i % 50}.{'org' if i % 2 else 'com'}"
            email = f"Reader.{i}@{domain.upper() if i % 7 == 0 else domain}"
            last = rng.choice(LAST_NAMES)
            last = f'"{last}"' if "," in last else last
            handle.write(f"{email},{rng.choice(FIRST_NAMES)},{last},{rng.choice(TAGS)}\n")


def probe(command: list[str]) -> None:
    """Run `command`, then print its wall time, peak memory and output as JSON.

    Runs in a process of its own (`--probe`), so RUSAGE_CHILDREN sees that one command only.
    """
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kilobytes on Linux
    print(json.dumps({"seconds": seconds, "peak_kb": peak_kb, "rc": done.returncode,
                      "out": done.stdout + done.stderr}))


def measure(publication: Path, *args: str) -> tuple[float, float, str]:
    """Seconds and peak MB of `newsletter ARGS...` run in `publication`, and its output."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, __file__, "--probe", sys.executable, "-m", "newsletter", *args]
    result = subprocess.run(command, cwd=publication, env=env, capture_output=True, text=True, check=True)
    figures = json.loads(result.stdout)
    if figures["rc"] != 0:
        sys.exit(f"newsletter {' '.join(args)} failed:\n{figures['out']}")
    return figures["seconds"], figures["peak_kb"] / 1024, figures["out"]


def verdict(kind: str, seconds: float, megabytes: float) -> str:
    max_seconds, max_mb = TARGETS[kind]
    ok = seconds < max_seconds and megabytes < max_mb
    return (f"{seconds:7.2f} s (target < {max_seconds:.0f} s)  {megabytes:7.1f} MB (target < {max_mb:.0f} MB)  "
            f"{'OK' if ok else 'OVER TARGET'}")


def main() -> None:
    if sys.argv[1:2] == ["--probe"]:
        probe(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per imported file (default 1,000,000)")
    rows = parser.parse_args().rows
    compile_package()  # as an installed newsletter runs (see harness.compile_package)
    with tempfile.TemporaryDirectory(prefix="bench-subscribers-") as folder:
        publication = Path(folder)
        (publication / "newsletter.yaml").write_text(CONFIG, encoding="utf-8")
        (publication / "subscribers").mkdir()
        print(f"generating {rows:,} + {rows:,} rows of made-up data in {folder} …", flush=True)
        write_import(publication / "first.csv", 0, rows, seed=1)
        write_import(publication / "second.csv", rows // 2, rows, seed=2)
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")

        seconds, mb, out = measure(publication, "subscribers", "import", "first.csv")
        print(f"import {rows:,} rows into an empty list      {verdict('import', seconds, mb)}")
        seconds, mb, out = measure(publication, "subscribers", "stats")
        print(f"stats on {rows:,} rows                       {verdict('stats', seconds, mb)}")
        seconds, mb, out = measure(publication, "subscribers", "import", "second.csv")
        print(f"import {rows:,} rows into a full list        {verdict('import', seconds, mb)}")
        print("\nlast import's report:\n" + out)


if __name__ == "__main__":
    main()
