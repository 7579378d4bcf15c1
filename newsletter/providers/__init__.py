"""The mail services an issue is sent through, chosen in one place from `provider:` of newsletter.yaml.

Each provider implements `newsletter/sending/provider.py`: SendGrid (`sendgrid/`, which also
schedules) and SMTP (`smtp/`). The sending core calls `provider_for` (and `scheduler_for`) and
never names one; each is imported only when chosen, so `newsletter status` loads neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.sending.mailer import Mailer
    from newsletter.sending.provider import Provider, Scheduler


def provider_for(settings: Settings) -> Provider:
    """The provider `settings` name (SendGrid when `provider:` is absent)."""
    if settings.provider == "smtp":
        from newsletter.providers.smtp.provider import SmtpProvider

        return SmtpProvider(settings)
    from newsletter.providers.sendgrid.provider import SendGridProvider

    return SendGridProvider(settings)


def mailer_for(settings: Settings) -> Mailer:
    """How the sign-up server sends its single emails, through the same provider as the issues."""
    if settings.provider == "smtp":
        from newsletter.providers.smtp.mailer import SmtpMailer

        return SmtpMailer(settings)
    from newsletter.providers.sendgrid.mailer import SendGridMailer

    return SendGridMailer(settings)


def scheduler_for(settings: Settings) -> Scheduler | None:
    """How the provider `settings` name holds mail until a moment (`send --at`, `cancel`); None if it cannot."""
    if settings.provider == "smtp":
        return None
    from newsletter.providers.sendgrid.schedule import SendGridScheduler  # its HTTP client: a scheduled send only

    return SendGridScheduler(settings)
