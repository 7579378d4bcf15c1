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
@click.option("--list", "list_name", default="main", show_default=True, metavar="NAME",
              help="The subscriber list: subscribers/NAME.csv.")
@click.option("--tag", "tags", multiple=True, metavar="T",
              help="Only subscribers with this tag (repeat: any of several).")
@click.option("--dry-run", is_flag=True,
              help="Send nothing: write each request body to build/ISSUE/dry-run/. Needs no API key.")
@click.option("--to", "proof_to", multiple=True, metavar="EMAIL",
              help="Send a proof to EMAIL only (repeatable); not counted as sending the issue.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--concurrency", type=click.IntRange(1, 16), default=1, show_default=True, metavar="N",
              help="Requests in flight at once, each over its own connection.")
@click.option("--retry-uncertain", is_flag=True,
              help="Also send to recipients whose request got no answer in an earlier run.")
def send(issue: str, list_name: str, tags: tuple[str, ...], dry_run: bool, proof_to: tuple[str, ...],
         yes: bool, concurrency: int, retry_uncertain: bool) -> None:
    """Send ISSUE to the subscribed addresses of a list through SendGrid.

    Each subscriber gets it once: run it again after a failure or a Ctrl-C and it
    sends only to those who do not have it yet. A request that got no answer
    leaves its recipients uncertain: they are listed, and sent to only with
    --retry-uncertain. The exit status is 0 only when every recipient was
    accepted. The API key comes from the SENDGRID_API_KEY environment variable
    only.

    \b
    Example:
      newsletter send issue-12 --dry-run
      newsletter send issue-12 --to me@example.org
      newsletter send issue-12 --list main --tag members
    """
    from newsletter.errors import SendError
    from newsletter.sending.send import SendOptions, SendStopped, prepare_send

    options = SendOptions(list_name=list_name, tags=tags, dry_run=dry_run, proof_to=proof_to,
                          concurrency=concurrency, retry_uncertain=retry_uncertain)
    ask = not (dry_run or yes)
    if ask and not _can_ask():
        raise SendError("no terminal to ask for confirmation on: add --yes to send without asking "
                        "(or --dry-run to try it)")
    plan = prepare_send(_settings(), issue, options)
    click.echo(f"Issue:    {issue}: {plan.subject}")
    audience_of = f"proof to {', '.join(proof_to)}" if proof_to else (
        f"list {list_name}" + (f", tag {' or '.join(tags)}" if tags else ""))
    click.echo(f"To:       {audience_of}")
    total = None
    if ask or sys.stdout.isatty():
        audience = plan.count()
        total = audience.to_send
        click.echo(f"Recipients: {audience.to_send:,} will receive it, {audience.already:,} already have"
                   + (f", {audience.uncertain:,} uncertain (see --retry-uncertain)" if audience.uncertain else ""))
        if audience.to_send == 0:
            click.echo(f"Everyone selected already has {issue}: nothing to send." if audience.already
                       else "Nothing to send.")
            sys.exit(0 if not audience.uncertain else 1)
        if ask:
            click.confirm("Send it now?", abort=True)
    try:
        with _SendProgress(total) as progress:
            report = plan.run(progress)
    except SendStopped as stopped:
        _print_send_report(stopped.report)
        raise
    _print_send_report(report)
    if not report.ok:
        sys.exit(1)


def _can_ask() -> bool:
    """Whether someone at a terminal can answer the confirmation."""
    return sys.stdin.isatty()


class _SendProgress:
    """A rich progress bar on a terminal; otherwise a plain line every few seconds."""

    PLAIN_EVERY = 5.0

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.bar = None
        self.last_line = 0.0

    def __enter__(self) -> _SendProgress:
        import time

        self.last_line = time.monotonic()
        if sys.stdout.isatty():
            from rich.progress import Progress

            self.bar = Progress(transient=True)
            self.bar.start()
            self.task = self.bar.add_task("sending", total=self.total)
        return self

    def __call__(self, report) -> None:  # noqa: ANN001
        import time

        if self.bar is not None:
            self.bar.update(self.task, completed=report.done)
        elif time.monotonic() - self.last_line >= self.PLAIN_EVERY:
            self.last_line = time.monotonic()
            click.echo(f"... {report.accepted:,} accepted, {report.requests:,} requests so far")

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _print_send_report(report) -> None:  # noqa: ANN001
    what = "Dry run of" if report.dry_run else ("Proof of" if report.proof else "Sent")
    click.echo(f"{what} {report.issue} in {report.elapsed:.1f} s "
               f"({report.per_second:,.0f} recipients/s, {report.requests:,} "
               f"request{'s' if report.requests != 1 else ''})")
    if report.output is not None:
        click.echo(f"Request bodies: {where(report.output)}/ (nothing was sent)")
    rows = [("accepted", report.accepted, ""), ("skipped", report.skipped, "already sent"),
            ("failed", report.failed, ""), ("uncertain", report.uncertain, "no answer came")]
    rows += [(label, count, note) for label, count, note in (
        ("not sent", report.remaining, "the send stopped; run it again"),
        ("duplicates", report.duplicates, "same address twice in the list"),
        ("invalid", report.invalid, "not an email address; fix the list")) if count]
    for label, count, note in rows:
        click.echo(f"  {label:<10} {count:>9,}" + (f"  ({note})" if note and count else ""))
    if report.requests == 0 and report.skipped and report.ok:
        click.echo(f"Everyone already has {report.issue}: nothing was sent.")
    if report.uncertain:
        click.echo(f"Uncertain: SendGrid may or may not have accepted these {report.uncertain:,} "
                   f"(check its activity feed); `newsletter send {report.issue} --retry-uncertain` "
                   "sends to them:")
        for address in report.uncertain_emails:
            click.echo(f"  {address}")
        if report.uncertain > len(report.uncertain_emails):
            click.echo(f"  ... and {report.uncertain - len(report.uncertain_emails):,} more "
                       f"(newsletter status {report.issue} --uncertain)")


@cli.command()
@click.argument("issue")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as a JSON object.")
@click.option("--uncertain", "list_uncertain", is_flag=True,
              help="List the recipients whose request got no answer.")
def status(issue: str, as_json: bool, list_uncertain: bool) -> None:
    """Show how far the sending of ISSUE got: sent, pending, failed, uncertain.

    Sent: accepted by SendGrid. Pending: in a request in flight now. Failed:
    refused or never delivered to SendGrid (the next send retries them).
    Uncertain: the request got no answer (see `send --retry-uncertain`).

    \b
    Example:
      newsletter status issue-12
      newsletter status issue-12 --json
    """
    import json

    from newsletter.sending.send import issue_status, uncertain_recipients

    settings = _settings()
    counts = issue_status(settings, issue)
    if as_json:
        click.echo(json.dumps(counts.as_dict()))
    else:
        for label, count in counts.as_dict().items():
            click.echo(f"{label:<10} {count:>9,}")
    if list_uncertain:
        for address in uncertain_recipients(settings, issue):
            click.echo(address)


def main() -> None:
    cli(prog_name="newsletter")
