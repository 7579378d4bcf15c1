"""Scheduled sends at SendGrid: its limits, the batch id every request of the send shares, and cancelling it.

`send --at WHEN` posts every request now, each with the same `send_at` (unix seconds)
and `batch_id`: SendGrid holds them until then, and the batch lets them be cancelled
together. SendGrid's rules (FACTS.md, "Scheduled sends"): `send_at` at most 72 hours
ahead; no pause or cancel later than 10 minutes before it, checked here before SendGrid
is asked anything. Reading WHEN as a person writes it is neutral (`newsletter/when.py`);
the core reaches this module only through `SendGridScheduler` (`sending/provider.py`'s
`Scheduler`, chosen by `providers.scheduler_for`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from newsletter.config import Settings
from newsletter.errors import SendGridError
from newsletter.providers.sendgrid.client import Call, SendGridClient
from newsletter.sending.provider import RetryPolicy
from newsletter.when import ScheduleError, describe, minutes, read_when, too_late_to_cancel

MAX_AHEAD = dt.timedelta(hours=72)
CANCEL_CUTOFF = dt.timedelta(minutes=10)
CANCEL_NEEDS = "can cancel scheduled sends (Mail Send > Scheduled Sends)"

CREATE_BATCH = Call("a batch id for the scheduled send", "creating",
                    needs="the scope mail.batch.create (Mail Send > Scheduled Sends)")
CANCEL = Call("the scheduled send", "cancelling", needs="the scope user.scheduled_sends.create "
              "(Mail Send > Scheduled Sends)", idempotent=False)


def parse_when(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """`--at WHEN` as SendGrid would hold mail until it: in the future, and at most 72 hours ahead."""
    now = now or dt.datetime.now(dt.UTC)
    when = read_when(text, now)
    if when - now > MAX_AHEAD:
        raise ScheduleError(f"--at {describe(when)} is more than {int(MAX_AHEAD.total_seconds()) // 3600} hours "
                            "ahead, which SendGrid refuses: nothing was sent")
    return when


class SendGridScheduler:
    """SendGrid as the core's `Scheduler`: `send --at` and `cancel` through its batches."""

    display_name = "SendGrid"
    cancel_cutoff = CANCEL_CUTOFF

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def parse_when(self, text: str, now: dt.datetime) -> dt.datetime:
        return parse_when(text, now)

    def new_batch(self, secret: str, retry: RetryPolicy | None = None) -> str:
        settings = self._settings
        return create_batch(SendGridClient(settings.sendgrid_url, secret, settings.sendgrid.timeout, retry))

    def cancel(self, batch_id: str, send_at: dt.datetime, retry: RetryPolicy | None = None) -> bool:
        client = SendGridClient.for_settings(self._settings, CANCEL_NEEDS, retry)
        return cancel_batch(client, batch_id, send_at).already


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
    too_late = too_late_to_cancel(send_at, now or dt.datetime.now(dt.UTC), CANCEL_CUTOFF)
    if too_late:
        raise ScheduleError(f"too late to cancel: the send time {describe(send_at)} {too_late}, and SendGrid "
                            f"refuses a cancel later than {minutes(CANCEL_CUTOFF)} minutes before it; "
                            "SendGrid was not asked")
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
