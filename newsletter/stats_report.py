"""`newsletter stats --report`: build/stats/index.html, a page an editor opens to see how it goes.

On it: the list's growth by month (`subscribers/list_growth.py`), and per sent issue
delivered, unique opens and clicks as rates, unsubscribes and spam reports with Gmail's
0.1% and 0.3% lines drawn (`issue_stats.py`); a real table under each chart holds its
numbers. With a provider that keeps no figures (SMTP) the page has the growth only, and
says why.

The charts are pygal's static SVG, inlined: the page needs no JavaScript, no font and no
other file, so it opens offline and can be mailed or archived as it is. pygal was chosen
over matplotlib: pure Python, about 2 MB installed and 0.07 s to import, where matplotlib
brings numpy (about 180 MB) and 0.6 s; and its SVG is styled by CSS classes, so the
light and dark schemes are one set of CSS variables rather than two drawings.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from newsletter.files.atomic import write_text
from newsletter.config import Settings
from newsletter.errors import where
from newsletter.issue_stats import (
    GUIDELINES, OPENS_NOTE, RATES, SPAM_LIMIT, SPAM_TARGET, IssueFigures, NoFiguresKept, SentIssues, all_stats,
)
from newsletter.providers.sendgrid.client import SendGridClient
from newsletter.sending.provider import RetryPolicy
from newsletter.subscribers.list_growth import ListGrowth
from newsletter.subscribers.lists import list_stats
from newsletter.subscribers.store import DEFAULT_LIST

REPORT_FOLDER = "stats"
TEMPLATE = "stats-report.html"
RATE_OF = {kind.metric: kind for kind in RATES}

# Series colours that read on the light page and on the dark one alike, in the order of a
# chart's series: the complaints chart's third and fourth, its limit lines, are amber (Gmail's
# 0.1% target) and red (its 0.3% limit), and dashed.
SERIES_COLOURS = ("#3b7dd8", "#9b59b6", "#d68910", "#e74c3c")
DASHED = {"dasharray": "10,6", "width": 3}


@dataclass(frozen=True)
class Chart:
    """One chart of the page and the table under it, which holds the same numbers."""

    key: str            # the chart's id on the page
    heading: str
    description: str    # what the chart shows, read out by a screen reader
    svg: Markup
    header: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]
    note: str = ""


@dataclass
class StatsReport:
    path: Path
    charts: list[Chart] = field(default_factory=list)
    issues: int = 0
    months: int = 0
    no_figures: str = ""  # why the page has no issue figures

    def lines(self) -> list[str]:
        lines = [f"Report: {where(self.path)} (the list's growth over {self.months} month"
                 f"{'s' if self.months != 1 else ''}, {self.issues} sent issue{'s' if self.issues != 1 else ''}); "
                 "open it in a browser, it needs no network"]
        if self.no_figures:
            lines.append(f"No issue figures on it: {self.no_figures}")
        return lines


def write_stats_report(settings: Settings, client: SendGridClient | None = None,
                       retry: RetryPolicy | None = None) -> StatsReport:
    """Write build/stats/index.html from the list and, with SendGrid, every sent issue's figures."""
    from newsletter.render.templates import environment

    growth = list_stats(settings, DEFAULT_LIST).growth
    report = StatsReport(settings.build_dir / REPORT_FOLDER / "index.html", months=growth.span)
    report.charts.append(_growth_chart(growth))
    try:
        sent = all_stats(settings, client, retry)
    except NoFiguresKept as exc:
        report.no_figures = f"{exc}; this page shows the list's growth only"
        sent = SentIssues([])
    else:
        if not sent.issues:
            report.no_figures = "no issue has been sent yet"
    oldest_first = list(reversed(sent.issues))
    if oldest_first:
        report.issues = len(oldest_first)
        report.charts += [_delivered_chart(oldest_first), _read_chart(oldest_first), _complaints_chart(oldest_first)]
    page = environment(settings.templates_dir).get_template(TEMPLATE).render(
        publication=settings.name, made=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        list_file=f"subscribers/{DEFAULT_LIST}.csv", charts=report.charts, no_figures=report.no_figures,
        with_issues=bool(oldest_first))
    write_text(report.path, page)
    return report


