"""Run every benchmark in this folder (`make bench`); each prints its own figures.

    python benchmarks/run.py [--quick] [NAME ...]

`--quick` (`make bench QUICK=1`) gives indicative figures in about two minutes:
smaller lists and fewer repeats. The machines are shared: run the full set rarely.
NAME picks benchmarks by part of their file name (`run.py send startup`). At the
end the figures that have a target are printed again, together.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

# Benchmarks whose own option for a smaller run is not `--quick`.
QUICK_ARGS = {"bench_build.py": ["--runs", "3"], "bench_subscribers.py": ["--rows", "100000"],
              "bench_site.py": ["--issues", "30", "--runs", "1"],
              "bench_signup.py": []}  # 500 sign-ups is the issue's own figure, and takes under a minute
VERDICT = re.compile(r"\btarget\b.*\b(met|NOT MET|skipped|ok|MISSED)\b")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="indicative figures in about two minutes")
    parser.add_argument("names", nargs="*", metavar="NAME", help="only the benchmarks whose name has NAME in it")
    args = parser.parse_args()
    verdicts: list[str] = []
    started = time.monotonic()
    sys.path.insert(0, str(Path(__file__).parent))
    from harness import compile_package

    compile_package()  # for the benchmarks that start `newsletter` without harness.child_env
    for script in sorted(Path(__file__).parent.glob("bench_*.py")):
        if args.names and not any(name in script.name for name in args.names):
            continue
        print(f"== {script.name}", flush=True)
        extra = QUICK_ARGS.get(script.name, ["--quick"]) if args.quick else []
        with subprocess.Popen([sys.executable, str(script), *extra], stdout=subprocess.PIPE, text=True) as child:
            for line in child.stdout:  # type: ignore[union-attr]
                print(line, end="", flush=True)
                if VERDICT.search(line):
                    verdicts.append(f"{script.stem[len('bench_'):]:<12} {line.strip()}")
        if child.returncode:
            verdicts.append(f"{script.stem[len('bench_'):]:<12} FAILED (exit status {child.returncode})")
    print(f"== every figure with a target ({time.monotonic() - started:.0f} s"
          + (", --quick: indicative" if args.quick else "") + ")")
    print("\n".join(verdicts))
