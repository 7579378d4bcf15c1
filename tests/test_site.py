"""`newsletter site`: the web edition of every published issue, its archive and its Atom feed."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import feedparser
import lxml.html
import pytest

from newsletter.config import load_settings
from newsletter.content import load_issue
from newsletter.render import render_issue
from tests.golden import FEED, GOLDEN, WEB_PAGE, render_sample_web
from tests.helpers import article, run, write_issue

BASE = "https://riverside-writers-circle.internal/issues"


def site_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_sample_web_page_and_feed_match_the_golden_files(publication: Path) -> None:
    """A change to the web edition shows up here; after an intended one, run `make golden`."""
    page, feed = render_sample_web(publication)
    assert page == (GOLDEN / WEB_PAGE).read_text(encoding="utf-8"), "web page changed: review, then `make golden`"
    assert feed == (GOLDEN / FEED).read_bytes(), "feed changed: review, then `make golden`"


def test_every_url_of_the_email_under_base_url_is_a_file_of_the_site(publication: Path) -> None:
    """The email's `<base_url>/<issue>/<path>` is the site's file `<issue>/<path>`."""
    result = run("site")
    assert result.exit_code == 0, result.output
    site = publication / "build" / "site"
    settings = load_settings(publication)
    email = render_issue(settings, load_issue(settings, "issue-1"))
    tree = lxml.html.document_fromstring(email.html)
    urls = set(tree.xpath("//a/@href")) | {img.get("src") for img in tree.iter("img")}
    ours = sorted(url for url in urls if url.startswith(BASE + "/"))
    assert f"{BASE}/issue-1/" in ours and f"{BASE}/issue-1/towpath.png" in ours
    for url in ours:
        path = url[len(BASE) + 1:]
        assert (site / (path + "index.html" if path.endswith("/") or not path else path)).is_file(), url
    assert (site / "issue-1" / "towpath.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_web_page_is_the_email_without_anything_personal(publication: Path) -> None:
    assert run("site").exit_code == 0
    page = (publication / "build" / "site" / "issue-1" / "index.html").read_text(encoding="utf-8")
    tree = lxml.html.document_fromstring(page)
    assert "[%" not in page and "Hello" not in page and "nsubscribe" not in page
    text = " ".join(tree.text_content().split())
    assert "The river in December" in text and "“for as long as the heating holds out”" in text
    assert tree.findtext(".//title").startswith("Winter readings, a river in December")

    def meta(attribute: str, name: str) -> str:
        (value,) = tree.xpath(f"//meta[@{attribute}='{name}']/@content")
        return str(value)

    preheader = "Three pieces from the circle, the dates of our winter readings, and a call for your letters."
    assert meta("name", "description") == preheader == meta("property", "og:description")
    assert meta("property", "og:title") == "Winter readings, a river in December, and what we’re reading"
    assert meta("property", "og:url") == f"{BASE}/issue-1/"
    assert meta("property", "og:image") == f"{BASE}/issue-1/towpath.png"
    assert tree.xpath("//link[@rel='alternate' and @type='application/atom+xml']/@href") == [f"{BASE}/feed.xml"]
    # One shared stylesheet, not inlined; the archive and the subscribe page are linked.
    assert tree.xpath("//link[@rel='stylesheet']/@href") == ["../style.css"]
    assert not tree.xpath("//*[@style and not(self::img)]") and not tree.xpath("//style")
    css = (publication / "build" / "site" / "style.css").read_text(encoding="utf-8")
    assert "prefers-color-scheme:dark" in css and "max-width:600px" in css
    hrefs = [a.get("href") for a in tree.iter("a")]
    assert "../" in hrefs and "https://riverside-writers-circle.internal/subscribe" in hrefs
    # The page's images are beside it, as the processed files.
    assert tree.xpath("//img/@src") == ["./towpath.png"]
    levels = [int(h.tag[1]) for h in tree.iter("h1", "h2", "h3", "h4")]
    assert levels.count(1) == 1 and all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False))


def test_without_subscribe_url_there_is_no_subscribe_link(publication: Path) -> None:
    config = publication / "newsletter.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("subscribe_url:", "# subscribe_url:"))
    assert run("site").exit_code == 0
    page = (publication / "build" / "site" / "issue-1" / "index.html").read_text(encoding="utf-8")
    assert "Subscribe" not in page and "/subscribe" not in page


def _three_issues(root: Path) -> None:
    write_issue(root, "issue-2", {"a.md": article("Spring", "Spring words.")}, subject="Spring",
                preheader="The spring issue.", date=dt.date(2027, 3, 1))
    write_issue(root, "issue-3", {"a.md": article("Unfinished", "Half-written.")}, subject="Not yet",
                date=dt.date(2027, 6, 1), draft=True)
    write_issue(root, "aa-old", {"a.md": article("Old", "Old words.")}, subject="An old one",
                preheader="From long ago.", date=dt.date(2025, 1, 5))


def test_archive_lists_published_issues_newest_first_and_drafts_stay_off(publication: Path) -> None:
    _three_issues(publication)
    result = run("site")
    assert result.exit_code == 0, result.output
    assert "3 issues" in result.output and "Drafts left out: issue-3" in result.output
    site = publication / "build" / "site"
    archive = lxml.html.document_fromstring((site / "index.html").read_bytes())
    items = archive.xpath("//ul[@class='archive']/li")
    assert [li.xpath(".//a/@href")[0] for li in items] == ["issue-2/", "issue-1/", "aa-old/"]
    first = " ".join(items[0].text_content().split())
    assert first == "Spring 1 March 2027 The spring issue."
    assert not (site / "issue-3").exists()
    assert "Not yet" not in (site / "feed.xml").read_text(encoding="utf-8")


def test_an_issue_made_a_draft_again_is_taken_off_the_site(publication: Path) -> None:
    _three_issues(publication)
    assert run("site").exit_code == 0
    (publication / "build" / "site" / "notes.txt").write_text("the editor's own file")
    yaml_path = publication / "issues" / "issue-2" / "issue.yaml"
    yaml_path.write_text(yaml_path.read_text(encoding="utf-8") + "draft: true\n", encoding="utf-8")
    result = run("site")
    assert result.exit_code == 0, result.output
    site = publication / "build" / "site"
    assert not (site / "issue-2").exists() and "1 removed" in result.output
    assert "issue-2" not in (site / "index.html").read_text(encoding="utf-8")
    assert (site / "notes.txt").exists(), "only what a build wrote is removed"


def test_a_fresh_draft_with_no_subject_or_articles_does_not_fail_the_site(publication: Path) -> None:
    """`newsletter new` writes a draft with no subject and no articles yet: the site leaves it out."""
    assert run("new", "issue-2").exit_code == 0
    result = run("site")
    assert result.exit_code == 0, result.output
    assert "Drafts left out: issue-2" in result.output
    (publication / "issues" / "issue-2" / "issue.yaml").write_text("subject: Not ready\ndraft: false\n")
    assert run("site").exit_code == 1, "once it is no draft, what is missing is an error"


def test_the_feed_is_atom_with_what_rfc_4287_requires(publication: Path) -> None:
    _three_issues(publication)
    assert run("site").exit_code == 0
    raw = (publication / "build" / "site" / "feed.xml").read_bytes()
    feed = feedparser.parse(raw)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    # atom:feed: id, title, updated (the newest issue's date), an author, a self link.
    assert feed.feed.id == f"{BASE}/"
    assert feed.feed.title == "The Riverside Writers' Circle"
    assert feed.feed.updated == "2027-03-01T00:00:00+00:00"
    assert feed.feed.author_detail.name == "The Riverside Writers' Circle"
    assert {(link.rel, link.href) for link in feed.feed.links} >= {("self", f"{BASE}/feed.xml"), ("alternate", f"{BASE}/")}
    # atom:entry: id, title, updated; newest first; absolute URLs; the content.
    assert [e.id for e in feed.entries] == [f"{BASE}/issue-2/", f"{BASE}/issue-1/", f"{BASE}/aa-old/"]
    river = feed.entries[1]
    assert river.title == "Winter readings, a river in December, and what we’re reading"
    assert river.updated == "2026-12-02T00:00:00+00:00" and river.link == f"{BASE}/issue-1/"
    content = river.content[0]
    assert content.type == "text/html" and "The river in December" in content.value
    assert f'src="{BASE}/issue-1/towpath.png"' in content.value and "[%" not in content.value
    assert all(e.updated for e in feed.entries)


def test_the_same_input_gives_the_same_bytes_and_unchanged_files_are_not_rewritten(
        publication: Path, tmp_path: Path) -> None:
    _three_issues(publication)
    assert run("site").exit_code == 0
    site = publication / "build" / "site"
    first = site_files(site)
    mtimes = {p: p.stat().st_mtime_ns for p in site.rglob("*") if p.is_file()}
    past = 1_000_000_000_000_000_000
    for path in mtimes:
        os.utime(path, ns=(past, past))  # a rewrite would show as a new time
    again = run("site")
    assert "0 of 7 files changed" in again.output, again.output
    assert all(p.stat().st_mtime_ns == past for p in mtimes)
    # A fresh build elsewhere, image cache and all, gives the very same bytes.
    (publication / "build" / "image-cache").rename(tmp_path / "old-cache")
    assert run("site", "-o", str(tmp_path / "elsewhere")).exit_code == 0
    assert site_files(tmp_path / "elsewhere") == first


def test_a_published_issue_needs_a_date(publication: Path) -> None:
    write_issue(publication, "undated", {"a.md": article("When?")})
    result = run("site")
    assert result.exit_code == 1
    assert "error: issues/undated/issue.yaml: `date` is required on the web edition" in result.stderr
    assert (publication / "build" / "site" / "issue-1" / "index.html").is_file(), "the rest is written"


def test_a_missing_image_fails_the_site_naming_it(publication: Path) -> None:
    write_issue(publication, "gone", {"a.md": article("Gone", "![A lost photo](lost.jpg)")},
                date=dt.date(2027, 1, 1))
    result = run("site")
    assert result.exit_code == 1
    assert "error: issues/gone/a.md:4: image lost.jpg does not exist (issues/gone/lost.jpg)" in result.stderr


@pytest.mark.parametrize("value", ["yes please", "1"])
def test_draft_must_be_true_or_false(publication: Path, value: str) -> None:
    write_issue(publication, "odd", {"a.md": article("Odd")})
    path = publication / "issues" / "odd" / "issue.yaml"
    path.write_text(path.read_text(encoding="utf-8") + f"draft: {value}\n", encoding="utf-8")
    result = run("check", "odd")
    assert result.exit_code == 1 and "`draft` must be true or false" in result.stderr


def test_an_image_name_that_leads_out_of_the_issue_is_not_published(publication: Path) -> None:
    folder = write_issue(publication, "sneaky", {"a.md": article("Sneaky", "![Up](%2e%2e/up.png)")},
                         date=dt.date(2027, 1, 2))
    (folder.parent / "up.png").write_bytes((folder.parent / "issue-1" / "towpath.png").read_bytes())
    run("site")
    site = publication / "build" / "site"
    assert not (site / "up.png").exists() and not (site / "sneaky" / "up.png").exists()
    assert "image %2e%2e/up.png is outside the issue's folder" in run("check", "sneaky").stderr


def test_an_image_of_another_issue_is_an_error(publication: Path) -> None:
    write_issue(publication, "borrow", {"a.md": article("Borrowed", "![The towpath](../issue-1/towpath.png)")})
    result = run("check", "borrow")
    assert result.exit_code == 1
    assert "image ../issue-1/towpath.png is outside the issue's folder" in result.stderr
