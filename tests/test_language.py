"""The email and web page in the publication's language: one strings table, overrides, Babel dates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import lxml.html
import pytest

from newsletter.config import load_settings
from newsletter.content import load_issue
from newsletter.render import render_issue
from newsletter.render.web import render_archive, render_web_page
from newsletter.strings import BUILT_IN
from tests.helpers import HEBREW_PHRASES, assert_one_line_error, run, update_config


def rendered(root: Path):
    settings = load_settings(root)
    issue = load_issue(settings, "issue-1")
    return render_issue(settings, issue), render_web_page(settings, issue)


@pytest.mark.parametrize(("language", "date", "phrases"), [
    ("fr", "2 décembre 2026", ("Bonjour [%html:first_name|à vous%],", "Dans ce numéro", "Lire sur le web",
                               "Se désabonner", "par Tomasz Wiśniewski")),
    ("de", "2. Dezember 2026", ("Hallo [%html:first_name|zusammen%],", "In dieser Ausgabe", "Abbestellen",
                                "von Tomasz Wiśniewski")),
    ("es", "2 de diciembre de 2026", ("Hola [%html:first_name|a todos%]:", "En este número", "Darse de baja",
                                      "por Tomasz Wiśniewski")),
    ("en", "December 2, 2026", ("Hello [%html:first_name|friend%],", "In this issue", "Unsubscribe")),
    ("en-GB", "2 December 2026", ("Hello [%html:first_name|friend%],", "In this issue", "Read this issue on the web")),
])
def test_the_email_speaks_the_publications_language(publication: Path, language: str, date: str,
                                                    phrases: tuple[str, ...]) -> None:
    update_config(publication, language=language)
    email, page = rendered(publication)
    tree = lxml.html.document_fromstring(email.html)
    assert tree.getroottree().getroot().get("lang") == language
    assert tree.xpath(f"//center[@lang='{language}']")
    for phrase in phrases:
        assert phrase in email.html, phrase
    assert date in email.html and date in email.text
    # The text part says the same, its tags in the text form.
    assert phrases[0].replace("[%html:", "[%text:") in email.text
    assert lxml.html.document_fromstring(page.html).getroottree().getroot().get("lang") == language
    assert date in page.html and phrases[1] in page.html  # "In this issue", in the language


def test_no_english_is_left_in_a_french_email(publication: Path) -> None:
    """Every fixed phrase of the default templates comes from the table."""
    english = {key: text for key, text in BUILT_IN["en"].items() if "{" not in text and len(text) > 8}
    update_config(publication, language="fr")
    email, page = rendered(publication)
    archive = render_archive(load_settings(publication), [page.issue])
    for key, text in english.items():
        for document in (email.html, email.text, page.html, archive):
            assert text not in document, (key, text)
    assert "Vous recevez The Riverside Writers' Circle parce que" in " ".join(email.text.split())


def test_every_built_in_language_has_every_phrase() -> None:
    for language, phrases in BUILT_IN.items():
        assert set(phrases) == set(BUILT_IN["en"]), language
        assert all(text.strip() for text in phrases.values()), language


def test_strings_override_and_add_phrases(publication: Path) -> None:
    """`strings:` replaces a built-in phrase everywhere, and a publication's own template can use new ones."""
    update_config(publication, language="fr", strings={"in_this_issue": "Au sommaire", "motto": "Lire & écrire"})
    (publication / "templates" / "footer.html").write_text(
        (Path(__file__).resolve().parents[1] / "newsletter" / "templates" / "footer.html").read_text(encoding="utf-8")
        .replace("<p class=\"reply\">", "<p class=\"motto\">{{ t(\"motto\") }}</p>\n<p class=\"reply\">"),
        encoding="utf-8")
    email, page = rendered(publication)
    assert "Au sommaire" in email.html and "Au sommaire" in email.text and "Au sommaire" in page.html
    assert "Dans ce numéro" not in email.html
    assert '<p class="motto" ' in email.html and "Lire &amp; écrire" in email.html
    assert "Se désabonner" in email.html  # the rest of the language stays


def test_a_phrase_no_table_has_is_a_template_error(publication: Path) -> None:
    (publication / "templates" / "footer.html").write_text("<p>{{ t(\"slogan\") }}</p>\n", encoding="utf-8")
    result = run("check", "issue-1")
    assert_one_line_error(result, "footer.html:1", "no phrase 'slogan'", "strings:")


def test_an_unknown_language_is_one_line_listing_the_built_in_ones(publication: Path) -> None:
    update_config(publication, language="nl")
    result = run("check", "issue-1")
    assert_one_line_error(result, "newsletter.yaml", "language 'nl' is not built in", "de, en, es, fr")
    update_config(publication, language="fr-XX-nonsense")
    assert_one_line_error(run("build", "issue-1"), "language 'fr-XX-nonsense'")


