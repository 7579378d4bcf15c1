"""Messages a newcomer met (issue 16, §4): each is one line that says what to do, not only
what the parser or the counter saw."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.account_helpers import account_spec, spec_kept
from tests.conftest import REPO
from tests.helpers import newsletter_process, run
from tests.send_helpers import at, files_under, generated, write_list
from tests.sendgrid_double import Accept, Respond
from tests.terminal_double import TerminalDouble


def one_error_line(result) -> str:
    """The single `error:` line of a run that exited 1, without a traceback."""
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
    return result.stderr.strip()


def replace_line(path: Path, starts: str, new: str) -> int:
    """Replace the line of `path` starting with `starts` by `new` (may be several lines); its number."""
    lines = path.read_text(encoding="utf-8").split("\n")
    number = next(i for i, line in enumerate(lines) if line.startswith(starts))
    lines[number] = new
    path.write_text("\n".join(lines), encoding="utf-8")
    return number + 1


# -- YAML mistakes: the parser's words and what to do ---------------------------------------

def test_an_unquoted_colon_in_an_article_title_says_put_the_title_in_quotes(publication: Path) -> None:
    article = publication / "issues" / "issue-1" / "01-editorial.md"
    line = replace_line(article, "title:", "title: Notes: winter")
    assert one_error_line(run("check", "issue-1")) == (
        f"error: issues/issue-1/01-editorial.md:{line}: invalid YAML: mapping values are not allowed here; "
        "the title has a colon followed by a space, which YAML reads as a new key: "
        'put the title in quotes: title: "Notes: winter"')


def test_an_unquoted_colon_in_the_subject_says_so_to_add_too(publication: Path, tmp_path: Path) -> None:
    meta = publication / "issues" / "issue-1" / "issue.yaml"
    line = replace_line(meta, "subject:", "subject: Winter: readings")
    submission = tmp_path / "letter.txt"
    submission.write_text("A letter\n\nSome text.\n", encoding="utf-8")
    assert one_error_line(run("add", "issue-1", str(submission))) == (
        f"error: issues/issue-1/issue.yaml:{line}: invalid YAML: mapping values are not allowed here; "
        "the subject has a colon followed by a space, which YAML reads as a new key: "
        'put the subject in quotes: subject: "Winter: readings"')


@pytest.mark.parametrize("starts, written, says", [
    ("base_url:", "  base_url: https://riverside-writers-circle.internal/issues",
     "mapping values are not allowed here; line {n} is indented more than line {above} above it, so it reads as "
     "part of that line's value: line it up with line {above} (`postal_address:`)"),
    ("  name: Riverside", " name: Riverside Writers' Circle",
     "expected <block end>, but found '<block mapping start>'; line {n} starts 1 space in, which lines up with "
     "no line above it: line it up with line {above} (`email:`, 2 spaces in) or line {two_above} (`from:`, "
     "0 spaces in)"),
    ("  timeout:", "\ttimeout: 30",
     "found character '\\t' that cannot start any token; this line is indented with a tab: YAML indents with "
     "spaces only; replace the tab with spaces"),
], ids=["indented too far", "between two levels", "a tab"])
def test_bad_indentation_says_which_line_to_line_up_with(publication: Path, starts: str, written: str,
                                                         says: str) -> None:
    line = replace_line(publication / "newsletter.yaml", starts, written)
    assert one_error_line(run("check", "issue-1")) == (
        f"error: newsletter.yaml:{line}: invalid YAML: " + says.format(n=line, above=line - 1, two_above=line - 2))


@pytest.mark.parametrize("written, says", [
    ("subject: 'It's winter'", "the subject starts with ', so YAML ends it at the next ', and more text follows: "
                               "put the whole subject in quotes: subject: \"It's winter\""),
    ("subject: @home this winter", "YAML gives a value starting with @ a meaning of its own: "
                                   'put the subject in quotes: subject: "@home this winter"'),
    ("subject: [Winter] readings", "the subject starts with [, so YAML ends it at the next ], and more text "
                                   'follows: put the whole subject in quotes: subject: "[Winter] readings"'),
])
def test_a_subject_that_needs_quotes_says_how_to_write_it(publication: Path, written: str, says: str) -> None:
    line = replace_line(publication / "issues" / "issue-1" / "issue.yaml", "subject:", written)
    error = one_error_line(run("check", "issue-1"))
    assert error.startswith(f"error: issues/issue-1/issue.yaml:{line}: invalid YAML: ") and error.endswith(says)


# -- misspelt keys: the key that was meant -------------------------------------------------

def test_a_misspelt_required_key_in_newsletter_yaml_says_which_was_meant(publication: Path) -> None:
    config = publication / "newsletter.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("postal_address:", "postal_adress:"), encoding="utf-8")
    line = replace_line(config, "postal_adress:", "postal_adress: 14 Mill Lane, Oxbury")
    result = run("check", "issue-1")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"warning: newsletter.yaml:{line}: unknown key 'postal_adress' is ignored (did you mean postal_address?)",
        f"error: newsletter.yaml:{line}: missing required key postal_address; 'postal_adress' on line {line} "
        "is ignored: did you mean postal_address?",
    ]


@pytest.mark.parametrize("file, starts, written, says", [
    ("newsletter.yaml", "  timeout:", "  timout: 30",
     "unknown key sendgrid.timout is ignored (did you mean sendgrid.timeout?)"),
    ("issues/issue-1/01-editorial.md", "author:", "autor: Maya Okonkwo",
     "unknown front matter key 'autor' is ignored: did you mean author?"),
    ("issues/issue-1/issue.yaml", "preheader:", "preheader_text: Three pieces from the circle.",
     "unknown key 'preheader_text' is ignored: did you mean preheader?"),
], ids=["sendgrid setting", "front matter", "issue.yaml"])
def test_a_misspelt_optional_key_is_a_warning_naming_the_key_meant(publication: Path, file: str, starts: str,
                                                                   written: str, says: str) -> None:
    line = replace_line(publication / file, starts, written)
    result = run("check", "issue-1")
    assert result.exit_code == 0, result.output
    assert f"warning: {file}:{line}: {says}\n" in result.stderr, result.stderr


def test_a_misspelt_title_in_front_matter_is_named_in_the_error(publication: Path) -> None:
    line = replace_line(publication / "issues" / "issue-1" / "01-editorial.md", "title:", "titel: Winter readings")
    assert one_error_line(run("check", "issue-1")) == (
        f"error: issues/issue-1/01-editorial.md:{line}: `title` is required in the front matter; "
        "'titel' here is ignored: did you mean title?")


def test_a_misspelt_subject_is_named_in_the_error(publication: Path) -> None:
    subject = replace_line(publication / "issues" / "issue-1" / "issue.yaml", "subject:", "subjet: Winter readings")
    assert one_error_line(run("check", "issue-1")) == (
        f"error: issues/issue-1/issue.yaml:{subject}: `subject` is required: the email's subject line; "
        "'subjet' here is ignored: did you mean subject?")


# -- a closed pipe: `newsletter subscribers export | head` ----------------------------------

@pytest.mark.parametrize("command", [("subscribers", "export"), ("subscribers", "list")])
def test_a_list_piped_into_head_ends_quietly(publication: Path, command: tuple[str, ...]) -> None:
    """20,000 rows are far more than a pipe holds: `head -1` closes it while the list is written."""
    write_list(publication, generated(20_000))
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    writer = subprocess.Popen([sys.executable, "-m", "newsletter", *command], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env)
    assert writer.stdout is not None and writer.stderr is not None
    head = subprocess.run(["head", "-1"], stdin=writer.stdout, capture_output=True, timeout=120)
    writer.stdout.close()
    stderr = writer.stderr.read()
    assert writer.wait(timeout=120) == 141  # as a shell reports `cat` stopped by the closed pipe
    assert stderr == b""
    assert head.stdout.count(b"\n") == 1


def test_any_command_whose_reader_went_away_ends_quietly(publication: Path) -> None:
    """Output small enough to sit in the buffer until exit: the final flush meets the closed pipe."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = newsletter_process("status", "issue-1", stdout=write_end)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (141, "")


