"""`provider: smtp`: the sample issue sent through a real SMTP server (aiosmtpd on 127.0.0.1, STARTTLS on
a certificate the tests make, AUTH), each message read back with the `email` package as a mail program
reads it, and exactly-once held through refusals, deferrals, drops after the final dot and quotas."""

from __future__ import annotations

import json
import re
import sqlite3
from email.message import EmailMessage
from collections.abc import Iterator
from pathlib import Path

import lxml.html
import pytest

from newsletter import merge
from tests.helpers import CODE_TABLE, LONG_PARAGRAPH, long_paragraph_issue, run, wait_for
from tests.send_helpers import generated, write_list
from tests.smtp_server import PASSWORD, SmtpServer, display_name, smtp_server, use_smtp
from tests.terminal_double import TerminalDouble, ticking_clock


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return part.get_content().replace("\r\n", "\n")


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return part.get_content()


def status(*args: str) -> str:
    return run("status", "issue-1", *args).stdout


def errors(stderr: str) -> list[str]:
    """The `error:` lines (a real send of the sample also warns that its web page is not online)."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_each_reader_gets_one_message_of_their_own(publication: Path, smtp: SmtpServer) -> None:
    write_list(publication, [["ann@example.org", "Ann", "Lee"], ["bob@example.org", "Bob", "Roe"],
                             ["zoe@example.org", "", ""]])
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 0, result.output + result.stderr
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == ["ann@example.org", "bob@example.org", "zoe@example.org"]
    for received in smtp.received:
        message, (address,) = received.message, received.rcpt_tos
        assert received.mail_from == "letters@riverside-writers-circle.internal"
        assert message["To"].addresses[0].addr_spec == address and len(message["To"].addresses) == 1
        assert message["Cc"] is None and message["Bcc"] is None
        assert message["From"] == "Riverside Writers' Circle <letters@riverside-writers-circle.internal>"
        assert message["Reply-To"] == "editor@riverside-writers-circle.internal"
        assert message["Date"].datetime is not None and message["MIME-Version"] == "1.0"
        assert re.fullmatch(r"<[0-9a-f]{32}@riverside-writers-circle\.internal>", message["Message-ID"])
        link = f"https://riverside-writers-circle.internal/unsubscribe?email={address}"
        assert message["List-Unsubscribe"] == f"<{link}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["List-Id"].endswith("<the-riverside-writers-circle.riverside-writers-circle.internal>")
        assert message.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
        assert link in text_of(message) and link in html_of(message)
        assert "[%" not in text_of(message) + html_of(message)
    by_address = {r.rcpt_tos[0]: r.message for r in smtp.received}
    assert "Hello Ann," in text_of(by_address["ann@example.org"])
    assert "Hello Bob," in text_of(by_address["bob@example.org"])
    assert "Hello friend," in text_of(by_address["zoe@example.org"])  # no first name: the greeting's fallback
    assert "Ann" not in text_of(by_address["bob@example.org"])
    assert '"sent": 3' in status("--json")


def transfer_encodings(message: EmailMessage) -> list[str]:
    return [part["Content-Transfer-Encoding"] for part in message.iter_parts()]


def test_the_issue_goes_as_written_and_is_declared_8bit(publication: Path, smtp: SmtpServer) -> None:
    """Its lines fit SMTP's 998 octets: 8bit, not quoted-printable's `=3D` and 76-character lines."""
    write_list(publication, [["ann@example.org", "Ann", "Lee"]])
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 0, result.output + result.stderr
    (received,) = smtp.received
    assert transfer_encodings(received.message) == ["8bit", "8bit"]
    assert received.mail_options == ["BODY=8BITMIME"]  # RFC 6152: 8-bit data is declared
    assert "Tomasz Wiśniewski".encode() in received.raw
    assert "Tomasz Wiśniewski" in text_of(received.message) and "what we’re reading" in html_of(received.message)
    assert max(len(line) for line in received.raw.split(b"\r\n")) < 998


def test_an_issue_of_long_paragraphs_goes_as_written_in_lines_that_fit(publication: Path, smtp: SmtpServer) -> None:
    """A writer's paragraph on one line, its styles inlined, passed 998 octets and sent the HTML
    quoted-printable; folded where a line break shows as a space, it goes 8bit and reads the same."""
    long_paragraph_issue(publication)
    write_list(publication, [["ann@example.org", "Ann", "Lee"]])
    assert run("build", "ledgers").exit_code == 0
    built = (publication / "build" / "ledgers" / "email.html").read_text(encoding="utf-8")
    result = run("send", "ledgers", "--yes", "--no-web-check")
    assert result.exit_code == 0, result.output + result.stderr
    (received,) = smtp.received
    assert transfer_encodings(received.message) == ["8bit", "8bit"]
    assert max(len(line) for line in received.raw.split(b"\r\n")) < 998
    link = "https://riverside-writers-circle.internal/unsubscribe?email=ann@example.org"
    html = html_of(received.message).replace("\r\n", "\n")  # the lines a mail program reads
    assert html == merge.fill(built, {"first_name": "Ann", merge.UNSUBSCRIBE_FIELD: link})
    page = lxml.html.document_fromstring(html)
    (code,) = page.iter("pre")
    assert code.text_content() == CODE_TABLE + "\n"  # byte for byte, its spaces and its long line
    assert " ".join(LONG_PARAGRAPH.split()) in " ".join(page.text_content().split())
    assert "Hello Ann," in page.text_content()


@pytest.fixture
def plain_smtp(publication: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    """A server that does not offer 8BITMIME (nor SMTPUTF8): it takes ASCII alone."""
    monkeypatch.setenv("NEWSLETTER_SMTP_PASSWORD", PASSWORD)
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    (tmp_path / "plain").mkdir()
    with smtp_server(tmp_path / "plain", eight_bit=False) as server:
        use_smtp(publication, server)
        yield server


def test_a_server_without_8bitmime_gets_quoted_printable_and_the_same_words(
        publication: Path, plain_smtp: SmtpServer) -> None:
    write_list(publication, [["ann@example.org", "Ann", "Lee"]])
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 0, result.output + result.stderr
    (received,) = plain_smtp.received
    received.raw.decode("ascii")
    assert transfer_encodings(received.message) == ["quoted-printable", "quoted-printable"]
    assert received.mail_options == []
    assert "Tomasz Wiśniewski" in text_of(received.message) and "what we’re reading" in html_of(received.message)
    assert "Hello Ann," in text_of(received.message)


def test_a_reader_at_an_international_domain_is_reached_through_a_server_without_smtputf8(
        publication: Path, plain_smtp: SmtpServer) -> None:
    """Only a non-ASCII local part needs SMTPUTF8: the envelope carries the domain's `xn--` form."""
    write_list(publication, [["bob@bücher.example", "Bob", "Roe"]])
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 0, result.output + result.stderr
    (received,) = plain_smtp.received
    assert received.rcpt_tos == ["bob@xn--bcher-kva.example"]
    assert received.message["To"].addresses[0].addr_spec == "bob@xn--bcher-kva.example"
    assert "Hello Bob," in text_of(received.message)


