"""The seam between a send and the outside world: post one prepared batch, get an answer.

Implementations: `providers.sendgrid.SendGridTransport` (HTTP), `providers.smtp.SmtpTransport`
(SMTP) and `dryrun.DryRunTransport` (files). The core never knows which one it talks to;
what a provider is beyond its transport is in `provider.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class PreparedBatch:
    """One request: its number in this run, its recipients' ledger keys, its body, and the
    addresses as sent (an SMTP envelope names them; a SendGrid body holds them)."""

    number: int
    keys: list[str]
    body: bytes
    addresses: tuple[str, ...] = ()
    # One whole message per recipient, each posted and recorded on its own (SMTP's, `records_each`),
    # or how to make it: the provider's personalizations, as its builder made them.
    messages: tuple[Any, ...] = ()

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class Response:
    """What the provider (or a stand-in) answered: an HTTP status, or SMTP's 250."""

    status: int
    message_id: str = ""
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class RetryableError(Exception):
    """No answer, but SendGrid cannot have processed the request (refused, reset before an
    answer, a stale keep-alive connection): posting it again is safe."""


class UncertainError(Exception):
    """The body went out and no answer came back: SendGrid may or may not have accepted it,
    so it must not be posted again without the user's say-so."""


class NotPostedError(Exception):
    """The request could not even be made (an invalid header, say): nothing reached SendGrid,
    and posting it again would fail the same way."""


class Transport(Protocol):
    """Posts prepared batches; safe to call from several threads at once."""

    def post(self, batch: PreparedBatch) -> Response:
        """Post `batch` once (no retries); raise `RetryableError`, `UncertainError` or `NotPostedError`."""
        ...

    def close(self) -> None:
        """Release connections or files."""
        ...
