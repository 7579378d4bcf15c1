"""The send ledger as a user's data: where it lives, what happens when it is lost, damaged,
replaced or when its disk is full. Each case must leave nobody with two copies of an issue."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.helpers import run, wait_for
from tests.send_helpers import files_under, generated, write_list
from tests.sendgrid_double import Accept, Respond, SendGridDouble, Stall
from tests.terminal_double import TerminalDouble

# A real send first checks that the issue is online: here it is, built and served locally.
pytestmark = pytest.mark.usefixtures("published_site")


def status() -> dict[str, int]:
    shown = json.loads(run("status", "issue-1", "--json").stdout)
    # No send here is scheduled (tests/test_scheduling.py has those): the counts are what is compared.
    assert (shown.pop("cancelled"), shown.pop("scheduled_at"), shown.pop("batch_id")) == (0, None, None)
    return shown


def everyone(count: int) -> list[str]:
    return [f"reader{i:06d}@example.org" for i in range(count)]


def test_the_ledger_is_kept_in_sent_beside_the_lists_so_rm_build_loses_nothing(
        publication: Path, sendgrid: SendGridDouble) -> None:
    """`rm -rf build` is a habit; the record of who has the issue is not in build/ any more."""
    write_list(publication, generated(1500))
    assert run("send", "issue-1", "--yes").exit_code == 0
    assert (publication / "sent" / "issue-1.sqlite").is_file()
    shutil.rmtree(publication / "build", ignore_errors=True)
    again = run("send", "issue-1", "--yes")
    assert again.exit_code == 0, again.output
    assert "Everyone already has issue-1: nothing was sent." in again.output
    assert sorted(sendgrid.accepted_recipients()) == everyone(1500)


def test_git_keeps_the_ledgers_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """They hold addresses: personal data, like the lists; in this repository and in a
    publication made by `newsletter init`."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout (or no git): cannot ask git what it ignores")
    monkeypatch.chdir(tmp_path)
    assert run("init", "letters").exit_code == 0
    subprocess.run(["git", "init", "-q", "letters"], check=True)
    for root in (REPO, tmp_path / "letters"):
        for path in ("sent/issue-12.sqlite", "sent/issue-12.sqlite-wal", "sent/issue-12.lock"):
            checked = subprocess.run(["git", "-C", str(root), "check-ignore", "-q", path])
            assert checked.returncode == 0, f"{path} is not ignored by {root / '.gitignore'}"


