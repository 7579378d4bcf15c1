"""`Mailer` for SendGrid: one message, one POST /v3/mail/send, over the send's own transport.

The transport (transport.py) already tells apart a request SendGrid cannot have had
(retry later) from one it may have acted on (uncertain); this maps its answers onto the
`Mailer` errors. The JSON is built here, the only place that knows SendGrid's wire format
for a single message.
"""

from __future__ import annotations

import json
from typing import Any

from newsletter.config import Settings, sendgrid_api_key
from newsletter.errors import scrub
from newsletter.providers.sendgrid.mail import json_address
from newsletter.sending.mailer import MailerDown, MailerRefused, MailerUncertain, OutgoingEmail
from newsletter.sending.transport import NotPostedError, PreparedBatch, RetryableError, UncertainError
from newsletter.providers.sendgrid.retry import sendgrid_errors
from newsletter.providers.sendgrid.transport import SendGridTransport


class SendGridMailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._key = sendgrid_api_key()
        self._transport = SendGridTransport(settings.sendgrid_url, self._key, settings.sendgrid.timeout)

    def body(self, email: OutgoingEmail) -> dict[str, Any]:
        settings = self._settings
        body: dict[str, Any] = {
            "personalizations": [{"to": [{"email": email.to}]}],
            "from": json_address(settings.sender),
            "subject": email.subject,
            "content": [{"type": "text/plain", "value": email.text}, {"type": "text/html", "value": email.html}],
        }
        if settings.reply_to is not None:
            body["reply_to"] = json_address(settings.reply_to)
        if email.headers:
            body["headers"] = dict(email.headers)
        # Sign-up mail is transactional: SendGrid's click tracking would rewrite the signed links.
        body["tracking_settings"] = {"click_tracking": {"enable": False, "enable_text": False}}
        return body

    def send(self, email: OutgoingEmail) -> None:
        data = json.dumps(self.body(email)).encode("utf-8")
        try:
            response = self._transport.post(PreparedBatch(number=1, keys=[email.to], body=data))
        except RetryableError as exc:
            raise MailerDown(str(exc)) from None
        except UncertainError as exc:
            raise MailerUncertain(str(exc)) from None
        except NotPostedError as exc:
            raise MailerRefused(str(exc)) from None
        if 200 <= response.status < 300:
            return
        detail = sendgrid_errors(scrub(response.body.decode("utf-8", "replace"), self._key).encode("utf-8"))
        message = f"SendGrid answered {response.status}: {detail}"
        if response.status == 429 or response.status >= 500:
            raise MailerDown(message)
        raise MailerRefused(message)

    def close(self) -> None:
        self._transport.close()
