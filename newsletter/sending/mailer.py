"""The seam for one email at a time (the sign-up server's confirmation and welcome).

A send posts batches through `transport.Transport`; the sign-up server sends single
messages, each when a reader asks, through a `Mailer`. Each provider implements it
(SendGrid: `newsletter/providers/sendgrid/mailer.py`); the server never knows which one it has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class OutgoingEmail:
    """One message to one person. `headers`: extra ones (List-Unsubscribe and the like)."""

    to: str
    subject: str
    html: str
    text: str
    headers: dict[str, str] = field(default_factory=dict)


class MailerDown(Exception):
    """The provider did not take the message and cannot have sent it (unreachable, 429, 5xx):
    send it again later."""


class MailerUncertain(Exception):
    """The message went out and no answer came: the provider may have sent it. Never resent blindly."""


class MailerRefused(Exception):
    """The provider refused the message for good (a bad address, a bad key): sending it again fails again."""


class Mailer(Protocol):
    def send(self, email: OutgoingEmail) -> None:
        """Hand `email` to the provider once (no retries); raise one of the errors above."""
        ...