def test_a_ledger_left_in_build_by_an_older_version_is_moved_whole(publication: Path,
                                                                    sendgrid: SendGridDouble) -> None:
    """build/ISSUE/ledger.sqlite, with a batch still only in its WAL (an older version killed
    before a checkpoint), is moved to sent/ISSUE.sqlite: every batch comes along, the old files
    go, and the next send skips everyone it records."""
    write_list(publication, generated(1500))
    assert run("send", "issue-1", "--yes").exit_code == 0
    new = publication / "sent" / "issue-1.sqlite"
    old = publication / "build" / "issue-1" / "ledger.sqlite"
    old.parent.mkdir(parents=True, exist_ok=True)
    writer = sqlite3.connect(new, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("INSERT INTO batches (state, size, recipients, created, updated) "
                   "VALUES ('accepted', 2, 'extra1@example.org\nextra2@example.org', 0, 0)")
    shutil.copy(new, old)  # the file and its WAL as an older version left them
    shutil.copy(new.with_name("issue-1.sqlite-wal"), old.with_name("ledger.sqlite-wal"))
    writer.close()
    shutil.rmtree(publication / "sent")
    assert status() == {"sent": 1502, "pending": 0, "failed": 0, "uncertain": 0, "not_sent": 0}
    assert new.is_file() and not old.exists() and not old.with_name("ledger.sqlite-wal").exists()
    write_list(publication, generated(1500) + [["extra1@example.org"], ["new@example.org"]])
    assert run("send", "issue-1", "--yes").exit_code == 0
    assert Counter(sendgrid.accepted_recipients()).most_common(1)[0][1] == 1
    assert sendgrid.accepted_recipients()[1500:] == ["new@example.org"]


def test_what_a_stopped_send_did_not_reach_stays_until_a_send_and_an_older_ledger_says_nothing(
        publication: Path, sendgrid: SendGridDouble) -> None:
    """A send refused part way leaves its not-sent readers in `status`, with the command that
    carries it on; a dry run and a proof after it change nothing of that. A ledger written by
    a version that recorded no plan says nothing of them (--json: null), as before."""
    write_list(publication, generated(2500))
    sendgrid.script(Respond(400, body={"errors": [{"field": None, "message": "scripted", "help": None}]}))
    assert run("send", "issue-1", "--yes", "--concurrency", "1", "--tag", "members").exit_code == 1
    told = ("sent               0\npending            0\nfailed         1,000\nuncertain          0\n"
            "not sent       1,500  (the send stopped before them: run `newsletter send issue-1 --tag members` again)\n")
    assert run("status", "issue-1").stdout == told
    assert run("send", "issue-1", "--dry-run").exit_code == 0
    assert run("send", "issue-1", "--yes", "--to", "me@example.net").exit_code == 0
    assert run("status", "issue-1").stdout == told
    with sqlite3.connect(publication / "sent" / "issue-1.sqlite") as db:  # as an older version wrote it
        db.execute("DELETE FROM meta WHERE key IN ('planned_recipients', 'planned_command')")
    assert run("status", "issue-1").stdout == told[:told.index("not sent")]
    assert json.loads(run("status", "issue-1", "--json").stdout)["not_sent"] is None


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _truncated(path: Path) -> None:
    os.truncate(path, 4096 * 2)


def _no_tables(path: Path) -> None:
    path.unlink()
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (text)")
    db.commit()
    db.close()


def _garbage(path: Path) -> None:
    path.write_bytes(b"these are not the records you are looking for\n" * 200)


@pytest.mark.parametrize(("damage", "said"), [
    pytest.param(_empty, "is empty", id="empty"),
    pytest.param(_truncated, "is damaged", id="truncated"),
    pytest.param(_no_tables, "holds no send records", id="no-tables"),
    pytest.param(_garbage, "is damaged", id="not-a-database"),
])
def test_a_damaged_ledger_is_an_error_never_a_fresh_start(publication: Path, sendgrid: SendGridDouble,
                                                          damage, said: str) -> None:
    """`truncate -s 0` on the ledger once posted the whole list again. Now every command that
    reads it names the file and says to restore it; nothing is posted."""
    write_list(publication, generated(2500))
    assert run("send", "issue-1", "--yes").exit_code == 0
    ledger = publication / "sent" / "issue-1.sqlite"
    for leftover in (ledger.with_name("issue-1.sqlite-wal"), ledger.with_name("issue-1.sqlite-shm")):
        leftover.unlink(missing_ok=True)
    damage(ledger)
    for command in (("send", "issue-1", "--yes"), ("send", "issue-1", "--dry-run"), ("status", "issue-1")):
        result = run(*command)
        assert result.exit_code == 1, (command, result.output)
        assert result.stderr.startswith(f"error: sent/issue-1.sqlite {said}"), result.stderr
        assert "restore sent/issue-1.sqlite from your backup of sent/" in result.stderr
        assert result.stderr.count("\n") == 1
    assert len(sendgrid.mail_requests) == 3


def _start_send(publication: Path, sendgrid: SendGridDouble, *options: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, NEWSLETTER_SENDGRID_URL=sendgrid.url, SENDGRID_API_KEY=sendgrid.api_key)
    return subprocess.Popen([sys.executable, "-m", "newsletter", "send", "issue-1", "--yes", *options],
                            cwd=publication, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_requests(sendgrid: SendGridDouble, count: int) -> None:
    wait_for(lambda: len(sendgrid.mail_requests) >= count, f"{count} requests")


def _killed_at_request(publication: Path, sendgrid: SendGridDouble, count: int) -> None:
    """A send, one request at a time, killed (-9) once the double has its `count`th request."""
    process = _start_send(publication, sendgrid, "--concurrency", "1")
    try:
        _wait_for_requests(sendgrid, count)
    finally:
        process.kill()
        process.communicate()


@pytest.mark.parametrize("replace", [False, True], ids=["deleted", "replaced"])
def test_a_ledger_deleted_or_replaced_during_a_send_stops_it(publication: Path, sendgrid: SendGridDouble,
                                                             replace: bool) -> None:
    """The ledger is deleted (or a copy put in its place) while the second request is in flight:
    the send checks before the next batch, stops, posts nothing more, and saves what it recorded.
    Deleted: the next send refuses until that copy is made the ledger again."""
    write_list(publication, generated(4500))
    answer = threading.Event()
    sendgrid.script(Stall(accept=True, release=answer))
    process = _start_send(publication, sendgrid, "--concurrency", "1")
    try:
        _wait_for_requests(sendgrid, 1)
        ledger = publication / "sent" / "issue-1.sqlite"
        if replace:
            shutil.copy(ledger, ledger.with_name("copy.sqlite"))
            os.replace(ledger.with_name("copy.sqlite"), ledger)
        else:
            ledger.unlink()
        answer.set()
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1, stderr
    lines = stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: sent/issue-1.sqlite was deleted or replaced during the send; its records are not where the "
        "next send looks: the send stopped and posted nothing more; what this send recorded is saved in "
        "sent/issue-1.saved-"), stderr
    assert len(sendgrid.mail_requests) == 1
    saved = next((publication / "sent").glob("issue-1.saved-*.sqlite"))
    states = sqlite3.connect(saved).execute("SELECT state, size FROM batches").fetchall()
    assert states == [("accepted", 1000)]
    if replace:
        return
    # A plain re-run once ignored the saved copy and posted those 1,000 again: it points to it.
    rerun = run("send", "issue-1", "--yes")
    assert rerun.exit_code == 1
    name = saved.relative_to(publication)
    assert rerun.stderr == (f"error: sent/issue-1.sqlite is missing, and {name} holds what an earlier send of "
                            f"issue-1 recorded: make it the ledger (`mv {name} sent/issue-1.sqlite`), check "
                            "`newsletter status issue-1`, then send again; only if none of it matters any more, "
                            "send with --first-send\n")
    assert len(sendgrid.mail_requests) == 1
    saved.rename(publication / "sent" / "issue-1.sqlite")
    assert run("send", "issue-1", "--yes").exit_code == 0
    counts = Counter(sendgrid.accepted_recipients())
    assert len(counts) == 4500 and max(counts.values()) == 1


# -- a full disk, for real: a small tmpfs mounted in a user and mount namespace ----------

def _can_mount_tmpfs() -> str:
    """Why a small disk cannot be made here, or '' when it can."""
    if shutil.which("unshare") is None:
        return "no unshare(1) to mount a small tmpfs"
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=16k tmpfs /mnt 2>&1 || "
                            "mount -t tmpfs -o size=16k tmpfs /tmp"], capture_output=True, text=True)
    return "" if probe.returncode == 0 else f"cannot mount a tmpfs in a namespace: {probe.stdout.strip()}"