def test_an_unsubscribe_url_with_accents_goes_percent_encoded_in_its_header(
        publication: Path, plain_smtp: SmtpServer) -> None:
    """Written as it was, the List-Unsubscribe header was UTF-8: a server without 8BITMIME refused
    every reader (`500 Error: strict ASCII mode`), and no header may be UTF-8 without SMTPUTF8."""
    config = publication / "newsletter.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "/unsubscribe?email={email}", "/désinscription?email={email}"), encoding="utf-8")
    write_list(publication, [["ann@example.org", "Ann", "Lee"]])
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 0, result.output + result.stderr
    (received,) = plain_smtp.received
    received.raw.decode("ascii")
    assert received.message["List-Unsubscribe"] == (
        "<https://riverside-writers-circle.internal/d%C3%A9sinscription?email=ann@example.org>")
    assert "https://riverside-writers-circle.internal/désinscription?email=ann@example.org" in text_of(
        received.message)


def test_a_reader_with_a_very_long_name_gets_their_message(publication: Path, smtp: SmtpServer) -> None:
    """Their To line was over SMTP's 998 octets, and the server refused it (`500 Line too long`)."""
    write_list(publication, [["ann@example.org", "Zoë" * 400, "Lee"]])
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 0, result.output + result.stderr
    (received,) = smtp.received
    assert display_name(received.raw) == "Zoë" * 400 + " Lee"
    assert "Hello " + "Zoë" * 400 + "," in text_of(received.message)


def test_a_second_run_sends_nobody_twice(publication: Path, smtp: SmtpServer) -> None:
    write_list(publication, generated(6))
    assert run("send", "issue-1", "--yes").exit_code == 0
    again = run("send", "issue-1", "--yes")
    assert again.exit_code == 0
    assert len(smtp.received) == 6


def test_a_refused_recipient_is_named_and_the_others_are_sent(publication: Path, smtp: SmtpServer) -> None:
    write_list(publication, generated(4))
    smtp.faults.refuse = {"reader000001@example.org"}
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 1
    assert len(smtp.received) == 3
    assert ("reader000001@example.org: the server refused it: 550 5.1.1 <reader000001@example.org>: "
            "Recipient address rejected: no such user") in result.stdout
    assert '"failed": 1' in status("--json")
    smtp.faults.refuse = set()  # the address fixed at the provider: a re-run tries the one who never got it
    assert run("send", "issue-1", "--yes").exit_code == 0
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == [f"reader{i:06d}@example.org" for i in range(4)]