# -- a mistyped --tag ----------------------------------------------------------------------

TAGGED = [["ann@example.org", "Ann", "Lee", "subscribed", "members"],
          ["bo@example.org", "Bo", "Ng", "subscribed", "members;writers"],
          ["cy@example.org", "Cy", "Po", "unsubscribed", "former"]]


@pytest.mark.parametrize("options", [("--yes",), ("--dry-run",)], ids=["send", "dry run"])
def test_a_mistyped_send_tag_is_an_error_naming_the_tags_there(publication: Path, sendgrid, options) -> None:
    write_list(publication, TAGGED)
    result = run("send", "issue-1", "--tag", "member", *options)
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1] == (
        "error: no subscribed address has tag member (tags in this list: members, writers)")
    assert "Dry run of" not in result.output
    assert files_under(publication / "build" / "issue-1" / "dry-run") == []  # no body written
    assert sendgrid.mail_requests == []


def test_a_mistyped_tag_is_refused_before_the_question(publication: Path, sendgrid) -> None:
    write_list(publication, TAGGED)
    result = run("send", "issue-1", "--tag", "member", terminal=TerminalDouble(can_ask=True))
    assert result.exit_code == 1, result.output
    assert "Send it now?" not in result.output
    assert result.stderr.splitlines()[-1] == (
        "error: no subscribed address has tag member (tags in this list: members, writers)")


