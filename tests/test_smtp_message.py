"""The SMTP provider's messages, read back with the standard library's `email` package as a mail
program reads them: headers decoded, parts decoded, merge fields filled per recipient."""

from __future__ import annotations

import email
import email.policy
import random
import re
import string
from email.message import EmailMessage

import pytest

from newsletter import merge
from newsletter.config import Address
from newsletter.providers.smtp.message import MessageBuilder, Recipient, needs_smtputf8
from tests.smtp_server import display_name

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
    """As a mail program reads the bytes it was given (an 8bit part is UTF-8 bytes, not text)."""
    result = email.message_from_bytes(message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"),
                                      policy=email.policy.default)
    assert isinstance(result, EmailMessage)
    assert not result.defects, result.defects
    return result


def headers_read_as_utf8(message: bytes) -> EmailMessage:
    """Headers read as UTF-8: a non-ASCII address is UTF-8 in its header (RFC 6532), as SMTPUTF8 carries it."""
    head = message.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    result = email.message_from_string(head.decode("utf-8") + "\n\n", policy=email.policy.default)
    assert isinstance(result, EmailMessage)
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


SHORT_TEXT = "Hello [%text:first_name|friend%],\n\nCafé — « naïve » 漢字 😀\n.a line that starts with a dot\n"
SHORT_HTML = "<p>Hello [%html:first_name|friend%],</p>\n<p>Café — « naïve »</p>\n<a href=\"[%html:unsubscribe_url%]\">x</a>\n"


def encodings(message: EmailMessage) -> list[str]:
    return [part["Content-Transfer-Encoding"] for part in message.iter_parts()]


def test_parts_whose_lines_fit_go_as_written() -> None:
    """8bit where a part is UTF-8, 7bit where it is ASCII: a quarter the size of quoted-printable's HTML."""
    who = recipient(first_name="Zoë")
    raw = builder(text=SHORT_TEXT, html=SHORT_HTML).message(who)
    message = parsed(raw)
    assert encodings(message) == ["8bit", "8bit"]
    assert "Hello Zoë,\n\nCafé — « naïve » 漢字 😀".encode() in raw
    assert parts(message) == (merge.fill(SHORT_TEXT, who.values), merge.fill(SHORT_HTML, who.values))
    ascii_text = "Hello [%text:first_name|friend%],\nPlain words.\n"
    message = parsed(builder(text=ascii_text, html=SHORT_HTML).message(recipient()))
    assert encodings(message) == ["7bit", "8bit"]
    assert parts(message)[0] == "Hello Ann,\nPlain words.\n"


def test_a_server_without_8bitmime_gets_every_byte_in_ascii() -> None:
    who = recipient(first_name="Zoë")
    raw = builder(text=SHORT_TEXT, html=SHORT_HTML).message(who, eight_bit=False)
    raw.decode("ascii")
    message = parsed(raw)
    assert encodings(message) == ["quoted-printable", "quoted-printable"]
    assert parts(message) == (merge.fill(SHORT_TEXT, who.values), merge.fill(SHORT_HTML, who.values))


def test_an_unsubscribe_link_with_accents_is_ascii_in_its_header() -> None:
    link = "https://Désabonner.Bücher.example:8443/désinscription?email=zoë%40bücher.example&x=a b"
    who = Recipient("ann@example.org", "Ann", {"first_name": "Ann", "unsubscribe_url": link}, link)
    raw = builder(text=SHORT_TEXT, html=SHORT_HTML).message(who, eight_bit=False)
    raw.decode("ascii")
    assert parsed(raw)["List-Unsubscribe"] == (
        "<https://xn--dsabonner-b4a.xn--bcher-kva.example:8443/d%C3%A9sinscription"
        "?email=zo%C3%AB%40b%C3%BCcher.example&x=a%20b>")


def test_a_line_over_smtps_limit_goes_quoted_printable_in_short_lines() -> None:
    raw = builder().message(recipient())  # TEXT and HTML each have a line over 998 octets
    raw.decode("ascii")
    assert encodings(parsed(raw)) == ["quoted-printable", "quoted-printable"]
    assert max(len(line) for line in raw.split(b"\n")) <= 78


def test_a_long_value_on_a_short_line_keeps_the_part_as_written_beside_a_long_line_elsewhere() -> None:
    """Only the values on a line count against it: a 400-letter name in the greeting, a
    900-octet line below it, and both still fit SMTP's 998 octets."""
    text = "Hello [%text:first_name|friend%],\n" + "y" * 900 + "\n[%text:first_name|friend%] again.\n"
    build = builder(text=text, html=SHORT_HTML)
    for first_name, encoding in (("B" * 400, "7bit"), ("B" * 995, "quoted-printable")):
        who = recipient(first_name=first_name)
        raw = build.message(who, wire=True)
        assert max(len(line) for line in raw.split(b"\r\n")) < 998
        message = parsed(raw)
        assert encodings(message)[0] == encoding
        assert parts(message)[0] == merge.fill(text, who.values)


