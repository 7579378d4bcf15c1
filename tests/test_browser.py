"""The preview page, the email and the web edition in a real headless Chromium, at a phone's width.

Needs Debian's chromium and chromium-driver (`.ci/run` installs them); skips, saying
so, where they are absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.render.templates import PACKAGE_TEMPLATES
from tests.browser_helpers import CHROMEDRIVER, CHROMIUM, PHONE_WIDTH, at_width, in_both_schemes
from tests.helpers import article, folded_and_unfolded, long_paragraph_issue, png, run, write_issue

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="headless browser test needs chromium and chromedriver (apt-get install chromium chromium-driver)",
)

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
    result = run("preview", "issue-1", "--no-open")
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


JUMP_WITHOUT_IDS = """
// What Gmail, Yahoo and Outlook for Windows leave: no id at all, so only an <a name> can be a target.
document.querySelectorAll('[id]').forEach(el => el.removeAttribute('id'));
const link = document.querySelectorAll('.contents a')[arguments[0]];
const title = [...document.querySelectorAll('h2')].find(h => h.textContent === link.textContent);
const before = title.getBoundingClientRect().top;
link.click();
return {before: before, ids: document.querySelectorAll('[id]').length};
"""


def test_contents_links_jump_in_a_client_that_honours_only_named_anchors(browser, built: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    at_width(browser, 1024, (built / "preview-email.html").as_uri())
    found = browser.execute_script(JUMP_WITHOUT_IDS, 1)
    assert found["ids"] == 0 and found["before"] > 800, found  # the second article starts below the fold
    # The jump scrolls the page: wait for it, then the article's title is at the top of the window.
    WebDriverWait(browser, 30, poll_frequency=0.1).until(lambda b: b.execute_script("return window.scrollY") > 0)
    top = browser.execute_script(
        "return [...document.querySelectorAll('h2')].find(h => h.textContent === arguments[0])"
        ".getBoundingClientRect().top", "The river in December")
    assert 0 <= top <= 40, top  # below it only the title's own top margin


def test_preview_page_shows_both_widths_on_a_phone(browser, built: Path) -> None:
    at_width(browser, PHONE_WIDTH, (built / "preview.html").as_uri())
    frames = browser.execute_script(
        "return [...document.querySelectorAll('iframe')].map(f => ({w: f.getBoundingClientRect().width,"
        " inner: f.contentDocument.documentElement.scrollWidth, client: f.contentDocument.documentElement.clientWidth}))")
    assert len(frames) == 3  # desktop, phone, dark mode
    for frame in frames:
        assert frame["inner"] <= frame["client"], frame
    layout = browser.execute_script(OVERFLOW)
    assert layout["scrollWidth"] <= PHONE_WIDTH, layout
    text = browser.execute_script("return document.querySelector('.text-part').innerText")
    assert "WINTER READINGS AT THE CORN EXCHANGE" in text
    assert browser.execute_script(SMALLEST_TEXT) >= 14


LONG_URL = "https://www.ft.com/content/8d1b2f5e0c2a4c7e9b1a3f5d7e9c1b3a5d7f9e1c3b5a7d9f1e3c5b7a9d1f3e5c7"
LONG_WORD = "Donaudampfschifffahrtselektrizitätenhauptbetriebswerkbauunterbeamtengesellschaft" * 2


@pytest.fixture
def wide_issue(publication: Path) -> Path:
    """An issue with what pushes an email wider than a phone: long URLs and words, a wide image, code."""
    folder = write_issue(publication, "wide", {"01-wide.md": article("Wide things", f"""
        A paragraph with a long link: {LONG_URL} and then more words after it.

        A long word: {LONG_WORD}.

        A plain http link, which the checks list in full: {LONG_URL.replace("https:", "http:")}

        - A list item with a link: {LONG_URL}
        - [A link whose text is the URL: {LONG_URL}]({LONG_URL})

        ![A wide photograph](wide.png)

        ![A broken image](missing.png)

            code_block_with_a_long_line = "{LONG_WORD}" + "{LONG_URL}"

        ---

        Inline code: `{LONG_WORD}`
        """)})
    (folder / "wide.png").write_bytes(png(1600, 400))
    result = run("preview", "wide", "--no-open")
    assert result.exit_code == 0, result.output
    return publication / "build" / "wide"


@pytest.mark.parametrize("page", ["preview-email.html", "preview.html"])
def test_long_urls_words_images_and_code_fit_a_phone(browser, wide_issue: Path, page: str) -> None:
    at_width(browser, PHONE_WIDTH, (wide_issue / page).as_uri())
    layout = browser.execute_script(OVERFLOW)
    assert layout["scrollWidth"] <= PHONE_WIDTH, layout
    assert layout["wide"] == [], layout
    if page == "preview.html":
        assert LONG_URL.replace("https:", "http:") in browser.execute_script("return document.querySelector('.checks').innerText")
        frames = browser.execute_script(
            "return [...document.querySelectorAll('iframe')].map(f => [f.contentDocument.documentElement.scrollWidth,"
            " f.contentDocument.documentElement.clientWidth])")
        assert all(inner <= client for inner, client in frames), frames
    else:
        # The processed file, scaled from 1600 px to 1,200 px (twice the column).
        assert browser.execute_script("return document.querySelector('img[alt=\"A wide photograph\"]').naturalWidth") == 1200


def test_rule_and_broken_image_alt_text_are_styled_in_both_schemes(browser, wide_issue: Path) -> None:
    style = ("const hr = getComputedStyle(document.querySelector('hr')), img = getComputedStyle("
             "document.querySelector('img[alt=\"A broken image\"]'));"
             "return [hr.borderTopStyle, hr.borderTopColor, img.color, img.fontFamily, img.fontSize];")
    found = in_both_schemes(browser, (wide_issue / "preview-email.html").as_uri(), style)
    light, dark = found["light"], found["dark"]
    assert light[:3] == ["solid", "rgb(217, 207, 191)", "rgb(95, 90, 82)"], light
    assert "Helvetica" in light[3] and light[4] == "14px"
    assert dark[:3] == ["solid", "rgb(74, 69, 61)", "rgb(181, 173, 159)"], dark


@pytest.fixture
def site(publication: Path) -> Path:
    result = run("site")
    assert result.exit_code == 0, result.output
    return publication / "build" / "site"


def test_web_page_fits_a_phone_and_has_dark_mode(browser, site: Path) -> None:
    """The web page with its one stylesheet: no sideways scrolling on a phone, its processed
    image shown, and dark colours where the reader's system asks for them."""
    colours = ("return [getComputedStyle(document.body).backgroundColor,"
               " getComputedStyle(document.querySelector('h3')).color]")
    page = (site / "issue-1" / "index.html").as_uri()
    at_width(browser, PHONE_WIDTH, page)
    layout = browser.execute_script(OVERFLOW)
    assert layout["scrollWidth"] <= PHONE_WIDTH, layout
    assert layout["wide"] == [], layout
    assert browser.execute_script(SMALLEST_TEXT) >= 14
    assert browser.execute_script("return document.querySelector('img').naturalWidth") == 552
    found = in_both_schemes(browser, page, colours)
    light, dark = found["light"], found["dark"]
    assert light == ["rgb(244, 241, 236)", "rgb(34, 32, 28)"], light
    assert dark == ["rgb(27, 26, 24)", "rgb(241, 236, 228)"], dark


