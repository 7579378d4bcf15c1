"""`newsletter site` when an issue fails this time: the last published output of that issue is
kept (page, images, archive entry, feed entry), the report says so, and the shared files are
still written whole; and what may not be published where (an image named index.html, a logo
named like a file of the site)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import feedparser
import pytest
import lxml.html
from PIL import Image

from tests.helpers import article, run, update_config, write_issue

BASE = "https://riverside-writers-circle.internal/issues"


def site_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _archive_links(site: Path) -> list[str]:
    archive = lxml.html.document_fromstring((site / "index.html").read_bytes())
    return [str(href) for href in archive.xpath("//ul[@class='archive']/li//a/@href")]


def _second_issue(root: Path) -> Path:
    folder = write_issue(root, "issue-2", {"a.md": article("Spring", "Spring words.\n\n![The lock](lock.png)")},
                         subject="Spring", preheader="The spring issue.", date=dt.date(2027, 3, 1))
    Image.new("RGB", (60, 40), (20, 120, 20)).save(folder / "lock.png")
    return folder


def test_an_issue_whose_yaml_breaks_keeps_its_published_page_archive_and_feed_entries(publication: Path) -> None:
    folder = _second_issue(publication)
    assert run("site").exit_code == 0
    site = publication / "build" / "site"
    before = site_files(site)
    assert "issue-2/index.html" in before and "issue-2/lock.png" in before
    yaml_path = folder / "issue.yaml"
    yaml_path.write_text(yaml_path.read_text(encoding="utf-8") + "bogus: [unclosed\n", encoding="utf-8")

    result = run("site")
    assert result.exit_code == 1 and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "issues/issue-2/issue.yaml" in errors[0], result.stderr
    assert "Kept as last published" in result.stderr and "issue-2" in result.stderr
    assert "removed" not in result.output
    assert site_files(site) == before, "nothing of the site changed: the failing issue is as published"

    # Meanwhile a new issue is published: the shared files are written whole, issue-2 kept in them.
    write_issue(publication, "issue-3", {"a.md": article("Summer", "Summer words.")}, subject="Summer",
                preheader="The summer issue.", date=dt.date(2027, 6, 1))
    result = run("site")
    assert result.exit_code == 1 and "Kept as last published" in result.stderr
    assert _archive_links(site) == ["issue-3/", "issue-2/", "issue-1/"]
    feed = feedparser.parse((site / "feed.xml").read_bytes())
    assert [entry.id for entry in feed.entries] == [f"{BASE}/issue-3/", f"{BASE}/issue-2/", f"{BASE}/issue-1/"]
    spring = feed.entries[1]
    assert spring.title == "Spring" and "Spring words." in spring.content[0].value
    assert spring.updated == "2027-03-01T00:00:00+00:00"
    for name in ("issue-2/index.html", "issue-2/lock.png"):
        assert (site / name).read_bytes() == before[name]
    assert (site / "issue-3" / "index.html").is_file() and (site / "style.css").is_file()

    # Mended, it is built again, and nothing is removed that is still published.
    yaml_path.write_text(yaml_path.read_text(encoding="utf-8").replace("bogus: [unclosed\n", ""), encoding="utf-8")
    result = run("site")
    assert result.exit_code == 0, result.output
    assert "removed" not in result.output and "Kept" not in result.stderr
    assert _archive_links(site) == ["issue-3/", "issue-2/", "issue-1/"]


def test_an_issue_whose_image_breaks_keeps_its_last_page_and_image(publication: Path) -> None:
    folder = _second_issue(publication)
    assert run("site").exit_code == 0
    site = publication / "build" / "site"
    before = site_files(site)
    (folder / "a.md").write_text(article("Spring, revised", "New words.\n\n![The lock](lock.png)"), encoding="utf-8")
    (folder / "lock.png").write_bytes(b"not a picture any more")
    result = run("site")
    assert result.exit_code == 1
    assert "error: issues/issue-2/a.md:6: image lock.png cannot be read as an image" in result.stderr
    assert "Kept as last published" in result.stderr
    assert site_files(site) == before
    assert "Spring, revised" not in (site / "issue-2" / "index.html").read_text(encoding="utf-8")


def test_an_issue_that_never_built_is_not_published_and_not_said_to_be_kept(publication: Path) -> None:
    assert run("site").exit_code == 0
    folder = _second_issue(publication)
    (folder / "lock.png").write_bytes(b"no picture")
    result = run("site")
    assert result.exit_code == 1 and "Kept" not in result.stderr
    site = publication / "build" / "site"
    assert not (site / "issue-2").exists() and _archive_links(site) == ["issue-1/"]


def test_a_site_of_the_first_manifest_format_keeps_a_failing_issues_files(publication: Path) -> None:
    folder = _second_issue(publication)
    assert run("site").exit_code == 0
    site = publication / "build" / "site"
    manifest = json.loads((site / ".newsletter-site").read_text(encoding="utf-8"))
    (site / ".newsletter-site").write_text("".join(f"{name}\n" for name in manifest["files"]), encoding="utf-8")
    (folder / "issue.yaml").write_text("subject: [unclosed\n", encoding="utf-8")
    result = run("site")
    assert result.exit_code == 1 and "Kept as last published" in result.stderr
    assert (site / "issue-2" / "index.html").is_file() and (site / "issue-2" / "lock.png").is_file()


def test_an_edited_manifest_never_removes_a_file_outside_the_site(publication: Path, tmp_path: Path) -> None:
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    site = publication / "build" / "site"
    site.mkdir(parents=True)
    for manifest in (f"{outside}\n../../precious.txt\n",  # the first format, one name a line
                     json.dumps({"format": 2, "files": [str(outside), "../../precious.txt"], "issues": {}})):
        (site / ".newsletter-site").write_text(manifest)
        assert run("site").exit_code == 0
        assert outside.read_text() == "keep me"


def test_an_image_named_index_html_is_refused_and_the_page_stays_the_page(publication: Path) -> None:
    folder = write_issue(publication, "clash", {"a.md": article("Clash", "![t](index.html)")},
                         date=dt.date(2027, 1, 1))
    Image.new("RGB", (20, 20), (200, 0, 0)).save(folder / "index.html", "PNG")
    result = run("check", "clash")
    assert result.exit_code == 1
    assert ("error: issues/clash/a.md:4: image index.html would be published as clash/index.html, the issue's own "
            "page") in result.stderr
    result = run("site")
    assert result.exit_code == 1 and "image index.html would be published as clash/index.html" in result.stderr
    page = publication / "build" / "site" / "clash" / "index.html"
    assert not page.exists() or page.read_bytes().startswith(b"<!DOCTYPE html>")


def test_a_logo_named_like_a_file_of_the_site_is_refused(publication: Path) -> None:
    Image.new("RGB", (40, 20), (0, 0, 200)).save(publication / "style.css", "PNG")
    update_config(publication, logo="style.css")
    result = run("check", "issue-1")
    assert result.exit_code == 1
    assert "error: newsletter.yaml: logo style.css would be published as style.css" in result.stderr
    result = run("site")
    assert result.exit_code == 1 and "logo style.css would be published as style.css" in result.stderr
    css = (publication / "build" / "site" / "style.css").read_bytes()
    assert not css.startswith(b"\x89PNG") and b"max-width" in css


def test_the_archive_shows_a_subject_that_reads_like_a_merge_tag_as_written(publication: Path) -> None:
    write_issue(publication, "tags", {"a.md": article("Tags")}, subject="Write to [%html:email%] soon",
                date=dt.date(2027, 1, 1))
    assert run("site").exit_code == 0
    site = publication / "build" / "site"
    archive = lxml.html.document_fromstring((site / "index.html").read_bytes())
    shown = " ".join(archive.xpath("//ul[@class='archive']/li[1]//a")[0].text_content().split())
    assert "html:email" in shown and shown.replace("\u2060", "") == "Write to [%html:email%] soon"


def test_a_folder_of_files_site_did_not_write_is_refused_naming_one(publication: Path, tmp_path: Path) -> None:
    """`site -o DIR` once replaced a hand-made index.html there without a word."""
    public = tmp_path / "public"
    public.mkdir()
    (public / "index.html").write_text("<p>my own page</p>")
    (public / "notes.txt").write_text("mine")
    result = run("site", "-o", str(public))
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert result.output.startswith(f"error: {public}: holds files `newsletter site` did not write "
                                    f"({public}/index.html and 1 more), which it would overwrite: ")
    assert site_files(public) == {"index.html": b"<p>my own page</p>", "notes.txt": b"mine"}


def test_a_new_or_empty_folder_becomes_the_sites_own(publication: Path, tmp_path: Path) -> None:
    for public in (tmp_path / "new" / "public", tmp_path / "empty", tmp_path / "pages-checkout"):
        if public.name != "public":
            public.mkdir()
        if public.name == "pages-checkout":  # hidden files only: a GitHub Pages checkout, say
            (public / ".git").mkdir()
            (public / ".nojekyll").write_text("")
        assert run("site", "-o", str(public)).exit_code == 0
        (public / "about.html").write_text("added by hand beside the site")
        again = run("site", "-o", str(public))  # its record is there: its own folder, written again
        assert again.exit_code == 0, again.output
        assert (public / "about.html").read_text() == "added by hand beside the site"
        assert (public / "issue-1" / "index.html").is_file()


def test_root_home_and_the_publication_itself_are_refused(publication: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`site -o /` as root wrote 20 files into /."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    before = sorted(p.name for p in Path("/").iterdir())
    for output, named in (("/", "the root folder"), ("~", "your home folder"), (str(home), "your home folder"),
                          (".", "the publication's own folder"), (str(publication), "the publication's own folder")):
        result = run("site", "-o", output)
        assert result.exit_code == 1, output
        assert result.output.count("\n") == 1 and f": is {named}, where the web edition would mix" in result.output
    assert sorted(p.name for p in Path("/").iterdir()) == before
    assert list(home.iterdir()) == [] and not (publication / "index.html").exists() and not Path("~").exists()
