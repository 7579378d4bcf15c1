"""What a send did, as the CLI shows it: counts, the addresses it names, why it stopped.

Kept apart from the send's run (`run.py`), which fills a `SendReport` as answers come in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.errors import SendError, where
from newsletter.when import describe

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

    def stopped_headline(self) -> str:
        """`Stopped issue-2 after 3.1 s: 3,000 sent, 11,000 not yet`: a send that ended before everyone."""
        what = (f"the dry run of {self.issue}" if self.dry_run
                else f"the proof of {self.issue}" if self.proof else self.issue)
        done = "written" if self.dry_run else "scheduled" if self.scheduled_at is not None else "sent"
        return (f"Stopped {what} after {self.elapsed:.1f} s: {self.accepted:,} {done}, "
                f"{self.remaining:,} not yet")

    def lines(self) -> list[str]:
        """The report as `newsletter send` prints it: the headline, the counts, and whom to look at."""
        out: list[str] = []
        if self.scheduled_at is not None and self.requests:
            if self.dry_run:
                out.append(f"Scheduled: a real send would be delivered at {describe(self.scheduled_at)}")
            else:
                batch = f" (batch {self.batch_id})" if self.batch_id else ""
                out.append(f"Scheduled: SendGrid delivers it at {describe(self.scheduled_at)}{batch}; "
                           f"`newsletter cancel {self.issue}` calls it off up to 10 minutes before")
        if self.nothing_selected:
            out.append(self.nothing_selected)
        if self.requests == 0:
            out.append(f"Nothing {'written' if self.dry_run else 'sent'}: {self.issue} "
                       f"({self.elapsed:.1f} s)")
            if self.nothing_selected and not (self.invalid or self.duplicates or self.too_long):
                return out  # a table of zeros would only blur those lines
        else:
            what = "Dry run of" if self.dry_run else ("Proof of" if self.proof else "Sent")
            if self.scheduled_at is not None and not self.dry_run:
                what = "Scheduled" if not self.proof else "Proof scheduled:"
            if not (self.dry_run or self.accepted):
                what = "Not sent:" if not self.proof else "Proof not sent:"
            # A rate only where something went through, over long enough to mean something:
            # "0 recipients/s", or 3,375/s for five addresses in no time, says nothing.
            rate = f"{self.per_second:,.0f} recipients/s, " if self.accepted and self.elapsed >= 1 else ""
            unit = "request" if self.provider == "SendGrid" else "message"  # SMTP: one message a recipient
            requests = f"{self.requests:,} {unit}{'s' if self.requests != 1 else ''}"
            if self.interrupted or (self.stopped and self.accepted):
                # Ctrl-C (or a refusal) part way: "Sent issue-2 in 3.1 s" read as if everyone had it.
                out.append(f"{self.stopped_headline()} ({rate}{requests})")
            else:
                out.append(f"{what} {self.issue} in {self.elapsed:.1f} s ({rate}{requests})")
        if self.output is not None:
            if self.provider == "SendGrid":
                out.append(f"Request bodies: {where(self.output)}/ (nothing was sent)")
            else:  # one message a recipient: a sample of them (every one was built and counted)
                which = (f"the first {self.written:,} of {self.requests:,}" if self.written < self.requests
                         else f"all {self.written:,}")
                out.append(f"Messages: {where(self.output)}/ ({which}, as a mail program opens them; nothing was sent)")
        rows = [("would send" if self.dry_run else "accepted", self.accepted,
                 "written, not sent" if self.dry_run else ""), ("skipped", self.skipped, "already sent"),
                ("failed", self.failed, ""), ("uncertain", self.uncertain, "no answer came")]
        rows += [(label, count, note) for label, count, note in (
            ("not sent", self.remaining, "the send stopped; run it again"),
            ("pending", self.pending, "in a request of the send running now"),
            ("left", self.left, "unsubscribed during the send: not mailed"),
            ("duplicates", self.duplicates, "same address twice in the list"),
            ("not mailed", self.unsubscribed_twins, "another row of the address is not subscribed"),
            ("invalid", self.invalid, "not an email address; fix the list"),
            ("too long", self.too_long, "merge values over SendGrid's 10,000 bytes")) if count]
        for label, count, note in rows:
            out.append(f"  {label:<10} {count:>9,}" + (f"  ({note})" if note and count else ""))
        if self.requests == 0 and self.skipped and self.ok:
            out.append(f"Everyone already has {self.issue}: nothing was sent.")
        if self.invalid:
            out.append(f"Not everyone selected got it: {self.invalid:,} row{'s are' if self.invalid != 1 else ' is'} "
                       f"not an email address; fix {'them' if self.invalid != 1 else 'it'} in list "
                       f"{self.list_name} and run `newsletter send {self.issue}` again:")
            out += _named(self.invalid_rows, self.invalid, ellipsis="…")
        if self.too_long:
            out.append(f"Left out: the merge values of {self.too_long:,} subscriber"
                       f"{'s are' if self.too_long != 1 else ' is'} over SendGrid's 10,000 bytes; shorten them "
                       f"in list {self.list_name} and run `newsletter send {self.issue}` again:")
            for address in self.too_long_emails[:20]:
                out.append(f"  {address}")
        if self.rejected:
            out.append(f"Refused by {self.provider}: {self.failed:,} recipient{'s' if self.failed != 1 else ''} "
                       "(the others were sent); fix or remove them in the list:")
            out += _named(self.rejected, self.failed, f" (newsletter status {self.issue})")
        if self.left:
            out.append(f"Not mailed: {self.left:,} unsubscribed or left the list during the send:")
            out += _named(self.left_emails, self.left)
        if self.uncertain:
            out.append(f"Uncertain: {self.provider} may or may not have accepted these {self.uncertain:,} "
                       f"(check {'its activity feed' if self.provider == 'SendGrid' else 'the sent mail of the account'}); "
                       f"`newsletter send {self.issue} --retry-uncertain` sends to them:")
            out += _named(self.uncertain_emails, self.uncertain, f" (newsletter status {self.issue} --uncertain)")
        return out

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
    issue: str = ""

    def lines(self) -> list[str]:
        """The count said before the question; with no one to send to, why."""
        lines = [f"Recipients: {self.to_send:,} will receive it, {self.already:,} already have"
                 + (f", {self.uncertain:,} uncertain (see --retry-uncertain)" if self.uncertain else "")]
        if self.to_send == 0:
            lines.append(self.nothing_selected or (
                f"Everyone selected already has {self.issue}: nothing to send." if self.already
                else "Nothing to send."))
        return lines


def _named(shown: Sequence[str], total: int, where_the_rest: str = "", ellipsis: str = "...") -> list[str]:
    """The rows or addresses a report names, two spaces in, then `... and N more` for those it
    counted but did not keep (and where to find them, `where_the_rest`)."""
    lines = [f"  {name}" for name in shown]
    if total > len(shown):
        lines.append(f"  {ellipsis} and {total - len(shown):,} more{where_the_rest}")
    return lines
