"""`subscribers sync`, the sign-up server's part: its changes since the last sync, into the lists.

Each page of `GET <signup.url>/changes?after=<cursor>` is applied in order, then the
cursor is written (`subscribers/.signup-cursor`, atomically), and only then is the next
page asked for: asking for changes after a cursor tells the server those up to it are
in the lists (it deletes them 30 days later). So:
- an interrupted sync loses nothing: the cursor is written only after the lists are;
- it applies nothing twice: a confirmed sign-up whose confirmation time the row already
  holds (`signup_confirmed_at`) is skipped, and an unsubscribe of an unsubscribed row
  changes nothing.

A confirmed sign-up → `subscribed`, with its evidence in the list's columns (a confirmed
double opt-in is consent: it resubscribes someone who left). An unsubscribe →
`unsubscribed` (a bounced or complained address stays so). An unsubscribe of an address
not on the list leaves the list alone.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newsletter import __version__
from newsletter.files.atomic import write_text
from newsletter.config import Settings
from newsletter.errors import SubscriberError, scrub, where
from newsletter.signup import tokens
from newsletter.subscribers.addresses import address_key
from newsletter.subscribers.erasure import erased_addresses, forget_erasure
from newsletter.subscribers.store import (
    COLUMNS, EMAIL, FIRST_NAME, STATUS, TAGS, UPDATED_AT, ListFile, Row, list_path, merge_tags,
    now_iso, rewrite_list, split_tags, subscribe_row, widen,
)

if TYPE_CHECKING:
    from newsletter.sending.provider import RetryPolicy

CURSOR_FILE = ".signup-cursor"
TIMEOUT = 30.0
# The evidence of a confirmed double opt-in, as the list keeps it (extra columns).
EVIDENCE = ("signup_requested_at", "signup_confirmed_at", "signup_request_ip", "signup_confirm_ip", "signup_page")
SHOWN_CHANGES = 20


@dataclass
class SignupSyncReport:
    url: str
    dry_run: bool = False
    cursor: int = 0
    counts: Counter[str] = field(default_factory=Counter)   # new, resubscribed, unsubscribed, already, not on list
    lists: set[Path] = field(default_factory=set)
    changes: list[str] = field(default_factory=list)
    more: bool = False  # a dry run reads one page only

    def lines(self) -> list[str]:
        total = self.counts["new"] + self.counts["resubscribed"] + self.counts["unsubscribed"]
        verb = "would change" if self.dry_run else "changed"
        names = ", ".join(where(p) for p in sorted(self.lists)) or "no list"
        lines = [f"{names}: {verb} {total} address{'es' if total != 1 else ''} from the sign-up server ({self.url})"
                 + (" (dry run: nothing written)" if self.dry_run else "")]
        lines += [f"  subscribed (new)   {self.counts['new']}",
                  f"  resubscribed       {self.counts['resubscribed']}",
                  f"  unsubscribed       {self.counts['unsubscribed']}",
                  f"  already so         {self.counts['already']}",
                  f"  not on the list    {self.counts['not on the list']} (unsubscribes, left alone)"]
        if self.counts["erased"]:
            lines.append(f"  erased             {self.counts['erased']} (sign-ups from before the erasure, left out)")
        lines += [f"  {change}" for change in self.changes[:SHOWN_CHANGES]]
        if len(self.changes) > SHOWN_CHANGES:
            lines.append(f"  … and {len(self.changes) - SHOWN_CHANGES} more")
        if self.more:
            lines.append("  (more changes wait on the server: a dry run reads only the first page)")
        return lines


def cursor_path(settings: Settings) -> Path:
    return settings.subscribers_dir / CURSOR_FILE


def read_cursor(settings: Settings) -> int:
    path = cursor_path(settings)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise SubscriberError(f"{where(path)}: cannot read the sign-up cursor ({exc.strerror})") from None
    if not text.isascii() or not text.isdigit():
        raise SubscriberError(f"{where(path)}: the sign-up cursor {text[:20]!r} is not a number: delete the file "
                              "to read every change the server still has (none is applied twice)")
    return int(text)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: urllib would send the bearer token to wherever it points (it copies the
    Authorization header), and take that host's answer as the server's consent records. The 3xx
    comes back as an HTTPError instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def fetch_changes(url: str, secret: str, after: int) -> dict[str, Any]:
    """One page of the server's changes after `after`; a SubscriberError in words, never the secret."""
    request = urllib.request.Request(f"{url}/changes?after={after}", headers={
        "Authorization": f"Bearer {tokens.changes_bearer(secret)}", "Accept": "application/json",
        "User-Agent": f"newsletter/{__version__}"})
    try:
        with _OPENER.open(request, timeout=TIMEOUT) as answer:
            body = answer.read()
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            target = " ".join(str(exc.headers.get("Location") or "nowhere").split())[:200]
            raise SubscriberError(scrub(
                f"the sign-up server at {url} answered GET /changes with a redirect ({exc.code}) to {target}, "
                "which is not followed (it would get the sign-up token): set signup.url to the server's own "
                "address; the lists are unchanged", secret)) from None
        if exc.code == 401:
            raise SubscriberError(f"the sign-up server at {url} refused this NEWSLETTER_SECRET (401): export the "
                                  "same value here as on the server; the lists are unchanged") from None
        raise SubscriberError(f"the sign-up server at {url} answered {exc.code} to GET /changes; "
                              "the lists are unchanged") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SubscriberError(scrub(f"could not reach the sign-up server at {url} ({reason}); the lists are "
                                    "unchanged: try again once it is up", secret)) from None
    try:
        page = json.loads(body.decode("utf-8"))
        changes = page["changes"]
        next_cursor = page["next"]
        valid = isinstance(changes, list) and isinstance(next_cursor, int) and next_cursor >= after and all(
            isinstance(c, dict) and c.get("kind") in ("subscribed", "unsubscribed")
            and isinstance(c.get("email"), str) and isinstance(c.get("list"), str)
            and isinstance(c.get("cursor"), int) and after < c["cursor"] <= next_cursor for c in changes)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        valid = False
    if not valid:
        raise SubscriberError(f"the sign-up server at {url} answered GET /changes with something it does not "
                              "send (is signup.url this server's?); the lists are unchanged")
    result: dict[str, Any] = page
    return result


