"""The core of `newsletter send`: who gets the issue, in which requests, and what came of it.

`prepare_send` renders and checks the issue once and settles everything a send
needs before anything is posted (so the CLI can show it and ask); `SendPlan.run`
streams the list into batches of 1,000, records each in the ledger before it is
posted, and posts up to `concurrency` at once through one `Transport`.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from newsletter.config import Settings
from newsletter.content import ISSUE_FILE, new_issue_id
from newsletter.errors import ConfigError, SendError, SubscriberError, scrub, where
from newsletter.placeholders import PlaceholderError, refuse_placeholders, warn_placeholders
from newsletter.sending.ledger import (
    ACCEPTED, FAILED, ISSUE_ID, SENDING, UNCERTAIN, IssueIdentity, Ledger, LedgerWriteError, Schedule, SendLock,
    earlier_send, issue_schedule, ledger_path, lock_path, move_old_ledger, old_ledger_path, read_ledger,
)
from newsletter.providers import provider_for, scheduler_for
from newsletter.sending.dryrun import DryRunTransport, post_dry_run
from newsletter.sending.report import Audience, SendInterrupted, SendReport, SendStopped
from newsletter.sending.provider import (
    STOPPED, MessageBuilder, Outcome, OversizedRecipient, Personalizer, Provider, RetryPolicy, Row,
)
from newsletter.sending.transport import PreparedBatch, Transport
from newsletter.subscribers import COLUMNS, DEFAULT_LIST, list_path, open_list
from newsletter.subscribers.addresses import address_key
from newsletter.subscribers.selection import Selection, no_such_tag, tags_in_list
from newsletter.subscribers.erasure import erased_lookup
from newsletter.files.yamledit import edit_document, set_value
from newsletter.when import ScheduleError, describe
from newsletter.subscribers.store import (
    EMAIL, STATUS, ListWatch, not_subscribed_keys, subscribed_keys,
)

if TYPE_CHECKING:  # rendering (Jinja, premailer, lxml) is imported only by what renders:
    from newsletter.content import Issue
    from newsletter.render import RenderedEmail  # `newsletter status` starts without it

T = TypeVar("T")

DRY_RUN_DIR = "dry-run"
ERROR_CHARS = 300  # of a server's or library's message kept in an error line and the ledger

# Cheap, not RFC 5322: keeps out what would make SendGrid refuse a whole request of 1,000.
_ADDRESS = re.compile(r"[^@\s,;<>()\[\]\"\\]+@[^@\s,;<>()\[\]\"\\]+\.[^@\s,;<>()\[\]\"\\.]+")

_TAKEN = "taken by this run"

Progress = Callable[["SendReport"], None]
Recipient = tuple[str, str, Row, Personalizer]  # ledger key, address as sent, list row, how to write it


@dataclass(frozen=True)
class SendOptions:
    """What the user asked for on the command line."""

    list_name: str = "main"
    tags: tuple[str, ...] = ()
    dry_run: bool = False
    proof_to: tuple[str, ...] = ()
    concurrency: int | None = None  # None: the provider's (sendgrid.concurrency, smtp.connections)
    retry_uncertain: bool = False
    at: str | None = None  # --at WHEN: SendGrid delivers at that moment
    first_send: bool = False  # --first-send: no ledger, whatever traces of an earlier send there are

    @property
    def proof(self) -> bool:
        return bool(self.proof_to)

    @property
    def selection(self) -> Selection:
        """Who of the list gets the issue: the subscribed addresses, with any one of `tags` if given."""
        return Selection("subscribed", self.tags)


@dataclass(frozen=True)
class Timing:
    """When a send's mail is delivered: at once, or at `send_at` in SendGrid batch `batch_id`."""

    send_at: dt.datetime | None = None
    batch_id: str | None = None         # None with a send_at: created (POST /v3/mail/batch) as the send starts
    reused: bool = False                # an earlier run's schedule, kept for the rest of the list
    passed: dt.datetime | None = None   # an earlier run's moment, now past: the rest go at once

    @property
    def schedule(self) -> Schedule | None:
        if self.send_at is None or self.batch_id is None:
            return None
        return Schedule(int(self.send_at.timestamp()), self.batch_id)


@dataclass(frozen=True)
class _Batch(PreparedBatch):
    """A batch with the personalizations its body was built from, to build it again without
    someone who unsubscribed while it waited to be posted."""

    personalizations: list[Any] = field(default_factory=list, repr=False)


