"""The terminal the tests hand to the CLI (`CliRunner.invoke(cli, args, obj=...)`), as httpie's
tests hand a `MockEnvironment`: no module global of `newsletter` is patched to stand in for one."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from newsletter.sending.provider import RetryPolicy
from newsletter.terminal import Terminal


def quick_retries(**limits: float) -> RetryPolicy:
    """Backoff in milliseconds instead of seconds (and any other limit given)."""
    return RetryPolicy(**{"backoff": 0.01, "max_backoff": 0.05, **limits})  # type: ignore[arg-type]


@dataclass
class TerminalDouble(Terminal):
    """What `CliRunner` gives a command (no one to ask, no screen, no display), with retries that
    wait milliseconds; a test sets what it needs: `TerminalDouble(can_ask=True)`."""

    retry: RetryPolicy | None = field(default_factory=quick_retries)


def ticking_clock(step: float) -> Callable[[], float]:
    """A clock `step` seconds further on at every look: each progress line is due at once."""
    ticks = itertools.count(step=step)
    return lambda: float(next(ticks))
