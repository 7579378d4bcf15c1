"""Messages that once left the editor guessing: each says what happened and what to do."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import run
from tests.send_helpers import generated, write_list
from tests.sendgrid_double import Respond, SendGridDouble
from tests.terminal_double import TerminalDouble


def test_a_dry_run_to_a_list_with_nobody_subscribed_says_so(publication: Path) -> None:
    write_list(publication, generated(2, status="unsubscribed"))
    result = run("send", "issue-1", "--dry-run")
    assert "Nothing to send: list main has no subscribed address" in result.output
    assert "would send" not in result.output


def test_status_of_an_issue_never_sent_says_not_sent_yet(publication: Path) -> None:
    result = run("status", "issue-1")
    assert result.exit_code == 0
    assert result.output.strip() == "issue-1: not sent yet"


def test_a_refused_send_reports_no_rate(publication: Path, sendgrid: SendGridDouble) -> None:
    write_list(publication, generated(3))
    sendgrid.script(Respond(401, body={"errors": [{"field": None, "message": "bad key"}]}))
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 1
    assert "Not sent: issue-1 in " in result.output and "(1 request)" in result.output
    assert "recipients/s" not in result.output


def test_a_dry_run_of_a_few_addresses_in_no_time_reports_no_rate(publication: Path) -> None:
    result = run("send", "issue-1", "--dry-run")
    assert result.exit_code == 0
    assert re.search(r"Dry run of issue-1 in 0\.\d s \(1 request\)", result.output), result.output


def test_sync_without_a_key_asks_for_read_access_to_suppressions(publication: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    result = run("subscribers", "sync")
    assert result.exit_code == 1
    assert "can read suppressions" in result.stderr and "send mail" not in result.stderr


def test_no_publication_names_the_real_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("check", "issue-1")
    assert result.exit_code == 1
    assert f"no newsletter.yaml in {tmp_path.resolve()} or any folder above it" in result.stderr


def test_init_inside_a_publication_is_refused_naming_it(publication: Path) -> None:
    result = run("init", "issues/nested")
    assert result.exit_code == 1
    assert f"is inside the publication in {publication.resolve()}" in result.stderr
    assert not (publication / "issues" / "nested").exists()


def test_init_beside_a_publication_works(publication: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(publication.parent)
    result = run("init", "second")
    assert result.exit_code == 0, result.output
    assert (publication.parent / "second" / "newsletter.yaml").is_file()


def test_check_warns_about_a_link_to_an_issue_that_does_not_exist(publication: Path) -> None:
    from tests.helpers import article, write_issue

    write_issue(publication, "issue-2", {
        "a.md": article("Back issues", "As [we said last time](../issue-1/) and [before](../issue-0/), "
                        "and in [the archive](../)."),
    })
    result = run("check", "issue-2")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "goes to issue" in line]
    assert len(warnings) == 1, result.stderr
    assert "/issue-0/ goes to issue issue-0, which is not in issues/" in warnings[0]


def test_templates_eject_copies_the_defaults_and_never_overwrites(publication: Path) -> None:
    from newsletter.render import PACKAGE_TEMPLATES

    (publication / "templates" / "footer.html").write_text("my footer", encoding="utf-8")
    result = run("templates", "eject")
    assert result.exit_code == 0, result.output
    assert "kept templates/footer.html" in result.output
    assert (publication / "templates" / "footer.html").read_text(encoding="utf-8") == "my footer"
    css = publication / "templates" / "email.css"
    assert css.read_bytes() == (PACKAGE_TEMPLATES / "email.css").read_bytes()
    assert "copied templates/email.css" in result.output

    again = run("templates", "eject", "email.css")
    assert again.exit_code == 1 and "templates/email.css exists already" in again.stderr
    unknown = run("templates", "eject", "emial.css")
    assert unknown.exit_code == 1 and "no default template emial.css: the defaults are " in unknown.stderr
    assert "email.html" in unknown.stderr


def test_an_ejected_template_is_the_one_rendered(publication: Path) -> None:
    assert run("templates", "eject", "email.txt").exit_code == 0
    ejected = publication / "templates" / "email.txt"
    ejected.write_text(ejected.read_text(encoding="utf-8").replace("{{ issue.subject", "EJECTED {{ issue.subject", 1),
                       encoding="utf-8")
    assert run("build", "issue-1").exit_code == 0
    assert "EJECTED" in (publication / "build" / "issue-1" / "email.txt").read_text(encoding="utf-8")


def test_a_long_refusal_keeps_its_advice_whole(publication: Path, sendgrid: SendGridDouble) -> None:
    """SendGrid's words are shortened on a long answer; what to do about it never is."""
    write_list(publication, generated(3))
    long_message = ("The from address does not match a verified Sender Identity. Mail cannot be sent until "
                    "this error is resolved. " * 6).strip()
    sendgrid.script(Respond(403, body={"errors": [{"field": "from", "message": long_message}]}))
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 1
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1, result.stderr
    assert "SendGrid refused the request (403: from: The from address does not match" in error[0]
    assert "…" in error[0] and long_message not in error[0]
    assert error[0].endswith("must be a verified sender (SendGrid > Settings > Sender Authentication)")


