"""`newsletter add` with documents: a .docx built here with python-docx, an HTML file shaped like a
Google Docs export, and Markdown; each checked in the built email."""

from __future__ import annotations

import io
from pathlib import Path

import docx
import docx.opc.constants
import docx.oxml
import docx.shared
import lxml.html
from PIL import Image

from tests.helpers import run
from tests.submission_helpers import built_article, flat, front_matter

BASE = "https://riverside-writers-circle.internal/issues/issue-2/"


def png(color: tuple[int, int, int], size: tuple[int, int] = (120, 80)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def add_hyperlink(paragraph, url: str, text: str) -> None:
    """python-docx has no API for links: a w:hyperlink with a relationship, as Word writes it."""
    rel = paragraph.part.relate_to(url, docx.opc.constants.RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
    link = docx.oxml.OxmlElement("w:hyperlink")
    link.set(docx.oxml.ns.qn("r:id"), rel)
    run_ = docx.oxml.OxmlElement("w:r")
    text_ = docx.oxml.OxmlElement("w:t")
    text_.text = text
    text_.set(docx.oxml.ns.qn("xml:space"), "preserve")
    run_.append(text_)
    link.append(run_)
    paragraph._p.append(link)


def make_docx(path: Path, picture: bytes) -> None:
    document = docx.Document()
    document.add_paragraph("Workshop Logo")
    document.add_heading("Notes from the translation workshop", level=1)
    document.add_paragraph("Written by Inès Duarte (Riverside Translators)")
    first = document.add_paragraph("Eight of us met on Sunday to translate ")
    first.add_run("one").bold = True
    first.add_run(" poem, which took ")
    first.add_run("all afternoon").italic = True
    first.add_run(" – and three pots of tea… The draft is on ")
    add_hyperlink(first, "https://translators.example.org/drafts/3", "our shared page")
    first.add_run(".")
    document.add_paragraph("[Sic] is how the original marks it; the_draft_v2 file name stays as typed, "
                           "and so do \"straight quotes\".")
    document.add_picture(io.BytesIO(picture), width=docx.shared.Cm(4))
    document.inline_shapes[0]._inline.docPr.set("descr", "The workshop table, covered in dictionaries")
    document.add_paragraph("Next time we will need:")
    document.add_paragraph("More dictionaries", style="List Bullet")
    document.add_paragraph("A longer afternoon", style="List Bullet")
    document.add_paragraph("2019. That was our first workshop, with four people.")
    document.save(str(path))


def test_a_word_document_becomes_an_article_with_its_image_and_alt_text(publication: Path, inbox: Path) -> None:
    picture = png((40, 90, 160))
    make_docx(inbox / "workshop.docx", picture)
    result = run("add", "issue-2", "inbox/workshop.docx")
    assert result.exit_code == 0, result.output
    assert "inbox/workshop.docx (Word) → issues/issue-2/01-notes-from-the-translation-workshop.md" in result.output
    assert "01-notes-from-the-translation-workshop-1.png: “The workshop table, covered in dictionaries”" in result.output
    assert "inbox/workshop.docx, paragraph 1: “Workshop Logo” names an image that did not come" in result.stderr

    folder = publication / "issues" / "issue-2"
    assert (folder / "01-notes-from-the-translation-workshop-1.png").read_bytes() == picture
    assert front_matter(folder / "01-notes-from-the-translation-workshop.md") == {
        "title": "Notes from the translation workshop", "author": "Inès Duarte (Riverside Translators)"}

    built = built_article(publication, "issue-2", "Notes from the translation workshop")
    assert built.byline == "by Inès Duarte (Riverside Translators)"
    assert built.paragraphs[0] == ("Eight of us met on Sunday to translate one poem, which took all afternoon – "
                                   "and three pots of tea… The draft is on our shared page.")
    assert built.paragraphs[1] == ("[Sic] is how the original marks it; the_draft_v2 file name stays as typed, "
                                   "and so do \"straight quotes\".")
    assert built.paragraphs[-1] == "2019. That was our first workshop, with four people."
    assert built.links == [("https://translators.example.org/drafts/3", "our shared page")]
    assert built.images == [(BASE + "01-notes-from-the-translation-workshop-1.png",
                             "The workshop table, covered in dictionaries")]
    assert built.list_items == [["More dictionaries", "A longer afternoon"]]
    assert "Workshop Logo" not in built.text
    html = (publication / "build" / "issue-2" / "email.html").read_text(encoding="utf-8")
    assert "<strong>one</strong>" in html and "<em>all afternoon</em>" in html
    assert run("check", "issue-2").exit_code == 0


GOOGLE_DOCS_EXPORT = """\
<html><head><meta content="text/html; charset=UTF-8" http-equiv="content-type"><style type="text/css">\
ul.lst-kix_4x1-0{list-style-type:none}.c3{font-weight:700}.c5{font-style:italic}\
.c1{color:#000000;font-weight:400;font-size:11pt;font-family:"Arial"}.c0{padding-top:0pt;line-height:1.15}\
.title{padding-top:0pt;color:#000000;font-size:26pt}</style></head>
<body class="c7 doc-content">
<p class="c0 title" id="h.x1"><span class="c1">Night walk on the Downs</span></p>
<p class="c0"><span class="c1">by Sam O’Connor, Westside Branch</span></p>
<p class="c0 c6"><span class="c1"></span></p>
<p class="c0"><span class="c1">We set off at ten, </span><span class="c3">twelve of us</span><span class="c1"> \
and a dog called </span><span class="c5">Biscuit</span><span class="c1">. The route is on </span>\
<span class="c4"><a class="c8" href="https://www.google.com/url?q=https://walks.example.org/downs-night?x%3D1%26y%3D2\
&amp;sa=D&amp;source=editors&amp;ust=1700000000000000&amp;usg=AOvVaw0abc">the walking club’s page</a></span>\
<span class="c1">.&nbsp;</span><sup><a href="#cmnt1" id="cmnt_ref1">[a]</a></sup></p>
<p class="c0"><span style="overflow: hidden; display: inline-block; width: 602.00px; height: 200.00px;">\
<img alt="The ridge path at midnight, lit by head torches" src="images/image1.png" \
style="width: 602.00px; height: 200.00px; margin-left: 0.00px;" title=""></span></p>
<p class="c0"><span class="c1">What to bring:</span></p>
<ul class="c9 lst-kix_4x1-0 start"><li class="c0 c2 li-bullet-0"><span class="c1">A torch with a red light</span></li>\
<li class="c0 c2 li-bullet-0"><span class="c1">Two layers more than you think</span></li></ul>
<p class="c0"><span class="c1">1998. That was the last time anyone got lost; [i]n the words of our guide, \
“it’s only dark if you look at it”... #nightwalk</span></p>
<p class="c0"><span class="c1">Photo: the car park at dawn</span></p>
<div><p class="c2"><a href="#cmnt_ref1" id="cmnt1">[a]</a><span class="c1">Check the date with Sam</span></p></div>
</body></html>
"""


def test_a_google_docs_export_loses_its_class_soup_and_redirects(publication: Path, inbox: Path) -> None:
    picture = png((200, 160, 40))
    (inbox / "images").mkdir()
    (inbox / "images" / "image1.png").write_bytes(picture)
    (inbox / "NightWalk.html").write_text(GOOGLE_DOCS_EXPORT, encoding="utf-8")
    result = run("add", "issue-2", "inbox/NightWalk.html")
    assert result.exit_code == 0, result.output
    assert "(HTML) → issues/issue-2/01-night-walk-on-the-downs.md" in result.output
    assert "inbox/NightWalk.html:11: “Photo: the car park at dawn” names an image" in result.stderr

    folder = publication / "issues" / "issue-2"
    markdown = (folder / "01-night-walk-on-the-downs.md").read_text(encoding="utf-8")
    assert "class=" not in markdown and "style" not in markdown and "google.com" not in markdown
    assert (folder / "01-night-walk-on-the-downs-1.png").read_bytes() == picture
    assert front_matter(folder / "01-night-walk-on-the-downs.md") == {
        "title": "Night walk on the Downs", "author": "Sam O’Connor, Westside Branch"}

    built = built_article(publication, "issue-2", "Night walk on the Downs")
    assert built.byline == "by Sam O’Connor, Westside Branch"
    assert built.paragraphs[0] == ("We set off at ten, twelve of us and a dog called Biscuit. "
                                   "The route is on the walking club’s page.")
    assert built.links == [("https://walks.example.org/downs-night?x=1&y=2", "the walking club’s page")]
    assert built.images == [(BASE + "01-night-walk-on-the-downs-1.png", "The ridge path at midnight, lit by head torches")]
    assert built.list_items == [["A torch with a red light", "Two layers more than you think"]]
    assert built.paragraphs[-1] == ("1998. That was the last time anyone got lost; [i]n the words of our guide, "
                                    "“it’s only dark if you look at it”... #nightwalk")
    assert "Check the date" not in built.text and "[a]" not in built.text, "comments are not the article"
    html = (publication / "build" / "issue-2" / "email.html").read_text(encoding="utf-8")
    assert "<strong>twelve of us</strong>" in html and "<em>Biscuit</em>" in html


def test_a_google_docs_nested_list_stays_nested(publication: Path, inbox: Path) -> None:
    """Docs writes each level of a nested list as a list of its own (`lst-kix_<id>-<level>`):
    the article nests them again, and a numbered list goes on counting after its sublist."""
    (inbox / "Route.html").write_text("""\
<html><body class="doc-content">
<p class="c0 title"><span>The towpath route</span></p>
<p><span>Where we stop:</span></p>
<ol class="c4 lst-kix_q7-0 start" start="1"><li class="c0 li-bullet-0"><span>The lock</span></li></ol>
<ul class="c4 lst-kix_q7-1 start"><li class="c0 li-bullet-1"><span>Tea at the lock cottage</span></li>
<li class="c0 li-bullet-1"><span>The heron, if it is there</span></li></ul>
<ol class="c4 lst-kix_q7-0" start="2"><li class="c0 li-bullet-0"><span>The old mill</span></li></ol>
<p><span>Back by four.</span></p>
</body></html>
""", encoding="utf-8")
    result = run("add", "issue-2", "inbox/Route.html")
    assert result.exit_code == 0, result.output
    markdown = (publication / "issues" / "issue-2" / "01-the-towpath-route.md").read_text(encoding="utf-8")
    html = (publication / "build" / "issue-2" / "email.html")
    built = built_article(publication, "issue-2", "The towpath route")
    tree = lxml.html.document_fromstring(html.read_text(encoding="utf-8"))
    outer = [ol for ol in tree.iter("ol") if "The lock" in ol.text_content()]
    assert len(outer) == 1, markdown
    items = outer[0].findall("li")
    assert [flat(li.text_content()) for li in items] == [
        "The lock Tea at the lock cottage The heron, if it is there", "The old mill"], markdown
    assert [flat(li.text_content()) for li in items[0].iter("li") if li is not items[0]] == [
        "Tea at the lock cottage", "The heron, if it is there"]
    assert built.paragraphs[-1] == "Back by four."


def test_an_html_image_that_is_not_there_is_warned_about(publication: Path, inbox: Path) -> None:
    (inbox / "walk.html").write_text(GOOGLE_DOCS_EXPORT, encoding="utf-8")
    result = run("add", "issue-2", "inbox/walk.html")
    assert result.exit_code == 0, result.output
    assert "inbox/walk.html:7: the image images/image1.png is not beside walk.html: left out" in result.stderr
    assert "  images:     0" in result.output


def test_markdown_keeps_its_front_matter_or_gets_one(publication: Path, inbox: Path) -> None:
    (inbox / "kept.md").write_text(
        "---\n# the writer's note stays\ntitle: 'Kept: as written'\nsummary: A short one.\n---\n"
        "Body with **bold** and a [link](https://example.org/kept).\n\n![The hall, with chairs](hall.png)\n",
        encoding="utf-8")
    picture = png((10, 120, 10))
    (inbox / "hall.png").write_bytes(picture)
    (inbox / "bare.md").write_text("# A bare *draft*\n\nBy Ada Ng\n\nFirst paragraph.\n\n- one\n- two\n",
                                   encoding="utf-8")
    result = run("add", "issue-2", "inbox/kept.md", "inbox/bare.md")
    assert result.exit_code == 0, result.output
    folder = publication / "issues" / "issue-2"
    kept = (folder / "01-kept-as-written.md").read_text(encoding="utf-8")
    assert kept == ("---\n# the writer's note stays\ntitle: 'Kept: as written'\nsummary: A short one.\n---\n"
                    "Body with **bold** and a [link](https://example.org/kept).\n\n![The hall, with chairs](hall.png)\n")
    assert (folder / "hall.png").read_bytes() == picture, "the image it names is copied in"
    assert "  images:     1\n    hall.png: “The hall, with chairs”" in result.output
    assert front_matter(folder / "02-a-bare-draft.md") == {"title": "A bare *draft*", "author": "Ada Ng"}
    built = built_article(publication, "issue-2", "A bare *draft*")
    assert built.byline == "by Ada Ng"
    assert built.paragraphs == ["First paragraph."]
    assert built.list_items == [["one", "two"]]
    kept_article = built_article(publication, "issue-2", "Kept: as written")
    assert kept_article.links == [("https://example.org/kept", "link")]
    assert kept_article.images == [(BASE + "hall.png", "The hall, with chairs")]
    assert kept_article.paragraphs[0] == "Body with bold and a link."


def test_a_file_that_is_no_word_document_is_a_one_line_error(publication: Path, inbox: Path) -> None:
    (inbox / "broken.docx").write_text("this is not a zip file", encoding="utf-8")
    result = run("add", "issue-2", "inbox/broken.docx")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: inbox/broken.docx: not a Word document mammoth can read")
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.output


def test_html_nested_past_the_recursion_limit_is_one_error_not_a_traceback(publication: Path, inbox: Path) -> None:
    head = "<html><body>\n<h1>Deep</h1>\n<p>By Ada Ng</p>\n"
    for opening, closing in (("<div>", "</div>"), ("<b>", "</b>"), ("<blockquote>", "</blockquote>"),
                             ("<ul><li>x", "</li></ul>")):
        (inbox / "deep.html").write_text(head + opening * 5_000 + "words" + closing * 5_000 + "\n</body></html>\n",
                                         encoding="utf-8")
        result = run("add", "issue-2", "inbox/deep.html")
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("error: inbox/deep.html:4: elements are nested more than 100 deep"), \
            result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert sorted(p.name for p in (publication / "issues" / "issue-2").iterdir()) == ["issue.yaml"]
