"""The email as subscribers receive it: the final HTML and text of an issue."""

from __future__ import annotations

import re
from pathlib import Path

import lxml.html
import pytest

from newsletter import merge
from newsletter.config import load_settings
from newsletter.content import load_issue
from newsletter.render import render_issue
from newsletter.render.templates import PACKAGE_TEMPLATES
from tests.golden import GOLDEN, SAMPLE_ISSUE, render_sample
from tests.helpers import (
    CODE_TABLE, LONG_PARAGRAPH, WIDE_SENTENCE, article, folded_and_unfolded, long_paragraph_issue, run, write_issue,
)


def render(root: Path, name: str):
    settings = load_settings(root)
    return render_issue(settings, load_issue(settings, name))


def test_sample_issue_matches_the_golden_files(publication: Path) -> None:
    """A change to the email shows up here; after an intended one, run `make golden`."""
    html, text = render_sample(publication)
    assert html == (GOLDEN / f"{SAMPLE_ISSUE}.html").read_text(encoding="utf-8"), "HTML changed: review, then `make golden`"
    assert text == (GOLDEN / f"{SAMPLE_ISSUE}.txt").read_text(encoding="utf-8"), "text changed: review, then `make golden`"


@pytest.fixture
def sample(publication: Path):
    email = render(publication, SAMPLE_ISSUE)
    return email, lxml.html.document_fromstring(email.html)


def test_document_skeleton(sample) -> None:
    email, tree = sample
    assert email.html.startswith("<!DOCTYPE html>")
    root = tree.getroottree().getroot()
    assert root.get("lang") == "en-GB" and root.get("dir") == "ltr"  # the sample's `language`
    assert 'xmlns:v="urn:schemas-microsoft-com:vml"' in email.html
    assert tree.xpath("//center[@lang='en-GB' and @role='article']")
    assert tree.xpath("//meta[@charset='utf-8']")
    assert tree.xpath("//meta[@name='viewport' and @content='width=device-width']")
    assert tree.xpath("//meta[@name='x-apple-disable-message-reformatting']")
    assert tree.findtext(".//title").strip() == email.subject
    assert "<o:PixelsPerInch>96</o:PixelsPerInch>" in email.html
    assert email.html.count("<!--[if") == email.html.count("<![endif]")


def test_layout_tables_are_presentational(sample) -> None:
    _, tree = sample
    tables = tree.xpath("//table")
    assert tables
    for table in tables:
        assert (table.get("role"), table.get("cellpadding"), table.get("cellspacing"), table.get("border")) == (
            "presentation", "0", "0", "0")


def test_one_h1_and_heading_levels_never_skip(sample) -> None:
    _, tree = sample
    levels = [int(h.tag[1]) for h in tree.iter("h1", "h2", "h3", "h4", "h5", "h6")]
    assert levels.count(1) == 1 and levels[0] == 1
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False)), levels


def test_links_are_styled_inline_and_safe(sample) -> None:
    _, tree = sample
    for a in tree.iter("a"):
        if a.get("href") is None:
            assert a.get("name") and not a.text_content(), "an <a> is a link or an empty named anchor"
            continue
        style = a.get("style", "")
        assert "color" in style and "text-decoration" in style, a.get("href")
        href = a.get("href")
        assert href.startswith(("https:", "mailto:", "tel:")) or merge.TAG_PATTERN.fullmatch(href) or (
            href.startswith("#") and tree.xpath(f"//a[@name='{href[1:]}']")), href  # the contents' in-page links
    assert "!important" not in " ".join(tree.xpath("//*[@style]/@style"))


def test_contents_links_jump_where_clients_honour_only_named_anchors(sample) -> None:
    """Gmail, Yahoo and Outlook for Windows jump only to an `<a name>`, never to an `id`."""
    email, tree = sample
    hrefs = tree.xpath("//ul[@class='contents']//a/@href")
    assert len(hrefs) == len(email.issue.articles) == 3
    for href in hrefs:
        assert href.startswith("#"), href
        targets = tree.xpath(f"//a[@name='{href[1:]}']")
        assert len(targets) == 1, href
        target = targets[0]
        # Empty, with the id for the clients that follow ids, and right before the article's title.
        assert target.get("id") == href[1:] and not target.text_content() and len(target) == 0
        assert target.getnext().tag == "h2"
    titles = [h2.text_content() for h2 in tree.iter("h2")]
    assert [a.text_content() for a in tree.xpath("//ul[@class='contents']//a")] == titles
    # Where a client cannot jump, the list still says what the issue holds: each title, with its author.
    contents = " ".join(tree.xpath("//ul[@class='contents']")[0].text_content().split())
    assert "The river in December by Tomasz Wiśniewski" in contents
    assert len(tree.xpath("//*[@id]")) == len(set(tree.xpath("//*[@id]/@id"))), "no id twice"