@pytest.mark.parametrize("command", ["list", "export"])
def test_a_mistyped_list_or_export_tag_is_an_error(publication: Path, command: str) -> None:
    write_list(publication, TAGGED)
    result = run("subscribers", command, "--tag", "member")
    assert result.exit_code == 1
    assert result.stderr == "error: no address has tag member (tags in this list: former, members, writers)\n"


def test_a_real_tag_with_no_row_of_the_status_asked_is_an_empty_listing(publication: Path) -> None:
    write_list(publication, TAGGED)
    result = run("subscribers", "list", "--tag", "former", "--status", "subscribed")
    assert (result.exit_code, result.output) == (0, "")


# -- a send stopped part way says so in its headline (Ctrl-C: tests/test_send_faults.py) ---------

def test_a_send_refused_part_way_says_stopped_in_its_headline(publication: Path, sendgrid) -> None:
    write_list(publication, generated(2500))
    sendgrid.script(Accept(), Respond(400, body={"errors": [
        {"field": "personalizations.2.to", "message": "Does not contain a valid address.", "help": None}]}))
    result = run("send", "issue-1", "--yes", "--concurrency", "1")
    assert result.exit_code == 1
    assert re.search(r"^Stopped issue-1 after \d+\.\d s: 1,000 sent, 500 not yet \(", result.stdout, re.M), \
        result.stdout
    assert "Sent issue-1" not in result.stdout


# -- rows that are not addresses are named -------------------------------------------------

@pytest.mark.parametrize("options", [("--yes",), ("--dry-run",)], ids=["send", "dry run"])
def test_rows_that_are_not_addresses_are_named_with_their_line(publication: Path, sendgrid, options) -> None:
    bad = ["ann at example.org", "bo@", ""] + [f"reader{i}.example.org" for i in range(10)]
    write_list(publication, generated(2) + [[address, "", "", "subscribed"] for address in bad])
    result = run("send", "issue-1", *options)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    start = lines.index("Not everyone selected got it: 13 rows are not an email address; fix them in list main "
                        "and run `newsletter send issue-1` again:")
    assert lines[start + 1:start + 12] == [
        "  subscribers/main.csv:4: 'ann at example.org'", "  subscribers/main.csv:5: 'bo@'",
        "  subscribers/main.csv:6: (no address)",
        *[f"  subscribers/main.csv:{7 + i}: 'reader{i}.example.org'" for i in range(7)],
        "  … and 3 more"]


# -- add after a scheduled send ------------------------------------------------------------

@pytest.mark.usefixtures(account_spec.__name__, spec_kept.__name__)
class TestAddAfterAScheduledSend:
    def letter(self) -> str:
        Path("letter.txt").write_text("A late letter\n\nby Ann Lee\n\nSome text.\n", encoding="utf-8")
        return "letter.txt"

    def test_add_after_the_scheduled_send_was_cancelled_says_nothing_was_sent(
            self, publication: Path, sendgrid) -> None:
        write_list(publication, generated(3))
        assert run("send", "issue-1", "--yes", "--at", at(hours=2)).exit_code == 0
        assert run("cancel", "issue-1", "--yes").exit_code == 0
        result = run("add", "issue-1", self.letter())
        assert result.exit_code == 0, result.output
        assert result.stderr == "", result.stderr  # it said "issue-1 has been sent already"

    def test_add_while_a_send_is_scheduled_says_how_to_include_the_article(
            self, publication: Path, sendgrid) -> None:
        write_list(publication, generated(3))
        assert run("send", "issue-1", "--yes", "--at", at(hours=2)).exit_code == 0
        result = run("add", "issue-1", self.letter())
        assert result.exit_code == 0, result.output
        assert re.search(r"^warning: sent/issue-1\.sqlite: issue-1 is scheduled for .+ without this article; to "
                         r"include it, `newsletter cancel issue-1` and send it again$", result.stderr, re.M), \
            result.stderr
