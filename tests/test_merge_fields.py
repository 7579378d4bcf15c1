"""merge.COMPUTED_FIELDS is the one home of the merge fields a list row does not hold as it is:
an entry there reaches both providers' messages, the preview, `Subscriber.fields` and `check`."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

import pytest

from newsletter import merge
from newsletter.subscribers.store import join_tags, split_tags
from tests.helpers import run
from tests.send_helpers import write_list
from tests.sendgrid_double import SendGridDouble

PACKAGE_TEMPLATES = Path(__file__).resolve().parents[1] / "newsletter" / "templates"


@pytest.mark.parametrize("cell", ["", "members", "b; a;;b", " ; ", "poetry;prose ;poetry", "Zoë;  漢字 "])
def test_the_tags_field_reads_a_cell_as_the_list_does(cell: str) -> None:
    values = merge.values_for(merge.Reader("a@example.org", "", {"tags": cell}))
    assert values["tags"] == join_tags(split_tags(cell))


def test_a_computed_field_wins_over_a_column_of_its_name() -> None:
    values = merge.values_for(merge.Reader("a@example.org", "https://x.example.org/u",
                                           {"email": " A@example.org ", "city": "Oxbury"}))
    assert values == {"email": "a@example.org", "city": "Oxbury", "unsubscribe_url": "https://x.example.org/u",
                      "tags": ""}
    assert merge.known_fields(("email", "city")) == ("email", "city", "unsubscribe_url", "tags")


@pytest.fixture
def full_name(publication: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A computed field added as one entry of the registry, used by the text template."""
    field = merge.ComputedField(
        "full_name", "first and last name",
        lambda reader: f"{reader.cells.get('first_name', '')} {reader.cells.get('last_name', '')}".strip())
    monkeypatch.setitem(merge.COMPUTED_FIELDS, field.name, field)
    (publication / "templates" / "email.txt").write_text(
        (PACKAGE_TEMPLATES / "email.txt").read_text() + "\nFor {{ subscriber.full_name | default('you') }}\n")
    write_list(publication, [["ada@example.org", "Ada", "Lovelace", "subscribed"]])
    return "[%text:full_name|you%]"


def test_a_new_computed_field_is_known_to_check(full_name: str) -> None:
    result = run("check", "issue-1")
    assert "full_name" not in result.output + result.stderr


def test_a_new_computed_field_reaches_a_sendgrid_send(full_name: str, sendgrid: SendGridDouble) -> None:
    assert run("send", "issue-1", "--yes").exit_code == 0
    (personalization,) = sendgrid.accepted[0]["personalizations"]
    assert personalization["substitutions"][full_name] == "Ada Lovelace"


def test_a_new_computed_field_reaches_an_smtp_message(full_name: str) -> None:
    from newsletter.build import render_and_check
    from newsletter.config import load_settings
    from newsletter.providers.smtp.provider import SmtpBuilder

    settings = load_settings()
    rendered, _ = render_and_check(settings, "issue-1")
    builder = SmtpBuilder(settings, rendered, "issue-1", proof=False, dry_run=True,
                          unsubscribe_links=lambda address: "https://join.example.org/u/token")
    row = ["ada@example.org", "Ada", "Lovelace", "subscribed", "", "", ""]
    message = email.message_from_bytes(builder.personalizer()("ada@example.org", row), policy=email.policy.default)
    text = next(part for part in message.walk() if part.get_content_type() == "text/plain")
    assert "For Ada Lovelace\n" in text.get_content()  # type: ignore[attr-defined]


def test_a_new_computed_field_reaches_the_preview_and_a_subscribers_fields(full_name: str) -> None:
    from newsletter.config import load_settings
    from newsletter.preview import sample_values
    from newsletter.subscribers import Subscriber

    assert sample_values(load_settings())["full_name"] == "Ada Lovelace"
    assert Subscriber("bo@example.org", first_name="Bo").fields()["full_name"] == "Bo"


def test_the_sendgrid_personalization_fills_computed_fields_as_merge_does(full_name: str) -> None:
    """The hand-written JSON's path for a computed field other than the address and the link."""
    from newsletter.build import render_and_check
    from newsletter.config import load_settings
    from newsletter.providers.sendgrid.mail import RequestBuilder
    from newsletter.subscribers import Subscriber

    settings = load_settings()
    rendered, _ = render_and_check(settings, "issue-1")
    builder = RequestBuilder(settings, rendered, "issue-1")
    reader = Subscriber("zoë@example.org", first_name="Zoë <&>", last_name="Ünal", tags=("b", "a"))
    row = [reader.email, reader.first_name, reader.last_name, "subscribed", " b;a;b ", "", ""]
    personalization = json.loads(builder.personalizer()(reader.email, row))
    assert personalization["substitutions"] == merge.substitutions(
        builder.fields, reader.fields(builder.unsubscribe_url(reader.email) or ""))
    assert personalization["substitutions"][full_name] == "Zoë <&> Ünal"
