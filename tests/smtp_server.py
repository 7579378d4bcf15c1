"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, TLS on a certificate the tests make.

It speaks STARTTLS (or implicit TLS, or plain SMTP), takes AUTH with one username and password,
and injects the faults a send must survive, each set on `server.faults` by the test:
a `550` for chosen recipients, `451` at the end of data, a connection dropped after the
final `.` (the message is kept: the server did receive it), a reply held until the test
releases it, `421` as the greeting or at MAIL, and a provider's quota answer from message N on. Every message
received is parsed with the standard library's `email` package, as a mail program reads it.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

USERNAME = "letters@riverside.example.org"
PASSWORD = "correct horse battery staple"
QUOTA_ANSWER = "550 5.4.5 Daily user sending quota exceeded."


@dataclass
class Faults:
    refuse: set[str] = field(default_factory=set)  # recipients answered 550 5.1.1 at RCPT
    full: set[str] = field(default_factory=set)  # recipients whose mailbox is over quota (552 5.2.2 at RCPT)
    defer_data: int = 0  # how many messages get 451 at the end of data (then accepted)
    drop_after_dot: set[str] = field(default_factory=set)  # recipients whose reply never comes
    mail_421: int = 0  # how many MAIL commands get 421 (the server closes the connection)
    connect_421: int = 0  # how many connections are greeted 421 instead of 220, then closed
    quota_from: int | None = None  # from the Nth message on (1-based), the quota answer
    hold: threading.Event | None = None  # when set on a test's event, the end-of-data reply waits for it
    hold_from: int = 1  # ... from the Nth message on (1-based)
    held: threading.Event = field(default_factory=threading.Event)  # set once a reply is held


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    answered: bool = True
    mail_options: list[str] = field(default_factory=list)  # MAIL FROM's parameters (BODY=8BITMIME)


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        faults = self.server.faults
        if faults.mail_421 > 0:
            faults.mail_421 -= 1
            assert server.transport is not None
            server.transport.close()
            return "421 4.7.0 Try again later, closing connection"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        if address in self.server.faults.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: no such user"
        if address in self.server.faults.full:
            return f"552 5.2.2 <{address}>: The email account that you tried to reach is over quota."
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        faults = self.server.faults
        raw = bytes(envelope.original_content or b"")
        self.server.data_count += 1
        if faults.quota_from is not None and self.server.data_count >= faults.quota_from:
            return QUOTA_ANSWER
        if faults.defer_data > 0:
            faults.defer_data -= 1
            return "451 4.3.0 Temporary failure, try again later"
        if faults.hold is not None and self.server.data_count >= faults.hold_from:
            faults.held.set()
            await asyncio.get_running_loop().run_in_executor(None, faults.hold.wait, 30)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        received = Received(envelope.mail_from or "", list(envelope.rcpt_tos), parsed, raw,
                            mail_options=list(envelope.mail_options))
        self.server.received.append(received)
        if set(envelope.rcpt_tos) & faults.drop_after_dot:
            received.answered = False
            assert server.transport is not None
            server.transport.abort()
            return "250 never seen by the client"
        return "250 2.0.0 Ok: queued"


class _GreetingSMTP(SMTP):
    """aiosmtpd's server, greeting with `421` (then closing) while `faults.connect_421` says so."""

    async def _handle_client(self) -> None:
        handler = self.event_handler
        assert isinstance(handler, _Handler)
        if handler.server.faults.connect_421 > 0:
            handler.server.faults.connect_421 -= 1
            handler.server.greeted_421 += 1
            await self.push("421 4.3.2 Service not available, closing transmission channel")
            assert self.transport is not None
            self.transport.close()
            return
        await super()._handle_client()


class _Authenticator:
    def __call__(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                 auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == USERNAME and auth_data.password.decode() == PASSWORD)
        return AuthResult(success=ok, handled=False)


class _Controller(Controller):
    """aiosmtpd's controller on a port the system chooses (port=0), so parallel tests never clash."""

    def factory(self) -> SMTP:
        return _GreetingSMTP(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        if self.port == 0 and self.server is not None:
            self.port = int(self.server.sockets[0].getsockname()[1])
        super()._trigger_server()


class SmtpServer:
    """The running server: `port`, `ca_file` (the CA the tests trust), what it received."""

    def __init__(self, folder: Path, security: str = "starttls", auth: bool = True,
                 hostname: str = "127.0.0.1", eight_bit: bool = True) -> None:
        """`eight_bit=False`: a server that does not offer 8BITMIME (aiosmtpd offers it unless it
        decodes the data it takes as text)."""
        self.faults = Faults()
        self.received: list[Received] = []
        self.data_count = 0
        self.greeted_421 = 0  # connections greeted 421 (faults.connect_421)
        ca = trustme.CA()
        self.ca_file = folder / "test-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        certificate = ca.issue_cert(hostname, "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(context)
        options: dict[str, Any] = {"enable_SMTPUTF8": eight_bit, "decode_data": not eight_bit}
        if auth:
            # aiosmtpd counts only STARTTLS as TLS; an implicit-TLS connection is TLS from its first byte.
            options.update(authenticator=_Authenticator(), auth_required=True,
                           auth_require_tls=security == "starttls")
        if security == "starttls":
            options.update(tls_context=context, require_starttls=True)
        controller_options: dict[str, Any] = {"ssl_context": context} if security == "tls" else {}
        self._controller = _Controller(_Handler(self), hostname=hostname, port=0, **options, **controller_options)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        if self.faults.hold is not None:
            self.faults.hold.set()
        self._controller.stop()

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]


@contextmanager
def smtp_server(folder: Path, **options: Any) -> Iterator[SmtpServer]:
    server = SmtpServer(folder, **options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def use_smtp(root: Path, server: SmtpServer, **extra: object) -> None:
    """newsletter.yaml's provider set to the test server, as an editor writes it."""
    lines = ["provider: smtp", "smtp:", "  host: 127.0.0.1", f"  port: {server.port}", f"  username: {USERNAME}",
             f"  ca_file: {server.ca_file}", "  timeout: 20"]
    lines += [f"  {key}: {value}" for key, value in extra.items()]
    config = root / "newsletter.yaml"
    config.write_text(config.read_text(encoding="utf-8") + "\n".join(lines) + "\n", encoding="utf-8")


def display_name(raw: bytes) -> str:
    """The To header's name as RFC 2047 reads it (encoded words side by side are one text; the
    `email` package's newer parser puts a space between them in an address)."""
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    to = email.message_from_bytes(head)["To"]
    return str(make_header(decode_header(str(to).rpartition("<")[0]))).strip()
