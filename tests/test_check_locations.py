"""`newsletter check`: each warning about the email starts with the file (and line) it comes from."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import article, run, update_config, warnings_of, write_issue


def test_image_without_alt_text_names_its_article_and_line(publication: Path) -> None:
    folder = write_issue(publication, "pics", {
        "01-first.md": article("First", "No picture here.\n"),
        "02-second.md": article("Second", "A line of text.\n\nAnd then a picture:\n\n![](pic.png)\n"),
    })
    (folder / "pic.png").write_bytes((publication / "issues" / "issue-1" / "towpath.png").read_bytes())
    result = run("check", "pics")
    assert result.exit_code == 0, result.output
    # The article's front matter is 3 lines; the image is on the body's fifth line.
    assert ("warning: issues/pics/02-second.md:8: image pic.png has no alt text: "
            "describe it for readers who cannot see it") in warnings_of(result)


def test_an_image_given_twice_is_named_where_it_has_no_alt_text(publication: Path) -> None:
    folder = write_issue(publication, "twice", {
        "01-heron.md": article("Heron", "![A heron on the weir](heron.png)\n\nAnd again:\n\n![](heron.png)\n"),
    })
    (folder / "heron.png").write_bytes((publication / "issues" / "issue-1" / "towpath.png").read_bytes())
    result = run("check", "twice")
    assert result.exit_code == 0, result.output
    assert [w for w in warnings_of(result) if "no alt text" in w] == [
        "warning: issues/twice/01-heron.md:8: image heron.png has no alt text: "
        "describe it for readers who cannot see it"]


def test_http_link_names_its_article_and_line(publication: Path) -> None:
    write_issue(publication, "links", {
        "a.md": article("Links", "Fine: [ours](https://example.org/).\n\nOld: [the archive](http://archive.example.org/).\n"),
        "b.md": article("More", "A bare one too: http://plain.example.org/page\n"),
    })
    result = run("check", "links")
    assert result.exit_code == 0, result.output
    warnings = warnings_of(result)
    assert ("warning: issues/links/a.md:6: http://archive.example.org/ is an http:// link: "
            "use https:// where the site has it") in warnings
    assert "warning: issues/links/b.md:4: http://plain.example.org/page is an http:// link: " \
           "use https:// where the site has it" in warnings


def test_http_link_in_a_template_names_the_template_and_line(publication: Path) -> None:
    (publication / "templates" / "footer.html").write_text(
        (Path(__file__).resolve().parents[1] / "newsletter" / "templates" / "footer.html").read_text(encoding="utf-8")
        + '\n<p><a href="http://old.example.org/">our old site</a></p>\n', encoding="utf-8")
    lines = (publication / "templates" / "footer.html").read_text(encoding="utf-8").splitlines()
    line = next(n for n, text in enumerate(lines, start=1) if "http://old.example.org/" in text)
    result = run("check", "issue-1")
    assert result.exit_code == 0, result.output
    assert (f"warning: templates/footer.html:{line}: http://old.example.org/ is an http:// link: "
            "use https:// where the site has it") in warnings_of(result)


def test_link_to_a_missing_issue_names_its_article_and_line(publication: Path) -> None:
    write_issue(publication, "issue-2", {
        "a.md": article("Back issues", "As [we said last time](../issue-1/).\n\nAnd [before](../issue-0/).\n"),
    })
    result = run("check", "issue-2")
    assert result.exit_code == 0, result.output
    found = [line for line in warnings_of(result) if "goes to issue" in line]
    assert len(found) == 1, result.stderr
    assert found[0].startswith("warning: issues/issue-2/a.md:6: the link ")
    assert found[0].endswith("/issue-0/ goes to issue issue-0, which is not in issues/: a reader would find no page there")


def test_unknown_merge_field_names_the_template_and_line_and_says_there_is_no_fallback(publication: Path) -> None:
    (publication / "templates" / "header.html").write_text(
        "<h1>{{ publication.name }}</h1>\n<p>Dear {{ subscriber.frist_name }}</p>\n", encoding="utf-8")
    result = run("check", "issue-1")
    assert result.exit_code == 0, result.output
    found = [line for line in warnings_of(result) if "frist_name" in line]
    assert len(found) == 1, result.stderr
    assert found[0].startswith("warning: templates/header.html:2: subscriber.frist_name is not a column "
                               "of the subscriber list (columns: email, ")
    assert found[0].endswith("every recipient gets nothing there, as it has no fallback: correct the name, add the "
                             "column, or give it one ({{ subscriber.frist_name | default('...') }})")
    assert "fallback 'reader'" not in found[0]


def test_unknown_merge_field_with_a_fallback_says_which(publication: Path) -> None:
    (publication / "templates" / "header.html").write_text(
        "<h1>{{ publication.name }}</h1>\n\n<p>Dear {{ subscriber['frist_name'] | default('reader') }}</p>\n",
        encoding="utf-8")
    result = run("check", "issue-1")
    found = [line for line in warnings_of(result) if "frist_name" in line]
    assert len(found) == 1, result.stderr
    assert found[0].startswith("warning: templates/header.html:3: subscriber.frist_name is not a column")
    assert found[0].endswith("every recipient gets its fallback 'reader'")


def test_no_preheader_names_the_issue_file(publication: Path) -> None:
    write_issue(publication, "bare", {"a.md": article("A", "Text.\n")}, preheader="")
    result = run("check", "bare")
    assert result.exit_code == 0, result.output
    assert ("warning: issues/bare/issue.yaml: no preheader: inboxes will show the first words of the email "
            "instead; set `preheader` in issue.yaml") in warnings_of(result)


VAGUE = ("says nothing of where it goes: screen readers list links by their text alone, and readers skim for them; "
         "name what it leads to (“the full programme”, not “here”)")


def test_links_whose_whole_text_is_here_or_read_more_name_their_line(publication: Path) -> None:
    write_issue(publication, "vague", {
        "a.md": article("Readings", "The programme is [here](https://example.org/p).\n"
                                    "[Click here.](https://example.org/q) to book, or\n"
                                    "[Read more →](https://example.org/r).\n\n"
                                    "More in [this](https://example.org/s) and in [the winter programme]"
                                    "(https://example.org/t), or read [here and now](https://example.org/u).\n"),
    })
    result = run("check", "vague")
    assert result.exit_code == 0, result.output
    assert [w for w in warnings_of(result) if "says nothing" in w] == [
        f"warning: issues/vague/a.md:4: the link “here” {VAGUE}",
        f"warning: issues/vague/a.md:5: the link “Click here.” {VAGUE}",
        f"warning: issues/vague/a.md:6: the link “Read more →” {VAGUE}",
        f"warning: issues/vague/a.md:8: the link “this” {VAGUE}",
    ]


@pytest.mark.parametrize(("language", "vague", "fine"), [
    ("fr", "cliquez ici", "hier"),  # "hier" is yesterday in French: a link to yesterday's news says where it goes
    ("de", "hier klicken", "here"),
    ("es", "Leer más", "here"),
    ("en-GB", "read more", "ici"),
])
def test_vague_link_texts_are_those_of_the_publications_language(publication: Path, language: str, vague: str,
                                                                  fine: str) -> None:
    update_config(publication, language=language)
    write_issue(publication, "vague", {
        "a.md": article("Readings", f"The programme: [{vague}](https://example.org/p), or "
                                    f"[{fine}](https://example.org/q).\n"),
    })
    result = run("check", "vague")
    assert result.exit_code == 0, result.output
    assert [w for w in warnings_of(result) if "says nothing" in w] == [
        f"warning: issues/vague/a.md:4: the link “{vague}” {VAGUE}"]


def test_a_heading_that_skips_a_level_names_its_line(publication: Path) -> None:
    write_issue(publication, "outline", {
        "a.md": article("Readings", "## Winter\n\nText.\n\n#### Dates\n\nText.\n\n### Places\n\n## Spring\n\nText.\n"),
        # Its top level, whatever it is, is shown right under the title: # then ## is no skip.
        "b.md": article("Notes", "# Small\n\nText.\n\n## Smaller\n\n# Again\n"),
        # The first heading deeper than a later one is a level below the title.
        "c.md": article("First deeper", "#### Deep first\n\nText.\n\n## Top\n"),
    }, articles=["a.md", "b.md", "c.md"])
    result = run("check", "outline")
    assert result.exit_code == 0, result.output
    why = "screen-reader users move by heading levels and would look for the one missing"
    assert [w for w in warnings_of(result) if "skips a level" in w] == [
        f"warning: issues/outline/a.md:8: the heading “Dates” (####) skips a level after “Winter” (##): {why}; "
        "make it ###",
        f"warning: issues/outline/c.md:4: the heading “Deep first” (####) skips a level after the article's title: "
        f"{why}; make it ##",
    ]


def test_an_image_whose_alt_text_is_its_file_name_names_its_line(publication: Path) -> None:
    folder = write_issue(publication, "pics", {
        "a.md": article("Herons", "![heron.png](heron.png)\n\n![IMG_2041](IMG_2041.png)\n\n"
                                  "![A heron on the weir](heron.png)\n"),
    })
    for name in ("heron.png", "IMG_2041.png"):
        (folder / name).write_bytes((publication / "issues" / "issue-1" / "towpath.png").read_bytes())
    result = run("check", "pics")
    assert result.exit_code == 0, result.output
    assert [w for w in warnings_of(result) if "file name" in w] == [
        "warning: issues/pics/a.md:4: image heron.png has its file name as alt text (“heron.png”): "
        "a screen reader reads that out; describe what the image shows",
        "warning: issues/pics/a.md:6: image IMG_2041.png has its file name as alt text (“IMG_2041”): "
        "a screen reader reads that out; describe what the image shows",
    ]


def test_a_text_part_line_over_998_characters_names_the_article_line(publication: Path) -> None:
    long_link = "https://example.org/archive?" + "&".join(f"item{n}=value{n}" for n in range(80))
    write_issue(publication, "long", {"a.md": article("Archive", f"Everything:\n\n{long_link}\n")})
    result = run("check", "long")
    assert result.exit_code == 0, result.output
    assert [w for w in warnings_of(result) if "998" in w] == [
        f"warning: issues/long/a.md:6: the text part has a line of {len(long_link):,} characters: mail servers may "
        "cut lines over 998 (RFC 5322), breaking a word or link in two; shorten it or put a line break in it"]


def test_a_text_part_line_over_998_bytes_is_counted_in_bytes(publication: Path) -> None:
    """RFC 5322's 998 is octets: a Japanese paragraph (no spaces, so the text part keeps it one line) of
    about 400 characters is about 1,200 bytes in UTF-8, though under 998 characters."""
    paragraph = "川沿いの作家の会は毎月第一土曜日に図書館で集まります。" * 15
    write_issue(publication, "long", {"a.md": article("Archive", f"Everything:\n\n{paragraph}\n")})
    result = run("check", "long")
    assert result.exit_code == 0, result.output
    octets = len(paragraph.encode())
    assert [w for w in warnings_of(result) if "998" in w] == [
        f"warning: issues/long/a.md:6: the text part has a line of {len(paragraph):,} characters ({octets:,} bytes in "
        "UTF-8): mail servers may cut lines over 998 (RFC 5322), breaking a word or link in two; shorten it or put "
        "a line break in it"]
