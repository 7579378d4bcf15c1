"""An SMTP connection against a real server (aiosmtpd on 127.0.0.1, STARTTLS, AUTH): what each
answer and each fault means for exactly-once, and a one-line error for each setup mistake."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.providers.smtp.connection import (
    Deferred, QuotaReached, Reconnect, Refused, SmtpConnection, SmtpSetupError, Uncertain,
)
from newsletter.config import SmtpSettings
from tests.smtp_server import PASSWORD, USERNAME, SmtpServer, smtp_server

SENDER = "letters@riverside.example.org"


def message(to: str, subject: str = "Winter readings") -> bytes:
    return (f"From: {SENDER}\nTo: {to}\nSubject: {subject}\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\n\nHello,\n.a line with a dot\n").encode()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SmtpServer]:
    with smtp_server(tmp_path) as running:
        yield running


def connect(server: SmtpServer, password: str = PASSWORD, **changes: object) -> SmtpConnection:
    options: dict[str, object] = dict(host="127.0.0.1", port=server.port, security="starttls",
                                      username=USERNAME, timeout=10.0, ca_file=server.ca_file)
    options.update(changes)
    return SmtpConnection(SmtpSettings(**options), password)  # type: ignore[arg-type]


def test_messages_go_over_one_verified_connection(server: SmtpServer) -> None:
    connection = connect(server)
    for n in range(3):
        assert connection.deliver(SENDER, f"r{n}@example.org", message(f"r{n}@example.org")).startswith("250")
    connection.close()
    assert [r.rcpt_tos for r in server.received] == [["r0@example.org"], ["r1@example.org"], ["r2@example.org"]]
    first = server.received[0].message
    assert first["Subject"] == "Winter readings"
    assert first.get_content() == "Hello,\r\n.a line with a dot\r\n"


def test_a_refused_recipient_fails_alone_and_the_connection_goes_on(server: SmtpServer) -> None:
    server.faults.refuse = {"gone@example.org"}
    connection = connect(server)
    with pytest.raises(Refused, match=r"^550 5\.1\.1 <gone@example\.org>: Recipient address rejected"):
        connection.deliver(SENDER, "gone@example.org", message("gone@example.org"))
    connection.deliver(SENDER, "ann@example.org", message("ann@example.org"))
    assert [r.rcpt_tos for r in server.received] == [["ann@example.org"]]


def test_a_451_at_the_end_of_data_is_deferred_and_nothing_was_kept(server: SmtpServer) -> None:
    server.faults.defer_data = 1
    connection = connect(server)
    with pytest.raises(Deferred, match="^451 4.3.0"):
        connection.deliver(SENDER, "ann@example.org", message("ann@example.org"))
    connection.deliver(SENDER, "ann@example.org", message("ann@example.org"))
    assert len(server.to("ann@example.org")) == 1


def test_a_connection_lost_after_the_final_dot_is_uncertain(server: SmtpServer) -> None:
    server.faults.drop_after_dot = {"ann@example.org"}
    connection = connect(server)
    with pytest.raises(Uncertain, match="lost after the message was sent and before the server answered"):
        connection.deliver(SENDER, "ann@example.org", message("ann@example.org"))
    # The server did get it: posting it again would be a second copy.
    assert len(server.to("ann@example.org")) == 1
    connection.deliver(SENDER, "bob@example.org", message("bob@example.org"))  # a new connection
    assert len(server.to("bob@example.org")) == 1


def test_a_reply_that_never_comes_is_uncertain_after_the_deadline(server: SmtpServer) -> None:
    server.faults.hold = threading.Event()
    connection = connect(server, timeout=1.0)
    with pytest.raises(Uncertain):
        connection.deliver(SENDER, "ann@example.org", message("ann@example.org"))
    assert server.faults.held.is_set()


def test_a_421_at_mail_reconnects_and_nothing_was_delivered(server: SmtpServer) -> None:
    server.faults.mail_421 = 1
    connection = connect(server)
    with pytest.raises(Reconnect):
        connection.deliver(SENDER, "ann@example.org", message("ann@example.org"))
    connection.deliver(SENDER, "ann@example.org", message("ann@example.org"))
    assert len(server.to("ann@example.org")) == 1


def test_a_quota_answer_stops_in_the_providers_words(server: SmtpServer) -> None:
    server.faults.quota_from = 2
    connection = connect(server)
    connection.deliver(SENDER, "ann@example.org", message("ann@example.org"))
    with pytest.raises(QuotaReached, match="^550 5.4.5 Daily user sending quota exceeded"):
        connection.deliver(SENDER, "bob@example.org", message("bob@example.org"))


@pytest.mark.parametrize(("changes", "expected"), [
    ({"password": "wrong password"}, r"refused the login of 'letters@riverside\.example\.org' \(535 .*\); "
                                     r"check smtp\.username and NEWSLETTER_SMTP_PASSWORD$"),
    ({"ca_file": None}, r"its TLS certificate cannot be trusted \(.*\); check the host name, or give the "
                        r"provider's CA bundle as smtp\.ca_file$"),
    ({"security": "tls"}, r"TLS failed .*; this port speaks plain SMTP: use security: starttls$"),
    ({"host": "mail.nowhere.invalid"}, r"^'mail\.nowhere\.invalid' does not resolve; check smtp\.host$"),
])
def test_setup_mistakes_are_one_line_and_never_show_the_password(
        server: SmtpServer, changes: dict[str, object], expected: str) -> None:
    password = str(changes.pop("password", PASSWORD))
    connection = connect(server, password=password, **changes)
    with pytest.raises(SmtpSetupError, match=expected) as caught:
        connection.deliver(SENDER, "ann@example.org", message("ann@example.org"))
    assert "\n" not in str(caught.value) and password not in str(caught.value)
    assert server.received == []


def test_a_port_that_refuses_connections(tmp_path: Path) -> None:
    import socket
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    connection = SmtpConnection(SmtpSettings("127.0.0.1", port, timeout=5.0), PASSWORD)
    with pytest.raises(SmtpSetupError, match=rf"^127\.0\.0\.1:{port} refuses connections; check smtp\.host and smtp\.port$"):
        connection.open()


def test_implicit_tls_on_its_own_port(tmp_path: Path) -> None:
    with smtp_server(tmp_path, security="tls") as server:
        connection = connect(server, security="tls")
        connection.deliver(SENDER, "ann@example.org", message("ann@example.org"))
        starttls_on_tls_port = connect(server, security="starttls", timeout=1.0)
        with pytest.raises(SmtpSetupError, match=r"did not answer within 1 s; on a TLS port \(such as 465\) use security: tls$"):
            starttls_on_tls_port.open()
    assert len(server.to("ann@example.org")) == 1


def test_a_ca_file_that_holds_no_certificates_is_named(server: SmtpServer, tmp_path: Path) -> None:
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("this is not a certificate\n", encoding="utf-8")
    connection = connect(server, ca_file=bad)
    with pytest.raises(SmtpSetupError, match=r"^smtp\.ca_file '.*not-a-ca\.pem' cannot be read as certificates .*: "
                                             r"give a PEM bundle of the CA that signed the server's certificate$"):
        connection.open()