def test_a_drop_after_the_final_dot_is_uncertain_and_never_sent_again_unasked(
        publication: Path, smtp: SmtpServer) -> None:
    write_list(publication, generated(3))
    smtp.faults.drop_after_dot = {"reader000002@example.org"}
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 1
    assert "Uncertain: the SMTP server may or may not have accepted these 1" in result.stdout
    assert "reader000002@example.org" in status("--uncertain")
    assert "reader000001@example.org" not in status("--uncertain")
    smtp.faults.drop_after_dot = set()
    assert run("send", "issue-1", "--yes").exit_code == 1
    assert len(smtp.to("reader000002@example.org")) == 1  # the server had it: not posted again
    assert run("send", "issue-1", "--yes", "--retry-uncertain").exit_code == 0
    assert len(smtp.to("reader000002@example.org")) == 2  # asked for: the same Message-ID, so it can be dropped
    first, second = (r.message["Message-ID"] for r in smtp.to("reader000002@example.org"))
    assert first == second


def test_each_message_of_one_connections_batch_has_its_own_outcome(publication: Path, smtp: SmtpServer) -> None:
    # Four readers, one post over one connection: the second refused, the third's reply lost after its dot.
    write_list(publication, generated(4))
    smtp.faults.refuse = {"reader000001@example.org"}
    smtp.faults.drop_after_dot = {"reader000002@example.org"}
    result = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert result.exit_code == 1
    assert "reader000001@example.org: the server refused it: 550 5.1.1" in result.stdout
    assert "Uncertain: the SMTP server may or may not have accepted these 1" in result.stdout
    assert [r.rcpt_tos[0] for r in smtp.received if r.answered] == ["reader000000@example.org",
                                                                    "reader000003@example.org"]
    counts = json.loads(status("--json"))
    assert (counts["sent"], counts["failed"], counts["uncertain"]) == (2, 1, 1)
    assert [line.strip() for line in status("--uncertain").splitlines() if "@" in line] == ["reader000002@example.org"]
    smtp.faults.refuse, smtp.faults.drop_after_dot = set(), set()
    rerun = run("send", "issue-1", "--yes")
    assert rerun.exit_code == 1  # the uncertain one is left alone unless asked
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == [f"reader{i:06d}@example.org" for i in range(4)]


def test_a_deferral_is_posted_again_and_delivered_once(publication: Path, smtp: SmtpServer) -> None:
    write_list(publication, generated(3))
    smtp.faults.defer_data = 2
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 0, result.output + result.stderr
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == [f"reader{i:06d}@example.org" for i in range(3)]


def test_a_421_greeting_is_tried_again_later_and_then_sent_once(publication: Path, smtp: SmtpServer) -> None:
    write_list(publication, generated(3))
    smtp.faults.connect_421 = 2  # a busy server: the first two connections are turned away
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 0, result.output + result.stderr
    assert smtp.greeted_421 == 2
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == [f"reader{i:06d}@example.org" for i in range(3)]
    assert '"sent": 3' in status("--json")


def test_a_server_that_always_greets_421_stops_the_send_in_one_line(publication: Path, smtp: SmtpServer) -> None:
    write_list(publication, generated(3))
    smtp.faults.connect_421 = 1_000_000
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 1
    (error,) = errors(result.stderr)
    assert re.fullmatch(r"error: 127\.0\.0\.1:\d+ answered 421 4\.3\.2 Service not available, closing transmission "
                        r"channel at connect, 6 times; nothing was posted: the server is busy or down, try again later",
                        error), error
    assert "Traceback" not in result.output + result.stderr
    assert smtp.received == [] and smtp.greeted_421 >= 6
    assert '"sent": 0' in status("--json") and '"uncertain": 0' in status("--json")
    assert '"failed": 0' in status("--json")
    smtp.faults.connect_421 = 0  # the server is back: everyone gets it, once
    assert run("send", "issue-1", "--yes").exit_code == 0
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == [f"reader{i:06d}@example.org" for i in range(3)]


def test_a_providers_quota_stops_the_send_in_its_words_and_a_rerun_goes_on(
        publication: Path, smtp: SmtpServer) -> None:
    write_list(publication, generated(5))
    smtp.faults.quota_from = 3
    result = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert result.exit_code == 1
    assert errors(result.stderr) == ["error: the provider's quota is used up (550 5.4.5 Daily user sending quota "
                                     "exceeded.); nothing more was posted"]
    assert len(smtp.received) == 2
    smtp.faults.quota_from = None
    assert run("send", "issue-1", "--yes").exit_code == 0
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == [f"reader{i:06d}@example.org" for i in range(5)]