class _Leavers:
    """Who the list still holds as subscribed, read again only when the list file changed.

    `subscribed` is None while the file is as the send read it: then a batch costs a stat().
    """

    def __init__(self, path: Path) -> None:
        self.watch = ListWatch(path)
        self.subscribed: set[str] | None = None

    def refresh(self) -> set[str] | None:
        if self.watch.changed():
            self.subscribed = subscribed_keys(self.watch.path)
        return self.subscribed


def proof_addresses(given: Iterable[str]) -> dict[str, str]:
    """The `--to` addresses by ledger key, checked by the rule list rows are held to."""
    addresses: dict[str, str] = {}
    for text in given:
        address = text.strip()
        if not _ADDRESS.fullmatch(address):
            raise SendError(f"--to {text!r} is not an email address; nothing was sent")
        key = address_key(address)
        if key in addresses:
            raise SendError(f"--to {addresses[key]} and --to {address} are the same address: give it once")
        addresses[key] = address
    return addresses


def prepare_send(settings: Settings, issue: str, options: SendOptions,
                 retry: RetryPolicy | None = None) -> SendPlan:
    """Render and check `issue` once, and refuse early whatever would stop the send."""
    provider = provider_for(settings)
    if options.concurrency is None:
        options = replace(options, concurrency=provider.concurrency)
    elif options.concurrency < 1:
        raise SendError("--concurrency must be 1 or more")
    proof_addresses(options.proof_to)
    # What would stop a real send is said all at once, one line each, rather than one a run.
    blockers: list[str] = []
    if options.dry_run:
        warn_placeholders(settings)
    else:  # a placeholder `from` or link must not reach a reader, not even in a proof
        try:
            refuse_placeholders(settings, "a proof" if options.proof else "a send")
        except PlaceholderError as exc:
            blockers.extend(str(exc).splitlines())
    from newsletter.build import render_and_check
    from newsletter.checks import CheckFailed

    email, report = render_and_check(settings, issue, options.list_name)
    if not report.ok:
        raise CheckFailed(report)
    if options.proof:  # where a proof's subject is chosen: `proof_prefix` ("[Proof]") before it
        email = replace(email, subject=settings.proof_subject(email.subject))
    # `issues/issue-12/` and `issue-12` are one issue, with one ledger.
    issue = email.issue.name
    if email.issue.draft and not options.proof:
        # A draft is kept off the web edition, so its "read on the web" link would be dead.
        from newsletter.files.yamlfile import read_mapping

        at = read_mapping(email.issue.folder / "issue.yaml", SendError).where("draft")
        if options.dry_run:  # tried as it is, but the editor learns now what the real send will say
            warnings.warn(f"{at}: {issue} is a draft (`draft: true`): a real send is refused until that line "
                          "goes", stacklevel=2)
        else:
            blockers.append(f"{at}: {issue} is a draft (`draft: true`): "
                            "remove that line when it is ready, publish the site, then send; dry runs "
                            "and --to proofs of a draft work")
    if options.at and not provider.can_schedule:
        raise ScheduleError(f"send --at needs SendGrid (provider: sendgrid); through {provider.name} an issue goes "
                            "when it is sent: run the send at that time (a cron job or a systemd timer)")
    timing = _timing(settings, issue, options)
    try:
        builder = provider.builder(settings, email, issue, proof=options.proof, dry_run=options.dry_run,
                                   unsubscribe_links=_signed_unsubscribe_links(settings, options, blockers))
    except SendError as exc:  # no way to unsubscribe
        blockers.append(str(exc))
    path = list_path(settings, options.list_name)
    if not path.is_file():
        blockers.append(f"{where(path)}: no such subscriber list (--list {options.list_name})")
    # The key or password is read (and refused when missing) before anything is sent; a dry run needs none.
    secret = None
    try:
        secret = None if options.dry_run else provider.secret()
    except ConfigError as exc:
        blockers.append(str(exc))
    if not (options.proof or options.first_send):
        earlier = _earlier_send_without_ledger(settings, email.issue)
        if earlier and options.dry_run:  # the editor learns now what the real send will say
            warnings.warn(f"{earlier} (a real send is refused until then)", stacklevel=2)
        elif earlier and not _send_running(settings, issue):  # if one runs, that is what is said
            blockers.append(earlier)
    if blockers:
        raise SendError("\n".join(blockers))
    # Built (and so checked) here, before the confirmation and the lock; it connects on the first post.
    transport = _transport(settings, issue, options, provider, secret)
    if not (options.dry_run or options.proof):
        # Say so before the question; `run()` takes the lock for real.
        probe = SendLock(lock_path(settings, issue), old_ledger_path(settings, issue))  # older versions' too
        probe.acquire(issue)
        probe.release()
    return SendPlan(settings, issue, options, email, builder, path, secret, transport, provider,
                    retry or RetryPolicy(), timing)


