"""`newsletter stats [ISSUE]`: how each sent issue did, from SendGrid's category stats,
its rates held against the limits mailbox providers keep (spam reports, bounces).

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
from fractions import Fraction
from typing import Any

from newsletter.findings import Finding
from newsletter.config import Settings
from newsletter.content import ISSUE_FILE, issue_folder
from newsletter.errors import NewsletterError
from newsletter.providers.sendgrid.client import SendGridClient
from newsletter.providers.sendgrid.categories import issue_category
from newsletter.providers.sendgrid.category_stats import METRICS, Metrics, category_totals
from newsletter.sending.ledger import first_delivered_at
from newsletter.sending.provider import RetryPolicy

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
    ("spam_reports", "spam reports", "delivered"),
    ("unsubscribes", "unsubscribes", "delivered"),
    ("blocks", "blocks", None),
    ("deferred", "deferred", None),
)
# Gmail's email sender guidelines (support.google.com/a/answer/81126 and its FAQ, 14229414): keep the
# user-reported spam rate below 0.1% and never let it reach 0.3%. Above 0.1% inbox delivery already
# suffers; at 0.3% or more it suffers more, and a bulk sender over 0.3% is "ineligible for mitigation"
# until its rate stays below 0.3% for 7 consecutive days. Yahoo keeps the same 0.3%. SendGrid counts
# the spam reports of every provider with a feedback loop; Gmail's own rate is in Postmaster Tools.
SPAM_TARGET = Fraction(1, 1000)
SPAM_LIMIT = Fraction(3, 1000)
# More bounces than this means addresses that no longer exist are still mailed: receivers read a high
# bounce rate as a sender who does not keep its list, and SendGrid reviews accounts over it.
BOUNCE_LIMIT = Fraction(2, 100)
GUIDELINES = "Gmail's email sender guidelines"


@dataclass(frozen=True)
class RateKind:
    """A rate shown for each issue: `metric` per `over`, with `digits` decimals of a percent."""

    metric: str
    label: str
    over: str
    digits: int

    def shown(self, rate: float | None) -> str:
        return "-" if rate is None else f"{rate:.{self.digits}%}"


# The rates of the overview, the trend and the report, in that order. Spam reports and
# unsubscribes need two decimals: the limits they are held against are 0.1% and 0.3%.
RATES = (
    RateKind("unique_opens", "unique opens", "delivered", 1),
    RateKind("unique_clicks", "unique clicks", "delivered", 1),
    RateKind("bounces", "bounces", "requests", 1),
    RateKind("spam_reports", "spam reports", "delivered", 2),
    RateKind("unsubscribes", "unsubscribes", "delivered", 2),
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
                digits = next((kind.digits for kind in RATES if kind.metric == metric), 1)
                line += f"  {rate:6.{digits}%} of {over}"
            lines.append(line)
        lines.append(OPENS_NOTE)
        return lines

    def findings(self) -> list[Finding]:
        """The rates held against the limits: spam reports per delivered, bounces per request."""
        found: list[Finding] = []
        spam, delivered = self.metrics["spam_reports"], self.metrics["delivered"]
        spam_rate = Fraction(spam, delivered) if delivered else Fraction(0)
        if spam and not delivered:
            found.append(Finding("warning", (
                f"{self.issue}: {spam:,} spam report{'' if spam == 1 else 's'} and nothing delivered in SendGrid's "
                "figures, so the spam-report rate cannot be held against Gmail's 0.1% target and 0.3% limit; "
                f"Gmail counts the reports all the same ({GUIDELINES})")))
        elif spam_rate >= SPAM_LIMIT:
            found.append(Finding("error", (
                f"{self.issue}: spam reports are {_beside(spam_rate, SPAM_LIMIT, 2)} of delivered, at or over the "
                "0.3% that Gmail allows: it puts more of your mail in spam, and will not help with its delivery "
                f"(no mitigation) until your rate stays under 0.3% for 7 days in a row ({GUIDELINES}); "
                "mail only readers who asked for it, and keep the unsubscribe link plain to see")))
        elif spam_rate > SPAM_TARGET:
            found.append(Finding("warning", (
                f"{self.issue}: spam reports are {_beside(spam_rate, SPAM_TARGET, 2)} of delivered, over Gmail's "
                f"0.1% target: above it Gmail already puts less of a bulk sender's mail in the inbox ({GUIDELINES})")))
        bounces, requests = self.metrics["bounces"], self.metrics["requests"]
        bounce_rate = Fraction(bounces, requests) if requests else Fraction(0)
        if bounce_rate > BOUNCE_LIMIT:
            found.append(Finding("warning", (
                f"{self.issue}: bounces are {_beside(bounce_rate, BOUNCE_LIMIT, 1)} of requests, over 2%: the list "
                "needs cleaning; `newsletter subscribers sync` marks the addresses SendGrid bounced as bounced, "
                "so the next send leaves them out")))
        return found

    def row(self) -> str:
        """One line of the overview of every sent issue."""
        rates = "".join(f"{kind.shown(self.rate(kind.metric, kind.over)):>{len(kind.label) + 2}}" for kind in RATES)
        return f"{self.issue:<20} {self.first_sent:%Y-%m-%d}  {self.metrics['delivered']:>9,}{rates}"

    def as_dict(self) -> dict[str, Any]:
        return {"issue": self.issue, "category": self.category,
                "first_sent": self.first_sent.isoformat().replace("+00:00", "Z"),
                "start_date": self.start.isoformat(), "end_date": self.end.isoformat(),
                **{metric: self.metrics[metric] for metric in METRICS},
                "rates": {kind.metric: self.rate(kind.metric, kind.over) for kind in RATES},
                "findings": [{"level": finding.level, "message": finding.message} for finding in self.findings()]}


@dataclass(frozen=True)
class SentIssues:
    """Every sent issue's figures, newest first: one row each, the trend, what is over a limit."""

    issues: list[IssueFigures]

    def lines(self) -> list[str]:
        if not self.issues:
            return ["No issue has been sent yet: no figures to show."]
        header = f"{'issue':<20} {'first sent':<10}  {'delivered':>9}" + "".join(f"  {kind.label}" for kind in RATES)
        return [header, *(figures.row() for figures in self.issues), *self.trend(), OPENS_NOTE]

    def trend(self) -> list[str]:
        """The newest issue's rates against the mean of the issues sent before it."""
        newest, earlier = self.issues[0], self.issues[1:]
        if not earlier:
            return []
        lines = []
        for kind in RATES:
            now = newest.rate(kind.metric, kind.over)
            before = [rate for figures in earlier if (rate := figures.rate(kind.metric, kind.over)) is not None]
            if now is None or not before:
                continue
            mean = sum(before) / len(before)
            shown_now, shown_mean = kind.shown(now), kind.shown(mean)
            direction = "same as" if shown_now == shown_mean else "up from" if now > mean else "down from"
            lines.append(f"  {kind.label:<14}{shown_now:>7}  {direction} {shown_mean}")
        if not lines:  # nothing comparable (the newest or every earlier issue delivered nothing): no heading alone
            return []
        return [f"Trend: {newest.issue} against the mean of the {len(earlier)} "
                f"issue{'s' if len(earlier) != 1 else ''} sent before it", *lines]

    def findings(self) -> list[Finding]:
        return [finding for figures in self.issues for finding in figures.findings()]