def test_a_value_that_would_take_its_line_over_the_limit_sends_that_readers_part_quoted_printable() -> None:
    text = "x" * 900 + " [%text:first_name|friend%]\nNext line.\n"
    build = builder(text=text, html=SHORT_HTML)
    for first_name, encoding in (("Ann", "7bit"), ("A" * 200, "quoted-printable"), ("Two\nlines", "quoted-printable")):
        who = recipient(first_name=first_name)
        raw = build.message(who, wire=True)
        assert max(len(line) for line in raw.split(b"\r\n")) < 998
        message = parsed(raw)
        assert encodings(message)[0] == encoding
        assert parts(message)[0] == merge.fill(text, who.values)


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
    raw = builder().message(who)
    message = headers_read_as_utf8(raw)
    (address,) = message["To"].addresses
    assert address.display_name == "Zoë Ünal"
    assert address.domain == "xn--bcher-kva.example"
    assert address.username == "zoë"
    assert needs_smtputf8(who.email) and not needs_smtputf8("ann@bücher.example")
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None
    assert parts(parsed(raw))[0].startswith("Hello Zoë,")


def test_a_very_long_name_is_folded_so_no_line_passes_smtps_limit() -> None:
    """Unfolded, a name of 1,000 letters made a To line over SMTP's 998 octets: the server refused that reader."""
    build = builder(text=SHORT_TEXT, html=SHORT_HTML)
    for name, address in (("Zoë Ünal " * 120, "ann@example.org"), ("A" * 1200, "ann@bücher.example"),
                          ('"Ann" <ann@example.org>, Lee ' * 40, "zoë@bücher.example")):
        raw = build.message(Recipient(address, name, {}, None), wire=True)
        assert max(len(line) for line in raw.split(b"\r\n")) <= 78
        assert display_name(raw) == " ".join(name.split())
        (to,) = headers_read_as_utf8(raw)["To"].addresses
        assert (to.username, to.domain) == (address.split("@")[0], "xn--bcher-kva.example" if "ü" in address
                                            else "example.org")
    assert b"To: Ann Lee <ann@example.org>\n" in build.message(recipient())  # a usual name: one line, as ever


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


def undated(message: bytes) -> bytes:
    """`message` without its Date line: two messages made in different seconds differ there alone."""
    return re.sub(rb"(?m)^Date: .*\n", b"", message, count=1)


def as_a_server_reads_it(data: bytes) -> bytes:
    """DATA as a server takes it (RFC 5321 4.5.2): each line's leading dot removed, CRLF read as LF."""
    lines = data.split(b"\r\n")
    assert all(b"\n" not in line and b"\r" not in line for line in lines), "a bare CR or LF on the wire"
    assert not any(line == b"." for line in lines), "a lone dot would end the message early"
    return b"\n".join(line[1:] if line.startswith(b".") else line for line in lines)


def test_a_carriage_return_in_a_value_or_the_text_never_reaches_the_wire_bare() -> None:
    """A CR alone (a list cell pasted from an old Mac file) goes quoted-printable as `=0D`: RFC 5321
    forbids it bare, and `\\r.\\r\\n` is what SMTP smuggling uses to end DATA early on some servers."""
    for text in ("Hello [%text:first_name%],\nbye\n", "Hello [%text:first_name%],\nold\rMac\n"):
        build = builder(text=text, html=SHORT_HTML)
        for first_name in ("Ann\rLee", "Ann\r.\r\nMAIL FROM:<x@example.org>", "\r\r\n.", "x" * 80 + "\r. "):
            who = recipient(first_name=first_name)
            for eight_bit in (True, False):
                on_the_wire = build.message(who, wire=True, eight_bit=eight_bit)
                file = build.message(who, eight_bit=eight_bit)
                assert undated(as_a_server_reads_it(on_the_wire)) == undated(file)  # each made in its own second, maybe
                assert b"\r" not in file
                assert max(len(line) for line in on_the_wire.split(b"\r\n")) <= 78
                assert parts(parsed(file)) == (merge.fill(text, who.values).replace("\r\n", "\n"),
                                               merge.fill(SHORT_HTML, who.values).replace("\r\n", "\n"))


def test_on_the_wire_every_message_reads_back_as_the_file_holds_it() -> None:
    """Dots that start a line in the text, in a value, or after an empty value are all doubled, once."""
    rng = random.Random(11)
    words = ["word", ".", "..", ".dot", "[%text:first_name%]", "[%text:last_name|%]", "\n", "\n", " ", "é", "=41"]
    for _ in range(150):
        text = "".join(rng.choice(words) for _ in range(rng.randrange(1, 40)))
        html = text.replace("text:", "html:")
        build = builder(text=text, html=html)
        for eight_bit in (True, False):
            first = rng.choice(["", ".", ".Ann", "Ann", "..", "Zoë"])
            who = Recipient("ann@example.org", "Ann", {"first_name": first, "last_name": rng.choice(["", ".x"])}, None)
            on_the_wire = build.message(who, wire=True, eight_bit=eight_bit)
            file = build.message(who, eight_bit=eight_bit)
            assert undated(as_a_server_reads_it(on_the_wire)) == undated(file)  # each made in its own second, maybe
            assert parts(parsed(file)) == (merge.fill(text, who.values), merge.fill(html, who.values))
