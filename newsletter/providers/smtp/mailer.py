"""`Mailer` for SMTP: the sign-up server's single emails (confirmation, welcome) over one connection.

Each email is built by the send's own message builder (one part each, no merge fields
left in it) with a Message-ID of its own, and posted through the send's connection, whose
answers map onto the `Mailer` errors: nothing delivered (a 4xx, a drop before the final
`.`, a server that cannot be reached) is `MailerDown`, to be sent again later; a drop
after the final `.` is `MailerUncertain`; a 5xx, or an email that cannot be made, is `MailerRefused`.
"""

from __future__ import annotations

import secrets
import threading

from newsletter.config import Settings, smtp_password
from newsletter.errors import scrub
from newsletter.providers.smtp.connection import (
    Deferred, MessageNotMade, QuotaReached, Reconnect, Refused, SenderRefused, SmtpConnection, SmtpSetupError,
    Uncertain,
)
from newsletter.providers.smtp.message import MessageBuilder, Recipient
from newsletter.providers.smtp.provider import list_id
from newsletter.sending.mailer import MailerDown, MailerRefused, MailerUncertain, OutgoingEmail


class SmtpMailer:
    def __init__(self, settings: Settings) -> None:
        assert settings.smtp is not None
        self._settings = settings
        self._connection = SmtpConnection(settings.smtp, smtp_password(settings.smtp))
        self._lock = threading.Lock()  # one connection: one email at a time

    def send(self, email: OutgoingEmail) -> None:
        settings = self._settings

        def message(eight_bit: bool) -> bytes:
            # Made by the connection (what its server takes decides the encoding), so that an email
            # that cannot be made is `MessageNotMade`: nothing posted, failed for good. Raised here
            # unsorted, the outbox marked it uncertain, with a traceback.
            builder = MessageBuilder(
                sender=settings.sender, reply_to=settings.reply_to, subject=email.subject, text=email.text,
                html=email.html, list_id=list_id(settings),
                one_click=False, identity=f"signup-{secrets.token_hex(8)}")  # each email its own Message-ID
            return builder.message(Recipient(email.to, "", {}, None, email.headers), eight_bit=eight_bit)
        with self._lock:
            try:
                self._connection.deliver(settings.sender.email, email.to, message)
            except MessageNotMade as exc:
                raise MailerRefused(f"the email could not be made ({scrub(str(exc))})") from None
            except Uncertain as exc:
                raise MailerUncertain(str(exc)) from None
            except (Refused, SenderRefused) as exc:
                raise MailerRefused(str(exc)) from None
            except (Deferred, Reconnect, QuotaReached, SmtpSetupError) as exc:
                raise MailerDown(str(exc)) from None

    def close(self) -> None:
        self._connection.close()
