"""A publication, `sent/` or `build/` that cannot be written (a read-only mount), and a
full disk: one line naming the folder or file, never a traceback, never a file left half
written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsletter.render import PACKAGE_TEMPLATES
from tests.helpers import run
from tests.mounts import full_disk, read_only
from tests.sendgrid_double import SendGridDouble

COMMANDS = [("send", "issue-1", "--dry-run"), ("send", "issue-1", "--yes", "--no-web-check"),
            ("status", "issue-1"), ("site",), ("new", "issue-9"), ("templates", "eject")]
REFUSED = re.compile(r"error: (.+)/: cannot write in this folder \((Read-only file system|Operation not permitted)\), "
                     r"so \S+ was not written(; .*)?")  # EROFS from a read-only mount, EPERM from chattr +i


@pytest.mark.parametrize("folder", ["", "sent", "build"], ids=["publication", "sent", "build"])
def test_a_read_only_folder_is_one_line_naming_it(publication: Path, sendgrid: SendGridDouble, folder: str) -> None:
    """Each of these commands gave `OSError: [Errno 30] Read-only file system` as a traceback."""
    for ready in (("send", "issue-1", "--yes", "--no-web-check"), ("site",), ("send", "issue-1", "--dry-run")):
        assert run(*ready).exit_code == 0  # a ledger in sent/, a site and a dry run in build/
    with (publication / "subscribers" / "main.csv").open("a") as handle:  # someone to send to
        handle.write("new@example.org,New,,subscribed,,,\n")
    issue = publication / "issues" / "issue-1" / "issue.yaml"
    issue.write_text(issue.read_text().replace("preheader: ", "preheader: Now ", 1))  # a site to write
    frozen = publication / folder
    failed = []
    with read_only(frozen):
        for command in COMMANDS:
            result = run(*command)  # an exception would fail the test here, as a traceback
            if result.exit_code != 0:
                assert result.exit_code == 1, (command, result.output)
                [line] = result.stderr.splitlines()
                named = REFUSED.fullmatch(line)
                assert named, (command, line)
                assert (publication / named[1]).resolve().is_relative_to(frozen), (command, line)
                failed.append(command[:2])
    # What needs the folder is refused (a status too, while it cannot take the issue's lock).
    assert ("send", "issue-1") in failed
    assert (("site",) in failed) == (folder != "sent")


def test_templates_eject_on_a_full_disk_leaves_no_empty_template(publication: Path) -> None:
    """A copy stopped by a full disk left a 0-byte template, which blocked the next eject and failed check."""
    templates = publication / "templates"
    with full_disk(templates, size="256k"):  # room for every template, once emptied
        result = run("templates", "eject")
        assert result.exit_code == 1
        assert re.fullmatch(r"error: templates/[\w.-]+: cannot write it \(No space left on device\)\n", result.stderr)
        assert [p.name for p in templates.iterdir()] == [".filler"]
        (templates / ".filler").unlink()  # room again
        again = run("templates", "eject")
        assert again.exit_code == 0, again.output
        assert all((templates / p.name).read_bytes() == p.read_bytes() for p in PACKAGE_TEMPLATES.iterdir()
                   if p.is_file() and not p.name.startswith("."))
        assert run("check", "issue-1").exit_code == 0
