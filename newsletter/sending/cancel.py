"""`newsletter cancel ISSUE`: call off a scheduled send before the provider delivers it.

The cancel is for the batch the send's requests share, through the provider's
`Scheduler` (SendGrid's: `POST /v3/user/scheduled_sends`, status `cancel`). A provider
refuses one later than its cutoff before the send time (SendGrid: 10 minutes), so that
is checked first, and then it is asked nothing. Once the provider has it, the ledger
marks those recipients cancelled: they do not have the issue, and a later
`newsletter send ISSUE` (now, or `--at` a new time, in a new batch) sends to them again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from newsletter.config import Settings
from newsletter.content import issue_folder
from newsletter.errors import SendError, where
from newsletter.providers import scheduler_for
from newsletter.sending.ledger import (
    Ledger, Schedule, SendLock, issue_schedule, ledger_path, lock_path, old_ledger_path,
)
from newsletter.sending.provider import RetryPolicy, Scheduler
from newsletter.when import ScheduleError, describe, minutes, too_late_to_cancel


@dataclass(frozen=True)
class CancelPlan:
    """A scheduled send that can still be cancelled; `run()` cancels it."""

    settings: Settings
    issue: str
    schedule: Schedule
    scheduler: Scheduler
    retry: RetryPolicy | None = None  # the provider's calls (None: its client's own)

    @property
    def send_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.schedule.send_at, dt.UTC)

    def run(self) -> CancelReport:
        lock = SendLock(lock_path(self.settings, self.issue), old_ledger_path(self.settings, self.issue))
        lock.acquire(self.issue)  # no send of the issue posts into the batch while it is cancelled
        try:
            already = self.scheduler.cancel(self.schedule.batch_id, self.send_at, self.retry)
            ledger = Ledger(ledger_path(self.settings, self.issue), self.issue, create=False)
            try:
                recipients = ledger.cancel(self.schedule.batch_id)
            finally:
                ledger.close()
        finally:
            lock.release()
        return CancelReport(self.issue, self.send_at, self.schedule.batch_id, recipients, already)


@dataclass(frozen=True)
class CancelReport:
    issue: str
    send_at: dt.datetime
    batch_id: str
    recipients: int
    already: bool

    def lines(self) -> list[str]:
        head = (f"Cancelled the send of {self.issue} scheduled for {describe(self.send_at)} (batch {self.batch_id})"
                + (": SendGrid had it cancelled already" if self.already else ""))
        return [head,
                f"  {self.recipients:,} recipient{'s' if self.recipients != 1 else ''} will not get it; "
                f"`newsletter send {self.issue}` sends to them again (now, or --at a new time)."]


def prepare_cancel(settings: Settings, issue: str, now: dt.datetime | None = None,
                   retry: RetryPolicy | None = None) -> CancelPlan:
    """The standing scheduled send of `issue`, refused at once when it is too late to cancel."""
    scheduler = scheduler_for(settings)
    if scheduler is None:
        raise ScheduleError(f"cancel is for sends scheduled with send --at, which needs SendGrid (provider: sendgrid); "
                            f"through {settings.provider} an issue goes when it is sent, so there is nothing to cancel")
    name = issue_folder(settings, issue).name
    schedule = issue_schedule(settings, name)
    if schedule is None:
        path = ledger_path(settings, name)
        raise SendError(f"{name} has no scheduled send to cancel"
                        + (f" ({where(path)} records none standing)" if path.exists() else " (it was never sent)"))
    plan = CancelPlan(settings, name, schedule, scheduler, retry)
    too_late = too_late_to_cancel(plan.send_at, now or dt.datetime.now(dt.UTC), scheduler.cancel_cutoff)
    if too_late:
        service = scheduler.display_name
        raise ScheduleError(f"too late to cancel {name}: its send time {describe(plan.send_at)} {too_late}, and "
                            f"{service} refuses a cancel later than {minutes(scheduler.cancel_cutoff)} minutes "
                            f"before it; {service} was not asked")
    return plan
