"""`newsletter send` and `status` against the SendGrid double: who gets what, in which requests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newsletter.providers.sendgrid.mail import ASM_UNSUBSCRIBE_URL
from newsletter.providers.sendgrid.provider import SendGridProvider
from tests.helpers import run
from tests.send_helpers import files_under, generated, write_list
from tests.sendgrid_double import SendGridDouble, load_schema
from tests.terminal_double import TerminalDouble

# A real send first checks that the issue is online: here it is, built and served locally.
pytestmark = pytest.mark.usefixtures("published_site")


def test_sends_in_requests_of_1000_each_subscriber_once(publication: Path, sendgrid: SendGridDouble) -> None:
    """2,500 subscribers: three valid requests (1000, 1000, 500), one connection kept alive."""
    write_list(publication, generated(2500))
    result = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert result.exit_code == 0, result.output
    assert [len(b["personalizations"]) for b in sendgrid.accepted] == [1000, 1000, 500]
    assert sorted(sendgrid.accepted_recipients()) == [f"reader{i:06d}@example.org" for i in range(2500)]
    assert sendgrid.rejections == []
    assert sendgrid.connections == 1
    assert "accepted       2,500" in result.output
    body = sendgrid.accepted[0]
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["custom_args"] == {"issue": "issue-1"}
    assert body["categories"] == ["newsletter", "issue-1"]  # the configured ones, then the issue's own
    assert body["from"]["email"] == "letters@riverside-writers-circle.internal"


def test_running_again_sends_nothing(publication: Path, sendgrid: SendGridDouble) -> None:
    """A finished send says so; new subscribers added later get it on the next run, alone."""
    assert run("send", "issue-1", "--yes").exit_code == 0
    first = len(sendgrid.accepted_recipients())
    again = run("send", "issue-1", "--yes")
    assert again.exit_code == 0
    assert len(sendgrid.accepted_recipients()) == first
    assert "Everyone already has issue-1: nothing was sent." in again.output
    rows = [line.split(",") for line in (publication / "subscribers" / "main.csv").read_text().splitlines()[1:]]
    write_list(publication, generated(3, prefix="new") + [r[:5] for r in rows if r[0] == "ada.lovelace@example.org"])
    third = run("send", "issue-1", "--yes")
    assert third.exit_code == 0
    assert sendgrid.accepted_recipients()[first:] == [f"new{i:06d}@example.org" for i in range(3)]
    assert "skipped            1  (already sent)" in third.output


def test_only_subscribed_rows_of_the_tag_are_sent(publication: Path, sendgrid: SendGridDouble) -> None:
    """Unsubscribed, bounced and complained addresses never get an issue, nor untagged ones with --tag."""
    write_list(publication, [
        ["in@example.org", "In", "", "subscribed", "members"],
        ["other@example.org", "Other", "", "subscribed", "prose"],
        ["gone@example.org", "Gone", "", "unsubscribed", "members"],
        ["bounced@example.org", "B", "", "bounced", "members"],
        ["complained@example.org", "C", "", "complained", "members"],
    ])
    assert run("send", "issue-1", "--yes", "--tag", "members").exit_code == 0
    assert sendgrid.accepted_recipients() == ["in@example.org"]
    assert run("send", "issue-1", "--yes").exit_code == 0
    assert sendgrid.accepted_recipients() == ["in@example.org", "other@example.org"]


def test_merge_fields_are_escaped_for_html_and_raw_for_text(publication: Path, sendgrid: SendGridDouble) -> None:
    """A name with <, &, quotes: HTML-escaped in the html substitution, as typed in the text one."""
    name = """<b>Tom & "Jerry" 'J'</b>"""
    write_list(publication, [["tom@example.org", name, "Smith, Jr.; III", "subscribed"],
                             ["noname@example.org", "", "", "subscribed"]])
    assert run("send", "issue-1", "--yes").exit_code == 0
    tom, noname = sendgrid.accepted[0]["personalizations"]
    assert tom["substitutions"]["[%text:first_name|friend%]"] == name
    assert tom["substitutions"]["[%html:first_name|friend%]"] == (
        "&lt;b&gt;Tom &amp; &#34;Jerry&#34; &#39;J&#39;&lt;/b&gt;")
    # SendGrid rejects , and ; in names; the recipient still gets the issue.
    assert tom["to"] == [{"email": "tom@example.org", "name": """<b>Tom & "Jerry" 'J'</b> Smith Jr. III"""}]
    assert noname["to"] == [{"email": "noname@example.org"}]
    assert noname["substitutions"]["[%html:first_name|friend%]"] == "friend"


def test_unsubscribe_link_and_one_click_headers_per_recipient(publication: Path, sendgrid: SendGridDouble) -> None:
    """Without an unsubscribe group, unsubscribe_url is filled per recipient, address URL-encoded."""
    write_list(publication, [["a+b@example.org", "A", "", "subscribed"]])
    assert run("send", "issue-1", "--yes").exit_code == 0
    (personalization,) = sendgrid.accepted[0]["personalizations"]
    url = "https://riverside-writers-circle.internal/unsubscribe?email=a%2Bb@example.org"
    assert personalization["headers"] == {"List-Unsubscribe": f"<{url}>",
                                          "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    assert personalization["substitutions"]["[%text:unsubscribe_url%]"] == url
    assert "asm" not in sendgrid.accepted[0]


def test_an_accented_unsubscribe_url_is_ascii_in_its_header_and_as_written_in_the_body(
        publication: Path, sendgrid: SendGridDouble) -> None:
    """A header is ASCII: the link went into List-Unsubscribe as it was (UTF-8)."""
    config = publication / "newsletter.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "/unsubscribe?email={email}", "/désinscription?email={email}"), encoding="utf-8")
    write_list(publication, [["ann@example.org", "Ann", "", "subscribed"]])
    assert run("send", "issue-1", "--yes").exit_code == 0
    (personalization,) = sendgrid.accepted[0]["personalizations"]
    assert personalization["headers"]["List-Unsubscribe"] == (
        "<https://riverside-writers-circle.internal/d%C3%A9sinscription?email=ann@example.org>")
    assert personalization["substitutions"]["[%text:unsubscribe_url%]"] == (
        "https://riverside-writers-circle.internal/désinscription?email=ann@example.org")


def test_unsubscribe_group_uses_sendgrids_link(publication: Path, sendgrid: SendGridDouble) -> None:
    """With sendgrid.asm_group_id: asm.group_id, SendGrid's link in both parts, no own headers."""
    config = publication / "newsletter.yaml"
    config.write_text(config.read_text().replace("# asm_group_id: 12345", "asm_group_id: 12345"))
    assert run("send", "issue-1", "--yes").exit_code == 0
    body = sendgrid.accepted[0]
    assert body["asm"] == {"group_id": 12345}
    text, html = (c["value"] for c in body["content"])
    assert ASM_UNSUBSCRIBE_URL in text and f'href="{ASM_UNSUBSCRIBE_URL}"' in html
    assert "unsubscribe_url" not in text + html
    assert all("headers" not in p for p in body["personalizations"])


