"""The subscriber files as they really are: huge cells, foreign encodings, full disks, links, devices."""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import REPO, newsletter_process, run
from tests.subscriber_helpers import MAIN_LIST, import_csv, rows, write

HEADER = "email,first_name,last_name,status,tags,subscribed_at,updated_at\n"


# -- cells larger than a list can hold (item 12) ----------------------------------------

def test_tags_merged_past_the_cell_limit_are_refused_naming_the_row(publication: Path) -> None:
    """15,000 rows of one address, each with its own tag, once made a 165 KB cell nothing could read."""
    lines = "".join(f"many@example.org,tag-number-{i:05d}\n" for i in range(15_000))
    result = import_csv("email,tags\n" + lines)
    assert result.exit_code == 0, result.output
    assert "people.csv:" in result.output and "at most 10,000 characters" in result.output
    listed = run("subscribers", "list", "--tag", "tag-number-00000")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.startswith("many@example.org\tsubscribed")
    assert len(rows()["many@example.org"]["tags"]) <= 10_000


def test_an_imported_cell_over_the_limit_is_refused_naming_the_row(publication: Path) -> None:
    result = import_csv("email,first_name,notes\nok@example.org,Ok,short\nlong@example.org,Long," + "x" * 20_000 + "\n")
    assert result.exit_code == 0, result.output
    assert ("people.csv:3: cell 3 (notes) holds 20,000 characters; a cell holds at most 10,000 characters"
            in result.output)
    assert "ok@example.org" in rows() and "long@example.org" not in rows()


def test_tags_that_would_pass_the_limit_in_the_list_stop_the_import_naming_the_row(publication: Path) -> None:
    tags = ";".join(f"old-{i:04d}" for i in range(1_100))  # 9,899 characters
    write(MAIN_LIST, HEADER + f"full@example.org,Full,,subscribed,{tags},,\n")
    before = MAIN_LIST.read_bytes()
    result = import_csv("email,tags\nfull@example.org," + ";".join(f"new-tag-{i:02d}" for i in range(20)) + "\n")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: subscribers/main.csv:2: the tags imported for full@example.org would make")
    assert MAIN_LIST.read_bytes() == before


def test_a_list_with_a_cell_larger_than_the_csv_modules_default_limit_reads(publication: Path) -> None:
    """Whatever a list was given (by hand, by an older version), every command reads it back."""
    write(MAIN_LIST, HEADER + "big@example.org,Big,,subscribed," + ";".join(f"t{i}" for i in range(40_000)) + ",,\n")
    result = run("subscribers", "list")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("big@example.org\tsubscribed\tBig\tt0;t1;")
    assert run("subscribers", "add", "new@example.org").exit_code == 0
    assert set(rows()) == {"big@example.org", "new@example.org"}


# -- UTF-16 (item 13) ----------------------------------------------------------------------

def test_utf16_without_a_bom_says_save_as_csv_utf8(publication: Path) -> None:
    """Excel's "Unicode Text" and some exports are UTF-16 without a BOM: no `E\\x00m\\x00a…` headers."""
    result = import_csv("Email,First Name\nann@example.org,Ann\n", encoding="utf-16-le")
    assert result.exit_code == 1
    assert result.stderr == ('error: people.csv:1: this is UTF-16 text, not UTF-8; '
                             'save the file as "CSV UTF-8" and try again\n')


def test_a_list_saved_as_utf16_says_save_as_csv_utf8(publication: Path) -> None:
    write(MAIN_LIST, HEADER + "ann@example.org,Ann,,subscribed,,,\n", encoding="utf-16-be")
    result = run("subscribers", "stats")
    assert result.exit_code == 1
    assert 'save the file as "CSV UTF-8"' in result.stderr and "\\x00" not in result.stderr


# -- a full disk, a full standard output (item 7) ---------------------------------------

def test_a_disk_that_fills_while_the_list_is_written_is_one_line_and_the_list_untouched(publication: Path) -> None:
    write(Path("many.csv"), "email,first_name\n" + "".join(f"p{i}@example.org,P{i}\n" for i in range(2_000)))
    before = MAIN_LIST.read_bytes()
    done = newsletter_process("subscribers", "import", "many.csv", file_size_limit=16_384)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: subscribers/main.csv: cannot write it (File too large)")
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert MAIN_LIST.read_bytes() == before
    assert not list(MAIN_LIST.parent.glob("main.csv.tmp*"))


