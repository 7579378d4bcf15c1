"""Per-issue figures from SendGrid: each issue's own category, and its category stats.

Every send adds the issue's own category (`issue_category`) to the configured ones, so
`GET /v3/categories/stats` can answer for one issue alone. SendGrid takes at most 10
categories a message, each ASCII and at most 255 characters; and at most 10 categories
a stats request, so several issues are asked about 10 at a time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from collections.abc import Iterable

from newsletter.sendgrid.client import Call, Fields, ListOf, SendGridClient

MAX_CATEGORY_CHARS = 255
MAX_CATEGORIES = 10       # per message, and per stats request
# SendGrid's names of the 16 integers of each day's `metrics`.
METRICS = ("requests", "processed", "delivered", "opens", "unique_opens", "clicks", "unique_clicks",
           "bounces", "bounce_drops", "spam_reports", "spam_report_drops", "unsubscribes", "unsubscribe_drops",
           "blocks", "deferred", "invalid_emails")

Metrics = dict[str, int]


def issue_category(issue: str) -> str:
    """The issue's own category: its name (`issue-12`), made ASCII and short enough if need be.

    A name SendGrid would refuse keeps its ASCII letters and gains a short hash of the
    whole name, so two issues never share a category.
    """
    if issue.isascii() and issue.isprintable() and 0 < len(issue) <= MAX_CATEGORY_CHARS:
        return issue
    folded = unicodedata.normalize("NFKD", issue).encode("ascii", "ignore").decode("ascii")
    folded = re.sub(r"[^\x21-\x7e]+", "-", folded).strip("-") or "issue"
    digest = hashlib.sha256(issue.encode("utf-8")).hexdigest()[:8]
    return f"{folded[:MAX_CATEGORY_CHARS - 9]}-{digest}"


def message_categories(configured: Iterable[str], issue: str, proof: bool = False) -> list[str]:
    """The categories of every message of `issue`: the configured ones, then the issue's own.

    A proof's is `<issue>-proof`, so the editors' opens of proofs stay out of the issue's figures.
    """
    own = issue_category(f"{issue}-proof" if proof else issue)
    return list(dict.fromkeys([*configured, own]))[:MAX_CATEGORIES]


STATS = Call("category statistics", needs="the scope categories.stats.read (Stats: read access)")
# A day of `GET /v3/categories/stats` as SendGrid's spec documents it: every metric an integer.
STATS_ANSWER = ListOf(Fields({"date": str}, {"stats": ListOf(Fields(
    {"type": str}, {"name": str, "metrics": Fields({metric: int for metric in METRICS})}))}))


def category_totals(client: SendGridClient, categories: list[str], start: dt.date,
                    end: dt.date) -> dict[str, Metrics]:
    """Each category's metrics summed from `start` to `end` (both included), every metric present."""
    totals: dict[str, Metrics] = {name: dict.fromkeys(METRICS, 0) for name in categories}
    for first in range(0, len(categories), MAX_CATEGORIES):
        query: dict[str, str | int | list[str]] = {"start_date": start.isoformat(), "end_date": end.isoformat(),
                 "categories": categories[first:first + MAX_CATEGORIES], "aggregated_by": "day"}
        days = client.get("/v3/categories/stats", STATS, query).shaped(STATS_ANSWER)
        for day in days:
            for entry in day.get("stats", []):
                name, metrics = entry.get("name"), entry.get("metrics")
                if name not in totals or metrics is None:
                    continue  # another category's figures, or a day without any
                for metric in METRICS:
                    totals[name][metric] += metrics[metric]
    return totals