def test_progress_says_the_pace_and_under_a_limit_the_time_left(publication: Path, smtp: SmtpServer) -> None:
    """Without a terminal the progress line, here printed at every step, gives the messages a second and,
    with smtp.rate or smtp.daily_limit, how long the rest takes (today, when the limit stops it first)."""
    write_list(publication, generated(50))
    # A clock 5 s on at every look: each progress line is due at once, and the pace is the clock's.
    unlimited = run("send", "issue-1", "--yes", "--concurrency", "1",
                    terminal=TerminalDouble(clock=ticking_clock(5.0)))
    assert unlimited.exit_code == 0, unlimited.output + unlimited.stderr
    paced = [line for line in unlimited.stdout.splitlines() if "accepted" in line and "messages/s" in line]
    assert paced and all(re.fullmatch(r"\.\.\. [\d,]+ accepted, [\d,]+ messages so far, [\d.,]+ messages/s, "
                                      r"\d+ requests? in flight", line) for line in paced), paced
    use_smtp(publication, smtp, rate=1000, daily_limit=30)  # the later smtp: block wins; 50 more readers
    write_list(publication, generated(100))
    limited = run("send", "issue-1", "--yes", "--concurrency", "1",
                  terminal=TerminalDouble(clock=ticking_clock(5.0)))
    assert limited.exit_code == 1  # stopped by the day's limit
    lines = [line for line in limited.stdout.splitlines() if line.startswith("... ") and "messages/s" in line]
    assert lines and all(re.fullmatch(r"\.\.\. [\d,]+ accepted, [\d,]+ messages so far, [\d.,]+ messages/s, "
                                      r"about \d+ (s|min) left today, \d+ requests? in flight", line)
                         for line in lines), lines


def test_the_daily_limit_stops_the_send_until_the_next_utc_day(publication: Path, smtp: SmtpServer) -> None:
    use_smtp(publication, smtp, daily_limit=3)  # the later smtp: block wins
    config = publication / "newsletter.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text[:text.index("provider: smtp")] + text[text.rindex("provider: smtp"):], encoding="utf-8")
    write_list(publication, generated(5))
    result = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert result.exit_code == 1
    assert len(smtp.received) == 3
    (error,) = errors(result.stderr)
    assert re.fullmatch(r"error: the day's limit of 3 messages \(smtp\.daily_limit\) is reached: 3 sent today; it "
                        r"resets at \d{4}-\d\d-\d\d 00:00 UTC, nothing more was posted: run `newsletter send issue-1` "
                        r"again after then for the rest", error), error
    stopped = "not sent           2  (the send stopped before them: run `newsletter send issue-1` again)"
    assert status().splitlines() == ["sent               3", "pending            0", "failed             0",
                                     "uncertain          0", stopped]
    assert run("send", "issue-1", "--yes").exit_code == 1
    assert len(smtp.received) == 3 and stopped in status()
    # A day later (the count's day moved back, as the clock would have moved on): the rest go.
    with sqlite3.connect(publication / "sent" / "daily-usage.sqlite") as usage:
        usage.execute("UPDATE usage SET day = '2000-01-01'")
    assert run("send", "issue-1", "--yes").exit_code == 0
    assert len(smtp.received) == 5 and len({r.rcpt_tos[0] for r in smtp.received}) == 5
    assert "not sent" not in status() and json.loads(status("--json"))["not_sent"] == 0


def test_readers_a_stopped_send_did_not_reach_who_left_the_list_are_not_sent_to_or_counted(
        publication: Path, smtp: SmtpServer) -> None:
    """Stopped by the day's limit before two readers, who then leave the list: the send asked again
    finds nobody to send to, and status stops telling to run it (it told so for ever)."""
    use_smtp(publication, smtp, daily_limit=3)  # the later smtp: block wins
    write_list(publication, generated(5))
    assert run("send", "issue-1", "--yes", "--concurrency", "1").exit_code == 1
    assert "not sent           2  (the send stopped before them" in status()
    write_list(publication, generated(3))
    again = run("send", "issue-1", input="y\n", terminal=TerminalDouble(can_ask=True))
    assert again.exit_code == 0, again.output + again.stderr
    assert "Everyone selected already has issue-1: nothing to send." in again.output
    assert len(smtp.received) == 3 and "not sent" not in status()


