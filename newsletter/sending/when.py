"""When a send goes out: `--at WHEN` read against SendGrid's limits, and moments as people read them.

Apart from `sendgrid/schedule.py` (which asks SendGrid) so that a dry run, `status`
and a send at once load no HTTP client. SendGrid's rules (FACTS.md, "Scheduled sends"):
`send_at` at most 72 hours ahead; no pause or cancel later than 10 minutes before it.
"""

from __future__ import annotations

import datetime as dt
import re

from newsletter.errors import SendError

MAX_AHEAD = dt.timedelta(hours=72)
CANCEL_CUTOFF = dt.timedelta(minutes=10)
_LOCAL = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")


class ScheduleError(SendError):
    """A time SendGrid would not schedule at, or a cancel it would refuse."""


def parse_when(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """`--at WHEN` as an aware datetime: ISO 8601 with an offset, or `YYYY-MM-DD HH:MM` local time.

    It must be in the future and at most 72 hours ahead (SendGrid's limit).
    """
    now = now or dt.datetime.now(dt.UTC)
    given = text.strip()
    if _LOCAL.fullmatch(given):
        when = dt.datetime.strptime(given, "%Y-%m-%d %H:%M").astimezone()  # the machine's time zone
    else:
        try:
            when = dt.datetime.fromisoformat(given)
        except ValueError:
            raise ScheduleError(f"--at {text!r} is not a time: write 2026-12-02T09:00+01:00 (ISO 8601 with an "
                                "offset) or '2026-12-02 09:00' (local time)") from None
        if when.tzinfo is None:
            raise ScheduleError(f"--at {text!r} has no offset: add one (2026-12-02T09:00+01:00, or Z for UTC), "
                                "or write '2026-12-02 09:00' for local time")
    if when <= now:
        raise ScheduleError(f"--at {describe(when)} is not in the future (it is {describe(now)}): "
                            "nothing was sent")
    if when - now > MAX_AHEAD:
        raise ScheduleError(f"--at {describe(when)} is more than 72 hours ahead, which SendGrid refuses: "
                            "nothing was sent")
    # SendGrid takes whole seconds.
    return when.replace(microsecond=0)


def describe(when: dt.datetime) -> str:
    """A moment as a person reads it: local time, then UTC."""
    local = when.astimezone()
    utc = when.astimezone(dt.UTC)
    zone = f" {local.tzname()}" if local.tzname() else ""
    if local.utcoffset() == dt.timedelta(0):  # local time is UTC: one form says it all
        return f"{utc:%Y-%m-%d %H:%M} UTC"
    return f"{local:%Y-%m-%d %H:%M}{zone} ({utc:%Y-%m-%d %H:%M} UTC)"
