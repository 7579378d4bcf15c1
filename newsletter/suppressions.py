"""`subscribers sync`: mark the addresses SendGrid suppresses in a list.

What is pulled, and what it becomes:

- global unsubscribes (`/v3/suppression/unsubscribes`) and, when `sendgrid.asm_group_id`
  is set, that group's unsubscribes → `unsubscribed`;
- bounces and invalid emails → `bounced`;
- spam reports → `complained`.

Blocks are not pulled: a block is a receiving server refusing one message for a while
(a full mailbox, a greylist, a reputation hiccup); SendGrid keeps sending to the address,
and marking it bounced would drop readers for a passing problem.

A status only ever gets stronger (subscribed < unsubscribed < bounced < complained), so a
sync never makes an address mailable. Every page is followed (the `Link: rel="next"`
header, or offset paging where no Link header comes). The API key comes from the
environment only and appears in no message.

Plain urllib rather than sendgrid-python's client: the next-page links are whole URLs,
followed as given after checking they stay on SendGrid's host (the key goes with every
request), and the client shares request headers between calls.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from newsletter import __version__
from newsletter.config import READ_SUPPRESSIONS, Settings, sendgrid_api_key
from newsletter.errors import SubscriberError, scrub, where
from newsletter.subscribers.addresses import address_key
from newsletter.subscribers.store import (
    DEFAULT_LIST, EMAIL, STATUS, STATUS_RANK, UPDATED_AT, ListFile, Row, list_path,
    no_such_list, now_iso, rewrite_list,
)

PAGE_SIZE = 500
ATTEMPTS = 4          # per request: 429 and 5xx answers are retried, then reported
FIRST_BACKOFF = 1.0   # seconds before the first retry, doubling after
MAX_BACKOFF = 30.0    # seconds to wait at most before a retry, whatever SendGrid asks
SHOWN_CHANGES = 20


@dataclass(frozen=True)
class SuppressionSource:
    label: str
    path: str
    status: str
    paged: bool = True


SOURCES = (
    SuppressionSource("global unsubscribes", "/v3/suppression/unsubscribes", "unsubscribed"),
    SuppressionSource("bounces", "/v3/suppression/bounces", "bounced"),
    SuppressionSource("invalid emails", "/v3/suppression/invalid_emails", "bounced"),
    SuppressionSource("spam reports", "/v3/suppression/spam_reports", "complained"),
)


def group_source(group_id: int) -> SuppressionSource:
    """The unsubscribes of one unsubscribe (ASM) group; SendGrid answers them in one list."""
    return SuppressionSource(f"group {group_id} unsubscribes", f"/v3/asm/groups/{group_id}/suppressions",
                             "unsubscribed", paged=False)


@dataclass
class SyncReport:
    """What a sync pulled and what it changed in the list."""

    target: Path
    dry_run: bool = False
    pulled: dict[str, int] = field(default_factory=dict)   # source label → addresses
    changed: Counter[str] = field(default_factory=Counter)  # new status → rows
    changes: list[str] = field(default_factory=list)        # "address: old → new"
    already: int = 0
    not_on_list: int = 0

    def lines(self) -> list[str]:
        total = sum(self.changed.values())
        head = f"{where(self.target)}: {'would change' if self.dry_run else 'changed'} {total} address{'es' if total != 1 else ''}"
        lines = [head + (" (dry run: nothing written)" if self.dry_run else "")]
        lines += [f"  pulled {count} {label}" for label, count in self.pulled.items()]
        lines += [f"  {'now ' + status:<19}{self.changed[status]}" for status in STATUS_RANK if status != "subscribed"]
        lines.append(f"  already so         {self.already}")
        lines.append(f"  not on the list    {self.not_on_list} (left alone)")
        lines += [f"  {change}" for change in self.changes[:SHOWN_CHANGES]]
        if len(self.changes) > SHOWN_CHANGES:
            lines.append(f"  … and {len(self.changes) - SHOWN_CHANGES} more")
        return lines


class SuppressionClient:
    """GETs SendGrid's suppression lists, every page, with a timeout on every request."""

    def __init__(self, base_url: str, api_key: str, timeout: float, page_size: int = PAGE_SIZE) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self.page_size = page_size
        self._origin = urlsplit(self.base_url)[:2]

    def addresses(self, source: SuppressionSource) -> Iterator[str]:
        """Every address of `source`, page after page."""
        offset = 0
        query = f"?{urlencode({'limit': self.page_size, 'offset': 0})}" if source.paged else ""
        url: str | None = f"{self.base_url}{source.path}{query}"
        visited: set[str] = set()
        while url is not None and url not in visited:
            visited.add(url)
            page, headers = self._get(url, source)
            if not page:
                break  # past the end, whatever a Link header might still offer
            for entry in page:
                email = entry.get("email") if isinstance(entry, dict) else entry
                if isinstance(email, str) and email.strip():
                    yield email.strip()
            link = headers.get("Link")
            if link is not None:
                url = self._checked(next_link(link), source)
            elif source.paged and len(page) >= self.page_size:
                offset += self.page_size
                url = f"{self.base_url}{source.path}?{urlencode({'limit': self.page_size, 'offset': offset})}"
            else:
                url = None

    def _checked(self, url: str | None, source: SuppressionSource) -> str | None:
        # The API key goes with every request: never follow a link off SendGrid's host.
        if url is not None and urlsplit(url)[:2] != self._origin:
            raise SubscriberError(
                f"SendGrid's next page of {source.label} points to another host ({urlsplit(url).netloc}); "
                "not following it"
            )
        return url

    def _get(self, url: str, source: SuppressionSource) -> tuple[list[Any], Message]:
        request = urllib.request.Request(url, headers={
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "application/json",
            "User-Agent": f"newsletter/{__version__}",
        })
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    body = answer.read()
                    headers = answer.headers
                break
            except urllib.error.HTTPError as exc:
                if (exc.code == 429 or exc.code >= 500) and attempt < ATTEMPTS:
                    time.sleep(_backoff(exc.headers, attempt))
                    continue
                raise _http_error(exc, source, self._api_key) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt < ATTEMPTS:
                    time.sleep(_backoff(None, attempt))
                    continue
                reason = scrub(str(getattr(exc, "reason", exc)), self._api_key, limit=300)
                raise SubscriberError(
                    f"could not reach SendGrid at {self.base_url} for {source.label} ({reason}); "
                    "check NEWSLETTER_SENDGRID_URL and the network"
                ) from None
        try:
            page = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            page = None
        if not isinstance(page, list):
            raise SubscriberError(f"SendGrid answered GET {source.path} with something other than a JSON list")
        return page, headers


