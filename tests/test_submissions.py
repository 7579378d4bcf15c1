"""`newsletter new` and `newsletter add` with plain-text submissions, checked in the built email.

Each submission is written here in one writer's house style; what the tests assert is what
a reader of the email sees: the front matter's title and byline, the list items, the links,
and sentences kept character for character.
"""

from __future__ import annotations

import datetime as dt
import re
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.helpers import run
from tests.submission_helpers import built_article, flat, front_matter

SAMPLE = REPO.parent / "shared" / "samples" / "submitted-article.txt"


def test_new_creates_the_next_numbered_draft(publication: Path) -> None:
    result = run("new", "--subject", "Spring: the garden, and the coast")
    assert result.exit_code == 0, result.output
    path = publication / "issues" / "issue-2" / "issue.yaml"
    assert f"Created issues/issue-2/issue.yaml (date {dt.date.today().isoformat()}, draft)." in result.output
    assert "Next: newsletter add issue-2 SUBMISSION..." in result.output
    text = path.read_text(encoding="utf-8")
    # A random id ties the issue to its send ledger, whatever its folder is called later.
    issue_id = re.search(r"^id: (i[0-9a-f]{12})$", text, re.MULTILINE)
    assert issue_id, text
    assert text == (
        "subject: 'Spring: the garden, and the coast'\n"
        f"date: {dt.date.today().isoformat()}\n"
        f"id: {issue_id[1]}\n"
        "draft: true\n"
        "articles: []\n"
    )


def test_new_takes_a_name_and_a_date_and_starts_at_issue_1(publication: Path) -> None:
    for folder in (publication / "issues").iterdir():
        for file in folder.iterdir():
            file.unlink()
        folder.rmdir()
    assert run("new").exit_code == 0
    assert (publication / "issues" / "issue-1" / "issue.yaml").is_file()
    result = run("new", "spring-special", "--subject", "Spring", "--date", "2027-03-01")
    assert result.exit_code == 0, result.output
    text = (publication / "issues" / "spring-special" / "issue.yaml").read_text(encoding="utf-8")
    assert text.startswith("subject: Spring\ndate: 2027-03-01\nid: i")
    assert "\ndraft: true\n" in text
    assert "warning: issues/issue-7/issue.yaml: no subject yet" in run("new", "issue-7").stderr


def test_new_refuses_an_existing_issue_and_changes_nothing(publication: Path) -> None:
    path = publication / "issues" / "issue-1" / "issue.yaml"
    before = path.read_bytes()
    result = run("new", "issue-1", "--subject", "Again")
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: issues/issue-1/issue.yaml: issue 'issue-1' already exists; nothing was changed"
    assert path.read_bytes() == before


# -- the real submission ---------------------------------------------------------------------------

@pytest.fixture
def sample() -> Path:
    if not SAMPLE.is_file():
        pytest.skip(f"the sample submission is not at {SAMPLE} (../shared/ is absent beside the checkout)")
    return SAMPLE


def test_the_sample_submission_becomes_an_article(publication: Path, sample: Path) -> None:
    """The first real line is the title, "by …" the author; a logo line, the byline and the title
    are not in the body; every paragraph, the citations and the closing line are kept as written."""
    lines = [line.rstrip() for line in sample.read_text(encoding="utf-8").splitlines() if line.strip()]
    placeholder, title, byline = lines[0], lines[1], lines[2]
    label = next(line for line in lines if line.endswith(":") and len(line) < 20)
    citations = lines[lines.index(label) + 1:-1]
    paragraphs = lines[3:lines.index(label)]
    closing = lines[-1]

    assert run("new", "--subject", "Test").exit_code == 0
    result = run("add", "issue-2", str(sample))
    assert result.exit_code == 0, result.output
    [article_path] = (publication / "issues" / "issue-2").glob("01-*.md")
    assert article_path.name == "01-" + "-".join(title.lower().split()) + ".md"
    assert front_matter(article_path) == {"title": title, "author": byline.removeprefix("by ")}
    assert f"  title:      {title}" in result.output
    assert "  lists:      1 (3 items)" in result.output
    assert f"submitted-article.txt:1: “{placeholder}” names an image that did not come with the text" in result.stderr
    for number, citation in enumerate(citations):
        assert f"submitted-article.txt:{26 + 2 * number}: the item “{citation.strip()[:20]}" in result.stderr
    assert "the closing call" in result.stderr and "already invites replies" in result.stderr

    built = built_article(publication, "issue-2", title)
    assert built.byline == byline
    assert built.paragraphs[: len(paragraphs)] == [flat(p) for p in paragraphs]
    assert built.list_items == [[flat(c) for c in citations]]
    assert built.paragraphs[-2:] == [label, closing]
    assert placeholder not in built.text and title not in built.text and byline not in built.text
    assert built.links == [] and built.images == [], "the citations' links were lost; the logo did not come"
    for paragraph in paragraphs:
        assert flat(paragraph) in built.text_part
    check = run("check", "issue-2")
    assert check.exit_code == 0 and "repeats" not in check.stderr, check.stderr


