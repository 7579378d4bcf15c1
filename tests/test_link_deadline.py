"""The link check's limits, against a real server on 127.0.0.1 that trickles or talks on: each URL
has one deadline for its whole exchange, and no more than a redirect's first bytes are read."""

from __future__ import annotations

import datetime as dt
from pathlib import Path


from newsletter.links import fetch
from tests.helpers import article, run, write_issue
from tests.slow_server import LONG_BODY, TRICKLED, SlowServer


def test_a_server_trickling_its_answer_is_cut_at_the_deadline() -> None:
    """A byte a second would take a minute; a timeout of each read (urllib's) never fires on it."""
    with SlowServer() as server:
        fetched = fetch(f"{server.url}/trickle", timeout=2.0)
        assert fetched.broken
        assert fetched.error == "no answer in time (waited 2 s)"
        answer = server.answers["/trickle"]
        assert answer.hung_up.wait(60), "the connection was closed, not left trickling"
        assert answer.sent < len(TRICKLED)
        assert set(server.answers) == {"/trickle"}, "no GET after the deadline has passed"


def test_check_links_reads_only_the_start_of_a_redirects_body(publication: Path) -> None:
    with SlowServer() as server:
        url = f"{server.url}/redirect-with-a-long-body"
        write_issue(publication, "long", {"a.md": article("A long answer", f"See [the page]({url}).")},
                    date=dt.date(2027, 3, 4))
        result = run("check", "long", "--links")
        assert f"redirected: {url} -> {server.url}/fine" in result.output, result.output
        assert f"broken: {url}" not in result.output
        answer = server.answers["/redirect-with-a-long-body"]
        assert answer.hung_up.wait(60), f"the whole body was read ({answer.sent} bytes)"
        assert answer.sent < LONG_BODY
