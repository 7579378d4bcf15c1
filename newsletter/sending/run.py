"""The run of a send: the loop that posts a plan's batches, its concurrency, the stop signals,
and the ledger records written before each post and as each answer comes in.

`run_send` takes a `SendPlan` (plan.py) and streams its recipients
into batches, records each in the ledger before it is posted, and posts up to
`concurrency` at once through one `Transport`; what came of it is a `SendReport`.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from newsletter.content import ISSUE_FILE, new_issue_id
from newsletter.errors import SendError, SubscriberError, scrub, where
from newsletter.providers import scheduler_for
from newsletter.sending.dryrun import DRY_RUN_DIR, DryRunTransport, post_dry_run
from newsletter.sending.ledger import (
    ACCEPTED, FAILED, ISSUE_ID, UNCERTAIN, IssueIdentity, Ledger, LedgerWriteError, SendLock,
    earlier_send_without_ledger, ledger_path, lock_path, move_old_ledger, old_ledger_path,
)
from newsletter.sending.plan import Recipient, SendPlan
from newsletter.sending.provider import STOPPED, MessageBuilder, Outcome, OversizedRecipient
from newsletter.sending.report import SendInterrupted, SendReport, SendStopped
from newsletter.sending.transport import PreparedBatch, Transport
from newsletter.subscribers.store import ListWatch, subscribed_keys
from newsletter.files.yamledit import edit_document, set_value


T = TypeVar("T")

ERROR_CHARS = 300  # of a server's or library's message kept in an error line and the ledger

Progress = Callable[[SendReport], None]


@dataclass(frozen=True)
class _Batch(PreparedBatch):
    """A batch with the personalizations its body was built from, to build it again without
    someone who unsubscribed while it waited to be posted."""

    personalizations: list[Any] = field(default_factory=list, repr=False)


class _Leavers:
    """Who the list still holds as subscribed, read again only when the list file changed.

    `subscribed` is None while the file is as the send read it: then a batch costs a stat().
    """

    def __init__(self, path: Path, reread: Callable[[Path], set[str]] = subscribed_keys) -> None:
        self.watch = ListWatch(path)
        self.reread = reread
        self.subscribed: set[str] | None = None

    def refresh(self) -> set[str] | None:
        if self.watch.changed():
            self.subscribed = self.reread(self.watch.path)
        return self.subscribed



def run_send(plan: SendPlan, progress: Progress | None = None, on_stop: Callable[[], None] | None = None,
             reread_list: Callable[[Path], set[str]] | None = None) -> SendReport:
    """Send `plan`; returns the report, or raises `SendStopped` when the provider refused the send.

    `on_stop` is called once the first stop signal (Ctrl-C, SIGTERM, SIGHUP) arrives,
    so the CLI can say that the requests in flight are being waited for. `reread_list`
    reads who the list holds as subscribed once its file changed (None: `subscribed_keys`).
    """
    return SendRun(plan, reread_list).run(progress, on_stop)


def nothing_left_to_send(plan: SendPlan) -> None:
    """Record that `plan`, counted before the question, has nobody left to post to, as a run
    would: the readers an earlier send stopped before (who have since left the list, say) are
    no longer counted as not sent. Otherwise `status` kept telling to run the send again, and
    the send kept saying there was nothing to send. Nothing is written while a send runs.
    """
    if not plan.records_sending:
        return
    path = ledger_path(plan.settings, plan.issue)
    lock = SendLock(lock_path(plan.settings, plan.issue), old_ledger_path(plan.settings, plan.issue))
    if not path.exists() or not lock.try_acquire():
        return
    try:
        ledger = Ledger(path, plan.issue, create=False)
        try:
            ledger.recover()
            if ledger.counts().not_sent:
                reached = ledger.reached()
                ledger.plan_send(reached, plan.command, reached)
        finally:
            ledger.close()
    finally:
        lock.release()


class SendRun:
    """One run of a `SendPlan`: posts it, records it, and reports what came of it."""

    def __init__(self, plan: SendPlan, reread_list: Callable[[Path], set[str]] | None = None) -> None:
        self.plan = plan
        self._reread_list = reread_list or subscribed_keys
        self.settings = plan.settings
        self.issue = plan.issue
        self.options = plan.options
        self.builder = plan.builder
        self.provider = plan.provider
        self.retry = plan.retry
        self._secret = plan.secret
        self.command = plan.command
        self._rest_counted = True  # whether `report.remaining` holds everyone the run did not reach

    def run(self, progress: Progress | None = None, on_stop: Callable[[], None] | None = None) -> SendReport:
        """Send; returns the report, or raises `SendStopped` when SendGrid refused the send.

        `on_stop` is called once the first stop signal (Ctrl-C, SIGTERM, SIGHUP) arrives,
        so the CLI can say that the requests in flight are being waited for.
        """
        report = SendReport(self.issue, self.plan.subject, self.options.list_name,
                            dry_run=self.options.dry_run, proof=self.options.proof,
                            provider=self.provider.display_name)
        started = time.monotonic()
        lock = None
        if self.plan.records_sending:
            # Older versions' build/ISSUE/send.lock too: they and this one never send the issue at once.
            lock = SendLock(lock_path(self.settings, self.issue), old_ledger_path(self.settings, self.issue))
            lock.acquire(self.issue)
        try:
            if self.plan.records_sending:
                # One ledger for the whole send; with the lock held, whatever is still in
                # flight belongs to a dead process and becomes uncertain.
                move_old_ledger(self.settings, self.issue)
                assert lock is not None
                ledger = self._open_ledger(lock)
                try:
                    ledger.recover()
                    known = ledger.states()
                    # Before anything is posted: killed part way, the send leaves in the ledger
                    # whom it meant to reach, and `newsletter status` says how many it did not.
                    ledger.plan_send(self.plan.reach(known), self.command, len(known))
                    ledger.begin_send(self._identity_with_id(ledger))
                except BaseException:
                    ledger.close()
                    raise
            else:
                known, ledger = self.plan.earlier_outcomes(), Ledger(None)
            transport = self.plan.transport
            stop = threading.Event()
            # Looked at before the list is read, so a change made during the reading is seen too.
            leavers = None if self.options.proof else _Leavers(self.plan.list_file, self._reread_list)
            try:
                self._start_schedule(report)
                with _stop_on_signals(stop, report.signals, on_stop):
                    self._run(ledger, transport, self.plan.recipients(known, report), report, progress, stop, leavers)
                if self.plan.records_sending:
                    self._settle_plan(ledger, report)
            finally:
                transport.close()
                if self.plan.records_sending:
                    _end_send(ledger)
                ledger.close()
        finally:
            if lock is not None:
                lock.release()
        report.elapsed = time.monotonic() - started
        self.plan.refuse_unknown_tags(report)
        report.nothing_selected = self.plan.nothing_selected(report)
        if self.options.dry_run:
            report.output = self.plan.folder / DRY_RUN_DIR
            report.written = transport.written if isinstance(transport, DryRunTransport) else report.requests
        if report.interrupted:
            raise SendInterrupted(f"interrupted: run `{self.command}` again to send to the rest", report)
        if report.stopped:
            raise SendStopped(report.stopped, report)
        return report

    # -- the parts of a run

    def _settle_plan(self, ledger: Ledger, report: SendReport) -> None:
        """The plan made true at the end of a run that was not killed: whom the ledger holds, and
        those the run did not reach (`report.remaining`). Whoever left the list during the send,
        or was left out (merge values too long), was counted by the plan but is not to be sent
        to, and after a complete send nobody is left; a list that could not be read to its end
        keeps the plan's count. The send's own report or error is what is said if this fails."""
        if not self._rest_counted:
            return
        try:
            reached = ledger.reached()
            ledger.plan_send(reached + report.remaining, self.command, reached)
        except LedgerWriteError:
            pass  # the plan's count stands: never fewer than were left out

    def _open_ledger(self, lock: SendLock) -> Ledger:
        """The issue's ledger, made when there is none, unless a trace shows an earlier send
        (checked again here, under the lock: the ledger may have gone since `prepare_send`).
        The lock file then says that the issue has a ledger: a trace if it goes missing."""
        path = ledger_path(self.settings, self.issue)
        if not path.exists() and not self.options.first_send:
            earlier = earlier_send_without_ledger(self.settings, self.plan.email.issue)
            if earlier:
                raise SendError(earlier)
        ledger = Ledger(path, self.issue)
        lock.note_ledger(path)
        return ledger

    def _identity_with_id(self, ledger: Ledger) -> IssueIdentity:
        """The issue's identity, after giving an issue without `id:` one in its issue.yaml.

        Without an id, an issue was known only by its subject and articles: renamed and
        then a typo fixed, it was sent to everyone again. The id is written (comments kept)
        before the first request, and recorded in the ledger by `begin_send`; the one the
        ledger already records, if the line was lost. An issue.yaml that cannot be written
        stops the send: the link would be lost.
        """
        identity = IssueIdentity.of(self.plan.email.issue)
        if identity.issue_id:
            return identity
        issue_id = ledger.meta().get(ISSUE_ID) or new_issue_id()
        path = self.plan.email.issue.folder / ISSUE_FILE
        try:
            with edit_document(path, SendError) as data:
                set_value(data, ("id",), issue_id, path, SendError)
        except SendError as exc:
            raise SendError(f"{exc}: a send writes `id: {issue_id}` into an issue without one, so that its "
                            f"ledger still knows it after the folder is renamed; make {where(path)} writable "
                            "(or add that line yourself) and send again; nothing was sent") from None
        return replace(identity, issue_id=issue_id)

    def _start_schedule(self, report: SendReport) -> None:
        """Give every body of a scheduled send its moment and batch (created now, for a new one)."""
        send_at, batch_id = self.plan.timing.send_at, self.plan.timing.batch_id
        if send_at is None:
            return
        if batch_id is None and not self.options.dry_run:
            scheduler = scheduler_for(self.settings)
            assert scheduler is not None and self._secret is not None  # prepare_send refused --at without one
            # the send's own policy: one call, retried as its posts are
            batch_id = scheduler.new_batch(self._secret, self.retry)
            self.plan.timing = replace(self.plan.timing, batch_id=batch_id)
        self.builder.schedule(int(send_at.timestamp()), batch_id)
        report.scheduled_at, report.batch_id = send_at, batch_id

    def _batches(self, recipients: Iterator[Recipient], report: SendReport) -> Iterator[_Batch]:
        builder = self.builder
        size = builder.batch_size
        keys: list[str] = []
        addresses: list[str] = []
        personalizations: list[Any] = []
        number = 0
        for key, address, row, personalization in recipients:
            try:
                personalizations.append(personalization(address, row))
            except OversizedRecipient:
                report.too_long += 1
                report.too_long_emails.append(address)
                continue
            keys.append(key)
            addresses.append(address)
            if len(keys) == size:
                number += 1
                yield self._batch(number, keys, tuple(addresses), personalizations)
                keys, addresses, personalizations = [], [], []
        if keys:
            yield self._batch(number + 1, keys, tuple(addresses), personalizations)

    def _batch(self, number: int, keys: list[str], addresses: tuple[str, ...], personalizations: list[Any]) -> _Batch:
        messages = tuple(personalizations) if _records_each(self.builder) else ()
        return _Batch(number, keys, self.builder.body(personalizations), addresses, messages=messages,
                      personalizations=personalizations)

    def _while_readable(self, batches: Iterator[_Batch], report: SendReport,
                        stop: threading.Event) -> Iterator[_Batch]:
        """The batches, until the list cannot be read: a list edited in place during the send
        (its rows are streamed as the send goes) once raised out of the loop, leaving the
        requests in flight unrecorded, so uncertain."""
        try:
            yield from batches
        except SubscriberError as exc:
            self._list_unreadable(exc, report, stop)

    def _list_unreadable(self, exc: SubscriberError, report: SendReport, stop: threading.Event) -> None:
        """Stop the send (the requests in flight get their answer recorded) over a list that cannot be read."""
        self._rest_counted = False  # who of it was not reached is not known: the plan's count stands
        report.stopped = report.stopped or (
            f"{exc}: the list changed during the send and cannot be read again; the send stopped and posted "
            f"nothing more: fix it and run `{self.command}` again")
        stop.set()

    def _without_leavers(self, batch: _Batch, leavers: _Leavers, report: SendReport) -> _Batch | None:
        """`batch` without the recipients no longer subscribed (named in the report); None if none is left."""
        subscribed = leavers.refresh()
        if subscribed is None or all(key in subscribed for key in batch.keys):
            return batch
        kept = [position for position, key in enumerate(batch.keys) if key in subscribed]
        report.note_left(key for key in batch.keys if key not in subscribed)
        if not kept:
            return None
        personalizations = [batch.personalizations[position] for position in kept]
        return self._batch(batch.number, [batch.keys[position] for position in kept],
                           tuple(batch.addresses[position] for position in kept), personalizations)

    def _run(self, ledger: Ledger, transport: Transport, recipients: Iterator[Recipient],
             report: SendReport, progress: Progress | None, stop: threading.Event,
             leavers: _Leavers | None = None) -> None:
        """Post every batch, at most `concurrency` in flight; only this thread writes the ledger.

        Each batch is recorded before it is posted, in one commit with the answers that
        came in since the last one: one fsync per request of 1,000 rather than two, and
        every answer is on disk before the next request goes out. Once `stop` is set
        (Ctrl-C, or the ledger failing), no new request is posted, waits for a retry end
        at once, and the requests already in flight get their answer recorded. Before
        each batch the ledger must still be the file at its path, and its recipients still
        subscribed when the list file changed since the send read it (`leavers`).

        A dry run writes each body in this thread, one at a time: a file waits on no
        one, and writing from worker threads made each body pass the GIL between
        threads, which on a loaded machine kept this one waiting for a core.
        """
        concurrency = 1 if self.options.dry_run else self.options.concurrency or 1
        # SMTP: a batch is several messages, each recorded by the post as it starts (`_MessageRecords`).
        each = _records_each(self.builder) and not self.options.dry_run
        in_flight: dict[Future[Outcome], tuple[int, PreparedBatch, _MessageRecords | None]] = {}
        # Answers not in the ledger yet (a batch id of None: nothing to write, only to count).
        answered: list[tuple[int | None, PreparedBatch, Outcome]] = []
        ledger_problem = ""  # the ledger failed or was replaced: the send stops
        unrecorded = 0       # recipients whose answer the ledger could not take

        def collect(done: Iterable[Future[Outcome]]) -> None:
            for future in list(done):
                batch_id, batch, records = in_flight.pop(future)
                outcome = future.result()
                answers = [(batch_id, batch, outcome)] if records is None else records.answers(batch, outcome)
                if any(answer.resume_at is not None for _, _, answer in answers):
                    stop.set()  # the rate limit is used up for a while: the others' waits end now too
                answered.extend(answers)
            report.in_flight = len(in_flight)

        def write(batch: PreparedBatch | None = None) -> int | None:
            """One commit: the answers collected, and `batch` recorded as in flight (its id; 0 for
            a batch whose post records each message itself)."""
            nonlocal ledger_problem, unrecorded
            recording = batch is not None and not each
            if not recording and not any(answer_id is not None for answer_id, _, _ in answered):
                for _, answered_batch, outcome in answered:
                    self._count_outcome(answered_batch, outcome, report)
                if answered and progress is not None:
                    progress(report)
                answered.clear()
                return None if batch is None else 0
            answers = answered[:]
            answered.clear()
            batch_id = None if recording else 0
            try:
                with ledger.transaction():
                    for answer_id, _, outcome in answers:
                        if answer_id is not None:
                            self._record_outcome(ledger, answer_id, outcome)
                    if recording:
                        assert batch is not None
                        # Before the post: the crash-safe part (with its moment and batch, when scheduled).
                        batch_id = ledger.record(batch.keys, self.plan.timing.schedule, self.provider.name)
            except LedgerWriteError as exc:
                # Nothing of that commit is on disk, and `batch` is not posted. The answers alone
                # may still fit (a full disk has room for an update more often than for 1,000
                # addresses); if not, their batches stay `sending`, so the next run counts them
                # uncertain: never posted twice.
                ledger_problem = ledger_problem or str(exc)
                stop.set()
                batch_id = None
                try:
                    if recording and answers:
                        with ledger.transaction():
                            for answer_id, _, outcome in answers:
                                if answer_id is not None:
                                    self._record_outcome(ledger, answer_id, outcome)
                    else:
                        raise
                except LedgerWriteError:
                    unrecorded += sum(len(answered_batch) for answer_id, answered_batch, _ in answers
                                      if answer_id is not None)  # the others are written already
                    answers = []
            for _, answered_batch, outcome in answers:
                self._count_outcome(answered_batch, outcome, report)
            if answers and progress is not None:
                progress(report)
            return batch_id

        def stopping() -> bool:
            return bool(report.stopped or stop.is_set() or any(_stops(outcome) for _, _, outcome in answered))

        pool: Executor = (_InThisThread() if self.options.dry_run
                          else ThreadPoolExecutor(concurrency, thread_name_prefix="send"))
        # A dry run's transport writes files, which any provider's answers would only misread.
        post = post_dry_run if self.options.dry_run else self.provider.post
        with pool:
            try:
                # Each batch is built while the ones before it are in flight.
                for batch in self._while_readable(self._batches(recipients, report), report, stop):
                    collect([future for future in in_flight if future.done()])
                    while len(in_flight) >= concurrency:
                        collect(wait(in_flight, return_when=FIRST_COMPLETED)[0])
                    if leavers is not None and not stopping():
                        try:  # just before it is recorded and posted: as late as can be
                            fresh = self._without_leavers(batch, leavers, report)
                        except SubscriberError as exc:
                            self._list_unreadable(exc, report, stop)
                        else:
                            if fresh is None:
                                continue
                            batch = fresh
                    if not ledger_problem and not ledger.still_at_path():
                        ledger_problem = (f"{where(ledger.path or '')} was deleted or replaced during the send; "
                                          "its records are not where the next send looks")
                        stop.set()
                    if stopping():
                        report.remaining += len(batch)
                        break
                    batch_id = write(batch)
                    if batch_id is None:
                        report.remaining += len(batch)
                        break
                    records = _MessageRecords(ledger, batch.keys, self.provider.name, self._record_outcome) if each \
                        else None
                    report.requests += len(batch) if each else 1  # SMTP counts messages
                    in_flight[pool.submit(post, transport, batch, self.retry, stop.wait,
                                          records or _holding(ledger, batch_id))] = (batch_id, batch, records)
                    report.in_flight = len(in_flight)
                    if progress is not None:
                        progress(report)
                while in_flight or answered:
                    if in_flight:
                        collect(wait(in_flight, return_when=FIRST_COMPLETED)[0])
                    write()
            except KeyboardInterrupt:
                # A second Ctrl-C (or one outside the handler): still record what is in flight.
                stop.set()
                collect(wait(in_flight)[0])
                write()
                raise
        report.interrupted = bool(report.signals)
        if report.stopped or stop.is_set():
            # Everyone the loop did not reach, whichever way it stopped (with --concurrency 4
            # a Ctrl-C once counted only the batches in flight).
            try:
                report.remaining += sum(1 for _ in recipients)
            except SubscriberError as exc:  # the rest of a list edited in place: not countable
                self._list_unreadable(exc, report, stop)
        if ledger_problem:
            report.stopped = self._ledger_stopped(ledger, ledger_problem, report, unrecorded)

    def _ledger_stopped(self, ledger: Ledger, problem: str, report: SendReport, unrecorded: int) -> str:
        """The one line for a send the ledger stopped: what happened, what is recorded, what to do."""
        line = f"{problem}: the send stopped and posted nothing more"
        if not ledger.still_at_path():
            copy = ledger.save_copy()
            if copy is not None:
                line += (f"; what this send recorded is saved in {where(copy)}: make it {where(ledger.path or '')} "
                         f"again (check `newsletter status {self.issue}`), then run `{self.command}`")
            return line
        line += f"; the {report.accepted:,} recipients accepted before are recorded"
        if unrecorded:
            line += (f", the answers for {unrecorded:,} more could not be (the ledger lists them uncertain: "
                     "check SendGrid's activity feed before --retry-uncertain)")
        advice = "free some space" if "disk is full" in problem else "fix that"
        return f"{line}; {advice} and run `{self.command}` again"

    def _error(self, outcome: Outcome) -> str:
        # Scrubbed before it is cut, so no part of the key survives (on stderr or in the ledger);
        # only what the server said is cut, never the advice after it.
        error = scrub(outcome.error, self._secret or "", limit=ERROR_CHARS)
        return f"{error}: {outcome.advice}" if outcome.advice else error

    def _record_outcome(self, ledger: Ledger, batch_id: int, outcome: Outcome) -> None:
        """What came of a batch, in the ledger (inside the caller's transaction)."""
        if outcome.state == "accepted":
            ledger.settle(batch_id, ACCEPTED, message_id=outcome.message_id, status=outcome.status)
        elif outcome.state == "uncertain":
            ledger.settle(batch_id, UNCERTAIN, error=self._error(outcome))
        elif outcome.state == "unsent":
            ledger.forget(batch_id)  # nothing reached the provider: its recipients are sent next run
        else:
            ledger.settle(batch_id, FAILED, status=outcome.status, error=self._error(outcome))

    def _count_outcome(self, batch: PreparedBatch, outcome: Outcome, report: SendReport) -> None:
        """What came of a batch, in the report (once the ledger has it)."""
        if outcome.state == "accepted":  # the usual answer, one per SMTP message: nothing to say
            report.accepted += len(batch)
            return
        error = self._error(outcome)
        if outcome.state == "uncertain":
            report.note_uncertain(batch.keys)
        elif outcome.state == "unsent":
            report.requests -= 1
            report.remaining += len(batch)
            if outcome.resume_at is not None:
                error += f": run `{self.command}` again after then for the rest"
        elif outcome.state == "rejected":  # these recipients alone (SMTP's 550): the send goes on
            report.note_rejected(batch.addresses, error)
        else:
            report.failed += len(batch)
            if outcome.state != "refused":
                error += f"; no new request was posted after it: run `{self.command}` again later for the rest"
        if _stops(outcome) and not report.stopped:
            report.stopped = error


class _InThisThread(Executor):
    """Runs each call as it is submitted, in the caller's thread: a Future already done."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - as a worker thread would keep it; Ctrl-C goes on up
            future.set_exception(exc)
        return future


def _records_each(builder: MessageBuilder) -> bool:
    """Whether each recipient's part is a message of its own, posted and recorded on its own (SMTP);
    a builder that says nothing (SendGrid's) posts a batch as one request."""
    return bool(getattr(builder, "records_each", False))


class _MessageRecords:
    """The ledger records of one post of several messages (SMTP), written by the thread posting them.

    A batch of messages was recorded whole before its post, and posted one message after
    another over one connection; recorded one by one, each message cost a commit and an fsync
    in this thread, and the connections waited on it. Here each message is written as in
    flight just before its DATA, in a commit shared with the other connections' (`Ledger.together`)
    and with the previous message's answer: killed in the middle of a batch, a send leaves
    uncertain only the message that had begun; the ones after it were never written, so the
    next run sends them. Whatever is not written by the post is written by the send after it.
    """

    def __init__(self, ledger: Ledger, keys: list[str], provider: str,
                 record_outcome: Callable[[Ledger, int, Outcome], None]) -> None:
        self._ledger = ledger
        self._keys = keys
        self._provider = provider
        self._record_outcome = record_outcome
        self.rows: dict[int, int] = {}  # message index -> its batch id in the ledger
        self._settled: set[int] = set()  # answers written by the post
        self._unwritten: list[tuple[int, Outcome]] = []

    def begin(self, index: int) -> Callable[[], None]:
        answers, self._unwritten = self._unwritten, []
        ledger = self._ledger

        def write() -> int:
            for answered, outcome in answers:
                self._record_outcome(ledger, self.rows[answered], outcome)
            row = self.rows.get(index)
            if row is None:
                return ledger.record_message(self._keys[index], self._provider)
            ledger.mark_waiting(row, False)  # a deferred message, in flight again
            return row

        queued = ledger.queue(write)
        failed: list[BaseException] = []
        done = False

        def recorded() -> None:
            nonlocal done
            if not done:
                done = True
                try:
                    self.rows[index] = ledger.wait_for(queued)
                except BaseException as exc:  # noqa: BLE001 - raised below, once these are counted unwritten
                    self._unwritten[:0] = answers  # written by the send after the post, if the ledger takes them
                    failed.append(exc)
                else:
                    self._settled.update(answered for answered, _ in answers)
            if failed:
                raise failed[0]

        return recorded

    def __call__(self, waiting: bool) -> None:
        """As a `Hold`: every message begun waits to be posted again, or is in flight again."""
        rows = list(self.rows.values())

        def write() -> None:
            for row in rows:
                self._ledger.mark_waiting(row, waiting)

        self._ledger.together(write)

    def answered(self, index: int, outcome: Outcome) -> None:
        if index in self.rows:
            self._unwritten.append((index, outcome))

    def waiting(self, index: int) -> None:
        row = self.rows.get(index)
        if row is not None:
            self._ledger.together(lambda: self._ledger.mark_waiting(row, True))

    def answers(self, batch: PreparedBatch, outcome: Outcome) -> list[tuple[int | None, PreparedBatch, Outcome]]:
        """Each message's outcome, as a batch of one, with the batch id still to write it to (or None)."""
        answers: list[tuple[int | None, PreparedBatch, Outcome]] = []
        for index, key in enumerate(batch.keys):
            if index < len(outcome.each):
                one = outcome.each[index]
            elif index in self.rows:  # begun, and the post ended without saying more
                one = replace(outcome, each=())
            else:
                one = Outcome("unsent", error=outcome.error or STOPPED, attempts=0)
            row = None if index in self._settled else self.rows.get(index)
            answers.append((row, PreparedBatch(batch.number, [key], b"", batch.addresses[index:index + 1]), one))
        return answers


def _holding(ledger: Ledger, batch_id: int) -> Callable[[bool], None]:
    """How the thread posting batch `batch_id` records it waiting out a 429, and posted again."""
    return lambda waiting: ledger.mark_waiting(batch_id, waiting)


def _stops(outcome: Outcome) -> bool:
    """Whether no new request may be posted after this answer."""
    return outcome.fatal or outcome.state in ("failed", "refused")


# Ctrl-C, `kill` and a closed terminal all ask the send to stop; each is handled alike.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def _stop_on_signals(stop: threading.Event, received: list[int],
                     on_stop: Callable[[], None] | None = None) -> Iterator[None]:
    """While sending, the first SIGINT, SIGTERM or SIGHUP sets `stop` (a second acts as usual).

    Stopping this way posts no new request and lets the ones in flight get their
    answer, so a batch that got a definite answer (a 429 being waited out) is never
    left uncertain, as it would be if the process died.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    for signum in STOP_SIGNALS:
        handler = signal.getsignal(signum)
        if handler is None:  # installed outside Python
            handler = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
        previous[signum] = handler

    def on_signal(signum: int, frame: object) -> None:
        received.append(signum)
        stop.set()
        for other, handler in previous.items():
            signal.signal(other, handler)
        if on_stop is not None:
            on_stop()

    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, on_signal)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _end_send(ledger: Ledger) -> None:
    """Leave the ledger's main file whole on its own; if that fails (a full disk), the next
    command that opens the ledger does it, and the send's own error is the one said."""
    try:
        ledger.end_send()
    except LedgerWriteError:
        pass