def apply_changes(settings: Settings, changes: list[dict[str, Any]], report: SignupSyncReport,
                  dry_run: bool) -> None:
    """Apply `changes` (oldest first) to their lists, each list rewritten once."""
    changes, readmitted = _leave_out_erased(settings, changes, report)
    by_list: dict[str, list[dict[str, Any]]] = {}
    for change in changes:
        by_list.setdefault(change["list"], []).append(change)
    stamp = now_iso()
    for list_name, entries in by_list.items():
        path = list_path(settings, list_name)
        report.lists.add(path)
        by_address: dict[str, list[dict[str, Any]]] = {}
        for change in entries:
            by_address.setdefault(address_key(change["email"]), []).append(change)

        def transform(listing: ListFile, by_address: dict[str, list[dict[str, Any]]] = by_address
                      ) -> tuple[tuple[str, ...], Iterator[Row]]:
            extras = listing.extra_columns + tuple(c for c in EVIDENCE if c not in listing.extra_columns)
            column = {name: index for index, name in enumerate((*COLUMNS, *extras))}

            def rows() -> Iterator[Row]:
                seen: set[str] = set()
                for _, row in listing.rows:
                    row = widen(row, listing.extra_columns, extras)
                    key = address_key(row[EMAIL])
                    for change in by_address.get(key, ()):
                        _apply(row, column, change, report, stamp)
                    seen.add(key)
                    yield row
                for key, found in by_address.items():
                    if key in seen:
                        continue
                    added: Row | None = None
                    for change in found:
                        if added is None and change["kind"] == "subscribed":
                            added = [change["email"], "", "", "unsubscribed", "", "", ""] + [""] * len(extras)
                            report.counts["new"] += 1
                            report.changes.append(f"{change['email']}: added (confirmed sign-up)")
                            _apply(added, column, change, report, stamp, new=True)
                        elif added is None:
                            report.counts["not on the list"] += 1
                        else:
                            _apply(added, column, change, report, stamp)
                    if added is not None:
                        yield added
            return extras, rows()

        rewrite_list(path, transform, dry_run=dry_run, create=True)
    if readmitted and not dry_run:
        forget_erasure(settings, readmitted)  # they signed up again: a later import or add is not refused


def _leave_out_erased(settings: Settings, changes: list[dict[str, Any]], report: SignupSyncReport
                      ) -> tuple[list[dict[str, Any]], list[str]]:
    """The changes without the confirmed sign-ups of addresses erased at their owner's request
    (`subscribers delete`), each named in the report; and the addresses that signed up again since.

    The server still holds an erased reader's old sign-up, with its evidence, until 30 days after a
    sync acknowledged it: a sync from an older cursor would add them back. A sign-up confirmed on
    a later day than the erasure (the register keeps the day only) is new consent and is applied;
    one confirmed that day or before is left out: within the day the order is unknown, and an
    erasure the person asked for is not undone on a guess (the editor can `add --resubscribe`).
    """
    erased = erased_addresses(settings)
    if erased.hasher is None:
        return changes, []  # nothing was ever erased: no hashing
    kept: list[dict[str, Any]] = []
    readmitted: list[str] = []
    for change in changes:
        erased_on = erased.erased_on(change["email"]) if change["kind"] == "subscribed" else None
        if erased_on is None:
            kept.append(change)
        elif str(change.get("at") or "")[:10] > erased_on:
            kept.append(change)
            readmitted.append(change["email"])
        else:
            report.counts["erased"] += 1
            report.changes.append(f"{change['email']}: left out, erased on {erased_on} at their request "
                                  f"(a sign-up confirmed {change.get('at') or 'before'}; "
                                  "`subscribers add --resubscribe` if they asked to come back)")
    return kept, readmitted


