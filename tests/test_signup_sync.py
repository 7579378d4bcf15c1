"""`subscribers sync` with `signup:`: the sign-up server's changes into the list (issue 19)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.signup.sync import CURSOR_FILE
from tests.helpers import run, update_config
from tests.send_helpers import write_list
from tests.sendgrid_double import KeyCatcher, SendGridDouble
from tests.signup_helpers import READER, SECRET, SignupServer, link_in, signed_out, wait_for_mails
from tests.site_server import StaticSite
from tests.subscriber_helpers import MAIN_LIST, rows

GRACE = "grace@hopper.internal"


@pytest.fixture
def server(publication: Path, sendgrid: SendGridDouble, monkeypatch: pytest.MonkeyPatch,
           request: pytest.FixtureRequest) -> Iterator[SignupServer]:
    """The server on the publication's signup.sqlite, or (parametrized "elsewhere") on a file of its own;
    parametrized with a dict, the server is made with those options (`changes_page`)."""
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    write_list(publication, [["ada.lovelace@example.org", "Ada", "Lovelace", "subscribed", "members"],
                             [GRACE, "Grace", "Hopper", "unsubscribed", "members"]])
    db, param = None, getattr(request, "param", None)
    options = param if isinstance(param, dict) else {}
    if param == "elsewhere":
        (publication.parent / "server").mkdir()
        db = publication.parent / "server" / "signup.sqlite"
    with SignupServer(publication, {"tags": ["web"]}, db=db, **options) as running:
        yield running


def sign_up(server: SignupServer, double: SendGridDouble, email: str, first_name: str = "") -> None:
    server.subscribe(email, first_name=first_name, page="https://riverside-writers-circle.internal/issues/")
    link = link_in(wait_for_mails(double, email, 1)[0], "confirm")
    assert server.client.post(server.path_of(link)).status_code == 200


def test_sync_adds_confirmed_signups_with_evidence_resubscribes_and_unsubscribes(
        server: SignupServer, sendgrid: SendGridDouble, publication: Path) -> None:
    sign_up(server, sendgrid, READER, "Ada")
    sign_up(server, sendgrid, GRACE)  # left before; a confirmed double opt-in is consent again
    server.client.post(signed_out(server, "ada.lovelace@example.org"), content=b"List-Unsubscribe=One-Click")
    [first, second, third] = server.changes()["changes"]

    result = run("subscribers", "sync")
    assert result.exit_code == 0, result.output
    assert f"subscribers/main.csv: changed 3 addresses from the sign-up server ({server.url})" in result.output
    listed = rows()
    ada = listed[READER]
    assert (ada["status"], ada["first_name"], ada["tags"]) == ("subscribed", "Ada", "web")
    assert ada["subscribed_at"] == first["at"]
    assert (ada["signup_requested_at"], ada["signup_confirmed_at"]) == (first["requested_at"], first["at"])
    assert (ada["signup_request_ip"], ada["signup_confirm_ip"]) == ("127.0.0.1", "127.0.0.1")
    assert ada["signup_page"] == "https://riverside-writers-circle.internal/issues/"
    assert (listed[GRACE]["status"], listed[GRACE]["tags"]) == ("subscribed", "members;web")
    assert listed[GRACE]["signup_confirmed_at"] == second["at"]
    assert listed["ada.lovelace@example.org"]["status"] == "unsubscribed"
    assert (publication / "subscribers" / CURSOR_FILE).read_text() == f"{third['cursor']}\n"

    before = MAIN_LIST.read_bytes()
    again = run("subscribers", "sync")
    assert again.exit_code == 0 and "changed 0 addresses from the sign-up server" in again.output
    assert MAIN_LIST.read_bytes() == before


def test_a_sync_that_stopped_before_its_cursor_applies_nothing_twice(
        server: SignupServer, sendgrid: SendGridDouble, publication: Path) -> None:
    sign_up(server, sendgrid, READER)
    assert run("subscribers", "sync").exit_code == 0
    # Then the reader leaves: the confirmation before must never resubscribe her.
    server.client.post(signed_out(server, READER))
    assert run("subscribers", "sync").exit_code == 0
    assert rows()[READER]["status"] == "unsubscribed"
    after_both = MAIN_LIST.read_bytes()
    # A sync killed after writing the list and before its cursor: the cursor is where it was.
    (publication / "subscribers" / CURSOR_FILE).unlink()
    result = run("subscribers", "sync")
    assert result.exit_code == 0
    assert "changed 0 addresses" in result.output and "already so         2" in result.output
    assert MAIN_LIST.read_bytes() == after_both  # the old confirmation did not resubscribe her


def test_an_unsubscribe_after_a_resubscription_made_by_the_editor_is_never_lost(
        server: SignupServer, sendgrid: SendGridDouble) -> None:
    """The server never sees `subscribers add --resubscribe`: a second unsubscribe must still reach the list."""
    server.client.post(signed_out(server, "ada.lovelace@example.org"))
    assert run("subscribers", "sync").exit_code == 0
    assert rows()["ada.lovelace@example.org"]["status"] == "unsubscribed"
    back = run("subscribers", "add", "ada.lovelace@example.org", "--resubscribe")  # she asked by email
    assert back.exit_code == 0, back.output
    assert rows()["ada.lovelace@example.org"]["status"] == "subscribed"

    assert server.client.post(signed_out(server, "ada.lovelace@example.org")).status_code == 200
    result = run("subscribers", "sync")
    assert result.exit_code == 0, result.output
    assert "ada.lovelace@example.org: subscribed → unsubscribed" in result.output
    assert rows()["ada.lovelace@example.org"]["status"] == "unsubscribed"


# A server run elsewhere keeps its records: delete erases only the publication's own signup.sqlite.
@pytest.mark.parametrize("server", ["elsewhere"], indirect=True)
def test_an_erased_readers_old_signup_never_comes_back_and_a_later_one_does(
        server: SignupServer, sendgrid: SendGridDouble, publication: Path) -> None:
    sign_up(server, sendgrid, READER, "Ada")
    assert run("subscribers", "sync").exit_code == 0
    erased = run("subscribers", "delete", READER)
    assert erased.exit_code == 0, erased.output
    assert erased.stdout.splitlines()[-1] == (f"  the sign-up server at {server.url} keeps its own records where it "
                                              "runs: erase the address there too (run this delete in its folder)")
    assert READER not in rows()
    (publication / "subscribers" / CURSOR_FILE).unlink()  # a restored backup, a cursor reset

    result = run("subscribers", "sync")
    assert result.exit_code == 0, result.output
    assert READER not in rows()
    assert READER not in MAIN_LIST.read_text(encoding="utf-8")
    assert "  erased             1 (sign-ups from before the erasure, left out)" in result.output
    assert f"{READER}: left out, erased on " in result.output

    # A double opt-in confirmed on a later day than the erasure is consent: the register says yesterday.
    register = publication / "sent" / "erased.csv"
    [header, entry] = register.read_text(encoding="utf-8").splitlines()
    register.write_text(f"{header}\n{entry.split(',')[0]},2000-01-01\n", encoding="utf-8")
    (publication / "subscribers" / CURSOR_FILE).unlink()
    again = run("subscribers", "sync")
    assert again.exit_code == 0, again.output
    assert (rows()[READER]["status"], rows()[READER]["first_name"]) == ("subscribed", "Ada")
    assert register.read_text(encoding="utf-8").splitlines() == [header]  # no longer refused


def test_dry_run_writes_neither_list_nor_cursor(server: SignupServer, sendgrid: SendGridDouble,
                                                publication: Path) -> None:
    sign_up(server, sendgrid, READER)
    before = MAIN_LIST.read_bytes()
    result = run("subscribers", "sync", "--dry-run")
    assert result.exit_code == 0 and "would change 1 address from the sign-up server" in result.output
    assert MAIN_LIST.read_bytes() == before
    assert not (publication / "subscribers" / CURSOR_FILE).exists()


def test_an_unreachable_server_or_another_secret_is_one_line_and_the_list_is_unchanged(
        server: SignupServer, sendgrid: SendGridDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    sign_up(server, sendgrid, READER)
    before = MAIN_LIST.read_bytes()
    monkeypatch.setenv("NEWSLETTER_SECRET", "another-secret-0123456789abcdef")
    refused = run("subscribers", "sync")
    assert refused.exit_code == 1
    assert refused.output == (f"error: the sign-up server at {server.url} refused this NEWSLETTER_SECRET (401): "
                              "export the same value here as on the server; the lists are unchanged\n")
    assert "another-secret" not in refused.output
    server.__exit__()
    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    down = run("subscribers", "sync")
    assert down.exit_code == 1 and down.output.startswith(f"error: could not reach the sign-up server at {server.url}")
    assert len(down.output.splitlines()) == 1
    assert MAIN_LIST.read_bytes() == before


def test_a_server_that_redirects_is_refused_in_one_line_and_the_token_never_leaves(
        server: SignupServer, sendgrid: SendGridDouble, publication: Path, tmp_path: Path) -> None:
    sign_up(server, sendgrid, READER)
    before = MAIN_LIST.read_bytes()
    with StaticSite(tmp_path, prefix="") as redirecting, KeyCatcher() as catcher:
        redirecting.redirects["/changes"] = f"{catcher.url}/changes"
        update_config(publication, signup={"url": redirecting.root})
        result = run("subscribers", "sync")
    assert result.exit_code == 1
    assert result.output == (f"error: the sign-up server at {redirecting.root} answered GET /changes with a "
                             f"redirect (301) to {catcher.url}/changes, which is not followed (it would get the "
                             "sign-up token): set signup.url to the server's own address; the lists are unchanged\n")
    assert ("GET", "/changes?after=0") in redirecting.requests
    assert catcher.caught == []
    assert MAIN_LIST.read_bytes() == before
    assert not (publication / "subscribers" / CURSOR_FILE).exists()


# -- the send's links

@pytest.mark.usefixtures("published_site")
def test_a_send_with_signup_carries_signed_one_click_links_the_server_honours(
        server: SignupServer, sendgrid: SendGridDouble, publication: Path) -> None:
    readers = ["ada.lovelace@example.org", "o'brien+news@lovelace.internal"]
    write_list(publication, [[email, "", "", "subscribed", ""] for email in readers])
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 0, result.output
    body = sendgrid.accepted[0]
    assert "asm" not in body
    links = {}
    for personalization in body["personalizations"]:
        email = personalization["to"][0]["email"]
        link = personalization["substitutions"]["[%text:unsubscribe_url%]"]
        assert link.startswith(f"{server.url}/unsubscribe/")
        assert personalization["substitutions"]["[%html:unsubscribe_url%]"] == link
        assert personalization["headers"] == {"List-Unsubscribe": f"<{link}>",
                                              "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        links[email] = link
    assert sorted(links) == sorted(readers) and len(set(links.values())) == 2

    one_click = server.client.post(server.path_of(links["o'brien+news@lovelace.internal"]),
                                   content=b"List-Unsubscribe=One-Click")
    assert one_click.status_code == 200
    assert run("subscribers", "sync").exit_code == 0
    assert {email: row["status"] for email, row in rows().items()} == {
        "ada.lovelace@example.org": "subscribed", "o'brien+news@lovelace.internal": "unsubscribed"}


@pytest.mark.usefixtures("published_site")
def test_a_real_send_with_signup_and_no_secret_is_refused_and_check_says_which_link_wins(
        server: SignupServer, sendgrid: SendGridDouble, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSLETTER_SECRET")
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 1
    assert ("error: NEWSLETTER_SECRET is not set: export the same long random value on the server and wherever "
            "you send and sync") in result.output
    assert "(signup: is set, so each email's unsubscribe link is signed with it)" in result.output
    assert sendgrid.mail_requests == []
    checked = run("check", "issue-1")
    assert (f"signup: is set, so each email's unsubscribe link is {server.url}/unsubscribe/<token>, signed for "
            "its reader; unsubscribe_url is not used (remove it, or remove signup:)") in checked.output


@pytest.mark.usefixtures("published_site")
def test_a_real_send_pulls_the_servers_changes_first_so_this_mornings_unsubscribe_is_honoured(
        server: SignupServer, sendgrid: SendGridDouble, publication: Path) -> None:
    server.client.post(signed_out(server, "ada.lovelace@example.org"), content=b"List-Unsubscribe=One-Click")
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 0, result.output
    assert f"subscribers/main.csv: changed 1 address from the sign-up server ({server.url})" in result.output
    assert sendgrid.accepted_recipients() == []  # grace is unsubscribed, ada left this morning
    assert rows()["ada.lovelace@example.org"]["status"] == "unsubscribed"


@pytest.mark.usefixtures("published_site")
def test_a_send_that_cannot_reach_the_server_says_how_old_the_last_sync_is(
        server: SignupServer, sendgrid: SendGridDouble, publication: Path) -> None:
    assert run("subscribers", "sync").exit_code == 0
    server.__exit__()
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 0, result.output
    assert (f"warning: could not reach the sign-up server at {server.url} ([Errno 111] Connection refused); the "
            "lists are unchanged: try again once it is up; the last sync was less than a minute ago: "
            "unsubscribes made on the server since then are not in the list") in result.output
    assert sendgrid.accepted_recipients() == ["ada.lovelace@example.org"]


@pytest.mark.parametrize("server", [{"changes_page": 2}], indirect=True, ids=["pages-of-2"])
def test_sync_follows_every_page_of_changes(server: SignupServer, publication: Path) -> None:
    leaving = [f"reader{i}@lovelace.internal" for i in range(5)]
    write_list(publication, [[email, "", "", "subscribed", ""] for email in leaving])
    for email in leaving:
        server.client.post(signed_out(server, email))
    assert server.changes()["more"] is True
    result = run("subscribers", "sync")
    assert result.exit_code == 0, result.output
    assert "changed 5 addresses from the sign-up server" in result.output
    assert {row["status"] for row in rows().values()} == {"unsubscribed"}
    assert (publication / "subscribers" / CURSOR_FILE).read_text() == "5\n"  # the fifth event's cursor
    again = run("subscribers", "sync")
    assert "changed 0 addresses from the sign-up server" in again.output