def test_the_web_page_keeps_ids_without_the_emails_named_anchors(publication: Path) -> None:
    """`<a name>` is obsolete in HTML5: the web edition's contents go to the titles' ids."""
    from newsletter.render.web import render_web_page

    settings = load_settings(publication)
    page = lxml.html.document_fromstring(render_web_page(settings, load_issue(settings, SAMPLE_ISSUE)).html)
    assert not page.xpath("//a[@name]")
    for href in page.xpath("//ul[@class='contents']//a/@href"):
        assert page.xpath(f"//h2[@id='{href[1:]}']"), href


def test_outlook_keeps_list_and_quote_indents_and_exact_line_heights(sample) -> None:
    """Word (Outlook for Windows) ignores padding outside table cells and needs `mso-line-height-rule`."""
    email, tree = sample
    lists = tree.xpath("//ul | //ol")
    assert len(lists) >= 3  # the contents, and the sample's lists
    for element in lists:
        style = element.get("style").replace(" ", "")
        assert "margin-left:24px" in style and "padding:0" in style and "padding-left" not in style, style
    quotes = tree.xpath("//blockquote")
    assert quotes, "the sample issue has a quote"
    mso_css = " ".join(re.findall(r"<!--\[if mso\]>(.*?)<!\[endif\]-->", email.html, re.S))
    assert re.search(r"blockquote\{margin-left:16px!important\}", mso_css), "Outlook indents a quote by its margin"
    styled = tree.xpath("//*[contains(@style, 'line-height') and not(contains(@style, 'mso-hide:all'))]")
    assert len(styled) > 20
    for element in styled:
        declarations = [d.strip() for d in element.get("style").split(";")]
        names = [d.split(":", 1)[0] for d in declarations]
        assert "mso-line-height-rule:exactly" in declarations, (element.tag, element.get("style"))
        assert names.index("mso-line-height-rule") < names.index("line-height"), element.get("style")


def test_images_have_alt_absolute_https_src_and_integer_width(sample) -> None:
    _, tree = sample
    images = tree.xpath("//img")
    assert images, "the sample issue has an image"
    for img in images:
        assert img.get("alt")
        assert img.get("src").startswith("https://riverside-writers-circle.internal/issues/issue-1/")
        assert img.get("width").isdigit()
        assert "display:block" in img.get("style").replace(" ", "")


def test_nothing_clients_strip(sample) -> None:
    email, tree = sample
    for tag in ("script", "form", "iframe", "svg"):
        assert not tree.xpath(f"//{tag}")
    assert not tree.xpath("//link[@rel='stylesheet']")
    assert "data:" not in email.html
    assert len(email.html.encode()) < 90_000
    assert sum(len(s.text_content()) for s in tree.xpath("//style")) < 16_000


def test_dark_mode_and_mobile_rules_survive_inlining(sample) -> None:
    email, tree = sample
    head_css = "".join(s.text_content() for s in tree.xpath("//head/style"))
    dark = re.search(r"@media \(prefers-color-scheme:\s*dark\)\{(.*?\})\}", head_css)
    assert dark and "!important" in dark.group(1)
    mobile = re.search(r"@media only screen and \(max-width:\s*\d+px\)\{(.*?\})\}", head_css)
    assert mobile and "!important" in mobile.group(1)
    # Flat @media rules only: a nested one makes Gmail drop the whole block.
    assert not re.search(r"@media[^{]*\{[^}]*@media", head_css)
    assert tree.xpath("//meta[@name='color-scheme' and @content='light dark']")


