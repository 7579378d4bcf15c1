"""The reader's email and web page: logo, accent colour, dividers, linked contents, bylines, long URLs."""

from __future__ import annotations

import io
from pathlib import Path

import lxml.html
import pytest
from PIL import Image

from newsletter.colors import contrast
from newsletter.config import load_settings
from newsletter.content import load_issue
from newsletter.images import ImageCache
from newsletter.markdown import render_markdown, short_url
from newsletter.render import render_issue
from newsletter.render.web import render_web_page
from tests.helpers import article, assert_one_line_error, run, update_config, write_issue


def rendered(root: Path, name: str = "issue-1"):
    settings = load_settings(root)
    issue = load_issue(settings, name)
    return render_issue(settings, issue), render_web_page(settings, issue)


def write_logo(root: Path, width: int = 480, height: int = 120) -> Path:
    """A logo as a designer sends one: twice the size it is shown at, with EXIF a camera app left in it."""
    image = Image.new("RGB", (width, height), (29, 90, 140))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    path = root / "logo.png"
    image.save(path, exif=exif)
    return path


def test_the_logo_tops_the_email_and_the_web_pages(publication: Path) -> None:
    write_logo(publication)
    update_config(publication, logo="logo.png")
    email, page = rendered(publication)
    tree = lxml.html.document_fromstring(email.html)
    logo = tree.xpath("//img[@class='logo']")[0]
    assert logo.get("src") == "https://riverside-writers-circle.internal/issues/logo.png"
    assert logo.get("alt") == "The Riverside Writers' Circle"
    assert (logo.get("width"), logo.get("height")) == ("200", "50")  # shown at most 200 px wide, in proportion
    assert "display:block" in logo.get("style")
    # Before the title, at the top.
    assert email.html.index('class="logo"') < email.html.index('class="title"')
    web = lxml.html.document_fromstring(page.html).xpath("//img[@class='logo']")[0]
    assert web.get("src") == "../logo.png" and web.get("alt") == "The Riverside Writers' Circle"

    # `site` publishes the processed file where both link it: its metadata stripped.
    result = run("site")
    assert result.exit_code == 0, result.output
    published = publication / "build" / "site" / "logo.png"
    assert published.read_bytes() == ImageCache(None).get(publication / "logo.png").data
    with Image.open(io.BytesIO(published.read_bytes())) as image:
        assert image.size == (480, 120) and 0x010F not in image.getexif()
    archive = lxml.html.document_fromstring((publication / "build" / "site" / "index.html").read_text(encoding="utf-8"))
    assert archive.xpath("//img[@class='logo']/@src") == ["logo.png"]


def test_the_preview_shows_the_processed_logo(publication: Path) -> None:
    write_logo(publication)
    update_config(publication, logo="logo.png")
    assert run("preview", "issue-1", "--no-open").exit_code == 0
    folder = publication / "build" / "issue-1"
    email = lxml.html.document_fromstring((folder / "preview-email.html").read_text(encoding="utf-8"))
    source = email.xpath("//img[@class='logo']/@src")[0]
    assert not source.startswith("https:")
    assert (folder / source).read_bytes() == ImageCache(None).get(publication / "logo.png").data


def test_a_missing_logo_is_an_error_of_check(publication: Path) -> None:
    update_config(publication, logo="brand/logo.png")
    result = run("check", "issue-1")
    assert result.exit_code == 1
    assert "logo brand/logo.png does not exist" in result.output + result.stderr


def test_a_logo_that_is_not_an_image_is_an_error_of_check(publication: Path) -> None:
    (publication / "logo.png").write_text("not a picture", encoding="utf-8")
    update_config(publication, logo="logo.png")
    result = run("check", "issue-1")
    assert result.exit_code == 1
    assert "error: newsletter.yaml: logo logo.png cannot be read as an image (not a PNG" in result.stderr
    assert "BytesIO" not in result.stderr


def test_the_accent_colours_links_titles_and_dividers_in_both_schemes(publication: Path) -> None:
    update_config(publication, accent_color="#8a2d1f")
    email, page = rendered(publication)
    tree = lxml.html.document_fromstring(email.html)
    assert all("color:#8a2d1f" in a.get("style") for a in tree.xpath("//div[@class='article']//a"))
    assert all("color:#8a2d1f" in h2.get("style") for h2 in tree.iter("h2"))
    assert all("#8a2d1f" in td.get("style") for td in tree.xpath("//td[@class='divider-rule']"))
    # Dark mode: the accent lightened until it reads on the dark card.
    settings = load_settings(publication)
    dark = settings.accent_color_dark
    assert dark != "#8a2d1f" and contrast(dark, "#262420") >= 4.5
    assert f"a{{color:{dark}!important}}" in email.html and f"h2{{color:{dark}!important}}" in email.html
    stylesheet = (run("site"), (publication / "build" / "site" / "style.css").read_text())[1]
    assert "--link:#8a2d1f" in stylesheet and f"--link:{dark}" in stylesheet
    assert check_output(publication).count("accent_color") == 0  # both pass: no warning


