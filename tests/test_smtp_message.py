"""The SMTP provider's messages, read back with the standard library's `email` package as a mail
program reads them: headers decoded, parts decoded, merge fields filled per recipient."""

from __future__ import annotations

import email
import email.policy
import random
import string
from email.message import EmailMessage

import pytest

from newsletter import merge
from newsletter.config import Address
from newsletter.providers.smtp.message import MessageBuilder, Recipient, needs_smtputf8

TEXT = (
    "Hello [%text:first_name|friend%],\n\n"
    "A line of 1,200 characters follows, longer than SMTP's 998:\n" + "word " * 240 + "\n"
    "=3D is not an escape here, and neither is =\n"
    "trailing spaces stay   \n"
    ".a line that starts with a dot\n"
    "Unsubscribe: [%text:unsubscribe_url%]\n"
)
HTML = (
    "<!doctype html><html><body><p>Hello [%html:first_name|friend%],</p>"
    "<p>Café — « naïve » 漢字 😀</p>" + "<p>paragraph</p>" * 200
    + '<a href="[%html:unsubscribe_url%]">Unsubscribe</a></body></html>'
)


def builder(subject: str = "Winter readings", **changes: object) -> MessageBuilder:
    options: dict[str, object] = dict(
        sender=Address("letters@riverside.example.org", "Riverside Writers' Circle"),
        reply_to=Address("editor@riverside.example.org", "The Editor"),
        subject=subject, text=TEXT, html=HTML,
        list_id="Riverside Writers' Circle <main.riverside.example.org>",
        message_id_domain="riverside.example.org", one_click=True, identity="issue-1",
    )
    options.update(changes)
    return MessageBuilder(**options)  # type: ignore[arg-type]


def recipient(address: str = "ann@example.org", first_name: str = "Ann", name: str = "Ann Lee") -> Recipient:
    link = f"https://join.example.org/unsubscribe/token-for-{address.split('@')[0]}"
    return Recipient(address, name, {"first_name": first_name, "email": address, "unsubscribe_url": link}, link)


def parsed(message: bytes) -> EmailMessage:
    # Read as UTF-8: a non-ASCII address is UTF-8 in its header (RFC 6532), as SMTPUTF8 carries it.
    result = email.message_from_string(message.replace(b"\n", b"\r\n").decode("utf-8"), policy=email.policy.default)
    assert isinstance(result, EmailMessage)
    assert not result.defects, result.defects
    return result


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = [part for part in message.iter_parts()]
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    # On the wire every line ends in CRLF; a mail program shows line breaks.
    return text.get_content().replace("\r\n", "\n"), html.get_content().replace("\r\n", "\n")


def test_a_mail_program_reads_each_recipients_own_message() -> None:
    build = builder()
    ann, bob = recipient(), recipient("bob@example.org", "Bob", "Bob Roe")
    for who in (ann, bob):
        message = parsed(build.message(who))
        assert message["To"] == f"{who.name} <{who.email}>"
        assert message["From"] == "Riverside Writers' Circle <letters@riverside.example.org>"
        assert message["Reply-To"] == "The Editor <editor@riverside.example.org>"
        assert message["Subject"] == "Winter readings"
        assert message["MIME-Version"] == "1.0"
        assert message["Date"].datetime is not None
        assert message["List-Unsubscribe"] == f"<{who.unsubscribe_url}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["List-Id"] == "Riverside Writers' Circle <main.riverside.example.org>"
        assert message.get_content_type() == "multipart/alternative"
        text, html = parts(message)
        assert text == merge.fill(TEXT, who.values)
        assert html == merge.fill(HTML, who.values)
        assert text.startswith(f"Hello {who.values['first_name']},")


def test_every_line_is_under_smtps_limit_and_the_body_is_ascii() -> None:
    raw = builder().message(recipient())
    raw.decode("ascii")
    assert max(len(line) for line in raw.split(b"\n")) <= 78


def test_message_ids_are_unique_per_recipient_and_stable_across_runs() -> None:
    first, second = builder(), builder()
    ids = {parsed(first.message(recipient(f"r{n}@example.org"))).get("Message-ID") for n in range(50)}
    assert len(ids) == 50
    again = parsed(second.message(recipient("r7@example.org")))["Message-ID"]
    assert again in ids
    assert all(i.endswith("@riverside.example.org>") and "r7" not in i for i in ids)


@pytest.mark.parametrize("subject", [
    "Notes d’hiver : « lectures » et café",
    "漢字のニュースレター",
    "A very long subject " * 8,
])
def test_subjects_are_encoded_and_folded_and_read_back_whole(subject: str) -> None:
    raw = builder(subject=subject).message(recipient())
    assert parsed(raw)["Subject"] == subject.strip()


def test_names_and_subjects_with_line_breaks_cannot_add_headers() -> None:
    raw = builder(subject="Hello\r\nBcc: victim@example.net",
                  sender=Address("letters@riverside.example.org", "Circle\r\nBcc: x@example.net")).message(
        recipient(name="Ann\nBcc: other@example.net"))
    message = parsed(raw)
    assert message["Bcc"] is None
    assert message["Subject"] == "Hello Bcc: victim@example.net"
    assert "other@example.net" in message["To"].addresses[0].display_name


def test_non_ascii_names_and_an_international_domain() -> None:
    who = Recipient("zoë@bücher.example", "Zoë Ünal", {"first_name": "Zoë"}, None)
    message = parsed(builder().message(who))
    (address,) = message["To"].addresses
    assert address.display_name == "Zoë Ünal"
    assert address.domain == "xn--bcher-kva.example"
    assert address.username == "zoë"
    assert needs_smtputf8(who.email) and not needs_smtputf8("ann@bücher.example")
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None
    assert parts(message)[0].startswith("Hello Zoë,")


def test_values_are_filled_as_written_in_text_and_escaped_in_html() -> None:
    hostile = "<b>Ann</b> & [%text:email%] {{ 7*7 }} =41\n.\nBcc: x"
    who = Recipient("ann@example.org", "Ann", {"first_name": hostile}, None)
    text, html = parts(parsed(builder().message(who)))
    assert text.startswith("Hello <b>Ann</b> & [ %text:email%] {{ 7*7 }} =41\n.\nBcc: x,")
    assert "Hello &lt;b&gt;Ann&lt;/b&gt; &amp; [ %text:email%] {{ 7*7 }} =41" in html


def test_random_values_always_read_back_exactly() -> None:
    rng = random.Random(7)
    alphabet = string.printable + "éü漢😀=\u00a0 \t"
    build = builder()
    for _ in range(200):
        value = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 120)))
        who = Recipient("ann@example.org", "Ann", {"first_name": value}, None)
        text, html = parts(parsed(build.message(who)))
        assert text == merge.fill(TEXT, who.values).replace("\r\n", "\n")
        assert html == merge.fill(HTML, who.values).replace("\r\n", "\n")
