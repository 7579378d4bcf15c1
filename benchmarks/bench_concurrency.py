"""A send over a slow wire: 90,000 recipients to a double that answers each request after 250 ms.

    python benchmarks/bench_concurrency.py [--quick] [--sweep 1,2,4,8]

Real SendGrid takes roughly 100-500 ms per request of 1,000. The double (in a
process of its own, a threaded server, so concurrent requests wait at once)
answers every mail/send after 250 ms. `newsletter send ISSUE --yes` runs as a
whole process, timed from start to exit: once one request at a time
(`--concurrency 1`) and once with the default settings. Target with the default
settings: under 8 s. `--sweep` also times the given concurrencies (to choose the
default); `--sizes` times whole sends of other lists with the default settings (the
README's figures: `--sizes 10000,100000,1000000`).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from harness import (ISSUE, NEWSLETTER, best_of, child_env, clean_build, double_process, figure, machine,
                     make_publication)

RECIPIENTS = 90_000
LATENCY = 0.25
TARGET = 8.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="accepted for run.py; the figures are the same")
    parser.add_argument("--sweep", default="", metavar="N,N,...", help="also time these --concurrency values")
    parser.add_argument("--sizes", default="", metavar="N,N,...", help="also time sends of lists of these sizes")
    args = parser.parse_args()
    sweep = [int(n) for n in args.sweep.split(",") if n]
    sizes = [int(n) for n in args.sizes.split(",") if n]
    with tempfile.TemporaryDirectory(prefix="bench-concurrency-") as tmp, double_process(LATENCY) as (url, key):
        root = make_publication(Path(tmp), RECIPIENTS)
        env = child_env(NEWSLETTER_SENDGRID_URL=url, SENDGRID_API_KEY=key)
        # --no-web-check: the check of the issue's web page before a real send is not the wire's time.
        send = [*NEWSLETTER, "send", ISSUE, "--yes", "--no-web-check"]

        def timed(extra: list[str]) -> float:
            return best_of(1, [*send, *extra], root, env, before=lambda: clean_build(root)).seconds

        one_at_a_time = timed(["--concurrency", "1"])
        default = timed([])
        swept = {n: timed(["--concurrency", str(n)]) for n in sweep}
        sized = {}
        for size in sizes:
            other = make_publication(Path(tmp), size, name=f"list-{size}")
            sized[size] = best_of(1, send, other, env, before=lambda other=other: clean_build(other))
            shutil.rmtree(other)
    print(f"  {RECIPIENTS:,} recipients ({RECIPIENTS // 1000} requests), {LATENCY * 1000:.0f} ms per answer; "
          f"one request at a time {one_at_a_time:.2f} s; {machine()}")
    for n, seconds in swept.items():
        print(f"  --concurrency {n:<3} {seconds:6.2f} s  {RECIPIENTS / seconds:9,.0f} recipients/s")
    for size, run in sized.items():
        print(f"  {size:>9,} recipients, default settings: {run.seconds:6.1f} s  {size / run.seconds:9,.0f}/s  "
              f"peak {run.peak_mb:.0f} MB")
    figure(f"send of {RECIPIENTS:,} at {LATENCY * 1000:.0f} ms/request, default settings",
           f"{default:.2f} s (one at a time {one_at_a_time:.2f} s)", f"< {TARGET:.0f} s", default < TARGET)


if __name__ == "__main__":
    main()
