"""Settings at the domains reserved for examples (RFC 2606): refused by real sends, warned elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.placeholders import is_reserved
from tests.helpers import run, update_config
from tests.sendgrid_double import SendGridDouble


@pytest.mark.parametrize("host", ["example.com", "news.example.org", "EXAMPLE.NET", "letters.example",
                                  "site.test", "x.invalid", "localhost", "localhost."])
def test_reserved_hosts(host: str) -> None:
    assert is_reserved(host)


@pytest.mark.parametrize("host", ["riverside-writers-circle.internal", "example.co.uk", "myexample.com",
                                  "examples.org", "test.org", "invalid.example-news.net"])
def test_hosts_that_are_not_reserved(host: str) -> None:
    assert not is_reserved(host)


@pytest.fixture
def placeholder_publication(publication: Path) -> Path:
    update_config(publication, **{"from": {"email": "letters@example.org", "name": "Letters"},
                                  "base_url": "https://news.test/issues"})
    return publication


def line_of(publication: Path, key: str) -> int:
    lines = (publication / "newsletter.yaml").read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if line.startswith(f"{key}:"))


def test_a_real_send_and_a_proof_are_refused_naming_each_key(placeholder_publication: Path,
                                                             sendgrid: SendGridDouble) -> None:
    base_url, sender = line_of(placeholder_publication, "base_url"), line_of(placeholder_publication, "from")
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: newsletter.yaml:{base_url}: base_url https://news.test/issues is a placeholder (news.test is reserved for "
        "examples, RFC 2606): put the publication's own web address there; a send is refused until then",
        f"error: newsletter.yaml:{sender}: from letters@example.org is a placeholder (example.org is reserved for "
        "examples, RFC 2606): put the publication's own address there; a send is refused until then",
    ]
    proof = run("send", "issue-1", "--to", "me@riverside-writers-circle.internal", "--yes")
    assert proof.exit_code == 1
    assert "from letters@example.org is a placeholder" in proof.stderr
    assert "a proof is refused until then" in proof.stderr
    assert sendgrid.mail_requests == []


def test_a_dry_run_and_check_only_warn(placeholder_publication: Path) -> None:
    dry = run("send", "issue-1", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"warning: newsletter.yaml:{line_of(placeholder_publication, 'from')}: from letters@example.org " \
        "is a placeholder" in dry.stderr
    assert "a real send is refused until then" in dry.stderr
    check = run("check", "issue-1")
    assert check.exit_code == 0
    assert f"warning: newsletter.yaml:{line_of(placeholder_publication, 'base_url')}: base_url " \
        "https://news.test/issues is a placeholder" in check.stderr


def test_the_example_postal_address_init_writes_is_a_placeholder(publication: Path, sendgrid: SendGridDouble) -> None:
    """The one setting not at a reserved domain: init's street is refused for a real send too."""
    update_config(publication, postal_address="My Newsletter, 1 Example Street, Exampletown EX1 2MP, United Kingdom")
    line = line_of(publication, "postal_address")
    result = run("send", "issue-1", "--yes")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: newsletter.yaml:{line}: postal_address 'My Newsletter, 1 Example Street, Exampletown EX1 2MP, "
        "United Kingdom' is the example `init` wrote: put the publication's own postal address there (anti-spam "
        "laws require a real one in every email); a send is refused until then")
    assert sendgrid.mail_requests == []
    check = run("check", "issue-1")
    assert check.exit_code == 0 and f"newsletter.yaml:{line}: postal_address" in check.stderr
    from newsletter.placeholders import EXAMPLE_STREET
    from newsletter.publication import SKELETON

    assert EXAMPLE_STREET in (SKELETON / "newsletter.yaml").read_text(encoding="utf-8"), "init still writes it"
