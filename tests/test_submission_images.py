"""`newsletter add` takes an image only when it is really beside the submission and really an
image an email shows: every other `src` (an absolute path, one climbing out of the folder, a
symlink out of it, a file that is no image, an SVG, a TIFF, a `file:` URL) is a warning at the
submission's line, and nothing of it reaches the issue's folder. Checked for .html, .md and .docx."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import docx
import docx.shared
import pytest
from PIL import Image

from tests.helpers import run

SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>\n'


def picture(kind: str = "PNG", color: tuple[int, int, int] = (30, 140, 90)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (60, 40), color).save(out, format=kind)
    return out.getvalue()


@pytest.fixture
def inbox(publication: Path) -> Path:
    """issue-2 to add to, an inbox of submissions, and private files a submission might name."""
    assert run("new", "issue-2", "--subject", "Spring").exit_code == 0
    (publication / "inbox").mkdir()
    private = publication / "private"
    private.mkdir()
    (private / "secret.svg").write_bytes(SVG)
    (private / "photo.png").write_bytes(picture(color=(200, 0, 0)))
    return publication / "inbox"


def issue_files(publication: Path) -> set[str]:
    folder = publication / "issues" / "issue-2"
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def hostile_files(publication: Path, inbox: Path) -> None:
    """Beside the submission: one good image, and files that must not be taken."""
    (inbox / "good.png").write_bytes(picture())
    (inbox / "notes.png").write_text("name,email\nAda,ada@example.org\n", encoding="utf-8")  # no image
    (inbox / "drawing.svg").write_bytes(SVG)
    (inbox / "hidden.png").write_bytes(SVG)  # an SVG under an image's name
    (inbox / "scan.tif").write_bytes(picture("TIFF"))
    (inbox / "folder.png").mkdir()
    os.symlink(publication / "private" / "photo.png", inbox / "linked.png")  # a real image, outside the folder


def test_an_html_submission_brings_only_the_image_beside_it(publication: Path, inbox: Path) -> None:
    hostile_files(publication, inbox)
    subscribers = publication / "subscribers" / "main.csv"
    lines = [
        "<html><body>",
        "<h1>Spring walk</h1>",
        "<p>By Ada Ng</p>",
        "<p>We walked.</p>",
        '<p><img alt="the path" src="good.png"></p>',  # line 5
        '<p><img alt="a" src="/etc/passwd"></p>',
        f'<p><img alt="b" src="{subscribers}"></p>',
        f'<p><img alt="c" src="{publication / "private" / "secret.svg"}"></p>',
        '<p><img alt="d" src="../subscribers/main.csv"></p>',
        '<p><img alt="e" src="linked.png"></p>',  # line 10
        '<p><img alt="f" src="notes.png"></p>',
        '<p><img alt="g" src="drawing.svg"></p>',
        '<p><img alt="h" src="hidden.png"></p>',
        '<p><img alt="i" src="scan.tif"></p>',
        '<ul><li>In a list <img alt="j" src="folder.png"></li><li>And <img alt="the path again" src="good.png"></li></ul>',  # line 15
        f'<p><img alt="k" src="file://{subscribers}"></p>',
        '<p><img alt="l" src="data:image/svg+xml;base64,PHN2Zz48c2NyaXB0Pjwvc2NyaXB0Pjwvc3ZnPg=="></p>',
        '<p><img alt="m" src="%00.png"></p>',
        '<p>The end, with an image on the web <img alt="n" src="https://example.org/n.png"></p>',
        '<p><img alt="o" src="http://[::1"></p>',  # no address urllib can split: no traceback either
        "</body></html>",
    ]
    (inbox / "walk.html").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run("add", "issue-2", "inbox/walk.html")
    assert result.exit_code == 0, result.output

    assert issue_files(publication) == {"issue.yaml", "01-spring-walk.md", "01-spring-walk-1.png"}
    assert (publication / "issues" / "issue-2" / "01-spring-walk-1.png").read_bytes() == picture()
    expected = [
        "inbox/walk.html:6: the image /etc/passwd is not a file beside walk.html (an absolute path",
        f"inbox/walk.html:7: the image {subscribers} is not a file beside walk.html (an absolute path",
        "inbox/walk.html:8: the image /", "secret.svg is not a file beside walk.html (an absolute path",
        "inbox/walk.html:9: the image ../subscribers/main.csv is outside the folder of walk.html",
        "inbox/walk.html:10: the image linked.png is outside the folder of walk.html",
        "inbox/walk.html:11: the image notes.png is not an image: left out",
        "inbox/walk.html:12: the image drawing.svg is an SVG: email clients do not show SVG",
        "inbox/walk.html:13: the image hidden.png is an SVG",
        "inbox/walk.html:14: the image scan.tif is a TIFF image, which email clients do not show",
        "inbox/walk.html:15: the image folder.png is not a file beside walk.html",
        f"inbox/walk.html:16: the image file://{subscribers} is neither a web address",
        "inbox/walk.html:17: the image data:image/svg+xml;base64,",
        "inbox/walk.html:18: the image %00.png",
    ]
    for text in expected:
        assert text in result.stderr, result.stderr
    assert result.stderr.count(": the image ") == len(expected) - 1, result.stderr  # one line is asserted in two parts
    markdown = (publication / "issues" / "issue-2" / "01-spring-walk.md").read_text(encoding="utf-8")
    for gone in ("passwd", "main.csv", "secret", "linked", "notes", "drawing", "hidden", "scan", "folder",
                 "file:", "data:", "%00"):
        assert gone not in markdown, gone
    assert "![the path](01-spring-walk-1.png)" in markdown
    assert "https://example.org/n.png" in markdown, "an image on the web stays as it is"
    assert "In a list" in markdown
    assert "- And ![the path again](01-spring-walk-1.png)" in markdown, "an image right in a list item is kept"
    assert "  images:     1\n    01-spring-walk-1.png: “the path”" in result.output


def test_a_markdown_submission_copies_only_the_image_beside_it(publication: Path, inbox: Path) -> None:
    hostile_files(publication, inbox)
    subscribers = publication / "subscribers" / "main.csv"
    body = [
        "---",
        "title: Spring walk",
        "author: Ada Ng",
        "---",
        "We walked.",  # line 5
        "",
        "![the path](good.png)",
        "",
        f"![a]({subscribers})",  # the reviewer's crash: shutil.SameFileError
        "![b](/etc/passwd)",  # line 10
        "![c](../private/photo.png)",
        "![d](linked.png) ![e](notes.png)",
        "",
        "Some text, and then",
        "![f](drawing.svg)",  # line 15: the second line of a paragraph
        "",
        "- ![g](hidden.png)",
        "- ![h](scan.tif)",
        "",
        "![i](folder.png) ![j](https://example.org/j.png)",  # line 20
        "",
        "![k](issue.yaml)",
        "",
        "![l](data:image/png;base64,iVBORw0KGgo=)",
    ]
    (inbox / "issue.yaml").write_bytes(picture())  # an image, but named as the issue's own file
    (inbox / "walk.md").write_text("\n".join(body) + "\n", encoding="utf-8")
    yaml_before = (publication / "issues" / "issue-2" / "issue.yaml").read_text(encoding="utf-8")
    result = run("add", "issue-2", "inbox/walk.md")
    assert result.exit_code == 0, result.output

    assert issue_files(publication) == {"issue.yaml", "01-spring-walk.md", "good.png"}
    folder = publication / "issues" / "issue-2"
    assert (folder / "good.png").read_bytes() == picture()
    assert (folder / "issue.yaml").read_text(encoding="utf-8").startswith(yaml_before.rstrip("\n")[:20])
    expected = [
        f"inbox/walk.md:9: the image {subscribers} is not a file beside walk.md (an absolute path",
        "inbox/walk.md:10: the image /etc/passwd is not a file beside walk.md",
        "inbox/walk.md:11: the image ../private/photo.png is outside the folder of walk.md",
        "inbox/walk.md:12: the image linked.png is outside the folder of walk.md",
        "inbox/walk.md:12: the image notes.png is not an image: not copied",
        "inbox/walk.md:15: the image drawing.svg is an SVG",
        "inbox/walk.md:17: the image hidden.png is an SVG",
        "inbox/walk.md:18: the image scan.tif is a TIFF image",
        "inbox/walk.md:20: the image folder.png is not a file beside walk.md",
        "inbox/walk.md:22: the image issue.yaml is a PNG image named .yaml",
        "inbox/walk.md:24: the image data:image/png;base64,iVBORw0KGgo= is embedded in the text (a data: URI)",
    ]
    for text in expected:
        assert text in result.stderr, result.stderr
    assert "j.png" not in result.stderr, "an image on the web is no warning"
    assert "  images:     2\n    good.png: “the path”\n    https://example.org/j.png: “j”" in result.output


def test_a_markdown_image_already_in_the_issue_is_not_copied_onto_itself(publication: Path, inbox: Path) -> None:
    """A submission saved into the issue's folder names its image there: nothing to copy, no crash."""
    folder = publication / "issues" / "issue-2"
    (folder / "hall.png").write_bytes(picture())
    (folder / "draft.md").write_text("# The hall\n\nBy Ada Ng\n\n![The hall](hall.png)\n", encoding="utf-8")
    result = run("add", "issue-2", "issues/issue-2/draft.md")
    assert result.exit_code == 0, result.output
    assert (folder / "hall.png").read_bytes() == picture()
    assert "    hall.png: “The hall”" in result.output


