"""What a send did, as the CLI shows it: counts, the addresses it names, why it stopped.

Kept apart from the send's run (`run.py`), which fills a `SendReport` as answers come in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.errors import SendError, where

UNCERTAIN_SHOWN = 50  # addresses a report lists; `newsletter status ISSUE --uncertain` has all
INVALID_SHOWN = 10  # rows that are not addresses a report names, with their line in the list


@dataclass
class SendReport:
    """What a send did; recipients are counted once each."""

    issue: str
    subject: str
    list_name: str
    dry_run: bool = False
    proof: bool = False
    accepted: int = 0
    skipped: int = 0       # already accepted by an earlier run
    failed: int = 0
    uncertain: int = 0     # this run's and earlier runs' (not posted again)
    remaining: int = 0     # not posted because the send stopped
    pending: int = 0       # in a request of another send running now (dry runs, counts)
    duplicates: int = 0
    left: int = 0          # unsubscribed (or gone from the list) during the send: not mailed
    unsubscribed_twins: int = 0  # subscribed rows of an address another row holds as not subscribed
    invalid: int = 0
    too_long: int = 0      # merge values over SendGrid's limit: left out, or their request is refused
    selected: int = 0      # subscribed rows of the list that match the tags
    requests: int = 0
    in_flight: int = 0     # requests posted and not answered yet (for progress)
    elapsed: float = 0.0
    uncertain_emails: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # `ann@example.org: 550 5.1.1 …`, refused one by one
    provider: str = "SendGrid"  # who accepts, refuses or leaves in doubt, as messages name it
    left_emails: list[str] = field(default_factory=list)  # the first UNCERTAIN_SHOWN of `left`
    too_long_emails: list[str] = field(default_factory=list)
    invalid_rows: list[str] = field(default_factory=list)  # `subscribers/main.csv:4: 'ann at example'`
    stopped: str = ""      # why the send stopped before the end
    nothing_selected: str = ""  # why there was no one to send to, when the tags match nobody
    interrupted: bool = False  # Ctrl-C (or SIGTERM, SIGHUP): no new request was posted after it
    scheduled_at: dt.datetime | None = None  # when SendGrid delivers what was posted (None: at once)
    batch_id: str | None = None
    signals: list[int] = field(default_factory=list)  # the stop signals received, first first
    output: Path | None = None  # where a dry run wrote the bodies
    written: int = 0  # how many of them it wrote as files (a provider may write only the first ones)

    @property
    def done(self) -> int:
        """Recipients with an outcome in this run (for progress)."""
        return self.accepted + self.failed + self.uncertain

    @property
    def ok(self) -> bool:
        """True when every recipient has the issue: the exit status is 0 only then."""
        return not (self.failed or self.uncertain or self.remaining or self.invalid or self.too_long or self.stopped
                    or self.interrupted)

    @property
    def per_second(self) -> float:
        return self.accepted / self.elapsed if self.elapsed > 0 else 0.0

    def note_invalid(self, path: Path, number: int, address: str) -> None:
        """A row that is not an email address: counted, and named while few (a report names
        them so that they can be found and fixed; it once gave only their count)."""
        self.invalid += 1
        if len(self.invalid_rows) < INVALID_SHOWN:
            self.invalid_rows.append(f"{where(path, number)}: {address!r}" if address else f"{where(path, number)}: "
                                     "(no address)")

    def note_left(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.left += 1
            if len(self.left_emails) < UNCERTAIN_SHOWN:
                self.left_emails.append(key)

    def note_rejected(self, addresses: Iterable[str], why: str) -> None:
        """Recipients the provider refused one by one (SMTP's 550): failed, and named while few."""
        for address in addresses:
            self.failed += 1
            if len(self.rejected) < UNCERTAIN_SHOWN:
                self.rejected.append(f"{address}: {why}")

    def note_uncertain(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.uncertain += 1
            if len(self.uncertain_emails) < UNCERTAIN_SHOWN:
                self.uncertain_emails.append(key)


class SendStopped(SendError):
    """The send stopped early (SendGrid refused, or kept failing); `report` says how far it got."""

    def __init__(self, message: str, report: SendReport) -> None:
        super().__init__(message)
        self.report = report


class SendInterrupted(SendStopped):
    """Ctrl-C: the requests in flight got their answer, no new one was posted."""


@dataclass(frozen=True)
class Audience:
    """Who the plan would send to now: counted by `SendPlan.count`, for the confirmation."""

    to_send: int
    already: int
    uncertain: int
    nothing_selected: str = ""  # "Nothing to send: no subscribed address has tag T"
