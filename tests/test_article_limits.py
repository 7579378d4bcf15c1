"""Articles that would break the email in ways that hide the cause: nesting too deep for the
parsers, and links a mail client would not follow. Each is one `error:` line naming the
article and its line, from `check`, `build` and `send`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result

from tests.helpers import article, run, write_issue


def errors_of(result: Result) -> list[str]:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


# 50,000 deep, as the report had it: quotes, list markers; emphasis (`*****hi*****`) 5,000 deep,
# as far past the limit and lxml's 256 levels, in a tenth of markdown-it's time.
DEEP_BODIES = {
    "quotes": "> " * 50_000 + "hi\n",
    "list markers": "* " * 50_000 + "hi\n",
    "emphasis": "*" * 5_000 + "hi" + "*" * 5_000 + "\n",
    "indented lists": "\n".join("  " * level + "- item" for level in range(40)) + "\n",
}


@pytest.mark.parametrize("body", DEEP_BODIES.values(), ids=DEEP_BODIES.keys())
def test_markdown_nested_too_deep_is_blamed_on_the_article(publication: Path, body: str) -> None:
    write_issue(publication, "deep", {"a.md": article("Deep", "An opening line.\n\n" + body)})
    for command in (["check", "deep"], ["build", "deep"], ["send", "deep", "--dry-run"]):
        result = run(*command)
        assert result.exit_code == 1, result.output
        errors = errors_of(result)
        assert len(errors) == 1, result.stderr
        # The front matter is 3 lines, the opening line and a blank line 2: the deep part starts on line 6
        # (the indented list goes past the limit on its 12th item).
        assert errors[0].startswith("error: issues/deep/a.md:" + ("17" if "item" in body else "6")
                                    + ": the article is nested too deep"), errors[0]
        assert "postal address" not in result.stderr


def test_nesting_an_article_really_uses_is_rendered(publication: Path) -> None:
    lists = "\n".join("  " * level + f"- level {level}" for level in range(10))
    write_issue(publication, "nested", {"a.md": article("Nested", f"> > > A quote in a quote.\n\n{lists}\n\n"
                                                         "***Bold and emphasised.***\n")})
    result = run("build", "nested")
    assert result.exit_code == 0, result.output
    email = (publication / "build" / "nested" / "email.html").read_text(encoding="utf-8")
    assert "level 9" in email and "<strong>Bold and emphasised.</strong>" in email


UNSAFE = """\
Intro with [a fine link](https://example.org).

See [this page](javascript:alert(1)) and
![the plan](file:///home/writer/plan.png) too.

<vbscript:run()>

A [reference] here.

[reference]: javascript:void(0)
"""


def test_javascript_and_file_links_are_errors_naming_the_article_and_line(publication: Path) -> None:
    write_issue(publication, "unsafe", {"a.md": article("Unsafe", UNSAFE)})
    result = run("check", "unsafe")
    assert result.exit_code == 1, result.output
    # The front matter is 3 lines: the body's line 3 is the file's line 6.
    assert errors_of(result) == [
        "error: issues/unsafe/a.md:6: the link javascript:alert(1) is not made a link (only its text is shown): "
        "a javascript: address runs a script, which mail clients refuse and the web edition must not run; "
        "link to an https:// page",
        "error: issues/unsafe/a.md:7: the image file:///home/writer/plan.png is not shown (only its alt text is): "
        "a file: address is a file on the writer's own computer, which no reader can open; "
        "put the image beside the article and give its name",
        "error: issues/unsafe/a.md:9: the link vbscript:run() is not made a link (only its text is shown): "
        "a vbscript: address runs a script, which mail clients refuse and the web edition must not run; "
        "link to an https:// page",
        "error: issues/unsafe/a.md:13: the link javascript:void(0) is not made a link (only its text is shown): "
        "a javascript: address runs a script, which mail clients refuse and the web edition must not run; "
        "link to an https:// page",
    ]
    for command in (["build", "unsafe"], ["send", "unsafe", "--dry-run"]):
        refused = run(*command)
        assert refused.exit_code == 1, refused.output
        assert "issues/unsafe/a.md:6: the link javascript:alert(1)" in refused.stderr
    assert not (publication / "build" / "unsafe" / "email.html").exists()


def test_an_unsafe_link_keeps_its_text_and_loses_its_address(publication: Path) -> None:
    from newsletter.markdown import render_markdown

    quoted = render_markdown('A [quoted](javascript:alert("hi")) link.\n', "https://example.org/issues/unsafe/")
    assert [(link.url, link.line) for link in quoted.refused] == [('javascript:alert("hi")', 1)], "as written"
    rendered = render_markdown(UNSAFE, "https://example.org/issues/unsafe/")
    assert "javascript" not in rendered.html.replace("vbscript:run()", "") and "file:" not in rendered.html
    assert "See this page and\nthe plan too." in rendered.html
    assert '<a href="https://example.org">a fine link</a>' in rendered.html
    assert "See this page and the plan too." in rendered.text


def _archive(publication: Path) -> str:
    return (publication / "build" / "site" / "index.html").read_text(encoding="utf-8")


def test_site_leaves_out_an_issue_that_check_fails_naming_each_error(publication: Path) -> None:
    import datetime as dt

    outside = write_issue(publication, "outside", {"a.md": article("Outside", "![The weir](../weir.png)\n")},
                          subject="Outside", date=dt.date(2027, 2, 1))
    (outside.parent / "weir.png").write_bytes((publication / "issues" / "issue-1" / "towpath.png").read_bytes())
    write_issue(publication, "scripted", {"a.md": article("Scripted", "Click [here](javascript:alert(1)).\n")},
                subject="Scripted", date=dt.date(2027, 3, 1))
    checked = run("check", "outside")
    assert checked.exit_code == 1 and "issues/outside/a.md:4: image ../weir.png is outside" in checked.stderr

    result = run("site")
    assert result.exit_code == 1, result.output
    errors = errors_of(result)
    assert len(errors) == 3 and errors[2].startswith("error: 2 problems kept parts of the site"), result.stderr
    assert errors[0].startswith("error: issues/outside/a.md:4: image ../weir.png is outside the issue's folder")
    assert errors[1].startswith("error: issues/scripted/a.md:4: the link javascript:alert(1) is not made a link")
    site = publication / "build" / "site"
    assert not (site / "outside").exists() and not (site / "scripted").exists()
    assert "outside/" not in _archive(publication) and "scripted/" not in _archive(publication)
    assert (site / "issue-1" / "index.html").is_file(), "the issues check passes are published"


def test_an_issue_published_before_that_now_fails_check_keeps_its_last_page(publication: Path) -> None:
    import datetime as dt

    folder = write_issue(publication, "spring", {"a.md": article("Spring", "Spring words.\n")},
                         subject="Spring", date=dt.date(2027, 3, 1))
    assert run("site").exit_code == 0
    page = publication / "build" / "site" / "spring" / "index.html"
    published = page.read_bytes()
    (folder / "a.md").write_text(article("Spring", "Spring words, [and more](file:///home/me/more.html).\n"),
                                 encoding="utf-8")
    result = run("site")
    assert result.exit_code == 1, result.output
    errors = errors_of(result)
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("error: issues/spring/a.md:4: the link file:///home/me/more.html is not made a link")
    assert "Kept as last published" in result.stderr
    assert page.read_bytes() == published and "spring/" in _archive(publication)