def word_document(path: Path, image: bytes) -> None:
    """A .docx whose picture holds `image` (Word keeps the media under the name it was given)."""
    document = docx.Document()
    document.add_heading("Spring walk", level=1)
    document.add_paragraph("By Ada Ng")
    document.add_paragraph("We walked.")
    document.add_picture(io.BytesIO(picture()), width=docx.shared.Cm(3))
    document.inline_shapes[0]._inline.docPr.set("descr", "The path")
    document.save(str(path))
    with zipfile.ZipFile(path) as original:
        parts = {name: original.read(name) for name in original.namelist()}
    media = [name for name in parts if name.startswith("word/media/")]
    assert len(media) == 1, media
    parts[media[0]] = image
    with zipfile.ZipFile(path, "w") as rewritten:
        for name, data in parts.items():
            rewritten.writestr(name, data)


@pytest.mark.parametrize(("image", "reason"), [
    (SVG, "is an SVG: email clients do not show SVG"),
    (picture("TIFF"), "is a TIFF image, which email clients do not show"),
    (b"PK\x03\x04 not a picture at all", "is not an image"),
], ids=["svg", "tiff", "no-image"])
def test_a_word_document_image_that_no_email_shows_is_left_out(publication: Path, inbox: Path,
                                                                image: bytes, reason: str) -> None:
    word_document(inbox / "walk.docx", image)
    result = run("add", "issue-2", "inbox/walk.docx")
    assert result.exit_code == 0, result.output
    assert "inbox/walk.docx, paragraph 4: an image (“The path”, image/png) " + reason in result.stderr
    assert issue_files(publication) == {"issue.yaml", "01-spring-walk.md"}
    assert "  images:     0" in result.output
    assert "![" not in (publication / "issues" / "issue-2" / "01-spring-walk.md").read_text(encoding="utf-8")