def test_refuses_without_a_way_to_unsubscribe(publication: Path, sendgrid: SendGridDouble) -> None:
    config = publication / "newsletter.yaml"
    config.write_text(config.read_text().replace("unsubscribe_url:", "# unsubscribe_url:"))
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 1
    assert "no way to unsubscribe" in result.stderr
    assert sendgrid.mail_requests == []


def test_refuses_to_send_without_terminal_or_yes(publication: Path, sendgrid: SendGridDouble) -> None:
    result = run("send", "issue-1")
    assert result.exit_code == 1
    assert "add --yes" in result.stderr
    assert sendgrid.mail_requests == []


@pytest.mark.parametrize(("value", "said"), [
    pytest.param(None, "is not set", id="unset"),
    pytest.param(" \t", "is empty", id="all-whitespace"),
])
def test_missing_api_key_is_one_line_before_sending(publication: Path, sendgrid: SendGridDouble,
                                                    monkeypatch: pytest.MonkeyPatch, value: str | None,
                                                    said: str) -> None:
    if value is None:
        monkeypatch.delenv("SENDGRID_API_KEY")
    else:
        monkeypatch.setenv("SENDGRID_API_KEY", value)
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: SENDGRID_API_KEY {said}") and result.stderr.count("\n") == 1
    assert sendgrid.mail_requests == []