# -- two house styles ------------------------------------------------------------------------------

WRAPPED = textwrap.fill(
    "After two years of letters, petitions and one very long council meeting, the gates of "
    "the Larch Street garden opened on Saturday morning. *Forty* people came – which is forty "
    "more than the council’s “realistic estimate” – and nobody left before the soup ran out…",
    width=68,
)
ONE_LINE = ("1998. That year the allotments were sold, and the land sat empty... for a quarter of a "
            "century. As the old sign put it, \"[t]he land is ours to keep\", and the rota_sheet on "
            "the shed door still says so.")


def house_style_a() -> bytes:
    """An email pasted into Notepad on Windows: Windows-1252, CRLF, wrapped at 68 characters."""
    text = "\r\n".join([
        "[Image: the new gates, photographed by Sam]",
        "Gates open at Larch Street",
        "By: Priya Natarajan, Eastside Branch",
        "",
        *[line + ("\u00a0" if index == 1 else "") for index, line in enumerate(WRAPPED.splitlines())],
        "",
        ONE_LINE,
        "",
        "# of plots still free: three, and * marks them on the map.",
        "",
        "What we are asking for:",
        "- A water tap by the east gate",
        "- Keys for every plot holder, not just the committee",
        "- A notice board: https://larch-garden.example.org/board",
        "",
        "Let us know what you think...",
        "",
    ])
    return text.encode("cp1252")


def house_style_b() -> bytes:
    """Saved from a word processor: UTF-8 with a BOM, LF, every paragraph one long line."""
    text = "\n".join([
        "(photo)",
        "",
        "The Tuesday poets go to the coast",
        "",
        "Written by Tomasz Wiśniewski (Riverside Poetry Group)",
        "",
        "We took the 7:40 from Oxbury, eleven of us with flasks & notebooks — the café at the harbour "
        "had been warned. A poet’s life is not all garrets; some of it is _waiting_ for a bus.",
        "",
        "The gulls, the rope,",
        "the tar on the harbour wall",
        "and the bus home at six.",
        "",
        "Further reading:",
        "",
        "Okafor, Ada. “Salt and Syntax.” The Coastal Review, 4 May 2024, https://coastal-review.example.org/salt_and_syntax",
        "",
        "Lindqvist, Britt. “Tides.” Harbour Press, 2019,",
        "",
        "https://tides.example.net/poems?id=7&lang=en",
        "",
        "Give us your thoughts...",
    ])
    return b"\xef\xbb\xbf" + text.encode("utf-8")


def test_house_style_a_windows_1252_hard_wrapped(publication: Path, inbox: Path) -> None:
    (inbox / "gates.txt").write_bytes(house_style_a())
    result = run("add", "issue-2", "inbox/gates.txt")
    assert result.exit_code == 0, result.output
    assert "inbox/gates.txt (plain text, Windows-1252) → issues/issue-2/01-gates-open-at-larch-street.md" in result.output
    # Four paragraphs as the writer counts them: "What we are asking for:" is the label of its list.
    assert "  paragraphs: 4\n" in result.output and "  lists:      1 (3 items)" in result.output
    assert "inbox/gates.txt:1: “[Image: the new gates, photographed by Sam]” names an image" in result.stderr
    assert "the closing call “Let us know what you think...” is kept" in result.stderr

    article = publication / "issues" / "issue-2" / "01-gates-open-at-larch-street.md"
    assert front_matter(article) == {"title": "Gates open at Larch Street",
                                     "author": "Priya Natarajan, Eastside Branch"}
    markdown = article.read_text(encoding="utf-8")
    assert "\u00a0\n" not in markdown and "\r" not in markdown
    assert "1998\\. That year" in markdown and "\\[t\\]he" in markdown and "rota\\_sheet" in markdown
    assert "\\# of plots" in markdown and "\\* marks" in markdown

    built = built_article(publication, "issue-2", "Gates open at Larch Street")
    assert built.byline == "by Priya Natarajan, Eastside Branch"
    assert built.paragraphs[0] == flat(WRAPPED).replace("*Forty*", "Forty")
    assert built.paragraphs[1] == ONE_LINE
    assert built.paragraphs[2] == "# of plots still free: three, and * marks them on the map."
    assert built.paragraphs[3:] == ["What we are asking for:", "Let us know what you think..."]
    assert built.list_items == [["A water tap by the east gate", "Keys for every plot holder, not just the committee",
                                 "A notice board: https://larch-garden.example.org/board"]]
    assert built.links == [("https://larch-garden.example.org/board", "https://larch-garden.example.org/board")]
    assert built.images == []
    assert "the Larch Street garden" not in built.title
    # `*Forty*` became emphasis; the text part shows the word as written, without the stars.
    assert "<em>Forty</em>" in (publication / "build" / "issue-2" / "email.html").read_text(encoding="utf-8")
    assert flat(ONE_LINE) in built.text_part
    assert "people came – which is forty more than the council’s “realistic estimate” – and nobody" in built.text_part