def test_a_word_document_image_is_named_by_its_content(publication: Path, inbox: Path) -> None:
    """A JPEG Word stored as image1.png becomes a .jpg, so the build encodes it as what it is."""
    jpeg = picture("JPEG")
    word_document(inbox / "walk.docx", jpeg)
    result = run("add", "issue-2", "inbox/walk.docx")
    assert result.exit_code == 0, result.output
    assert (publication / "issues" / "issue-2" / "01-spring-walk-1.jpg").read_bytes() == jpeg


def test_a_picture_linked_from_outside_a_word_document_is_never_read(publication: Path, inbox: Path) -> None:
    """Word can link a picture (any path or URL) instead of embedding it: that file stays where it is."""
    word_document(inbox / "walk.docx", picture())
    private = publication / "private" / "photo.png"
    with zipfile.ZipFile(inbox / "walk.docx") as original:
        parts = {name: original.read(name) for name in original.namelist()}
    rels = parts["word/_rels/document.xml.rels"].decode("utf-8")
    rel_id = rels.split('Target="media/', 1)[0].rsplit('Id="', 1)[1].split('"', 1)[0]
    parts["word/_rels/document.xml.rels"] = rels.replace(
        f'Target="media/{[n for n in parts if n.startswith("word/media/")][0].rsplit("/", 1)[1]}"',
        f'Target="{private.as_uri()}" TargetMode="External"').encode("utf-8")
    parts["word/document.xml"] = parts["word/document.xml"].replace(
        f'r:embed="{rel_id}"'.encode(), f'r:link="{rel_id}"'.encode())
    with zipfile.ZipFile(inbox / "walk.docx", "w") as rewritten:
        for name, data in parts.items():
            rewritten.writestr(name, data)
    result = run("add", "issue-2", "inbox/walk.docx")
    assert result.exit_code == 0, result.output
    assert "inbox/walk.docx, paragraph 4: an image (“The path”, image/png) is linked, not inside the document" \
        in result.stderr
    assert issue_files(publication) == {"issue.yaml", "01-spring-walk.md"}


