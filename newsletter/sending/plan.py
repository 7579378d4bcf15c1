"""The plan of a send: what the user asked for, who gets the issue, and every check made before
anything is posted.

`prepare_send` renders and checks the issue once and settles everything a send needs
(the provider, its builder and transport, the timing, the pre-send warnings) before
anything is posted, so that the CLI, or a script, can show it and ask; `SendPlan.run`
is what the run (run.py: `run_send`) posts, and what came of it is a `SendReport` (report.py).
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.config import Settings
from newsletter.errors import ConfigError, SendError, where
from newsletter.placeholders import PlaceholderError, refuse_placeholders, warn_placeholders
from newsletter.providers import provider_for, scheduler_for
from newsletter.sending.dryrun import DRY_RUN_DIR, DryRunTransport
from newsletter.sending.ledger import (
    ACCEPTED, SENDING, UNCERTAIN, Ledger, Schedule, SendLock, earlier_send_without_ledger, issue_schedule,
    lock_path, old_ledger_path, read_ledger,
)
from newsletter.sending.provider import MessageBuilder, Personalizer, Provider, RetryPolicy, Row
from newsletter.sending.report import Audience, SendReport
from newsletter.sending.transport import Transport
from newsletter.subscribers import COLUMNS, DEFAULT_LIST, list_path, open_list
from newsletter.subscribers.addresses import address_key
from newsletter.subscribers.erasure import erased_lookup
from newsletter.subscribers.selection import Selection, no_such_tag, tags_in_list
from newsletter.subscribers.store import EMAIL, STATUS, not_subscribed_keys
from newsletter.when import ScheduleError, describe, minutes

if TYPE_CHECKING:  # rendering (Jinja, premailer, lxml) is imported only by what renders:
    from newsletter.render import RenderedEmail  # `newsletter status` starts without it

# Cheap, not RFC 5322: keeps out what would make SendGrid refuse a whole request of 1,000.
_ADDRESS = re.compile(r"[^@\s,;<>()\[\]\"\\]+@[^@\s,;<>()\[\]\"\\]+\.[^@\s,;<>()\[\]\"\\.]+")

_TAKEN = "taken by this run"

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
    web_check: bool = True  # a real send first checks that the issue's web page and images are online

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
                 retry: RetryPolicy | None = None, provider: Provider | None = None) -> SendPlan:
    """Render and check `issue` once, and refuse early whatever would stop the send.

    `provider`: the one it posts through (None: the one `settings` name); its `secret()`
    reads the key or password, and checks it.
    """
    provider = provider if provider is not None else provider_for(settings)
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
        earlier = earlier_send_without_ledger(settings, email.issue)
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
                    retry or RetryPolicy(), timing, _warnings(settings, options, email, timing))


def _warnings(settings: Settings, options: SendOptions, email: RenderedEmail, timing: Timing) -> list[str]:
    """What the sender should know before the send goes, though it does not stop it.

    Made here, not by the CLI, so that a script that sends through `prepare_send` is told too:
    a scheduled moment too close to cancel, and (a real send) the issue's web page or an
    image of the email not online, which readers would find dead or broken.
    """
    found: list[str] = []
    if timing.send_at is not None and not options.dry_run:
        scheduler = scheduler_for(settings)  # there is one: prepare_send refused --at otherwise
        cutoff = scheduler.cancel_cutoff if scheduler else dt.timedelta(0)
        if timing.send_at - dt.datetime.now(dt.UTC) < cutoff:
            found.append(f"{describe(timing.send_at)} is less than {minutes(cutoff)} minutes away: "
                         "SendGrid lets no one cancel it any more once it is sent")
    if options.web_check and not (options.dry_run or options.proof):
        from newsletter.links import web_check  # fetches: imported only by a real send

        found += web_check(settings, email)
    return found

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
    """A send ready to run; `newsletter.sending.run.run_send` posts it."""

    settings: Settings
    issue: str
    options: SendOptions
    email: RenderedEmail
    builder: MessageBuilder
    list_file: Path
    secret: str | None = field(repr=False)  # the API key or SMTP password (None: a dry run)
    transport: Transport = field(repr=False)
    provider: Provider = field(repr=False)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timing: Timing = field(default_factory=Timing)
    warnings: list[str] = field(default_factory=list)  # said before the send, which they do not stop

    def lines(self) -> list[str]:
        """What is about to be sent, to whom, and when: said before the question."""
        options = self.options
        audience = f"proof to {', '.join(options.proof_to)}" if options.proof else (
            f"list {options.list_name}" + (f", tag {' or '.join(options.tags)}" if options.tags else ""))
        lines = [f"Issue:    {self.issue}: {self.subject}", f"To:       {audience}"]
        if self.timing.send_at is not None:
            again = " (as the earlier run of this send)" if self.timing.reused else ""
            lines.append(f"When:     {describe(self.timing.send_at)}{again}: SendGrid holds every request until then")
        if self.timing.passed is not None:
            lines.append(f"When:     now: the earlier run was scheduled for {describe(self.timing.passed)}, which "
                         "has passed; the rest go out at once")
        return lines

    @property
    def subject(self) -> str:
        return self.email.subject

    @property
    def folder(self) -> Path:
        return output_dir(self.settings, self.issue)

    def count(self) -> Audience:
        """Stream the list once: how many would get the issue now, and how many already have."""
        report = SendReport(self.issue, self.subject, self.options.list_name)
        to_send = sum(1 for _ in self.recipients(self.earlier_outcomes(), report))
        self.refuse_unknown_tags(report)
        return Audience(to_send, report.skipped, report.uncertain, self.nothing_selected(report), self.issue)

    def reach(self, known: dict[str, str]) -> int:
        """How many recipients this send means to reach: everyone the ledger holds (`known`, as
        `Ledger.states` gives them: whatever their state, and whether posted again or not, as
        --retry-uncertain, a failed or a cancelled request's are) and everyone it would post to
        besides, each counted once. Streams the list once more (about a second a million rows).
        """
        report = SendReport(self.issue, self.subject, self.options.list_name)
        return len(known) + sum(1 for key, *_ in self.recipients(dict(known), report) if key not in known)

    @property
    def records_sending(self) -> bool:
        # A dry run or a proof is not the issue being sent: it keeps its ledger in memory.
        return not (self.options.dry_run or self.options.proof)

    def refuse_unknown_tags(self, report: SendReport) -> None:
        """An error when `--tag` selected no one although the list has subscribed addresses:
        `--tag member` for `members` sent to nobody and exited 0."""
        if self.options.proof or report.selected or not self.options.tags:
            return
        status = self.options.selection.status
        subscribed, found = tags_in_list(self.list_file, status)
        if subscribed:
            raise SendError(no_such_tag(self.options.tags, found, status))

    def nothing_selected(self, report: SendReport) -> str:
        if self.options.proof or report.selected:
            return ""
        # With --tag, a list with subscribed addresses, none tagged so, was refused before this.
        return f"Nothing to send: list {self.options.list_name} has no subscribed address"

    def earlier_outcomes(self) -> dict[str, str]:
        """Each recipient of earlier sends, with the state the ledger gives them (for counts, dry runs)."""
        if self.options.proof:
            return {}
        return read_ledger(self.settings, self.issue, Ledger.states, {})

    def recipients(self, known: dict[str, str], report: SendReport) -> Iterator[Recipient]:
        """(ledger key, address, list row, its personalizer) of everyone to post to, each address once.

        Rows stay the list's own lists of text (no object per row: a million rows);
        the personalizer is the one for this list's columns. `known` (from
        `earlier_outcomes`) also records who this run has taken, so that one dict,
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
            # In one order whatever order they were given in: the same selection is the same command
            # (status keeps a stopped send's line until its command runs again).
            for tag in sorted(dict.fromkeys(self.options.tags)):
                words += ["--tag", tag]
        return " ".join(shlex.quote(word) for word in words)

