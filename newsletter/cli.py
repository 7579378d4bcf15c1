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


# -- subscribers ------------------------------------------------------------------------

def _echo_report(report) -> None:  # noqa: ANN001
    for line in report.lines():
        click.echo(line)


class _Progress:
    """A `progress(stage, rows)` callback drawing a rich status line on a terminal; silent otherwise."""

    def __enter__(self) -> Any:
        self._bar = None
        if not sys.stderr.isatty():
            return lambda stage, rows: None
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        columns = (SpinnerColumn(), TextColumn("{task.description}: {task.completed:,} rows"), TimeElapsedColumn())
        self._bar = Progress(*columns, console=Console(stderr=True), transient=True)
        self._bar.start()
        task = self._bar.add_task("starting", total=None)
        return lambda stage, rows: self._bar.update(task, description=stage, completed=rows)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


_list_option = click.option("--list", "list_name", default="main", show_default=True, metavar="NAME",
                            help="The list: subscribers/NAME.csv.")


@cli.group()
def subscribers() -> None:
    """Manage the subscriber lists in subscribers/<list>.csv.

    \b
    Example:
      newsletter subscribers import people.csv --tag spring-fair
      newsletter subscribers stats
    """


@subscribers.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_list_option
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Tag every imported address (repeatable).")
@click.option("--resubscribe", is_flag=True,
              help="Subscribe again addresses that unsubscribed, bounced or complained (only with their consent).")
@click.option("--dry-run", is_flag=True, help="Print the report without writing anything.")
def import_(file: Path, list_name: str, tags: tuple[str, ...], resubscribe: bool, dry_run: bool) -> None:
    """Merge the CSV FILE (from a spreadsheet, Mailchimp, a form tool) into a list.

    \b
    Example:
      newsletter subscribers import signups.csv --tag fair-2026 --dry-run
    """
    from newsletter.importing import import_file

    with _Progress() as progress:
        report = import_file(_settings(), file, list_name, tags, resubscribe=resubscribe, dry_run=dry_run,
                             progress=progress)
    _echo_report(report)


@subscribers.command()
@click.argument("email")
@_list_option
@click.option("--first-name", default="", help="First name.")
@click.option("--last-name", default="", help="Last name.")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="A tag (repeatable).")
@click.option("--resubscribe", is_flag=True, help="Subscribe again an address that unsubscribed.")
def add(email: str, list_name: str, first_name: str, last_name: str, tags: tuple[str, ...], resubscribe: bool) -> None:
    """Add EMAIL to a list, or update its names and tags.

    \b
    Example:
      newsletter subscribers add ada@example.org --first-name Ada --tag members
    """
    from newsletter.subscriber_lists import add_subscriber

    _echo_report(add_subscriber(_settings(), email, list_name, first_name, last_name, tags, resubscribe))


@subscribers.command()
@click.argument("email")
@_list_option
def remove(email: str, list_name: str) -> None:
    """Mark EMAIL unsubscribed (the row stays, so no import subscribes it again).

    \b
    Example:
      newsletter subscribers remove ada@example.org
    """
    from newsletter.subscriber_lists import remove_subscriber

    _echo_report(remove_subscriber(_settings(), email, list_name))


@subscribers.command()
@click.argument("email")
@_list_option
def delete(email: str, list_name: str) -> None:
    """Erase the row of EMAIL (for a data-protection request).

    \b
    Example:
      newsletter subscribers delete ada@example.org
    """
    from newsletter.subscriber_lists import delete_subscriber

    _echo_report(delete_subscriber(_settings(), email, list_name))


# subscribers.STATUSES, spelled out: importing the module here would slow every command's start.
_status_option = click.option("--status", type=click.Choice(["subscribed", "unsubscribed", "bounced", "complained"]),
                              help="Only addresses with this status.")
_tag_option = click.option("--tag", metavar="TAG", help="Only addresses with this tag.")


@subscribers.command("list")
@_list_option
@_status_option
@_tag_option
def list_(list_name: str, status: str | None, tag: str | None) -> None:
    """Print the addresses of a list: address, status, name, tags (tab-separated).

    \b
    Example:
      newsletter subscribers list --status subscribed --tag members
    """
    from newsletter.subscriber_lists import list_lines

    for line in list_lines(_settings(), list_name, status, tag):
        click.echo(line)


@subscribers.command()
@_list_option
def stats(list_name: str) -> None:
    """Count a list's addresses by status and by tag.

    \b
    Example:
      newsletter subscribers stats --list main
    """
    from newsletter.subscriber_lists import list_stats

    _echo_report(list_stats(_settings(), list_name))


@subscribers.command()
@_list_option
@_status_option
@_tag_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), default="-",
              help="The CSV file to write (default: standard output).")
def export(list_name: str, status: str | None, tag: str | None, output: str) -> None:
    """Write a list as CSV for a spreadsheet, with formulas defused.

    \b
    Example:
      newsletter subscribers export --status subscribed -o subscribed.csv
    """
    from newsletter.subscriber_lists import export_list

    # A file gets a BOM so that spreadsheets read it as UTF-8; a pipe gets plain UTF-8.
    to_file = output != "-"
    with click.open_file(output, "w", encoding="utf-8-sig" if to_file else "utf-8", atomic=to_file) as out:
        report = export_list(_settings(), out, list_name, status, tag)
    if to_file:
        _echo_report(report)


@subscribers.command()
@_list_option
@click.option("--dry-run", is_flag=True, help="Print what would change without writing anything.")
def sync(list_name: str, dry_run: bool) -> None:
    """Mark the addresses SendGrid suppresses: unsubscribed, bounced or complained.

    Needs SENDGRID_API_KEY in the environment.

    \b
    Example:
      newsletter subscribers sync
    """
    from newsletter.suppressions import sync_suppressions

    _echo_report(sync_suppressions(_settings(), list_name, dry_run=dry_run))


def main() -> None:
    cli(prog_name="newsletter")
