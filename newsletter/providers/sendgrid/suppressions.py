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

Every call goes through the one SendGrid client (`client.py`): its timeout, its retry
policy and its error messages. A next-page link is a whole URL; it is followed only on
SendGrid's own host, since the key goes with every request.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from newsletter.config import READ_SUPPRESSIONS, Settings
from newsletter.errors import SubscriberError, where
from newsletter.providers.sendgrid.client import DEFAULT_POLICY, Answer, Call, SendGridClient
from newsletter.sending.provider import RetryPolicy
from newsletter.subscribers.addresses import address_key
from newsletter.subscribers.store import (
    DEFAULT_LIST, EMAIL, STATUS, STATUS_RANK, UPDATED_AT, ListFile, Row, list_path,
    no_such_list, now_iso, rewrite_list,
)

PAGE_SIZE = 500
ATTEMPTS = DEFAULT_POLICY.attempts  # per request, then the failure is reported
SHOWN_CHANGES = 20


@dataclass(frozen=True)
class SuppressionSource:
    label: str
    path: str
    status: str
    paged: bool = True

    @property
    def call(self) -> Call:
        not_found = ""
        if not self.paged:
            not_found = (f"SendGrid has no {self.label.replace(' unsubscribes', '')} (404): check "
                         "sendgrid.asm_group_id in newsletter.yaml")
        return Call(self.label, "reading", needs="read access to Suppressions", not_found=not_found)


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
    """GETs SendGrid's suppression lists, every page, through the one client."""

    def __init__(self, client: SendGridClient, page_size: int = PAGE_SIZE) -> None:
        self.client = client
        self.page_size = page_size

    def addresses(self, source: SuppressionSource) -> Iterator[str]:
        """Every address of `source`, page after page."""
        offset = 0
        path = source.path
        query: dict[str, Any] | None = {"limit": self.page_size, "offset": 0} if source.paged else None
        visited: set[str] = set()
        while True:
            seen = f"{path}?{sorted((query or {}).items())}"
            if seen in visited:
                return
            visited.add(seen)
            answer = self.client.get(path, source.call, query)
            page = self._page(answer, source)
            if not page:
                return  # past the end, whatever a Link header might still offer
            for entry in page:
                email = entry.get("email") if isinstance(entry, dict) else entry
                if isinstance(email, str) and email.strip():
                    yield email.strip()
            link = {k.lower(): v for k, v in answer.headers.items()}.get("link")
            if link is not None:
                url = next_link(link)
                if url is None:
                    return
                if not self.client.same_origin(url):
                    # The API key goes with every request: never follow a link off SendGrid's host.
                    raise SubscriberError(
                        f"SendGrid's next page of {source.label} points to another host ({urlsplit(url).netloc}); "
                        "not following it"
                    )
                path, query = self.client.split_url(url)
            elif source.paged and len(page) >= self.page_size:
                offset += self.page_size
                query = {"limit": self.page_size, "offset": offset}
            else:
                return

    @staticmethod
    def _page(answer: Answer, source: SuppressionSource) -> list[Any]:
        if not isinstance(answer.body, list):
            raise SubscriberError(f"SendGrid answered GET {source.path} with something other than a JSON list")
        return answer.body


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
    page_size: int = PAGE_SIZE, retry: RetryPolicy | None = None,
) -> SyncReport:
    """Pull SendGrid's suppressions and mark those addresses in list `list_name`."""
    target = list_path(settings, list_name)
    if not target.exists():
        raise no_such_list(target)
    client = SuppressionClient(SendGridClient.for_settings(settings, READ_SUPPRESSIONS, retry), page_size)
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