def _on_a_small_disk(publication: Path, folder: str, size: str, args: list[str],
                     sendgrid: SendGridDouble | None) -> subprocess.CompletedProcess[str]:
    """Run `newsletter ARGS` with `folder` on a tmpfs of `size`; its files are copied back after."""
    why = _can_mount_tmpfs()
    if why:
        pytest.skip(why)
    mount = publication / folder
    mount.mkdir(exist_ok=True)
    kept = publication / f"{folder}.kept"
    kept.mkdir()
    env = dict(os.environ)
    if sendgrid is not None:
        env.update(NEWSLETTER_SENDGRID_URL=sendgrid.url, SENDGRID_API_KEY=sendgrid.api_key)
    command = " ".join(f"'{a}'" for a in [sys.executable, "-m", "newsletter", *args])
    script = (f"mount -t tmpfs -o size={size} tmpfs '{mount}' || exit 99; {command}; status=$?; "
              f"cp -a '{mount}/.' '{kept}/'; exit $status")
    result = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=publication, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 99, result.stderr
    shutil.rmtree(mount)
    kept.rename(mount)
    return result


def test_a_full_disk_under_the_ledger_stops_the_send_with_one_line(publication: Path,
                                                                   sendgrid: SendGridDouble) -> None:
    """The ledger's disk fills during a send: one line naming the ledger and saying the disk is
    full, no traceback; what SendGrid accepted before is recorded, and a rerun on a disk with
    room sends to the rest, nobody twice."""
    write_list(publication, generated(8000))
    result = _on_a_small_disk(publication, "sent", "160k", ["send", "issue-1", "--yes"], sendgrid)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: sent/issue-1.sqlite: the disk is full (database or disk is full); cannot write the send ledger: "
        "the send stopped and posted nothing more; the "), result.stderr
    assert lines[0].endswith("free some space and run `newsletter send issue-1` again")
    accepted = len(sendgrid.accepted_recipients())
    assert 0 < accepted < 8000
    recorded = status()
    assert recorded["sent"] + recorded["uncertain"] == accepted and recorded["failed"] == 0
    assert f"the {recorded['sent']:,} recipients accepted before are recorded" in lines[0]
    again = run("send", "issue-1", "--yes")
    assert max(Counter(sendgrid.accepted_recipients()).values()) == 1
    # Everyone once: the uncertain are those SendGrid took whose answer the full disk could not
    # record (the answers are committed with the next batch); they are listed, not posted again.
    assert len(sendgrid.accepted_recipients()) == 8000, again.output
    assert f"uncertain  {recorded['uncertain']:>9,}" in again.output