def test_a_draft_is_refused_by_a_real_send_but_not_by_a_dry_run_or_a_proof(
        publication: Path, sendgrid: SendGridDouble) -> None:
    meta = publication / "issues" / "issue-1" / "issue.yaml"
    meta.write_text(meta.read_text(encoding="utf-8") + "draft: true\n", encoding="utf-8")
    write_list(publication, generated(3, prefix="reader"))
    result = run("send", "issue-1", "--yes", "--no-web-check")
    assert result.exit_code == 1
    line = len(meta.read_text(encoding="utf-8").splitlines())
    assert f"error: issues/issue-1/issue.yaml:{line}: issue-1 is a draft (`draft: true`)" in result.stderr
    assert sendgrid.mail_requests == []
    dry = run("send", "issue-1", "--dry-run")
    assert dry.exit_code == 0
    assert (f"warning: issues/issue-1/issue.yaml:{line}: issue-1 is a draft (`draft: true`): a real send is "
            "refused until that line goes") in dry.stderr, "the dry run says what the real send will"
    proof = run("send", "issue-1", "--to", "editor@riverside-writers.org", "--yes")
    assert proof.exit_code == 0, proof.output
    assert len(sendgrid.mail_requests) == 1


@pytest.mark.parametrize("args, says", [
    (("check", "issue-1", "--frobnicate"), "error: No such option '--frobnicate' (see `newsletter check --help`)"),
    (("send",), "error: Missing argument 'ISSUE' (see `newsletter send --help`)"),
    (("subscribers", "list", "--status", "gone"), "see `newsletter subscribers list --help`"),
    (("frob",), "error: No such command 'frob' (see `newsletter --help`)"),
])
def test_a_usage_error_is_one_line_naming_the_help(publication: Path, args: tuple[str, ...], says: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and says in result.stderr
    assert "Usage:" not in result.stderr


def test_no_to_the_question_says_nothing_was_done(publication: Path, sendgrid: SendGridDouble) -> None:


    result = run("send", "issue-1", "--no-web-check", input="n\n",
                 terminal=TerminalDouble(can_ask=True))
    assert result.exit_code == 1
    assert "Aborted: nothing was done." in result.stderr
    assert sendgrid.mail_requests == []


@pytest.mark.parametrize("line, says", [
    ("subject: [a, b]", "issues/issue-1/issue.yaml:1: `subject` must be text"),
    ("date: 2026-13-45", "issues/issue-1/issue.yaml:3: 2026-13-45 is no such date (month must be in 1..12"),
])
def test_an_issue_yaml_value_of_the_wrong_kind_names_its_line(publication: Path, line: str, says: str) -> None:
    meta = publication / "issues" / "issue-1" / "issue.yaml"
    lines = meta.read_text(encoding="utf-8").splitlines()
    key = line.split(":")[0]
    meta.write_text("\n".join(line if old.startswith(f"{key}:") else old for old in lines) + "\n", encoding="utf-8")
    assert meta.read_text(encoding="utf-8").splitlines()[int(says.split(":")[1]) - 1] == line
    result = run("check", "issue-1")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {says}") and result.stderr.count("\n") == 1


def test_a_key_given_twice_is_a_warning_naming_both_lines(publication: Path) -> None:
    config = publication / "newsletter.yaml"
    lines = config.read_text(encoding="utf-8").splitlines()
    first = next(number for number, line in enumerate(lines, 1) if line.startswith("name:"))
    config.write_text("\n".join(lines) + "\nname: The Other Name\n", encoding="utf-8")
    result = run("check", "issue-1")
    assert result.exit_code == 0
    assert (f"warning: newsletter.yaml:{len(lines) + 1}: 'name' is given twice (also on line {first}): "
            "this later one is used") in result.stderr


def test_a_key_a_yaml_merge_also_gives_is_no_key_given_twice(publication: Path) -> None:
    """`<<:` merges a mapping's keys in unless the file gives them itself: the article's own author wins, unwarned."""
    article = publication / "issues" / "issue-1" / "01-editorial.md"
    article.write_text(article.read_text(encoding="utf-8").replace(
        "---\ntitle:", "---\n<<: {author: Merged In, summary: Merged too}\ntitle:", 1), encoding="utf-8")
    result = run("build", "issue-1")
    assert result.exit_code == 0 and "given twice" not in result.stderr, result.stderr
    text = (publication / "build" / "issue-1" / "email.txt").read_text(encoding="utf-8")
    assert "Maya Okonkwo, editor" in text and "Merged In" not in text


@pytest.mark.parametrize("date, says", [
    ("2026-02-30", "2026-02-30 is no such date (day is out of range for month)"),
    ("2026/02/03", "'2026/02/03' is not a date written YYYY-MM-DD"),
])
def test_new_with_an_impossible_date_says_which(publication: Path, date: str, says: str) -> None:
    result = run("new", "issue-9", "--date", date)
    assert result.exit_code == 2 and says in result.stderr
    assert not (publication / "issues" / "issue-9").exists()


def test_a_new_publication_can_be_dry_run_before_it_has_a_way_to_unsubscribe(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As `check` lets it: the dry run warns; only a real send is refused."""
    monkeypatch.chdir(tmp_path)
    assert run("init", "letters").exit_code == 0
    monkeypatch.chdir(tmp_path / "letters")
    write_list(tmp_path / "letters", generated(2))
    assert run("check", "issue-1").exit_code == 0
    result = run("send", "issue-1", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "warning: newsletter.yaml: no way to unsubscribe yet" in result.stderr
    assert "would send         2" in result.output