def _send_running(settings: Settings, issue: str) -> bool:
    lock = SendLock(lock_path(settings, issue), old_ledger_path(settings, issue))
    if lock.try_acquire():
        lock.release()
        return False
    return True


def _timing(settings: Settings, issue: str, options: SendOptions) -> Timing:
    """When this send delivers: `--at`, or the schedule an earlier run of it left standing.

    A re-run of a scheduled send (after a crash, or for new subscribers) goes at the
    same moment in the same batch, so everyone gets the issue together; once that
    moment has passed the rest go at once, and the CLI says so and asks.
    """
    if options.proof:
        if options.at:
            raise ScheduleError("--at schedules the issue; a proof (--to) is sent at once: leave out one of them")
        return Timing()
    now = dt.datetime.now(dt.UTC)
    scheduler = scheduler_for(settings) if options.at else None  # prepare_send refused --at if there is none
    wanted = scheduler.parse_when(options.at, now) if scheduler and options.at else None
    standing = issue_schedule(settings, issue)
    if standing is not None:
        at = dt.datetime.fromtimestamp(standing.send_at, dt.UTC)
        if at > now:
            if wanted is not None and wanted != at:
                raise ScheduleError(
                    f"{issue} is already scheduled for {describe(at)} (batch {standing.batch_id}): the rest "
                    f"go then too; to choose another time, run `newsletter cancel {issue}` first")
            return Timing(at, standing.batch_id, reused=True)
        if wanted is None:
            return Timing(passed=at)
    return Timing(wanted) if wanted is not None else Timing()


def output_dir(settings: Settings, issue: str) -> Path:
    """build/ISSUE, as newsletter.build has it (not imported for that alone: see above)."""
    return settings.build_dir / issue


def _signed_unsubscribe_links(settings: Settings, options: SendOptions,
                              blockers: list[str]) -> Callable[[str], str] | None:
    """With `signup:`, each recipient's `<signup.url>/unsubscribe/<token>`, signed with NEWSLETTER_SECRET.

    A real send without the secret is refused (one of the blockers); a dry run is made with
    links signed by a throwaway secret, which the server refuses, and says so.
    """
    if settings.signup is None:
        return None
    import secrets

    from newsletter.signup.tokens import UnsubscribeLinks, newsletter_secret

    try:
        secret = newsletter_secret()
    except ConfigError as exc:
        if not options.dry_run:
            blockers.append(f"{exc} (signup: is set, so each email's unsubscribe link is signed with it)")
            return None
        warnings.warn(f"{exc}; the unsubscribe links of these bodies are signed with a throwaway secret, "
                      "which the sign-up server refuses", stacklevel=2)
        secret = secrets.token_hex(32)
    return UnsubscribeLinks(secret, settings.signup.url, options.list_name)


def _transport(settings: Settings, issue: str, options: SendOptions, provider: Provider,
               secret: str | None) -> Transport:
    """The one place that picks where bodies go."""
    if options.dry_run:
        return DryRunTransport(output_dir(settings, issue) / DRY_RUN_DIR, provider.dry_run_file,
                               sample=provider.dry_run_sample)
    assert secret is not None
    return provider.transport(secret)


