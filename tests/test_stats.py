"""`newsletter stats`: every send carries the issue's own category; SendGrid's figures for it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from newsletter.providers.sendgrid.categories import issue_category
from tests.account_helpers import account_spec, spec_kept
from tests.helpers import article, run, update_config, write_issue
from tests.send_helpers import TODAY, sent
from tests.sendgrid_double import SendGridDouble

pytestmark = pytest.mark.usefixtures(account_spec.__name__, spec_kept.__name__)

def test_every_request_carries_the_issue_category(publication: Path, sendgrid: SendGridDouble) -> None:
    sent()
    assert {tuple(body["categories"]) for body in sendgrid.accepted} == {("newsletter", "issue-1")}
    proof = run("send", "issue-1", "--yes", "--to", "me@riverside-writers-circle.internal")
    assert proof.exit_code == 0, proof.output
    assert sendgrid.accepted[-1]["categories"] == ["newsletter", "issue-1-proof"]  # editors' opens kept apart


def test_the_category_respects_sendgrids_limits(publication: Path, sendgrid: SendGridDouble) -> None:
    assert issue_category("issue-12") == "issue-12"
    folded = issue_category("numéro-3")
    assert folded.startswith("numero-3-") and folded.isascii()
    assert issue_category("numéro-3") != issue_category("numèro-3")
    assert len(issue_category("x" * 300)) == 255
    update_config(publication, sendgrid={"categories": [f"c{i}" for i in range(9)]})
    sent()
    assert sendgrid.accepted[0]["categories"] == [*(f"c{i}" for i in range(9)), "issue-1"]
    update_config(publication, sendgrid={"categories": [f"c{i}" for i in range(10)]})
    result = run("check", "issue-1")
    assert result.exit_code == 1
    assert "sendgrid.categories takes at most 9 categories" in result.stderr


def test_stats_of_one_issue_sums_every_day_with_rates(publication: Path, sendgrid: SendGridDouble) -> None:
    sent()
    account = sendgrid.account
    account.add_stats("issue-1", TODAY.isoformat(), requests=800, processed=800, delivered=780, opens=900,
                      unique_opens=400, clicks=120, unique_clicks=78, bounces=12, spam_reports=1, unsubscribes=3,
                      blocks=2, deferred=5)
    account.add_stats("issue-1", (TODAY - dt.timedelta(days=1)).isoformat(), requests=200, delivered=200,
                      opens=10, unique_opens=10, bounces=8)
    account.add_stats("newsletter", TODAY.isoformat(), requests=99999)  # another category: not counted
    result = run("stats", "issue-1")
    assert result.exit_code == 0, result.output
    shown = result.output.splitlines()
    assert shown[0].startswith(f"issue-1: first sent {TODAY:%Y-%m-%d} ")
    assert shown[0].endswith(f"SendGrid's figures for category issue-1, {TODAY - dt.timedelta(days=1)} to {TODAY}")
    assert shown[1:12] == [
        "  requests           1,000",
        "  delivered            980",
        "  opens                910",
        "  unique opens         410   41.8% of delivered",
        "  clicks               120",
        "  unique clicks         78    8.0% of delivered",
        "  bounces               20    2.0% of requests",
        "  spam reports           1   0.10% of delivered",
        "  unsubscribes           3   0.31% of delivered",
        "  blocks                 2",
        "  deferred               5",
    ]
    assert "Opens are estimates: Apple Mail's privacy protection opens every message" in shown[12]
    # 1 in 980 is 0.102%: over Gmail's 0.1% target, a warning, with the digit that shows it over; exit 0
    assert shown[13].startswith("warning: issue-1: spam reports are 0.102% of delivered, over Gmail's 0.1% target")
    assert len(shown) == 14
    [(_, _, query)] = account.requested("GET", "/v3/categories/stats")
    assert query["categories"] == ["issue-1"]
    assert query["start_date"] == [(TODAY - dt.timedelta(days=1)).isoformat()]  # the day before, for time zones

    figures = json.loads(run("stats", "issue-1", "--json").output)
    assert figures["requests"] == 1000 and figures["unique_opens"] == 410 and figures["spam_reports"] == 1
    assert figures["unique_clicks"] == 78 and figures["unsubscribes"] == 3 and figures["processed"] == 800
    assert figures["issue"] == "issue-1" and figures["category"] == "issue-1"


def test_stats_of_every_sent_issue_newest_first(publication: Path, sendgrid: SendGridDouble) -> None:
    write_issue(publication, "issue-2", {"a.md": article("Second", "More words.")})
    write_issue(publication, "issue-3", {"a.md": article("Never sent", "Draft.")})
    sent("issue-1")
    sent("issue-2")
    sendgrid.account.add_stats("issue-1", TODAY.isoformat(), requests=10, delivered=10, unique_opens=5)
    sendgrid.account.add_stats("issue-2", TODAY.isoformat(), requests=8, delivered=4, unique_clicks=1, bounces=2)
    result = run("stats")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["issue", "first", "sent", "delivered", "unique", "opens", "unique", "clicks",
                                "bounces", "spam", "reports", "unsubscribes"]
    assert [line.split()[0] for line in lines[1:3]] == ["issue-2", "issue-1"]
    assert lines[1].split()[2:] == ["4", "0.0%", "25.0%", "25.0%", "0.00%", "0.00%"]
    assert lines[2].split()[2:] == ["10", "50.0%", "0.0%", "0.0%", "0.00%", "0.00%"]
    assert lines[3] == "Trend: issue-2 against the mean of the 1 issue sent before it"
    assert lines[4:9] == [
        "  unique opens     0.0%  down from 50.0%",
        "  unique clicks   25.0%  up from 0.0%",
        "  bounces         25.0%  up from 0.0%",
        "  spam reports    0.00%  same as 0.00%",
        "  unsubscribes    0.00%  same as 0.00%",
    ]
    assert lines[9].startswith("Opens are estimates")
    # issue-2's 2 bounces of 8 requests: the list needs cleaning, and the command that does it is named
    assert lines[10:] == ["warning: issue-2: bounces are 25.0% of requests, over 2%: the list needs cleaning; "
                          "`newsletter subscribers sync` marks the addresses SendGrid bounced as bounced, "
                          "so the next send leaves them out"]
    assert len(sendgrid.account.requested("GET", "/v3/categories/stats")) == 1  # both issues in one request
    shown = json.loads(run("stats", "--json").output)
    assert [f["issue"] for f in shown] == ["issue-2", "issue-1"]


def test_a_trend_with_nothing_to_compare_prints_no_heading(publication: Path, sendgrid: SendGridDouble) -> None:
    """The newest issue with no figures yet (sent today, counted tomorrow): "Trend:" stood alone."""
    write_issue(publication, "issue-2", {"a.md": article("Second", "More words.")})
    sent("issue-1")
    sent("issue-2")
    sendgrid.account.add_stats("issue-1", TODAY.isoformat(), requests=10, delivered=10, unique_opens=5)
    result = run("stats")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split()[2:] == ["0", "-", "-", "-", "-", "-"]
    assert lines[3].startswith("Opens are estimates")
    assert not any(line.startswith("Trend:") for line in lines), lines


def test_stats_of_an_issue_never_sent_is_one_line(publication: Path, sendgrid: SendGridDouble) -> None:
    result = run("stats", "issue-1")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: issue-1 has not been sent yet (no request of it was accepted): no figures to show")
    assert run("stats").output.strip() == "No issue has been sent yet: no figures to show."
    assert sendgrid.account.requests == []


def test_a_key_without_the_stats_scope_is_told_so(publication: Path, sendgrid: SendGridDouble) -> None:
    sent()
    sendgrid.account.scopes.remove("categories.stats.read")
    result = run("stats", "issue-1")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: SendGrid refused the API key (403) when reading category statistics: check SENDGRID_API_KEY "
        "(it needs the scope categories.stats.read (Stats: read access))")


def figures_of_one_issue(sendgrid: SendGridDouble, **metrics: int) -> tuple[list[str], int]:
    """`stats issue-1` after a send SendGrid counted `metrics` of: the lines after the figures, the exit code."""
    sent()
    sendgrid.account.add_stats("issue-1", TODAY.isoformat(), **metrics)
    result = run("stats", "issue-1")
    lines = result.output.splitlines()
    return lines[lines.index(next(line for line in lines if line.startswith("Opens are estimates"))) + 1:], \
        result.exit_code


def test_spam_reports_under_gmails_target_say_nothing(publication: Path, sendgrid: SendGridDouble) -> None:
    after, code = figures_of_one_issue(sendgrid, requests=10_000, delivered=10_000, spam_reports=9)
    assert (after, code) == ([], 0)  # 0.09%
    assert json.loads(run("stats", "issue-1", "--json").output)["rates"]["spam_reports"] == 0.0009


def test_spam_reports_over_gmails_target_are_a_warning(publication: Path, sendgrid: SendGridDouble) -> None:
    after, code = figures_of_one_issue(sendgrid, requests=10_000, delivered=10_000, spam_reports=11)
    assert code == 0
    assert after == ["warning: issue-1: spam reports are 0.11% of delivered, over Gmail's 0.1% target: above it "
                     "Gmail already puts less of a bulk sender's mail in the inbox (Gmail's email sender guidelines)"]


def test_spam_reports_over_gmails_limit_are_an_error(publication: Path, sendgrid: SendGridDouble) -> None:
    after, code = figures_of_one_issue(sendgrid, requests=10_000, delivered=10_000, spam_reports=31,
                                       unsubscribes=45)
    assert code == 1
    assert after == [
        "error: issue-1: spam reports are 0.31% of delivered, at or over the 0.3% that Gmail allows: it puts more "
        "of your mail in spam, and will not help with its delivery (no mitigation) until your rate stays under "
        "0.3% for 7 days in a row (Gmail's email sender guidelines); mail only readers who asked for it, and keep "
        "the unsubscribe link plain to see"]
    shown = run("stats", "issue-1", "--json")
    assert shown.exit_code == 1
    figures = json.loads(shown.output)
    assert figures["rates"]["spam_reports"] == 0.0031 and figures["rates"]["unsubscribes"] == 0.0045
    assert [finding["level"] for finding in figures["findings"]] == ["error"]
    overview = run("stats")  # the history names it, and exits 0
    assert overview.exit_code == 0
    assert overview.output.splitlines()[1].split()[-2:] == ["0.31%", "0.45%"]
    assert overview.output.splitlines()[-1].startswith("error: issue-1: spam reports are 0.31% of delivered")


def test_spam_reports_with_nothing_delivered_say_the_rate_cannot_be_computed(publication: Path,
                                                                            sendgrid: SendGridDouble) -> None:
    after, code = figures_of_one_issue(sendgrid, requests=3, spam_reports=2)
    assert code == 0
    assert after == ["warning: issue-1: 2 spam reports and nothing delivered in SendGrid's figures, so the "
                     "spam-report rate cannot be held against Gmail's 0.1% target and 0.3% limit; Gmail counts the "
                     "reports all the same (Gmail's email sender guidelines)"]


def test_bounces_over_two_percent_ask_for_a_cleaner_list(publication: Path, sendgrid: SendGridDouble) -> None:
    after, code = figures_of_one_issue(sendgrid, requests=1000, delivered=979, bounces=21)
    assert code == 0
    assert after == ["warning: issue-1: bounces are 2.1% of requests, over 2%: the list needs cleaning; "
                     "`newsletter subscribers sync` marks the addresses SendGrid bounced as bounced, "
                     "so the next send leaves them out"]


def test_the_limits_themselves_are_no_warning(publication: Path, sendgrid: SendGridDouble) -> None:
    """Exactly 2% of requests bounced and exactly 0.1% of delivered reported as spam: at the line, not over."""
    after, code = figures_of_one_issue(sendgrid, requests=1050, delivered=1000, bounces=21, spam_reports=1)
    assert (after, code) == ([], 0)