def _backoff(headers: Message | None, attempt: int) -> float:
    """How long to wait before retry `attempt`: what SendGrid asks for, else doubling backoff."""
    wait = FIRST_BACKOFF * 2.0 ** (attempt - 1)
    if headers is not None:
        if (retry_after := headers.get("Retry-After", "")).isdigit():
            wait = float(retry_after)
        elif (reset := headers.get("X-RateLimit-Reset", "")).isdigit():
            wait = float(reset) - time.time()
    return min(max(wait, 0.0), MAX_BACKOFF)


def _http_error(exc: urllib.error.HTTPError, source: SuppressionSource, api_key: str) -> SubscriberError:
    """A SendGrid error answer as one line a person can act on (never showing the key)."""
    if exc.code in (401, 403):
        return SubscriberError(
            f"SendGrid refused the API key ({exc.code}) when reading {source.label}: check SENDGRID_API_KEY "
            "(it needs read access to Suppressions)"
        )
    if exc.code == 404 and not source.paged:
        return SubscriberError(
            f"SendGrid has no {source.label.replace(' unsubscribes', '')} (404): check sendgrid.asm_group_id "
            "in newsletter.yaml"
        )
    detail = ""
    try:
        errors = json.loads(exc.read()).get("errors") or []
        detail = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
    except (ValueError, AttributeError, OSError):
        pass
    detail = scrub(detail, api_key, limit=300)  # a server may quote the key back: hidden before the cut
    return SubscriberError(
        f"SendGrid answered {exc.code} when reading {source.label} (GET {source.path})" + (f": {detail}" if detail else "")
    )


def next_link(header: str) -> str | None:
    """The URL marked rel="next" in a `Link` header, if any."""
    for part in header.split(","):
        url, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
            return url.strip().strip("<>")
    return None


def pull_suppressions(settings: Settings, client: SuppressionClient, report: SyncReport) -> dict[str, str]:
    """Every suppressed address by `address_key`, with the strongest status it earns."""
    sources = list(SOURCES)
    if settings.sendgrid.asm_group_id is not None:
        sources.insert(1, group_source(settings.sendgrid.asm_group_id))
    suppressed: dict[str, str] = {}
    for source in sources:
        count = 0
        for email in client.addresses(source):
            count += 1
            key = address_key(email)
            if STATUS_RANK[source.status] > STATUS_RANK.get(suppressed.get(key, ""), -1):
                suppressed[key] = source.status
        report.pulled[source.label] = count
    return suppressed


def sync_suppressions(
    settings: Settings, list_name: str = DEFAULT_LIST, dry_run: bool = False,
    page_size: int = PAGE_SIZE,
) -> SyncReport:
    """Pull SendGrid's suppressions and mark those addresses in list `list_name`."""
    target = list_path(settings, list_name)
    if not target.exists():
        raise no_such_list(target)
    client = SuppressionClient(settings.sendgrid_url, sendgrid_api_key(READ_SUPPRESSIONS), settings.sendgrid.timeout,
                               page_size)
    report = SyncReport(target=target, dry_run=dry_run)
    # Pulled before taking the lock: the network may be slow, the list's other writers need not wait.
    suppressed = pull_suppressions(settings, client, report)
    stamp = now_iso()

    def mark(listing: ListFile) -> tuple[tuple[str, ...], Iterator[Row]]:
        def rows() -> Iterator[Row]:
            seen = 0
            for _, row in listing.rows:
                status = suppressed.get(address_key(row[EMAIL]))
                if status is not None:
                    seen += 1
                    if STATUS_RANK[status] > STATUS_RANK[row[STATUS]]:
                        report.changes.append(f"{row[EMAIL]}: {row[STATUS]} → {status}")
                        report.changed[status] += 1
                        row[STATUS], row[UPDATED_AT] = status, stamp
                    else:
                        report.already += 1
                yield row
            report.not_on_list = len(suppressed) - seen
        return listing.extra_columns, rows()

    rewrite_list(target, mark, dry_run=dry_run)
    return report