def test_a_dry_run_on_a_full_disk_says_nothing_was_sent(publication: Path) -> None:
    """Nothing is posted in a dry run, so a body it cannot write is not 'uncertain'."""
    write_list(publication, generated(1500))
    result = _on_a_small_disk(publication, "build", "16k", ["send", "issue-1", "--dry-run"], None)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "ncertain:" not in result.stdout
    assert "may or may not" not in result.stdout + result.stderr
    # Which body meets the full disk first depends on the requests written at once.
    [line] = result.stderr.splitlines()
    assert re.fullmatch(r"error: build/issue-1/dry-run/request-\d{5}\.json: cannot write it "
                        r"\(No space left on device\); this dry run sent nothing", line), line
    assert not (publication / "sent").exists()


def _ledger_files(publication: Path) -> list[Path]:
    ledger = publication / "sent" / "issue-1.sqlite"
    return [ledger, ledger.with_name("issue-1.sqlite-wal"), ledger.with_name("issue-1.sqlite-shm")]


def _restore_alone(publication: Path, copy: Path) -> None:
    """Put back a copy of sent/issue-1.sqlite alone, as a restore of a file-by-file backup does."""
    for path in _ledger_files(publication):
        path.unlink(missing_ok=True)
    shutil.copy(copy, publication / "sent" / "issue-1.sqlite")


def test_a_ledger_copied_without_its_wal_after_a_kill_is_refused(publication: Path, sendgrid: SendGridDouble,
                                                                  tmp_path: Path) -> None:
    """kill -9 while the second request is in flight: the records are in the -wal. A backup of
    sent/issue-1.sqlite alone, restored, once said 'not sent yet' and posted everything again;
    now `status` and `send` refuse it in one line."""
    write_list(publication, generated(3500))
    # The first request answered at once (its record goes to the -wal), the second held until the kill.
    sendgrid.script(Respond(202, {"X-Message-Id": "first"}), Stall(30.0, accept=True))
    _killed_at_request(publication, sendgrid, 2)
    ledger = publication / "sent" / "issue-1.sqlite"
    during = shutil.copy(ledger, tmp_path / "copied-after-the-kill.sqlite")
    _restore_alone(publication, during)
    for command in (("status", "issue-1"), ("send", "issue-1", "--yes")):
        refused = run(*command)
        assert refused.exit_code == 1, refused.output
        assert refused.stderr.startswith("error: sent/issue-1.sqlite was copied without its "
                                         "sent/issue-1.sqlite-wal while a send of issue-1 was running"), refused.stderr
        assert refused.stderr.count("\n") == 1
        # Never advice that mails again those the lost -wal recorded.
        assert refused.stderr.endswith("this ledger cannot say who got issue-1: check your provider's activity "
                                       "(SendGrid's activity feed, the SMTP server's log) before sending it again\n")
        assert "--first-send" not in refused.stderr and "delete" not in refused.stderr
    assert len(sendgrid.mail_requests) == 2


def test_a_look_at_the_ledger_after_a_kill_is_a_killed_send_not_a_copy(publication: Path,
                                                                     sendgrid: SendGridDouble) -> None:
    """kill -9, then `sqlite3` opens and closes the ledger for a look: the last connection to
    close checkpoints the -wal into the main file and removes it. `status` once took that for a
    copy made without its -wal and advised deleting it and --first-send (everyone again). The
    main file holds batches recorded after the send's mark: it recovers as after any kill."""
    write_list(publication, generated(3500))
    sendgrid.script(Respond(202, {"X-Message-Id": "first"}), Stall(30.0, accept=True))
    _killed_at_request(publication, sendgrid, 2)
    ledger = publication / "sent" / "issue-1.sqlite"
    assert ledger.with_name("issue-1.sqlite-wal").exists()
    db = sqlite3.connect(ledger)
    assert db.execute("SELECT count(*) FROM batches").fetchall() == [(2,)]
    db.close()
    assert not ledger.with_name("issue-1.sqlite-wal").exists()
    assert status() == {"sent": 1000, "pending": 0, "failed": 0, "uncertain": 1000, "not_sent": 1500}
    rerun = run("send", "issue-1", "--yes")
    assert rerun.exit_code == 1 and "uncertain      1,000" in rerun.output  # the killed request is not posted again
    posted = Counter(to["email"] for request in sendgrid.mail_requests
                     for personalization in request["personalizations"] for to in personalization["to"])
    assert len(sendgrid.mail_requests) == 4 and sorted(posted) == everyone(3500) and max(posted.values()) == 1