def _growth_chart(growth: ListGrowth) -> Chart:
    months = [month.month for month in growth.months]
    svg = _svg("growth", "Readers by month",
               "A line of the readers subscribed at the end of each month, and lines of those who joined and "
               "those who left that month.", "Line", months, [
                   ("readers at the month's end", [month.readers for month in growth.months], {}),
                   ("joined", [month.joined for month in growth.months], {"secondary": True}),
                   ("left (unsubscribed, bounced, complained)",
                    [month.unsubscribed + month.bounced + month.complained for month in growth.months],
                    {"secondary": True}),
               ], _count)
    rows = [(f"{m.month} (after {m.quiet_before:,} months in which nobody joined or left)" if m.quiet_before
             else m.month, _count(m.joined), _count(m.unsubscribed), _count(m.bounced), _count(m.complained),
             _count(m.readers)) for m in growth.months]
    notes = ["Joined is the month of subscribed_at; a reader left in the month of updated_at, the row's "
             "last change (the list keeps no other date of leaving). Joined and left are on the right-hand axis."]
    if growth.undated_joins:
        notes.append(f"{growth.undated_joins} row{'s' if growth.undated_joins != 1 else ''} without a subscribed_at "
                     "date are counted as readers from the first month.")
    if not growth.months:
        notes = ["No row of the list holds a subscribed_at or updated_at date: there is no growth to draw."]
    return Chart("growth", "The list's growth", "Readers by month", svg,
                 ("Month", "Joined", "Unsubscribed", "Bounced", "Complained", "Readers at the month's end"),
                 rows, " ".join(notes))


def _delivered_chart(issues: list[IssueFigures]) -> Chart:
    svg = _svg("delivered", "Delivered per issue", "Bars of the messages SendGrid delivered for each issue, "
               "oldest first.", "Bar", [figures.issue for figures in issues],
               [("delivered", [figures.metrics["delivered"] for figures in issues], {})], _count)
    rows = [(figures.issue, f"{figures.first_sent:%Y-%m-%d}", _count(figures.metrics["requests"]),
             _count(figures.metrics["delivered"]), _count(figures.metrics["bounces"]),
             _percent(figures, "bounces")) for figures in issues]
    return Chart("delivered", "Delivered per issue", "Delivered per issue", svg,
                 ("Issue", "First sent", "Requests", "Delivered", "Bounces", "Bounces per request"), rows)


def _read_chart(issues: list[IssueFigures]) -> Chart:
    svg = _svg("read", "Unique opens and clicks per delivered", "Bars of each issue's unique opens and unique "
               "clicks as a percentage of the messages delivered, oldest issue first.", "Bar",
               [figures.issue for figures in issues],
               [(RATE_OF[metric].label, [_rate(figures, metric) for figures in issues], {})
                for metric in ("unique_opens", "unique_clicks")], _percent_axis(1))
    rows = [(figures.issue, _count(figures.metrics["delivered"]), _count(figures.metrics["unique_opens"]),
             _percent(figures, "unique_opens"), _count(figures.metrics["unique_clicks"]),
             _percent(figures, "unique_clicks")) for figures in issues]
    return Chart("read", "Opens and clicks", "Unique opens and clicks per delivered", svg,
                 ("Issue", "Delivered", "Unique opens", "Opens per delivered", "Unique clicks",
                  "Clicks per delivered"), rows, OPENS_NOTE)