@pytest.mark.parametrize("damage", [
    pytest.param(lambda key: key[:8] + "\n" + key[8:], id="newline"),
    pytest.param(lambda key: key[:8] + "\x01" + key[8:], id="control"),
    pytest.param(lambda key: key[:8] + "\u0455" + key[8:], id="non-ascii"),
    pytest.param(lambda key: key[:8] + " " + key[8:], id="space-inside"),
])
def test_api_key_with_a_character_no_key_has_is_refused_without_showing_it(
        publication: Path, sendgrid: SendGridDouble, monkeypatch: pytest.MonkeyPatch, damage) -> None:
    """One line that does not echo the key; nothing posted, nothing left in the ledger."""
    key = damage(sendgrid.api_key)
    monkeypatch.setenv("SENDGRID_API_KEY", key)
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: SENDGRID_API_KEY holds a character no API key has")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output + result.stderr
    for part in (key, sendgrid.api_key[:8], sendgrid.api_key[8:]):
        assert part not in result.output + result.stderr
    assert sendgrid.request_headers == []
    assert run("status", "issue-1", "--json").stdout.strip() == (
        '{"sent": 0, "pending": 0, "failed": 0, "uncertain": 0, "cancelled": 0, "not_sent": null, "scheduled_at": null, '
        '"batch_id": null}')


def test_a_request_that_cannot_be_made_leaves_nothing_in_flight(publication: Path, sendgrid: SendGridDouble) -> None:
    """Should a bad header get past the key check, the worker's error is one line without the key,
    and the batch (never posted) is neither pending nor uncertain: the next run sends it."""

    class KeyPastTheCheck(SendGridProvider):
        """SendGrid with a key that ends in a line break, as `sendgrid_api_key` would never give it:
        the real transport, run and ledger meet it."""

        def secret(self) -> str:
            return sendgrid.api_key + "\n"

    write_list(publication, generated(1500))
    result = run("send", "issue-1", "--yes", terminal=TerminalDouble(provider=KeyPastTheCheck))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: could not make the request to 127.0.0.1")
    assert result.stderr.count("\n") == 1 and sendgrid.api_key not in result.output + result.stderr
    assert sendgrid.request_headers == []
    # Never posted, so not in the ledger: not sent, as the status says (it once said nothing of them).
    assert json.loads(run("status", "issue-1", "--json").stdout) == {
        "sent": 0, "pending": 0, "failed": 0, "uncertain": 0, "cancelled": 0, "not_sent": 1500, "scheduled_at": None,
        "batch_id": None}
    assert run("send", "issue-1", "--yes").exit_code == 0
    assert len(sendgrid.accepted_recipients()) == 1500


