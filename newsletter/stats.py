"""`newsletter stats [ISSUE]`: how each sent issue did, from SendGrid's category stats.

An issue's figures run from the day of its first send (from its ledger) to today: the
day SendGrid delivered the first request it accepted (its send time, for `send --at`;
a cancelled scheduled send does not count, since nobody got it). The
day before the first send is asked for too: SendGrid does not say in which time zone it
counts days, and the category is the issue's own, so that day can only add nothing or
what belongs. Category stats cover the last 13 months only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from newsletter.config import Settings
from newsletter.content import ISSUE_FILE, issue_folder
from newsletter.errors import NewsletterError
from newsletter.providers.sendgrid.client import SendGridClient
from newsletter.providers.sendgrid.categories import issue_category
from newsletter.providers.sendgrid.stats import METRICS, Metrics, category_totals
from newsletter.sending.ledger import first_delivered_at

KEY_NEEDS = "can read category statistics (Stats: read access)"
KEPT_DAYS = 395  # SendGrid keeps category stats for 13 months
OPENS_NOTE = ("Opens are estimates: Apple Mail's privacy protection opens every message it receives, "
              "read or not, so opens count more readers than there were.")
# The figures shown, in order, and the rates beside some: (metric, label, over which metric).
SHOWN: tuple[tuple[str, str, str | None], ...] = (
    ("requests", "requests", None),
    ("delivered", "delivered", None),
    ("opens", "opens", None),
    ("unique_opens", "unique opens", "delivered"),
    ("clicks", "clicks", None),
    ("unique_clicks", "unique clicks", "delivered"),
    ("bounces", "bounces", "requests"),
    ("spam_reports", "spam reports", None),
    ("unsubscribes", "unsubscribes", None),
    ("blocks", "blocks", None),
    ("deferred", "deferred", None),
)


class NoFiguresKept(NewsletterError):
    """The provider keeps no figures of what it sent (SMTP)."""


class NotSentYet(NewsletterError):
    """Stats were asked for an issue SendGrid never accepted a request of."""


@dataclass(frozen=True)
class IssueFigures:
    issue: str
    category: str
    first_sent: dt.datetime   # UTC; for a send scheduled ahead (`send --at`), when SendGrid delivers it
    start: dt.date
    end: dt.date
    metrics: Metrics

    def rate(self, metric: str, over: str) -> float | None:
        total = self.metrics[over]
        return self.metrics[metric] / total if total else None

    def lines(self) -> list[str]:
        sent = "first sent" if self.first_sent <= dt.datetime.now(dt.UTC) else "scheduled for"
        lines = [f"{self.issue}: {sent} {self.first_sent:%Y-%m-%d %H:%M} UTC; SendGrid's figures for "
                 f"category {self.category}, {self.start} to {self.end}"]
        for metric, label, over in SHOWN:
            line = f"  {label:<14}{self.metrics[metric]:>10,}"
            rate = self.rate(metric, over) if over else None
            if rate is not None:
                line += f"  {rate:6.1%} of {over}"
            lines.append(line)
        lines.append(OPENS_NOTE)
        return lines

    def summary(self) -> str:
        """One line, for the list of every sent issue."""
        def pct(metric: str, over: str) -> str:
            rate = self.rate(metric, over)
            return f"{rate:.1%}" if rate is not None else "-"

        return (f"{self.issue:<20} {self.first_sent:%Y-%m-%d}  requests {self.metrics['requests']:>8,}  "
                f"delivered {self.metrics['delivered']:>8,}  unique opens {pct('unique_opens', 'delivered'):>6}  "
                f"unique clicks {pct('unique_clicks', 'delivered'):>6}  bounces {pct('bounces', 'requests'):>6}")

    def as_dict(self) -> dict[str, Any]:
        return {"issue": self.issue, "category": self.category,
                "first_sent": self.first_sent.isoformat().replace("+00:00", "Z"),
                "start_date": self.start.isoformat(), "end_date": self.end.isoformat(),
                **{metric: self.metrics[metric] for metric in METRICS}}


def _window(first: float, today: dt.date) -> tuple[dt.datetime, dt.date]:
    sent = dt.datetime.fromtimestamp(first, dt.UTC)
    start = max(sent.date() - dt.timedelta(days=1), today - dt.timedelta(days=KEPT_DAYS))
    return sent, min(start, today)


def _figures_kept_by_provider(settings: Settings) -> None:
    """Only SendGrid keeps an issue's figures; an SMTP server hands mail on and reports nothing back."""
    if settings.provider != "sendgrid":
        raise NoFiguresKept(f"{settings.provider} reports no figures: delivered, opens, clicks and bounces are what "
                         "SendGrid keeps (provider: sendgrid); `newsletter status ISSUE` shows what was sent")


def issue_stats(settings: Settings, issue: str, client: SendGridClient | None = None) -> IssueFigures:
    """The figures of one sent issue."""
    _figures_kept_by_provider(settings)
    name = issue_folder(settings, issue).name  # refuses an unknown issue
    first = first_delivered_at(settings, name)
    if first is None:
        raise NotSentYet(f"{name} has not been sent yet (no request of it was accepted): no figures to show")
    today = dt.datetime.now(dt.UTC).date()
    sent, start = _window(first, today)
    category = issue_category(name)
    client = client or SendGridClient.for_settings(settings, KEY_NEEDS)
    metrics = category_totals(client, [category], start, today)[category]
    return IssueFigures(name, category, sent, start, today, metrics)


def all_stats(settings: Settings, client: SendGridClient | None = None) -> list[IssueFigures]:
    """The figures of every sent issue, newest first; a few requests for them all."""
    _figures_kept_by_provider(settings)
    sent: list[tuple[str, float]] = []
    for path in sorted(settings.issues_dir.glob(f"*/{ISSUE_FILE}")):
        first = first_delivered_at(settings, path.parent.name)
        if first is not None:
            sent.append((path.parent.name, first))
    if not sent:
        return []
    sent.sort(key=lambda item: item[1], reverse=True)
    today = dt.datetime.now(dt.UTC).date()
    windows = {name: _window(first, today) for name, first in sent}
    categories = [issue_category(name) for name, _ in sent]
    client = client or SendGridClient.for_settings(settings, KEY_NEEDS)
    # One window for all: a day with no mail of an issue adds nothing to its category.
    totals = category_totals(client, categories, min(start for _, start in windows.values()), today)
    return [IssueFigures(name, issue_category(name), windows[name][0], windows[name][1], today,
                         totals[issue_category(name)]) for name, _ in sent]