def test_archive_fits_a_phone(browser, site: Path) -> None:
    at_width(browser, PHONE_WIDTH, (site / "index.html").as_uri())
    layout = browser.execute_script(OVERFLOW)
    assert layout["scrollWidth"] <= PHONE_WIDTH, layout
    assert browser.execute_script("return document.querySelectorAll('.archive li').length") == 1


# Every visible text element's colour against the background it is drawn on (the nearest
# ancestor with an opaque background), as WCAG 2.1 computes contrast.
CONTRASTS = """
const parse = c => { const m = c.match(/[\\d.]+/g).map(Number); return {rgb: m.slice(0, 3), a: m.length > 3 ? m[3] : 1}; };
const lum = rgb => { const [r, g, b] = rgb.map(v => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
const background = el => { for (; el; el = el.parentElement) { const c = parse(getComputedStyle(el).backgroundColor);
  if (c.a > 0.99) return c.rgb; } return [255, 255, 255]; };
const own = el => [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
return [...document.querySelectorAll(arguments[0])].filter(el => own(el) && el.getBoundingClientRect().height > 0
    && !el.closest('[aria-hidden="true"]')).map(el => {
  const fg = parse(getComputedStyle(el).color).rgb, bg = background(el);
  const [hi, lo] = [lum(fg), lum(bg)].sort((x, y) => y - x);
  return {tag: el.tagName, text: el.textContent.trim().slice(0, 30), ratio: (hi + 0.05) / (lo + 0.05)};
});
"""
BODY_TEXT = "p, li, h1, h2, h3, span, td, blockquote"


