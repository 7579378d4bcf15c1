"""SendGrid as a provider of the sending core (`sending/provider.py`): its builder, transport and answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from newsletter.config import Settings, sendgrid_api_key
from newsletter.providers.sendgrid.mail import RequestBuilder
from newsletter.providers.sendgrid.retry import post_with_retries
from newsletter.sending.provider import Hold, Outcome, RetryPolicy, Wait
from newsletter.sending.transport import PreparedBatch, Transport

if TYPE_CHECKING:
    from newsletter.doctor import DoctorReport
    from newsletter.render import RenderedEmail


class SendGridProvider:
    """Requests of 1,000 recipients to POST /v3/mail/send; it can schedule (`send --at`)."""

    name = "sendgrid"
    display_name = "SendGrid"
    can_schedule = True
    dry_run_file = "request-{number:05d}.json"
    dry_run_sample: int | None = None  # every request body: 1,000 recipients each, so a list of 1,000,000 is 1,000 files

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.concurrency = settings.sendgrid.concurrency

    def secret(self) -> str:
        return sendgrid_api_key()

    def builder(self, settings: Settings, email: RenderedEmail, issue: str, *, proof: bool, dry_run: bool,
                unsubscribe_links: Callable[[str], str] | None) -> RequestBuilder:
        return RequestBuilder(settings, email, issue, proof=proof, dry_run=dry_run,
                              unsubscribe_links=unsubscribe_links)

    def transport(self, secret: str) -> Transport:
        from newsletter.providers.sendgrid.transport import SendGridTransport  # the HTTP client: a real send only

        return SendGridTransport(self._settings.sendgrid_url, secret, self._settings.sendgrid.timeout)

    def doctor(self, create_group: str | None = None, retry: RetryPolicy | None = None,
               dns_deadline: float | None = None) -> DoctorReport:
        from newsletter.providers.sendgrid.account import run_doctor

        return run_doctor(self._settings, create_group, retry=retry, dns_deadline=dns_deadline)

    def post(self, transport: Transport, batch: PreparedBatch, policy: RetryPolicy, wait: Wait,
             hold: Hold | None = None) -> Outcome:
        return post_with_retries(transport, batch, policy, wait, hold)
