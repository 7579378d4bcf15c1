"""Helpers of the tests of SendGrid's account calls: a spec-checked double, an account set up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dns_server import DnsZone
from tests.sendgrid_double import ACCOUNT_SPEC_FILE, SendGridDouble


@pytest.fixture
def account_spec() -> None:
    """Skips the test where SendGrid's published account spec is not beside the project."""
    if not ACCOUNT_SPEC_FILE.is_file():
        pytest.skip(f"SendGrid's account spec is not at {ACCOUNT_SPEC_FILE} (../shared/sendgrid/ is absent)")


SENDER = "letters@riverside-writers-circle.internal"  # the sample publication's from
SENDER_DOMAIN = "riverside-writers-circle.internal"
DKIM_KEY = "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zwt"


def sendgrid_authenticated(dns: DnsZone) -> None:
    """The DKIM CNAMEs SendGrid's domain authentication (automated security) has an editor publish."""
    for selector in ("s1", "s2"):
        target = f"{selector}.domainkey.u1234.wl001.sendgrid.net"
        dns.cname(f"{selector}._domainkey.{SENDER_DOMAIN}", target)
        dns.txt(target, DKIM_KEY)


def enable_group(publication: Path, group: int) -> None:
    """Set sendgrid.asm_group_id in the sample's newsletter.yaml, where its comment has it."""
    config = publication / "newsletter.yaml"
    config.write_text(config.read_text().replace("# asm_group_id: 12345", f"asm_group_id: {group}"))


def ready_account(double: SendGridDouble, publication: Path) -> int:
    """The double's account set up as the sample publication needs it: sender, group; the group id."""
    double.account.verify_sender(SENDER)
    group = double.account.add_group("Riverside letters")
    enable_group(publication, group)
    return group


@pytest.fixture
def spec_kept(sendgrid: SendGridDouble) -> Iterator[SendGridDouble]:
    """The double, and after the test: every account request conformed, every answer too."""
    yield sendgrid
    assert sendgrid.account.rejections == [], "a request broke SendGrid's published spec"
    assert sendgrid.account.answer_violations == [], "the double answered outside SendGrid's spec"
