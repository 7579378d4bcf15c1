"""The `newsletter` command: parses options, calls the core, prints what happened.

The core raises `NewsletterError`s; this module alone turns them into one line
on stderr and exit status 1 (Click's own usage errors exit 2).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import click

from newsletter import __version__
from newsletter.errors import NewsletterError, where


class NewsletterGroup(click.Group):
    """Prints our errors and warnings as single lines, never as tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        def show_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
            click.secho(f"warning: {message}", fg="yellow", err=True)

        warnings.showwarning = show_warning
        try:
            return super().invoke(ctx)
        except NewsletterError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            ctx.exit(130)


@click.group(cls=NewsletterGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="newsletter")
def cli() -> None:
    """Publish an email newsletter: Markdown articles in, an email to every subscriber out.

    \b
    Example:
      newsletter preview issue-12
      newsletter send issue-12 --dry-run
    """


def _settings():  # noqa: ANN202
    from newsletter.config import load_settings

    return load_settings()


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1024:.1f} KB" if size >= 1024 else f"{size} bytes"


def _print_findings(report) -> None:  # noqa: ANN001
    for finding in report.findings:
        click.secho(str(finding), fg="red" if finding.level == "error" else "yellow", err=True)


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Create a new publication in DIRECTORY, with a first issue to edit.

    \b
    Example:
      newsletter init my-newsletter
    """
    from newsletter.publication import create_publication

    created = create_publication(directory)
    click.echo(f"Created a publication in {directory}/ ({len(created)} files).")
    click.echo(f"Next: edit {directory}/newsletter.yaml, then `cd {directory} && newsletter preview first-issue`.")


@cli.command()
@click.argument("issue")
def build(issue: str) -> None:
    """Render ISSUE to build/ISSUE/email.html and email.txt, after checking it.

    \b
    Example:
      newsletter build issue-12
    """
    from newsletter.build import build_issue

    built = build_issue(_settings(), issue)
    _print_findings(built.report)
    click.echo(f"{where(built.html_path)}  {_size(built.html_path)}")
    click.echo(f"{where(built.text_path)}  {_size(built.text_path)}")


@cli.command()
@click.argument("issue")
def check(issue: str) -> None:
    """Report errors (exit 1) and warnings (exit 0) about ISSUE without writing anything.

    \b
    Example:
      newsletter check issue-12
    """
    from newsletter.build import check_issue

    report = check_issue(_settings(), issue)
    _print_findings(report)
    if not report.ok:
        sys.exit(1)
    click.echo(f"{report.issue}: no errors, {len(report.warnings)} warning{'s' if len(report.warnings) != 1 else ''}")


@cli.command()
@click.argument("issue")
@click.option("--no-open", is_flag=True, help="Print the preview page's path instead of opening it.")
@click.option("--serve", is_flag=True, help="Serve the preview on 127.0.0.1 and rebuild when a file changes.")
@click.option("--port", default=8000, show_default=True, help="The port for --serve (0: any free port).")
def preview(issue: str, no_open: bool, serve: bool, port: int) -> None:
    """Render ISSUE and open a preview: desktop and phone widths, text part, checks.

    \b
    Example:
      newsletter preview issue-12
      newsletter preview issue-12 --serve
    """
    from newsletter import preview as previewing

    settings = _settings()
    if serve:
        def report(result) -> None:  # noqa: ANN001
            if isinstance(result, str):
                click.echo(f"Serving the preview at {result} (Ctrl-C to stop); rebuilding on changes.")
                if not no_open:
                    click.launch(result)
            elif isinstance(result, NewsletterError):
                click.secho(f"error: {result}", fg="red", err=True)
            else:
                click.echo(f"rebuilt {where(result.page)}")

        previewing.serve(settings, issue, port, on_rebuild=report)
        return
    built = previewing.write_preview(settings, issue)
    _print_findings(built.report)
    if no_open:
        click.echo(where(built.page))
    else:
        click.echo(f"Opening {where(built.page)}")
        click.launch(str(built.page))


def main() -> None:
    cli(prog_name="newsletter")
