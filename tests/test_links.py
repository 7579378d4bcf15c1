"""`newsletter check ISSUE --links`, and the check a real send makes that the issue is online,
against a real HTTP server on 127.0.0.1 serving the built site."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest

from tests.helpers import article, run, write_issue
from tests.send_helpers import generated, write_list
from tests.sendgrid_double import SendGridDouble
from tests.site_server import StaticSite
from tests.terminal_double import TerminalDouble


def closed_port() -> int:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        return placeholder.getsockname()[1]


@pytest.fixture
def linked(publication: Path, published_site: StaticSite) -> StaticSite:
    """An issue whose links cover every case, its site built and served, one image removed.

    `site.gone` is a port nobody listens on.
    """
    site = published_site
    gone = site.gone = closed_port()  # type: ignore[attr-defined]
    folder = write_issue(publication, "links", {"a.md": article("Links of every kind", f"""
        ![The weir](weir.png)

        ![The lock](lock.png)

        - [The archive]({site.base_url}/)
        - [An old address]({site.root}/old-page)
        - [A picky server]({site.root}/no-head)
        - [A page that is gone]({site.root}/gone)
        - [Nobody listening](http://127.0.0.1:{gone}/)
        - [Write to us](mailto:editor@example.org)
        """)}, date=dt.date(2027, 1, 7), subject="Links")
    towpath = (publication / "issues" / "issue-1" / "towpath.png").read_bytes()
    (folder / "weir.png").write_bytes(towpath)
    (folder / "lock.png").write_bytes(towpath)
    assert run("site").exit_code == 0
    (site.folder / "links" / "lock.png").unlink()  # published without it
    (site.folder / "picky.html").write_text("<p>only for GET</p>")
    site.refuse_head.add("/no-head")
    site.redirects["/old-page"] = f"{site.base_url}/"
    site.redirects["/no-head"] = "/issues/"
    return site


def test_check_links_reports_each_broken_one_with_its_status_and_article(linked: StaticSite) -> None:
    site = linked
    result = run("check", "links", "--links")
    assert result.exit_code == 1, result.output
    broken = sorted(line for line in result.stderr.splitlines() if line.startswith("broken:"))
    assert broken == sorted([
        f"broken: {site.base_url}/links/lock.png: 404 Not Found (image in “Links of every kind”)",
        f"broken: {site.root}/gone: 404 Not Found (link in “Links of every kind”)",
        f"broken: http://127.0.0.1:{site.gone}/: connection refused (link in “Links of every kind”)",
    ])
    assert f"redirected: {site.root}/old-page -> {site.base_url}/" in result.output
    # HEAD refused (405): GET asked, which the server answers (through a redirect).
    assert ("HEAD", "/no-head") in site.requests and ("GET", "/no-head") in site.requests
    assert "no-head: " not in result.stderr
    assert "links: 8 links and images fetched, 3 broken, 2 redirected" in result.output
    assert "mailto:" not in " ".join(path for _, path in site.requests)


def test_check_links_passes_when_everything_is_online(publication: Path, published_site: StaticSite) -> None:
    folder = write_issue(publication, "fine", {"a.md": article("Fine", f"""
        ![The towpath](towpath.png)

        See [every issue]({published_site.base_url}/) and [the first]({published_site.base_url}/issue-1/).
        """)}, date=dt.date(2027, 1, 8))
    (folder / "towpath.png").write_bytes((publication / "issues" / "issue-1" / "towpath.png").read_bytes())
    assert run("site").exit_code == 0
    result = run("check", "fine", "--links")
    assert result.exit_code == 0, result.output
    assert "fine: 4 links and images fetched, 0 broken, 0 redirected" in result.output
    assert result.output.index("fine: no errors, ") < result.output.index("fine: 4 links")  # all `check` says, too
    assert ("HEAD", "/issues/fine/towpath.png") in published_site.requests


def rate_limited_issue(publication: Path, site: StaticSite) -> None:
    """An issue linking to two pages of a server that rate-limits, and the archive."""
    write_issue(publication, "busy", {"a.md": article("Busy server", f"""
        - [The archive]({site.base_url}/)
        - [A busy page]({site.base_url}/issue-1/)
        - [Ask again soon]({site.base_url}/busy/)
        """)}, date=dt.date(2027, 3, 3))
    assert run("site").exit_code == 0


def test_a_429_is_a_warning_not_a_broken_link(publication: Path, published_site: StaticSite) -> None:
    """A server rate-limiting us says nothing about the link: a warning, exit 0, no long wait."""
    site = published_site
    rate_limited_issue(publication, site)
    site.rate_limited["/issues/issue-1/"] = (100, "120")  # far too long to wait for: asked once only
    site.rate_limited["/issues/busy/"] = (100, None)      # no Retry-After: asked once only
    result = run("check", "busy", "--links")
    assert result.exit_code == 0, result.output
    # The answer's words, not "429" alone: the site's random port may hold those digits (34299).
    warnings = sorted(line for line in result.stderr.splitlines() if "answered 429" in line)
    assert warnings == sorted([
        f"warning: {site.base_url}/issue-1/: could not be checked: the server answered 429 Too Many Requests; "
        "try again later (link in “Busy server”)",
        f"warning: {site.base_url}/busy/: could not be checked: the server answered 429 Too Many Requests; "
        "try again later (link in “Busy server”)",
    ])
    assert "broken:" not in result.stderr
    assert "busy: 3 links and images fetched, 0 broken, 0 redirected, 2 not checked (429)" in result.output
    assert site.requests.count(("HEAD", "/issues/issue-1/")) == 1
    assert site.requests.count(("HEAD", "/issues/busy/")) == 1
    assert not any(method == "GET" for method, path in site.requests if path in ("/issues/issue-1/", "/issues/busy/"))


def test_a_short_retry_after_is_honoured_once(publication: Path, published_site: StaticSite) -> None:
    """Retry-After: 0 (or a second or two): asked once more, and the second answer stands."""
    site = published_site
    rate_limited_issue(publication, site)
    site.rate_limited["/issues/issue-1/"] = (1, "0")  # then the page itself
    site.rate_limited["/issues/busy/"] = (2, "0")     # 429 again: a warning after the one retry
    result = run("check", "busy", "--links")
    assert result.exit_code == 0, result.output
    assert "issue-1/: could not be checked" not in result.stderr
    assert f"warning: {site.base_url}/busy/: could not be checked" in result.stderr
    assert "busy: 3 links and images fetched, 0 broken, 0 redirected, 1 not checked (429)" in result.output
    assert site.requests.count(("HEAD", "/issues/issue-1/")) == 2
    assert site.requests.count(("HEAD", "/issues/busy/")) == 2


def test_a_retry_after_that_is_not_a_number_is_not_honoured_and_not_a_traceback(
        publication: Path, published_site: StaticSite) -> None:
    """`Retry-After: ²` (a digit to str.isdigit(), not to float()): the 429 is a warning as usual."""
    site = published_site
    rate_limited_issue(publication, site)
    site.rate_limited["/issues/busy/"] = (100, "\u00b2")
    result = run("check", "busy", "--links")
    assert result.exit_code == 0, result.output
    assert f"warning: {site.base_url}/busy/: could not be checked" in result.stderr
    assert site.requests.count(("HEAD", "/issues/busy/")) == 1


def test_a_broken_link_beside_a_429_still_fails_the_check(publication: Path, published_site: StaticSite) -> None:
    site = published_site
    write_issue(publication, "mixed", {"a.md": article("Mixed", f"""
        - [A busy page]({site.base_url}/issue-1/)
        - [Gone]({site.base_url}/nowhere/)
        """)}, date=dt.date(2027, 3, 4))
    assert run("site").exit_code == 0
    site.rate_limited["/issues/issue-1/"] = (100, None)
    result = run("check", "mixed", "--links")
    assert result.exit_code == 1, result.output
    assert f"broken: {site.base_url}/nowhere/: 404 Not Found (link in “Mixed”)" in result.stderr
    assert f"warning: {site.base_url}/issue-1/: could not be checked" in result.stderr


def test_a_merge_field_link_is_skipped(publication: Path, published_site: StaticSite) -> None:
    (publication / "templates" / "header.html").write_text(
        '<h1>{{ publication.name }}</h1><p><a href="https://example.org/p?n={{ subscriber.first_name | default(\'x\') }}">'
        "Your page</a></p>", encoding="utf-8")
    write_issue(publication, "plain", {"a.md": article("Plain", f"[Home]({published_site.base_url}/)")},
                date=dt.date(2027, 2, 2))
    assert run("site").exit_code == 0
    result = run("check", "plain", "--links")
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "example.org/p" not in " ".join(p for _, p in published_site.requests)


def test_a_real_send_warns_above_the_question_about_what_is_not_online(
        linked: StaticSite, sendgrid: SendGridDouble) -> None:
    result = run("send", "links", terminal=TerminalDouble(can_ask=True), input="y\n")
    assert result.exit_code == 0, result.output
    url = f"{linked.base_url}/links/lock.png"
    warning = (f"warning: {url} is not online (404 Not Found): an image of the email: readers would see it "
               f"broken; run `newsletter site`, then publish build/site/ so that it is served at {linked.base_url}/")
    assert warning in result.stderr
    assert "weir.png" not in result.stderr and "links/ is not online" not in result.stderr
    assert result.output.index(warning) < result.output.index("Send it now?")
    assert len(sendgrid.accepted) == 1, "a warning, not a refusal: the editor decides"


def test_a_real_send_says_a_rate_limited_web_page_could_not_be_checked(
        publication: Path, published_site: StaticSite, sendgrid: SendGridDouble) -> None:
    """The check before a send: a 429 for the web page is "could not be checked", not "not online"."""
    published_site.rate_limited["/issues/issue-1/"] = (100, None)
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 0, result.output
    assert (f"warning: {published_site.base_url}/issue-1/ could not be checked: the server answered 429 Too Many "
            "Requests; try again later") in result.stderr
    assert "is not online" not in result.stderr


def test_the_web_page_missing_is_named_too(publication: Path, published_site: StaticSite,
                                            sendgrid: SendGridDouble) -> None:
    import shutil

    shutil.rmtree(published_site.folder / "issue-1")  # the issue is not published at all
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 0, result.output
    assert (f"warning: {published_site.base_url}/issue-1/ is not online (404 Not Found): the issue's web page "
            "(the email's “Read on the web” link)" in result.stderr)
    assert f"warning: {published_site.base_url}/issue-1/towpath.png is not online (404 Not Found)" in result.stderr


@pytest.mark.parametrize("options", [["--no-web-check"], ["--dry-run"], ["--to", "me@example.org"]],
                         ids=["no-web-check", "dry-run", "proof"])
def test_no_web_check_for_scripts_dry_runs_and_proofs(publication: Path, linked: StaticSite,
                                                      sendgrid: SendGridDouble, options: list[str]) -> None:
    linked.requests.clear()
    write_list(publication, generated(2))
    result = run("send", "links", "--yes", *options)
    assert result.exit_code == 0, result.output
    assert "not online" not in result.stderr
    assert linked.requests == [], "nothing was fetched"


def test_the_preview_says_when_the_site_is_not_online(publication: Path) -> None:
    result = run("preview", "issue-1", "--no-open")
    assert result.exit_code == 0
    page = (publication / "build" / "issue-1" / "preview.html").read_text(encoding="utf-8")
    assert ("The web edition is not online yet (https://riverside-writers-circle.internal/issues/issue-1/: "
            "the host name does not resolve): readers load the images from") in page
    assert "preview-images/towpath.png" in (publication / "build" / "issue-1" / "preview-email.html").read_text()


def test_the_preview_says_nothing_when_the_site_is_online(publication: Path, published_site: StaticSite) -> None:
    assert run("preview", "issue-1", "--no-open").exit_code == 0
    assert "not online" not in (publication / "build" / "issue-1" / "preview.html").read_text(encoding="utf-8")