def test_dry_run_writes_valid_bodies_and_sends_nothing(publication: Path, sendgrid_schema: None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """No key needed, no question asked; each file is a body SendGrid's schema and rules accept."""
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    write_list(publication, generated(1500))
    result = run("send", "issue-1", "--dry-run")
    assert result.exit_code == 0, result.output
    files = sorted((publication / "build" / "issue-1" / "dry-run").glob("*.json"))
    assert [f.name for f in files] == ["request-00001.json", "request-00002.json"]
    checker = SendGridDouble(schema=load_schema())
    bodies = [json.loads(f.read_bytes()) for f in files]
    assert [checker.check_mail_body(b) for b in bodies] == [[], []]
    assert sum(len(b["personalizations"]) for b in bodies) == 1500
    assert "would send     1,500  (written, not sent)" in result.output
    # A dry run is not a send: the real one still has everyone to send to.
    assert not (publication / "sent" / "issue-1.sqlite").exists()


def test_proof_goes_to_the_given_addresses_only(publication: Path, sendgrid: SendGridDouble) -> None:
    """--to: fields from the list where the address is in it; the issue still counts as unsent."""
    result = run("send", "issue-1", "--yes", "--to", "ADA.lovelace@example.org", "--to", "me@example.net")
    assert result.exit_code == 0, result.output
    ada, me = sendgrid.accepted[0]["personalizations"]
    assert ada["substitutions"]["[%text:first_name|friend%]"] == "Ada"
    assert me["to"] == [{"email": "me@example.net"}]
    assert run("status", "issue-1", "--json").stdout.strip() == (
        '{"sent": 0, "pending": 0, "failed": 0, "uncertain": 0, "cancelled": 0, "not_sent": null, "scheduled_at": null, '
        '"batch_id": null}')
    assert run("send", "issue-1", "--yes").exit_code == 0
    assert "ada.lovelace@example.org" in sendgrid.accepted_recipients()[2:]


def test_status_json_counts(publication: Path, sendgrid: SendGridDouble) -> None:
    write_list(publication, generated(1200))
    assert run("send", "issue-1", "--yes").exit_code == 0
    status = run("status", "issue-1", "--json")
    assert status.exit_code == 0
    assert json.loads(status.stdout) == {"sent": 1200, "pending": 0, "failed": 0, "uncertain": 0, "cancelled": 0,
                                         "not_sent": 0, "scheduled_at": None, "batch_id": None}
    shown = run("status", "issue-1").stdout
    assert "sent           1,200" in shown and "not sent" not in shown  # everyone has it


def test_api_key_is_in_no_output_and_no_file(publication: Path, sendgrid: SendGridDouble) -> None:
    """Not in what the commands print (success or failure), nor in anything under the publication."""
    from tests.sendgrid_double import Respond

    outputs = [run("send", "issue-1", "--yes"), run("status", "issue-1"),
               run("send", "issue-1", "--dry-run")]
    write_list(publication, generated(3))
    sendgrid.script(Respond(401, body={"errors": [{"field": None, "message": "bad key"}]}))
    outputs.append(run("send", "issue-1", "--yes"))
    for result in outputs:
        assert sendgrid.api_key not in result.output + result.stderr
    key = sendgrid.api_key.encode()
    assert [f for f in files_under(publication) if key in f.read_bytes()] == []


def test_asks_before_sending_and_no_stops_it(publication: Path, sendgrid: SendGridDouble) -> None:
    """At a terminal: subject, list, counts, then a question; only "y" sends."""


    at_a_terminal = TerminalDouble(can_ask=True)
    write_list(publication, generated(3))
    answered_no = run("send", "issue-1", input="n\n", terminal=at_a_terminal)
    assert answered_no.exit_code == 1
    assert "Issue:    issue-1: Winter readings" in answered_no.output
    assert "Recipients: 3 will receive it, 0 already have" in answered_no.output
    assert sendgrid.mail_requests == []
    answered_yes = run("send", "issue-1", input="y\n", terminal=at_a_terminal)
    assert answered_yes.exit_code == 0, answered_yes.output
    assert len(sendgrid.accepted_recipients()) == 3
    again = run("send", "issue-1", input="y\n", terminal=at_a_terminal)
    assert "Recipients: 0 will receive it, 3 already have" in again.output
    assert "Everyone selected already has issue-1: nothing to send." in again.output and again.exit_code == 0


def test_a_second_send_of_the_same_issue_is_refused(publication: Path, sendgrid: SendGridDouble) -> None:
    from newsletter.sending.ledger import SendLock

    lock = SendLock(publication / "sent" / "issue-1.lock")
    lock.acquire("issue-1")
    try:
        result = run("send", "issue-1", "--yes")
    finally:
        lock.release()
    assert result.exit_code == 1
    assert "another `newsletter send issue-1` is running" in result.stderr
    assert sendgrid.mail_requests == []


def test_duplicates_and_malformed_addresses_do_not_break_a_batch(publication: Path,
                                                                 sendgrid: SendGridDouble) -> None:
    """The same address twice (any case) is sent once; an address SendGrid would refuse is left out,
    and since not everyone got the issue, the exit status says so."""
    write_list(publication, [["One@Example.org", "One", "", "subscribed"],
                             ["one@example.org", "One again", "", "subscribed"],
                             ["not an address", "", "", "subscribed"],
                             ["two@example.org", "Two", "", "subscribed"]])
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 1, result.output
    assert sendgrid.accepted_recipients() == ["One@Example.org", "two@example.org"]
    assert "duplicates         1" in result.output and "invalid            1" in result.output
    assert ("Not everyone selected got it: 1 row is not an email address; fix it in list main "
            "and run `newsletter send issue-1` again:\n  subscribers/main.csv:4: 'not an address'\n") in result.output


def test_a_bad_row_anywhere_in_the_list_stops_a_real_send_before_any_request(
        publication: Path, sendgrid: SendGridDouble) -> None:
    """2,500 subscribed rows, then a status the list cannot have: nobody is mailed, whether or not
    the list also holds a not-subscribed row (which used to decide how the list was read first)."""
    for others in ([], [["gone@example.org", "Gone", "", "unsubscribed"]]):
        write_list(publication, generated(2500) + others + [["odd@example.org", "Odd", "", "maybe"]])
        result = run("send", "issue-1", "--yes", "--concurrency", "1")
        assert result.exit_code == 1
        assert result.stderr.startswith(f"error: subscribers/main.csv:{2502 + len(others)}: unknown status 'maybe'")
        assert sendgrid.accepted == [] and sendgrid.mail_requests == []


def test_another_list_and_a_missing_one(publication: Path, sendgrid: SendGridDouble) -> None:
    write_list(publication, [["friend@example.org", "F", "", "subscribed"]], name="friends")
    assert run("send", "issue-1", "--yes", "--list", "friends").exit_code == 0
    assert sendgrid.accepted_recipients() == ["friend@example.org"]
    missing = run("send", "issue-1", "--yes", "--list", "nobody")
    assert missing.exit_code == 1
    assert missing.stderr == "error: subscribers/nobody.csv: no such subscriber list (--list nobody)\n"


def test_personalization_fills_tags_as_merge_does(publication: Path) -> None:
    """The per-recipient JSON, written by hand for speed, equals merge.substitutions' answer."""
    from newsletter import merge
    from newsletter.build import render_and_check
    from newsletter.config import load_settings
    from newsletter.providers.sendgrid.mail import RequestBuilder
    from newsletter.subscribers import Subscriber

    settings = load_settings()
    email, _ = render_and_check(settings, "issue-1")
    builder = RequestBuilder(settings, email, "issue-1")
    subscriber = Subscriber(email="zoë+x@example.org", first_name='<Zoë> & "[%text:last_name%]"', last_name="\u2028")
    row = [subscriber.email, subscriber.first_name, subscriber.last_name, "subscribed", "", "", ""]
    personalization = json.loads(builder.personalizer()(subscriber.email, row))
    values = dict(subscriber.fields(), unsubscribe_url=builder.unsubscribe_url(subscriber.email))
    assert personalization["substitutions"] == merge.substitutions(builder.fields, values)
    assert values["unsubscribe_url"].endswith("?email=zo%C3%AB%2Bx@example.org")
    assert personalization["to"] == [{"email": "zoë+x@example.org", "name": '<Zoë> & "[%text:last_name%]"'}]


@pytest.mark.parametrize(("first", "last", "address"), [
    pytest.param("Ada", "Lovelace", "ada@example.org", id="plain"),
    pytest.param("", "", "Ada.L@Example.org", id="fallback"),
    pytest.param("Tom & Jerry", "O'Brien", "tom@example.org", id="html-special"),
    pytest.param("Zoë", "Ünal", "zoe@example.org", id="unicode"),
    pytest.param("a\tb\x07", "x, y; z", "a+b@example.org", id="control-and-separators"),
    pytest.param("[%html:first_name%]", "[", "w@example.org", id="tag-like"),
])
def test_personalization_from_a_row_is_what_merge_gives(publication: Path, first: str, last: str,
                                                       address: str) -> None:
    """Plain values take the fast path, the others MergeField.value_for: either way the
    substitutions, the unsubscribe header and `to` are what merge gives (a list with an extra column)."""
    from newsletter import merge
    from newsletter.build import render_and_check
    from newsletter.config import load_settings
    from newsletter.providers.sendgrid.mail import RequestBuilder, display_name
    from newsletter.subscribers import Subscriber

    settings = load_settings()
    email, _ = render_and_check(settings, "issue-1")
    builder = RequestBuilder(settings, email, "issue-1")
    subscriber = Subscriber(email=address, first_name=first, last_name=last, extra={"city": "Oxbury"})
    row = [address, first, last, "subscribed", "", "", "", "Oxbury"]
    personalization = json.loads(builder.personalizer(("city",))(address, row))
    values = dict(subscriber.fields(), unsubscribe_url=builder.unsubscribe_url(address))
    assert personalization["substitutions"] == merge.substitutions(builder.fields, values)
    assert personalization["headers"]["List-Unsubscribe"] == f"<{values['unsubscribe_url']}>"
    name = display_name(first, last)
    assert personalization["to"] == [{"email": address, **({"name": name} if name else {})}]


@pytest.mark.parametrize(("given", "said"), [
    pytest.param(["me@example.net", "not an address"], "error: --to 'not an address' is not an email address",
                 id="not-an-address"),
    pytest.param(["a;b@example.net"], "error: --to 'a;b@example.net' is not an email address", id="semicolon"),
    pytest.param(["Me@Example.net", "me@example.net"],
                 "error: --to Me@Example.net and --to me@example.net are the same address", id="same-twice"),
])
def test_proof_addresses_are_checked_before_anything_is_sent(publication: Path, sendgrid: SendGridDouble,
                                                              given: list[str], said: str) -> None:
    result = run("send", "issue-1", "--yes", *[arg for address in given for arg in ("--to", address)])
    assert result.exit_code == 1
    assert result.stderr.startswith(said) and result.stderr.count("\n") == 1
    assert sendgrid.request_headers == []


@pytest.mark.parametrize("url", ["ftp://127.0.0.1", "http://127.0.0.1:99999", "http://127.0.0.1:port"])
def test_a_bad_sendgrid_url_is_refused_before_the_question_and_the_lock(
        publication: Path, sendgrid: SendGridDouble, monkeypatch: pytest.MonkeyPatch, url: str) -> None:


    monkeypatch.setenv("NEWSLETTER_SENDGRID_URL", url)
    result = run("send", "issue-1", input="y\n", terminal=TerminalDouble(can_ask=True))
    assert result.exit_code == 1
    assert result.stderr == (f"error: NEWSLETTER_SENDGRID_URL {url!r} is not an http(s):// URL "
                             "(with a port from 1 to 65535, if any)\n")
    assert "Send it now?" not in result.output
    assert not (publication / "sent" / "issue-1.lock").exists()


def test_a_tag_matching_nobody_is_an_error_naming_the_tags_there(publication: Path,
                                                                  sendgrid: SendGridDouble) -> None:
    result = run("send", "issue-1", "--yes", "--tag", "nosuchtag")
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1] == (
        "error: no subscribed address has tag nosuchtag (tags in this list: members, poetry, prose)")
    assert sendgrid.mail_requests == []


