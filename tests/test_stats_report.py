"""`newsletter stats --report`: build/stats/index.html, charts and tables an editor opens offline.

The page is read as a browser would parse it (BeautifulSoup), and opened in headless
Chromium, light and dark, where chromium and chromedriver are installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from tests.account_helpers import account_spec, spec_kept  # noqa: F401 - fixtures
from tests.browser_helpers import CHROMEDRIVER, CHROMIUM, in_both_schemes
from tests.helpers import article, run, write_issue
from tests.send_helpers import TODAY, sent, write_list
from tests.sendgrid_double import SendGridDouble

REPORT = Path("build/stats/index.html")


def table(page: BeautifulSoup, key: str) -> list[list[str]]:
    """The rows of the table under chart `key`, header row first, as a person reads them."""
    section = page.find("section", attrs={"aria-labelledby": f"{key}-heading"})
    assert section is not None, key
    return [[cell.get_text(strip=True) for cell in row.find_all(["th", "td"])] for row in section.find_all("tr")]


@pytest.fixture
def two_issues_sent(publication: Path, sendgrid: SendGridDouble,
                    account_spec: None, spec_kept: SendGridDouble) -> Path:  # noqa: F811
    """issue-1 and issue-2 sent, SendGrid's figures for each, and a list that grew over three months."""
    write_issue(publication, "issue-2", {"a.md": article("Second", "More words.")})
    sent("issue-1")
    sent("issue-2")
    sendgrid.account.add_stats("issue-1", TODAY.isoformat(), requests=10_000, delivered=9_900, unique_opens=4_000,
                               unique_clicks=500, bounces=100, spam_reports=9, unsubscribes=20)
    sendgrid.account.add_stats("issue-2", TODAY.isoformat(), requests=10_000, delivered=9_800, unique_opens=3_900,
                               unique_clicks=450, bounces=200, spam_reports=31, unsubscribes=45)
    write_list(publication, [
        ["ada@example.org", "Ada", "", "subscribed", "", "2026-01-02T09:00:00Z", "2026-01-02T09:00:00Z"],
        ["bo@example.org", "Bo", "", "subscribed", "", "2026-01-20T09:00:00Z", "2026-01-20T09:00:00Z"],
        ["cy@example.org", "Cy", "", "unsubscribed", "", "2026-02-01T09:00:00Z", "2026-03-10T09:00:00Z"],
    ])
    return publication


def test_the_report_has_each_chart_and_its_table(two_issues_sent: Path) -> None:
    result = run("stats", "--report")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Report: build/stats/index.html (the list's growth over 3 months, 2 sent issues); "
        "open it in a browser, it needs no network"]
    html = REPORT.read_text(encoding="utf-8")
    page = BeautifulSoup(html, "html.parser")
    assert table(page, "growth") == [
        ["Month", "Joined", "Unsubscribed", "Bounced", "Complained", "Readers at the month's end"],
        ["2026-01", "2", "0", "0", "0", "2"],
        ["2026-02", "1", "0", "0", "0", "3"],
        ["2026-03", "0", "1", "0", "0", "2"],
    ]
    first_sent = f"{TODAY:%Y-%m-%d}"
    assert table(page, "delivered") == [
        ["Issue", "First sent", "Requests", "Delivered", "Bounces", "Bounces per request"],
        ["issue-1", first_sent, "10,000", "9,900", "100", "1.0%"],  # oldest first, as the chart reads
        ["issue-2", first_sent, "10,000", "9,800", "200", "2.0%"],
    ]
    assert table(page, "read") == [
        ["Issue", "Delivered", "Unique opens", "Opens per delivered", "Unique clicks", "Clicks per delivered"],
        ["issue-1", "9,900", "4,000", "40.4%", "500", "5.1%"],
        ["issue-2", "9,800", "3,900", "39.8%", "450", "4.6%"],
    ]
    assert table(page, "complaints") == [
        ["Issue", "Delivered", "Unsubscribes", "Unsubscribe rate", "Spam reports", "Spam report rate",
         "Gmail's limits"],
        ["issue-1", "9,900", "20", "0.20%", "9", "0.09%", "under 0.1%"],
        ["issue-2", "9,800", "45", "0.46%", "31", "0.32%", "at or over 0.3%"],
    ]
    charts = page.find_all("svg")
    assert [svg["id"] for svg in charts] == ["chart-growth", "chart-delivered", "chart-read", "chart-complaints"]
    for svg in charts:  # each chart is an image with a name and a description a screen reader reads out
        assert svg["role"] == "img"
        title_id, desc_id = svg["aria-labelledby"].split()
        assert svg.find("title", id=title_id, recursive=False).get_text()
        assert svg.find("desc", id=desc_id, recursive=False).get_text()
    complaints = page.find("svg", id="chart-complaints")
    legend = [text.get_text() for text in complaints.select(".legends text")]
    assert legend == ["unsubscribes", "spam reports", "Gmail's 0.1% target", "Gmail's 0.3% limit"]
    # It opens offline: no script, no stylesheet or font from anywhere, no address but SVG's namespaces.
    assert page.find("script") is None and page.find("link") is None
    assert html.replace("http://www.w3.org/2000/svg", "").replace("http://www.w3.org/1999/xlink", "").count(
        "http") == 0
    assert run("stats", "--report").exit_code == 0
    assert REPORT.read_text(encoding="utf-8").replace(page.find("p", class_="quiet").get_text(), "") == \
        html.replace(page.find("p", class_="quiet").get_text(), ""), "the same figures make the same page"


