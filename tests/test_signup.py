"""`newsletter serve` (issue 19): the real app under uvicorn, spoken to over HTTP, emails caught
by the SendGrid double."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from bs4 import BeautifulSoup

from newsletter.config import DEFAULT_SIGNUPS_PER_IP_PER_HOUR, SignupSettings, load_settings
from newsletter.sending.mailer import OutgoingEmail
from newsletter.signup import tokens
from newsletter.signup.store import DAY, Pending, SignupStore
from tests.helpers import run, update_config, wait_for
from tests.sendgrid_double import Drop, Respond, SendGridDouble
from tests.signup_helpers import (
    READER, SECRET, SignupServer, html_of, link_in, listening_socket, mails_to, outbox_idle, signed_out, text_of,
    wait_for_mails,
)


@pytest.fixture
def server(publication: Path, sendgrid: SendGridDouble) -> Iterator[SignupServer]:
    with SignupServer(publication, {"tags": ["web"]}) as running:
        yield running


def confirmed(server: SignupServer, double: SendGridDouble, email: str = READER) -> str:
    """Sign `email` up and confirm it as a reader does; the confirm link's path."""
    assert server.subscribe(email, first_name="Ada").status_code == 200
    path = server.path_of(link_in(wait_for_mails(double, email, 1)[0], "confirm"))
    assert server.client.post(path).status_code == 200
    return path


# -- tokens

def test_a_token_carries_address_list_and_purpose_and_refuses_any_change() -> None:
    signer = tokens.Signer(SECRET)
    token = signer.sign(tokens.CONFIRM, "zoë@例え.jp", "main")
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[0-9a-f]+\.[0-9a-f]{32}", token)  # sits in a URL path as it is
    found = signer.verify(token, tokens.CONFIRM)
    assert (found.email, found.list_name, found.purpose) == ("zoë@例え.jp", "main", "confirm")
    context, address, signature = token.split(".")
    altered = context[:-2] + ("A" if context[-2] != "A" else "B") + context[-1] + f".{address}.{signature}"
    other_reader = f"{context}.{'zoe@例え.jp'.encode().hex()}.{signature}"
    for bad in (altered, other_reader, f"{context}.{address.upper()}.{signature}", f"{context}.{address}",
                token + "x", "", tokens.Signer("another-secret-0123456789").sign(tokens.CONFIRM, "zoë@例え.jp", "main")):
        with pytest.raises(tokens.BadToken):
            signer.verify(bad, tokens.CONFIRM)
    with pytest.raises(tokens.BadToken):  # a confirm token is no unsubscribe token
        signer.verify(token, tokens.UNSUBSCRIBE)


def test_a_confirm_token_expires_after_7_days_an_unsubscribe_token_never() -> None:
    signer = tokens.Signer(SECRET)
    issued = int(time.time())
    week = tokens.CONFIRM_LIFETIME
    confirm = signer.sign(tokens.CONFIRM, READER, "main", issued)
    assert signer.verify(confirm, tokens.CONFIRM, now=issued + week).email == READER
    with pytest.raises(tokens.BadToken) as expired:
        signer.verify(confirm, tokens.CONFIRM, now=issued + week + 1)
    assert expired.value.expired
    unsubscribe = signer.sign(tokens.UNSUBSCRIBE, READER, "main", issued)
    assert signer.verify(unsubscribe, tokens.UNSUBSCRIBE, now=issued + 20 * 365 * 86400).email == READER


# An unsubscribe link as the versions before keyed BLAKE2b signed it (HMAC-SHA256), for SECRET, READER and
# `main`: links like it are in emails already sent, and an unsubscribe link works for ever.
EARLIER_UNSUBSCRIBE = ("WyJ1bnN1YnNjcmliZSIsImFkYUBsb3ZlbGFjZS5pbnRlcm5hbCIsIm1haW4iLDE3NjcyMjU2MDBd."
                       "d432d7ff66e8f372646d9c70bca6b038")


def test_a_send_signs_each_link_as_the_server_does_and_links_signed_before_still_verify() -> None:
    signer = tokens.Signer(SECRET)
    links = tokens.UnsubscribeLinks(SECRET, "https://join.example.org", "main", 1767225600)
    for email in (READER, "zoë@例え.jp", 'o"brien\\x@example.org'):
        link = links(email)
        assert link == "https://join.example.org/unsubscribe/" + signer.sign(tokens.UNSUBSCRIBE, email, "main",
                                                                           1767225600)
        assert signer.verify(link.rpartition("/")[2], tokens.UNSUBSCRIBE).email == email
    earlier = signer.verify(EARLIER_UNSUBSCRIBE, tokens.UNSUBSCRIBE, now=1767225600 + 20 * 365 * 86400)
    assert (earlier.email, earlier.list_name, earlier.issued) == (READER, "main", 1767225600)
    payload, signature = EARLIER_UNSUBSCRIBE.split(".")
    for bad in (f"{payload}.{signature[:-1]}0" if signature[-1] != "0" else f"{payload}.{signature[:-1]}1",
                payload[:-1] + "." + signature):
        with pytest.raises(tokens.BadToken):
            signer.verify(bad, tokens.UNSUBSCRIBE)
    with pytest.raises(tokens.BadToken):  # signed for leaving, not for joining
        signer.verify(EARLIER_UNSUBSCRIBE, tokens.CONFIRM)


