"""SMTP as a provider of the sending core (`sending/provider.py`): one message per recipient.

A batch is up to `MESSAGES_PER_POST` messages, one per recipient, posted one after another
over one connection. Each is recorded in the ledger on its own, just before its DATA, and
its answer after (`MessageRecords`), so every reader's message has its own exactly-once
record; a send killed in the middle of a batch leaves nothing of the messages not begun.
A batch of one message a post cost the send a future, a commit and a wake-up of the
sending thread per message: a send ran at 0.55x the speed of plain smtplib. The
connections (`smtp.connections`, 4 by default) are the send's workers, one per thread,
each kept open for many messages. Before each message the send waits its turn under
`smtp.rate` and takes one from the day's allowance (`smtp.daily_limit`); a day used up,
or the provider's own quota answer, stops the send in one line saying when to go on.
"""

from __future__ import annotations

import contextlib
import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from newsletter.config import Settings, SmtpSettings, smtp_password
from newsletter.errors import ConfigError, SendError, scrub
from newsletter.merge import Reader, unsubscribe_link, values_for
from newsletter.providers.smtp.connection import (
    Deferred, MessageNotMade, NotConnected, QuotaReached, Reconnect, Refused, SmtpConnection, SmtpSetupError,
    Uncertain,
)
from newsletter.providers.smtp.message import MessageBuilder, Recipient
from newsletter.sending.pacing import DailyAllowance, Pace
from newsletter.sending.provider import STOPPED, HeldBatch, Hold, MessageRecords, Outcome, RetryPolicy, Row, Wait
from newsletter.sending.transport import PreparedBatch, Response
from newsletter.subscribers.store import COLUMNS, FIRST_NAME, LAST_NAME

if TYPE_CHECKING:
    from newsletter.doctor import DoctorReport
    from newsletter.render import RenderedEmail

_SLUG = re.compile(r"[^a-z0-9]+")
# Messages a post carries over its connection: enough that the sending thread's work per post
# (a future, a progress update) is paid once per many messages; few enough that a batch
# keeps little in memory (~20 KB a message) and the last ones spread over every connection.
MESSAGES_PER_POST = 20


def list_id(settings: Settings) -> str:
    """`Name <label.domain>` (RFC 2919): the same for every issue, so mail programs can filter on it."""
    label = _SLUG.sub("-", settings.name.lower()).strip("-") or "newsletter"
    return f"{settings.name} <{label}.{settings.sender.email.rpartition('@')[2]}>"


class NotRecorded(Exception):
    """The ledger could not record the message in flight before its DATA: it was not posted."""


def _before_data(recorded: Callable[[], None]) -> Callable[[], None]:
    def on_disk() -> None:
        try:
            recorded()
        except Exception as exc:  # noqa: BLE001 - whatever stops the record stops the DATA
            raise NotRecorded(str(exc) or type(exc).__name__) from None
    return on_disk


class SmtpBuilder:
    """One issue's messages: the parts encoded once, each recipient's message joined from them."""

    batch_size = MESSAGES_PER_POST
    records_each = True  # each message recorded in the ledger by the post, just before its DATA

    def __init__(self, settings: Settings, email: RenderedEmail, issue: str, *, proof: bool, dry_run: bool,
                 unsubscribe_links: Callable[[str], str] | None) -> None:
        # Each reader's link, chosen once: the signed one (signup:), unsubscribe_url, or none (a dry run).
        template = settings.unsubscribe_url
        self.unsubscribe_url: Callable[[str], str] = (
            unsubscribe_links if unsubscribe_links is not None
            else partial(unsubscribe_link, template) if template is not None else lambda _email: "")
        if dry_run:  # one .eml file a message
            self.batch_size, self.records_each = 1, False
        if unsubscribe_links is None and template is None:
            why = (f"{settings.config_path.name}: no way to unsubscribe: an SMTP send needs unsubscribe_url "
                   "(with {email}) or signup: (newsletter serve's signed links)")
            if not dry_run:
                raise SendError(why + ", before sending")
            warnings.warn(why + "; these messages have an empty unsubscribe link, and a real send is refused",
                          stacklevel=2)
        self._messages = MessageBuilder(
            sender=settings.sender, reply_to=settings.reply_to, subject=email.subject, text=email.text,
            html=email.html, list_id=list_id(settings),
            # Both kinds of own link are the publication's to answer: the signed one by
            # `newsletter serve`, unsubscribe_url by the page the editor set up for it.
            one_click=True, identity=f"{issue}{'-proof' if proof else ''}",
        )

    def personalizer(self, extra_columns: tuple[str, ...] = ()
                     ) -> Callable[[str, Row], bytes | Callable[[bool], bytes]]:
        """A dry run's message for a row; for a real send, how to make it (the connection does).

        A real send's messages are made by the thread that posts them, as the plain smtplib
        sender does: made in the sending thread, 20 at a time, they held the GIL while the
        connections' answers waited for it. They are made as DATA carries them (`wire`),
        once the connection knows whether its server takes 8-bit data.
        """
        names = (*COLUMNS, *extra_columns)
        unsubscribe_url = self.unsubscribe_url
        wire = self.records_each

        def message(address: str, row: Row, eight_bit: bool = True) -> bytes:
            link = unsubscribe_url(address)
            values = values_for(Reader(address, link, dict(zip(names, row, strict=False))))
            name = f"{row[FIRST_NAME]} {row[LAST_NAME]}".strip()
            return self._messages.message(Recipient(address, name, values, link or None), wire=wire,
                                          eight_bit=eight_bit)

        if not wire:
            return message
        return lambda address, row: partial(message, address, row)

    def body(self, personalizations: list[Any]) -> bytes:
        """A dry run's message (one a batch); a real post sends `PreparedBatch.messages`, one by one."""
        return b"" if self.records_each else bytes(personalizations[0])

    def schedule(self, send_at: int, batch_id: str | None) -> None:
        raise SendError("scheduled sends (send --at) need SendGrid: with provider: smtp, run the send at that time")


