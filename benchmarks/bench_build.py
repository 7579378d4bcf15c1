"""Build speed: `newsletter build` of the sample issue in a cold process, and one
render+inline in a warm process.

    python benchmarks/bench_build.py [--runs N]

Targets on the project's 2-core machines: cold build under 0.6 s, warm
render+inline under 60 ms. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import compile_package

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
COLD_TARGET_S = 0.6
WARM_TARGET_MS = 60.0


def sample_copy(folder: Path) -> Path:
    root = folder / "pub"
    root.mkdir()
    shutil.copy(REPO / "newsletter.yaml", root)
    shutil.copytree(REPO / "issues", root / "issues")
    shutil.copytree(REPO / "templates", root / "templates")
    return root


def cold_builds(root: Path, runs: int) -> list[float]:
    executable = Path(sys.executable).parent / "newsletter"
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "newsletter"]
    times = []
    for _ in range(runs):
        shutil.rmtree(root / "build", ignore_errors=True)  # a first build: no inlined HTML kept yet
        start = time.perf_counter()
        subprocess.run([*command, "build", "issue-1"], cwd=root, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def warm_renders(root: Path, runs: int) -> list[float]:
    from newsletter.config import load_settings
    from newsletter.content import load_issue
    from newsletter.render import render_issue
    from newsletter.render.email import INLINE_CACHE_DIR

    settings = load_settings(root)
    issue = load_issue(settings, "issue-1")
    shutil.rmtree(root / "build" / INLINE_CACHE_DIR, ignore_errors=True)  # so that the warm-up imports premailer
    render_issue(settings, issue)  # warm: imports done, templates compiled
    times = []
    for _ in range(runs):
        shutil.rmtree(root / "build" / INLINE_CACHE_DIR, ignore_errors=True)  # premailer runs each time
        start = time.perf_counter()
        render_issue(settings, issue)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    compile_package()  # as an installed newsletter runs (see harness.compile_package)
    with tempfile.TemporaryDirectory() as tmp:
        root = sample_copy(Path(tmp))
        cold = cold_builds(root, args.runs)
        warm = warm_renders(root, args.runs * 5)
    cold_median, warm_median = statistics.median(cold), statistics.median(warm) * 1000
    print(f"build, cold process   median {cold_median:.3f} s  (min {min(cold):.3f} s, {args.runs} runs)"
          f"  target < {COLD_TARGET_S} s  {'ok' if cold_median < COLD_TARGET_S else 'MISSED'}")
    print(f"render+inline, warm   median {warm_median:.1f} ms  (min {min(warm) * 1000:.1f} ms, {len(warm)} runs)"
          f"  target < {WARM_TARGET_MS:.0f} ms  {'ok' if warm_median < WARM_TARGET_MS else 'MISSED'}")
    print(f"cpus {os.cpu_count()}, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
