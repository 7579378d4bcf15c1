"""`newsletter.yaml`: settings that would break a send are refused at start, naming the line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.subscriber_helpers import run


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
