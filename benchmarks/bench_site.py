"""Web edition speed: `newsletter site` for a publication of 100 issues, each with three
articles and a phone-sized photo (1600 × 1200 JPEG with EXIF), in a fresh process.

    python benchmarks/bench_site.py [--issues N] [--runs N]

Cold: no build/ at all (every image processed, every file written). Unchanged: run
again with nothing changed (every image from the cache, no file rewritten).
Targets on the project's 2-core machines: cold under 5 s, unchanged under 1 s.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
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
COLD_TARGET_S = 5.0
UNCHANGED_TARGET_S = 1.0


def photo(path: Path, seed: int) -> None:
    """A photo-like JPEG (gradients and shapes, not flat colour) with an orientation tag."""
    from PIL import ExifTags, Image, ImageDraw

    image = Image.new("RGB", (1600, 1200))
    draw = ImageDraw.Draw(image)
    for row in range(0, 1200, 4):
        draw.rectangle((0, row, 1600, row + 4), fill=((row + seed * 7) % 256, (row // 3 + seed * 13) % 256, 140))
    for k in range(12):
        x, y = (seed * 97 + k * 131) % 1500, (seed * 53 + k * 89) % 1100
        draw.ellipse((x, y, x + 180, y + 120), fill=((k * 40) % 256, (seed * 5) % 256, (k * 70) % 256))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 1
    exif[ExifTags.Base.Make] = "Benchmark"
    image.save(path, "JPEG", quality=88, exif=exif)


def publication(folder: Path, issues: int) -> Path:
    root = folder / "pub"
    root.mkdir()
    shutil.copy(REPO / "newsletter.yaml", root)
    shutil.copytree(REPO / "templates", root / "templates")
    words = " ".join(["The towpath goes quiet in December, and the river is louder than you remember."] * 6)
    start = dt.date(2020, 1, 1)
    for number in range(1, issues + 1):
        issue = root / "issues" / f"issue-{number}"
        issue.mkdir(parents=True)
        (issue / "issue.yaml").write_text(
            f"subject: Issue {number}\npreheader: What issue {number} holds.\n"
            f"date: {start + dt.timedelta(days=7 * number)}\n", encoding="utf-8")
        for part in range(1, 4):
            image = f"\n\n![A photo for issue {number}](photo.jpg)\n" if part == 2 else ""
            (issue / f"0{part}-part.md").write_text(
                f"---\ntitle: Part {part} of issue {number}\nauthor: A writer\n---\n"
                f"{words}\n\n{words}\n\n- [A link](https://example.org/{number}/{part})\n{image}",
                encoding="utf-8")
        photo(issue / "photo.jpg", number)
    return root


def timed_site(root: Path) -> float:
    executable = Path(sys.executable).parent / "newsletter"
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "newsletter"]
    start = time.perf_counter()
    subprocess.run([*command, "site"], cwd=root, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    compile_package()  # as an installed newsletter runs (see harness.compile_package)
    with tempfile.TemporaryDirectory() as tmp:
        root = publication(Path(tmp), args.issues)
        cold, unchanged = [], []
        for _ in range(args.runs):
            shutil.rmtree(root / "build", ignore_errors=True)
            cold.append(timed_site(root))
            unchanged.extend(timed_site(root) for _ in range(2))
        pages = len(list((root / "build" / "site").glob("*/index.html")))
    cold_median, unchanged_median = statistics.median(cold), statistics.median(unchanged)
    print(f"site, {pages} issues, cold       median {cold_median:.2f} s  (min {min(cold):.2f} s, {len(cold)} runs)"
          f"  target < {COLD_TARGET_S:.0f} s  {'met' if cold_median < COLD_TARGET_S else 'NOT MET'}")
    print(f"site, {pages} issues, unchanged  median {unchanged_median:.2f} s  (min {min(unchanged):.2f} s, "
          f"{len(unchanged)} runs)  target < {UNCHANGED_TARGET_S:.0f} s  "
          f"{'met' if unchanged_median < UNCHANGED_TARGET_S else 'NOT MET'}")
    print(f"cpus {os.cpu_count()}, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
