"""Each reader's data: `subscribers show` (a subject access request) and `subscribers delete`
(an erasure request), over the lists, the send ledgers in sent/ and the files under build/."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import Result

from tests.send_helpers import generated, send_in_background, write_list
from newsletter.signup.store import SignupStore
from tests.helpers import run, update_config
from tests.sendgrid_double import SendGridDouble, Stall
from tests.signup_helpers import READER, SignupServer, link_in, mails_to, outbox_idle, wait_for_mails
from tests.subscriber_helpers import import_csv, rows
from tests.terminal_double import TerminalDouble

pytestmark = pytest.mark.usefixtures("published_site")

ADA = "ada@example.org"
HEADER = "email,first_name,last_name,status,tags,subscribed_at,updated_at,optin_ip\n"


def two_lists(publication: Path, readers: int = 0) -> None:
    """main (`readers` readers, then Ada with her opt-in IP, and Bea) and members (Ada again, in capitals)."""
    (publication / "subscribers" / "main.csv").write_text(
        HEADER + "".join(f"{row[0]},,,subscribed,,,,\n" for row in generated(readers))
        + f"{ADA},Ada,Lovelace,subscribed,poetry,2026-01-12T09:30:00Z,2026-01-12T09:30:00Z,192.0.2.7\n"
        "bea@example.org,Bea,,subscribed,,2026-02-01T10:00:00Z,2026-02-01T10:00:00Z,\n", encoding="utf-8")
    write_list(publication, [["ADA@Example.org", "Ada", "", "subscribed", "members"]], name="members")


def sent_bytes(publication: Path) -> bytes:
    """Every byte of every ledger file in sent/ (the WAL beside it too), lower-cased."""
    return b"".join(path.read_bytes() for path in sorted((publication / "sent").glob("issue-1.sqlite*"))).lower()


def test_show_holds_every_list_row_ledger_request_and_build_file(publication: Path,
                                                                sendgrid: SendGridDouble) -> None:
    two_lists(publication)
    assert run("send", "issue-1", "--dry-run").exit_code == 0  # before the send: it writes bodies then
    assert run("send", "issue-1", "--yes").exit_code == 0
    shown = run("subscribers", "show", "Ada@example.org", "--json")
    assert shown.exit_code == 0, shown.output
    held = json.loads(shown.stdout)
    assert held["held"] is True
    assert [(entry["file"], entry["row"], entry["columns"]["email"]) for entry in held["lists"]] == [
        ("subscribers/main.csv", 2, ADA), ("subscribers/members.csv", 2, "ADA@Example.org")]
    assert held["lists"][0]["columns"]["optin_ip"] == "192.0.2.7"
    assert held["lists"][0]["columns"]["subscribed_at"] == "2026-01-12T09:30:00Z"
    [send] = held["sends"]
    assert (send["issue"], send["ledger"], send["state"], send["request"]) == (
        "issue-1", "sent/issue-1.sqlite", "accepted", 1)
    assert send["message_id"].startswith("double-")
    assert held["build_files"] == ["build/issue-1/dry-run/request-00001.json"]
    text = run("subscribers", "show", ADA).stdout.splitlines()
    assert text[0] == f"{ADA}: held in 2 list rows, 1 send ledger request, 1 file under build/"
    assert "  optin_ip       192.0.2.7" in text
    assert any(line.startswith("sent/issue-1.sqlite: issue-1: accepted (request 1, recorded ") for line in text)


def test_show_of_an_address_held_nowhere_says_so_and_exits_0(publication: Path) -> None:
    shown = run("subscribers", "show", "nobody@example.org")
    assert (shown.exit_code, shown.stdout) == (
        0, "nobody@example.org: no data held (no list, send ledger or file under build/ holds it)\n")
    assert json.loads(run("subscribers", "show", "nobody@example.org", "--json").stdout)["held"] is False


def test_delete_erases_lists_ledger_and_build_and_says_where(publication: Path, sendgrid: SendGridDouble) -> None:
    # A request of 1,000 recipients: its text spills into overflow pages, which SQLite frees
    # with the address still in them unless secure_delete zeroes them.
    two_lists(publication, readers=998)
    assert run("send", "issue-1", "--dry-run").exit_code == 0  # before the send: it writes bodies then
    assert run("send", "issue-1", "--yes").exit_code == 0
    assert ADA.encode() in sent_bytes(publication)
    erased = run("subscribers", "delete", "Ada@Example.org")
    assert erased.exit_code == 0, erased.output
    lines = erased.stdout.splitlines()
    assert lines[0].startswith("Erased Ada@Example.org; sent/erased.csv keeps a keyed hash of it (erased on ")
    assert lines[1:] == [
        "  subscribers/main.csv: 1 row removed",
        "  subscribers/members.csv: 1 row removed",
        "  sent/issue-1.sqlite: 1 request now holds the keyed hash instead (the issue is still not sent to it twice)",
        "  build/: 1 file removed (dry-run request bodies and caches; made again by the next build or dry run)",
    ]
    assert len(rows()) == 999 and "bea@example.org" in rows() and ADA not in rows()
    assert rows(Path("subscribers/members.csv")) == {}
    assert ADA.encode() not in sent_bytes(publication)  # not in the ledger, its WAL, or freed pages
    assert b"bea@example.org" in sent_bytes(publication)
    assert not (publication / "build" / "issue-1" / "dry-run" / "request-00001.json").exists()
    assert "erasure.key" not in erased.output and (publication / "sent" / "erasure.key").stat().st_mode & 0o077 == 0
    status = json.loads(run("status", "issue-1", "--json").stdout)
    assert status["sent"] == 1000  # the hash still counts as one recipient who has it
    shown = run("subscribers", "show", ADA).stdout.splitlines()
    assert shown[0] == f"{ADA}: no data held (no list, send ledger or file under build/ holds it)"
    assert shown[1].startswith("sent/erased.csv: erased on ")


def test_a_reader_erased_and_subscribed_again_is_not_sent_an_issue_they_had(
        publication: Path, sendgrid: SendGridDouble) -> None:
    two_lists(publication)
    assert run("send", "issue-1", "--yes").exit_code == 0
    assert run("subscribers", "delete", ADA).exit_code == 0
    again = run("subscribers", "add", ADA, "--resubscribe")
    assert again.exit_code == 0, again.output
    run("subscribers", "add", "cy@example.org")
    resent = run("send", "issue-1", "--yes")
    assert resent.exit_code == 0, resent.output
    assert sorted(sendgrid.accepted_recipients()) == [ADA, "bea@example.org", "cy@example.org"]  # Ada once
    assert "  skipped            2  (already sent)" in resent.stdout


def test_import_of_an_erased_address_is_refused_naming_the_row_unless_resubscribe(publication: Path) -> None:
    two_lists(publication)
    assert run("subscribers", "delete", ADA).exit_code == 0
    old = "email,first_name\nnew@example.org,New\nADA@example.org,Ada\n"
    refused = import_csv(old)
    assert refused.exit_code == 0, refused.output
    assert ("people.csv:3: ADA@example.org was erased on " in refused.stdout
            and " at their request; left out (use --resubscribe if they asked to subscribe again)\n"
            in refused.stdout)
    assert sorted(rows()) == ["bea@example.org", "new@example.org"]
    back = import_csv(old, "--resubscribe")
    assert back.exit_code == 0, back.output
    assert "; imported again (--resubscribe)" in back.stdout
    assert rows()["ADA@example.org"]["status"] == "subscribed"
    # Subscribed again: the address is no longer refused, and a later delete records it anew.
    assert "erased" not in import_csv(old).stdout


def test_import_of_only_erased_addresses_imports_nothing(publication: Path) -> None:
    two_lists(publication)
    run("subscribers", "delete", ADA)
    refused = import_csv(f"email\n{ADA}\n")
    assert refused.exit_code == 1
    assert "people.csv:2: ada@example.org was erased on " in refused.stdout
    assert ADA not in rows()


def test_add_and_remove_of_an_erased_address_hold_it_again_only_with_resubscribe(publication: Path) -> None:
    two_lists(publication)
    run("subscribers", "delete", ADA)
    refused = run("subscribers", "add", ADA)
    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"error: {ADA} was erased on ")
    assert refused.stderr.endswith(" at their request; not added (use --resubscribe if they asked to subscribe "
                                   "again)\n")
    removed = run("subscribers", "remove", ADA)  # a row recording it would hold the address again
    assert removed.exit_code == 0
    assert removed.stdout.startswith(f"subscribers/main.csv: {ADA} was erased on ")
    assert removed.stdout.endswith(" and is on no list; nothing recorded (import and add refuse it)\n")
    assert ADA not in rows()
    assert run("subscribers", "add", ADA, "--resubscribe").exit_code == 0
    assert rows()[ADA]["status"] == "subscribed"


def test_delete_of_an_address_held_nowhere_records_it_as_erased(publication: Path) -> None:
    erased = run("subscribers", "delete", "stranger@example.org")
    assert erased.exit_code == 0
    assert erased.stdout.startswith("stranger@example.org was held nowhere (no list, send ledger or file under "
                                    "build/); recorded as erased in sent/erased.csv")
    assert "stranger@example.org" not in (publication / "sent" / "erased.csv").read_text()
    assert "was erased on" in import_csv("email\nstranger@example.org\n").stdout


def test_delete_of_text_that_is_no_address_is_one_line(publication: Path) -> None:
    result = run("subscribers", "delete", "nobody")
    assert (result.exit_code, result.stderr) == (1, "error: 'nobody' is not an email address (no @)\n")


def test_delete_erases_a_ledger_still_where_older_versions_kept_it(publication: Path,
                                                                   sendgrid: SendGridDouble) -> None:
    """build/<issue>/ledger.sqlite is a ledger to hash the address in, not a cache to remove."""
    two_lists(publication)
    assert run("send", "issue-1", "--yes").exit_code == 0
    old = publication / "build" / "issue-1" / "ledger.sqlite"
    (publication / "sent" / "issue-1.sqlite").rename(old)
    assert len(json.loads(run("subscribers", "show", ADA, "--json").stdout)["sends"]) == 1
    erased = run("subscribers", "delete", ADA)
    assert erased.exit_code == 0, erased.output
    assert "  build/issue-1/ledger.sqlite: 1 request now holds the keyed hash instead" in erased.stdout
    assert b"bea@example.org" in old.read_bytes() and ADA.encode() not in old.read_bytes()


def test_during_a_send_show_reads_the_ledger_and_delete_is_refused(publication: Path,
                                                                  sendgrid: SendGridDouble) -> None:
    two_lists(publication)
    arrived, release = threading.Event(), threading.Event()
    sendgrid.script(Stall(release=release, arrived=arrived))  # the request waits for the test
    results: list[Result] = []
    thread = send_in_background(results)
    try:
        assert arrived.wait(120), "the request never came"
        shown, erased = (subprocess.run([sys.executable, "-m", "newsletter", "subscribers", *args],
                                        capture_output=True, text=True, check=False)
                         for args in (("show", ADA, "--json"), ("delete", ADA)))
    finally:
        release.set()
        thread.join(120)
    assert shown.returncode == 0, shown.stderr
    assert [send["state"] for send in json.loads(shown.stdout)["sends"]] == ["sending"]  # read-only, alongside
    assert (erased.returncode, erased.stderr) == (1, "error: a send of issue-1 is running (sent/issue-1.lock is "
                                                     "locked): erase once it has finished; nothing was erased\n")
    assert results[0].exit_code == 0 and ADA in rows()
    assert not (publication / "sent" / "erased.csv").exists()


# -- the sign-up server's records (signup.sqlite)

GRACE = "grace@hopper.internal"
PAGE = "https://riverside-writers-circle.internal/issues/"


def signup_bytes(publication: Path) -> bytes:
    """Every byte of signup.sqlite and the files beside it (-wal, -shm), lower-cased."""
    return b"".join(path.read_bytes() for path in sorted(publication.glob("signup.sqlite*"))).lower()


def test_show_lists_and_delete_erases_the_signup_servers_records_and_it_still_serves_others(
        publication: Path, sendgrid: SendGridDouble) -> None:
    with SignupServer(publication) as server:
        assert server.subscribe(READER, first_name="Ada", page=PAGE).status_code == 200
        confirm = server.path_of(link_in(wait_for_mails(sendgrid, READER, 1)[0], "confirm"))
        assert server.client.post(confirm).status_code == 200
        wait_for_mails(sendgrid, READER, 2)  # the welcome
        assert server.subscribe(GRACE, first_name="Grace").status_code == 200
        grace_confirm = server.path_of(link_in(wait_for_mails(sendgrid, GRACE, 1)[0], "confirm"))
        outbox_idle(server)

        shown = run("subscribers", "show", READER.upper(), "--json")
        assert shown.exit_code == 0, shown.output
        held = json.loads(shown.stdout)
        assert held["held"] is True and held["signup"]["file"] == "signup.sqlite"
        [last, event, confirmation, welcome] = sorted(held["signup"]["records"],
                                                      key=lambda record: (record["table"], record.get("id", 0)))
        assert (event["table"], event["kind"], event["email"], event["list"], event["first_name"], event["page"],
                event["request_ip"], event["confirm_ip"]) == (
            "events", "subscribed", READER, "main", "Ada", PAGE, "127.0.0.1", "127.0.0.1")
        assert event["requested_at"] <= event["confirmed_at"]
        assert [(mail["table"], mail["kind"], mail["state"]) for mail in (confirmation, welcome)] == [
            ("outbox", "confirmation", "sent"), ("outbox", "welcome", "sent")]
        assert last["table"] == "confirmations"
        text = run("subscribers", "show", READER).stdout.splitlines()
        assert text[0] == (f"{READER}: held in 0 list rows, 0 send ledger requests, 0 files under build/, "
                           "4 sign-up server records")
        assert any(line.startswith("signup.sqlite: confirmed sign-up to main (event 1), requested ")
                   and f"from IP 127.0.0.1, on the page {PAGE}, first name 'Ada'" in line for line in text)
        assert READER.encode() in signup_bytes(publication)

        erased = run("subscribers", "delete", READER)
        assert erased.exit_code == 0, erased.output
        assert erased.stdout.splitlines()[1:] == [
            "  signup.sqlite: 4 records of the sign-up server erased (sign-ups, unsubscribes, emails)"]
        assert READER.encode() not in signup_bytes(publication)  # no row, freed page, WAL frame holds it
        assert GRACE.encode() in signup_bytes(publication)
        assert json.loads(run("subscribers", "show", READER, "--json").stdout)["signup"]["records"] == []

        # The server runs on: Grace confirms, the feed has her alone; Ada may sign up again at once.
        assert server.client.post(grace_confirm).status_code == 200
        assert [change["email"] for change in server.changes()["changes"]] == [GRACE]
        assert server.subscribe(READER).status_code == 200
        wait_for_mails(sendgrid, READER, 3)
    assert len(mails_to(sendgrid, GRACE)) >= 1


def test_delete_while_the_server_holds_its_records_locked_is_one_line_and_leaves_the_lists(
        publication: Path) -> None:
    two_lists(publication)
    SignupStore(publication / "signup.sqlite").close()
    writer = sqlite3.connect(publication / "signup.sqlite", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # the server's writer, mid-commit
        erased = run("subscribers", "delete", ADA, terminal=TerminalDouble(busy_wait=0.1))
    finally:
        writer.close()
    assert (erased.exit_code, erased.stderr) == (
        1, "error: signup.sqlite: the sign-up server is using it (still locked after 0.1 s): stop `newsletter "
           "serve` or retry the delete; the erasure is not finished\n")
    assert ADA in rows()
    again = run("subscribers", "delete", ADA)
    assert again.exit_code == 0, again.output
    assert ADA not in rows()


def test_show_and_delete_read_the_signup_records_given_with_db_as_serve_db_keeps_them(
        publication: Path, sendgrid: SendGridDouble) -> None:
    (publication / "var").mkdir()
    with SignupServer(publication, db=publication / "var" / "records.sqlite") as server:
        assert server.subscribe(READER, first_name="Ada", page=PAGE).status_code == 200
        wait_for_mails(sendgrid, READER, 1)
        outbox_idle(server)
        assert run("subscribers", "show", READER, "--json").exit_code == 0
        assert json.loads(run("subscribers", "show", READER, "--json").stdout)["signup"] is None

        held = json.loads(run("subscribers", "show", READER, "--json", "--db", "var/records.sqlite").stdout)
        assert held["held"] is True and held["signup"]["file"] == "var/records.sqlite"
        assert sorted((record["table"], record.get("kind")) for record in held["signup"]["records"]) == [
            ("confirmations", None), ("outbox", "confirmation"), ("pending", None)]

        missing = run("subscribers", "delete", READER, "--db", "var/signup.sqlite")
        assert (missing.exit_code, missing.stderr) == (
            1, "error: var/signup.sqlite: no such file (--db): give the sign-up server's records, the file "
               "`newsletter serve --db` was given (signup.sqlite by default); nothing was read or erased\n")
        assert not (publication / "sent" / "erased.csv").exists()

        erased = run("subscribers", "delete", READER, "--db", "var/records.sqlite")
        assert erased.exit_code == 0, erased.output
        assert erased.stdout.splitlines()[1:] == [
            "  var/records.sqlite: 3 records of the sign-up server erased (sign-ups, unsubscribes, emails)"]
        assert json.loads(run("subscribers", "show", READER, "--json", "--db", "var/records.sqlite").stdout
                          )["signup"]["records"] == []


def test_delete_with_a_signup_server_run_elsewhere_says_to_erase_it_there(publication: Path) -> None:
    update_config(publication, signup={"url": "https://join.riverside-writers-circle.internal"})
    erased = run("subscribers", "delete", "stranger@example.org")
    assert erased.exit_code == 0, erased.output
    assert erased.stdout.splitlines()[1:] == [
        "  the sign-up server at https://join.riverside-writers-circle.internal keeps its own records where it "
        "runs: erase the address there too (run this delete in its folder)"]