def test_a_language_not_built_in_needs_every_phrase_in_strings(publication: Path) -> None:
    """Refused with the missing phrases named, not with "not built in" alone."""
    partial = {key: text for key, text in HEBREW_PHRASES.items() if key not in ("feed", "unsubscribe")}
    update_config(publication, language="he", strings=partial)
    assert_one_line_error(run("check", "issue-1"), "newsletter.yaml",
                          "language 'he' is not built in", "missing: feed, unsubscribe", "de, en, es, fr")
    update_config(publication, language="xx", strings=HEBREW_PHRASES)
    assert_one_line_error(run("check", "issue-1"), "language 'xx' is not built in",
                          "nor a language code dates can be written in")


@pytest.mark.parametrize("language", ["he", "ar"])
def test_a_right_to_left_language_mirrors_the_email_and_the_web_page(publication: Path, language: str) -> None:
    update_config(publication, language=language, strings=HEBREW_PHRASES)
    email, page = rendered(publication)
    tree = lxml.html.document_fromstring(email.html)
    assert tree.getroottree().getroot().get("dir") == "rtl"
    assert tree.xpath(f"//center[@lang='{language}' and @dir='rtl']")  # webmails drop <html>
    assert tree.xpath("//td[@class='masthead' and @align='right']")
    for element in tree.xpath("//ul | //ol"):
        assert "margin-right:24px" in element.get("style").replace(" ", ""), element.get("style")
        assert "margin-left" not in element.get("style")
    quote = tree.xpath("//blockquote")[0].get("style").replace(" ", "")
    assert "border-right:3px" in quote and "padding-right:16px" in quote and "left" not in quote
    assert "blockquote{margin-right:16px!important}" in email.html  # Outlook's indent, on the right
    assert "שלום [%html:first_name|לכולם%]," in email.html and "בגיליון הזה" in email.text
    web = lxml.html.document_fromstring(page.html).getroottree().getroot()
    assert (web.get("lang"), web.get("dir")) == (language, "rtl")
    update_config(publication, language="fr", strings=None)
    email, page = rendered(publication)
    assert 'dir="ltr"' in email.html and 'dir="ltr"' in page.html


def test_strings_must_be_a_mapping_of_text(publication: Path) -> None:
    update_config(publication, strings=["hello"])
    assert_one_line_error(run("check", "issue-1"), "newsletter.yaml", "strings must be a mapping")


def test_babel_writes_the_archive_dates(publication: Path) -> None:
    update_config(publication, language="de")
    settings = load_settings(publication)
    page = render_web_page(settings, load_issue(settings, "issue-1"))
    archive = render_archive(settings, [page.issue])
    assert "2. Dezember 2026" in archive and "Alle Ausgaben" in archive
    assert settings.phrases().date(dt.date(2023, 3, 10)) == "10. März 2023"


def received_text_parts(root: Path) -> dict[str, str]:
    """`send --dry-run` of issue-1: the text part each recipient would read, by address (the
    request bodies' text part with that recipient's substitutions filled in, as SendGrid does)."""
    import json

    result = run("send", "issue-1", "--dry-run")
    assert result.exit_code == 0, result.output
    parts: dict[str, str] = {}
    for request in sorted((root / "build" / "issue-1" / "dry-run").glob("request-*.json")):
        body = json.loads(request.read_text(encoding="utf-8"))
        text = next(c["value"] for c in body["content"] if c["type"] == "text/plain")
        for personalization in body["personalizations"]:
            filled = text
            for tag, value in personalization["substitutions"].items():
                filled = filled.replace(tag, value)
            parts[personalization["to"][0]["email"]] = filled
    return parts


@pytest.mark.parametrize(("language", "named", "unnamed", "labels"), [
    ("fr", "Bonjour Ada,", "Bonjour à vous,", ("Dans ce numéro\u00a0:", "Lire ce numéro sur le web\u00a0:",
                                                "Se désabonner\u00a0:")),
    ("en", "Hello Ada,", "Hello friend,", ("In this issue:", "Read this issue on the web:", "Unsubscribe:")),
    ("de", "Hallo Ada,", "Hallo zusammen,", ("In dieser Ausgabe:", "Diese Ausgabe im Web lesen:", "Abbestellen:")),
    ("es", "Hola Ada:", "Hola a todos:", ("En este número:", "Leer este número en la web:", "Darse de baja:")),
])
def test_the_greeting_reads_right_with_a_first_name_and_without(
        publication: Path, language: str, named: str, unnamed: str, labels: tuple[str, ...]) -> None:
    """A reader without a first name gets the language's greeting without a name, not a stray
    noun ("Bonjour ami"); the labels of the text part take the language's colon."""
    update_config(publication, language=language)
    parts = received_text_parts(publication)
    ada, nameless = parts["ada.lovelace@example.org"], parts["reader.one@example.com"]  # no first_name in the list
    assert named in ada.splitlines()
    assert unnamed in nameless.splitlines()
    assert "[%" not in nameless  # every tag was filled
    for label in labels:
        assert label in ada.splitlines(), label