def test_preheader_comes_first_and_is_hidden(sample) -> None:
    email, tree = sample
    body = tree.find("body")
    first = body[0]
    assert first.text_content().strip() == email.issue.preheader
    # Hidden the ways every client honours: display:none (Yahoo on Android ignores overflow),
    # mso-hide:all (Outlook's display:none misses nested tables), zero height with overflow hidden.
    for part in (first, body[1]):
        style = part.get("style").replace(" ", "")
        for rule in ("display:none", "mso-hide:all", "max-height:0", "overflow:hidden", "opacity:0"):
            assert rule in style.split(";"), (rule, style)
    assert body[1].get("aria-hidden") == "true"
    assert email.issue.preheader not in email.text, "the preheader stays out of the text part"


def test_footer_has_postal_address_web_version_and_unsubscribe(sample) -> None:
    email, tree = sample
    text = " ".join(tree.text_content().split())
    assert email.issue.preheader and "14 Mill Lane, Oxbury" in text
    hrefs = [a.get("href") for a in tree.iter("a")]
    assert "[%html:unsubscribe_url%]" in hrefs
    assert "https://riverside-writers-circle.internal/issues/issue-1/" in hrefs
    assert "Reply to this email" in text


def test_contents_list_only_with_several_articles(publication: Path) -> None:
    write_issue(publication, "single", {"a.md": article("Only one")})
    single = render(publication, "single")
    assert "In this issue" not in single.html and "In this issue" not in single.text
    assert "In this issue" in render(publication, SAMPLE_ISSUE).html


def test_greeting_is_a_merge_field_with_a_fallback(sample) -> None:
    email, _ = sample
    assert "Hello [%html:first_name|friend%]," in email.html
    assert "Hello [%text:first_name|friend%]," in email.text
    assert merge.fill(email.text, {"first_name": ""}).count("Hello friend,") == 1
    assert merge.fill(email.text, {"first_name": "Ada"}).count("Hello Ada,") == 1


def test_merge_values_are_escaped_in_html_and_raw_in_text(sample) -> None:
    email, _ = sample
    name = 'Zoë <b>"Z" & O\'Neil</b>'
    values = {"first_name": name, "unsubscribe_url": "https://example.org/u?e=a&b=c"}
    html = merge.fill(email.html, values)
    assert "Hello Zoë &lt;b&gt;&#34;Z&#34; &amp; O&#39;Neil&lt;/b&gt;," in html
    assert "<b>" not in html
    assert 'href="https://example.org/u?e=a&amp;b=c"' in html
    assert f"Hello {name}," in merge.fill(email.text, values)


def test_a_value_that_looks_like_a_tag_is_not_expanded(sample) -> None:
    email, _ = sample
    text = merge.fill(email.text, {"first_name": "[%text:unsubscribe_url%]", "unsubscribe_url": "https://x.example.org"})
    assert "Hello [ %text:unsubscribe_url%]," in text


def test_titles_and_authors_are_escaped(publication: Path) -> None:
    write_issue(publication, "esc", {
        "a.md": article('Tom & Jerry: "<script>" isn\'t a title', author="R&D <team>"),
        "b.md": article("Second"),
    }, subject='Q&A: "<quotes>"')
    email = render(publication, "esc")
    tree = lxml.html.document_fromstring(email.html)
    assert not tree.xpath("//body//script")
    assert [h.text_content() for h in tree.iter("h2")][0] == 'Tom & Jerry: "<script>" isn\'t a title'
    assert "by R&D <team>" in tree.text_content()
    assert "&lt;script&gt;" in email.html
    assert tree.findtext(".//title") == 'Q&A: "<quotes>"'
    assert 'TOM & JERRY: "<SCRIPT>" ISN\'T A TITLE' in email.text, "the text part is not HTML-escaped"


def test_typographic_punctuation_is_kept_as_written(sample) -> None:
    email, _ = sample
    html, text = " ".join(email.html.split()), " ".join(email.text.split())
    assert "“for as long as the heating holds out” – their words" in html
    assert "‘You write about that river as though it were a person,’" in text
    assert "&#8220;" not in email.html and "&ldquo;" not in email.html


def test_raw_html_in_an_article_is_shown_as_text(publication: Path) -> None:
    write_issue(publication, "raw", {"a.md": article("Raw", "A <iframe src='https://evil.example.com'></iframe> here.")})
    email = render(publication, "raw")
    assert "<iframe" not in email.html and "&lt;iframe" in email.html