def test_a_finished_send_reports_nothing_sent(publication: Path, sendgrid: SendGridDouble) -> None:
    assert run("send", "issue-1", "--yes").exit_code == 0
    again = run("send", "issue-1", "--yes")
    assert again.output.count("Nothing sent: issue-1 (") == 1 and "Sent issue-1" not in again.output


def test_the_email_merge_field_is_the_address_sent_to(publication: Path, sendgrid: SendGridDouble) -> None:
    """`{{ subscriber.email }}` is filled with the address in `to`, not the row as typed (spaces)."""
    (publication / "templates" / "email.txt").write_text(
        (Path(__file__).resolve().parents[1] / "newsletter" / "templates" / "email.txt").read_text()
        + "\nSent to {{ subscriber.email }}\n")
    write_list(publication, [["  spaced@example.org ", "S", "", "subscribed"]])
    assert run("send", "issue-1", "--yes").exit_code == 0
    (personalization,) = sendgrid.accepted[0]["personalizations"]
    assert personalization["to"] == [{"email": "spaced@example.org", "name": "S"}]
    assert personalization["substitutions"]["[%text:email%]"] == "spaced@example.org"


def test_a_running_send_is_reported_before_the_question(publication: Path, sendgrid: SendGridDouble) -> None:

    from newsletter.sending.ledger import SendLock

    lock = SendLock(publication / "sent" / "issue-1.lock")
    lock.acquire("issue-1")
    try:
        result = run("send", "issue-1", input="y\n", terminal=TerminalDouble(can_ask=True))
    finally:
        lock.release()
    assert result.exit_code == 1
    assert "Send it now?" not in result.output
    assert "another `newsletter send issue-1` is running" in result.stderr


