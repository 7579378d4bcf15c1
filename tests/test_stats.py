"""`newsletter stats`: every send carries the issue's own category; SendGrid's figures for it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from newsletter.providers.sendgrid.categories import issue_category
from tests.account_helpers import account_spec, quick_api_retries, spec_kept
from tests.helpers import article, update_config, write_issue
from tests.sendgrid_double import SendGridDouble
from tests.subscriber_helpers import run

pytestmark = pytest.mark.usefixtures(quick_api_retries.__name__, account_spec.__name__, spec_kept.__name__)

TODAY = dt.datetime.now(dt.UTC).date()


def sent(issue: str = "issue-1") -> None:
    result = run("send", issue, "--yes")
    assert result.exit_code == 0, result.output


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
        "  spam reports           1",
        "  unsubscribes           3",
        "  blocks                 2",
        "  deferred               5",
    ]
    assert "Opens are estimates: Apple Mail's privacy protection opens every message" in shown[12]
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
    assert [line.split()[0] for line in lines[:2]] == ["issue-2", "issue-1"]
    assert "delivered        4  unique opens   0.0%  unique clicks  25.0%  bounces  25.0%" in lines[0]
    assert "delivered       10  unique opens  50.0%" in lines[1]
    assert lines[2].startswith("Opens are estimates")
    assert len(sendgrid.account.requested("GET", "/v3/categories/stats")) == 1  # both issues in one request
    shown = json.loads(run("stats", "--json").output)
    assert [f["issue"] for f in shown] == ["issue-2", "issue-1"]


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