def test_text_part_reads_on_its_own(sample) -> None:
    email, _ = sample
    text = email.text
    assert not re.search(r"<[a-z/][^>]*>", text), "no tags"
    assert not re.search(r"&[a-z]+;|&#\d+;", text), "no entities"
    assert "\u200c" not in text, "no preheader filler"
    assert "WINTER READINGS AT THE CORN EXCHANGE\nby Maya Okonkwo, editor" in text
    assert "Some links\n----------" in text
    assert "- The reading list, in full\n  (https://riverside-writers-circle.internal/reading-list)" in text
    assert "1. Thursday 4 December, 7 pm" in text
    for line in text.splitlines():
        assert len(line) <= 78 or re.fullmatch(r"\s*\(?https?://\S+", line), line
    tree = lxml.html.document_fromstring(email.html)
    # Every link but the contents' in-page ones (the text part has no anchors to go to).
    for href in {href for href in tree.xpath("//a/@href") if not href.startswith("#")}:
        plain = href.replace("[%html:", "[%text:")
        assert plain in text, f"{href} is missing from the text part"
    assert text.rstrip().endswith("14 Mill Lane, Oxbury OX9 4QT, United Kingdom")


def test_relative_images_and_links_resolve_under_the_issue_url(publication: Path) -> None:
    write_issue(publication, "rel", {"a.md": article("Rel", "![A map](img/map.png) and [notes](notes.html).")})
    email = render(publication, "rel")
    assert 'src="https://riverside-writers-circle.internal/issues/rel/img/map.png"' in email.html
    assert 'href="https://riverside-writers-circle.internal/issues/rel/notes.html"' in email.html


def test_a_publication_template_overrides_the_default(publication: Path) -> None:
    (publication / "templates" / "header.html").write_text(
        '<table role="presentation" cellpadding="0" cellspacing="0" border="0"><tr><td>'
        "<h1>{{ publication.name }}: the override</h1></td></tr></table>", encoding="utf-8")
    email = render(publication, SAMPLE_ISSUE)
    assert "The Riverside Writers' Circle: the override</h1>" in email.html
    assert "[%html:unsubscribe_url%]" in email.html, "the other templates still come from the package"


def _png(width: int, height: int = 10) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * 3 * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def _jpeg_header(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + (16).to_bytes(2, "big") + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + (17).to_bytes(2, "big") + b"\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big") + b"\x03" + b"\x00" * 9
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def test_images_keep_their_own_width_up_to_the_column(publication: Path) -> None:
    folder = write_issue(publication, "img", {"a.md": article("Pictures", "![Small](small.png)\n\n![Wide](wide.jpg)\n\n![Elsewhere](https://cdn.example.org/x.png)")})
    (folder / "small.png").write_bytes(_png(200))
    (folder / "wide.jpg").write_bytes(_jpeg_header(1600, 900))
    tree = lxml.html.document_fromstring(render(publication, "img").html)
    widths = {img.get("alt"): (img.get("width"), img.get("style").replace(" ", "")) for img in tree.iter("img")}
    assert widths["Small"][0] == "200" and "max-width:200px" in widths["Small"][1]
    assert widths["Wide"][0] == "552" and "max-width:552px" in widths["Wide"][1]
    assert widths["Elsewhere"][0] == "552"


def test_a_fallback_with_special_characters_is_escaped_once(publication: Path) -> None:
    (publication / "templates" / "header.html").write_text(
        "<h1>{{ publication.name }}</h1><p>Hi {{ subscriber.first_name | default('you & <yours>') }}</p>", encoding="utf-8")
    email = render(publication, SAMPLE_ISSUE)
    assert "Hi you &amp; &lt;yours&gt;</p>" in merge.fill(email.html, {"first_name": ""})
    assert "Hi Bo &amp; Co</p>" in merge.fill(email.html, {"first_name": "Bo & Co"})


