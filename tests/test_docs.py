"""The guide in docs/ stays true to the code (as sqlite-utils' test_docs.py keeps its docs).

Every command and option is explained on a page of the guide (the command reference is
written from the Click commands at build time, so it cannot miss one: these tests ask
for more, a page that explains it); every key the code reads from newsletter.yaml,
issue.yaml and front matter is in the settings reference; every variable a template is
given is in the templates reference; every example command runs against the sample
publication; the troubleshooting page quotes messages the code still says; and the site
builds with `mkdocs build --strict`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import jinja2
import pytest

from newsletter import config, content
from newsletter.cli import cli
from newsletter.signup.phrases import SIGNUP_PHRASES
from newsletter.strings import BUILT_IN, DEFAULT_LANGUAGE
from tests.conftest import REPO
from tests.helpers import run

DOCS = REPO / "docs"
# Written from the Click commands at build time: it documents every option by construction.
GENERATED = {DOCS / "reference" / "commands.md"}
PAGES = sorted(p for p in DOCS.rglob("*.md") if p not in GENERATED and "examples" not in p.parts)
# Files the runnable examples name (`newsletter add issue-2 editorial.txt`), copied beside the sample.
EXAMPLE_FILES = DOCS / "examples"
# Put on the line right above a fenced block whose commands cannot run here, with the reason.
NOT_RUNNABLE = re.compile(r"<!--\s*docs:\s*not runnable:(.*?)-->")


def guide_text() -> dict[Path, str]:
    return {page: page.read_text(encoding="utf-8") for page in PAGES}


def commands(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        if command.hidden:
            continue
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from commands(command, (*prefix, name))


def options() -> Iterator[tuple[tuple[str, ...], str]]:
    """(command path, the option's longest name) for every option but --help."""
    for path, command in [((), cli), *commands()]:
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                yield path, max(param.opts, key=len)


def mentions_command(text: str, path: tuple[str, ...]) -> bool:
    """Whether `text` names `newsletter PATH` (as typed, or in a heading such as `send --at`)."""
    return re.search(rf"newsletter {re.escape(' '.join(path))}(?![\w-])", text) is not None


@pytest.mark.parametrize("path", [p for p, _ in commands()], ids=" ".join)
def test_every_command_is_explained_in_the_guide(path: tuple[str, ...]) -> None:
    pages = [page.relative_to(DOCS) for page, text in guide_text().items() if mentions_command(text, path)]
    assert pages, f"`newsletter {' '.join(path)}` is on no page of docs/ but the generated reference"


@pytest.mark.parametrize(("path", "option"), list(options()), ids=lambda v: " ".join(v) if isinstance(v, tuple) else v)
def test_every_option_is_explained_where_its_command_is(path: tuple[str, ...], option: str) -> None:
    """The option is named on a page that explains its command (`--list` of `subscribers
    import` on the page of `subscribers import`, not merely somewhere)."""
    pages = {page: text for page, text in guide_text().items() if not path or mentions_command(text, path)}
    assert any(re.search(rf"{re.escape(option)}(?![\w-])", text) for text in pages.values()), (
        f"{option} of `newsletter {' '.join(path)}` is not explained on its pages: "
        f"{', '.join(str(p.relative_to(DOCS)) for p in pages) or 'none'}")


def setting_keys() -> list[str]:
    """Every key the code reads from newsletter.yaml, issue.yaml, front matter and the phrases table."""
    address = [f.name for f in dataclasses.fields(config.Address)]
    return sorted({
        *config.KNOWN_KEYS,
        *(f"from.{name}" for name in address),
        *(f"sendgrid.{key}" for key in config.SENDGRID_KEYS),
        *(f"smtp.{key}" for key in config.SMTP_KEYS),
        *(f"signup.{key}" for key in config.SIGNUP_KEYS),
        *content.ISSUE_KEYS,
        *content.ARTICLE_KEYS,
        *BUILT_IN[DEFAULT_LANGUAGE],
        *SIGNUP_PHRASES[DEFAULT_LANGUAGE],
    })


@pytest.mark.parametrize("key", setting_keys())
def test_every_setting_is_in_the_reference(key: str) -> None:
    reference = (DOCS / "reference" / "configuration.md").read_text(encoding="utf-8")
    assert f"`{key}`" in reference, f"{key} is not in docs/reference/configuration.md"


def test_every_language_and_provider_is_in_the_reference() -> None:
    reference = (DOCS / "reference" / "configuration.md").read_text(encoding="utf-8")
    for value in [*BUILT_IN, *config.PROVIDERS, *config.SMTP_SECURITIES, *config.REGION_URLS]:
        assert f"`{value}`" in reference, value


@pytest.fixture
def rendered_contexts(publication: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    """The variables each template is given, recorded while the sample is built, published,
    previewed and served: the code's own calls, so a new variable cannot go unnoticed."""
    from newsletter.config import load_settings
    from newsletter.signup.serve import app_for

    seen: dict[str, set[str]] = {}
    render = jinja2.Template.render

    def recording(self: jinja2.Template, *args: Any, **kwargs: Any) -> str:
        seen.setdefault(str(self.name), set()).update(dict(*args, **kwargs))
        return render(self, *args, **kwargs)

    monkeypatch.setattr(jinja2.Template, "render", recording)
    for command in (["build", "issue-1"], ["site"], ["preview", "issue-1", "--no-open"]):
        result = run(*command)
        assert result.exit_code == 0, result.output
    with (publication / "newsletter.yaml").open("a", encoding="utf-8") as handle:
        handle.write("signup:\n  url: https://join.riverside-writers-circle.internal\n")
    monkeypatch.setenv("NEWSLETTER_SECRET", "s" * 64)
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.docs-test-key")
    app_for(load_settings(publication), publication / "signup.sqlite")  # renders its pages and emails
    return seen


def test_every_template_variable_is_in_the_reference(rendered_contexts: dict[str, set[str]]) -> None:
    reference = (DOCS / "reference" / "templates.md").read_text(encoding="utf-8")
    assert {"email.html", "email.txt", "web.html", "web-archive.html", "preview.html",
            "signup-page.html", "signup-email.html"} <= set(rendered_contexts)
    missing = {f"{template}: {name}" for template, names in rendered_contexts.items()
               for name in names if f"`{name}`" not in reference}
    assert not missing, f"not in docs/reference/templates.md: {sorted(missing)}"
    for template in rendered_contexts:
        assert f"`{template}`" in reference, template


@dataclasses.dataclass(frozen=True)
class Example:
    page: Path
    line: int
    commands: tuple[str, ...]
    not_runnable: str | None  # the reason, when the block is marked

    def __str__(self) -> str:
        return f"{self.page.relative_to(DOCS)}:{self.line}"


def examples() -> list[Example]:
    """Each fenced console or bash block holding a line that starts `newsletter `."""
    found = []
    for page, text in guide_text().items():
        lines = text.splitlines()
        for number, line in enumerate(lines):
            fence = re.match(r"\s*```(console|bash|shell|sh)\s*$", line)
            if not fence:
                continue
            indent = line[:len(line) - len(line.lstrip())]
            end = next(i for i in range(number + 1, len(lines)) if lines[i].strip() == "```")
            body = [raw[len(indent):] if raw.startswith(indent) else raw for raw in lines[number + 1:end]]
            typed = tuple(cmd for cmd in body if cmd.startswith("newsletter "))
            marker = NOT_RUNNABLE.search(lines[number - 1]) if number else None
            if typed:
                found.append(Example(page, number + 1, typed, marker[1].strip() if marker else None))
    return found


@pytest.mark.parametrize("example", examples(), ids=str)
def test_every_example_command_runs_against_the_sample(example: Example, publication: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The block's commands run in order, in a fresh copy of the sample publication (with
    docs/examples/ beside it), each exiting 0; a block marked not runnable says why."""
    if example.not_runnable is not None:
        assert example.not_runnable, f"{example}: say why the block is not runnable"
        pytest.skip(f"{example}: {example.not_runnable}")
    for variable in ("SENDGRID_API_KEY", "NEWSLETTER_SMTP_PASSWORD", "NEWSLETTER_SECRET", "NEWSLETTER_SENDGRID_URL"):
        monkeypatch.delenv(variable, raising=False)
    for source in EXAMPLE_FILES.iterdir():
        shutil.copy(source, publication / source.name)
    for typed in example.commands:
        result = run(*shlex.split(typed, comments=True)[1:])
        assert result.exit_code == 0, f"{example}: `{typed}` exited {result.exit_code}:\n{result.output}"


def source_text() -> str:
    """The package's source as its messages read: string literals split over lines joined
    (`"a "` then `"b"`), `\\"` unescaped, and `{API_KEY_VARIABLE}` made the constant's text."""
    text = "\n".join(path.read_text(encoding="utf-8") for path in (REPO / "newsletter").rglob("*.py"))
    text = re.sub(r"\"\s*\n\s*(?:rf|fr|f|r)?\"", "", text).replace('\\"', '"')
    for name, value in re.findall(r"^([A-Z][A-Z_]*) = \"([^\"]*)\"", text, re.MULTILINE):
        text = text.replace("{" + name + "}", value)
    return text


def quoted_messages() -> list[str]:
    page = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    return [m[2].strip() for m in re.finditer(r"\*\*(``?)(.+?)\1", page)]


@pytest.mark.parametrize("fragment", quoted_messages())
def test_troubleshooting_quotes_what_the_code_says(fragment: str) -> None:
    assert fragment in source_text(), f"no message of newsletter/ says {fragment!r} any more"


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """`mkdocs build --strict`: no broken link or anchor, every page in the navigation;
    the command reference holds every command."""
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[docs]')")
    pytest.importorskip("mkdocs_click", reason="mkdocs-click is not installed (pip install -e '.[docs]')")
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                           cwd=REPO, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert built.returncode == 0, built.stderr
    reference = (tmp_path / "site" / "reference" / "commands.html").read_text(encoding="utf-8")
    for path, _ in commands():
        assert f'id="newsletter-{"-".join(path)}"' in reference, path
    # Each command's examples one a line, as typed (docs/hooks/examples.py), not run into a paragraph.
    assert "<p>Example:\n" not in reference
    assert reference.count("<p>Example:</p>") == len(list(commands())) + 1