def test_after_a_kill_the_next_status_makes_the_ledger_file_whole(publication: Path, sendgrid: SendGridDouble,
                                                                  tmp_path: Path) -> None:
    """After a kill -9 the main file is stale and the -wal holds the records; the next command
    that opens the ledger checkpoints it, so a copy of the file alone is then the whole record.
    So is one made after a send that ended: it leaves no -wal behind."""
    write_list(publication, generated(3500))
    sendgrid.script(Respond(202, {"X-Message-Id": "first"}), Stall(30.0, accept=True))
    _killed_at_request(publication, sendgrid, 2)
    assert status() == {"sent": 1000, "pending": 0, "failed": 0, "uncertain": 1000, "not_sent": 1500}
    _restore_alone(publication, shutil.copy(publication / "sent" / "issue-1.sqlite", tmp_path / "copy.sqlite"))
    assert status() == {"sent": 1000, "pending": 0, "failed": 0, "uncertain": 1000, "not_sent": 1500}
    rerun = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert rerun.exit_code == 1 and "uncertain      1,000" in rerun.output  # the killed request is not posted again
    assert len(sendgrid.mail_requests) == 4
    assert not (publication / "sent" / "issue-1.sqlite-wal").exists()


def _random_pages(path: Path) -> None:
    """Random bytes over pages 4 to 7: SQLite opens the file and finds many faults, each on a line."""
    data = bytearray(path.read_bytes())
    data[4096 * 3:4096 * 7] = os.urandom(4096 * 4)
    path.write_bytes(bytes(data))


def test_random_bytes_in_a_ledger_are_one_error_line(publication: Path, sendgrid: SendGridDouble) -> None:
    """Random bytes in the ledger's pages once gave seven lines ('Page 11 is never used', ...)."""
    write_list(publication, generated(9000))
    assert run("send", "issue-1", "--yes").exit_code == 0
    _random_pages(publication / "sent" / "issue-1.sqlite")
    for command in (("send", "issue-1", "--yes"), ("status", "issue-1")):
        result = run(*command)
        assert result.exit_code == 1
        assert result.stderr.startswith("error: sent/issue-1.sqlite is damaged ("), result.stderr
        assert result.stderr.count("\n") == 1 and "***" not in result.stderr
        assert result.stderr.endswith("restore sent/issue-1.sqlite from your backup of sent/ and send again; only "
                                      "if issue-1 was never sent, delete the file\n")
    assert len(sendgrid.mail_requests) == 9


def test_a_full_disk_when_the_ledger_is_made_says_the_disk_is_full(publication: Path,
                                                                   sendgrid: SendGridDouble) -> None:
    """A disk too small for a new ledger said 'disk I/O error'; it says the disk is full."""
    write_list(publication, generated(10))
    result = _on_a_small_disk(publication, "sent", "8k", ["send", "issue-1", "--yes"], sendgrid)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == ("error: sent/issue-1.sqlite: the disk is full: cannot create the send ledger; "
                             "nothing was sent: free some space and send again\n")
    assert sendgrid.mail_requests == []


def _send_two_thirds(publication: Path, sendgrid: SendGridDouble) -> None:
    """3,000 readers; SendGrid takes two requests, then refuses the third: 2,000 have the issue."""
    write_list(publication, generated(3000))
    sendgrid.script(Accept(), Accept(), Respond(400, body={"errors": [{"message": "bad"}]}))
    assert run("send", "issue-1", "--yes", "--concurrency", "1").exit_code == 1
    assert len(sendgrid.mail_requests) == 3