def test_a_stopped_send_of_one_list_stays_in_status_through_sends_of_another_selection(
        publication: Path, smtp: SmtpServer) -> None:
    """List alpha stopped by the day's limit before two readers; the next day the main list is sent
    whole, and a --tag send finds nobody: alpha's two were dropped from status by either, though
    nobody had sent to them. They stay, with alpha's command, until that command runs."""
    use_smtp(publication, smtp, daily_limit=3)  # the later smtp: block wins
    write_list(publication, generated(5, prefix="alpha"), "alpha")
    main = generated(2)
    main[0][4] = "vip"
    write_list(publication, main)
    assert run("send", "issue-1", "--yes", "--concurrency", "1", "--list", "alpha").exit_code == 1
    alpha = "not sent           2  (the send stopped before them: run `newsletter send issue-1 --list alpha` again)"
    assert status().splitlines()[-1] == alpha
    with sqlite3.connect(publication / "sent" / "daily-usage.sqlite") as usage:  # a day later
        usage.execute("UPDATE usage SET day = '2000-01-01'")
    assert run("send", "issue-1", "--yes").exit_code == 0
    assert run("send", "issue-1", "--yes", "--tag", "vip").exit_code == 0  # nothing left to send there
    assert len(smtp.received) == 5
    assert status().splitlines() == ["sent               5", "pending            0", "failed             0",
                                     "uncertain          0", alpha]
    assert json.loads(status("--json"))["not_sent"] == 2
    with sqlite3.connect(publication / "sent" / "daily-usage.sqlite") as usage:  # another day
        usage.execute("DELETE FROM usage")
    assert run("send", "issue-1", "--yes", "--list", "alpha").exit_code == 0
    assert len(smtp.received) == 7 and "not sent" not in status()


def test_the_same_tags_in_another_order_carry_on_the_same_stopped_send(publication: Path, smtp: SmtpServer) -> None:
    use_smtp(publication, smtp, daily_limit=1)  # the later smtp: block wins
    readers = generated(3)
    for reader in readers:
        reader[4] = "a;b"
    write_list(publication, readers)
    assert run("send", "issue-1", "--yes", "--concurrency", "1", "--tag", "b", "--tag", "a").exit_code == 1
    assert status().splitlines()[-1] == (
        "not sent           2  (the send stopped before them: run `newsletter send issue-1 --tag a --tag b` again)")
    with sqlite3.connect(publication / "sent" / "daily-usage.sqlite") as usage:  # a day later, a bigger limit
        usage.execute("DELETE FROM usage")
    config = publication / "newsletter.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("daily_limit: 1", "daily_limit: 10"), encoding="utf-8")
    assert run("send", "issue-1", "--yes", "--tag", "a", "--tag", "b").exit_code == 0
    assert len(smtp.received) == 3 and "not sent" not in status()


