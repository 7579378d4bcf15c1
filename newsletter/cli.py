"""The `newsletter` command: parses options, calls the core, prints what happened.

The core raises `NewsletterError`s; this module alone turns them into one line
on stderr and exit status 1 (Click's own usage errors exit 2).
"""

from __future__ import annotations

import gc
import io
import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, TextIO, cast

import click

from newsletter import __version__
from newsletter.errors import NewsletterError, where
from newsletter.terminal import Terminal

if TYPE_CHECKING:  # rich is imported only when a bar is shown; the core only when a command needs it
    import datetime as dt

    from rich.progress import Progress

    from newsletter.checks import CheckReport
    from newsletter.config import Settings
    from newsletter.preview import Preview
    from newsletter.sending.report import SendReport
    from newsletter.findings import Finding
    from newsletter.subscribers.importing import Progress as RowProgress

    # The installed click's ParamType takes type arguments; click 8.1's (pyproject allows it) is no generic.
    _DateType = click.ParamType[dt.date]
else:
    _DateType = click.ParamType


class NewsletterGroup(click.Group):
    """Prints our errors and warnings as single lines, never as tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                         file: TextIO | None = None, line: str | None = None) -> None:
            click.secho(f"warning: {message}", fg="yellow", err=True)

        warnings.showwarning = show_warning
        try:
            return super().invoke(ctx)
        except NewsletterError as exc:
            for line in str(exc).splitlines() or [""]:  # some errors name several things, a line each
                click.secho(f"error: {line}", fg="red", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:  # `newsletter subscribers export | head`: the reader has all it wanted
            _point_stdout_at_devnull()
            ctx.exit(CLOSED_PIPE)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        """Click's own usage errors as one `error:` line naming the command's --help (exit 2)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
            sys.stdout.flush()  # what is still buffered, while a closed pipe can still be handled here
        except BrokenPipeError:
            _point_stdout_at_devnull()
            sys.exit(CLOSED_PIPE)
        except click.UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else "newsletter"
            message = " ".join(exc.format_message().split())
            click.secho(f"error: {message.rstrip('.')} (see `{command} --help`)", fg="red", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.secho(f"error: {exc.format_message()}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:  # "no" to a confirmation, or end of input at it
            click.echo("Aborted: nothing was done.", err=True)
            sys.exit(1)
        # Without standalone mode, click returns the code of a `ctx.exit(code)` (--help: 0).
        sys.exit(code if isinstance(code, int) else 0)


# A closed pipe (`| head`) ends a command quietly with the status a shell gives a process
# that SIGPIPE killed (128 + 13), as `cat` and `grep` end; Python ignores SIGPIPE, so it
# comes as BrokenPipeError from a write or the final flush.
CLOSED_PIPE = 141


def _point_stdout_at_devnull() -> None:
    """Standard output redirected to /dev/null, so that Python's flush at exit writes what is
    still buffered there instead of printing "Exception ignored ... BrokenPipeError" (the
    recipe of Python's documentation, "Note on SIGPIPE")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):  # no descriptor to redirect (a test's captured output)
        pass


@click.group(name="newsletter", cls=NewsletterGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="newsletter")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Publish an email newsletter: Markdown articles in, an email to every subscriber out.

    \b
    Example:
      newsletter preview issue-12
      newsletter send issue-12 --dry-run
    """
    if ctx.obj is None:  # a test hands its own: CliRunner.invoke(cli, args, obj=Terminal(...))
        ctx.obj = real_terminal()


def real_terminal() -> Terminal:
    """The terminal this process runs at, looked at now (a CliRunner swaps the streams first)."""
    return Terminal(can_ask=sys.stdin.isatty(), stdout_is_a_screen=sys.stdout.isatty(),
                    stderr_is_a_screen=sys.stderr.isatty(), has_a_display=_has_a_display(), launch=click.launch)


def _terminal() -> Terminal:
    """The terminal of the command running now (built by `cli`, or a test's double)."""
    found = click.get_current_context().find_object(Terminal)
    return found if found is not None else real_terminal()  # a command invoked without the group


def _settings() -> Settings:
    from newsletter.config import load_settings

    return load_settings()


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1024:.1f} KB" if size >= 1024 else f"{size} bytes"


def _print_findings(report: CheckReport) -> None:
    for finding in report.findings:
        click.secho(str(finding), fg="red" if finding.level == "error" else "yellow", err=True)


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init(directory: Path) -> None:
    """Create a new publication in DIRECTORY.

    The folder must be new or empty; it gets a newsletter.yaml, a first issue to
    edit and an empty subscriber list.

    \b
    Example:
      newsletter init my-newsletter
    """
    from newsletter.publication import create_publication

    created = create_publication(directory)
    click.echo(f"Created a publication in {directory}/ ({len(created)} files).")
    click.echo(f"Next: edit {directory}/newsletter.yaml, then `cd {directory} && newsletter preview issue-1`.")
    click.echo("Before the first send: `newsletter doctor --create-group \"NAME\"` creates the unsubscribe group "
               "and checks the SendGrid account.")


@cli.command()
@click.argument("issue")
def build(issue: str) -> None:
    """Render ISSUE into build/ISSUE/, after checking it.

    Writes email.html and email.txt: the exact parts a send posts, merge-field
    tags included.

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
@click.argument("issue", required=False)
@click.option("--links", is_flag=True,
              help="Also fetch every link and image URL of the email; exit 1 when any is broken.")
@click.option("--spam", is_flag=True,
              help="Also score the message a reader would get with SpamAssassin (network tests off): "
                   "its rules and points; from 5 exits 1, over 3 warns.")
@click.option("--welcome", is_flag=True,
              help="Check welcome.md, the welcome email of `newsletter serve`, instead of an issue.")
def check(issue: str | None, links: bool, spam: bool, welcome: bool) -> None:
    """Report what is wrong with ISSUE, writing nothing.

    Errors exit 1 and stop a send; warnings exit 0.

    With --links, every link and image of the email is fetched (concurrently, HEAD
    then GET, following redirects): run it once the web edition is published.

    With --spam, SpamAssassin scores the whole message a reader would get, headers
    included, and lists the rules that fired; where it is not installed, it says how
    to install it.

    \b
    Example:
      newsletter check issue-12
      newsletter check issue-12 --links
      newsletter check issue-12 --spam
      newsletter check --welcome
    """
    if welcome:
        from newsletter.signup.emails import check_welcome

        checked = check_welcome(_settings())
        for error in checked.errors:
            click.secho(f"error: {error}", fg="red", err=True)
        _echo_report(checked)
        sys.exit(0 if checked.ok else 1)
    if issue is None:
        raise click.UsageError("Missing argument 'ISSUE'", ctx=click.get_current_context())
    if links and spam:
        raise click.UsageError("--links and --spam are two checks: run one, then the other",
                               ctx=click.get_current_context())
    if links:
        return _check_links(issue)
    if spam:
        from newsletter.spam import check_issue_spam

        scored = check_issue_spam(_settings(), issue)
        _echo_report(scored)
        report = scored.checks
    else:
        from newsletter.build import check_issue

        report = check_issue(_settings(), issue)
    _print_findings(report)
    if not report.ok:
        sys.exit(1)
    click.echo(f"{report.issue}: no errors, {len(report.warnings)} warning{'s' if len(report.warnings) != 1 else ''}")


def _check_links(issue: str) -> None:
    from newsletter.links import check_issue_links

    report = check_issue_links(_settings(), issue)
    _print_findings(report.checks)
    _echo_report(report)
    if not report.ok:
        sys.exit(1)


@cli.command()
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The folder to write (default: build/site/).")
def site(output: Path | None) -> None:
    """Write the web edition: pages, images, archive and feed.

    Every issue that is not a draft goes to build/site/ (or -o DIR). Upload the
    folder so that it is served at base_url, then check an issue's links with
    `newsletter check ISSUE --links`.

    \b
    Example:
      newsletter site
      newsletter site -o public/
    """
    from newsletter.site import SiteFailed, build_site

    try:
        report = build_site(_settings(), output)
    except SiteFailed as failed:
        _echo_report(failed.report)
        raise
    _echo_report(report)


# -- issues and their articles ----------------------------------------------------------

class _IsoDate(_DateType):
    """A date written 2026-11-25; one that does not exist (2026-02-30) is named as such."""

    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.date:
        import datetime as dt
        import re

        if isinstance(value, dt.date):
            return value
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value).strip()):
            self.fail(f"{value!r} is not a date written YYYY-MM-DD, like 2026-11-25", param, ctx)
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError as exc:
            self.fail(f"{value} is no such date ({exc})", param, ctx)


@cli.command("new")
@click.argument("issue", required=False)
@click.option("--subject", default="", help="The email's subject line.")
@click.option("--date", "date_", type=_IsoDate(), metavar="YYYY-MM-DD", help="The issue's date (default: today).")
def new_issue(issue: str | None, subject: str, date_: dt.date | None) -> None:
    """Create issues/ISSUE/issue.yaml: a draft, no articles yet.

    Without ISSUE, the next number after the highest issues/issue-N.

    \b
    Example:
      newsletter new --subject "Winter readings"
      newsletter new issue-13 --subject "Spring fair" --date 2027-03-01
    """
    from newsletter.submissions.convert import create_issue

    created = create_issue(_settings(), issue, subject, date_)
    click.echo(f"Created {where(created.path)} (date {created.date.isoformat()}, draft).")
    if not created.subject:
        click.secho(f"warning: {where(created.path)}: no subject yet: set `subject` before sending", fg="yellow",
                    err=True)
    click.echo(f"Next: newsletter add {created.name} SUBMISSION...")


@cli.command("add")
@click.argument("issue")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--title", help="The article's title, instead of the one recognised.")
@click.option("--author", help="The article's author, instead of the byline recognised.")
@click.option("--dry-run", is_flag=True, help="Print the Markdown and write nothing.")
def add_articles(issue: str, files: tuple[Path, ...], title: str | None, author: str | None, dry_run: bool) -> None:
    """Turn submissions (.txt, .md, .docx, .html) into articles.

    Each becomes issues/ISSUE/NN-slug.md, listed at the end of `articles` in
    issue.yaml (its comments and order kept). Prints what it recognised, and a
    warning, naming the submission's line, for each guess to check.

    \b
    Example:
      newsletter add issue-13 letter.txt essay.docx
      newsletter add issue-13 notes.txt --title "From the chair" --dry-run
    """
    from newsletter.submissions.convert import add_submissions

    report = add_submissions(_settings(), issue, files, title=title, author=author, dry_run=dry_run)
    for line in report.lines():
        click.echo(line)
    for warning in report.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)


@cli.group()
def templates() -> None:
    """Copy default templates into the publication.

    \b
    Example:
      newsletter templates eject email.css
    """


@templates.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
def eject(names: tuple[str, ...]) -> None:
    """Copy default templates into templates/, never overwriting.

    Without NAME, every default template that the publication does not have yet.

    \b
    Example:
      newsletter templates eject
      newsletter templates eject footer.html email.css
    """
    from newsletter.publication import eject_templates

    _echo_report(eject_templates(_settings(), names))


# -- subscribers ------------------------------------------------------------------------

class _Report(Protocol):
    """A core report that says itself, a line each (import, cancel, stats, spam, send, site, links...)."""

    def lines(self) -> Iterable[str]: ...


def _echo_report(report: _Report) -> None:
    """A report's lines on standard output; then, for a report that has them, its problems on standard error."""
    for line in report.lines():
        click.echo(line)
    for level, text in getattr(report, "problems", list)():
        click.secho(text, fg="red" if level == "error" else "yellow", err=True)


class _Progress:
    """A `progress(stage, rows)` callback drawing a rich status line on a terminal; silent otherwise."""

    def __enter__(self) -> RowProgress:
        self._bar: Progress | None = None
        if not _terminal().stderr_is_a_screen:
            return lambda stage, rows: None
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        columns = (SpinnerColumn(), TextColumn("{task.description}: {task.completed:,} rows"), TimeElapsedColumn())
        bar = self._bar = Progress(*columns, console=Console(stderr=True), transient=True)
        bar.start()
        task = bar.add_task("starting", total=None)
        return lambda stage, rows: bar.update(task, description=stage, completed=rows)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


class _Stdout:
    """Standard output for a long stream (`list`, `export`): a write that fails is one line.

    A full disk (`> /dev/full`) raises OSError at a write or a flush. It becomes one
    `error:` line, and descriptor 1 is pointed at /dev/null so that Python's own flush at
    exit adds no second complaint about what is still buffered. A closed pipe (`| head`)
    is no error: it goes on to `NewsletterGroup`, which ends the command quietly.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as exc:
            raise self._failed(exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as exc:
            raise self._failed(exc) from None

    @staticmethod
    def _failed(exc: OSError) -> Exception:
        if isinstance(exc, BrokenPipeError):  # a closed pipe is no error: the command ends quietly
            return exc
        _point_stdout_at_devnull()
        return NewsletterError(f"standard output: cannot write to it ({exc.strerror or exc}); the output is incomplete")


_list_option = click.option("--list", "list_name", default="main", show_default=True, metavar="NAME",
                            help="The list: subscribers/NAME.csv.")


@cli.group()
def subscribers() -> None:
    """Manage the subscriber lists in subscribers/.

    \b
    Example:
      newsletter subscribers import people.csv --tag spring-fair
      newsletter subscribers stats
    """


@subscribers.command("import")
@click.argument("file", type=click.Path(path_type=Path))  # checked by the core: one-line errors
@_list_option
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Tag every imported address (repeatable).")
@click.option("--resubscribe", is_flag=True,
              help="Subscribe again addresses that unsubscribed, bounced or complained (only with their consent).")
@click.option("--dry-run", is_flag=True, help="Print the report without writing anything.")
def import_(file: Path, list_name: str, tags: tuple[str, ...], resubscribe: bool, dry_run: bool) -> None:
    """Merge a CSV file into a list.

    FILE may come from a spreadsheet, a form tool, or an export of Mailchimp, Ghost,
    Substack, listmonk, Buttondown, Kit, MailerLite or beehiiv (told by its header,
    its opt-outs read). A blank status or consent answer is no consent.

    \b
    Example:
      newsletter subscribers import signups.csv --tag fair-2026 --dry-run
    """
    from newsletter.subscribers.importing import NothingImported, import_file

    try:
        with _Progress() as progress:
            report = import_file(_settings(), file, list_name, tags, resubscribe=resubscribe, dry_run=dry_run,
                                 progress=progress)
    except NothingImported as exc:  # the report says which rows and why; then the error, exit 1
        _echo_report(exc.report)
        raise
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
    from newsletter.subscribers.lists import add_subscriber

    _echo_report(add_subscriber(_settings(), email, list_name, first_name, last_name, tags, resubscribe))


@subscribers.command()
@click.argument("email")
@_list_option
def remove(email: str, list_name: str) -> None:
    """Mark EMAIL unsubscribed.

    The row stays, so no later import subscribes it again.

    \b
    Example:
      newsletter subscribers remove ada@example.org
    """
    from newsletter.subscribers.lists import remove_subscriber

    _echo_report(remove_subscriber(_settings(), email, list_name))


_signup_db_option = click.option(
    "--db", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="The sign-up server's records, as given to `serve --db` (default: signup.sqlite in the publication, "
         "when it is there).")


@subscribers.command()
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@_signup_db_option
def show(email: str, as_json: bool, db: Path | None) -> None:
    """Show everything held about EMAIL (a subject access request).

    Its row in every list (every column, consent evidence included), every
    request of every send that held it, the files under build/ that hold it, and
    the sign-up server's records of it (signup.sqlite, when it is in the
    publication folder, or the file given with --db). An address held nowhere
    says so (exit 0).

    \b
    Example:
      newsletter subscribers show ada@example.org --json
      newsletter subscribers show ada@example.org --db /var/lib/newsletter/signup.sqlite
    """
    from newsletter.rights import show_address

    held = show_address(_settings(), email, db)
    if as_json:
        click.echo(held.as_json())
    else:
        _echo_report(held)


@subscribers.command()
@click.argument("email")
@_signup_db_option
def delete(email: str, db: Path | None) -> None:
    """Erase EMAIL everywhere (a data-protection erasure request).

    Its rows go from every list, its records in the send ledgers become a keyed
    hash (an issue it had is never sent to it twice), the files under build/
    that hold it are removed, its rows in the sign-up server's records are
    deleted (signup.sqlite when in the publication folder, or the file given
    with --db), and the hash is kept in sent/erased.csv so that no import or add
    brings it back without --resubscribe. Refused while a send runs. To stop
    mail but keep the record, use `remove`.

    \b
    Example:
      newsletter subscribers delete ada@example.org
      newsletter subscribers delete ada@example.org --db /var/lib/newsletter/signup.sqlite
    """
    from newsletter.rights import erase_address

    _echo_report(erase_address(_settings(), email, db, busy_wait=_terminal().busy_wait))


# subscribers.STATUSES, spelled out: importing the module here would slow every command's start.
_status_option = click.option("--status", type=click.Choice(["subscribed", "unsubscribed", "bounced", "complained"]),
                              help="Only addresses with this status.")
_tag_option = click.option("--tag", "tags", multiple=True, metavar="TAG",
                           help="Only addresses with this tag (repeat: any of several).")


@subscribers.command("list")
@_list_option
@_status_option
@_tag_option
def list_(list_name: str, status: str | None, tags: tuple[str, ...]) -> None:
    """Print the addresses of a list.

    One line each, tab-separated: address, status, name, tags.

    \b
    Example:
      newsletter subscribers list --status subscribed --tag members
    """
    from newsletter.subscribers.lists import list_lines
    from newsletter.subscribers.selection import Selection

    out = _Stdout(sys.stdout)
    for line in list_lines(_settings(), list_name, Selection(status, tags)):
        out.write(line + "\n")
    out.flush()


@subscribers.command()
@_list_option
def stats(list_name: str) -> None:
    """Count a list's addresses by status and by tag.

    \b
    Example:
      newsletter subscribers stats --list main
    """
    from newsletter.subscribers.lists import list_stats

    _echo_report(list_stats(_settings(), list_name))


@subscribers.command()
@_list_option
@_status_option
@_tag_option
@click.option("-o", "--output", type=click.Path(allow_dash=True, path_type=Path), default="-",
              help="The CSV file to write (default: standard output).")
def export(list_name: str, status: str | None, tags: tuple[str, ...], output: Path) -> None:
    """Write a list as CSV for a spreadsheet, with formulas defused.

    \b
    Example:
      newsletter subscribers export --status subscribed -o subscribed.csv
    """
    from newsletter.subscribers.lists import export_list, export_to_file
    from newsletter.subscribers.selection import Selection

    selection = Selection(status, tags)
    if str(output) == "-":  # a pipe gets plain UTF-8, a file a BOM for spreadsheets
        with click.open_file("-", "w", encoding="utf-8") as stream:
            out = _Stdout(stream)
            export_list(_settings(), cast("IO[str]", out), list_name, selection)
            out.flush()
    else:
        report = export_to_file(_settings(), output, list_name, selection)
        for line in report.lines():  # on stderr when the CSV went to a stream (-o /dev/stdout)
            click.echo(line, err=report.into_stream)


@subscribers.command()
@_list_option
@click.option("--dry-run", is_flag=True, help="Print what would change without writing anything.")
def sync(list_name: str, dry_run: bool) -> None:
    """Mark the addresses that SendGrid suppresses.

    Those that unsubscribed, bounced or complained there. With `signup:` in
    newsletter.yaml, the sign-up server's confirmed sign-ups and unsubscribes
    since the last sync are applied first (to the lists they name).

    Needs SENDGRID_API_KEY (and, with `signup:`, NEWSLETTER_SECRET) in the environment.

    \b
    Example:
      newsletter subscribers sync
    """
    from newsletter.signup.sync import sync_subscribers

    _echo_report(sync_subscribers(_settings(), list_name, dry_run=dry_run, retry=_terminal().retry))


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="The port to listen on.")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The server's records (default: signup.sqlite in the publication).")
@click.option("--forwarded-allow-ips", default="127.0.0.1", show_default=True,
              help="Proxies trusted for X-Forwarded-For (the client address the rate limit counts).")
def serve_command(host: str, port: int, db: Path | None, forwarded_allow_ips: str) -> None:
    """Run the sign-up server, where readers join and leave.

    Needs `signup:` in newsletter.yaml, NEWSLETTER_SECRET and the provider's key in the
    environment. Run it behind a TLS proxy (the guide: docs/signups.md).

    \b
    Example:
      newsletter serve --port 8080
    """
    from newsletter.signup.serve import serve

    serve(_settings(), host, port, db, forwarded_allow_ips)


@cli.command()
@click.argument("issue")
@click.option("--no-open", is_flag=True, help="Print the preview page's path instead of opening it.")
@click.option("--serve", is_flag=True, help="Serve the preview on 127.0.0.1 and rebuild when a file changes.")
@click.option("--port", default=8000, show_default=True, help="The port for --serve (0: any free port).")
@click.option("--as", "as_email", metavar="EMAIL",
              help="Fill the merge fields from this subscriber of the list (default: its first subscribed address).")
def preview(issue: str, no_open: bool, serve: bool, port: int, as_email: str | None) -> None:
    """Render ISSUE and open it in the browser.

    The preview shows the inbox line, desktop and phone widths, dark mode, the
    text part and the checks.

    \b
    Example:
      newsletter preview issue-12
      newsletter preview issue-12 --as ada@example.org
      newsletter preview issue-12 --serve
    """
    from newsletter import preview as previewing

    def open_in_browser(target: str, shown: str) -> None:
        if _terminal().open_in_browser(target):
            click.echo(f"Opening {shown} in the browser.")
        else:
            click.secho("warning: no browser could be opened; open the preview yourself:", fg="yellow", err=True)
            click.echo(shown)

    settings = _settings()
    if serve:
        def report(result: str | Preview | Exception) -> None:
            if isinstance(result, str):
                click.echo(f"Serving the preview at {result} (Ctrl-C to stop); rebuilding on changes.")
                if not no_open:
                    open_in_browser(result, result)
            elif isinstance(result, NewsletterError):
                click.secho(f"error: {result}", fg="red", err=True)
            elif isinstance(result, Exception):
                detail = " ".join(str(result).split())
                click.secho(f"error: unexpected {type(result).__name__}{': ' + detail if detail else ''}"
                            " (still serving; please report it)", fg="red", err=True)
            else:
                click.echo(f"rebuilt {where(result.page)}")

        serve_preview = _terminal().serve_preview or previewing.serve
        serve_preview(settings, issue, port, on_rebuild=report, as_email=as_email)
        return
    built = previewing.write_preview(settings, issue, as_email)
    _print_findings(built.report)
    if no_open:
        click.echo(where(built.page))
    else:
        open_in_browser(str(built.page), where(built.page))


@cli.command()
@click.argument("issue")
@click.option("--list", "list_name", default="main", show_default=True, metavar="NAME",
              help="The subscriber list: subscribers/NAME.csv.")
@click.option("--tag", "tags", multiple=True, metavar="T",
              help="Only subscribers with this tag (repeat: any of several).")
@click.option("--dry-run", is_flag=True,
              help="Send nothing: write each request body to build/ISSUE/dry-run/ (SMTP: the first 100 "
                   "messages, all counted). Needs no API key.")
@click.option("--to", "proof_to", multiple=True, metavar="EMAIL",
              help="Send a proof to EMAIL only (repeatable); not counted as sending the issue.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
# 16 and 8 are config.MAX_CONCURRENCY and DEFAULT_CONCURRENCY, written out so that `--help`
# does not load the config module (and YAML) at start-up; a test holds them equal.
@click.option("--concurrency", type=click.IntRange(1, 16), default=None, metavar="N",
              help="Requests in flight at once, each over its own connection; a dry run writes "
                   "one body at a time [default: sendgrid.concurrency in newsletter.yaml, else 8].")
@click.option("--retry-uncertain", is_flag=True,
              help="Also send to recipients whose request got no answer in an earlier run.")
@click.option("--first-send", is_flag=True,
              help="Send although sent/ISSUE.sqlite is missing and a trace (its lock, a saved copy, another "
                   "ledger of the same issue) says it was sent before: you know it was not.")
@click.option("--no-web-check", is_flag=True,
              help="Do not check first that the issue's web page and images are online.")
@click.option("--at", "at", metavar="WHEN",
              help="Have SendGrid deliver it at WHEN, at most 72 hours ahead: ISO 8601 with an offset "
                   "(2026-12-02T09:00+01:00) or local time ('2026-12-02 09:00'). Everything is posted now.")
def send(issue: str, list_name: str, tags: tuple[str, ...], dry_run: bool, proof_to: tuple[str, ...],
         yes: bool, concurrency: int | None, retry_uncertain: bool, first_send: bool, no_web_check: bool,
         at: str | None) -> None:
    """Send ISSUE to the subscribed addresses of a list.

    It goes through the provider of newsletter.yaml (SendGrid, or SMTP). Each
    subscriber gets it once: run it again after a failure or a Ctrl-C and it
    sends only to those who do not have it yet. A request that got no answer
    leaves its recipients uncertain: they are listed, and sent to only with
    --retry-uncertain. The exit status is 0 only when every recipient was
    accepted. The API key (SendGrid) comes from the SENDGRID_API_KEY environment
    variable only, the SMTP password from NEWSLETTER_SMTP_PASSWORD. A real send first checks that the issue's web page and images are
    online, and warns about what is not (--no-web-check skips it). With --at,
    every request is posted now and SendGrid holds them until WHEN; `newsletter
    cancel ISSUE` calls them off up to 10 minutes before (SMTP cannot schedule).

    \b
    Example:
      newsletter send issue-12 --dry-run
      newsletter send issue-12 --to me@example.org
      newsletter send issue-12 --list main --tag members
      newsletter send issue-12 --at "2026-12-02 09:00"
    """
    from newsletter.errors import SendError
    from newsletter.when import describe
    from newsletter.sending.report import SendInterrupted, SendStopped
    from newsletter.sending.plan import SendOptions, prepare_send
    from newsletter.sending.run import nothing_left_to_send, run_send

    options = SendOptions(list_name=list_name, tags=tags, dry_run=dry_run, proof_to=proof_to,
                          concurrency=concurrency, retry_uncertain=retry_uncertain, at=at, first_send=first_send,
                          web_check=not no_web_check)
    terminal = _terminal()
    # first: whatever else stops the send is said with it
    settings = _settings()
    plan = prepare_send(settings, issue, options, retry=terminal.retry,
                        provider=terminal.provider(settings) if terminal.provider is not None else None)
    ask = not (dry_run or yes)
    if ask and not terminal.can_ask:
        raise SendError("no terminal to ask for confirmation on: add --yes to send without asking "
                        "(or --dry-run to try it)")
    _echo_report(plan)
    timing = plan.timing
    for warning in plan.warnings:  # the timing's, and the web check's: readers load the images from the web
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    if not (dry_run or proof_to) and plan.settings.signup is not None:  # before the list is read
        from newsletter.signup.sync import pull_before_send

        pulled = pull_before_send(plan.settings)
        for line in pulled.lines():
            click.echo(line)
        if pulled.unreachable:
            click.secho(f"warning: {pulled.unreachable}", fg="yellow", err=True)
            if ask:
                click.confirm("Go on without the sign-up server's latest changes?", abort=True)
    from newsletter.sending.pacing import pace_limits

    limits = None if dry_run else pace_limits(plan.settings, plan.provider.name)
    total = None
    if not (ask or terminal.stdout_is_a_screen) and limits is not None:  # the time left is said from it
        total = plan.count().to_send
    if ask or terminal.stdout_is_a_screen:
        audience = plan.count()
        total = audience.to_send
        _echo_report(audience)
        if audience.to_send == 0:
            nothing_left_to_send(plan)
            sys.exit(0 if not audience.uncertain else 1)
        if ask:
            if timing.send_at is not None:
                click.confirm(f"Schedule it for {describe(timing.send_at)}?", abort=True)
            elif timing.passed is not None:
                click.confirm("Its scheduled time has passed: send the rest now?", abort=True)
            else:
                click.confirm("Send it now?", abort=True)
    try:
        with _SendProgress(total, terminal, paced=limits is not None,
                           left_today=limits.left_today if limits is not None else None) as progress:
            report = run_send(plan, progress, on_stop=lambda: click.echo(
                "stopping: no new request will be posted; waiting for the answers to the requests in flight",
                err=True), reread_list=terminal.reread_list)
    except SendInterrupted as interrupted:
        _echo_report(interrupted.report)
        if interrupted.report.stopped:
            click.secho(f"error: {interrupted.report.stopped}", fg="red", err=True)
        click.echo(str(interrupted), err=True)
        # 128 + the signal, as a shell reports a process it stopped: 130 for Ctrl-C, 143 for SIGTERM.
        signals = interrupted.report.signals
        sys.exit(128 + (signals[0] if signals else 2))
    except SendStopped as stopped:
        _echo_report(stopped.report)
        raise
    _echo_report(report)
    if not report.ok:
        sys.exit(1)


def _has_a_display() -> bool:
    """Whether a browser window could open: on Linux and the BSDs, only with a display.

    Without one, xdg-open tries every browser it knows, prints each failure, and
    click.launch (which does not wait for it) would still report success.
    """
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class _SendProgress:
    """A rich progress bar on a terminal; otherwise a plain line every few seconds."""

    PLAIN_EVERY = 5.0

    def __init__(self, total: int | None, terminal: Terminal, paced: bool = False,
                 left_today: int | None = None) -> None:
        """`paced`: smtp.rate or smtp.daily_limit holds the send back, so the time left is worth saying;
        `left_today`: how many more messages the day's limit allows."""
        self.total = total
        self.terminal = terminal
        self.paced = paced
        self.left_today = left_today
        self.bar: Progress | None = None
        self.last_line = 0.0
        self.started = 0.0

    def __enter__(self) -> _SendProgress:
        self.last_line = self.started = self.terminal.clock()
        if self.terminal.stdout_is_a_screen:
            from rich.progress import Progress

            self.bar = Progress(transient=True)
            self.bar.start()
            self.task = self.bar.add_task("sending, 0 requests in flight", total=self.total)
        return self

    def __call__(self, report: SendReport) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=report.done,
                            description=f"sending, {self.pace(report)}{_in_flight(report)}")
        elif (now := self.terminal.clock()) - self.last_line >= self.PLAIN_EVERY:
            self.last_line = now
            unit = "request" if report.provider == "SendGrid" else "message"
            click.echo(f"... {report.accepted:,} accepted, {report.requests:,} "
                       f"{unit}{'s' if report.requests != 1 else ''} so far, {self.pace(report)}{_in_flight(report)}")

    def pace(self, report: SendReport) -> str:
        """`120 messages/s, ` once some are done; under a rate or daily limit also `about 4 min left, `
        (or `about 4 min left today, ` when the day's limit stops the send before the end)."""
        elapsed = self.terminal.clock() - self.started
        if not report.done or elapsed <= 0:
            return ""
        per_second = report.done / elapsed
        unit = "recipients" if report.provider == "SendGrid" else "messages"
        pace = f"{per_second:,.1f}" if per_second < 10 else f"{per_second:,.0f}"
        text = f"{pace} {unit}/s, "
        if self.paced and self.total is not None:
            to_go = max(self.total - report.done, 0)
            today = ""
            if self.left_today is not None and self.left_today - report.done < to_go:
                to_go, today = max(self.left_today - report.done, 0), " today"
            text += f"about {_duration(to_go / per_second)} left{today}, "
        return text

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _duration(seconds: float) -> str:
    """`40 s`, `4 min`, `2 h 5 min`: a time left, as a progress line says it."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def _in_flight(report: SendReport) -> str:
    return f"{report.in_flight} request{'s' if report.in_flight != 1 else ''} in flight"


@cli.command()
@click.argument("folder", required=False, type=click.Path(path_type=Path, file_okay=False))
def backup(folder: Path | None) -> None:
    """Copy sent/ and subscribers/ into FOLDER, whole and consistent.

    Each send ledger is copied with SQLite's backup API into a file that needs no
    -wal beside it, and each list whole. It refuses while a send runs. FOLDER must
    be new or empty [default: backups/DATE-TIME/ in the publication].

    \b
    Example:
      newsletter backup
      newsletter backup /mnt/usb/letters-2026-12-06
    """
    from newsletter.sending.backup import make_backup

    report = make_backup(_settings(), folder)
    for line in report.lines():
        click.echo(line)


@cli.command()
@click.argument("issue")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as a JSON object.")
@click.option("--uncertain", "list_uncertain", is_flag=True,
              help="List the recipients whose request got no answer.")
def status(issue: str, as_json: bool, list_uncertain: bool) -> None:
    """Show how far the sending of ISSUE got.

    Sent: accepted by the provider (SendGrid, or the SMTP server). Pending: in a
    request in flight now. Failed: refused or never delivered (the next send
    retries them). Uncertain: no answer came (see `send --retry-uncertain`).
    Cancelled: in a scheduled send that was cancelled. Not sent: readers the
    last send meant to reach and never posted to, as it was stopped or killed
    part way (run the send again). A scheduled send shows when SendGrid
    delivers it.

    \b
    Example:
      newsletter status issue-12
      newsletter status issue-12 --json
    """
    import datetime as dt
    import json

    from newsletter.sending.ledger import issue_schedule, issue_status, uncertain_recipients
    from newsletter.when import describe

    settings = _settings()
    counts = issue_status(settings, issue)
    schedule = issue_schedule(settings, issue)
    scheduled_at = dt.datetime.fromtimestamp(schedule.send_at, dt.UTC) if schedule is not None else None
    uncertain = uncertain_recipients(settings, issue) if list_uncertain else []
    if as_json:
        shown: dict[str, Any] = dict(counts.as_dict())
        shown["scheduled_at"] = scheduled_at.isoformat().replace("+00:00", "Z") if scheduled_at else None
        shown["batch_id"] = schedule.batch_id if schedule is not None else None
        if list_uncertain:
            shown["uncertain_recipients"] = uncertain
        click.echo(json.dumps(shown))
        return
    if not any(counts.as_dict().values()):
        click.echo(f"{issue}: not sent yet")
        return
    for line in counts.lines():
        click.echo(line)
    if scheduled_at is not None and schedule is not None:
        passed = " (passed)" if scheduled_at <= dt.datetime.now(dt.UTC) else ""
        click.echo(f"scheduled  {describe(scheduled_at)}{passed}, batch {schedule.batch_id}")
    for address in uncertain:
        click.echo(address)


@cli.command()
@click.argument("issue")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def cancel(issue: str, yes: bool) -> None:
    """Cancel the scheduled send of ISSUE (see send --at).

    SendGrid refuses a cancel later than 10 minutes before the send time. The
    recipients then count as cancelled, and `newsletter send ISSUE` sends to them
    again, now or --at a new time.

    \b
    Example:
      newsletter cancel issue-12
    """
    from newsletter.errors import SendError
    from newsletter.sending.cancel import prepare_cancel
    from newsletter.when import describe

    if not yes and not _terminal().can_ask:
        raise SendError("no terminal to ask for confirmation on: add --yes to cancel without asking")
    plan = prepare_cancel(_settings(), issue, retry=_terminal().retry)
    if not yes:
        click.confirm(f"Cancel the send of {plan.issue} scheduled for {describe(plan.send_at)}?", abort=True)
    _echo_report(plan.run())


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the findings as one JSON object.")
@click.option("--create-group", metavar="NAME",
              help="First create a SendGrid unsubscribe group NAME and write its id into newsletter.yaml.")
def doctor(as_json: bool, create_group: str | None) -> None:
    """Check the account or SMTP server, and the DNS.

    One line per finding, with what to do; exit status 1 on any error. Needs
    SENDGRID_API_KEY (or, with provider: smtp, NEWSLETTER_SMTP_PASSWORD) in the
    environment. Through SMTP it connects, checks TLS and the certificate, logs in
    and asks MAIL FROM for the sender, then RSET: nothing is sent. The DNS part
    checks SPF, DKIM and DMARC for the provider (and the SMTP host's reverse DNS),
    each finding naming the record to publish; NEWSLETTER_DNS=host[:port] asks
    another DNS server than the system's.

    \b
    Example:
      newsletter doctor --create-group "Riverside letters"
      newsletter doctor --json
    """
    import json

    from newsletter.providers import provider_for

    settings = _settings()
    terminal = _terminal()
    report = provider_for(settings).doctor(create_group, retry=terminal.retry, dns_deadline=terminal.dns_deadline)
    if as_json:
        click.echo(json.dumps(report.as_dict()))
    else:
        _echo_findings(report.findings)
    if not report.ok:
        sys.exit(1)


@cli.command("stats")
@click.argument("issue", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON, with SendGrid's metric names.")
@click.option("--report", is_flag=True,
              help="Write build/stats/index.html: the list's growth and every issue's rates as charts and tables.")
def issue_figures(issue: str | None, as_json: bool, report: bool) -> None:
    """Show how ISSUE did: opens, clicks, bounces, spam reports.

    The figures are SendGrid's for the issue's own category, which every send adds,
    from the day before its first send (SendGrid does not say in which time zone it
    counts days) to today. Spam reports are held against Gmail's 0.1% target (a
    warning) and 0.3% limit (an error, exit 1), bounces against 2% of requests.
    Without ISSUE, one row for each sent issue, newest first, and the newest
    against the mean of those before it (with --json, a list of them). Needs
    SENDGRID_API_KEY. With --report, a page to open in a browser (offline): the
    list's growth by month and each issue's rates as charts, each with its table;
    with provider: smtp, the growth only.

    \b
    Example:
      newsletter stats issue-12
      newsletter stats --json
      newsletter stats --report
    """
    import json

    from newsletter.issue_stats import all_stats, issue_stats

    if report and (issue is not None or as_json):
        raise click.UsageError("--report writes the page of every issue: give it no ISSUE and no --json")
    settings = _settings()
    retry = _terminal().retry
    if report:
        from newsletter.stats_report import write_stats_report

        _echo_report(write_stats_report(settings, retry=retry))
        return
    if issue is not None:
        figures = issue_stats(settings, issue, retry=retry)
        findings = figures.findings()
        if as_json:
            click.echo(json.dumps(figures.as_dict()))
        else:
            _echo_report(figures)
            _echo_findings(findings)
        if any(finding.level == "error" for finding in findings):
            sys.exit(1)
        return
    every = all_stats(settings, retry=retry)
    if as_json:
        click.echo(json.dumps([figures.as_dict() for figures in every.issues]))
    else:
        # Every issue over a limit is named, but the overview exits 0: it is the history, and
        # `stats ISSUE` is the one that fails for an issue over Gmail's 0.3%.
        _echo_report(every)
        _echo_findings(every.findings())


def _echo_findings(findings: Sequence[Finding]) -> None:
    """Warnings and errors of a report, coloured as doctor's are."""
    for finding in findings:
        click.secho(str(finding), fg={"warning": "yellow", "error": "red"}.get(finding.level))


# Allocations between passes of the cyclic garbage collector, by generation. With Python's
# (700, 10, 10) a cold `build` spent 35 ms of its half second passing over what its imports
# make (modules, classes, functions: never garbage), once over everything among them; 20 ms
# now, most of it while click and this module are imported, before this is set. Objects still
# go when their last reference does; only cycles wait for 20,000 new objects rather than 700.
# Set for the command's own process, not wherever the package is imported.
GC_THRESHOLDS = (20_000, 10, 10)


def main() -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    cli(prog_name="newsletter")
