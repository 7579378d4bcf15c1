"""Scheduled sends at SendGrid: the batch id every request of the send shares, and cancelling it.

`send --at WHEN` posts every request now, each with the same `send_at` (unix seconds)
and `batch_id`: SendGrid holds them until then, and the batch lets them be cancelled
together. No pause or cancel is accepted later than 10 minutes before `send_at`
(FACTS.md, "Scheduled sends"): checked here, before SendGrid is asked anything.
Reading `--at` against SendGrid's limits is `sending/when.py`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from newsletter.errors import SendGridError
from newsletter.providers.sendgrid.client import Call, SendGridClient
from newsletter.sending.when import CANCEL_CUTOFF, ScheduleError, describe

CREATE_BATCH = Call("a batch id for the scheduled send", "creating",
                    needs="the scope mail.batch.create (Mail Send > Scheduled Sends)")
CANCEL = Call("the scheduled send", "cancelling", needs="the scope user.scheduled_sends.create "
              "(Mail Send > Scheduled Sends)", idempotent=False)


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
