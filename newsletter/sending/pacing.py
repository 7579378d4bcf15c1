"""Pacing a send inside a provider's quotas: a rate across every connection, and a daily allowance.

Small senders live inside quotas: Gmail takes 500 messages a day from one account, Amazon
SES 14 a second in a new account, Brevo's free plan 300 a day. Going over is not a
failure of the messages but of the send, and providers answer it by refusing
everything after (or, worse, by suspending the account). So a send paces itself:

- `Pace` spreads messages over time, at most `rate` a second across all the threads
  that post (a token bucket one message deep, so nothing bursts);
- `DailyAllowance` counts what was handed to the provider per UTC day, in a small
  SQLite file beside the ledgers, proofs included (they count against the same quota).
  Two sends of two issues at once share it: each reservation is one `BEGIN IMMEDIATE`
  transaction, so no two processes take the last message of the day.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.errors import SendError, where

if TYPE_CHECKING:
    from newsletter.config import Settings

USAGE_FILE = "daily-usage.sqlite"  # in sent/


class Pace:
    """At most `rate` messages a second, across every thread that calls `wait`."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, wait: Callable[[float], bool]) -> bool:
        """Wait for this message's turn; False if the send was stopped meanwhile (post nothing then).

        `wait(seconds)` is the send's: it returns True as soon as the send is being stopped.
        """
        if not self._interval:
            return not wait(0)
        with self._lock:
            now = self._clock()
            turn = max(now, self._next)
            self._next = turn + self._interval
        return not wait(max(turn - now, 0.0))

    @property
    def per_second(self) -> float | None:
        return 1.0 / self._interval if self._interval else None


@dataclass(frozen=True)
class PaceLimits:
    """What holds a send back, for its progress line: `smtp.rate`, and what is left of the day's limit."""

    rate: float | None
    left_today: int | None  # None without smtp.daily_limit


def pace_limits(settings: Settings, provider: str) -> PaceLimits | None:
    """The limits a real send through `provider` meets now; None when it meets none (SendGrid, SMTP unpaced)."""
    smtp = settings.smtp
    if provider != "smtp" or smtp is None or not (smtp.rate or smtp.daily_limit):
        return None
    left = DailyAllowance(settings.root / "sent", smtp.daily_limit).status().left if smtp.daily_limit else None
    return PaceLimits(smtp.rate, left)


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@dataclass(frozen=True)
class Allowance:
    """What is left of the day's quota: `left` is None without a limit."""

    limit: int | None
    used: int
    day: dt.date

    @property
    def left(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)

    @property
    def resets_at(self) -> dt.datetime:
        """Midnight UTC after `day`: when the next day's quota starts."""
        return dt.datetime.combine(self.day + dt.timedelta(days=1), dt.time(), dt.UTC)


class DailyAllowance:
    """Messages handed to the provider per UTC day, against `limit`, shared by every send.

    A send leases its messages `LEASE` at a time (one transaction, one fsync, for many
    messages) and gives back what it did not use when it ends (`release`). A send killed
    in between leaves its lease counted: the day sends fewer than it might, never more.
    """

    LEASE = 50

    def __init__(self, folder: Path, limit: int | None, today: Callable[[], dt.date] = utc_today) -> None:
        self.path = folder / USAGE_FILE
        self.limit = limit
        self._today = today
        self._lock = threading.Lock()
        self._leased = 0  # taken from the file and not used yet
        self._leased_day: dt.date | None = None

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("CREATE TABLE IF NOT EXISTS usage (day TEXT PRIMARY KEY, sent INTEGER NOT NULL)")
        except (OSError, sqlite3.Error) as exc:
            raise SendError(f"{where(self.path)}: cannot keep the day's count of messages ({exc}); "
                            "check that sent/ is writable") from None
        return connection

    def _used(self, connection: sqlite3.Connection, day: dt.date) -> int:
        row = connection.execute("SELECT sent FROM usage WHERE day = ?", (day.isoformat(),)).fetchone()
        return int(row[0]) if row else 0

    def status(self) -> Allowance:
        day = self._today()
        if not self.path.exists():
            return Allowance(self.limit, 0, day)
        connection = self._connect()
        try:
            return Allowance(self.limit, self._used(connection, day), day)
        finally:
            connection.close()

    def take(self, count: int = 1) -> int:
        """Reserve up to `count` of today's messages; how many were granted (0: the day is used up)."""
        with self._lock:
            return self._take_locked(count, self._today())

    def _take_locked(self, count: int, day: dt.date) -> int:
        connection = self._connect()
        try:
            connection.execute("BEGIN IMMEDIATE")
            used = self._used(connection, day)
            granted = count if self.limit is None else max(min(count, self.limit - used), 0)
            if granted:
                connection.execute(
                    "INSERT INTO usage (day, sent) VALUES (?, ?) "
                    "ON CONFLICT(day) DO UPDATE SET sent = sent + excluded.sent", (day.isoformat(), granted))
            connection.execute("COMMIT")
            return granted
        except sqlite3.Error as exc:
            raise SendError(f"{where(self.path)}: cannot keep the day's count of messages ({exc})") from None
        finally:
            connection.close()

    def use(self) -> bool:
        """One message of today's allowance for this send; False when the day is used up.

        Without a limit nothing is counted (and nothing written): there is nothing to hold it to.
        """
        if self.limit is None:
            return True
        with self._lock:
            today = self._today()
            if self._leased_day != today:
                self._give_back_lease()
                self._leased_day = today
            if not self._leased:
                self._leased = self._take_locked(self.LEASE, today)
            if not self._leased:
                return False
            self._leased -= 1
            return True

    def unuse(self) -> None:
        """A message `use` counted that never reached the provider: back into the lease."""
        if self.limit is not None:
            with self._lock:
                self._leased += 1

    def release(self) -> None:
        """The send is over: what it leased and did not use goes back to the day."""
        with self._lock:
            self._give_back_lease()

    def _give_back_lease(self) -> None:
        if self._leased and self._leased_day is not None:
            self._update(-self._leased, self._leased_day)
        self._leased = 0

    def give_back(self, count: int, day: dt.date) -> None:
        """Return reservations that never reached the provider (the send stopped before them)."""
        if count <= 0:
            return
        with self._lock:
            self._update(-count, day)

    def _update(self, change: int, day: dt.date) -> None:
        connection = self._connect()
        try:
            connection.execute("UPDATE usage SET sent = MAX(sent + ?, 0) WHERE day = ?", (change, day.isoformat()))
        finally:
            connection.close()
