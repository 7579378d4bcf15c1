"""The preview page: whose merge fields it shows (--as), the dark-mode frame, the inbox line."""

from __future__ import annotations

from pathlib import Path

import lxml.html

from newsletter.preview import inbox_rows
from tests.helpers import article, assert_one_line_error, run, update_config, write_issue


def preview(*options: str):
    return run("preview", "issue-1", "--no-open", *options)


def page(root: Path, issue: str = "issue-1"):
    return lxml.html.document_fromstring((root / "build" / issue / "preview.html").read_text(encoding="utf-8"))


def test_as_fills_the_merge_fields_from_that_subscriber(publication: Path) -> None:
    result = preview("--as", "TOMASZ@example.org")
    assert result.exit_code == 0, result.output
    folder = publication / "build" / "issue-1"
    assert "Hello Tomasz," in (folder / "preview-email.html").read_text(encoding="utf-8")
    assert "Hello Tomasz," in (folder / "preview-email.txt").read_text(encoding="utf-8")
    assert "unsubscribe?email=tomasz@example.org" in (folder / "preview-email.html").read_text(encoding="utf-8")
    assert "tomasz@example.org (merge fields filled from this subscriber)" in page(publication).text_content()

    # Without --as: the first subscribed address, as before.
    assert preview().exit_code == 0
    assert "Hello Ada," in (folder / "preview-email.html").read_text(encoding="utf-8")

    # A subscriber without a first name shows the fallback; so does one who unsubscribed.
    assert preview("--as", "reader.one@example.com").exit_code == 0
    assert "Hello friend," in (folder / "preview-email.html").read_text(encoding="utf-8")


def test_as_an_address_not_in_the_list_is_one_line(publication: Path) -> None:
    result = preview("--as", "nobody@example.org")
    assert_one_line_error(result, "subscribers/main.csv", "nobody@example.org is not in the list", "--as")
    assert not (publication / "build" / "issue-1" / "preview.html").exists()


def test_a_third_frame_shows_the_email_in_dark_mode(publication: Path) -> None:
    assert preview().exit_code == 0
    frames = page(publication).xpath("//figure")
    assert [f.findtext("figcaption") for f in frames] == ["Desktop · 600 px", "Phone · 375 px", "Dark mode · 375 px"]
    light, dark = frames[0].find("iframe").get("srcdoc"), frames[2].find("iframe").get("srcdoc")
    assert "prefers-color-scheme" in light and "prefers-color-scheme" not in dark
    # The dark rules apply unconditionally there, and nothing else changed.
    assert dark == light.replace("@media (prefers-color-scheme:dark)", "@media all")


def test_the_inbox_line_shows_sender_subject_and_preheader(publication: Path) -> None:
    assert preview().exit_code == 0
    rows = page(publication).xpath("//div[@class='inbox-row']")
    web, app = ([span.text_content() for span in row.xpath("./span")] for row in rows)
    assert web[0] == "Gmail on the web" and app[0] == "Gmail app"
    assert web[1] == "Riverside Writers'…"  # 25 characters: cut at Gmail's 20
    assert app[1] == "Riverside Writers' Circle"
    assert web[2].startswith("Winter readings, a river in December, and what we’re reading - Three pieces")
    assert app[2].startswith("Winter readings, a river in December… - ")


def test_the_inbox_line_without_a_preheader_shows_the_first_words(publication: Path) -> None:
    write_issue(publication, "bare", {"01-a.md": article("Only one", "The first words.")}, preheader="")
    result = run("preview", "bare", "--no-open")
    assert result.exit_code == 0, result.output
    row = page(publication, "bare").xpath("//div[@class='inbox-row']")[0]
    # What Gmail shows: the body's first visible text, the masthead's.
    assert "A test issue - The Riverside Writers' Circle Read on the web Hello Ada," in row.text_content()


def test_inbox_rows_cut_at_a_word_with_an_ellipsis() -> None:
    subject = "A subject that goes on " * 5
    web, app = inbox_rows("Someone", subject.strip(), "short")
    assert len(web.subject) <= 70 and web.subject.endswith("…") and not web.subject.endswith(" …")
    assert subject.startswith(web.subject[:-1])
    assert len(app.subject) <= 40
    assert web.preheader == "short" and app.sender == "Someone"


def test_inbox_line_escapes_what_it_shows(publication: Path) -> None:
    update_config(publication, **{"from": {"email": "letters@example.org", "name": "<b>Ink</b>"}})
    assert preview().exit_code == 0
    text = (publication / "build" / "issue-1" / "preview.html").read_text(encoding="utf-8")
    assert '<span class="inbox-sender">&lt;b&gt;Ink&lt;/b&gt;</span>' in text