def test_text_part_lines_stay_within_78_characters_in_nested_blocks(publication: Path) -> None:
    sentence = "A sentence of ordinary words that runs on for about eighty characters or so"
    write_issue(publication, "wrap", {
        "a.md": article("A title long enough to need wrapping when it is written in capitals across the line",
                        f"""
                        - {sentence}
                          - {sentence}
                            - {sentence}

                        10. {sentence}

                        > {sentence}
                        > > {sentence}

                        ## A subheading long enough to need wrapping as well, because writers do write them
                        """, author="An author with a rather long name and an affiliation in brackets (Writers Group)"),
        "b.md": article("Second"),
    })
    text = render(publication, "wrap").text
    long_lines = [line for line in text.splitlines() if len(line) > 78 and not re.fullmatch(r"\s*\(?https?://\S+", line)]
    assert long_lines == []
    assert "  - A sentence" in text and "> > A sentence" in text


def test_the_inlined_email_is_kept_by_its_input_and_never_served_stale(publication: Path) -> None:
    """A second command on the same issue skips premailer; any change upstream inlines anew."""
    import subprocess
    import sys



    assert run("build", "issue-1").exit_code == 0
    first = (publication / "build" / "issue-1" / "email.html").read_text(encoding="utf-8")
    assert len(list((publication / "build" / "inline-cache").iterdir())) == 1
    probe = ("import sys; from newsletter.build import render_and_check; from newsletter.config import load_settings; "
             "email, _ = render_and_check(load_settings(), 'issue-1'); "
             "print('premailer' in sys.modules); sys.stdout.write(email.html)")
    again = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded, html = again.stdout.split("\n", 1)
    assert loaded == "False" and html == first  # the same bytes, without premailer
    css = publication / "templates" / "email.css"
    css.write_text(PACKAGE_TEMPLATES.joinpath("email.css").read_text(encoding="utf-8")
                   + "\np { letter-spacing: 0.01em; }\n", encoding="utf-8")
    assert run("build", "issue-1").exit_code == 0
    changed = (publication / "build" / "issue-1" / "email.html").read_text(encoding="utf-8")
    assert "letter-spacing:0.01em" in changed.replace(" ", "") and changed != first


def test_a_cold_build_leaves_out_what_premailer_does_for_nobody(publication: Path) -> None:
    """premailer imports requests to fetch linked stylesheets, which a build never does, and has
    cssutils check every style="" against its CSS profiles only to log what is invalid, which it
    silences: a build in a process of its own does neither (80 ms and 30-50 ms of a cold build)
    and writes the golden email; were premailer to use requests after all, it gets the real module."""
    import subprocess
    import sys

    probe = ("import sys; from newsletter.build import build_issue; from newsletter.config import load_settings; "
             "build_issue(load_settings(), 'issue-1'); print('requests' in sys.modules); "
             "import cssutils; print(sorted(cssutils.profile.knownNames)); "
             "import premailer.premailer, requests; print(premailer.premailer.requests.get is requests.get)")
    built = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert built.stdout.split() == ["False", "[]", "True"], built.stderr
    html = (publication / "build" / SAMPLE_ISSUE / "email.html").read_text(encoding="utf-8")
    assert html == (GOLDEN / f"{SAMPLE_ISSUE}.html").read_text(encoding="utf-8")


def test_a_module_stood_in_for_is_the_real_one_as_soon_as_it_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """Were premailer to use requests while it is imported, it would get the real module, not an error."""
    import sys

    from newsletter.render.email import _ImportedOnUse

    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    stand_in = _ImportedOnUse("colorsys")
    monkeypatch.setitem(sys.modules, "colorsys", stand_in)
    assert stand_in.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    assert sys.modules["colorsys"] is not stand_in


def test_the_inlining_cache_keeps_only_its_newest_entries(tmp_path: Path) -> None:
    from newsletter.render.email import INLINE_CACHE_KEPT, inline_css

    cache = tmp_path / "inline-cache"
    for number in range(INLINE_CACHE_KEPT + 5):
        inline_css(f"<html><head><style>p {{ margin: {number}px }}</style></head><body><p>x</p></body></html>", cache)
    kept = list(cache.glob("*.html"))
    assert len(kept) == INLINE_CACHE_KEPT
    newest = inline_css("<html><head><style>p { margin: 104px }</style></head><body><p>x</p></body></html>", cache)
    assert "margin:104px" in newest.replace(" ", "")


