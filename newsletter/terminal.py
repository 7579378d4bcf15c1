"""The terminal a command runs at, as one object (httpie's `Environment`).

Whether someone can answer a question, whether output goes to a screen (a progress bar)
or to a file (a plain line now and then), whether a browser can open and how, the clock
a progress line is paced by, and how long it waits on what is outside it (retries, the DNS,
a file another process writes); and the parts a command meets the world through (the
provider a send posts through, how a send reads its list again when another process
changed it, the preview's server). `cli.py` builds the real one
from the process and keeps it in the click context (`ctx.obj`); tests hand it a double
through `CliRunner.invoke(..., obj=...)` instead of patching module globals. Only
`cli.py` knows this object: the core takes what it needs (a retry policy, a provider, a
reader of the list) as parameters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # imported when a send runs, not at start-up
    from pathlib import Path

    from newsletter.config import Settings
    from newsletter.preview import OnRebuild
    from newsletter.sending.provider import Provider, RetryPolicy


class PreviewServer(Protocol):
    """`preview --serve`'s server: `newsletter.preview.serve`, as the CLI calls it."""

    def __call__(self, settings: Settings, issue_name: str, port: int, on_rebuild: OnRebuild | None = None, *,
                 as_email: str | None = None) -> None: ...


def _no_browser(target: str) -> int:
    """A terminal without a browser: nothing opens (click.launch's status for a failure)."""
    return 1


@dataclass
class Terminal:
    """What a command meets outside itself. The defaults are a terminal with nothing at it:
    no one to ask, no screen, no browser (a cron job, a pipe)."""

    can_ask: bool = False             # standard input is a terminal: a confirmation can be answered
    stdout_is_a_screen: bool = False  # a send's progress is a bar, not a line every few seconds
    stderr_is_a_screen: bool = False  # an import's progress is a status line, else nothing
    has_a_display: bool = False       # a browser window could open (see cli._has_a_display)
    launch: Callable[[str], int] = _no_browser  # opens a file or URL in the browser; 0 when it did
    clock: Callable[[], float] = time.monotonic  # seconds, for pacing the progress lines
    # How long a command waits on what is outside it; None everywhere: the core's own.
    retry: RetryPolicy | None = None   # how hard SendGrid and SMTP calls are retried
    dns_deadline: float | None = None  # doctor's budget for every DNS query of a run, in seconds
    busy_wait: float | None = None     # seconds a delete waits for the sign-up server's write to end
    # The parts a command meets the world through; None everywhere: the real ones.
    provider: Callable[[Settings], Provider] | None = None  # a send's provider (None: newsletter.yaml's)
    reread_list: Callable[[Path], set[str]] | None = None  # a send's re-reading of its changed list
    serve_preview: PreviewServer | None = None  # preview --serve's server (None: preview.serve)

    def open_in_browser(self, target: str) -> bool:
        """Whether `target` was opened in a browser window (never tried without a display)."""
        return self.has_a_display and self.launch(target) == 0