def test_spam_reports_with_nothing_delivered_are_held_against_no_limit(
        publication: Path, sendgrid: SendGridDouble,
        account_spec: None, spec_kept: SendGridDouble) -> None:  # noqa: F811
    sent("issue-1")
    sendgrid.account.add_stats("issue-1", TODAY.isoformat(), requests=3, spam_reports=2)
    assert run("stats", "--report").exit_code == 0
    rows = table(BeautifulSoup(REPORT.read_text(encoding="utf-8"), "html.parser"), "complaints")
    assert rows[1] == ["issue-1", "0", "0", "-", "2", "-", "no rate: nothing delivered"]


def through_smtp(publication: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The publication sends through SMTP, which keeps no figures, and has no SendGrid key."""
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    config = publication / "newsletter.yaml"
    config.write_text(config.read_text(encoding="utf-8") + "provider: smtp\nsmtp:\n  host: 127.0.0.1\n",
                      encoding="utf-8")


def test_with_smtp_the_report_has_the_growth_and_says_why_only(publication: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    through_smtp(publication, monkeypatch)
    result = run("stats", "--report")
    assert result.exit_code == 0, result.output
    why = "smtp reports no figures: delivered, opens, clicks and bounces are what SendGrid keeps"
    assert result.output.splitlines()[1].startswith(f"No issue figures on it: {why}")
    page = BeautifulSoup(REPORT.read_text(encoding="utf-8"), "html.parser")
    assert [svg["id"] for svg in page.find_all("svg")] == ["chart-growth"]
    assert why in page.get_text(" ") and "this page shows the list's growth only" in page.get_text(" ")
    assert table(page, "growth")[1][0] == "2026-01"  # the sample list's first month


def test_a_long_run_of_quiet_months_is_one_row_of_the_growth_table(publication: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A stray 1900-01-01 drew 1,500 empty months (a 9999 typo: 2 minutes and a 140 MB page)."""
    through_smtp(publication, monkeypatch)
    write_list(publication, [
        ["ada@example.org", "Ada", "", "subscribed", "", "1900-01-01T00:00:00Z", "1900-01-01T00:00:00Z"],
        ["bo@example.org", "Bo", "", "subscribed", "", "2026-01-20T09:00:00Z", "2026-01-20T09:00:00Z"],
    ])
    result = run("stats", "--report")
    assert result.exit_code == 0, result.output
    assert "the list's growth over 1513 months" in result.output
    rows = table(BeautifulSoup(REPORT.read_text(encoding="utf-8"), "html.parser"), "growth")
    assert [row[0] for row in rows[1:]] == ["1900-01", "2026-01 (after 1,511 months in which nobody joined or left)"]


def test_report_takes_no_issue(publication: Path) -> None:
    result = run("stats", "issue-1", "--report")
    assert result.exit_code == 2
    assert "--report writes the page of every issue: give it no ISSUE and no --json" in result.stderr


# What a person sees of each chart: its box, and the marks drawn in it (bars, lines, dots)
# with their painted colour, which must differ from the page behind them.
CHART_MARKS = """
return [...document.querySelectorAll('figure svg')].map(svg => {
  const box = svg.getBoundingClientRect();
  const marks = [...svg.querySelectorAll('.series rect, .series path, .series circle')].filter(mark => {
    const r = mark.getBoundingClientRect();
    return (r.width > 0 || r.height > 0) && getComputedStyle(mark).visibility !== 'hidden';
  });
  const text = svg.querySelector('.axis text');
  return {id: svg.id, width: box.width, height: box.height, marks: marks.length,
          ink: text ? getComputedStyle(text).fill : null,
          paper: getComputedStyle(document.body).backgroundColor,
          tables: svg.closest('section').querySelectorAll('table tbody tr').length};
});
"""


@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                    reason="headless browser test needs chromium and chromedriver (apt-get install chromium "
                           "chromium-driver)")
def test_the_charts_render_in_chromium_light_and_dark(browser, two_issues_sent: Path) -> None:
    assert run("stats", "--report").exit_code == 0
    seen = in_both_schemes(browser, (two_issues_sent / REPORT).resolve().as_uri(), CHART_MARKS)
    for scheme, charts in seen.items():
        assert [chart["id"] for chart in charts] == ["chart-growth", "chart-delivered", "chart-read",
                                                     "chart-complaints"], scheme
        for chart in charts:
            assert chart["width"] > 200 and chart["height"] > 100, (scheme, chart)
            assert chart["marks"] > 0 and chart["tables"] > 0, (scheme, chart)
            assert chart["ink"] != chart["paper"], (scheme, chart)
    # The axis text follows the scheme: dark ink on the light page, light ink on the dark one.
    assert seen["light"][0]["ink"] != seen["dark"][0]["ink"]
    assert seen["light"][0]["paper"] != seen["dark"][0]["paper"]