def _apply(row: Row, column: dict[str, int], change: dict[str, Any], report: SignupSyncReport, stamp: str,
           new: bool = False) -> None:
    """Apply one change to `row`; `column`: where each column of the list is, worked out once a list."""
    if change["kind"] == "subscribed":
        confirmed = str(change.get("at") or "")
        if confirmed and row[column["signup_confirmed_at"]] == confirmed:
            report.counts["already"] += 1  # applied by a sync that stopped before writing its cursor
            return
        was = row[STATUS]
        subscribe_row(row, resubscribe=True, stamp=confirmed or stamp)
        if not new:
            if was == "subscribed":
                report.counts["already"] += 1
            else:
                report.counts["resubscribed"] += 1
                report.changes.append(f"{row[EMAIL]}: {was} → subscribed (confirmed sign-up)")
        row[FIRST_NAME] = row[FIRST_NAME] or str(change.get("first_name") or "")
        row[TAGS] = merge_tags(split_tags(row[TAGS]), split_tags(str(change.get("tags") or "")))
        for name, key in zip(EVIDENCE, ("requested_at", "at", "request_ip", "confirm_ip", "page"), strict=True):
            row[column[name]] = str(change.get(key) or "")
        row[UPDATED_AT] = stamp
        return
    if row[STATUS] == "subscribed":
        report.counts["unsubscribed"] += 1
        report.changes.append(f"{row[EMAIL]}: subscribed → unsubscribed")
        row[STATUS], row[UPDATED_AT] = "unsubscribed", stamp
    else:
        report.counts["already"] += 1


def sync_signups(settings: Settings, dry_run: bool = False) -> SignupSyncReport:
    """Pull the sign-up server's changes since the last sync and apply them, page by page."""
    assert settings.signup is not None
    secret = tokens.newsletter_secret()
    report = SignupSyncReport(url=settings.signup.url, dry_run=dry_run, cursor=read_cursor(settings))
    while True:
        page = fetch_changes(settings.signup.url, secret, report.cursor)
        apply_changes(settings, page["changes"], report, dry_run)
        if dry_run:
            report.more = bool(page.get("more"))
            return report
        # After the lists: nothing lost. Written even when unchanged: its time is the last sync's.
        write_text(cursor_path(settings), f"{page['next']}\n")
        report.cursor = page["next"]
        if not page.get("more") or not page["changes"]:
            return report


@dataclass
class SyncReports:
    """`subscribers sync`: the sign-up server's part (when `signup:` is set), then SendGrid's."""

    reports: list[Any]

    def lines(self) -> list[str]:
        return [line for report in self.reports for line in report.lines()]


def sync_subscribers(settings: Settings, list_name: str, dry_run: bool = False,
                     retry: RetryPolicy | None = None) -> SyncReports:
    # The server's changes first: an unsubscribe made there is in the list even if SendGrid cannot be reached.
    reports: list[Any] = [sync_signups(settings, dry_run)] if settings.signup is not None else []
    if settings.provider == "sendgrid":
        from newsletter.providers.sendgrid.suppressions import sync_suppressions

        reports.append(sync_suppressions(settings, list_name, dry_run=dry_run, retry=retry))
    elif not reports:  # an SMTP server keeps no list of who unsubscribed or bounced
        raise SubscriberError(f"nothing to sync: through {settings.provider} there is no suppression list to pull "
                              "(SendGrid keeps one); set signup: (newsletter serve) for readers to leave on your "
                              "own page, and sync brings their changes")
    return SyncReports(reports)


@dataclass
class PullBeforeSend:
    """What a real send pulled from the sign-up server first, or why it could not."""

    report: SignupSyncReport | None
    unreachable: str = ""  # the warning when the changes could not be pulled

    def lines(self) -> list[str]:
        return self.report.lines()[:1] if self.report is not None else []


def pull_before_send(settings: Settings) -> PullBeforeSend:
    """The sign-up server's changes into the lists before a real send reads them, so an unsubscribe
    made this morning is honoured. A server that cannot be reached is a warning saying how old the
    list's last sync is; the send asks before going on (cli.py)."""
    try:
        return PullBeforeSend(sync_signups(settings))
    except SubscriberError as exc:
        return PullBeforeSend(None, f"{exc}; {_last_sync(settings)}: unsubscribes made on the server since then "
                                    "are not in the list")


def _last_sync(settings: Settings) -> str:
    """When the lists last had the server's changes, as a clause."""
    try:
        age = time.time() - cursor_path(settings).stat().st_mtime
    except OSError:
        return "the lists have never had its changes (no `subscribers sync` yet)"
    for unit, seconds in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if age >= seconds:
            count = int(age // seconds)
            return f"the last sync was {count} {unit}{'s' if count != 1 else ''} ago"
    return "the last sync was less than a minute ago"