def contrasts_in_both_schemes(driver, url: str, selector: str) -> dict[str, list[dict]]:
    return in_both_schemes(driver, url, CONTRASTS, selector)


@pytest.mark.parametrize("page", ["email", "web page"])
def test_body_text_and_links_reach_aa_contrast_in_both_schemes(browser, publication: Path, page: str) -> None:
    """WCAG AA (4.5:1) for every visible text and link, measured as Chromium draws them, light and dark."""
    if page == "email":
        assert run("preview", "issue-1", "--no-open").exit_code == 0
        url = (publication / "build" / "issue-1" / "preview-email.html").as_uri()
    else:
        assert run("site").exit_code == 0
        url = (publication / "build" / "site" / "issue-1" / "index.html").as_uri()
    for scheme, texts in contrasts_in_both_schemes(browser, url, BODY_TEXT).items():
        assert len(texts) > 20, (scheme, texts)
        low = [t for t in texts if t["ratio"] < 4.5]
        assert low == [], (scheme, low)
    for scheme, links in contrasts_in_both_schemes(browser, url, "a").items():
        assert len(links) >= 5, (scheme, links)
        assert min(link["ratio"] for link in links) >= 4.5, (scheme, links)


def test_a_faint_accent_is_measured_as_faint(browser, publication: Path) -> None:
    """The measure above sees what `check` warns about: a mustard accent on the light card."""
    from tests.helpers import update_config

    update_config(publication, accent_color="#e8c547")
    result = run("preview", "issue-1", "--no-open")
    assert "accent_color #e8c547 has a contrast of 1.7:1 on the light background" in result.output + result.stderr
    found = contrasts_in_both_schemes(browser, (publication / "build" / "issue-1" / "preview-email.html").as_uri(),
                                      ".article a")
    assert max(link["ratio"] for link in found["light"]) < 2
    assert min(link["ratio"] for link in found["dark"]) >= 4.5  # the accent itself reads on the dark card


def test_serve_reloads_the_open_page_after_a_rebuild(browser, publication: Path) -> None:
    """The page open in the browser shows the change without the editor reloading it."""
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.helpers import serving

    with serving(publication, "--port", "0") as (_server, url):
        at_width(browser, 1024, url)
        browser.execute_script("window.notReloaded = true;")
        article = publication / "issues" / "issue-1" / "02-the-river-in-december.md"
        article.write_text(article.read_text(encoding="utf-8").replace(
            "title: The river in December", "title: The river in deep December"), encoding="utf-8")
        # Waits on the page itself: reloaded (the marker gone) and showing the new title.
        WebDriverWait(browser, 60, poll_frequency=0.2).until(
            lambda d: d.execute_script("return !window.notReloaded && document.readyState === 'complete'"))
        frame = browser.execute_script("return document.querySelector('iframe').getAttribute('srcdoc')")
        assert "The river in deep December" in frame


