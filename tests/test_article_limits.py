"""Articles that would break the email in ways that hide the cause: nesting too deep for the
parsers, and links a mail client would not follow. Each is one `error:` line naming the
article and its line, from `check`, `build` and `send`."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from newsletter.cli import cli
from tests.helpers import article, write_issue


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def errors_of(result: Result) -> list[str]:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


# 50,000 deep, as the report had it: quotes, list markers, and emphasis (`*****hi*****`).
DEEP_BODIES = {
    "quotes": "> " * 50_000 + "hi\n",
    "list markers": "* " * 50_000 + "hi\n",
    "emphasis": "*" * 50_000 + "hi" + "*" * 50_000 + "\n",
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