def test_house_style_b_utf8_bom_one_line_paragraphs(publication: Path, inbox: Path) -> None:
    (inbox / "coast.txt").write_bytes(house_style_b())
    result = run("add", "issue-2", "inbox/coast.txt")
    assert result.exit_code == 0, result.output
    assert "(plain text, UTF-8 with a BOM)" in result.output
    assert "inbox/coast.txt:1: “(photo)” names an image" in result.stderr
    assert "inbox/coast.txt:17: the item “Lindqvist, Britt. “Tides.” Harbour Press, 2019,” ends in a comma" in result.stderr
    assert "inbox/coast.txt:21: the closing call “Give us your thoughts...” is kept, but the email's footer " \
           "(footer.html) already invites replies" in result.stderr
    assert "  links:      2" in result.output

    article = publication / "issues" / "issue-2" / "01-the-tuesday-poets-go-to-the-coast.md"
    assert front_matter(article) == {"title": "The Tuesday poets go to the coast",
                                     "author": "Tomasz Wiśniewski (Riverside Poetry Group)"}
    built = built_article(publication, "issue-2", "The Tuesday poets go to the coast")
    assert built.byline == "by Tomasz Wiśniewski (Riverside Poetry Group)"
    assert built.paragraphs[0] == (
        "We took the 7:40 from Oxbury, eleven of us with flasks & notebooks — the café at the harbour "
        "had been warned. A poet’s life is not all garrets; some of it is waiting for a bus.")
    assert built.paragraphs[1] == "The gulls, the rope, the tar on the harbour wall and the bus home at six."
    assert built.list_items == [[
        "Okafor, Ada. “Salt and Syntax.” The Coastal Review, 4 May 2024, "
        "https://coastal-review.example.org/salt_and_syntax",
        "Lindqvist, Britt. “Tides.” Harbour Press, 2019,",
        "https://tides.example.net/poems?id=7&lang=en",
    ]]
    assert built.links == [
        ("https://coastal-review.example.org/salt_and_syntax", "https://coastal-review.example.org/salt_and_syntax"),
        ("https://tides.example.net/poems?id=7&lang=en", "https://tides.example.net/poems?id=7&lang=en"),
    ]
    assert built.paragraphs[-1] == "Give us your thoughts..."
    assert built.images == [], "the photo did not come with the text"
    html = (publication / "build" / "issue-2" / "email.html").read_text(encoding="utf-8")
    assert "<em>waiting</em>" in html
    assert "the rope,<br>" in html.replace("<br />", "<br>")  # the poem keeps its lines
    text = (publication / "build" / "issue-2" / "email.txt").read_text(encoding="utf-8")
    assert "The gulls, the rope,\nthe tar on the harbour wall\nand the bus home at six." in text


# -- what add does to issue.yaml -------------------------------------------------------------------

