"""Each reader's data: `subscribers show` (a subject access request) and `subscribers delete`
(an erasure request), over the lists, the send ledgers in sent/ and the files under build/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newsletter.locking import FileLock
from tests.send_helpers import generated, newsletter, quick_retries, write_list  # noqa: F401
from tests.sendgrid_double import SendGridDouble
from tests.subscriber_helpers import import_csv, rows

pytestmark = pytest.mark.usefixtures("quick_retries", "published_site")

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
    assert newsletter("send", "issue-1", "--dry-run").exit_code == 0  # before the send: it writes bodies then
    assert newsletter("send", "issue-1", "--yes").exit_code == 0
    shown = newsletter("subscribers", "show", "Ada@example.org", "--json")
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
    text = newsletter("subscribers", "show", ADA).stdout.splitlines()
    assert text[0] == f"{ADA}: held in 2 list rows, 1 send ledger request, 1 file under build/"
    assert "  optin_ip       192.0.2.7" in text
    assert any(line.startswith("sent/issue-1.sqlite: issue-1: accepted (request 1, recorded ") for line in text)


def test_show_of_an_address_held_nowhere_says_so_and_exits_0(publication: Path) -> None:
    shown = newsletter("subscribers", "show", "nobody@example.org")
    assert (shown.exit_code, shown.stdout) == (
        0, "nobody@example.org: no data held (no list, send ledger or file under build/ holds it)\n")
    assert json.loads(newsletter("subscribers", "show", "nobody@example.org", "--json").stdout)["held"] is False


def test_delete_erases_lists_ledger_and_build_and_says_where(publication: Path, sendgrid: SendGridDouble) -> None:
    # A request of 1,000 recipients: its text spills into overflow pages, which SQLite frees
    # with the address still in them unless secure_delete zeroes them.
    two_lists(publication, readers=998)
    assert newsletter("send", "issue-1", "--dry-run").exit_code == 0  # before the send: it writes bodies then
    assert newsletter("send", "issue-1", "--yes").exit_code == 0
    assert ADA.encode() in sent_bytes(publication)
    erased = newsletter("subscribers", "delete", "Ada@Example.org")
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
    status = json.loads(newsletter("status", "issue-1", "--json").stdout)
    assert status["sent"] == 1000  # the hash still counts as one recipient who has it
    shown = newsletter("subscribers", "show", ADA).stdout.splitlines()
    assert shown[0] == f"{ADA}: no data held (no list, send ledger or file under build/ holds it)"
    assert shown[1].startswith("sent/erased.csv: erased on ")


def test_a_reader_erased_and_subscribed_again_is_not_sent_an_issue_they_had(
        publication: Path, sendgrid: SendGridDouble) -> None:
    two_lists(publication)
    assert newsletter("send", "issue-1", "--yes").exit_code == 0
    assert newsletter("subscribers", "delete", ADA).exit_code == 0
    again = newsletter("subscribers", "add", ADA, "--resubscribe")
    assert again.exit_code == 0, again.output
    newsletter("subscribers", "add", "cy@example.org")
    resent = newsletter("send", "issue-1", "--yes")
    assert resent.exit_code == 0, resent.output
    assert sorted(sendgrid.accepted_recipients()) == [ADA, "bea@example.org", "cy@example.org"]  # Ada once
    assert "  skipped            2  (already sent)" in resent.stdout


def test_import_of_an_erased_address_is_refused_naming_the_row_unless_resubscribe(publication: Path) -> None:
    two_lists(publication)
    assert newsletter("subscribers", "delete", ADA).exit_code == 0
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
    newsletter("subscribers", "delete", ADA)
    refused = import_csv(f"email\n{ADA}\n")
    assert refused.exit_code == 1
    assert "people.csv:2: ada@example.org was erased on " in refused.stdout
    assert ADA not in rows()


def test_add_of_an_erased_address_is_refused_unless_resubscribe(publication: Path) -> None:
    two_lists(publication)
    newsletter("subscribers", "delete", ADA)
    refused = newsletter("subscribers", "add", ADA)
    assert refused.exit_code == 1
    assert refused.stderr.startswith(f"error: {ADA} was erased on ")
    assert refused.stderr.endswith(" at their request; not added (use --resubscribe if they asked to subscribe "
                                   "again)\n")
    assert ADA not in rows()
    assert newsletter("subscribers", "add", ADA, "--resubscribe").exit_code == 0
    assert rows()[ADA]["status"] == "subscribed"


def test_delete_is_refused_while_a_send_runs(publication: Path, sendgrid: SendGridDouble) -> None:
    two_lists(publication)
    before = (publication / "subscribers" / "main.csv").read_bytes()
    running = FileLock(publication / "sent" / "issue-1.lock")  # what `newsletter send issue-1` holds
    assert running.acquire(blocking=False)
    try:
        refused = newsletter("subscribers", "delete", ADA)
    finally:
        running.release()
    assert refused.exit_code == 1
    assert refused.stderr == ("error: a send of issue-1 is running (sent/issue-1.lock is locked): erase once it "
                              "has finished; nothing was erased\n")
    assert (publication / "subscribers" / "main.csv").read_bytes() == before
    assert not (publication / "sent" / "erased.csv").exists()


def test_delete_of_an_address_held_nowhere_records_it_as_erased(publication: Path) -> None:
    erased = newsletter("subscribers", "delete", "stranger@example.org")
    assert erased.exit_code == 0
    assert erased.stdout.startswith("stranger@example.org was held nowhere (no list, send ledger or file under "
                                    "build/); recorded as erased in sent/erased.csv")
    assert "stranger@example.org" not in (publication / "sent" / "erased.csv").read_text()
    assert "was erased on" in import_csv("email\nstranger@example.org\n").stdout


def test_delete_of_text_that_is_no_address_is_one_line(publication: Path) -> None:
    result = newsletter("subscribers", "delete", "nobody")
    assert (result.exit_code, result.stderr) == (1, "error: 'nobody' is not an email address (no @)\n")


def test_delete_erases_a_ledger_still_where_older_versions_kept_it(publication: Path,
                                                                   sendgrid: SendGridDouble) -> None:
    """build/<issue>/ledger.sqlite is a ledger to hash the address in, not a cache to remove."""
    two_lists(publication)
    assert newsletter("send", "issue-1", "--yes").exit_code == 0
    old = publication / "build" / "issue-1" / "ledger.sqlite"
    (publication / "sent" / "issue-1.sqlite").rename(old)
    assert len(json.loads(newsletter("subscribers", "show", ADA, "--json").stdout)["sends"]) == 1
    erased = newsletter("subscribers", "delete", ADA)
    assert erased.exit_code == 0, erased.output
    assert "  build/issue-1/ledger.sqlite: 1 request now holds the keyed hash instead" in erased.stdout
    assert b"bea@example.org" in old.read_bytes() and ADA.encode() not in old.read_bytes()
