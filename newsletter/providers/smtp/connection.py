"""One SMTP connection: TLS verified, logged in, and every answer sorted into what a send does next.

smtplib does the protocol; this module decides what each answer means for exactly-once:

- a message is *accepted* only on a 2xx after the final `.` of DATA;
- a 4xx at MAIL, RCPT or the end of data is *deferred*: nothing was delivered, post it
  again later, with backoff, as a 429 is;
- a 5xx for one recipient (`550 5.1.1 no such user`) *refuses* that recipient alone;
- a provider's quota answer (Gmail's `550 5.4.5 Daily user sending quota exceeded`,
  SES's `454 Throttling failure`) is a *quota* stop for the whole send, never a refusal
  of every recipient after it;
- a connection lost before the whole message was written cannot have delivered it
  (the server acts only on the final `.`): *retry* on a new connection;
- a connection lost, reset or timed out after the final `.` and before the reply is
  *uncertain* (RFC 1047): the server may have taken the message. It is never posted
  again without the user's say-so.

smtplib's `sendmail` and `data` raise the same `SMTPServerDisconnected` for a drop
while writing the message and a drop while waiting for the reply, which are the two
cases above; so `deliver` writes DATA's steps itself (smtplib's `data`, split in two).
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Callable

import idna

from newsletter.config import SmtpSettings
from newsletter.errors import SendError, scrub
from newsletter.providers.smtp.message import ascii_address


# What providers answer when the *sender's* quota or rate is reached: a stop for the whole send.
# Gmail: "550 5.4.5 Daily user sending quota exceeded", "421 4.7.28 ... unusual rate"; SES:
# "454 Throttling failure: Maximum sending rate exceeded"; others say "sending limit".
QUOTA_ANSWERS = re.compile(
    r"\b[45]\.4\.5\b|\b4\.7\.28\b|sending (?:quota|limit|rate)|throttl|rate (?:limit )?exceeded|"
    r"too many (?:messages|emails)|daily (?:user )?(?:sending )?(?:quota|limit)",
    re.IGNORECASE,
)
# A reader's own mailbox answering full or over its quota (x.2.2, RFC 3463) is about that
# reader alone, whatever words come with it: it never stops the send for the others.
RECIPIENT_MAILBOX = re.compile(r"\b[45]\.2\.[0-9]\b")

_LINE_END = re.compile(rb"\r\n|\n|\r(?!\n)")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_LEADING_DOT = re.compile(rb"(?m)^\.")


def _envelope(address: str) -> str:
    """`address` as MAIL FROM and RCPT TO carry it: an international domain in its `xn--` form,
    which every server takes (only a non-ASCII local part needs SMTPUTF8); as it is where IDNA
    does not take the domain, for the server to answer."""
    try:
        return ascii_address(address)
    except idna.IDNAError:
        return address


def _path(address: str) -> str:
    """`<address>` as MAIL FROM and RCPT TO write it. smtplib's `quoteaddr` parses every address
    with `email.utils` (a tenth of a send's CPU); one of plain dot-atoms comes out as it went in."""
    return f"<{address}>" if _DOT_ATOM_ADDRESS.fullmatch(address) else smtplib.quoteaddr(address)


class SmtpSetupError(SendError):
    """The connection, TLS or login failed: nothing can be sent until the settings change."""


class Deferred(Exception):
    """A 4xx: not delivered; post it again later."""


class Refused(Exception):
    """A 5xx for this recipient alone: fail them, go on with the others."""


class SenderRefused(SmtpSetupError):
    """A 5xx to MAIL FROM: the server takes nothing from this sender; the send stops."""


class QuotaReached(Exception):
    """The provider's quota or rate answer: stop the send, say so in its words."""


class Reconnect(Exception):
    """The connection went away before the message was complete (or a 421): nothing was
    delivered; post it again on a new connection."""


class NotConnected(Reconnect):
    """The server answered 4xx at connect (`421 Service not available`): nothing was posted; try again
    later. A server that keeps answering so stops the send, since every message would meet the same."""


class Uncertain(Exception):
    """The connection was lost after the final `.` and before the reply."""


class MessageNotMade(Exception):
    """Making the message failed, before anything of it was posted."""


def _answer(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return f"{code} {' '.join(text.split())}"


def _failure(code: int, reply: bytes | str, password: str) -> Exception:
    """What a non-2xx answer means for this message."""
    answer = scrub(_answer(code, reply), password, limit=300)
    if QUOTA_ANSWERS.search(answer) and not RECIPIENT_MAILBOX.search(answer):
        return QuotaReached(answer)
    if code == 421:
        return Reconnect(answer)
    if 400 <= code < 500:
        return Deferred(answer)
    return Refused(answer)


class SmtpConnection:
    """A connection to the provider, opened on first use and reused for many messages."""

    def __init__(self, server: SmtpSettings, password: str) -> None:
        self.server = server
        self._password = password
        self._smtp: smtplib.SMTP | None = None
        self.smtputf8 = False
        self.eight_bit = False  # the server takes 8-bit message data (8BITMIME, RFC 6152)

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.server.ca_file is not None:
            try:
                context.load_verify_locations(cafile=str(self.server.ca_file))
            except (ssl.SSLError, OSError) as exc:
                raise SmtpSetupError(f"smtp.ca_file {str(self.server.ca_file)!r} cannot be read as certificates "
                                     f"({getattr(exc, 'reason', None) or exc}): give a PEM bundle of the CA that "
                                     "signed the server's certificate") from None
        return context

    def _where(self) -> str:
        return f"{self.server.host}:{self.server.port}"

    def open(self) -> None:
        """Connect, secure, log in: one `SmtpSetupError` line naming what to change."""
        server, where_ = self.server, self._where()
        try:
            if server.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, timeout=server.timeout,
                                                      context=self._context())
            else:
                smtp = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
            smtp.ehlo()
            if server.security == "starttls":
                if not smtp.has_extn("starttls"):
                    smtp.close()
                    raise SmtpSetupError(
                        f"{where_} does not offer STARTTLS; with security: tls use its TLS port (usually 465)")
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if server.username:
                smtp.login(server.username, self._password)
        except SmtpSetupError:
            raise
        except ssl.SSLCertVerificationError as exc:
            raise SmtpSetupError(
                f"{where_}: its TLS certificate cannot be trusted ({exc.verify_message}); check the host name, "
                "or give the provider's CA bundle as smtp.ca_file") from None
        except ssl.SSLError as exc:
            hint = ("this port speaks plain SMTP: use security: starttls" if "WRONG_VERSION" in str(exc)
                    else "check smtp.security and smtp.port")
            raise SmtpSetupError(f"{where_}: TLS failed ({exc.reason or exc}); {hint}") from None
        except smtplib.SMTPAuthenticationError as exc:
            raise SmtpSetupError(
                f"{where_} refused the login of {server.username!r} ({scrub(_answer(exc.smtp_code, exc.smtp_error), self._password, limit=200)}); "
                "check smtp.username and NEWSLETTER_SMTP_PASSWORD") from None
        except smtplib.SMTPNotSupportedError:
            raise SmtpSetupError(
                f"{where_} does not offer AUTH on this connection; check smtp.security, or leave out smtp.username") from None
        except socket.gaierror:
            raise SmtpSetupError(f"{server.host!r} does not resolve; check smtp.host") from None
        except ConnectionRefusedError:
            raise SmtpSetupError(f"{where_} refuses connections; check smtp.host and smtp.port") from None
        except (TimeoutError, smtplib.SMTPServerDisconnected) as exc:
            # smtplib turns a timeout while reading the greeting into "Connection unexpectedly closed".
            if not isinstance(exc, TimeoutError) and not isinstance(exc.__context__, TimeoutError):
                raise SmtpSetupError(f"{where_} closed the connection ({exc}); check smtp.port and smtp.security") from None
            hint = "; on a TLS port (such as 465) use security: tls" if server.security != "tls" else ""
            raise SmtpSetupError(f"{where_} did not answer within {server.timeout:g} s{hint}") from None
        except smtplib.SMTPConnectError as exc:
            # A greeting other than 220. smtplib raises SMTPConnectError, an SMTPException, which
            # stopped the send as if the settings were wrong; a busy server's 421 delivered
            # nothing and asks to be tried again (RFC 5321 3.8), a 554 refuses this client.
            answer = scrub(_answer(exc.smtp_code, exc.smtp_error), self._password, limit=200)
            failure = _failure(exc.smtp_code, exc.smtp_error, self._password)
            if isinstance(failure, QuotaReached):
                raise failure from None
            if 400 <= exc.smtp_code < 500:
                raise NotConnected(f"{where_} answered {answer} at connect") from None
            raise SmtpSetupError(f"{where_} refused the connection ({answer}); check smtp.host and smtp.port, "
                                 "or ask the provider why") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise SmtpSetupError(f"{where_}: {scrub(str(exc) or type(exc).__name__, self._password, limit=200)}") from None
        self._smtp = smtp
        self.smtputf8 = smtp.has_extn("smtputf8")
        self.eight_bit = smtp.has_extn("8bitmime")

    def deliver(self, sender: str, recipient: str, message: bytes | Callable[[bool], bytes],
                before_data: Callable[[], None] | None = None, *, wire: bool = False) -> str:
        """Post one message to one recipient; the server's 2xx answer, or one of this module's exceptions.

        `message` has LF or CRLF line ends, or is `wire` ready (`MessageBuilder.message(wire=True)`:
        CRLF, leading dots doubled); given as a function, it is made once the connection is
        open, told whether the server takes 8-bit data (`MessageNotMade` if it fails). A
        message that is not ASCII is declared `BODY=8BITMIME`; a non-ASCII address needs a
        server with SMTPUTF8.
        `before_data` records the message in flight: called once RCPT is written, while the
        server answers it (its fsync and the round trip overlap), and always before DATA;
        if it raises, the message is not posted (RSET) and its exception goes on up.
        """
        if self._smtp is None:
            self.open()
        smtp = self._smtp
        assert smtp is not None
        if callable(message):
            try:
                message = message(self.eight_bit)
            except Exception as exc:  # nothing of it has been posted: the caller says so
                raise MessageNotMade(f"{type(exc).__name__}: {exc}") from exc
        options = []
        sender, recipient = _envelope(sender), _envelope(recipient)
        if not (sender + recipient).isascii():
            if not self.smtputf8:
                raise Refused(f"{self._where()} does not take addresses with non-ASCII letters (no SMTPUTF8)")
            options = ["SMTPUTF8", "BODY=8BITMIME"]
        eight_bit = self.eight_bit and not message.isascii()
        try:
            if options:  # smtplib's mail() switches the connection to UTF-8 for SMTPUTF8
                code, reply = smtp.mail(sender, options)
            else:
                smtp.putcmd("mail", f"FROM:{_path(sender)}{' BODY=8BITMIME' if eight_bit else ''}")
                code, reply = smtp.getreply()
            if code != 250:
                failure = _failure(code, reply, self._password)
                if isinstance(failure, Refused):  # the sender, not this recipient: nobody would get it
                    raise SenderRefused(
                        f"{self._where()} refuses mail from {sender} ({failure}); send from an address the "
                        "account may use (`from` in newsletter.yaml), or check smtp.username")
                raise failure
            smtp.putcmd("rcpt", f"TO:{_path(recipient)}")
            if before_data is not None:
                try:
                    before_data()
                except BaseException:
                    try:  # RCPT's answer read, so the connection is ready for the next message
                        smtp.getreply()
                        self._reset()
                    except (smtplib.SMTPException, OSError):
                        self.close()
                    raise
            code, reply = smtp.getreply()
            if code not in (250, 251):
                raise _failure(code, reply, self._password)
            smtp.putcmd("data")
            code, reply = smtp.getreply()
            if code != 354:
                raise _failure(code, reply, self._password)
        except (Deferred, Refused, QuotaReached, SenderRefused) as exc:
            self._reset()
            raise exc from None
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # Nothing of the message has gone: whatever happened, nothing was delivered.
            self.close()
            raise Reconnect(scrub(str(exc) or type(exc).__name__, self._password, limit=200)) from None
        # What smtplib's data() does: CRLF line ends, a leading dot doubled (RFC 5321 4.5.2).
        data = message if wire else _LEADING_DOT.sub(b"..", _LINE_END.sub(b"\r\n", message))
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        try:
            smtp.send(data + b".\r\n")
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # sendall() did not finish, so the final `.` never reached the server.
            self.close()
            raise Reconnect(scrub(str(exc) or type(exc).__name__, self._password, limit=200)) from None
        try:
            code, reply = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.close()
            raise Uncertain(
                f"the connection to {self._where()} was lost after the message was sent and before the "
                f"server answered ({scrub(str(exc) or type(exc).__name__, self._password, limit=120)})") from None
        if code // 100 != 2:
            failure = _failure(code, reply, self._password)
            if isinstance(failure, Reconnect):
                self.close()
            raise failure
        return _answer(code, reply)

    def describe_tls(self) -> str:
        """`TLSv1.3` for an open TLS connection, "" for plain SMTP."""
        sock = self._smtp.sock if self._smtp is not None else None
        version = sock.version() if isinstance(sock, ssl.SSLSocket) else None
        return version or ""

    def probe_sender(self, sender: str) -> str:
        """Ask MAIL FROM for `sender`, then RSET: the server's answer; nothing is sent.

        `SenderRefused` when it refuses, one of this module's other exceptions otherwise.
        """
        if self._smtp is None:
            self.open()
        smtp = self._smtp
        assert smtp is not None
        try:
            code, reply = smtp.mail(sender)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.close()
            raise Reconnect(scrub(str(exc) or type(exc).__name__, self._password, limit=200)) from None
        self._reset()
        if code != 250:
            failure = _failure(code, reply, self._password)
            if isinstance(failure, Refused):
                raise SenderRefused(f"{self._where()} refuses mail from {sender} ({failure}); send from an address "
                                    "the account may use (`from` in newsletter.yaml), or check smtp.username")
            raise failure
        return _answer(code, reply)

    def _reset(self) -> None:
        """RSET after a refused step, so the next message starts clean; a dead connection is closed."""
        if self._smtp is None:
            return
        try:
            self._smtp.rset()
        except (smtplib.SMTPException, OSError):
            self.close()

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()
