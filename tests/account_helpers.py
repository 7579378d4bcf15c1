"""Helpers of the tests of SendGrid's account calls: quick retries, a spec-checked double."""

from __future__ import annotations

import pytest

from newsletter.sendgrid import client
from newsletter.sending.retry import RetryPolicy
from tests.sendgrid_double import ACCOUNT_SPEC_FILE


@pytest.fixture
def quick_api_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's retries wait milliseconds here, not seconds."""
    monkeypatch.setattr(client, "DEFAULT_POLICY", RetryPolicy(backoff=0.001, max_backoff=0.01))


@pytest.fixture
def account_spec() -> None:
    """Skips the test where SendGrid's published account spec is not beside the project."""
    if not ACCOUNT_SPEC_FILE.is_file():
        pytest.skip(f"SendGrid's account spec is not at {ACCOUNT_SPEC_FILE} (../shared/sendgrid/ is absent)")
