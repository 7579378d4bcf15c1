"""`python -m tests.paused_writer MARKER ARGS...`: `newsletter ARGS...`, pausing mid-write.

The tests' instrument, not the program's: in this process only, the rename that puts
a new list file (`*.csv`) in place first creates MARKER, then waits until it is
deleted. At that moment the new list is written and fsynced, the lock is held and the
old file is still in place, so a test knows for certain that the writer is "in the
middle of a write" without sleeping and hoping.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any


def main() -> None:
    marker = Path(sys.argv[1])
    replace = os.replace

    def paused_replace(source: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        if str(target).endswith(".csv"):
            marker.touch()
            while marker.exists():
                time.sleep(0.01)
        replace(source, target, *args, **kwargs)

    os.replace = paused_replace
    from newsletter.cli import cli

    cli(sys.argv[2:], prog_name="newsletter")


if __name__ == "__main__":
    main()