def test_an_issue_named_by_its_path_shares_the_ledger(publication: Path, sendgrid: SendGridDouble) -> None:
    assert run("send", "issue-1", "--yes").exit_code == 0
    again = run("send", "issues/issue-1/", "--yes")
    assert again.exit_code == 0, again.output
    assert "Everyone already has issue-1: nothing was sent." in again.output
    assert len(sendgrid.accepted_recipients()) == len(set(sendgrid.accepted_recipients())) == 5
    assert not (publication / "build" / "issues").exists()


def test_status_of_an_issue_named_by_its_path(publication: Path, sendgrid: SendGridDouble) -> None:
    assert run("send", "issue-1", "--yes").exit_code == 0
    result = run("status", "issues/issue-1", "--json")
    assert json.loads(result.output)["sent"] == 5
    missing = run("status", "issue-99")
    assert missing.exit_code == 1 and "no such issue 'issue-99'" in missing.stderr


def test_status_reads_the_ledger_without_loading_markdown(publication: Path, sendgrid: SendGridDouble) -> None:
    """`status` finds the issue's folder and reads its ledger: it renders no article, so a process
    of its own does without markdown-it and linkify (40 ms of its start-up)."""
    import subprocess
    import sys

    assert run("send", "issue-1", "--yes").exit_code == 0
    probe = ("import sys; from newsletter.cli import cli; "
             "cli.main(['status', 'issue-1', '--json'], standalone_mode=False); "
             "print('markdown_it' in sys.modules, 'newsletter.markdown' in sys.modules)")
    status = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    counts, loaded = status.stdout.strip().splitlines()
    assert json.loads(counts)["sent"] == 5 and loaded == "False False", status.stderr