class SmtpTransport:
    """Delivers each one-message batch over the calling thread's own connection."""

    def __init__(self, smtp: SmtpSettings, password: str, sender: str,
                 on_close: Callable[[], None] | None = None) -> None:
        self._smtp = smtp
        self._password = password
        self.sender = sender
        self._on_close = on_close
        self._local = threading.local()
        self._connections: list[SmtpConnection] = []
        self._lock = threading.Lock()

    def _connection(self) -> SmtpConnection:
        connection: SmtpConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = SmtpConnection(self._smtp, self._password)
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def post(self, batch: PreparedBatch) -> Response:
        (recipient,) = batch.addresses
        return self.deliver(recipient, batch.body)

    def deliver(self, recipient: str, message: bytes | Callable[[bool], bytes],
                before_data: Callable[[], None] | None = None, *, wire: bool = False) -> Response:
        """One message over this thread's connection; `before_data` records it in flight (see `deliver`)."""
        answer = self._connection().deliver(self.sender, recipient, message, before_data, wire=wire)
        return Response(250, message_id=answer)

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
        if self._on_close is not None:
            self._on_close()


class SmtpProvider:
    """SMTP: any mail service's submission server, with its own pace and quota."""

    name = "smtp"
    display_name = "the SMTP server"
    can_schedule = False
    dry_run_file = "message-{number:05d}.eml"
    # One message a recipient: a dry run of 100,000 wrote 100,000 files of ~21 KB (2.3 GB, 35 s;
    # a list of 1,000,000, 23 GB). The first 100 show what readers get; every message is still built.
    dry_run_sample: int | None = 100

    def __init__(self, settings: Settings) -> None:
        assert settings.smtp is not None
        self._settings = settings
        self._smtp = settings.smtp
        self.concurrency = settings.smtp.connections
        self._pace = Pace(settings.smtp.rate)
        self._allowance = DailyAllowance(settings.root / "sent", settings.smtp.daily_limit)
        self._password = ""

    def secret(self) -> str:
        self._password = smtp_password(self._smtp)
        return self._password

    def builder(self, settings: Settings, email: RenderedEmail, issue: str, *, proof: bool, dry_run: bool,
                unsubscribe_links: Callable[[str], str] | None) -> SmtpBuilder:
        return SmtpBuilder(settings, email, issue, proof=proof, dry_run=dry_run, unsubscribe_links=unsubscribe_links)

    def transport(self, secret: str) -> SmtpTransport:
        # The day's allowance this send leased and did not use goes back when it ends.
        return SmtpTransport(self._smtp, secret, self._settings.sender.email, on_close=self._allowance.release)

    def doctor(self, create_group: str | None = None, retry: RetryPolicy | None = None,
               dns_deadline: float | None = None) -> DoctorReport:
        if create_group is not None:
            raise ConfigError("doctor --create-group makes a SendGrid unsubscribe group; with provider: smtp "
                              "readers unsubscribe at unsubscribe_url or through signup: (newsletter serve)")
        from newsletter.providers.smtp.doctor import check_smtp

        return check_smtp(self._settings, dns_deadline)

    def post(self, transport: Any, batch: PreparedBatch, policy: RetryPolicy, wait: Wait,
             hold: Hold | None = None) -> Outcome:
        """Deliver the batch's messages one after another: pace, allowance, retries of what may be
        retried, each message's outcome in `Outcome.each`; never raises.

        `hold` is the batch's `MessageRecords` when it carries `messages` (the send's own
        batches); a batch of one `body` (and no records) is posted as one message.
        """
        if not batch.messages:
            return self._post_one(transport, batch.addresses[0], batch.body, policy, wait, hold, None, 0)
        records = cast(MessageRecords, hold)
        outcomes: list[Outcome] = []
        for index, (address, message) in enumerate(zip(batch.addresses, batch.messages, strict=True)):
            outcome = self._post_one(transport, address, message, policy, wait, None, records, index)
            outcomes.append(outcome)
            records.answered(index, outcome)
            if outcome.fatal or outcome.state in ("failed", "refused", "unsent"):
                # The send stops: the rest of the batch is not posted (nor recorded), and sent next run.
                outcomes += [Outcome("unsent", error=STOPPED, attempts=0)] * (len(batch) - len(outcomes))
                break
        return replace(outcomes[0], each=tuple(outcomes))

    def _post_one(self, transport: Any, address: str, message: bytes | Callable[[bool], bytes],
                  policy: RetryPolicy, wait: Wait, hold: Hold | None, records: MessageRecords | None,
                  index: int) -> Outcome:
        try:
            return self._deliver_until_answered(transport, address, message, policy, wait, hold, records, index)
        except Exception as exc:  # noqa: BLE001 - outside any post: nothing of this message is in doubt
            return Outcome("unsent", fatal=True, error=self._unexpected("sending", exc))

    def _unexpected(self, doing: str, exc: BaseException) -> str:
        return f"unexpected error while {doing}: {type(exc).__name__}: {scrub(str(exc), self._password)}"

    def _deliver_until_answered(self, transport: Any, address: str, message: bytes | Callable[[bool], bytes],
                                policy: RetryPolicy, wait: Wait, hold: Hold | None,
                                records: MessageRecords | None, index: int) -> Outcome:
        attempts = 0
        held = HeldBatch(hold)  # recorded as waiting to be posted again, not in flight, while it waits
        while True:
            if not self._pace.wait(wait):
                return Outcome("unsent", error=STOPPED, attempts=attempts)
            if not self._allowance.use():
                status = self._allowance.status()
                return Outcome("unsent", fatal=True, attempts=attempts, resume_at=status.resets_at.timestamp(),
                               error=(f"the day's limit of {status.limit:,} messages (smtp.daily_limit) is reached: "
                                      f"{status.used:,} sent today; it resets at "
                                      f"{status.resets_at:%Y-%m-%d %H:%M} UTC, nothing more was posted"))
            problem = held.post_again()
            if problem:  # not recorded as in flight: not posted
                self._allowance.unuse()
                return Outcome("unsent", error=problem, attempts=attempts, fatal=True)
            attempts += 1
            # Queued for the ledger now, while MAIL and RCPT go: another connection's commit may take it.
            recorded = None if records is None else records.begin(index)
            try:
                # The send's own batches carry how to make each message, made by the connection that
                # posts it, ready for DATA (`SmtpBuilder.personalizer`).
                response = transport.deliver(address, message, recorded and _before_data(recorded),
                                             wire=records is not None)
            except NotRecorded as exc:  # the ledger could not take it: not posted, and the send stops
                self._allowance.unuse()
                return Outcome("unsent", error=str(exc), attempts=attempts - 1, fatal=True)
            except MessageNotMade as exc:  # nothing of it was posted
                self._allowance.unuse()
                return Outcome("unsent", fatal=True, attempts=attempts - 1,
                               error=self._unexpected(f"making the message for {address}",
                                                      cast(BaseException, exc.__cause__)))
            except Uncertain as exc:
                return Outcome("uncertain", error=str(exc), attempts=attempts)
            except Refused as exc:
                return Outcome("rejected", error=f"the server refused it: {exc}", attempts=attempts)
            except QuotaReached as exc:
                return Outcome("unsent", fatal=True, attempts=attempts - 1, error=(
                    f"the provider's quota is used up ({exc}); nothing more was posted"))
            except SmtpSetupError as exc:
                self._allowance.unuse()
                return Outcome("unsent", fatal=True, attempts=attempts - 1, error=str(exc))
            except (Reconnect, Deferred) as exc:
                # Nothing was delivered: the message goes again on a fresh exchange, later.
                self._allowance.unuse()
                problem = f"{exc}"
                if isinstance(exc, NotConnected) and attempts >= policy.attempts:
                    # Not this reader's failure: every message would meet the same greeting. The send
                    # stops in one line, this reader among those not yet sent.
                    return Outcome("unsent", fatal=True, attempts=attempts - 1, error=(
                        f"{problem}, {attempts} times; nothing was posted: the server is busy or down, "
                        "try again later"))
            except Exception as exc:  # noqa: BLE001 - it may have gone out: uncertain, and stop
                return Outcome("uncertain", fatal=True, attempts=attempts, error=self._unexpected("posting", exc))
            else:
                return Outcome("accepted", message_id=response.message_id, status=response.status,
                               attempts=attempts)
            finally:
                if recorded is not None:
                    # A post that ended before DATA still waits for its record, so that the send
                    # knows its row and settles it (forgets it, marks it waiting); never left in flight.
                    with contextlib.suppress(Exception):  # not recorded: nothing to settle
                        recorded()
            if attempts >= policy.attempts:
                return Outcome("failed", attempts=attempts,
                               error=f"{problem} (gave up after {attempts} attempts)")
            if records is not None:  # waiting, not in flight: a crash now leaves nothing in doubt
                try:
                    records.waiting(index)
                except Exception:  # noqa: BLE001 - it stays in flight, so uncertain should the process die
                    pass
            else:  # waiting, not in flight: a crash now leaves nothing in doubt
                held.wait()
            if wait(policy.delay(attempts)):
                return Outcome("unsent", error=STOPPED, attempts=attempts)
