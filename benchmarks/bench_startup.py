"""Start-up of the command: cold `newsletter --help` and cold `newsletter status ISSUE`.

    python benchmarks/bench_startup.py [--quick]

Each run is a new process of the installed `newsletter` script (as a user types
it), timed from start to exit; the figure is the median of the runs. `status` runs
on a publication whose issue was sent to 100,000 (its ledger written through the
package's Ledger, as a send writes it). Targets on these 2-core machines: --help
under 0.25 s, status under 0.4 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from harness import ISSUE, NEWSLETTER, child_env, figure, machine, make_publication, run_child

HELP_TARGET = 0.25
STATUS_TARGET = 0.4
SENT = 100_000


def newsletter_script() -> list[str]:
    script = Path(sys.executable).parent / "newsletter"
    return [str(script)] if script.exists() else NEWSLETTER


def write_ledger(root: Path, recipients: int) -> None:
    """The ledger a send of `recipients` leaves: every batch of 1,000 accepted."""
    from newsletter.config import load_settings
    from newsletter.sending.ledger import ACCEPTED, Ledger, ledger_path

    ledger = Ledger(ledger_path(load_settings(root), ISSUE), ISSUE)
    try:
        for start in range(0, recipients, 1000):
            keys = [f"reader.{i:07d}@example.org" for i in range(start, min(start + 1000, recipients))]
            ledger.settle(ledger.record(keys), ACCEPTED, message_id=f"bench-{start}", status=202)
    finally:
        ledger.close()


def median_seconds(args: list[str], root: Path, runs: int) -> tuple[float, float]:
    env = child_env()
    times = [run_child(args, root, env).seconds for _ in range(runs)]
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    args = parser.parse_args()
    runs = 5 if args.quick else 15
    command = newsletter_script()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        root = make_publication(Path(tmp), 10)
        write_ledger(root, SENT)
        help_median, help_min = median_seconds([*command, "--help"], root, runs)
        status_median, status_min = median_seconds([*command, "status", ISSUE], root, runs)
    print(f"  {' '.join(Path(part).name for part in command)}: median of {runs} runs; {machine()}")
    figure("cold `newsletter --help`", f"{help_median:.3f} s (min {help_min:.3f} s)",
           f"< {HELP_TARGET} s", help_median < HELP_TARGET, args.quick)
    figure(f"cold `newsletter status` (sent to {SENT:,})", f"{status_median:.3f} s (min {status_min:.3f} s)",
           f"< {STATUS_TARGET} s", status_median < STATUS_TARGET, args.quick)


if __name__ == "__main__":
    main()
