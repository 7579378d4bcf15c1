"""Per-issue figures from SendGrid: the category stats of each issue's own category.

Every message carries its issue's category (`sendgrid/categories.py`), so
`GET /v3/categories/stats` can answer for one issue alone. SendGrid takes at most 10
categories a stats request, so several issues are asked about 10 at a time.
"""

from __future__ import annotations

import datetime as dt

from newsletter.providers.sendgrid.categories import MAX_CATEGORIES
from newsletter.providers.sendgrid.client import Call, Fields, ListOf, SendGridClient

# SendGrid's names of the 16 integers of each day's `metrics`.
METRICS = ("requests", "processed", "delivered", "opens", "unique_opens", "clicks", "unique_clicks",
           "bounces", "bounce_drops", "spam_reports", "spam_report_drops", "unsubscribes", "unsubscribe_drops",
           "blocks", "deferred", "invalid_emails")

Metrics = dict[str, int]

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
