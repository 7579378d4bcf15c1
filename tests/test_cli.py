"""The editor's commands before sending: init, build, check, preview, and their errors."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from newsletter.cli import cli, real_terminal
from tests.helpers import article, assert_one_line_error, run, update_config, write_issue


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield prefix + (name,), command
        if isinstance(command, click.Group):
            yield from all_commands(command, prefix + (name,))


@pytest.mark.parametrize("path", [p for p, _ in all_commands(cli)], ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = run(*path, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output and f"newsletter {' '.join(path)}" in result.output


@pytest.mark.parametrize("path", [()] + [p for p, c in all_commands(cli) if isinstance(c, click.Group)],
                         ids=lambda p: " ".join(("newsletter", *p)))
def test_every_command_is_listed_with_its_whole_summary(path: tuple[str, ...]) -> None:
    """A group's --help lists each command with its summary on one line of 80, never cut with '...'."""
    result = CliRunner().invoke(cli, [*path, "--help"], terminal_width=80, catch_exceptions=False)
    group = cli
    for name in path:
        group = group.commands[name]
    listing = result.output.split("Commands:\n", 1)[1].splitlines()
    assert len(listing) == len(group.commands), listing  # one line each: nothing wrapped
    for line, (name, command) in zip(listing, sorted(group.commands.items()), strict=True):
        summary = (command.help or "").split("\n\n")[0].strip()
        assert line.split() == [name, *summary.split()], line
        assert len(line) <= 80 and not line.endswith("...")


def test_build_writes_both_parts_and_prints_their_sizes(publication: Path) -> None:
    result = run("build", "issue-1")
    assert result.exit_code == 0, result.output
    html = publication / "build" / "issue-1" / "email.html"
    text = publication / "build" / "issue-1" / "email.txt"
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert "WINTER READINGS" in text.read_text(encoding="utf-8")
    assert re.search(r"build/issue-1/email\.html\s+\d+\.\d KB", result.output)
    assert re.search(r"build/issue-1/email\.txt\s+\d+\.\d KB", result.output)


