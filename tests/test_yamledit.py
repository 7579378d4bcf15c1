"""newsletter/files/yamledit.py: round-trip edits that keep what the editor wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.errors import ConfigError
from newsletter.files.yamledit import edit_document
from tests.conftest import REPO


@pytest.mark.parametrize("name", ["newsletter.yaml", "issues/issue-1/issue.yaml"])
def test_loading_and_saving_changes_nothing(tmp_path: Path, name: str) -> None:
    original = (REPO / name).read_text(encoding="utf-8")
    path = tmp_path / "file.yaml"
    path.write_text(original, encoding="utf-8")
    with edit_document(path, ConfigError):
        pass
    assert path.read_text(encoding="utf-8") == original


def test_an_edit_keeps_comments_order_quotes_and_indentation(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.yaml"
    path.write_text(
        "# my publication\nname: 'The Circle'   # quoted\nsendgrid:\n    categories:\n    - news\n"
        "    timeout: 30\n", encoding="utf-8")
    with edit_document(path, ConfigError) as data:
        data["sendgrid"]["asm_group_id"] = 42
        data["sendgrid"]["categories"].append("letters")
    assert path.read_text(encoding="utf-8") == (
        "# my publication\nname: 'The Circle'   # quoted\nsendgrid:\n    categories:\n    - news\n    - letters\n"
        "    timeout: 30\n    asm_group_id: 42\n")


def test_invalid_yaml_is_an_error_naming_the_line_and_the_file_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.yaml"
    path.write_text("name: fine\nfrom: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"newsletter\.yaml:2: invalid YAML: .*the \[ opened on line 2 is never closed"):
        with edit_document(path, ConfigError):
            pass
    assert path.read_text(encoding="utf-8") == "name: fine\nfrom: [unclosed\n"


def test_an_error_inside_the_edit_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "issue.yaml"
    path.write_text("subject: Hello\n", encoding="utf-8")
    with pytest.raises(KeyError):
        with edit_document(path, ConfigError) as data:
            data["subject"] = "Changed"
            raise KeyError("stop")
    assert path.read_text(encoding="utf-8") == "subject: Hello\n"


def test_set_value_adds_a_key_below_the_last_and_above_trailing_comments(tmp_path: Path) -> None:
    """doctor --create-group's edit: comment lines after a mapping stay after it."""
    from newsletter.files.yamledit import set_value

    path = tmp_path / "newsletter.yaml"
    path.write_text("name: N\nsendgrid:\n  timeout: 30   # seconds\n# What follows the mapping.\n"
                    "# unsubscribe_url: https://example.org/u?e={email}\n", encoding="utf-8")
    with edit_document(path, ConfigError) as data:
        set_value(data, ("sendgrid", "asm_group_id"), 42, path, ConfigError)
    assert path.read_text(encoding="utf-8") == (
        "name: N\nsendgrid:\n  timeout: 30   # seconds\n  asm_group_id: 42\n# What follows the mapping.\n"
        "# unsubscribe_url: https://example.org/u?e={email}\n")