def test_add_edits_issue_yaml_in_place_keeping_comments_order_and_quotes(publication: Path, inbox: Path) -> None:
    folder = publication / "issues" / "issue-2"
    (folder / "01-editorial.md").write_text("---\ntitle: From the editor\n---\nHello.\n", encoding="utf-8")
    original = (
        "# Spring issue: the editor's notes stay where they are.\n"
        "subject: 'Spring: the garden, and the coast'   # single quotes on purpose\n"
        "articles:\n"
        "    - 01-editorial.md    # always first\n"
        'preheader: "Two reports from the circle."\n'
        "date: 2027-03-01\n"
    )
    (folder / "issue.yaml").write_text(original, encoding="utf-8")
    (inbox / "gates.txt").write_bytes(house_style_a())
    (inbox / "coast.txt").write_bytes(house_style_b())
    result = run("add", "issue-2", "inbox/gates.txt", "inbox/coast.txt")
    assert result.exit_code == 0, result.output
    assert (folder / "issue.yaml").read_text(encoding="utf-8") == original.replace(
        "    - 01-editorial.md    # always first\n",
        "    - 01-editorial.md    # always first\n"
        "    - 02-gates-open-at-larch-street.md\n"
        "    - 03-the-tuesday-poets-go-to-the-coast.md\n",
    )
    assert "Listed in issues/issue-2/issue.yaml (3 articles)." in result.output
    assert run("check", "issue-2").exit_code == 0


def test_add_after_new_turns_the_empty_list_into_lines(publication: Path, inbox: Path) -> None:
    (inbox / "coast.txt").write_bytes(house_style_b())
    assert run("add", "issue-2", "inbox/coast.txt", "--title", "By the sea", "--author", "T. W.").exit_code == 0
    text = (publication / "issues" / "issue-2" / "issue.yaml").read_text(encoding="utf-8")
    assert text.endswith("draft: true\narticles:\n  - 01-by-the-sea.md\n")
    article = publication / "issues" / "issue-2" / "01-by-the-sea.md"
    assert front_matter(article) == {"title": "By the sea", "author": "T. W."}
    built = built_article(publication, "issue-2", "By the sea")
    assert built.byline == "by T. W."
    assert "The Tuesday poets go to the coast" not in built.text  # the submission's own title line is replaced
    assert "Written by" not in built.text