def test_a_really_full_disk_while_the_list_is_written_is_one_line_and_the_list_untouched(publication: Path) -> None:
    """ENOSPC itself: subscribers/ on a 64 KB tmpfs, mounted in a user namespace of its own."""
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-Urm", "mount", "-t", "tmpfs", "tmpfs", str(publication)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (unshare -Urm mount is not allowed): no real full disk to test on")
    write(Path("many.csv"), "email,first_name\n" + "".join(f"p{i}@example.org,P{i}\n" for i in range(5_000)))
    before = MAIN_LIST.read_bytes()
    (publication / "before.csv").write_bytes(before)
    script = (
        "mount -t tmpfs -o size=64k tmpfs subscribers && cp before.csv subscribers/main.csv && "
        f"{shlex.quote(sys.executable)} -m newsletter subscribers import many.csv; "
        "echo \"rc=$?\"; cmp -s subscribers/main.csv before.csv && echo untouched; ls subscribers"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(["unshare", "-Urm", "sh", "-c", script], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.stderr == "error: subscribers/main.csv: cannot write it (No space left on device)\n"
    assert done.stdout.split() == ["rc=1", "untouched", "main.csv", "main.lock"]  # no temporary file left


@pytest.mark.parametrize("command", [("subscribers", "list"), ("subscribers", "export")])
def test_a_full_standard_output_is_one_line(publication: Path, command: tuple[str, ...]) -> None:
    write(MAIN_LIST, HEADER + "".join(f"p{i}@example.org,P{i},,subscribed,,,\n" for i in range(5_000)))
    with open("/dev/full", "wb") as full:
        done = newsletter_process(*command, stdout=full)
    assert done.returncode == 1
    assert done.stderr == ("error: standard output: cannot write to it (No space left on device); "
                           "the output is incomplete\n")


def test_export_to_a_link_to_a_full_device_is_one_line_and_the_link_stays(publication: Path) -> None:
    Path("out.csv").symlink_to("/dev/full")
    result = run("subscribers", "export", "-o", "out.csv")
    assert result.exit_code == 1
    assert result.stderr == "error: out.csv: cannot write it (No space left on device)\n"
    assert os.readlink("out.csv") == "/dev/full"


# -- links, FIFOs and devices (item 10) -------------------------------------------------

def test_a_linked_list_is_written_through_the_link(publication: Path) -> None:
    """subscribers/main.csv → a file elsewhere: the real list changes, the link stays a link."""
    real = publication / "synced" / "readers.csv"
    real.parent.mkdir()
    MAIN_LIST.rename(real)
    MAIN_LIST.symlink_to(Path("..") / "synced" / "readers.csv")
    result = run("subscribers", "remove", "ada.lovelace@example.org")
    assert result.exit_code == 0, result.output
    assert MAIN_LIST.is_symlink()
    assert rows(real)["ada.lovelace@example.org"]["status"] == "unsubscribed"
    assert not list(real.parent.glob("readers.csv.tmp*")) and not list(MAIN_LIST.parent.glob("*.tmp*"))


def test_a_write_through_a_link_puts_its_temporary_file_beside_the_real_list(publication: Path) -> None:
    """Atomic beside the real file: the rename never crosses folders (or file systems)."""
    real = publication / "synced" / "readers.csv"
    real.parent.mkdir()
    MAIN_LIST.rename(real)
    MAIN_LIST.symlink_to(real)
    marker = publication / "paused"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen([sys.executable, "-m", "tests.paused_writer", str(marker), "subscribers", "add",
                               "new@example.org"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not marker.exists():  # the writer pauses just before its rename
            assert writer.poll() is None, writer.communicate()
            time.sleep(0.01)
        assert [p.parent for p in publication.rglob("*.tmp*")] == [real.parent]
    finally:
        marker.unlink(missing_ok=True)
        out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert "new@example.org" in rows(real) and MAIN_LIST.is_symlink()


def test_export_to_a_link_writes_the_file_it_names(publication: Path) -> None:
    target = publication / "exports" / "members.csv"
    target.parent.mkdir()
    target.write_text("old\n")
    Path("latest.csv").symlink_to(target)
    result = run("subscribers", "export", "-o", "latest.csv")
    assert result.exit_code == 0, result.output
    assert Path("latest.csv").is_symlink()
    assert target.read_text(encoding="utf-8-sig").startswith("email,first_name")


def test_export_to_a_fifo_writes_into_it_and_the_fifo_stays(publication: Path) -> None:
    fifo = publication / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = run("subscribers", "export", "-o", "pipe")
    reader.join(timeout=60)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert received and received[0].decode("utf-8-sig").startswith("email,first_name")


def test_export_to_dev_stdout_writes_to_standard_output(publication: Path) -> None:
    """`-o /dev/stdout` is the process's output, written directly; /dev/stdout stays what it is."""
    was_link = os.path.islink("/dev/stdout")
    done = newsletter_process("subscribers", "export", "-o", "/dev/stdout")
    assert done.returncode == 0, done.stderr
    assert done.stdout.lstrip("\ufeff").startswith("email,first_name")
    assert "ada.lovelace@example.org" in done.stdout
    assert "exported" not in done.stdout and done.stderr == "exported 7 rows from subscribers/main.csv into /dev/stdout\n"
    assert os.path.islink("/dev/stdout") == was_link