def test_a_subscriber_whose_merge_values_are_too_long_is_left_out_not_the_batch(
        publication: Path, sendgrid: SendGridDouble) -> None:
    """SendGrid refuses a whole request when one personalization's substitutions pass
    10,000 bytes; that subscriber is left out and named, the others get the issue."""
    write_list(publication, [["long@example.org", "é" * 6000, "", "subscribed"],
                             ["fine@example.org", "Fine", "", "subscribed"]])
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 1, result.output
    assert sendgrid.accepted_recipients() == ["fine@example.org"]
    assert sendgrid.rejections == []
    assert "too long           1" in result.output
    assert "over SendGrid's 10,000 bytes; shorten them in list main" in result.output
    assert "  long@example.org" in result.output


def test_substitutions_are_measured_as_the_ascii_escaped_json_sent(publication: Path, sendgrid: SendGridDouble) -> None:
    """A first name of 1,500 Cyrillic letters: 6,000 bytes of substitutions as UTF-8 but 18,000
    ASCII-escaped, as bodies go out. Counted the large way, that subscriber is left out and named;
    the rest of the request is not refused."""
    write_list(publication, [["long@example.org", "Ж" * 1500, "", "subscribed"],
                             ["fine@example.org", "Fine", "", "subscribed"]])
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 1, result.output
    assert sendgrid.rejections == []
    assert sendgrid.accepted_recipients() == ["fine@example.org"]
    assert "too long           1" in result.output and "  long@example.org" in result.output