def _beside(rate: Fraction, limit: Fraction, digits: int) -> str:
    """`rate` as a percent, with a digit more while rounding would show it as the limit it is held against
    (1 in 980 is 0.102%, not "0.10%, over 0.1%")."""
    while f"{float(rate):.{digits}%}" == f"{float(limit):.{digits}%}" and rate != limit and digits < 4:
        digits += 1
    return f"{float(rate):.{digits}%}"


def _window(first: float, today: dt.date) -> tuple[dt.datetime, dt.date]:
    sent = dt.datetime.fromtimestamp(first, dt.UTC)
    start = max(sent.date() - dt.timedelta(days=1), today - dt.timedelta(days=KEPT_DAYS))
    return sent, min(start, today)


def _figures_kept_by_provider(settings: Settings) -> None:
    """Only SendGrid keeps an issue's figures; an SMTP server hands mail on and reports nothing back."""
    if settings.provider != "sendgrid":
        raise NoFiguresKept(f"{settings.provider} reports no figures: delivered, opens, clicks and bounces are what "
                         "SendGrid keeps (provider: sendgrid); `newsletter status ISSUE` shows what was sent")


def issue_stats(settings: Settings, issue: str, client: SendGridClient | None = None,
                retry: RetryPolicy | None = None) -> IssueFigures:
    """The figures of one sent issue."""
    _figures_kept_by_provider(settings)
    name = issue_folder(settings, issue).name  # refuses an unknown issue
    first = first_delivered_at(settings, name)
    if first is None:
        raise NotSentYet(f"{name} has not been sent yet (no request of it was accepted): no figures to show")
    today = dt.datetime.now(dt.UTC).date()
    sent, start = _window(first, today)
    category = issue_category(name)
    client = client or SendGridClient.for_settings(settings, KEY_NEEDS, retry)
    metrics = category_totals(client, [category], start, today)[category]
    return IssueFigures(name, category, sent, start, today, metrics)


def all_stats(settings: Settings, client: SendGridClient | None = None,
              retry: RetryPolicy | None = None) -> SentIssues:
    """The figures of every sent issue, newest first; a few requests for them all."""
    _figures_kept_by_provider(settings)
    sent: list[tuple[str, float]] = []
    for path in sorted(settings.issues_dir.glob(f"*/{ISSUE_FILE}")):
        first = first_delivered_at(settings, path.parent.name)
        if first is not None:
            sent.append((path.parent.name, first))
    if not sent:
        return SentIssues([])
    sent.sort(key=lambda item: item[1], reverse=True)
    today = dt.datetime.now(dt.UTC).date()
    windows = {name: _window(first, today) for name, first in sent}
    categories = [issue_category(name) for name, _ in sent]
    client = client or SendGridClient.for_settings(settings, KEY_NEEDS, retry)
    # One window for all: a day with no mail of an issue adds nothing to its category.
    totals = category_totals(client, categories, min(start for _, start in windows.values()), today)
    return SentIssues([IssueFigures(name, issue_category(name), windows[name][0], windows[name][1], today,
                                    totals[issue_category(name)]) for name, _ in sent])