@dataclass
class SendPlan:
    """A send ready to run; `run()` posts it."""

    settings: Settings
    issue: str
    options: SendOptions
    email: RenderedEmail
    builder: MessageBuilder
    list_file: Path
    _secret: str | None = field(repr=False)  # the API key or SMTP password (None: a dry run)
    transport: Transport = field(repr=False)
    provider: Provider = field(repr=False)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timing: Timing = field(default_factory=Timing)

    @property
    def subject(self) -> str:
        return self.email.subject

    @property
    def folder(self) -> Path:
        return output_dir(self.settings, self.issue)

    def count(self) -> Audience:
        """Stream the list once: how many would get the issue now, and how many already have."""
        report = SendReport(self.issue, self.subject, self.options.list_name)
        to_send = sum(1 for _ in self._recipients(self._earlier_outcomes(), report))
        self._refuse_unknown_tags(report)
        return Audience(to_send, report.skipped, report.uncertain, self._nothing_selected(report))

    def run(self, progress: Progress | None = None, on_stop: Callable[[], None] | None = None) -> SendReport:
        """Send; returns the report, or raises `SendStopped` when SendGrid refused the send.

        `on_stop` is called once the first stop signal (Ctrl-C, SIGTERM, SIGHUP) arrives,
        so the CLI can say that the requests in flight are being waited for.
        """
        report = SendReport(self.issue, self.subject, self.options.list_name,
                            dry_run=self.options.dry_run, proof=self.options.proof,
                            provider=self.provider.display_name)
        started = time.monotonic()
        lock = None
        if self._records_sending:
            # Older versions' build/ISSUE/send.lock too: they and this one never send the issue at once.
            lock = SendLock(lock_path(self.settings, self.issue), old_ledger_path(self.settings, self.issue))
            lock.acquire(self.issue)
        try:
            if self._records_sending:
                # One ledger for the whole send; with the lock held, whatever is still in
                # flight belongs to a dead process and becomes uncertain.
                move_old_ledger(self.settings, self.issue)
                assert lock is not None
                ledger = self._open_ledger(lock)
                try:
                    ledger.recover()
                    known = ledger.states()
                    ledger.begin_send(self._identity_with_id(ledger))
                except BaseException:
                    ledger.close()
                    raise
            else:
                known, ledger = self._earlier_outcomes(), Ledger(None)
            transport = self.transport
            stop = threading.Event()
            # Looked at before the list is read, so a change made during the reading is seen too.
            leavers = None if self.options.proof else _Leavers(self.list_file)
            try:
                self._start_schedule(report)
                with _stop_on_signals(stop, report.signals, on_stop):
                    self._run(ledger, transport, self._recipients(known, report), report, progress, stop, leavers)
            finally:
                transport.close()
                if self._records_sending:
                    _end_send(ledger)
                ledger.close()
        finally:
            if lock is not None:
                lock.release()
        report.elapsed = time.monotonic() - started
        self._refuse_unknown_tags(report)
        report.nothing_selected = self._nothing_selected(report)
        if self.options.dry_run:
            report.output = self.folder / DRY_RUN_DIR
            report.written = transport.written if isinstance(transport, DryRunTransport) else report.requests
        if report.interrupted:
            raise SendInterrupted(f"interrupted: run `{self.command}` again to send to the rest", report)
        if report.stopped:
            raise SendStopped(report.stopped, report)
        return report

    # -- the parts of a run

    def _open_ledger(self, lock: SendLock) -> Ledger:
        """The issue's ledger, made when there is none, unless a trace shows an earlier send
        (checked again here, under the lock: the ledger may have gone since `prepare_send`).
        The lock file then says that the issue has a ledger: a trace if it goes missing."""
        path = ledger_path(self.settings, self.issue)
        if not path.exists() and not self.options.first_send:
            earlier = _earlier_send_without_ledger(self.settings, self.email.issue)
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
        identity = IssueIdentity.of(self.email.issue)
        if identity.issue_id:
            return identity
        issue_id = ledger.meta().get(ISSUE_ID) or new_issue_id()
        path = self.email.issue.folder / ISSUE_FILE
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
        send_at, batch_id = self.timing.send_at, self.timing.batch_id
        if send_at is None:
            return
        if batch_id is None and not self.options.dry_run:
            scheduler = scheduler_for(self.settings)
            assert scheduler is not None and self._secret is not None  # prepare_send refused --at without one
            # the send's own policy: one call, retried as its posts are
            batch_id = scheduler.new_batch(self._secret, self.retry)
            self.timing = replace(self.timing, batch_id=batch_id)
        self.builder.schedule(int(send_at.timestamp()), batch_id)
        report.scheduled_at, report.batch_id = send_at, batch_id

    @property
    def _records_sending(self) -> bool:
        # A dry run or a proof is not the issue being sent: it keeps its ledger in memory.
        return not (self.options.dry_run or self.options.proof)

    def _refuse_unknown_tags(self, report: SendReport) -> None:
        """An error when `--tag` selected no one although the list has subscribed addresses:
        `--tag member` for `members` sent to nobody and exited 0."""
        if self.options.proof or report.selected or not self.options.tags:
            return
        status = self.options.selection.status
        subscribed, found = tags_in_list(self.list_file, status)
        if subscribed:
            raise SendError(no_such_tag(self.options.tags, found, status))

    def _nothing_selected(self, report: SendReport) -> str:
        if self.options.proof or report.selected:
            return ""
        # With --tag, a list with subscribed addresses, none tagged so, was refused before this.
        return f"Nothing to send: list {self.options.list_name} has no subscribed address"

    def _earlier_outcomes(self) -> dict[str, str]:
        """Each recipient of earlier sends, with the state the ledger gives them (for counts, dry runs)."""
        if self.options.proof:
            return {}
        return read_ledger(self.settings, self.issue, Ledger.states, {})

    def _recipients(self, known: dict[str, str], report: SendReport) -> Iterator[Recipient]:
        """(ledger key, address, list row, its personalizer) of everyone to post to, each address once.

        Rows stay the list's own lists of text (no object per row: a million rows);
        the personalizer is the one for this list's columns. `known` (from
        `_earlier_outcomes`) also records who this run has taken, so that one dict,
        not several sets, holds a million addresses.
        """
        if self.options.proof:
            yield from self._proof_recipients()
            return
        skip_uncertain = not self.options.retry_uncertain
        # An address held twice, once not subscribed, is mailed from neither row; a real
        # send reads the whole list for it, so a bad row stops it before any request.
        not_subscribed = not_subscribed_keys(self.list_file, read_whole=not self.options.dry_run)
        # A reader erased after they had the issue is in the ledger as a keyed hash: looked up
        # by it too, so that subscribing again does not mail them the issue a second time.
        hashed = erased_lookup(self.settings, known)
        with open_list(self.list_file) as listing:
            personalization = self.builder.personalizer(listing.extra_columns)
            for number, row in self.options.selection.rows(listing.rows):
                report.selected += 1
                address = row[EMAIL].strip()
                key = address_key(address)  # SendGrid and mailboxes treat addresses case-insensitively
                if not_subscribed and key in not_subscribed:
                    report.unsubscribed_twins += 1
                    continue
                state = known.get(key)
                if state is None and hashed is not None:
                    state = known.get(hashed.token(key))
                if state == _TAKEN:
                    report.duplicates += 1
                    continue
                known[key] = _TAKEN  # seen: a second row of this address counts as a duplicate only
                if state is None:  # the usual case, every row of a first send
                    if _ADDRESS.fullmatch(address):
                        yield key, address, row, personalization
                    else:
                        report.note_invalid(self.list_file, number, address)
                elif state == ACCEPTED:
                    report.skipped += 1
                elif state == SENDING:  # in a request of the send running now (see open_ledger)
                    report.pending += 1
                elif state == UNCERTAIN and skip_uncertain:
                    report.note_uncertain((key,))
                elif not _ADDRESS.fullmatch(address):
                    report.note_invalid(self.list_file, number, address)
                else:
                    yield key, address, row, personalization

    def _proof_recipients(self) -> Iterator[Recipient]:
        wanted = proof_addresses(self.options.proof_to)
        found: dict[str, Row] = {}
        with open_list(self.list_file) as listing:
            personalization = self.builder.personalizer(listing.extra_columns)
            for _, row in listing.rows:
                key = address_key(row[EMAIL])
                if key in wanted and key not in found:
                    found[key] = row
            blank = [""] * (len(COLUMNS) + len(listing.extra_columns))
            blank[STATUS] = "subscribed"  # as an address given with --to but not on the list
        for key, address in wanted.items():
            yield key, address, found.get(key) or [address, *blank[1:]], personalization

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
                        batch_id = ledger.record(batch.keys, self.timing.schedule, self.provider.name)
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

    @property
    def command(self) -> str:
        """The command that carries on with this send (a proof's names its addresses)."""
        words = ["newsletter", "send", self.issue]
        if self.options.proof:
            for address in self.options.proof_to:
                words += ["--to", address.strip()]
        else:
            if self.options.list_name != DEFAULT_LIST:
                words += ["--list", self.options.list_name]
            for tag in self.options.tags:
                words += ["--tag", tag]
        return " ".join(shlex.quote(word) for word in words)


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


def _earlier_send_without_ledger(settings: Settings, issue: Issue) -> str:
    """Why `issue`, whose ledger is missing, must not be sent as if for the first time ('' if nothing says so)."""
    if ledger_path(settings, issue.name).exists() or old_ledger_path(settings, issue.name).exists():
        return ""
    return earlier_send(settings, IssueIdentity.of(issue))


def _end_send(ledger: Ledger) -> None:
    """Leave the ledger's main file whole on its own; if that fails (a full disk), the next
    command that opens the ledger does it, and the send's own error is the one said."""
    try:
        ledger.end_send()
    except LedgerWriteError:
        pass
