"""The API key, however it is shaped, stays out of everything a user or a file sees.

Each error path runs against a double that echoes the key back in its answers (a proxy
quoting the Authorization header, a server pasting the request into its error), with keys
SendGrid's `SG.id.secret` pattern does not fit. A pattern-first scrub once showed
`***.THIRDSEGMENTSECRET` and `***/3+4SLASHSECRET=` on stderr and in the ledger.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import Result

from tests.account_helpers import ready_account
from tests.helpers import run
from tests.send_helpers import files_under
from tests.sendgrid_double import Respond, SendGridDouble, too_many_requests

UNUSUAL_KEYS = [
    "SG.AbCdEf123456.ghIJkl-789_x.THIRDSEGMENTSECRET",  # three segments
    "SG.AbCdEfGh12/3+4SLASHSECRET=",                   # base64 characters the pattern left out
    "SG.Meta+(Chars)*?[x]{2}|^$\\Backslash.Dots",      # every regex metacharacter, and a backslash
    "SG.q7",                                           # shorter than any pattern takes for a key
]


@pytest.fixture(params=UNUSUAL_KEYS, ids=["three-segments", "slash-plus", "metacharacters", "short"])
def keyed_double(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[SendGridDouble]:
    with SendGridDouble(api_key=request.param) as double:
        monkeypatch.setenv("NEWSLETTER_SENDGRID_URL", double.url)
        monkeypatch.setenv("SENDGRID_API_KEY", double.api_key)
        yield double


def echoed(key: str) -> str:
    """What a careless proxy says: the key as sent, and URL-encoded."""
    return f"Authorization: Bearer {key} was refused (key={quote(key, safe='')})"


def pieces(key: str) -> set[str]:
    """Every 6-character piece of the key's secret part (after `SG.`), and the key itself."""
    secret = key.removeprefix("SG.")
    return {key} | {secret[i:i + 6] for i in range(len(secret) - 5)}


def ledger_text(root: Path) -> str:
    """Every row of every ledger, read through SQLite (the WAL included)."""
    dumped = []
    for path in root.glob("sent/*.sqlite"):
        with sqlite3.connect(path) as connection:
            dumped += connection.iterdump()
        connection.close()
    return "\n".join(dumped)


@pytest.mark.usefixtures("published_site")
def test_no_piece_of_an_unusual_key_is_shown_stored_or_logged(publication: Path,
                                                               keyed_double: SendGridDouble) -> None:
    double, key = keyed_double, keyed_double.api_key
    said = {"errors": [{"field": None, "message": echoed(key)}]}
    page = f"<html><head><title>Bad gateway {key}</title></head><body>{echoed(key)}</body></html>".encode()
    results: list[Result] = []

    def send(*answers: Respond) -> None:
        double.script(*answers)
        results.append(run("send", "issue-1", "--yes", "--concurrency", "1"))
        assert results[-1].exit_code == 1, results[-1].output

    # Mail send: every kind of answer the double can give that carries the server's words.
    send(Respond(400, body=said))
    send(Respond(400, raw=echoed(key).encode()))
    send(Respond(401, body=said))
    send(Respond(403, body=said))
    send(Respond(413, body=said))
    send(Respond(302, {"Location": f"http://elsewhere.internal/?{echoed(key)}"}))
    send(*[Respond(500, body=said)] * 6)
    send(*[Respond(503, {"Content-Type": "text/html"}, raw=page)] * 6)
    send(*[Respond(502, raw=echoed(key).encode())] * 6)
    send(too_many_requests(reset_in=3600))
    results.append(run("send", "issue-1", "--yes"))
    assert results[-1].exit_code == 0, results[-1].output
    results.append(run("status", "issue-1"))

    # The account calls: doctor, sync and stats, each refused in the server's words.
    ready_account(double, publication)
    for command in (("doctor",), ("subscribers", "sync"), ("stats", "issue-1")):
        for answers in ([Respond(400, body=said)], [Respond(404, raw=echoed(key).encode())],
                        [Respond(500, body=said)] * 6, [Respond(401, body=said)],
                        [Respond(503, raw=page)] * 6, [Respond(301, {"Location": f"http://x.internal/{key}"})]):
            if command == ("subscribers", "sync"):
                double.script_suppressions(*answers)
            else:
                double.account.script(*answers)
            results.append(run(*command))
            assert results[-1].exit_code == 1, (command, answers[0], results[-1].output)

    shown = [r.stdout + r.stderr for r in results]
    stored = [path.read_bytes().decode("utf-8", "replace") for path in files_under(publication)] + [
        ledger_text(publication)]
    logged = [repr(double.mail_requests), repr(double.account.requests), repr(double.suppression_requests),
              repr([{k: v for k, v in h.items() if k.lower() != "authorization"} for h in double.request_headers])]
    for text in shown + stored + logged:
        assert not [piece for piece in pieces(key) if piece in text], text[:2000]
    assert any("***" in text for text in shown)  # the echoes did arrive, hidden
