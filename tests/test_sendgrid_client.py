"""The one SendGrid client: retries by the one policy, region, the key kept out of logs and messages."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sendgrid import SendGridAPIClient

from newsletter.config import load_settings
from newsletter.errors import SendGridError
from newsletter.providers.sendgrid.client import LIBRARY_LOGGER, Call, SendGridClient
from newsletter.providers.sendgrid.retry import RetryPolicy
from tests.account_helpers import account_spec, ready_account
from tests.helpers import run, update_config
from tests.sendgrid_double import Drop, KeyCatcher, Respond, SendGridDouble

SCOPES = Call("the API key's permissions")


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """Logging as a user who turned everything on would have it: root and the library at DEBUG."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    library = logging.getLogger(LIBRARY_LOGGER)
    old = root.level, library.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    library.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old[0])
        library.setLevel(old[1])


def test_the_library_alone_would_log_the_key(sendgrid: SendGridDouble, debug_log: io.StringIO) -> None:
    """Why the client quiets python_http_client: at DEBUG it writes the Authorization header."""
    logging.getLogger(LIBRARY_LOGGER).filters.clear()
    SendGridAPIClient(sendgrid.api_key, host=sendgrid.url).client.scopes.get()
    assert sendgrid.api_key in debug_log.getvalue()