def test_a_reader_joins_from_the_web_edition_confirms_in_one_click_and_leaves_with_the_button(
        browser, publication: Path, sendgrid, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19's walk: the web edition's form, the confirmation email's link (one click: the page
    posts itself), sync, then a sent issue's unsubscribe link and its button, sync again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from newsletter.config import load_settings
    from newsletter.site import build_site
    from tests.signup_helpers import READER, SECRET, SignupServer, link_in, wait_for_mails
    from tests.site_server import StaticSite, point_base_url
    from tests.subscriber_helpers import rows

    def heading_is(text: str) -> None:  # the page may be replaced while it is read (the confirm page posts itself)
        WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: d.find_element(By.TAG_NAME, "h1").text == text)

    monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
    with StaticSite(publication / "build" / "site", "/issues") as site:
        point_base_url(publication, site.base_url)
        with SignupServer(publication):
            build_site(load_settings(publication))
            # 1-3: the issue's page, its form, the email's link, "You're subscribed".
            browser.get(f"{site.base_url}/issue-1/")
            browser.find_element(By.ID, "signup-email").send_keys(READER)
            browser.find_element(By.CSS_SELECTOR, "form.signup button").click()
            heading_is("Check your inbox")
            browser.get(link_in(wait_for_mails(sendgrid, READER, 1)[0], "confirm"))
            heading_is("You're subscribed")
            # 4-5: sync; the reader is in the list with the evidence of their consent.
            assert run("subscribers", "sync").exit_code == 0
            reader = rows()[READER]
            assert reader["status"] == "subscribed"
            assert reader["signup_page"] == f"{site.base_url}/issue-1/"
            assert reader["signup_confirmed_at"] and reader["signup_confirm_ip"] == "127.0.0.1"
            # 6: a sent issue's unsubscribe link, the button, sync: unsubscribed.
            sent = run("send", "issue-1", "--yes")
            assert sent.exit_code == 0, sent.output
            [issue] = [p for body in sendgrid.accepted if "substitutions" in body["personalizations"][0]
                       for p in body["personalizations"] if p["to"][0]["email"] == READER]
            browser.get(issue["substitutions"]["[%html:unsubscribe_url%]"])
            heading_is("Unsubscribe from The Riverside Writers' Circle")
            browser.find_element(By.CSS_SELECTOR, "form.signup button").click()
            heading_is("You're unsubscribed")
            assert run("subscribers", "sync").exit_code == 0
            assert rows()[READER]["status"] == "unsubscribed"


MIRRORING = """
// The box the article text fills (the email's .content cell, the web page's main), less its padding.
const box = document.querySelector(arguments[0]);
const style = getComputedStyle(box), outer = box.getBoundingClientRect();
const left = outer.left + parseFloat(style.paddingLeft), right = outer.right - parseFloat(style.paddingRight);
// A paragraph of several lines whose last line is short: where that line sits says the alignment.
const lines = p => { const r = document.createRange(); r.selectNodeContents(p);
  return [...r.getClientRects()].filter(x => x.width > 0); };
const paragraph = [...document.querySelectorAll('.article p:not(.byline)')].find(p => {
  const l = lines(p); return l.length > 1 && l[l.length - 1].width < (right - left) / 2; });
const last = lines(paragraph).pop();
const item = document.querySelector('.article ol li').getBoundingClientRect();
return {direction: getComputedStyle(paragraph).direction, dir: document.documentElement.dir,
        left: left, right: right, lastLeft: last.left, lastRight: last.right, itemLeft: item.left, itemRight: item.right,
        quoteBorderRight: getComputedStyle(document.querySelector('.article blockquote')).borderRightWidth};
"""