def test_a_wrong_password_is_one_line_and_sends_nothing(publication: Path, smtp: SmtpServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_SMTP_PASSWORD", "not the password")
    write_list(publication, generated(2))
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 1
    (error,) = errors(result.stderr)
    assert re.match(r"error: 127\.0\.0\.1:\d+ refused the login of 'letters@riverside\.example\.org' \(535 .*\); "
                    r"check smtp\.username and NEWSLETTER_SMTP_PASSWORD", error), error
    assert "not the password" not in result.output + result.stderr
    assert smtp.received == []
    assert '"sent": 0' in status("--json") and '"uncertain": 0' in status("--json")


def test_a_missing_password_is_refused_before_anything(publication: Path, smtp: SmtpServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWSLETTER_SMTP_PASSWORD")
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: NEWSLETTER_SMTP_PASSWORD is not set: export it with the password")
    assert smtp.received == []


def test_scheduling_needs_sendgrid(publication: Path, smtp: SmtpServer) -> None:
    result = run("send", "issue-1", "--yes", "--at", "tomorrow 09:00")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: send --at needs SendGrid (provider: sendgrid)")
    assert result.stderr.count("\n") == 1 and smtp.received == []


def test_a_proof_goes_through_smtp(publication: Path, smtp: SmtpServer) -> None:
    result = run("send", "issue-1", "--to", "editor@example.org", "--yes")
    assert result.exit_code == 0, result.output + result.stderr
    (received,) = smtp.received
    assert received.rcpt_tos == ["editor@example.org"]
    assert received.message["Subject"].startswith("[Proof] ")


def test_a_dry_run_writes_messages_a_mail_program_opens(publication: Path, smtp: SmtpServer) -> None:
    import email
    import email.policy

    write_list(publication, generated(3))
    result = run("send", "issue-1", "--dry-run")
    assert result.exit_code == 0, result.output + result.stderr
    files = sorted((publication / "build" / "issue-1" / "dry-run").glob("message-*.eml"))
    assert [f.name for f in files] == ["message-00001.eml", "message-00002.eml", "message-00003.eml"]
    opened = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert isinstance(opened, EmailMessage)
    assert opened["To"].addresses[0].addr_spec == "reader000000@example.org"
    assert "Reader0" in text_of(opened)
    assert smtp.received == []
    assert "Messages: build/issue-1/dry-run/ (all 3, as a mail program opens them; nothing was sent)" in result.stdout


def test_a_dry_run_of_a_long_list_writes_the_first_100_messages_and_counts_them_all(
        publication: Path, smtp: SmtpServer) -> None:
    """One message a recipient: a list of 1,000,000 would be a million files (21 GB of the sample issue)."""
    import email
    import email.policy

    write_list(publication, generated(103))
    folder = publication / "build" / "issue-1" / "dry-run"
    folder.mkdir(parents=True)
    (folder / "message-00102.eml").write_bytes(b"an earlier dry run's")
    result = run("send", "issue-1", "--dry-run")
    assert result.exit_code == 0, result.output + result.stderr
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [f"message-{n:05d}.eml" for n in range(1, 101)]
    opened = email.message_from_bytes(files[-1].read_bytes(), policy=email.policy.default)
    assert isinstance(opened, EmailMessage)
    assert opened["To"].addresses[0].addr_spec == "reader000099@example.org"
    assert ("Messages: build/issue-1/dry-run/ (the first 100 of 103, as a mail program opens them; "
            "nothing was sent)") in result.stdout
    assert re.search(r"(?m)^  would send +103  \(written, not sent\)$", result.stdout), result.stdout
    assert smtp.received == []
    assert '"sent": 0' in status("--json")


def test_doctor_checks_the_server_as_a_send_meets_it(publication: Path, smtp: SmtpServer) -> None:
    result = run("doctor")
    assert result.exit_code == 0, result.output + result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"ok: 127\.0\.0\.1:\d+ answers, over TLSv1\.[23] with a certificate valid for 127\.0\.0\.1",
                        lines[0])
    assert lines[1] == "ok: logged in as letters@riverside.example.org"
    assert lines[2].startswith("ok: the server takes mail from letters@riverside-writers-circle.internal (250 ")
    assert lines[2].endswith("nothing was sent")
    assert smtp.received == []
    report = json.loads(run("doctor", "--json").stdout)
    assert report["ok"] is True and [f["check"] for f in report["findings"]][:3] == ["tls", "login", "sender"]


@pytest.mark.parametrize(("change", "expected"), [
    ({"NEWSLETTER_SMTP_PASSWORD": "wrong"}, r"error: 127\.0\.0\.1:\d+ refused the login of .*\(535 .*"),
    ({"ca_file": None}, r"error: 127\.0\.0\.1:\d+: its TLS certificate cannot be trusted .*"),
])
def test_doctor_names_what_fails(publication: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch,
                                 change: dict[str, object], expected: str) -> None:
    if "NEWSLETTER_SMTP_PASSWORD" in change:
        monkeypatch.setenv("NEWSLETTER_SMTP_PASSWORD", str(change["NEWSLETTER_SMTP_PASSWORD"]))
    else:
        config = publication / "newsletter.yaml"
        config.write_text(re.sub(r"(?m)^  ca_file: .*\n", "", config.read_text(encoding="utf-8")), encoding="utf-8")
    result = run("doctor")
    assert result.exit_code == 1
    assert re.fullmatch(expected, result.stdout.splitlines()[0]), result.stdout
    assert "wrong" not in result.stdout


def test_doctor_says_an_smtp_send_needs_an_unsubscribe_link(publication: Path, smtp: SmtpServer) -> None:
    config = publication / "newsletter.yaml"
    config.write_text(re.sub(r"(?m)^unsubscribe_url: .*\n", "", config.read_text(encoding="utf-8")), encoding="utf-8")
    result = run("doctor")
    assert result.exit_code == 1
    assert ("error: an SMTP send has no SendGrid unsubscribe page: set unsubscribe_url (with {email}) or signup: "
            "(newsletter serve) in newsletter.yaml") in result.stdout.splitlines()
    refused = run("send", "issue-1", "--yes")
    assert refused.exit_code == 1 and "an SMTP send needs unsubscribe_url" in refused.stderr
    assert smtp.received == []


@pytest.mark.parametrize(("command", "expected"), [
    (("cancel", "issue-1", "--yes"), "error: cancel is for sends scheduled with send --at, which needs SendGrid"),
    (("stats", "issue-1"), "error: smtp reports no figures: delivered, opens, clicks and bounces are what SendGrid keeps"),
    (("stats",), "error: smtp reports no figures"),
    (("doctor", "--create-group", "Letters"), "error: doctor --create-group makes a SendGrid unsubscribe group"),
])
def test_what_only_sendgrid_does_is_one_line(publication: Path, smtp: SmtpServer, command: tuple[str, ...],
                                            expected: str) -> None:
    result = run(*command)
    assert result.exit_code == 1
    assert result.stderr.startswith(expected) and result.stderr.count("\n") == 1, result.stderr


def test_a_send_stopped_through_sendgrid_and_run_again_through_smtp_sends_nobody_twice(
        publication: Path, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.sendgrid_double import Accept, Respond, SendGridDouble

    config = publication / "newsletter.yaml"
    with_smtp = config.read_text(encoding="utf-8")
    config.write_text(with_smtp.replace("provider: smtp\n", "provider: sendgrid\n"), encoding="utf-8")
    write_list(publication, generated(1500))
    with SendGridDouble() as sendgrid:
        monkeypatch.setenv("NEWSLETTER_SENDGRID_URL", sendgrid.url)
        monkeypatch.setenv("SENDGRID_API_KEY", sendgrid.api_key)
        # The second request of 1,000 is refused: its 500 recipients are not sent, and the send stops.
        sendgrid.script(Accept(), Respond(400, body={"errors": [{"field": None, "message": "refused"}]}))
        first = run("send", "issue-1", "--yes", "--concurrency", "1")
        assert first.exit_code == 1
        through_sendgrid = set(sendgrid.accepted_recipients())
    assert len(through_sendgrid) == 1000
    config.write_text(with_smtp, encoding="utf-8")
    assert run("send", "issue-1", "--yes").exit_code == 0
    through_smtp = [r.rcpt_tos[0] for r in smtp.received]
    assert len(through_smtp) == 500 and not through_sendgrid & set(through_smtp)
    with sqlite3.connect(publication / "sent" / "issue-1.sqlite") as ledger:
        by_provider = dict(ledger.execute(
            "SELECT provider, sum(size) FROM batches WHERE state = 'accepted' GROUP BY provider").fetchall())
    assert by_provider == {"sendgrid": 1000, "smtp": 500}  # the ledger says which provider took each


def test_check_says_what_an_smtp_send_needs_to_unsubscribe(publication: Path, smtp: SmtpServer) -> None:
    config = publication / "newsletter.yaml"
    config.write_text(re.sub(r"(?m)^unsubscribe_url: .*\n", "", config.read_text(encoding="utf-8")), encoding="utf-8")
    result = run("check", "issue-1")
    assert result.exit_code == 0
    assert ("warning: no way to unsubscribe yet: an SMTP send has no SendGrid unsubscribe page, so it needs "
            "unsubscribe_url (with {email}) or signup: (newsletter serve); a real send is refused until then"
            ) in result.stdout + result.stderr


def test_the_signup_servers_emails_go_through_smtp_too(publication: Path, smtp: SmtpServer) -> None:
    from tests.signup_helpers import SignupServer

    with SignupServer(publication) as server:
        assert server.subscribe("ada@lovelace.internal", first_name="Ada").status_code == 200
        (confirmation,) = wait_for(lambda: smtp.to("ada@lovelace.internal"), "the confirmation email")
        message = confirmation.message
        assert message["Subject"] == "Confirm your subscription to The Riverside Writers' Circle"
        link = re.search(r"http://127\.0\.0\.1:\d+/confirm/\S+", text_of(message))
        assert link is not None
        assert server.client.post(server.path_of(link[0])).status_code == 200
        welcome = wait_for(lambda: smtp.to("ada@lovelace.internal")[1:], "the welcome email")[0].message
        assert welcome["Subject"] == "Welcome to The Riverside Writers' Circle"
        assert welcome["List-Unsubscribe"].startswith(f"<{server.url}/unsubscribe/")
        assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert welcome["Message-ID"] != message["Message-ID"]


def test_a_message_that_cannot_be_made_is_unsent_in_one_line_never_uncertain(
        publication: Path, smtp: SmtpServer) -> None:
    """Made by the connection once it is open (`MessageNotMade`): nothing of it was posted."""
    from newsletter.config import load_settings
    from newsletter.providers.smtp.provider import SmtpProvider
    from newsletter.sending.provider import RetryPolicy
    from newsletter.sending.transport import PreparedBatch

    provider = SmtpProvider(load_settings(publication))
    transport = provider.transport(provider.secret())

    def message(eight_bit: bool) -> bytes:
        return "Hi \ud800\nthere".encode()  # a lone surrogate has no UTF-8

    try:
        outcome = provider.post(transport, PreparedBatch(1, ["ann"], message, ("ann@example.org",)),  # type: ignore[arg-type]
                                RetryPolicy(), lambda _seconds: False)
    finally:
        transport.close()
    assert (outcome.state, outcome.fatal, outcome.attempts) == ("unsent", True, 0)
    assert outcome.error.startswith(
        "unexpected error while making the message for ann@example.org: UnicodeEncodeError: ")
    assert "\n" not in outcome.error
    assert smtp.received == []


def test_a_signup_email_that_cannot_be_made_fails_for_good_in_one_line_never_uncertain(
        publication: Path, smtp: SmtpServer) -> None:
    """Nothing of it was posted: the outbox marks it failed (`MailerRefused`), not uncertain with a traceback."""
    from newsletter.config import load_settings
    from newsletter.providers.smtp.mailer import SmtpMailer
    from newsletter.sending.mailer import MailerRefused, OutgoingEmail

    mailer = SmtpMailer(load_settings(publication))
    try:
        with pytest.raises(MailerRefused) as refused:  # a lone surrogate has no UTF-8
            mailer.send(OutgoingEmail("ada@lovelace.internal", "Welcome", "<p>Hi</p>", "Hi \ud800\nthere"))
        assert str(refused.value).startswith("the email could not be made (UnicodeEncodeError: ")
        assert "\n" not in str(refused.value)
        mailer.send(OutgoingEmail("ada@lovelace.internal", "Welcome", "<p>Hi</p>", "Hi there"))
    finally:
        mailer.close()
    (received,) = smtp.received  # the connection goes on: the next email is delivered
    assert text_of(received.message) == "Hi there"


def test_killed_while_the_server_holds_its_reply_and_rerun_nobody_gets_two(
        publication: Path, smtp: SmtpServer) -> None:
    import os
    import signal
    import subprocess
    import sys
    import threading
    from collections import Counter

    write_list(publication, generated(30))
    smtp.faults.hold = threading.Event()
    smtp.faults.hold_from = 11  # the 11th message's final dot gets no answer until released
    process = subprocess.Popen([sys.executable, "-m", "newsletter", "send", "issue-1", "--yes", "--concurrency", "1"],
                               cwd=publication, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert smtp.faults.held.wait(60), "the send never reached the 11th message"
    process.send_signal(signal.SIGKILL)
    process.wait()
    smtp.faults.hold.set()
    smtp.faults.hold = None
    # Each message is recorded as it starts: the ten before are sent, the 11th uncertain, and the
    # 19 after it, never recorded, were in the ledger nowhere until status said so.
    assert status().splitlines() == [
        "sent              10", "pending            0", "failed             0", "uncertain          1",
        "not sent          19  (the send stopped before them: run `newsletter send issue-1` again)"]
    rerun = run("send", "issue-1", "--yes")
    assert rerun.exit_code == 1  # the message in flight when the send died stays uncertain
    assert "not sent" not in status() and "uncertain          1" in status()
    counts = Counter(r.rcpt_tos[0] for r in smtp.received)
    assert max(counts.values()) == 1
    # The one whose final dot went out may have been delivered (aiosmtpd drops it with the
    # connection; a real server may not): it is left uncertain, not posted again.
    (uncertain,) = [line.strip() for line in status("--uncertain").splitlines() if "@example.org" in line]
    assert set(counts) == {f"reader{i:06d}@example.org" for i in range(30)} - {uncertain}


def test_one_readers_full_mailbox_fails_that_reader_not_the_send(publication: Path, smtp: SmtpServer) -> None:
    """'over quota' about a reader's mailbox (552 5.2.2) is not the sender's quota: the others get it."""
    write_list(publication, generated(5))
    smtp.faults.full = {"reader000002@example.org"}
    result = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert result.exit_code == 1
    assert sorted(r.rcpt_tos[0] for r in smtp.received) == [
        f"reader{i:06d}@example.org" for i in (0, 1, 3, 4)]
    assert ("reader000002@example.org: the server refused it: 552 5.2.2 <reader000002@example.org>: The email "
            "account that you tried to reach is over quota.") in result.stdout
    assert not errors(result.stderr)


def test_sync_through_smtp_pulls_no_sendgrid_suppressions(publication: Path, smtp: SmtpServer) -> None:
    result = run("subscribers", "sync")
    assert result.exit_code == 1
    assert result.stderr == ("error: nothing to sync: through smtp there is no suppression list to pull (SendGrid "
                             "keeps one); set signup: (newsletter serve) for readers to leave on your own page, and "
                             "sync brings their changes\n")