def test_the_key_is_in_no_output_with_debug_logging(publication: Path, sendgrid: SendGridDouble,
                                                     debug_log: io.StringIO,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    group = ready_account(sendgrid, publication)
    sendgrid.group_suppressions[group] = ["kim@example.org"]
    sendgrid.suppressions["bounces"] = [{"created": 1, "email": "kim@example.org", "reason": "x", "status": "5.1.1"}]
    sendgrid.account.script(Respond(500), Drop())  # errors and retries log too
    when = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()
    outputs = [run("doctor"), run("subscribers", "sync"), run("doctor", "--json"),
               run("send", "issue-1", "--yes", "--at", when), run("stats", "issue-1"), run("cancel", "issue-1", "--yes")]
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.a-key-sendgrid-refuses")
    outputs += [run("doctor"), run("subscribers", "sync"), run("stats", "issue-1")]
    assert [r.exit_code for r in outputs] == [0, 0, 0, 0, 0, 0, 1, 1, 1], [r.output for r in outputs]
    # A user's logging set up after the client existed still cannot turn the library's DEBUG back on.
    logging.getLogger(LIBRARY_LOGGER).setLevel(logging.DEBUG)
    outputs.append(run("doctor"))
    logged = debug_log.getvalue()
    for key in (sendgrid.api_key, "SG.a-key-sendgrid-refuses"):
        assert key not in logged
        assert all(key not in r.output for r in outputs)
    assert "Authorization" not in logged


def test_retry_after_zero_still_waits_the_policys_backoff(sendgrid: SendGridDouble) -> None:
    """A 429 saying `Retry-After: 0` must not make the client hammer SendGrid."""
    waits: list[float] = []
    policy = RetryPolicy(backoff=0.5)
    client = SendGridClient(sendgrid.url, sendgrid.api_key, 5, policy, wait=waits.append)
    sendgrid.account.script(Respond(429, {"Retry-After": "0"}), Respond(429, {"Retry-After": "0"}))
    assert client.get("/v3/scopes", SCOPES).status == 200
    assert len(waits) == 2
    assert waits[0] >= 0.25 and waits[1] >= 0.5  # the policy's backoff, jitter included, doubling


def test_server_errors_back_off_then_give_up_with_one_line(sendgrid: SendGridDouble) -> None:
    waits: list[float] = []
    client = SendGridClient(sendgrid.url, sendgrid.api_key, 5, RetryPolicy(attempts=3), wait=waits.append)
    sendgrid.account.script(*[Respond(503, body={"errors": [{"field": None, "message": "busy"}]})] * 3)
    with pytest.raises(SendGridError) as raised:
        client.get("/v3/scopes", SCOPES)
    assert str(raised.value) == ("SendGrid answered 503 when reading the API key's permissions "
                                 "(GET /v3/scopes): busy")
    assert raised.value.status == 503
    assert len(waits) == 2 and waits[1] > waits[0] * 0.9 / 2


def test_a_post_is_not_repeated_once_it_may_have_been_done(sendgrid: SendGridDouble) -> None:
    """An answer that never came to a create: SendGrid may have created it, so no second post."""
    client = SendGridClient(sendgrid.url, sendgrid.api_key, 5, RetryPolicy(backoff=0.001), wait=lambda s: None)
    sendgrid.account.script(Drop())
    call = Call("unsubscribe group 'x'", "creating", idempotent=False)
    with pytest.raises(SendGridError, match="it may or may not have been done"):
        client.post("/v3/asm/groups", call, {"name": "x", "description": "y"})
    assert len(sendgrid.account.script_queue) == 0
    assert sendgrid.account.requested("POST", "/v3/asm/groups") == []  # dropped before it was handled


def test_region_eu_selects_the_eu_host(publication: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSLETTER_SENDGRID_URL", raising=False)
    assert load_settings(publication).sendgrid_url == "https://api.sendgrid.com"
    update_config(publication, sendgrid={"region": "eu", "categories": ["newsletter"]})
    assert load_settings(publication).sendgrid_url == "https://api.eu.sendgrid.com"
    monkeypatch.setenv("NEWSLETTER_SENDGRID_URL", "http://127.0.0.1:9")
    assert load_settings(publication).sendgrid_url == "http://127.0.0.1:9"  # a double wins over the region
    update_config(publication, sendgrid={"region": "mars"})
    result = run("check", "issue-1")
    assert result.exit_code == 1
    assert "sendgrid.region must be one of global, eu (not 'mars')" in result.stderr


@pytest.mark.usefixtures(account_spec.__name__)
def test_the_double_refuses_requests_outside_the_spec(sendgrid: SendGridDouble) -> None:
    """The double checks each account request against SendGrid's published spec."""
    def get(path_and_query: str) -> tuple[int, str]:
        request = urllib.request.Request(sendgrid.url + path_and_query,
                                         headers={"Authorization": f"Bearer {sendgrid.api_key}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    status, body = get("/v3/categories/stats?start_date=2026-12-01")
    assert status == 400
    assert "query parameter categories is required" in body
    status, body = get("/v3/categories/stats?start_date=2026-12-01&categories=issue-1&aggregated_by=year")
    assert status == 400 and "aggregated_by='year': not one of ['day', 'week', 'month']" in body
    status, body = get("/v3/whitelabel/domains?limit=ten")
    assert status == 400 and "limit='ten': not integer" in body
    status, body = get("/v3/scopes?query_param=1")  # the misspelling python_http_client swallows
    assert status == 400 and "query parameter query_param is not a parameter of GET /v3/scopes" in body
    status, body = get("/v3/categories/stats?start_date=2026-12-01&end_date=2026-12-01&categories=issue-1")
    assert status == 200 and json.loads(body)[0]["stats"][0]["name"] == "issue-1"
    assert sendgrid.account.answer_violations == []


def test_a_key_quoted_back_in_a_long_error_is_hidden_before_any_cut(sendgrid: SendGridDouble) -> None:
    client = SendGridClient(sendgrid.url, sendgrid.api_key, 5, RetryPolicy(attempts=1))
    padding = "x" * 285  # the key straddles the 300 characters an unparsed body is cut to
    sendgrid.account.script(Respond(400, body=f"{padding} {sendgrid.api_key} trailing"))  # type: ignore[arg-type]
    with pytest.raises(SendGridError) as raised:
        client.get("/v3/scopes", SCOPES)
    assert sendgrid.api_key[:8] not in str(raised.value)


REDIRECTED_CALLS = [
    (("doctor",), "/v3/scopes"),
    (("doctor",), "/v3/verified_senders"),
    (("doctor",), "/v3/whitelabel/domains"),
    (("subscribers", "sync"), "/v3/suppression/unsubscribes"),
    (("doctor", "--create-group", "Riverside letters"), "/v3/asm/groups"),
    (("doctor", "--create-group", "Riverside letters"), "POST /v3/asm/groups"),
]


@pytest.mark.parametrize("status", [302, 307])
@pytest.mark.parametrize(("command", "path"), REDIRECTED_CALLS,
                         ids=lambda v: "-".join(v) if isinstance(v, tuple) else v)
def test_a_redirect_to_another_host_is_refused_and_never_sent_the_key(
        publication: Path, sendgrid: SendGridDouble, command: tuple[str, ...], path: str, status: int) -> None:
    """A 302/307 to another host once had the library carry `Authorization: Bearer SG.…` there."""
    sendgrid.account.authenticate_domain("riverside-writers-circle.internal", valid=False)
    with KeyCatcher() as catcher:
        sendgrid.redirects[path] = (status, catcher.url)
        result = run(*command)
    assert catcher.caught == []
    assert result.exit_code == 1, result.output
    host = catcher.url.removeprefix("http://")
    [said] = [line for line in result.output.splitlines() if host in line]
    assert f"answered {status}, a redirect to {host}" in said
    assert "not followed" in said
    assert sendgrid.api_key not in result.output
