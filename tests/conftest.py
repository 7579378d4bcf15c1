"""Fixtures shared by the tests: a publication in a temporary folder, a SendGrid double, an SMTP
server, a headless browser."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser_helpers import CHROMEDRIVER, CHROMIUM
from tests.dns_server import DnsZone, dns_server
from tests.sendgrid_double import SHARED_SENDGRID, SendGridDouble
from tests.site_server import StaticSite, point_base_url
from tests.smtp_server import PASSWORD, SmtpServer, smtp_server, use_smtp

REPO = Path(__file__).resolve().parents[1]


def copy_sample(root: Path) -> Path:
    """The repository's sample publication copied into `root` (made here)."""
    root.mkdir()
    shutil.copy(REPO / "newsletter.yaml", root / "newsletter.yaml")
    shutil.copytree(REPO / "issues", root / "issues")
    shutil.copytree(REPO / "templates", root / "templates")
    (root / "subscribers").mkdir()
    shutil.copy(REPO / "subscribers" / "main.csv", root / "subscribers" / "main.csv")
    return root


@pytest.fixture
def publication(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's sample publication, as the current directory."""
    root = copy_sample(tmp_path / "pub")
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def published_site(publication: Path) -> Iterator[StaticSite]:
    """The publication's web edition built and served on 127.0.0.1, with base_url pointing
    at it: what an editor has after `newsletter site` and an upload, so that a real send's
    check that the issue is online finds it there."""
    from newsletter.config import load_settings
    from newsletter.site import build_site

    with StaticSite(publication / "build" / "site", "/issues") as site:
        point_base_url(publication, site.base_url)
        build_site(load_settings(publication))
        yield site


@pytest.fixture
def sendgrid(monkeypatch: pytest.MonkeyPatch) -> Iterator[SendGridDouble]:
    """A running SendGrid double; NEWSLETTER_SENDGRID_URL and SENDGRID_API_KEY point at it."""
    with SendGridDouble() as double:
        monkeypatch.setenv("NEWSLETTER_SENDGRID_URL", double.url)
        monkeypatch.setenv("SENDGRID_API_KEY", double.api_key)
        yield double


@pytest.fixture
def sendgrid_schema() -> None:
    """Skips the test where SendGrid's published schema is not beside the project."""
    if not (SHARED_SENDGRID / "mail_send_request.patched.schema.json").is_file():
        pytest.skip(f"SendGrid's published schema is not at {SHARED_SENDGRID} (../shared/sendgrid/ is absent)")


@pytest.fixture
def inbox(publication: Path) -> Path:
    """`issues/issue-2/` made by `newsletter new`, and an `inbox/` folder for submissions."""
    from tests.helpers import run

    assert run("new", "issue-2", "--subject", "Spring").exit_code == 0
    folder = publication / "inbox"
    folder.mkdir()
    return folder


@pytest.fixture(scope="session")
def _dns_server() -> Iterator[tuple[DnsZone, str]]:
    with dns_server() as running:
        yield running


@pytest.fixture(autouse=True)
def dns(_dns_server: tuple[DnsZone, str], monkeypatch: pytest.MonkeyPatch) -> DnsZone:
    """The DNS every test's doctor asks (NEWSLETTER_DNS), empty: no test asks the system's resolver.

    Without a record it refuses every query, and doctor warns that the DNS cannot be checked;
    a test of the DNS checks adds the records it needs."""
    zone, address = _dns_server
    zone.clear()
    monkeypatch.setenv("NEWSLETTER_DNS", address)
    return zone


@pytest.fixture
def smtp(publication: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    monkeypatch.setenv("NEWSLETTER_SMTP_PASSWORD", PASSWORD)
    monkeypatch.delenv("SENDGRID_API_KEY", raising=False)
    folder = tmp_path / "smtp"
    folder.mkdir()
    with smtp_server(folder) as server:
        use_smtp(publication, server)
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="newsletter-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
