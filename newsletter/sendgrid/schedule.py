"""Scheduled sends: when, the batch id every request of the send shares, and cancelling it.

`send --at WHEN` posts every request now, each with the same `send_at` (unix seconds)
and `batch_id`: SendGrid holds them until then, and the batch lets them be cancelled
together. SendGrid's rules (FACTS.md, "Scheduled sends"):
- `send_at` at most 72 hours ahead; a time already past sends at once;
- no pause or cancel later than 10 minutes before `send_at`: checked here, before
  SendGrid is asked anything.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from newsletter.errors import SendError, SendGridError
from newsletter.sendgrid.client import Call, SendGridClient

MAX_AHEAD = dt.timedelta(hours=72)
CANCEL_CUTOFF = dt.timedelta(minutes=10)
_LOCAL = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")

CREATE_BATCH = Call("a batch id for the scheduled send", "creating",
                    needs="the scope mail.batch.create (Mail Send > Scheduled Sends)")
CANCEL = Call("the scheduled send", "cancelling", needs="the scope user.scheduled_sends.create "
              "(Mail Send > Scheduled Sends)", idempotent=False)


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


def create_batch(client: SendGridClient) -> str:
    """A new batch id (`POST /v3/mail/batch`)."""
    answer = client.post("/v3/mail/batch", CREATE_BATCH)
    batch_id = answer.body.get("batch_id") if isinstance(answer.body, dict) else None
    if not isinstance(batch_id, str) or not batch_id:
        raise SendGridError("SendGrid answered POST /v3/mail/batch without a batch_id; nothing was sent")
    return batch_id


@dataclass(frozen=True)
class Cancelled:
    batch_id: str
    send_at: dt.datetime
    already: bool = False  # SendGrid had it cancelled already (an earlier cancel whose answer was lost)


def cancel_batch(client: SendGridClient, batch_id: str, send_at: dt.datetime,
                 now: dt.datetime | None = None) -> Cancelled:
    """Cancel the scheduled batch, unless it is too late by SendGrid's 10-minute rule (then ask nothing)."""
    now = now or dt.datetime.now(dt.UTC)
    if send_at - now < CANCEL_CUTOFF:
        when = "has passed" if send_at <= now else "is less than 10 minutes away"
        raise ScheduleError(f"too late to cancel: the send time {describe(send_at)} {when}, and SendGrid "
                            "refuses a cancel later than 10 minutes before it; SendGrid was not asked")
    try:
        client.post("/v3/user/scheduled_sends", CANCEL, {"batch_id": batch_id, "status": "cancel"})
    except SendGridError as exc:
        if exc.status == 400 and _status_of(client, batch_id) == "cancel":
            return Cancelled(batch_id, send_at, already=True)
        raise
    return Cancelled(batch_id, send_at)


def _status_of(client: SendGridClient, batch_id: str) -> str | None:
    """The pause or cancel SendGrid has for a batch, if any."""
    try:
        answer = client.get(f"/v3/user/scheduled_sends/{batch_id}", Call("the scheduled send's status"))
    except SendGridError:
        return None
    entries = answer.body if isinstance(answer.body, list) else []
    for entry in entries:
        if isinstance(entry, dict) and entry.get("batch_id") == batch_id:
            status = entry.get("status")
            return status if isinstance(status, str) else None
    return None
