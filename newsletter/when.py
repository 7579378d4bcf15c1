"""When a send goes out, as people write and read it: `--at WHEN` read, moments said back.

Neutral: the core, the CLI and a provider that schedules all import it. How far ahead
a provider holds mail, and how late it still calls a send off, are that provider's own
(SendGrid's: `providers/sendgrid/schedule.py`), asked through `sending/provider.py`'s
`Scheduler`. Nothing here loads an HTTP client, so a dry run, `status` and a send at
once load none.
"""

from __future__ import annotations

import datetime as dt
import re

from newsletter.errors import SendError

_LOCAL = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")


class ScheduleError(SendError):
    """A time the provider would not schedule at, or a cancel it would refuse."""


def read_when(text: str, now: dt.datetime) -> dt.datetime:
    """`--at WHEN` as an aware datetime in the future: ISO 8601 with an offset, or `YYYY-MM-DD HH:MM` local time.

    How far ahead it may be is the provider's to say (`Scheduler.parse_when`).
    """
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
    # Whole seconds: the ledger keeps a send time as unix seconds (and SendGrid takes no less).
    return when.replace(microsecond=0)


def too_late_to_cancel(send_at: dt.datetime, now: dt.datetime, cutoff: dt.timedelta) -> str:
    """Why a provider that refuses a cancel later than `cutoff` before `send_at` refuses it now; "" if it does not."""
    if send_at - now >= cutoff:
        return ""
    return "has passed" if send_at <= now else f"is less than {minutes(cutoff)} minutes away"


def minutes(span: dt.timedelta) -> int:
    return int(span.total_seconds()) // 60


def describe(when: dt.datetime) -> str:
    """A moment as a person reads it: local time, then UTC."""
    local = when.astimezone()
    utc = when.astimezone(dt.UTC)
    zone = f" {local.tzname()}" if local.tzname() else ""
    if local.utcoffset() == dt.timedelta(0):  # local time is UTC: one form says it all
        return f"{utc:%Y-%m-%d %H:%M} UTC"
    return f"{local:%Y-%m-%d %H:%M}{zone} ({utc:%Y-%m-%d %H:%M} UTC)"