def test_a_floated_image_gets_outlooks_align_attribute(publication: Path) -> None:
    """Outlook ignores `float`: premailer's `align` fix still runs for templates that float images."""
    folder = write_issue(publication, "float", {"a.md": article("Floats", "![Portrait](p.png) beside the text.")})
    (folder / "p.png").write_bytes(_png(200))
    css = publication / "templates" / "email.css"
    css.write_text(PACKAGE_TEMPLATES.joinpath("email.css").read_text(encoding="utf-8")
                   + "\n.article img { float: right; }\n", encoding="utf-8")
    tree = lxml.html.document_fromstring(render(publication, "float").html)
    assert [img.get("align") for img in tree.iter("img") if img.get("alt") == "Portrait"] == ["right"]


def test_compiled_templates_are_reused_but_never_stale_and_still_name_their_line(publication: Path) -> None:
    """A later command reuses the compiled templates; an edited one is compiled anew, and an error
    raised by a reused one still names the template's file and line."""
    import subprocess
    import sys

    def build(name: str) -> subprocess.CompletedProcess[str]:  # a process of its own: nothing in memory
        return subprocess.run([sys.executable, "-m", "newsletter", "build", name], cwd=publication,
                              capture_output=True, text=True)

    header = publication / "templates" / "header.html"
    header.write_text('<table role="presentation"><tr><td><h1>{{ publication.name }}</h1>\n'
                      '{% if issue.preheader == "boom" %}{{ 1 // 0 }}{% endif %}</td></tr></table>', encoding="utf-8")
    write_issue(publication, "cached", {"a.md": article("Cached", "Text.")}, preheader="quiet")
    assert build("cached").returncode == 0
    compiled = {path: path.stat().st_mtime_ns for path in (publication / "build" / "template-cache").iterdir()}
    assert compiled, "the compiled templates are kept"
    write_issue(publication, "loud", {"a.md": article("Loud", "Text.")}, preheader="boom")
    loud = build("loud")
    assert loud.returncode == 1
    assert "templates/header.html:2: ZeroDivisionError" in loud.stderr, loud.stderr
    assert {path: path.stat().st_mtime_ns for path in compiled} == compiled, "reused, not compiled again"
    header.write_text(header.read_text(encoding="utf-8").replace("<h1>", "<h1>Edited: "), encoding="utf-8")
    assert build("cached").returncode == 0
    assert "Edited: The Riverside" in (publication / "build" / "cached" / "email.html").read_text(encoding="utf-8")


def octets(line: str) -> int:
    return len(line.encode("utf-8"))


def test_long_paragraphs_are_folded_only_where_a_line_break_shows_as_a_space(publication: Path) -> None:
    """A writer's paragraph on one line would pass SMTP's 998 octets and make the HTML part
    quoted-printable; folded, its lines fit, and nothing a reader sees is changed."""
    from newsletter.render.fold import FOLD_WIDTH

    long_paragraph_issue(publication)
    folded, unfolded = folded_and_unfolded(publication, "ledgers")
    assert max(map(octets, unfolded.split("\n"))) > 998
    table_line = CODE_TABLE.splitlines()[1]
    assert [line for line in folded.split("\n") if octets(line) > FOLD_WIDTH] == [table_line]  # kept in <pre>
    # Only spaces became line breaks...
    assert len(folded) == len(unfolded) and folded != unfolded
    assert {(a, b) for a, b in zip(unfolded, folded, strict=True) if a != b} == {(" ", "\n")}
    # ... none of them inside a value, the code block or a merge tag.
    before, after = lxml.html.document_fromstring(unfolded), lxml.html.document_fromstring(folded)
    assert [dict(e.attrib) for e in after.iter()] == [dict(e.attrib) for e in before.iter()]
    (code,) = after.iter("pre")
    assert code.text_content() == CODE_TABLE + "\n"
    assert merge.TAG_PATTERN.findall(folded) == merge.TAG_PATTERN.findall(unfolded) != []
    words = " ".join(after.text_content().split())
    assert " ".join(LONG_PARAGRAPH.split()) in words and WIDE_SENTENCE in folded  # its spaces kept


