"""The preview page and the email in a real headless Chromium, at a phone's width.

Needs Debian's chromium and chromium-driver (`.ci/run` installs them); skips, saying
so, where they are absent.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from newsletter.cli import cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="headless browser test needs chromium and chromedriver (apt-get install chromium chromium-driver)",
)

PHONE_WIDTH = 375


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


def at_width(driver, width: int, url: str) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": 800, "deviceScaleFactor": 2, "mobile": width < 600})
    driver.get(url)


OVERFLOW = """
const doc = document.documentElement;
const wide = [...document.querySelectorAll('body *')].filter(el => {
  const r = el.getBoundingClientRect();
  return r.width > 0 && (r.right > window.innerWidth + 1 || r.left < -1);
}).map(el => el.tagName + '.' + el.className);
return {scrollWidth: doc.scrollWidth, innerWidth: window.innerWidth, wide: wide};
"""

SMALLEST_TEXT = """
const sizes = [...document.querySelectorAll('p, li, h1, h2, h3, td')]
  .filter(el => el.textContent.trim() && el.getBoundingClientRect().height > 0)
  .map(el => parseFloat(getComputedStyle(el).fontSize));
return Math.min(...sizes);
"""


@pytest.fixture
def built(publication: Path) -> Path:
    result = CliRunner().invoke(cli, ["preview", "issue-1", "--no-open"])
    assert result.exit_code == 0, result.output
    return publication / "build" / "issue-1"


def test_email_fits_a_phone_without_horizontal_scrolling(browser, built: Path) -> None:
    at_width(browser, PHONE_WIDTH, (built / "preview-email.html").as_uri())
    layout = browser.execute_script(OVERFLOW)
    assert layout["innerWidth"] == PHONE_WIDTH
    assert layout["scrollWidth"] <= PHONE_WIDTH, layout
    assert layout["wide"] == [], layout
    assert browser.execute_script(SMALLEST_TEXT) >= 14
    # The phone layout's media query applied: narrower padding than the desktop's 24px.
    padding = browser.execute_script("return getComputedStyle(document.querySelector('.content')).paddingLeft")
    assert padding == "16px"


def test_email_keeps_its_600px_column_on_a_desktop(browser, built: Path) -> None:
    at_width(browser, 1024, (built / "preview-email.html").as_uri())
    width = browser.execute_script("return document.querySelector('.container').getBoundingClientRect().width")
    assert width == 600


def test_preview_page_shows_both_widths_on_a_phone(browser, built: Path) -> None:
    at_width(browser, PHONE_WIDTH, (built / "preview.html").as_uri())
    frames = browser.execute_script(
        "return [...document.querySelectorAll('iframe')].map(f => ({w: f.getBoundingClientRect().width,"
        " inner: f.contentDocument.documentElement.scrollWidth, client: f.contentDocument.documentElement.clientWidth}))")
    assert len(frames) == 2
    for frame in frames:
        assert frame["inner"] <= frame["client"], frame
    layout = browser.execute_script(OVERFLOW)
    assert layout["scrollWidth"] <= PHONE_WIDTH, layout
    text = browser.execute_script("return document.querySelector('.text-part').innerText")
    assert "WINTER READINGS AT THE CORN EXCHANGE" in text
    assert browser.execute_script(SMALLEST_TEXT) >= 14