def check_output(root: Path) -> str:
    result = run("check", "issue-1")
    return result.output + result.stderr


def test_an_accent_hard_to_read_is_a_warning_naming_the_scheme(publication: Path) -> None:
    update_config(publication, accent_color="#e8c547")  # mustard: fine on dark, faint on the light card
    output = check_output(publication)
    assert "warning: newsletter.yaml: accent_color #e8c547 has a contrast of 1.7:1 on the light background" in output
    assert "hard to read in light mode" in output and "dark background" not in output

    update_config(publication, accent_color={"light": "#1d5a8c", "dark": "#3a3f66"})
    output = check_output(publication)
    assert "accent_color #3a3f66" in output and "on the dark background #262420" in output
    assert "light background" not in output


@pytest.mark.parametrize("value", ["blue", "#12345", 12, {"dark": "#ffffff"}])
def test_an_accent_that_is_no_colour_is_one_line(publication: Path, value: object) -> None:
    update_config(publication, accent_color=value)
    assert_one_line_error(run("check", "issue-1"), "newsletter.yaml", "accent_color")


def test_a_divider_between_articles_and_none_after_the_last(publication: Path) -> None:
    email, page = rendered(publication)
    for document in (email.html, page.html):
        tree = lxml.html.document_fromstring(document)
        articles = tree.xpath("//div[@class='article']")
        assert len(articles) == 3
        for previous in articles[:-1]:
            follower = previous.getnext()
            assert follower.tag == "table" and follower.get("class") == "divider"
        assert articles[-1].getnext() is None or articles[-1].getnext().get("class") != "divider"
    assert email.text.count("\n* * *\n") == 2


def test_the_contents_link_to_each_articles_title(publication: Path) -> None:
    email, page = rendered(publication)
    for document in (email.html, page.html):
        tree = lxml.html.document_fromstring(document)
        links = tree.xpath("//ul[@class='contents']//a/@href")
        # The title's id on the web; in the email, the empty named anchor right before the title.
        titles = [h2.get("id") or h2.getprevious().get("id") for h2 in tree.iter("h2")]
        assert links == [f"#{t}" for t in titles] and len(set(titles)) == 3
        assert titles[0] == "article-01-editorial"
        for link in links:
            target = tree.xpath(f"//*[@id='{link[1:]}']")[0]
            assert (target if target.tag == "h2" else target.getnext()).text_content()


def test_text_part_bylines_read_by_name(publication: Path) -> None:
    email, _ = rendered(publication)
    assert "- The river in December by Tomasz Wiśniewski\n" in email.text
    assert "(by " not in email.text


LONG = "https://www.example.org/reports/2026/the-annual-review-of-small-press-poetry-in-the-region?page=2"


def test_a_long_bare_url_reads_as_host_and_short_path(publication: Path) -> None:
    write_issue(publication, "links", {"01-links.md": article("Links", f"""
        Pasted bare: {LONG}

        As its own link: [{LONG}]({LONG}) and <{LONG}>

        Short ones stay: https://example.org/a and [the review]({LONG})
        """)})
    email, page = rendered(publication, "links")
    tree = lxml.html.document_fromstring(email.html)
    links = [(a.get("href"), a.text_content()) for a in tree.xpath("//div[@class='article']//a[@href]")]
    shortened = "example.org/reports/2026/the-annual-review-of-sma…"
    assert links == [(LONG, shortened)] * 3 + [("https://example.org/a", "https://example.org/a"),
                                              (LONG, "the review")]
    assert len(shortened) == 50
    assert shortened in page.html
    # The text part keeps the whole URL, once each.
    assert email.text.count(LONG) == 4 and "…" not in email.text


def test_short_url_keeps_the_host() -> None:
    # 54 characters: without its scheme it fits, whole.
    assert short_url("https://riverside-writers-circle.internal/notes/slow-essay") == (
        "riverside-writers-circle.internal/notes/slow-essay")
    assert short_url("https://example.org/a") == "https://example.org/a"
    assert short_url("https://www.example.org/" + "a" * 60) == "example.org/" + "a" * 37 + "…"
    assert short_url("https://" + "sub." * 14 + "example.org/x") == "sub." * 14 + "example.org/…"
    assert render_markdown("https://example.org/a", "https://x.org/").html.count("https://example.org/a") == 2