def test_a_right_to_left_issue_previews_mirrored(browser, publication: Path) -> None:
    """In Hebrew (not built in: every phrase under `strings:`) the email and the web page read from the right."""
    from tests.helpers import HEBREW_PHRASES, update_config

    update_config(publication, language="he", strings=HEBREW_PHRASES)
    for command in (["preview", "issue-1", "--no-open"], ["site"]):
        result = run(*command)
        assert result.exit_code == 0, result.output
    pages = {".content": publication / "build" / "issue-1" / "preview-email.html",
             "main.content": publication / "build" / "site" / "issue-1" / "index.html"}
    for box, page in pages.items():
        at_width(browser, 1024, page.as_uri())
        found = browser.execute_script(MIRRORING, box)
        assert found["direction"] == "rtl" and found["dir"] == "rtl", (page.name, found)
        # A short last line ends at the right edge of the column and stops well short of its left.
        assert abs(found["lastRight"] - found["right"]) <= 1, (page.name, found)
        assert found["lastLeft"] > found["left"] + 100, (page.name, found)
        # A list's items are indented from the right (their numbers there), flush with the column on the left.
        assert abs(found["itemLeft"] - found["left"]) <= 1, (page.name, found)
        assert abs(found["right"] - found["itemRight"] - 24) <= 1, (page.name, found)
        assert found["quoteBorderRight"] == "3px", (page.name, found)


LAYOUT = """
const boxes = [...document.querySelectorAll('*')].map(el => {
  const r = el.getBoundingClientRect();
  return [el.tagName, r.x, r.y, r.width, r.height];
});
return {boxes: boxes, text: document.body.innerText};
"""


def test_the_folded_email_shows_exactly_what_it_showed_on_long_lines(browser, publication: Path, tmp_path: Path) -> None:
    """The line breaks that fold a writer's long paragraphs (for SMTP's 998 octets) change nothing on
    screen: every element's box, the text as a reader copies it, and the pixels, at both widths."""
    long_paragraph_issue(publication)
    folded, unfolded = folded_and_unfolded(publication, "ledgers")
    assert folded != unfolded
    for seen in _folded_and_unfolded_seen(browser, tmp_path, folded, unfolded):
        assert seen["folded"][0] == seen["unfolded"][0]
        assert seen["folded"][1] == seen["unfolded"][1], "the screenshots differ"
        assert "川の 記録 を 読む" in seen["folded"][0]["text"]


def test_a_template_rule_keeping_line_breaks_in_css_text_4_form_is_not_folded(
        browser, publication: Path, tmp_path: Path) -> None:
    """A publication's email.css whose paragraphs keep line breaks as `white-space: wrap preserve-breaks`
    (CSS Text 4's long form of pre-line): the fold looked only for a value starting `pre`, broke the
    paragraphs' lines, and a reader saw them broken where they were folded."""
    css = (PACKAGE_TEMPLATES / "email.css").read_text(encoding="utf-8")
    (publication / "templates").mkdir(exist_ok=True)
    (publication / "templates" / "email.css").write_text(css + "\np{white-space:wrap preserve-breaks}\n",
                                                        encoding="utf-8")
    long_paragraph_issue(publication)
    folded, unfolded = folded_and_unfolded(publication, "ledgers")
    for seen in _folded_and_unfolded_seen(browser, tmp_path, folded, unfolded):
        assert seen["folded"][0]["text"] == seen["unfolded"][0]["text"]
        assert seen["folded"][0] == seen["unfolded"][0]


def _folded_and_unfolded_seen(browser, tmp_path: Path, folded: str, unfolded: str) -> list[dict[str, tuple]]:
    """At a phone's and a desktop's width, each page's layout (`LAYOUT`) and screenshot."""
    pages = {}
    for name, html in (("folded", folded), ("unfolded", unfolded)):
        pages[name] = tmp_path / f"{name}.html"
        pages[name].write_text(html, encoding="utf-8")
    found = []
    for width in (PHONE_WIDTH, 1024):
        seen = {}
        for name, page in pages.items():
            at_width(browser, width, page.as_uri())
            shot = browser.execute_cdp_cmd("Page.captureScreenshot", {"captureBeyondViewport": True})["data"]
            seen[name] = (browser.execute_script(LAYOUT), shot)
        found.append(seen)
    return found