@pytest.mark.parametrize("with_id", [True, False], ids=["id", "subject-and-articles"])
def test_a_renamed_issue_folder_is_the_same_issue(publication: Path, sendgrid: SendGridDouble,
                                                  with_id: bool) -> None:
    """2,000 of 3,000 sent, then `mv issues/issue-1 issues/issue-1-final` and `send issue-1-final`
    once sent those 2,000 again. The ledger records the issue's id (or, for an issue without one,
    its subject and articles): the send is refused, naming the ledger and how to carry it over;
    done, the send goes on with the 1,000 left."""
    meta = publication / "issues" / "issue-1" / "issue.yaml"
    if with_id:
        meta.write_text(meta.read_text(encoding="utf-8") + "id: i0123456789ab\n", encoding="utf-8")
    before = meta.read_text(encoding="utf-8")
    _send_two_thirds(publication, sendgrid)
    if not with_id:  # as a ledger made before sends wrote an id: the subject and articles alone
        meta.write_text(before, encoding="utf-8")
        with sqlite3.connect(publication / "sent" / "issue-1.sqlite") as db:
            db.execute("DELETE FROM meta WHERE key = 'issue_id'")
        db.close()
    (publication / "issues" / "issue-1").rename(publication / "issues" / "issue-1-final")
    if with_id:  # the id alone ties them: a subject changed after the rename does not matter
        renamed = publication / "issues" / "issue-1-final" / "issue.yaml"
        renamed.write_text(renamed.read_text(encoding="utf-8").replace('subject: "', 'subject: "Final: ', 1),
                           encoding="utf-8")
    how = "the same id, i0123456789ab" if with_id else "the same subject and articles"
    refused = run("send", "issue-1-final", "--yes", "--no-web-check")
    assert refused.exit_code == 1, refused.output
    assert refused.stderr == (
        f"error: sent/issue-1.sqlite records a send of this issue ({how}) under the name issue-1: if the folder "
        "was renamed to issue-1-final, carry the record over with `mv sent/issue-1.sqlite "
        "sent/issue-1-final.sqlite`, then send again; if issue-1-final is another issue made from a copy, give "
        "it its own " + ("`id:` (delete that line of its issue.yaml) " if with_id else "subject or articles ")
        + "or send with --first-send\n")
    assert len(sendgrid.mail_requests) == 3
    (publication / "sent" / "issue-1.sqlite").rename(publication / "sent" / "issue-1-final.sqlite")
    carried = run("send", "issue-1-final", "--yes", "--no-web-check")
    assert carried.exit_code == 0, carried.output
    counts = Counter(sendgrid.accepted_recipients())
    assert len(counts) == 3000 and max(counts.values()) == 1


def test_an_issue_without_id_renamed_then_edited_is_still_the_same_issue(publication: Path,
                                                                        sendgrid: SendGridDouble) -> None:
    """The sample issue has no `id:`: it was known only by its subject and articles, so
    `mv issues/issue-1 issues/issue-1-final` and one typo fixed sent it to everyone again.
    The first send writes an id into its issue.yaml (its comments kept) and the ledger."""
    meta = publication / "issues" / "issue-1" / "issue.yaml"
    meta.write_text("# The editor's note stays.\n" + meta.read_text(encoding="utf-8"), encoding="utf-8")
    write_list(publication, generated(1500))
    assert run("send", "issue-1", "--yes").exit_code == 0
    text = meta.read_text(encoding="utf-8")
    [issue_id] = re.findall(r"^id: (i[0-9a-f]{12})$", text, re.MULTILINE)
    assert text.startswith("# The editor's note stays.\n") and "  - 03-what-were-reading.md\n" in text
    (publication / "issues" / "issue-1").rename(publication / "issues" / "issue-1-final")
    editorial = publication / "issues" / "issue-1-final" / "01-editorial.md"
    editorial.write_text(editorial.read_text(encoding="utf-8") + "\nA typo fixed.\n", encoding="utf-8")
    refused = run("send", "issue-1-final", "--yes", "--no-web-check")
    assert refused.exit_code == 1, refused.output
    assert refused.stderr.startswith(
        f"error: sent/issue-1.sqlite records a send of this issue (the same id, {issue_id}) under the name issue-1: "
        "if the folder was renamed to issue-1-final, carry the record over with `mv sent/issue-1.sqlite "
        "sent/issue-1-final.sqlite`, then send again"), refused.stderr
    assert refused.stderr.count("\n") == 1
    counts = Counter(sendgrid.accepted_recipients())
    assert len(counts) == 1500 and max(counts.values()) == 1


def test_an_issue_yaml_a_send_cannot_give_an_id_stops_it(publication: Path, sendgrid: SendGridDouble) -> None:
    """Without the id written, a renamed and edited issue would be sent again: nothing is sent."""
    from tests.mounts import read_only

    write_list(publication, generated(5))
    with read_only(publication / "issues" / "issue-1"):
        refused = run("send", "issue-1", "--yes")
    assert refused.exit_code == 1, refused.output
    assert re.fullmatch(r"error: issues/issue-1.*: a send writes `id: i[0-9a-f]{12}` into an issue without one, "
                        r"so that its ledger still knows it after the folder is renamed; make issues/issue-1/issue"
                        r"\.yaml writable \(or add that line yourself\) and send again; nothing was sent\n",
                        refused.stderr), refused.stderr
    assert sendgrid.mail_requests == []


