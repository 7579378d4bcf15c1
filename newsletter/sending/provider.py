"""The seam between the sending core and a mail service: what a provider is, and what it answers.

A provider (SendGrid, SMTP) is two things, in the shape django-anymail gives each of its
backends:

- a `MessageBuilder`: what one request or message carries for a batch of recipients,
  how many recipients a batch holds, and whether it can be scheduled;
- a `Transport` (`transport.py`): posts one prepared batch, once.

Its `post` turns the transport's answers into one `Outcome` per batch, retrying what
may be retried within a `RetryPolicy`: accepted, refused (the send stops), rejected
(these recipients alone, the send goes on), uncertain (it may have gone: never posted
again without the user's say-so) or unsent (nothing went; the ledger forgets it).

A provider that can hold mail until a moment (`send --at`) and call it off (`cancel`) also
has a `Scheduler`, with its own limits.

A provider imports this module and `transport.py`, nothing else of `sending/`; the core
chooses one through `newsletter.providers.provider_for(settings)` (and `scheduler_for`)
and never names one.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from newsletter.sending.transport import PreparedBatch, Transport

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.doctor import DoctorReport
    from newsletter.render import RenderedEmail

Row = list[str]
# (address as sent, canonical list row) -> that recipient's part of a batch: each provider's own
# (SendGrid's JSON text, SMTP's whole message), handed back to its `body` as it is.
Personalizer = Callable[[str, Row], Any]

# unsent: nothing of this batch reached the provider in a way it could act on (the ledger forgets it).
# rejected: the provider refused these recipients for good (550 no such user); the send goes on.
State = Literal["accepted", "failed", "uncertain", "refused", "rejected", "unsent"]

STOPPED = "stopped before it was posted"


class OversizedRecipient(ValueError):
    """A recipient's merge values are over the provider's limit: their request would be refused."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try; tests shrink `backoff` so they do not sleep for seconds."""

    attempts: int = 6              # posts of one batch after 5xx or connection failures
    backoff: float = 1.0           # seconds before the second attempt; doubles each time
    max_backoff: float = 60.0
    max_rate_limit_wait: float = 1800.0  # total seconds one batch may wait on 429s
    max_rate_limited: int = 30           # 429s in a row one batch may get before the send stops
    # The longest one wait on a 429 may be; a reset further off stops the send at once,
    # saying when to resume, rather than waiting in silence (or on a skewed clock).
    max_reset_wait: float = 120.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based), with jitter."""
        base = min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1))
        # Jitter keeps concurrent workers (and other senders) from retrying in lockstep.
        return base * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class Outcome:
    """What came of posting one batch."""

    state: State
    message_id: str = ""
    status: int | None = None
    error: str = ""   # what the provider or the connection said: scrubbed and shortened where shown
    advice: str = ""  # what to do about it, our own words: always shown whole
    attempts: int = 1
    fatal: bool = False  # the send must stop (an uncertain outcome otherwise lets it go on)
    resume_at: float | None = None  # unix time a rate limit or quota resets, when the send stopped for it
    # A post of several messages answered one by one (SMTP): each message's outcome, in batch order.
    each: tuple[Outcome, ...] = ()


# Waits up to the given seconds; True as soon as the send is being stopped (`threading.Event.wait`).
Wait = Callable[[float], bool]
# Told True before a batch the provider asked to wait (a 429, a 4xx) waits to be posted again
# (it is not in flight then), False just before it is posted again; the send records both
# (`Ledger.mark_waiting`). If it raises, the batch is not posted again.
Hold = Callable[[bool], None]


@dataclass
class HeldBatch:
    """Whether a batch the provider asked to wait is recorded as waiting (not in flight), across its posts.

    One for each batch a provider posts again (SendGrid's 429s, SMTP's 4xx), so that the
    ledger knows it is not in flight while it waits and is in flight again before its next post.
    """

    hold: Hold | None
    waiting: bool = False

    def wait(self) -> None:
        """Record the batch as waiting to be posted again. One that could not be recorded so stays
        in flight, and so uncertain should the process die."""
        if self.hold is not None and not self.waiting:
            self.waiting = not self._tell(True)

    def post_again(self) -> str:
        """Record the batch in flight again, just before it is posted again: a crash during the post
        leaves it uncertain. "" when that is recorded (or there is nothing to tell); otherwise why
        not, and the batch must not be posted."""
        if not self.waiting:
            return ""
        problem = self._tell(False)
        self.waiting = bool(problem)
        return problem

    def _tell(self, waiting: bool) -> str:
        assert self.hold is not None
        try:
            self.hold(waiting)
        except Exception as exc:  # noqa: BLE001 - the ledger's failure, reported as the batch's outcome
            return str(exc) or type(exc).__name__
        return ""


class MessageRecords(Protocol):
    """How a post of several messages, each its own (SMTP), records each one in the ledger.

    Given as `hold` to a provider whose builder has `records_each`: the core records
    nothing of such a batch before the post; the post records each message as it starts.
    """

    def begin(self, index: int) -> Callable[[], None]:
        """Record message `index` of the batch in flight: queued now, for the next commit (another
        connection's may take it), and on disk once the call returned is (it raises if not).
        That call is made before DATA, and always before the post ends, whatever happened."""
        ...

    def answered(self, index: int, outcome: Outcome) -> None:
        """What came of message `index`: written with the next message's record, or after the post."""
        ...

    def waiting(self, index: int) -> None:
        """Message `index` was deferred and waits to be posted again: not in flight (a crash forgets it)."""
        ...


class MessageBuilder(Protocol):
    """One issue's requests (or messages) for one provider, everything shared built once."""

    batch_size: int  # recipients per request

    def personalizer(self, extra_columns: tuple[str, ...] = ()) -> Personalizer:
        """How to write one recipient's part of a batch from their canonical list row."""
        ...

    def body(self, personalizations: list[Any]) -> bytes:
        """One request: these recipients' parts and the shared content."""
        ...

    def schedule(self, send_at: int, batch_id: str | None) -> None:
        """Deliver every later body at `send_at` (providers that can schedule)."""
        ...


class Provider(Protocol):
    """One mail service: its builder, its transport, how it reads its answers."""

    name: str          # as `provider:` of newsletter.yaml says it
    display_name: str  # as messages name it: "SendGrid", "the SMTP server"
    can_schedule: bool
    concurrency: int   # batches in flight at once unless --concurrency says otherwise
    dry_run_file: str  # the name of each body a dry run writes: `request-{number:05d}.json`
    # How many bodies a dry run writes as files, the first ones (None: every one); the rest are built and counted.
    dry_run_sample: int | None

    def secret(self) -> str:
        """The key or password a real send needs, from the environment; `ConfigError` when missing."""
        ...

    def builder(self, settings: Settings, email: RenderedEmail, issue: str, *, proof: bool, dry_run: bool,
                unsubscribe_links: Callable[[str], str] | None) -> MessageBuilder:
        """The issue's builder; `SendError` when the issue cannot be sent this way (no unsubscribe link)."""
        ...

    def transport(self, secret: str) -> Transport:
        """Where real batches go; it connects on the first post."""
        ...

    def post(self, transport: Transport, batch: PreparedBatch, policy: RetryPolicy, wait: Wait,
             hold: Hold | None = None) -> Outcome:
        """Post `batch` until it has a definite outcome; never raises."""
        ...

    def doctor(self, create_group: str | None = None, retry: RetryPolicy | None = None,
               dns_deadline: float | None = None) -> DoctorReport:
        """`newsletter doctor`: the account or server checked against newsletter.yaml; the account's
        calls retried as `retry` says, the DNS asked within `dns_deadline` seconds (None: the defaults)."""
        ...


class Scheduler(Protocol):
    """A provider that holds an issue's mail until a moment (`send --at`) and can call it off (`cancel`).

    Its limits are its own (SendGrid: at most 72 hours ahead, no cancel in the last 10 minutes).
    """

    display_name: str            # as messages name it: "SendGrid"
    cancel_cutoff: dt.timedelta  # no cancel is accepted later than this before the send time

    def parse_when(self, text: str, now: dt.datetime) -> dt.datetime:
        """`--at WHEN` as the moment to deliver at; `ScheduleError` when this provider would not hold mail until then."""
        ...

    def new_batch(self, secret: str, retry: RetryPolicy | None = None) -> str:
        """The id every body of a new scheduled send shares, so that it is cancelled together."""
        ...

    def cancel(self, batch_id: str, send_at: dt.datetime, retry: RetryPolicy | None = None) -> bool:
        """Call the batch off (reading the key it needs); True when the provider had it cancelled already.

        `ScheduleError`, and the provider not asked, when it is too late by `cancel_cutoff`.
        """
        ...