def test_build_works_from_a_subfolder(publication: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(publication / "issues" / "issue-1")
    assert run("build", "issue-1").exit_code == 0
    assert (publication / "build" / "issue-1" / "email.html").is_file()


def test_the_commands_process_makes_no_full_garbage_collection_in_a_cold_build(publication: Path) -> None:
    """A command's process collects cycles after 20,000 new objects rather than 700: a cold build
    (15 ms less) no longer passes over everything its imports made, and writes its email as ever."""
    import subprocess
    import sys

    probe = ("import atexit, gc; atexit.register(lambda: print('full passes', gc.get_stats()[2]['collections'])); "
             "from newsletter.cli import main; main()")
    built = subprocess.run([sys.executable, "-c", probe, "build", "issue-1"], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    assert built.stdout.splitlines()[-1] == "full passes 0"
    assert (publication / "build" / "issue-1" / "email.html").is_file()


def test_check_passes_the_sample_issue(publication: Path) -> None:
    result = run("check", "issue-1")
    assert result.exit_code == 0
    # The sample runs its own unsubscribe page: the one warning says those unsubscribes must come back.
    assert result.stderr.startswith("warning: unsubscribe_url is a page of your own: its unsubscribes must come back")
    assert "issue-1: no errors, 1 warning" in result.output
    assert not (publication / "build").exists(), "check writes nothing"


def test_check_warns_but_passes(publication: Path) -> None:
    folder = write_issue(publication, "warn", {
        "a.md": article("Old links", "See [the archive](http://archive.example.org/) and ![](pic.png)."),
    }, subject="A subject line that goes on and on well past what any inbox will show in its list view", preheader="")
    (folder / "pic.png").write_bytes((publication / "issues" / "issue-1" / "towpath.png").read_bytes())
    result = run("check", "warn")
    assert result.exit_code == 0
    warnings = result.stderr
    assert "http://archive.example.org/ is an http:// link" in warnings
    assert "pic.png has no alt text" in warnings
    assert "the subject is 86 characters" in warnings
    assert "no preheader" in warnings
    assert "unsubscribe_url is a page of your own" in warnings
    assert "5 warnings" in result.output


def test_a_missing_image_is_an_error(publication: Path) -> None:
    """An email with a broken image cannot be mended once sent: check fails, build refuses."""
    write_issue(publication, "gone", {"a.md": article("Gone", "![The weir in flood](weir.jpg)")})
    result = run("check", "gone")
    assert result.exit_code == 1
    assert "error: issues/gone/a.md:4: image weir.jpg does not exist (issues/gone/weir.jpg)" in result.stderr
    assert_one_line_error(run("build", "gone"), "gone has 1 error", "image weir.jpg does not exist")


def test_check_warns_when_gmail_would_clip(publication: Path) -> None:
    long_body = "\n\n".join(f"Paragraph {i}: " + "words and more words " * 40 for i in range(150))
    write_issue(publication, "long", {"a.md": article("Long", long_body)})
    result = run("check", "long")
    assert result.exit_code == 0
    assert "Gmail clips emails over 102 KB" in result.stderr


def test_check_and_build_refuse_an_email_without_unsubscribe_link(publication: Path) -> None:
    (publication / "templates" / "footer.html").write_text("<p>{{ publication.postal_address }}</p>", encoding="utf-8")
    result = run("check", "issue-1")
    assert result.exit_code == 1
    assert "error: the HTML part has no unsubscribe link" in result.stderr
    build = run("build", "issue-1")
    assert_one_line_error(build, "issue-1 has 1 error", "no unsubscribe link")
    assert not (publication / "build" / "issue-1" / "email.html").exists()


def test_check_refuses_an_email_without_postal_address(publication: Path) -> None:
    (publication / "templates" / "footer.html").write_text('<a href="{{ unsubscribe_url }}">Unsubscribe</a>', encoding="utf-8")
    result = run("check", "issue-1")
    assert result.exit_code == 1
    assert "postal address" in result.stderr


@pytest.mark.parametrize("command", ["check", "build", "preview"])
def test_a_missing_issue_names_the_issues_there(publication: Path, command: str) -> None:
    result = run(command, "issue-99", *(["--no-open"] if command == "preview" else []))
    assert result.exit_code == 1
    assert "error: issues/issue-99/issue.yaml: no such issue 'issue-99'" in result.stderr
    assert "(issues here: issue-1)" in result.stderr
    assert "Traceback" not in result.output


def test_missing_subject(publication: Path) -> None:
    folder = write_issue(publication, "nosubject", {"a.md": article("A")}, subject="")
    assert_one_line_error(run("build", "nosubject"), "issues/nosubject/issue.yaml:", "`subject` is required")
    assert folder.is_dir()


def test_invalid_yaml_in_issue_names_file_and_line(publication: Path) -> None:
    folder = write_issue(publication, "badyaml", {"a.md": article("A")})
    (folder / "issue.yaml").write_text("subject: Fine\npreheader: [unclosed\n", encoding="utf-8")
    assert_one_line_error(run("build", "badyaml"), "issues/badyaml/issue.yaml:2", "invalid YAML",
                          "the [ opened on line 2 is never closed")


@pytest.mark.parametrize("content, at, fragment", [
    ("---\ntitle: Fine\nauthor: : :\n  - x\n---\nBody\n", "a.md:", "invalid YAML"),
    ("---\nauthor: Someone\n---\nBody\n", "a.md:2", "`title` is required"),
    ("Battle of the Bands\n\nby Someone\n", "a.md:1", "front matter"),
], ids=["invalid front matter", "missing title", "no front matter"])
def test_a_bad_article_names_its_file_and_line(publication: Path, content: str, at: str, fragment: str) -> None:
    folder = write_issue(publication, "bad", {})
    (folder / "a.md").write_text(content, encoding="utf-8")
    assert_one_line_error(run("build", "bad"), f"issues/bad/{at}", fragment)


def test_listed_article_that_does_not_exist(publication: Path) -> None:
    write_issue(publication, "missing", {"a.md": article("A")}, articles=["a.md", "b.md"])
    assert_one_line_error(run("build", "missing"), "issues/missing/issue.yaml:", "article 'b.md' does not exist")
    check = run("check", "missing")
    assert check.exit_code == 1 and "article 'b.md' does not exist" in check.stderr


def test_articles_default_to_every_markdown_file_by_name(publication: Path) -> None:
    write_issue(publication, "auto", {"b.md": article("Second"), "a.md": article("First")})
    assert run("build", "auto").exit_code == 0
    text = (publication / "build" / "auto" / "email.txt").read_text(encoding="utf-8")
    assert text.index("FIRST") < text.index("SECOND")


def test_unknown_template_variable_names_template_and_line(publication: Path) -> None:
    (publication / "templates" / "header.html").write_text("<h1>{{ publication.name }}</h1>\n<p>{{ issue.editor }}</p>\n", encoding="utf-8")
    assert_one_line_error(run("build", "issue-1"), "templates/header.html:2", "editor")


def test_template_syntax_error_names_template_and_line(publication: Path) -> None:
    (publication / "templates" / "article.html").write_text("<h2>{{ article.title }</h2>\n", encoding="utf-8")
    assert_one_line_error(run("build", "issue-1"), "templates/article.html:1")


def test_testing_a_merge_field_in_a_template_explains_itself(publication: Path) -> None:
    (publication / "templates" / "header.html").write_text(
        "<h1>{{ publication.name }}</h1>{% if subscriber.first_name %}Hi{% endif %}", encoding="utf-8")
    assert_one_line_error(run("build", "issue-1"), "templates/header.html:1", "default(")


def test_no_publication_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(run("build", "issue-1"), "no newsletter.yaml", "newsletter init")


def test_missing_required_config_key(publication: Path) -> None:
    update_config(publication, postal_address=None)
    assert_one_line_error(run("build", "issue-1"), "newsletter.yaml", "missing required key postal_address")


def test_invalid_config_yaml_names_the_line(publication: Path) -> None:
    path = publication / "newsletter.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "sendgrid: [\n", encoding="utf-8")
    assert_one_line_error(run("check", "issue-1"), "newsletter.yaml:", "invalid YAML")


def test_unknown_config_key_warns(publication: Path) -> None:
    update_config(publication, colour="blue")
    result = run("check", "issue-1")
    assert result.exit_code == 0
    assert re.search(r"warning: newsletter.yaml:\d+: unknown key 'colour' is ignored", result.stderr)


def test_preview_writes_a_page_with_both_widths_text_and_checks(publication: Path) -> None:
    result = run("preview", "issue-1", "--no-open")
    assert result.exit_code == 0
    page = publication / "build" / "issue-1" / "preview.html"
    assert result.output.strip() == "build/issue-1/preview.html"
    content = page.read_text(encoding="utf-8")
    assert "width:600px" in content and "width:375px" in content
    assert "WINTER READINGS AT THE CORN EXCHANGE" in content
    assert "No errors or warnings." in content
    assert "Hello Ada," in content, "merge fields filled from the list's first subscriber"
    assert "[%" not in content


def test_preview_opens_the_browser(publication: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    monkeypatch.setenv("DISPLAY", ":99")
    browser = replace(real_terminal(), launch=lambda url: opened.append(url) or 0)
    result = run("preview", "issue-1", terminal=browser)
    assert result.exit_code == 0
    assert opened == [str(publication / "build" / "issue-1" / "preview.html")]


def test_init_creates_a_publication_that_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("init", "letters")
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(tmp_path / "letters")
    assert run("check", "issue-1").exit_code == 0
    assert run("build", "issue-1").exit_code == 0
    assert "subscribers/*.csv" in (tmp_path / "letters" / ".gitignore").read_text()
    meta = (tmp_path / "letters" / "issues" / "issue-1" / "issue.yaml").read_text(encoding="utf-8")
    assert f"date: {dt.date.today()}" in meta
    created = run("new")  # the editor's next step goes on from the first issue
    assert created.exit_code == 0 and "issues/issue-2/issue.yaml" in created.output


def test_a_first_send_from_a_new_publication_names_everything_in_its_way_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Placeholders, the example issue's draft line, no unsubscribe group, no key: one run says all
    of them (before asking, or saying there is no terminal to ask on)."""
    monkeypatch.chdir(tmp_path)
    assert run("init", "letters").exit_code == 0
    monkeypatch.chdir(tmp_path / "letters")
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    result = run("send", "issue-1")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    said = " | ".join(lines)
    for blocker in ("from newsletter@example.org is a placeholder", "base_url https://example.org",
                    "postal_address 'My Newsletter, 1 Example Street", "issue-1 is a draft",
                    "no way to unsubscribe", "SENDGRID_API_KEY is not set"):
        assert blocker in said, (blocker, lines)
    assert all(line.startswith("error: ") for line in lines), lines
    assert "no terminal" not in said


def test_init_refuses_an_existing_publication(publication: Path) -> None:
    assert_one_line_error(run("init", str(publication)), "newsletter.yaml already exists")


def test_usage_errors_exit_2() -> None:
    assert run("build").exit_code == 2


def test_check_warns_about_a_merge_field_that_is_no_column(publication: Path) -> None:
    (publication / "templates" / "header.html").write_text(
        "<h1>{{ publication.name }}</h1><p>Dear {{ subscriber.frist_name | default('reader') }}</p>", encoding="utf-8")
    result = run("check", "issue-1")
    assert result.exit_code == 0
    assert "warning: templates/header.html:1: subscriber.frist_name is not a column of the subscriber list" in result.stderr
    assert "every recipient gets its fallback 'reader'" in result.stderr
    assert "subscriber.first_name is not" not in result.stderr


def test_check_refuses_a_merge_field_changed_by_a_filter(publication: Path) -> None:
    (publication / "templates" / "header.html").write_text(
        "<h1>{{ publication.name }}</h1><p>HI {{ subscriber.first_name | upper }}</p>", encoding="utf-8")
    result = run("check", "issue-1")
    assert result.exit_code == 1
    assert "broken merge field [%HTML:FIRST_NAME%]" in result.stderr


@pytest.mark.parametrize("name", ["issues/issue-1/..", "../pub/issues/issue-1", "/etc", "issue-1/..", ".."])
def test_an_issue_name_that_leads_outside_issues_is_refused(publication: Path, name: str) -> None:
    result = run("build", name)
    assert_one_line_error(result, "no such issue")
    assert not (publication / "email.html").exists()


def test_an_issue_may_be_named_by_its_path(publication: Path) -> None:
    assert run("build", "issues/issue-1/").exit_code == 0
    assert (publication / "build" / "issue-1" / "email.html").is_file()


def test_an_article_outside_the_issue_folder_is_refused(publication: Path) -> None:
    write_issue(publication, "escape", {"a.md": article("A")}, articles=["a.md", "../issue-1/01-editorial.md"])
    assert_one_line_error(run("build", "escape"), "is outside the issue's folder")


def test_an_article_in_a_subfolder_links_its_images_from_there(publication: Path) -> None:
    folder = write_issue(publication, "sub", {}, articles=["pics/b.md"])
    (folder / "pics").mkdir()
    (folder / "pics" / "b.md").write_text(article("B", "![A picture](small.png)"), encoding="utf-8")
    (folder / "pics" / "small.png").write_bytes((publication / "issues" / "issue-1" / "towpath.png").read_bytes())
    result = run("build", "sub")
    assert result.exit_code == 0, result.output
    assert "image small.png is not beside" not in result.stderr
    html = (publication / "build" / "sub" / "email.html").read_text(encoding="utf-8")
    assert 'src="https://riverside-writers-circle.internal/issues/sub/pics/small.png"' in html


@pytest.mark.parametrize("where_, text", [
    ("issue.yaml", "subject: S\ndate: 2026-02-30\n"),
    ("a.md", "---\ntitle: T\nsummary: 2026-02-30\n---\nBody\n"),
])
def test_an_impossible_date_is_one_line(publication: Path, where_: str, text: str) -> None:
    folder = write_issue(publication, "baddate", {"a.md": article("A")})
    (folder / where_).write_text(text, encoding="utf-8")
    assert_one_line_error(run("build", "baddate"), f"issues/baddate/{where_}", "day is out of range")


def test_a_folder_named_like_an_article_is_not_an_article(publication: Path) -> None:
    folder = write_issue(publication, "dirs", {"a.md": article("A")})
    (folder / "drafts.md").mkdir()
    assert run("build", "dirs").exit_code == 0


def test_a_template_that_fails_while_rendering_names_its_line(publication: Path) -> None:
    (publication / "templates" / "header.html").write_text("<h1>{{ publication.name }}</h1>\n{{ 1 / 0 }}\n", encoding="utf-8")
    assert_one_line_error(run("build", "issue-1"), "templates/header.html:2", "ZeroDivisionError")


def test_a_numeric_title_is_text(publication: Path) -> None:
    folder = write_issue(publication, "num", {})
    (folder / "a.md").write_text("---\ntitle: 1984\n---\nBody\n", encoding="utf-8")
    assert run("build", "num").exit_code == 0
    assert "<h2" in (publication / "build" / "num" / "email.html").read_text(encoding="utf-8")


def test_a_windows_1252_article_names_its_line(publication: Path) -> None:
    folder = write_issue(publication, "cp", {})
    (folder / "a.md").write_bytes("---\ntitle: Caf\u00e9\n---\nok\n".encode("cp1252"))
    assert_one_line_error(run("build", "cp"), "issues/cp/a.md:2", "save the file as UTF-8")


def test_bare_words_that_look_like_domains_stay_words(publication: Path) -> None:
    write_issue(publication, "links", {"a.md": article("L", "Edit README.md, read Guardian.co.uk, or www.example.org/x.")})
    assert run("build", "links").exit_code == 0
    html = (publication / "build" / "links" / "email.html").read_text(encoding="utf-8")
    assert "http://README.md" not in html and "Guardian.co.uk</a>" not in html
    assert 'href="https://www.example.org/x"' in html