def test_another_issue_is_not_taken_for_a_sent_one(publication: Path, sendgrid: SendGridDouble) -> None:
    """`newsletter new` gives each issue its own id; an issue with other articles is another issue."""
    write_list(publication, generated(5))
    assert run("send", "issue-1", "--yes").exit_code == 0
    assert run("new", "issue-2", "--subject", "Spring").exit_code == 0
    folder = publication / "issues" / "issue-2"
    assert re.search(r"^id: i[0-9a-f]{12}$", (folder / "issue.yaml").read_text(encoding="utf-8"), re.MULTILINE)
    shutil.copy(publication / "issues" / "issue-1" / "01-editorial.md", folder / "01-editorial.md")
    text = (folder / "issue.yaml").read_text(encoding="utf-8").replace("draft: true\n", "")
    (folder / "issue.yaml").write_text(text.replace("articles: []", "articles: [01-editorial.md]"), encoding="utf-8")
    result = run("send", "issue-2", "--yes", "--no-web-check")
    assert result.exit_code == 0, result.output
    assert len(sendgrid.accepted_recipients()) == 10


def test_a_deleted_ledger_with_its_lock_left_is_refused_unless_first_send(publication: Path,
                                                                          sendgrid: SendGridDouble) -> None:
    """The ledger deleted after a send: its lock file shows the issue was sent from here. A
    plain send is refused in one line saying what to restore; --first-send says 'I know'."""
    write_list(publication, generated(1500))
    assert run("send", "issue-1", "--yes").exit_code == 0
    for path in (publication / "sent").glob("issue-1.sqlite*"):
        path.unlink()
    refused = run("send", "issue-1", "--yes")
    assert refused.exit_code == 1
    assert refused.stderr == ("error: sent/issue-1.sqlite is missing, but sent/issue-1.lock shows issue-1 was "
                              "sent from here before: restore sent/issue-1.sqlite from your backup of sent/; "
                              "only if issue-1 was never sent, send with --first-send\n")
    assert len(sendgrid.mail_requests) == 2
    tried = run("send", "issue-1", "--dry-run")  # says now what the real send will refuse
    assert tried.exit_code == 0 and tried.stderr.startswith(
        "warning: sent/issue-1.sqlite is missing, but sent/issue-1.lock shows issue-1 was sent from here before: ")
    assert tried.stderr.count("\n") == 1 and "(a real send is refused until then)" in tried.stderr
    again = run("send", "issue-1", "--yes", "--first-send")
    assert again.exit_code == 0, again.output
    assert len(sendgrid.accepted_recipients()) == 3000


def test_a_send_declined_at_the_question_leaves_no_trace(publication: Path, sendgrid: SendGridDouble) -> None:
    """A lock file made by a send declined at the question notes no ledger: the first real
    send is not taken for a second one."""


    write_list(publication, generated(5))
    declined = run("send", "issue-1", input="n\n", terminal=TerminalDouble(can_ask=True))
    assert "Send it now?" in declined.output and sendgrid.mail_requests == []
    sent = run("send", "issue-1", "--yes")
    assert sent.exit_code == 0, sent.output
    assert len(sendgrid.accepted_recipients()) == 5