def test_folding_keeps_every_space_whose_line_break_would_show() -> None:
    """Width 1 folds at every space that may become a line break: here are all of them."""
    from newsletter.render.fold import fold_html

    document = ('<p class="a b" style="color: red">one two [%html:first_name|dear reader%] three</p>'
                "<pre>a b</pre><div style='white-space: pre-line'>c d <div>e f</div></div><div>g h <b>i</b></div>"
                "<textarea>i j</textarea><script>k l</script><!-- m n --><p>東京 大阪 x&amp; y\u200b z</p>"
                '<img alt="o p" src="x.png" width="1"><i title="s style=\'t\'" style="white-space:pre">q r</i>')
    assert fold_html(document, width=1) == (
        '<p\nclass="a b"\nstyle="color: red">one\ntwo\n[%html:first_name|dear reader%]\nthree</p>'
        "<pre>a b</pre><div\nstyle='white-space: pre-line'>c d <div>e f</div></div><div>g\nh <b>i</b></div>"
        "<textarea>i j</textarea><script>k l</script><!-- m n --><p>東京 大阪 x&amp; y\u200b z</p>"
        '<img\nalt="o p"\nsrc="x.png"\nwidth="1"><i\ntitle="s style=\'t\'"\nstyle="white-space:pre">q r</i>')
    # A rule left in <style> (a media query) could keep any element's spaces: text is left whole.
    kept = "<style>@media (max-width:600px){.poem{white-space:pre-wrap!important}}</style>"
    assert fold_html(f'{kept}<p class="poem" id="p">one two</p>', width=1) == (
        f'{kept}<p\nclass="poem"\nid="p">one two</p>')
    # Whatever `white-space` value is not known to collapse white space keeps it: CSS Text 4's long
    # forms, a custom property, an escape; `nowrap` and `normal` do not.
    for style in ("white-space: wrap preserve-breaks", "white-space:nowrap preserve", "white-space: var(--keep)",
                  "white-space: \\70 re", "white-space-collapse: break-spaces"):
        assert fold_html(f'<p style="{style}">one two</p>', width=1) == f'<p\nstyle="{style}">one two</p>'
    assert fold_html('<p style="white-space: nowrap !important">one two</p><p style="white-space:normal">three four</p>',
                     width=1) == ('<p\nstyle="white-space: nowrap !important">one\ntwo</p>'
                                  '<p\nstyle="white-space:normal">three\nfour</p>')
    assert fold_html("<style>.x{white-space:wrap preserve-breaks}</style><p>one two</p>", width=1).endswith(
        "<p>one two</p>")
    # Lines of a <pre> are kept across line breaks; the long lines after it are folded.
    code, words = "<pre>x y\n" + "z " * 300 + "\n</pre>", "w " * 300
    folded = fold_html(f"<p>short one</p>\n{code}\n<p>{words}</p>\n<p>{words}</p>", width=100)
    assert folded.startswith(f"<p>short one</p>\n{code}\n<p>") and folded.replace("\n", " ") == (
        f"<p>short one</p> {code} <p>{words}</p> <p>{words}</p>".replace("\n", " "))
    assert max(map(len, folded.split("\n")[3:])) == 100
    word = "x" * 600  # nowhere to fold: it stays as it is (the SMTP provider sends it quoted-printable)
    assert fold_html(f"<p>{word}</p>") == f"<p>{word}</p>"


def test_an_import_in_email_css_is_never_fetched_and_the_email_is_the_same(publication: Path) -> None:
    """cssutils fetched an @import'ed stylesheet over the network at every build (whatever premailer's
    allow_network said), for premailer to leave the rule out of the email all the same."""
    import http.server
    import threading

    fetched: list[str] = []

    class Stylesheets(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetched.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.end_headers()
            self.wfile.write(b"p { color: red; }")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Stylesheets)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert run("build", "issue-1").exit_code == 0
        plain = (publication / "build" / "issue-1" / "email.html").read_text(encoding="utf-8")
        css = publication / "templates" / "email.css"
        css.parent.mkdir(exist_ok=True)
        css.write_text(f'@import url("http://127.0.0.1:{server.server_port}/fonts.css");\n'
                       + PACKAGE_TEMPLATES.joinpath("email.css").read_text(encoding="utf-8"), encoding="utf-8")
        assert run("build", "issue-1").exit_code == 0
    finally:
        server.shutdown()
    assert fetched == []
    assert (publication / "build" / "issue-1" / "email.html").read_text(encoding="utf-8") == plain