def _complaints_chart(issues: list[IssueFigures]) -> Chart:
    labels = [figures.issue for figures in issues]
    svg = _svg("complaints", "Unsubscribes and spam reports per delivered",
               "Lines of each issue's unsubscribes and spam reports as a percentage of the messages delivered, "
               "oldest issue first, with Gmail's 0.1% target and 0.3% limit for spam reports drawn as dashed "
               "lines.", "Line", labels, [
                   (RATE_OF["unsubscribes"].label, [_rate(figures, "unsubscribes") for figures in issues], {}),
                   (RATE_OF["spam_reports"].label, [_rate(figures, "spam_reports") for figures in issues], {}),
                   ("Gmail's 0.1% target", [float(SPAM_TARGET) * 100] * len(issues),
                    {"stroke_style": DASHED, "show_dots": False}),
                   ("Gmail's 0.3% limit", [float(SPAM_LIMIT) * 100] * len(issues),
                    {"stroke_style": DASHED, "show_dots": False}),
               ], _percent_axis(2))
    rows = []
    for figures in issues:
        found = {finding.level for finding in figures.findings() if "spam reports" in finding.message}
        against = "at or over 0.3%" if "error" in found else "over 0.1%" if "warning" in found else "under 0.1%"
        if figures.rate("spam_reports", "delivered") is None:
            against = "no rate: nothing delivered"  # spam reports then are a warning, but over no limit
        rows.append((figures.issue, _count(figures.metrics["delivered"]), _count(figures.metrics["unsubscribes"]),
                     _percent(figures, "unsubscribes"), _count(figures.metrics["spam_reports"]),
                     _percent(figures, "spam_reports"), against))
    return Chart("complaints", "Unsubscribes and spam reports", "Unsubscribes and spam reports per delivered", svg,
                 ("Issue", "Delivered", "Unsubscribes", "Unsubscribe rate", "Spam reports", "Spam report rate",
                  "Gmail's limits"), rows,
                 f"Gmail asks bulk senders to keep spam reports under 0.1% and never to reach 0.3% ({GUIDELINES}). "
                 "SendGrid counts the reports of every mailbox provider that sends them back; Gmail's own rate "
                 "is in its Postmaster Tools.")


def _svg(key: str, title: str, description: str, kind: str, labels: Sequence[str],
         series: Sequence[tuple[str, Sequence[float | int | None], dict[str, Any]]],
         formatter: Callable[[float], str]) -> Markup:
    """One chart as inline SVG: titled and described for screen readers, coloured by the page's CSS
    variables (light and dark), without pygal's comments or its tooltip script (which it loads from the web)."""
    import pygal
    from pygal.style import Style

    style = Style(background="transparent", plot_background="transparent", foreground="var(--chart-ink)",
                  foreground_strong="var(--chart-ink)", foreground_subtle="var(--chart-grid)",
                  opacity=".85", opacity_hover="1", colors=SERIES_COLOURS, font_family="inherit",
                  label_font_size=13, major_label_font_size=13, legend_font_size=14, value_font_size=13)
    chart = getattr(pygal, kind)(js=[], style=style, x_labels=list(labels), value_formatter=formatter,
                                 width=800, height=380, legend_at_bottom=True, legend_at_bottom_columns=2,
                                 truncate_legend=-1, truncate_label=-1, x_label_rotation=30 if len(labels) > 8 else 0,
                                 include_x_axis=True, disable_xml_declaration=True, dots_size=4, max_scale=8,
                                 no_data_text="No figures yet",
                                 # pygal's own graph.css paints the guide lines black, unseen on the dark page
                                 css=["file://style.css", "file://graph.css",
                                      f"inline:#chart-{key} .axis .guide.line,#chart-{key} .axis .major.guide.line"
                                      "{stroke:var(--chart-grid)}"])
    chart.uuid = key  # ids are the chart's own, not random: one page built twice is the same page
    for name, values, options in series:
        chart.add(name, list(values), **options)

    def describe(root: Any) -> Any:
        from pygal.etree import etree

        for child in list(root):
            if child.tag is etree.Comment:
                root.remove(child)
            elif child.tag == "defs":  # pygal's config script, written even with js=[]: the page runs none
                for script in [node for node in child if node.tag == "script"]:
                    child.remove(script)
            elif child.tag == "title":
                child.text = title
                child.set("id", f"{key}-title")
                desc = etree.Element("desc", id=f"{key}-desc")
                desc.text = description
                root.insert(list(root).index(child) + 1, desc)
        root.set("role", "img")
        root.set("aria-labelledby", f"{key}-title {key}-desc")
        return root

    chart.add_xml_filter(describe)
    return Markup(chart.render(is_unicode=True))


def _rate(figures: IssueFigures, metric: str) -> float | None:
    rate = figures.rate(metric, RATE_OF[metric].over)
    return None if rate is None else rate * 100


def _percent(figures: IssueFigures, metric: str) -> str:
    kind = RATE_OF[metric]
    return kind.shown(figures.rate(metric, kind.over))


def _percent_axis(digits: int) -> Callable[[float], str]:
    return lambda value: f"{value:.{digits}f}%"


def _count(value: float) -> str:
    """A count; an axis between two counts (a small list's) is marked with its tenth."""
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"