def test_html_images_outside_paragraphs_are_kept_in_order_with_their_alt_text(publication: Path, inbox: Path) -> None:
    colours = {name: (40 * index, 90, 200 - 40 * index) for index, name in enumerate("abcde", start=1)}
    for name, colour in colours.items():
        (inbox / f"{name}.png").write_bytes(picture(color=colour))
    lines = [
        "<html><body>",
        "<h1>Spring walk</h1>",
        "<p>By Ada Ng</p>",
        "<p>We walked.</p>",
        '<img src="a.png" alt="A bare image">',  # line 5: right in the body
        '<div><img src="b.png" alt="In a div"></div>',
        '<figure><img src="c.png" alt="In a figure"><figcaption>The weir at dawn</figcaption></figure>',
        '<table><tr><td><img src="d.png" alt="In a cell"></td><td>Cell text</td></tr></table>',
        '<div><p>A paragraph in a div.</p><img src="e.png" alt="After it"></div>',
        '<img src="missing.png" alt="Not there">',  # line 10
        "<p>The end.</p>",
        "</body></html>",
    ]
    (inbox / "walk.html").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run("add", "issue-2", "inbox/walk.html")
    assert result.exit_code == 0, result.output
    folder = publication / "issues" / "issue-2"
    for index, name in enumerate("abcde", start=1):
        assert (folder / f"01-spring-walk-{index}.png").read_bytes() == picture(color=colours[name])
    body = (folder / "01-spring-walk.md").read_text(encoding="utf-8").split("---\n", 2)[2]
    assert body == ("We walked.\n\n![A bare image](01-spring-walk-1.png)\n\n![In a div](01-spring-walk-2.png)\n\n"
                    "![In a figure](01-spring-walk-3.png)\n\nThe weir at dawn\n\n![In a cell](01-spring-walk-4.png)\n\n"
                    "Cell text\n\nA paragraph in a div.\n\n![After it](01-spring-walk-5.png)\n\nThe end.\n")
    assert "warning: inbox/walk.html:10: the image missing.png is not beside walk.html: left out" in result.stderr
    assert "  images:     5\n" in result.output
