"""Reading the small YAML files of a publication, with line numbers for messages."""

from __future__ import annotations

import warnings
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
        """`file:line` of `key` (`sendgrid.timeout`: a key of a mapping), or of the mapping itself.

        A key not in the file is placed at the key that holds it, else at the mapping.
        """
        if not key:
            return where(self.path, None)
        line = self.lines.get(key)
        while line is None and "." in key:
            key = key.rsplit(".", 1)[0]
            line = self.lines.get(key)
        return where(self.path, line or self.first_line)


def parse_mapping(
    text: str, path: Path, error: type[NewsletterError], line_offset: int = 0
) -> YamlMapping:
    """Parse `text` (read from `path`) as a YAML mapping or raise `error` naming the line.

    `line_offset` is added to line numbers, for YAML that starts further down a file
    (front matter after its `---`).
    """
    node = None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = min(mark.line + 1, text.count("\n") + 1) + line_offset if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{where(path, line)}: invalid YAML: {problem}") from None
    except ValueError as exc:  # a well-formed value PyYAML cannot build, like `date: 2026-02-30`
        bad = _unbuildable(node)
        if bad is None:
            raise error(f"{where(path)}: invalid value: {exc} (dates are written 2026-11-25)") from None
        raise error(f"{where(path, bad.start_mark.line + 1 + line_offset)}: {bad.value} is no such date "
                    f"({exc}; dates are written 2026-11-25)") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(f"{where(path, 1 + line_offset)}: expected a mapping of `key: value` lines")
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1 + line_offset
            if str(key_node.value) in lines:  # YAML keeps the last silently; the first was meant too
                warnings.warn(f"{where(path, line)}: {key_node.value!r} is given twice (also on line "
                              f"{lines[str(key_node.value)]}): this later one is used", stacklevel=2)
            lines[str(key_node.value)] = line
            if isinstance(value_node, yaml.MappingNode):  # `from: {email: ...}`, `sendgrid:` settings
                for sub_node, _ in value_node.value:
                    lines[f"{key_node.value}.{sub_node.value}"] = sub_node.start_mark.line + 1 + line_offset
    return YamlMapping(path, {str(k): v for k, v in data.items()}, lines, 1 + line_offset)


def read_mapping(path: Path, error: type[NewsletterError]) -> YamlMapping:
    """Read and parse a YAML file that holds one mapping."""
    return parse_mapping(read_yaml_text(path, error), path, error)


def read_yaml_text(path: Path, error: type[NewsletterError]) -> str:
    """The text of a YAML file of the publication, or `error` saying why it cannot be read.

    A byte-order mark, as some Windows editors write, is dropped.
    """
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise error(f"{where(path)}: no such file") from None
    except UnicodeDecodeError as exc:
        raise error(f"{where(path)}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise error(f"{where(path)}: cannot read it ({exc.strerror})") from None


def _unbuildable(node: yaml.Node | None) -> yaml.ScalarNode | None:
    """The first timestamp in `node` that cannot be built (`2026-13-45`), for its line."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag == "tag:yaml.org,2002:timestamp":
            try:
                yaml.SafeLoader("").construct_yaml_timestamp(node)
            except ValueError:
                return node
        return None
    children: list[yaml.Node] = []
    if isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    for child in children:
        found = _unbuildable(child)
        if found is not None:
            return found
    return None
