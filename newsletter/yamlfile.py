"""Reading the small YAML files of a publication, with line numbers for messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from newsletter.errors import NewsletterError, where


@dataclass
class YamlMapping:
    """A top-level YAML mapping and the line of each of its keys."""

    path: Path
    data: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)
    first_line: int = 1

    def where(self, key: str | None = None) -> str:
        """`file:line` of `key`, or of the mapping itself."""
        return where(self.path, self.lines.get(key, self.first_line) if key else None)


def parse_mapping(
    text: str, path: Path, error: type[NewsletterError], line_offset: int = 0
) -> YamlMapping:
    """Parse `text` (read from `path`) as a YAML mapping or raise `error` naming the line.

    `line_offset` is added to line numbers, for YAML that starts further down a file
    (front matter after its `---`).
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = min(mark.line + 1, text.count("\n") + 1) + line_offset if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{where(path, line)}: invalid YAML: {problem}") from None
    except ValueError as exc:  # a well-formed value PyYAML cannot build, like `date: 2026-02-30`
        raise error(f"{where(path)}: invalid value: {exc} (dates are written 2026-11-25)") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(f"{where(path, 1 + line_offset)}: expected a mapping of `key: value` lines")
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            lines[str(key_node.value)] = key_node.start_mark.line + 1 + line_offset
    return YamlMapping(path, {str(k): v for k, v in data.items()}, lines, 1 + line_offset)


def read_mapping(path: Path, error: type[NewsletterError]) -> YamlMapping:
    """Read and parse a YAML file that holds one mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{where(path)}: no such file") from None
    except UnicodeDecodeError as exc:
        raise error(f"{where(path)}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise error(f"{where(path)}: cannot read it ({exc.strerror})") from None
    return parse_mapping(text, path, error)


def set_value(path: Path, keys: tuple[str, ...], value: Any, error: type[NewsletterError]) -> None:
    """Set `keys` (mapping keys from the top, e.g. ("sendgrid", "asm_group_id")) to `value` in place.

    A round trip through ruamel.yaml, so the file's comments, key order and quoting stay
    as the user wrote them; only the one value changes (or is added at the end of its
    mapping, which is created when missing). Written atomically: a crash leaves the old
    file or the new one.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap
    from ruamel.yaml.error import YAMLError

    from newsletter.atomic import atomic_file

    yaml_rt = YAML()  # round-trip mode
    yaml_rt.preserve_quotes = True
    yaml_rt.width = 4096  # never re-wrap a long line of the user's
    try:
        text = path.read_text(encoding="utf-8")
        document = yaml_rt.load(text)
    except OSError as exc:
        raise error(f"{where(path)}: cannot read it ({exc.strerror})") from None
    except YAMLError as exc:
        raise error(f"{where(path)}: invalid YAML: {str(exc).splitlines()[0]}") from None
    if document is None:
        document = CommentedMap()
    node = document
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key) if isinstance(node, dict) else None
        if child is None:
            child = CommentedMap()
            node[key] = child
        if not isinstance(child, dict):
            raise error(f"{where(path)}: {'.'.join(keys[:depth + 1])} must be a mapping to hold {keys[-1]}")
        node = child
    is_new = keys[-1] not in node
    previous_last = next(reversed(node), None) if is_new else None
    node[keys[-1]] = value
    if previous_last is not None:
        _keep_trailing_comment_last(node, previous_last, keys[-1])
    with atomic_file(path) as handle:
        yaml_rt.dump(document, handle)


def _keep_trailing_comment_last(node: Any, previous_last: Any, added: Any) -> None:
    """Comment lines that followed a mapping's last key stay after the mapping, below the added key.

    ruamel.yaml attaches the lines after a value to that value, so a key appended after
    it would otherwise land below comments that were about what follows the mapping.
    The end-of-line comment of the previous key stays on its line.
    """
    import copy

    entry = node.ca.items.get(previous_last)
    token = entry[2] if entry and len(entry) > 2 else None
    if token is None or "\n" not in token.value:
        return
    own_line, _, following = token.value.partition("\n")
    if not following.strip():
        return
    moved = copy.copy(token)
    moved.value = "\n" + following
    if own_line.strip():
        token.value = own_line + "\n"
    else:
        entry[2] = None
    node.ca.items[added] = [None, None, moved, None]