def test_add_dry_run_prints_the_markdown_and_writes_nothing(publication: Path, inbox: Path) -> None:
    (inbox / "gates.txt").write_bytes(house_style_a())
    folder = publication / "issues" / "issue-2"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = run("add", "issue-2", "inbox/gates.txt", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "--- issues/issue-2/01-gates-open-at-larch-street.md (dry run: nothing written)" in result.output
    assert "---\ntitle: Gates open at Larch Street\nauthor: Priya Natarajan, Eastside Branch\n---\n" in result.output
    assert "- A water tap by the east gate\n" in result.output
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_add_refuses_an_unknown_format_with_the_formats_it_reads(publication: Path, inbox: Path) -> None:
    (inbox / "notes.rtf").write_text("{\\rtf1 Hello}", encoding="ascii")
    (inbox / "gates.txt").write_bytes(house_style_a())
    folder = publication / "issues" / "issue-2"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = run("add", "issue-2", "inbox/gates.txt", "inbox/notes.rtf")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("error: inbox/notes.rtf: cannot read .rtf; submissions are "
                                     ".docx, .htm, .html, .markdown, .md, .txt")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before, "nothing written, the good file neither"


def test_add_refuses_text_in_neither_encoding(publication: Path, inbox: Path) -> None:
    (inbox / "odd.txt").write_bytes(b"A title\r\n\r\nA byte cp1252 leaves undefined: \x81\r\n")
    result = run("add", "issue-2", "inbox/odd.txt")
    assert result.exit_code == 1
    assert "error: inbox/odd.txt:3: neither UTF-8 nor Windows-1252 text (byte 0x81)" in result.stderr


def test_add_to_a_missing_issue_names_it(publication: Path) -> None:
    result = run("add", "issue-9", "x.txt")
    assert result.exit_code == 1
    assert "no such issue 'issue-9'" in result.stderr


def test_check_warns_about_a_title_or_byline_repeated_in_the_body(publication: Path) -> None:
    """What pasting a submission raw under front matter gives: the title twice, "by by"."""
    from tests.helpers import article, write_issue

    write_issue(publication, "raw", {
        "01-raw.md": article("Gates open at Larch Street", "Gates open at Larch Street\n\nBy: Priya Natarajan\n\nText.\n",
                             author="Priya Natarajan"),
        "02-fine.md": article("The coast", "By the second week the gulls had gone.\n", author="T. W."),
        "03-byline.md": article("No author", "by Sam O’Connor\n\nText.\n"),
    })
    result = run("check", "raw")
    assert result.exit_code == 0, result.output
    assert ("warning: issues/raw/01-raw.md: the first paragraph repeats the title “Gates open at Larch Street”, "
            "which the email shows above it: remove it from the article") in result.stderr
    assert "warning: issues/raw/01-raw.md: the second paragraph “By: Priya Natarajan” repeats the byline" in result.stderr
    assert "warning: issues/raw/03-byline.md: the first paragraph “by Sam O’Connor” repeats the byline" in result.stderr
    assert "02-fine.md" not in result.stderr
    assert "unsubscribe_url is a page of your own" in result.stderr  # the sample's own page: the 4th
    assert "4 warnings" in result.output


def test_add_keeps_a_flow_list_as_a_flow_list(publication: Path, inbox: Path) -> None:
    folder = publication / "issues" / "issue-2"
    (folder / "01-editorial.md").write_text("---\ntitle: From the editor\n---\nHello.\n", encoding="utf-8")
    (folder / "issue.yaml").write_text("subject: Spring\narticles: [01-editorial.md]  # in order\n", encoding="utf-8")
    (inbox / "coast.txt").write_bytes(house_style_b())
    assert run("add", "issue-2", "inbox/coast.txt").exit_code == 0
    assert (folder / "issue.yaml").read_text(encoding="utf-8") == (
        "subject: Spring\narticles: [01-editorial.md, 02-the-tuesday-poets-go-to-the-coast.md] # in order\n")


def test_add_without_an_articles_list_lists_the_articles_already_there(publication: Path, inbox: Path) -> None:
    folder = publication / "issues" / "issue-2"
    (folder / "01-editorial.md").write_text("---\ntitle: From the editor\n---\nHello.\n", encoding="utf-8")
    (folder / "issue.yaml").write_text("subject: Spring  # the subject\n", encoding="utf-8")
    (inbox / "coast.txt").write_bytes(house_style_b())
    result = run("add", "issue-2", "inbox/coast.txt")
    assert result.exit_code == 0, result.output
    assert "had no `articles` list, so the issue was every *.md file; listed them (01-editorial.md)" in result.stderr
    assert (folder / "issue.yaml").read_text(encoding="utf-8") == (
        "subject: Spring  # the subject\narticles:\n  - 01-editorial.md\n  - 02-the-tuesday-poets-go-to-the-coast.md\n")


SAME_BLOCK_LIST = "\n".join([
    "Reading for the winter",
    "by Maya Okonkwo, editor",
    "",
    "Some links:",
    "https://library.example.org/winter",
    "The Corn Exchange programme, with the dates of every reading this season and the prices",
    "Tea & mince pies",
    "",
    "That is all for now.",
])


def test_a_label_over_lines_in_its_block_is_a_list_whatever_their_length(publication: Path, inbox: Path) -> None:
    (inbox / "reading.txt").write_text(SAME_BLOCK_LIST, encoding="utf-8")
    result = run("add", "issue-2", "inbox/reading.txt")
    assert result.exit_code == 0, result.output
    assert "  lists:      1 (3 items)" in result.output and "  links:      1" in result.output
    assert result.stderr == "", "nothing here is a guess worth a warning"
    built = built_article(publication, "issue-2", "Reading for the winter")
    assert built.byline == "by Maya Okonkwo, editor"
    assert built.list_items == [["https://library.example.org/winter",
                                 "The Corn Exchange programme, with the dates of every reading this season and the prices",
                                 "Tea & mince pies"]]
    assert built.links == [("https://library.example.org/winter", "https://library.example.org/winter")]
    assert built.paragraphs == ["Some links:", "That is all for now."]


def test_no_warning_about_a_closing_call_when_the_footer_does_not_invite_replies(publication: Path, inbox: Path) -> None:
    (publication / "templates" / "footer.html").write_text(
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> {{ publication.postal_address }}</p>', encoding="utf-8")
    (publication / "templates" / "email.txt").write_text(
        "{% for article in issue.articles %}{{ article.title }}\n\n{{ article.text }}{% endfor %}\n"
        "{{ unsubscribe_url }}\n{{ publication.postal_address }}\n", encoding="utf-8")
    (inbox / "coast.txt").write_bytes(house_style_b())
    result = run("add", "issue-2", "inbox/coast.txt")
    assert result.exit_code == 0, result.output
    assert "closing call" not in result.stderr
    assert "Give us your thoughts..." in built_article(publication, "issue-2", "The Tuesday poets go to the coast").text


@pytest.mark.parametrize("submission, title, author, warning", [
    ("The Big Picture\n\nBy the second week of December the towpath goes quiet.\n",
     "The Big Picture", None, "inbox/s.txt:2: no byline (“by NAME”) under the title: pass --author"),
    ("Group photo\n\nSpring fair\nWords by Ana de la Cruz\n\nText.\n",
     "Spring fair", "Ana de la Cruz", "inbox/s.txt:1: “Group photo” names an image"),
    ("# Letters page\n\nBY: THE EDITORS\n\nText.\n", "Letters page", "THE EDITORS", None),
    ("We met on Tuesday and talked for hours about the river, the weather and the fair.\n\nText.\n",
     "We met on Tuesday and talked for hours about the river, the weather and the fair.", None,
     "inbox/s.txt:1: took “We met on Tuesday and talked for hours about the river, the…” as the title"),
], ids=["not a byline, not a placeholder", "words by, same block", "capitals", "a sentence as title"])
def test_title_and_byline_guesses(publication: Path, inbox: Path, submission: str, title: str,
                                  author: str | None, warning: str | None) -> None:
    (inbox / "s.txt").write_text(submission, encoding="utf-8")
    result = run("add", "issue-2", "inbox/s.txt", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"  title:      {title}\n" in result.output
    assert f"  author:     {author or '(none)'}\n" in result.output
    if warning:
        assert warning in result.stderr


def test_title_names_one_article(publication: Path, inbox: Path) -> None:
    (inbox / "a.txt").write_bytes(house_style_a())
    (inbox / "b.txt").write_bytes(house_style_b())
    result = run("add", "issue-2", "inbox/a.txt", "inbox/b.txt", "--title", "Both")
    assert result.exit_code == 1
    assert "error: --title names one article: add the submissions one at a time" in result.stderr


def test_a_paragraph_per_line_without_blank_lines(publication: Path, inbox: Path) -> None:
    """Word's "Save as plain text": each paragraph one line, nothing between them."""
    first = ("The committee met on Monday and agreed, after an hour on the subject, that the hall’s "
             "heating will stay on until the end of March.")
    second = ("Tea remains 50p. The biscuits, as ever, are a matter for the membership, and “the "
              "membership” has views...")
    (inbox / "minutes.txt").write_text(f"Minutes, briefly\nby Ruth Adeyemi\n{first}\n{second}\n", encoding="utf-8")
    result = run("add", "issue-2", "inbox/minutes.txt")
    assert result.exit_code == 0, result.output
    assert "  paragraphs: 2" in result.output
    built = built_article(publication, "issue-2", "Minutes, briefly")
    assert built.byline == "by Ruth Adeyemi"
    assert built.paragraphs == [first, second]
    assert front_matter(publication / "issues" / "issue-2" / "01-minutes-briefly.md") == {
        "title": "Minutes, briefly", "author": "Ruth Adeyemi"}


def test_adding_a_submission_twice_warns_and_an_article_listed_twice_is_an_error(publication: Path,
                                                                                 inbox: Path) -> None:
    (inbox / "gates.txt").write_bytes(house_style_a())
    assert run("add", "issue-2", "inbox/gates.txt").exit_code == 0
    again = run("add", "issue-2", "inbox/gates.txt")
    assert again.exit_code == 0, again.output
    assert ("warning: issues/issue-2/01-gates-open-at-larch-street.md has the title “Gates open at Larch "
            "Street” already: was inbox/gates.txt added before?") in again.stderr
    meta = publication / "issues" / "issue-2" / "issue.yaml"
    meta.write_text(meta.read_text(encoding="utf-8").replace("02-gates-open-at-larch-street.md",
                                                             "01-gates-open-at-larch-street.md"), encoding="utf-8")
    checked = run("check", "issue-2")
    assert checked.exit_code == 1
    assert "article '01-gates-open-at-larch-street.md' is listed 2 times in `articles`: list it once" in checked.stderr


def test_adding_to_an_issue_already_sent_warns(publication: Path, inbox: Path) -> None:
    from newsletter.sending.ledger import ACCEPTED, Ledger

    (publication / "sent").mkdir()
    ledger = Ledger(publication / "sent" / "issue-2.sqlite", "issue-2")  # one reader has the issue
    ledger.settle(ledger.record(["reader@example.org"]), ACCEPTED)
    ledger.close()
    (inbox / "gates.txt").write_bytes(house_style_a())
    result = run("add", "issue-2", "inbox/gates.txt")
    assert result.exit_code == 0
    assert "warning: sent/issue-2.sqlite: issue-2 has been sent already: whoever has it will not get" in result.stderr