# -- the reader's way in

def test_the_signup_page_has_the_form_in_the_publications_look_and_language(server: SignupServer) -> None:
    page = server.client.get("/")
    assert page.status_code == 200
    assert '<html lang="en-GB"' in page.text
    assert "Subscribe to The Riverside Writers&#39; Circle" in page.text
    assert f'action="{server.url}/subscribe"' in page.text
    for field in ('name="email"', 'name="first_name"', 'name="website"'):
        assert field in page.text
    assert f'href="{server.url}/style.css"' in page.text
    style = server.client.get("/style.css")
    assert style.status_code == 200 and "--link:#1d5a8c" in style.text


def test_a_reader_signs_up_confirms_in_one_post_and_is_welcomed_once(server: SignupServer,
                                                                      sendgrid: SendGridDouble) -> None:
    answer = server.subscribe(READER, first_name="Ada", page="https://riverside-writers-circle.internal/issues/")
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    confirmation = wait_for_mails(sendgrid, READER, 1)[0]
    assert confirmation["subject"] == "Confirm your subscription to The Riverside Writers' Circle"
    confirm_url = link_in(confirmation, "confirm")
    path = server.path_of(confirm_url)

    page = server.client.get(path)  # what a link scanner does: nothing is confirmed
    assert page.status_code == 200
    assert '<form class="signup" id="confirm" method="post" action="">' in page.text
    assert 'document.getElementById("confirm").submit()' in page.text
    assert server.changes()["changes"] == []

    done = server.client.post(path)
    assert done.status_code == 200 and "You're subscribed" in done.text.replace("&#39;", "'")
    changes = server.changes()
    [change] = changes["changes"]
    assert change["kind"] == "subscribed" and change["email"] == READER and change["list"] == "main"
    assert change["first_name"] == "Ada" and change["tags"] == "web"
    assert change["request_ip"] == "127.0.0.1" and change["confirm_ip"] == "127.0.0.1"
    assert change["page"] == "https://riverside-writers-circle.internal/issues/"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", change["requested_at"])
    assert changes["next"] == change["cursor"]

    welcome = wait_for_mails(sendgrid, READER, 2)[1]
    assert welcome["subject"] == "Welcome to The Riverside Writers' Circle"
    unsubscribe = link_in(welcome, "unsubscribe")
    assert welcome["headers"] == {"List-Unsubscribe": f"<{unsubscribe}>",
                                  "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}

    assert server.client.post(path).status_code == 200  # a second click (or a reload)
    assert server.changes(changes["next"])["changes"] == []
    outbox_idle(server)
    assert len(mails_to(sendgrid, READER)) == 2  # no second welcome


def test_the_welcome_email_is_welcome_md_with_the_readers_name_never_evaluated(
        publication: Path, sendgrid: SendGridDouble) -> None:
    (publication / "welcome.md").write_text("---\nsubject: Glad you're here\n---\nOur **first** issue is out "
                                            "in [the archive](https://riverside-writers-circle.internal/issues/).\n",
                                            encoding="utf-8")
    with SignupServer(publication) as server:
        confirmed(server, sendgrid, READER)
        welcome = wait_for_mails(sendgrid, READER, 2)[1]
    assert welcome["subject"] == "Glad you're here"
    assert "<strong>first</strong>" in html_of(welcome)
    assert "Our first issue is out" in text_of(welcome)
    assert "14 Mill Lane" in text_of(welcome)


def test_the_answer_is_the_same_whatever_the_address_and_one_confirmation_a_day(
        server: SignupServer, sendgrid: SendGridDouble) -> None:
    first = server.subscribe(READER)
    again = server.subscribe(READER)
    confirmed(server, sendgrid, "grace@hopper.internal")
    known = server.subscribe("grace@hopper.internal")  # subscribed now
    assert first.text == again.text == known.text and first.status_code == known.status_code == 200
    outbox_idle(server)
    assert len(mails_to(sendgrid, READER)) == 1
    assert len(mails_to(sendgrid, "grace@hopper.internal")) == 2  # no second confirmation within 24 h


def test_a_second_request_without_a_new_confirmation_keeps_the_first_ones_evidence(
        server: SignupServer, sendgrid: SendGridDouble) -> None:
    first_page = "https://riverside-writers-circle.internal/issues/"
    assert server.subscribe(READER, first_name="Ada", page=first_page).status_code == 200
    confirmation = wait_for_mails(sendgrid, READER, 1)[0]
    # Someone else posts her address with their own name and page: no confirmation goes out for it.
    assert server.subscribe(READER, first_name="Mallory", page="https://elsewhere.internal/").status_code == 200
    assert server.client.post(server.path_of(link_in(confirmation, "confirm"))).status_code == 200
    [change] = server.changes()["changes"]
    assert (change["first_name"], change["page"]) == ("Ada", first_page)
    welcome = wait_for_mails(sendgrid, READER, 2)[1]
    assert "Mallory" not in text_of(welcome) and "Mallory" not in html_of(welcome)


def test_a_line_break_in_from_name_stays_out_of_the_sign_up_emails(publication: Path,
                                                                   sendgrid: SendGridDouble) -> None:
    """The sign-up mailer wrote `from` and `reply_to` itself, names as newsletter.yaml had
    them: a CRLF there reached SendGrid's request, where an issue's send takes it out."""
    update_config(publication, reply_to={"email": "editor@riverside-writers-circle.internal", "name": "The\reditor\n"},
                  **{"from": {"email": "letters@riverside-writers-circle.internal",
                              "name": "Riverside\r\nBcc: someone@example.net\x00"}})
    with SignupServer(publication) as server:
        assert server.subscribe(READER).status_code == 200
        confirmation = wait_for_mails(sendgrid, READER, 1)[0]
    assert confirmation["from"] == {"email": "letters@riverside-writers-circle.internal",
                                    "name": "Riverside Bcc: someone@example.net"}
    assert confirmation["reply_to"] == {"email": "editor@riverside-writers-circle.internal", "name": "The editor"}


def a_day_passes_for_the_last_confirmation(server: SignupServer) -> None:
    """The server's one-a-day record of the last confirmation, made a day older (the server's clock is real)."""
    with sqlite3.connect(server.db) as db:
        db.execute("UPDATE confirmations SET sent_at = sent_at - ?", (DAY,))
    db.close()


def test_an_address_confirmed_here_that_asks_again_gets_a_note_not_a_second_confirmation(
        server: SignupServer, sendgrid: SendGridDouble) -> None:
    confirmed(server, sendgrid, READER)
    wait_for_mails(sendgrid, READER, 2)  # the confirmation and the welcome
    a_day_passes_for_the_last_confirmation(server)
    again = server.subscribe(READER, first_name="Ada")
    assert again.text == server.subscribe("someone.new@hopper.internal").text and again.status_code == 200
    note = wait_for_mails(sendgrid, READER, 3)[2]
    assert note["subject"] == "You're already subscribed to The Riverside Writers' Circle"
    assert "It is subscribed already: there is nothing to do." in text_of(note)
    assert "Confirm your subscription" not in note["subject"]
    assert server.subscribe(READER).status_code == 200  # the same day: nothing more
    outbox_idle(server)
    assert len(mails_to(sendgrid, READER)) == 3
    [subscribed] = server.changes()["changes"]  # the note changes nothing by itself
    # Its link joins again all the same (a reader the editor removed, which this server never sees).
    assert server.client.post(server.path_of(link_in(note, "confirm"))).status_code == 200
    assert [c["kind"] for c in server.changes(subscribed["cursor"])["changes"]] == ["subscribed"]

    # Once the reader has left through this server, a request gets a confirmation again.
    assert server.client.post(signed_out(server)).status_code == 200
    a_day_passes_for_the_last_confirmation(server)
    assert server.subscribe(READER).status_code == 200
    last = wait_for_mails(sendgrid, READER, 5)[4]  # after the second welcome
    assert last["subject"] == "Confirm your subscription to The Riverside Writers' Circle"


# -- what the server refuses

def test_a_bot_filling_the_honeypot_is_answered_alike_and_nobody_is_mailed(server: SignupServer,
                                                                           sendgrid: SendGridDouble) -> None:
    bot = server.subscribe("victim@lovelace.internal", website="https://spam.example.net")
    assert bot.status_code == 200 and "Check your inbox" in bot.text
    server.subscribe(READER)
    wait_for_mails(sendgrid, READER, 1)
    outbox_idle(server)
    assert mails_to(sendgrid, "victim@lovelace.internal") == []


@pytest.mark.parametrize("email", ["not-an-address", "ada@example.com", "ada@lovelace.test", ""])
def test_an_address_the_list_refuses_or_at_a_reserved_domain_is_refused(server: SignupServer,
                                                                       sendgrid: SendGridDouble, email: str) -> None:
    answer = server.subscribe(email)
    assert answer.status_code == 400 and "That address cannot join" in answer.text
    assert 'name="email"' in answer.text  # the form again, to correct it
    server.subscribe(READER)
    wait_for_mails(sendgrid, READER, 1)
    outbox_idle(server)
    assert len(sendgrid.accepted) == 1


def test_eleven_signups_from_one_address_in_an_hour_get_429(publication: Path, sendgrid: SendGridDouble) -> None:
    with SignupServer(publication, {"per_ip_per_hour": 3}) as server:
        answers = [server.subscribe(f"reader{i}@lovelace.internal").status_code for i in range(4)]
        assert answers == [200, 200, 200, 429]
        # Not trusted as a proxy (forwarded_allow_ips empty): X-Forwarded-For changes nothing.
        faked = server.client.post("/subscribe", data={"email": READER}, headers={"X-Forwarded-For": "203.0.113.9"})
        assert faked.status_code == 429


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(publication: Path,
                                                                        sendgrid: SendGridDouble) -> None:
    with SignupServer(publication, {"per_ip_per_hour": 1}, forwarded_allow_ips="127.0.0.1") as server:
        def from_ip(ip: str, email: str) -> int:
            return server.client.post("/subscribe", data={"email": email},
                                      headers={"X-Forwarded-For": ip}).status_code
        assert [from_ip("203.0.113.1", READER), from_ip("203.0.113.2", "b@lovelace.internal"),
                from_ip("203.0.113.1", "c@lovelace.internal")] == [200, 200, 429]
        path = server.path_of(link_in(wait_for_mails(sendgrid, READER, 1)[0], "confirm"))
        server.client.post(path, headers={"X-Forwarded-For": "198.51.100.7"})
        [change] = server.changes()["changes"]
    assert (change["request_ip"], change["confirm_ip"]) == ("203.0.113.1", "198.51.100.7")


def test_a_body_over_10_kb_gets_413_and_a_post_from_another_site_403(server: SignupServer,
                                                                     sendgrid: SendGridDouble) -> None:
    big = server.subscribe(READER, first_name="A" * 11_000)
    assert big.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b"email=ada%40lovelace.internal&first_name="
        for _ in range(12):
            yield b"B" * 1024
    streamed = server.client.post("/subscribe", content=chunks(),
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert streamed.status_code == 413
    foreign = server.client.post("/subscribe", data={"email": READER}, headers={"Origin": "https://evil.internal"})
    assert foreign.status_code == 403
    ours = server.client.post("/subscribe", data={"email": READER},
                              headers={"Origin": "https://riverside-writers-circle.internal"})
    assert ours.status_code == 200
    wait_for_mails(sendgrid, READER, 1)
    outbox_idle(server)
    assert len(sendgrid.accepted) == 1  # only the one from the publication's own page


def test_forged_altered_or_expired_links_get_a_page_saying_so_and_change_nothing(
        server: SignupServer, sendgrid: SendGridDouble) -> None:
    server.subscribe(READER)
    path = server.path_of(link_in(wait_for_mails(sendgrid, READER, 1)[0], "confirm"))
    signer = tokens.Signer(SECRET)
    forged = "/confirm/" + tokens.Signer("someone-elses-secret-123456").sign(tokens.CONFIRM, READER, "main")
    expired = "/confirm/" + signer.sign(tokens.CONFIRM, READER, "main", int(time.time()) - 8 * 86400)
    wrong_purpose = "/unsubscribe/" + path.rsplit("/", 1)[1]
    for bad in (forged, path[:-3] + "abc", expired, wrong_purpose, "/unsubscribe/nonsense"):
        for method in ("GET", "POST"):
            answer = server.client.request(method, bad)
            assert answer.status_code == 400, (method, bad)
            assert "This link does not work" in answer.text
    assert "expired" in server.client.post(expired).text
    assert server.changes()["changes"] == []


# -- leaving

def test_unsubscribe_needs_a_post_a_form_gets_a_page_one_click_gets_200(server: SignupServer) -> None:
    path = signed_out(server)
    page = server.client.get(path)
    assert page.status_code == 200 and "Stop sending The Riverside Writers&#39; Circle to ada@lovelace.internal?" \
        in page.text
    assert server.changes()["changes"] == []  # a GET never unsubscribes

    done = server.client.post(path, data={})
    assert done.status_code == 200 and "unsubscribed" in done.text
    grace = signed_out(server, "grace@hopper.internal")
    one_click = server.client.post(grace, content=b"List-Unsubscribe=One-Click",
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert one_click.status_code == 200
    changes = server.changes()["changes"]
    assert [(c["kind"], c["email"]) for c in changes] == [("unsubscribed", READER),
                                                         ("unsubscribed", "grace@hopper.internal")]
    server.client.post(path)  # the same click twice: recorded again (the list applies it once)
    assert [c["kind"] for c in server.changes()["changes"]] == ["unsubscribed"] * 3


def test_an_unsubscribe_link_from_an_email_sent_by_an_earlier_version_still_unsubscribes(
        server: SignupServer) -> None:
    page = server.client.get(f"/unsubscribe/{EARLIER_UNSUBSCRIBE}")
    assert page.status_code == 200 and f"to {READER}?" in page.text
    assert server.client.post(f"/unsubscribe/{EARLIER_UNSUBSCRIBE}", content=b"List-Unsubscribe=One-Click",
                              headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 200
    assert [(c["kind"], c["email"]) for c in server.changes()["changes"]] == [("unsubscribed", READER)]


# -- the editor's feed

def test_changes_need_the_bearer_derived_from_the_secret_and_page_by_cursor(server: SignupServer) -> None:
    assert server.client.get("/changes").status_code == 401
    assert server.client.get("/changes", headers={"Authorization": f"Bearer {SECRET}"}).status_code == 401
    for email in ("a@lovelace.internal", "b@lovelace.internal", "c@lovelace.internal"):
        server.client.post(signed_out(server, email))
    first = server.changes()
    assert [c["email"] for c in first["changes"]] == ["a@lovelace.internal", "b@lovelace.internal",
                                                      "c@lovelace.internal"]
    cursors = [c["cursor"] for c in first["changes"]]
    assert cursors == sorted(cursors)
    assert [c["email"] for c in server.changes(cursors[0])["changes"]] == ["b@lovelace.internal",
                                                                           "c@lovelace.internal"]
    assert server.changes(first["next"]) == {"changes": [], "next": first["next"], "more": False}
    assert server.client.get("/changes?after=-1", headers={
        "Authorization": f"Bearer {tokens.changes_bearer(SECRET)}"}).status_code == 400


# -- the outbox

def test_a_provider_that_is_down_keeps_the_signup_and_sends_when_it_is_back(server: SignupServer,
                                                                           sendgrid: SendGridDouble) -> None:
    sendgrid.script(Respond(503), Respond(503))
    answer = server.subscribe(READER)
    assert answer.status_code == 200 and "few minutes" in answer.text
    [confirmation] = wait_for_mails(sendgrid, READER, 1)  # the third attempt, after two 503s
    assert len([b for b in sendgrid.mail_requests if b["personalizations"][0]["to"][0]["email"] == READER]) == 3
    assert link_in(confirmation, "confirm")
    wait_for(lambda: server.client.get("/health").json()["outbox"] == {"sent": 1}, "the email marked sent")


def test_an_email_that_may_have_gone_out_is_never_sent_again(server: SignupServer, sendgrid: SendGridDouble) -> None:
    sendgrid.script(Drop(accept=True))  # SendGrid took it, then the connection broke before the answer
    server.subscribe(READER)
    health = wait_for(lambda: (h := server.client.get("/health").json())["outbox"].get("uncertain") and h,
                      "the email marked uncertain")
    assert health["uncertain_this_run"] == 1
    server.subscribe("grace@hopper.internal")
    wait_for_mails(sendgrid, "grace@hopper.internal", 1)
    assert len(mails_to(sendgrid, READER)) == 1  # the one SendGrid took; not posted again


# -- the command

def test_serve_without_the_secret_is_one_line(publication: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSLETTER_SECRET", raising=False)
    update_config(publication, signup={"url": "https://join.riverside-writers-circle.internal"})
    result = run("serve", "--port", "8080")
    assert result.exit_code == 1
    assert result.output.startswith("error: NEWSLETTER_SECRET is not set: export")
    assert len(result.output.strip().splitlines()) == 1


def test_serve_in_a_language_not_built_in_names_the_servers_missing_phrases(
        publication: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers import HEBREW_PHRASES

    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    update_config(publication, language="he", strings=HEBREW_PHRASES,
                  signup={"url": "https://join.riverside-writers-circle.internal"})
    result = run("serve", "--port", "8080")
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1, result.output
    assert "language 'he' is not built in: give the sign-up server's phrases under `strings:` too" in result.output
    assert "confirm_button" in result.output


def test_serve_without_signup_settings_says_what_to_add(publication: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    result = run("serve", "--port", "8080")
    assert result.exit_code == 1
    assert "no `signup:` section" in result.output


def test_signup_settings_are_read_typed_with_defaults(publication: Path) -> None:
    update_config(publication, signup={"url": "https://join.riverside-writers-circle.internal/", "tags": ["web"]})
    assert load_settings(publication).signup == SignupSettings(
        url="https://join.riverside-writers-circle.internal", list="main", tags=("web",),
        per_ip_per_hour=DEFAULT_SIGNUPS_PER_IP_PER_HOUR)
    update_config(publication, signup={"url": "join.riverside-writers-circle.internal"})
    result = run("serve")
    assert result.exit_code == 1
    assert re.match(r"error: newsletter\.yaml:\d+: signup must be a mapping with `url`, the https:// address",
                    result.output)


def test_a_misspelt_signup_key_is_a_warning_naming_the_key_meant_on_its_line(publication: Path) -> None:
    update_config(publication, signup={"url": "https://join.riverside-writers-circle.internal", "lsit": "main"})
    line = next(number for number, text in enumerate(
        (publication / "newsletter.yaml").read_text(encoding="utf-8").splitlines(), start=1) if "lsit:" in text)
    result = run("check", "issue-1")
    assert result.exit_code == 0, result.output
    assert (f"warning: newsletter.yaml:{line}: unknown key signup.lsit is ignored (did you mean signup.list?)\n"
            in result.stderr), result.stderr


@pytest.mark.parametrize(("url", "said"), [
    ("http://[::1", "signup must be a mapping with `url`, the https:// address"),
    ("https://join.riverside-writers-circle.internal/?x=1", "signup.url must be the server's address without a query"),
    ("https://editor:hunter2-pw@join.riverside-writers-circle.internal",
     "signup.url must not hold a user name or password"),
])
def test_a_signup_url_that_is_no_plain_address_is_one_line_and_no_password_is_shown(
        publication: Path, url: str, said: str) -> None:
    update_config(publication, signup={"url": url})
    result = run("serve", "--port", "8080")
    assert result.exit_code == 1
    assert re.match(rf"error: newsletter\.yaml:\d+: {re.escape(said)}", result.output), result.output
    assert len(result.output.splitlines()) == 1 and "hunter2" not in result.output


@pytest.mark.usefixtures("sendgrid")
def test_serve_with_a_db_it_cannot_open_or_a_port_out_of_range_is_one_line(
        publication: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    update_config(publication, signup={"url": "https://join.riverside-writers-circle.internal"})
    not_a_database = tmp_path / "notes.sqlite"
    not_a_database.write_bytes(b"these are my notes, not a database" * 100)
    for db, code, said in ((tmp_path / "missing" / "signup.sqlite", 1, "does not exist; create it"),
                           (tmp_path, 2, "is a directory"),  # click's own check of --db
                           (not_a_database, 1, "cannot be opened as the sign-up server's records (file is not a "
                                               "database)")):
        result = run("serve", "--port", "8080", "--db", str(db))
        assert result.exit_code == code, result.output
        assert result.output.startswith("error: ") and said in result.output, result.output
        assert len(result.output.splitlines()) == 1
    assert not_a_database.read_bytes() == b"these are my notes, not a database" * 100
    out_of_range = run("serve", "--port", "99999")
    assert out_of_range.exit_code == 2 and "99999 is not in the range 1<=x<=65535" in out_of_range.output
    assert "Traceback" not in out_of_range.output


def test_newsletter_serve_runs_in_a_copy_without_the_list_and_a_kill_9_loses_no_confirmed_signup(
        publication: Path, sendgrid: SendGridDouble, tmp_path: Path) -> None:
    """The command itself, as a process: a copy of the publication without subscribers/ or sent/."""
    copy = tmp_path / "server"
    shutil.copytree(publication, copy, ignore=shutil.ignore_patterns("subscribers", "sent"))
    probe = listening_socket()
    port = probe.getsockname()[1]
    probe.close()
    url = f"http://127.0.0.1:{port}"
    update_config(copy, signup={"url": url})
    env = {**os.environ, "NEWSLETTER_SECRET": SECRET}

    def start() -> subprocess.Popen[bytes]:
        process = subprocess.Popen([sys.executable, "-m", "newsletter", "serve", "--port", str(port)], cwd=copy,
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for(lambda: process.poll() is not None or _answers(f"{url}/health"), "the server to answer")
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        return process

    server = start()
    try:
        with httpx.Client(base_url=url) as client:
            assert client.post("/subscribe", data={"email": READER}).status_code == 200
            link = link_in(wait_for_mails(sendgrid, READER, 1)[0], "confirm")
            assert client.post(link[len(url):]).status_code == 200
        server.send_signal(signal.SIGKILL)
        server.wait()
        logged = server.stdout.read().decode() if server.stdout else ""
        assert "/confirm/" not in logged and "/subscribe" not in logged  # no access log: tokens hold addresses
        assert "Uvicorn running on" in logged
        assert (copy / "signup.sqlite").is_file() and not (copy / "subscribers").exists()
        server = start()
        with httpx.Client(base_url=url) as client:
            changes = client.get("/changes", headers={"Authorization": f"Bearer {tokens.changes_bearer(SECRET)}"})
        assert [c["email"] for c in changes.json()["changes"]] == [READER]
    finally:
        server.terminate()
        server.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.TransportError:
        return False


# -- what the server keeps, and for how long

def test_pending_signups_go_after_7_days_synced_events_after_30_and_unsynced_ones_stay(tmp_path: Path) -> None:
    store = SignupStore(tmp_path / "signup.sqlite")
    start = 1_800_000_000
    mail = OutgoingEmail(to=READER, subject="s", html="h", text="t")
    for number, email in enumerate(("old@lovelace.internal", "synced@lovelace.internal",
                                    "unsynced@lovelace.internal", "new@lovelace.internal")):
        assert store.request_signup(email, "main", Pending(email, "", start + number, "127.0.0.1",
                                                           "https://x.internal/"), mail, limit=10)
    for email in ("synced@lovelace.internal", "unsynced@lovelace.internal"):
        assert store.confirm(email, "main", "", "127.0.0.1", start + 10, lambda pending: mail)
    synced = store.changes(0, 10)[0].cursor  # the editor's sync has the first
    store.changes(synced, 10)

    store.clean(start + 7 * DAY + 2)  # a week on: the oldest pending sign-up is gone, the newest is not
    assert not store.confirm("old@lovelace.internal", "main", "", "", start + 7 * DAY + 2, lambda p: mail)
    assert store.confirm("new@lovelace.internal", "main", "", "", start + 7 * DAY + 2, lambda p: mail)
    store.clean(start + 40 * DAY)  # the synced event is gone; those the editor has not synced stay
    assert [c.email for c in store.changes(0, 10)] == ["unsynced@lovelace.internal", "new@lovelace.internal"]
    store.close()


def test_an_email_being_posted_when_the_server_died_is_uncertain_and_never_resent(
        publication: Path, sendgrid: SendGridDouble) -> None:
    store = SignupStore(publication / "signup.sqlite")
    store.request_signup(READER, "main", Pending(READER, "", int(time.time()), "127.0.0.1", "https://x.internal/"),
                         OutgoingEmail(to=READER, subject="Confirm", html="<p>h</p>", text="t"), limit=10)
    assert store.next_due(time.time()) is not None  # marked sending; then kill -9
    store.close()
    with SignupServer(publication) as server:
        health = server.client.get("/health").json()
        assert health["outbox"] == {"uncertain": 1} and health["uncertain_this_run"] == 1
        server.subscribe("grace@hopper.internal")
        wait_for_mails(sendgrid, "grace@hopper.internal", 1)
    assert mails_to(sendgrid, READER) == []


# -- the web edition's form

def test_with_signup_the_web_editions_pages_carry_a_form_that_joins_through_the_server(
        server: SignupServer, sendgrid: SendGridDouble, publication: Path) -> None:
    assert run("site").exit_code == 0
    site = publication / "build" / "site"
    pages = {"https://riverside-writers-circle.internal/issues/": site / "index.html",
             "https://riverside-writers-circle.internal/issues/issue-1/": site / "issue-1" / "index.html"}
    for url, page in pages.items():
        form = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser").find("form")
        assert form is not None and form["action"] == f"{server.url}/subscribe" and form["method"] == "post"
        fields = {field["name"]: field.get("value", "") for field in form.find_all("input")}
        assert fields == {"email": "", "page": url, "website": ""}
        assert "Subscribe to The Riverside Writers' Circle" in form.get_text()
    # The form as a browser posts it from the page: its Origin is base_url's.
    answer = server.client.post(form["action"][len(server.url):], data={**fields, "email": READER},
                                headers={"Origin": "https://riverside-writers-circle.internal"})
    assert answer.status_code == 200
    server.client.post(server.path_of(link_in(wait_for_mails(sendgrid, READER, 1)[0], "confirm")))
    assert server.changes()["changes"][0]["page"] == "https://riverside-writers-circle.internal/issues/issue-1/"
    assert "<form" not in server.client.get("/").text.split('<footer class="site-footer">')[1]


def test_a_welcome_md_holding_the_link_placeholder_is_refused_at_serve(publication: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from newsletter.signup.emails import _LINK

    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.test-key-for-the-error.abcdef")
    update_config(publication, signup={"url": "https://join.riverside-writers-circle.internal"})
    (publication / "welcome.md").write_text(f"---\nsubject: Hi\n---\nSee {_LINK}.\n", encoding="utf-8")
    result = run("serve", "--port", "8080")
    assert result.exit_code == 1
    assert result.output == (f"error: welcome.md: the welcome email holds {_LINK!r}, the placeholder of its "
                             "unsubscribe link: take it out\n")


def test_any_asgi_server_runs_the_app_from_the_publication_named_in_the_environment(
        publication: Path, sendgrid: SendGridDouble, tmp_path: Path) -> None:
    probe = listening_socket()
    port = probe.getsockname()[1]
    probe.close()
    update_config(publication, signup={"url": f"http://127.0.0.1:{port}"})
    command = [sys.executable, "-m", "uvicorn", "newsletter.signup.asgi:app", "--port", str(port)]
    env = {**os.environ, "NEWSLETTER_PUBLICATION": str(publication),
           "NEWSLETTER_SIGNUP_DB": str(tmp_path / "elsewhere.sqlite")}
    env.pop("NEWSLETTER_SECRET", None)
    refused = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert refused.returncode == 1 and refused.stderr.strip().splitlines() == [
        "error: NEWSLETTER_SECRET is not set: export the same long random value on the server and wherever you "
        "send and sync (for instance `openssl rand -hex 32`); it is read from the environment only"]
    server = subprocess.Popen(command, cwd=tmp_path, env={**env, "NEWSLETTER_SECRET": SECRET},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: server.poll() is not None or _answers(f"http://127.0.0.1:{port}/health"),
                 "uvicorn to answer")
        assert server.poll() is None
        assert httpx.post(f"http://127.0.0.1:{port}/subscribe", data={"email": READER}).status_code == 200
        wait_for_mails(sendgrid, READER, 1)
        assert (tmp_path / "elsewhere.sqlite").is_file() and not (publication / "signup.sqlite").exists()
    finally:
        server.terminate()
        server.wait()


def test_check_welcome_says_which_welcome_readers_get_and_what_is_wrong(publication: Path) -> None:
    result = run("check", "--welcome")
    assert result.exit_code == 0
    assert result.output == ("no welcome.md: the built-in welcome: subject \"Welcome to The Riverside Writers' "
                             "Circle\"; no errors\n")
    (publication / "welcome.md").write_text("---\ntitle: Hello\n---\nGlad you came.\n", encoding="utf-8")
    missing = run("check", "--welcome")
    assert missing.exit_code == 1
    assert missing.output == "error: welcome.md:2: the welcome email needs a `subject:` in its front matter\n"
    (publication / "welcome.md").write_text("---\nsubject: Hello\n---\nGlad you came.\n", encoding="utf-8")
    (publication / "templates" / "signup-email.txt").write_text("{{ body }}\n", encoding="utf-8")
    dropped = run("check", "--welcome")
    assert dropped.exit_code == 1
    assert dropped.output == ("error: the text part has no unsubscribe link: keep {{ unsubscribe_url }} in "
                              "templates/signup-email.txt\nwelcome.md: subject 'Hello'; 1 error\n")
    usage = run("check")
    assert usage.exit_code == 2 and "Missing argument 'ISSUE'" in usage.output


def test_a_welcome_md_nested_too_deep_is_one_line_naming_the_file_and_line(publication: Path) -> None:
    (publication / "welcome.md").write_text("---\nsubject: Hello\n---\nGlad you came.\n\n" + "> " * 50_000 + "hi\n",
                                            encoding="utf-8")
    result = run("check", "--welcome")
    assert result.exit_code == 1
    assert result.output == ("error: welcome.md:6: the welcome email is nested too deep (lists, quotes, links or "
                             "emphasis more than 24 levels inside each other): flatten it\n")


def test_a_write_that_fails_is_undone_alone_and_raised_to_its_caller(tmp_path: Path) -> None:
    """Writes share commits (group commit); one that fails leaves nothing behind and the others stand."""
    store = SignupStore(tmp_path / "signup.sqlite")

    def failing(db: object) -> None:
        db.execute("INSERT INTO meta VALUES ('half-done', '1')")  # type: ignore[attr-defined]
        raise ValueError("the second statement failed")

    results: list[object] = []
    threads = [threading.Thread(target=lambda i=i: results.append(store.unsubscribe(
        f"r{i}@lovelace.internal", f"r{i}@lovelace.internal", "main", 1_800_000_000))) for i in range(20)]
    for thread in threads:
        thread.start()
    with pytest.raises(ValueError, match="the second statement failed"):
        store._write(failing)
    for thread in threads:
        thread.join()
    assert results == [None] * 20
    assert len(store.changes(0, 100)) == 20
    assert store._write(lambda db: db.execute("SELECT COUNT(*) FROM meta WHERE key = 'half-done'").fetchone()[0]) == 0
    store.close()


def test_serve_on_a_port_in_use_is_one_line(publication: Path, monkeypatch: pytest.MonkeyPatch,
                                             sendgrid: SendGridDouble) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    update_config(publication, signup={"url": "https://join.riverside-writers-circle.internal"})
    taken = listening_socket()
    try:
        port = taken.getsockname()[1]
        result = run("serve", "--port", str(port))
    finally:
        taken.close()
    assert result.exit_code == 1
    assert result.output.startswith(f"error: 127.0.0.1:{port}: cannot listen there (Address already in use): ")
    assert len(result.output.splitlines()) == 1 and "Traceback" not in result.output


def test_a_welcome_emails_list_unsubscribe_header_is_ascii_whatever_the_links_letters(publication: Path) -> None:
    """A header is ASCII: an accented link went into List-Unsubscribe as it was, and a server
    without 8BITMIME refused the email; the body keeps the link as written."""
    from newsletter.config import load_settings
    from newsletter.signup.emails import EmailMaker, load_welcome

    update_config(publication, signup={"url": "https://adhésion.riverside-writers-circle.internal"})
    settings = load_settings(publication)
    link = "https://adhésion.riverside-writers-circle.internal/unsubscribe/désabonner.token"
    welcome = EmailMaker(settings, load_welcome(settings)).welcome(READER, link)
    assert welcome.headers["List-Unsubscribe"] == (
        "<https://xn--adhsion-dya.riverside-writers-circle.internal/unsubscribe/d%C3%A9sabonner.token>")
    assert link in welcome.text
