"""`newsletter.yaml`: settings that would break a send are refused at start, naming the line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import run


def config_with(publication: Path, old: str, new: str) -> None:
    """Replace the line `old` of the sample newsletter.yaml with `new` (text, as a person edits it)."""
    path = publication / "newsletter.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    text = text.replace(old, new)
    if not new:  # the sendgrid block emptied: `sendgrid: []`, as a person might write it
        text = re.sub(r"(?m)^sendgrid:\n(  #.*\n)?", "sendgrid: []\n", text)
    path.write_text(text, encoding="utf-8")


def line_of(publication: Path, text: str) -> int:
    lines = (publication / "newsletter.yaml").read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, start=1) if text in line)


@pytest.mark.parametrize("old, new, marker, message", [
    ("postal_address: Riverside Writers' Circle, 14 Mill Lane, Oxbury OX9 4QT, United Kingdom",
     'postal_address: "   "', "postal_address:", "postal_address is empty"),
    ("unsubscribe_url: https://riverside-writers-circle.internal/unsubscribe?email={email}",
     "unsubscribe_url: riverside-writers-circle.internal/unsubscribe?email={email}", "unsubscribe_url:",
     "unsubscribe_url must be a web address starting with https://"),
    ("unsubscribe_url: https://riverside-writers-circle.internal/unsubscribe?email={email}",
     "unsubscribe_url: \"javascript:alert('{email}')\"", "unsubscribe_url:",
     "unsubscribe_url must be a web address starting with https://"),
    ("  email: letters@riverside-writers-circle.internal", "  email: letters at riverside-writers", "  email:",
     "from.email 'letters at riverside-writers' is not an email address"),
    ("reply_to: editor@riverside-writers-circle.internal", "reply_to: editor@", "reply_to:",
     "reply_to 'editor@' is not an email address"),
    ("  # asm_group_id: 12345", "  asm_group_id: -1", "asm_group_id:",
     "sendgrid.asm_group_id must be the number of a SendGrid unsubscribe group (1 or more"),
    ("  categories: [newsletter]\n  timeout: 30\n", "", "sendgrid:",
     "sendgrid must be a mapping of settings"),
])
def test_a_setting_that_would_break_a_send_is_one_line_naming_the_line(
    publication: Path, old: str, new: str, marker: str, message: str,
) -> None:
    config_with(publication, old, new)
    result = run("check", "issue-1")
    assert result.exit_code == 1
    line = line_of(publication, marker)
    assert re.fullmatch(rf"error: newsletter\.yaml:{line}: [^\n]*\n", result.stderr), result.stderr
    assert message in result.stderr, result.stderr


def test_the_sample_settings_are_accepted(publication: Path) -> None:
    assert run("check", "issue-1").exit_code == 0


SMTP_BLOCK = """provider: smtp
smtp:
  host: smtp.fastmail.com
  username: letters@riverside-writers-circle.internal
"""


@pytest.mark.parametrize("block, marker, message", [
    ("provider: smpt\n", "provider:", "provider must be one of sendgrid, smtp, not 'smpt'"),
    ("provider: smtp\n", "provider:", "provider smtp needs an `smtp:` mapping with at least `host:`"),
    (SMTP_BLOCK + "  security: starttls-please\n", "smtp:",
     "smtp.security must be one of starttls, tls, none, not 'starttls-please'"),
    (SMTP_BLOCK + "  security: none\n", "smtp:",
     "smtp.security none sends the password and every reader's address in clear; it is allowed only to this "
     "machine (localhost), not smtp.fastmail.com: use starttls or tls"),
    (SMTP_BLOCK + "  connections: 40\n", "smtp:", "smtp.connections must be a whole number from 1 to 16, not 40"),
    (SMTP_BLOCK + "  rate: 0\n", "smtp:", "smtp.rate must be messages a second, above 0, not 0"),
    (SMTP_BLOCK + "  daily_limit: 1.5\n", "smtp:", "smtp.daily_limit must be a whole number of messages a day"),
    (SMTP_BLOCK + "  ca_file: nowhere.pem\n", "smtp:", "smtp.ca_file 'nowhere.pem' is not a file"),
])
def test_smtp_settings_mistakes_are_one_line(publication: Path, block: str, marker: str, message: str) -> None:
    path = publication / "newsletter.yaml"
    path.write_text(path.read_text(encoding="utf-8") + block, encoding="utf-8")
    result = run("check", "issue-1")
    assert result.exit_code == 1
    line = line_of(publication, marker)
    assert re.fullmatch(rf"error: newsletter\.yaml:{line}: [^\n]*\n", result.stderr), result.stderr
    assert message in result.stderr, result.stderr


def test_smtp_settings_are_read_with_their_defaults(publication: Path) -> None:
    from newsletter.config import load_settings

    path = publication / "newsletter.yaml"
    path.write_text(path.read_text(encoding="utf-8") + SMTP_BLOCK + "  security: tls\n  daily_limit: 500\n",
                    encoding="utf-8")
    settings = load_settings(publication)
    assert settings.provider == "smtp" and settings.smtp is not None
    smtp = settings.smtp
    assert (smtp.host, smtp.port, smtp.security, smtp.connections, smtp.rate, smtp.daily_limit, smtp.timeout) == (
        "smtp.fastmail.com", 465, "tls", 4, None, 500, 60.0)
    assert run("check", "issue-1").exit_code == 0