def test_control_characters_in_a_name_are_not_sent(publication: Path, sendgrid: SendGridDouble) -> None:
    """A NUL (or a bell, an escape) pasted into a first name is dropped from the greeting;
    line breaks and tabs are text and stay."""
    write_list(publication, [["ada@example.org", "A\x00da\x07\x1b", "", "subscribed"]])
    assert run("send", "issue-1", "--yes").exit_code == 0
    (personalization,) = sendgrid.accepted[0]["personalizations"]
    assert personalization["substitutions"]["[%text:first_name|friend%]"] == "Ada"
    assert personalization["substitutions"]["[%html:first_name|friend%]"] == "Ada"
    assert personalization["to"] == [{"email": "ada@example.org", "name": "A da"}]


def test_article_text_that_looks_like_a_merge_tag_is_never_filled(publication: Path,
                                                                  sendgrid: SendGridDouble) -> None:
    """An article that quotes `[%html:email%]` shows it as written; SendGrid is given no tag to
    fill with each recipient's address (only the templates make live tags)."""
    from tests.helpers import article, write_issue

    write_issue(publication, "quoting", {"01-tags.md": article(
        "On [%text:first_name%] tags", "Our tool writes [%html:email%] and [%text:email%] for the address.")},
        subject="About [%text:email%]")
    result = run("send", "quoting", "--yes")
    assert result.exit_code == 0, result.output
    body = sendgrid.accepted[0]
    text, html = body["content"][0]["value"], body["content"][1]["value"]
    for tag in ("[%html:email%]", "[%text:email%]", "[%text:first_name%]"):
        assert tag not in text and tag not in html and tag not in body["subject"]
        assert all(tag not in p.get("substitutions", {}) for p in body["personalizations"])
    assert "writes [\u2060%html:email%] and" in text.replace("\n", " ")
    assert body["subject"] == "About [\u2060%text:email%]"
    assert "[%text:first_name|friend%]" in text  # the template's own tag is still live


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "0", "-2", "soon"])
def test_a_timeout_that_is_no_finite_number_of_seconds_is_refused(publication: Path, sendgrid: SendGridDouble,
                                                                  value: str) -> None:
    """`timeout: .nan` once made every answer 'too late', so batches went uncertain although
    SendGrid answered: refused at start, naming newsletter.yaml and the line."""
    from tests.send_helpers import set_timeout

    set_timeout(publication, value)  # type: ignore[arg-type]
    line = next(n for n, text in enumerate((publication / "newsletter.yaml").read_text().splitlines(), 1)
                if text.startswith("sendgrid:"))
    for command in (("send", "issue-1", "--yes"), ("check", "issue-1")):
        result = run(*command)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith(f"error: newsletter.yaml:{line}: sendgrid.timeout must be a number of "
                                        "seconds above 0"), result.stderr
        assert result.stderr.count("\n") == 1
    assert sendgrid.request_headers == []