def test_backup_copies_sent_and_subscribers_whole_and_refuses_during_a_send(
        publication: Path, sendgrid: SendGridDouble, tmp_path: Path) -> None:
    """`newsletter backup DIR` after a kill -9 (the records still in the -wal): restored from it
    alone, the ledger says what the original says and the re-run posts nobody twice. While a
    send runs it refuses in one line and copies nothing."""
    write_list(publication, generated(3500))
    answer = threading.Event()
    sendgrid.script(Accept(), Stall(accept=True, release=answer))
    process = _start_send(publication, sendgrid, "--concurrency", "1")
    try:
        _wait_for_requests(sendgrid, 2)
        during = run("backup", str(tmp_path / "during"))
        assert during.exit_code == 1
        assert during.stderr == ("error: a send of issue-1 is running (sent/issue-1.lock is locked): back up once it "
                                 "is over; nothing was copied\n")
        assert not (tmp_path / "during").exists()
    finally:
        process.kill()
        process.communicate()
        answer.set()
    assert (publication / "sent" / "issue-1.sqlite-wal").stat().st_size > 0  # the kill left the records there
    made = run("backup", str(tmp_path / "copy"))
    assert made.exit_code == 0, made.output
    assert made.output.startswith(f"Backed up 1 send ledger and 1 file of subscribers/ into {tmp_path / 'copy'}/.")
    copy = tmp_path / "copy"
    assert sorted(p.name for p in files_under(copy)) == ["issue-1.sqlite", "main.csv"]
    assert (copy / "subscribers" / "main.csv").read_bytes() == (publication / "subscribers" / "main.csv").read_bytes()
    expected = status()
    assert expected == {"sent": 1000, "pending": 0, "failed": 0, "uncertain": 1000, "not_sent": 1500}
    shutil.rmtree(publication / "sent")
    shutil.copytree(copy / "sent", publication / "sent")
    assert status() == expected
    rerun = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert rerun.exit_code == 1 and "uncertain      1,000" in rerun.output
    counts = Counter(sendgrid.accepted_recipients())
    assert len(counts) == 3500 and max(counts.values()) == 1


def test_an_erasure_after_a_kill_leaves_a_ledger_that_opens(publication: Path, sendgrid: SendGridDouble) -> None:
    """`subscribers delete` checkpoints the ledger, which removes its -wal; after a kill -9 the
    ledger still carried the dead send's mark, so the next command took it for a copy made
    mid-send. The erasure clears the mark: status reads it, the re-run posts nobody twice. And
    `newsletter backup` copies what the erasure keeps in sent/ (erased.csv, erasure.key)."""
    write_list(publication, generated(3500))
    sendgrid.script(Accept(), Stall(30.0, accept=True))
    _killed_at_request(publication, sendgrid, 2)
    erased = run("subscribers", "delete", "reader000001@example.org")
    assert erased.exit_code == 0, erased.output
    assert not (publication / "sent" / "issue-1.sqlite-wal").exists()
    assert status() == {"sent": 1000, "pending": 0, "failed": 0, "uncertain": 1000, "not_sent": 1500}
    rerun = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert rerun.exit_code == 1 and "uncertain      1,000" in rerun.output
    assert Counter(sendgrid.accepted_recipients()).most_common(1)[0][1] == 1
    # What the erasure keeps in sent/ is backed up with the ledgers, the key as private as it is.
    made = run("backup", "copy")
    assert made.exit_code == 0, made.output
    assert made.output.startswith("Backed up 1 send ledger, erased.csv, erasure.key of sent/ and 1 file of "
                                  "subscribers/ into ")
    for name in ("erased.csv", "erasure.key"):
        original, copy = publication / "sent" / name, publication / "copy" / "sent" / name
        assert copy.read_bytes() == original.read_bytes()
        assert copy.stat().st_mode & 0o777 == original.stat().st_mode & 0o777


def test_writes_of_several_threads_waiting_together_share_one_commit_and_its_fate(tmp_path: Path) -> None:
    """SMTP's connections each record a message before its DATA: the writes that wait while a
    commit runs go in the next one together (one fsync), and a commit that fails fails them all."""
    from newsletter.sending.ledger import Ledger

    ledger = Ledger(tmp_path / "issue-1.sqlite", "issue-1")
    inside, release = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def first() -> int:
        inside.set()
        release.wait(30)
        return ledger.record_message("first@example.org", "smtp")

    def broken() -> None:
        raise sqlite3.OperationalError("disk I/O error")

    def run(name: str, write: object) -> None:
        try:
            results[name] = ledger.together(write)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - what the thread was told
            results[name] = exc

    threads = [threading.Thread(target=run, args=("first", first))]
    threads[0].start()
    assert inside.wait(30)
    for name, write in (("second", lambda: ledger.record_message("second@example.org", "smtp")),
                        ("broken", broken)):
        threads.append(threading.Thread(target=run, args=(name, write)))
        threads[-1].start()
    waited = threading.Event()
    for _ in range(3000):  # until both wait for the commit that runs now (a poll: nothing signals it)
        if len(ledger._queued) == 2 or waited.wait(0.01):
            break
    assert len(ledger._queued) == 2
    release.set()
    for thread in threads:
        thread.join(30)
    assert isinstance(results["first"], int)
    assert isinstance(results["second"], sqlite3.OperationalError) and results["second"] is results["broken"]
    assert ledger.states() == {"first@example.org": "sending"}
    ledger.close()
