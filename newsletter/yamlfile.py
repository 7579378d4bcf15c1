"""Reading the small YAML files of a publication, with line numbers for messages."""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Collection
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

    def misspelling_of(self, key: str, known: Collection[str]) -> str | None:
        """The key of this mapping, not one of `known`, that is most likely `key` misspelt
        (`postal_adress` for a missing `postal_address`), or None."""
        for written in self.data:
            if written not in known and did_you_mean(written, known) == key:
                return written
        return None


def did_you_mean(key: str, known: Collection[str]) -> str | None:
    """The known key closest to `key` when it is close enough to be a typo of it
    (`autor` → `author`), by difflib's similarity ratio; None otherwise."""
    close = difflib.get_close_matches(key.lower(), sorted(known), n=1)
    return close[0] if close else None


def unknown_key_advice(key: str, known: Collection[str]) -> str:
    """`did you mean postal_address?` for a misspelt key, else the list of the known ones."""
    meant = did_you_mean(key, known)
    return f"did you mean {meant}?" if meant else f"known keys: {', '.join(sorted(known))}"


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
        problem = explain_yaml_error(exc, text)
        line = problem.line + line_offset if problem.line is not None else None
        raise error(f"{where(path, line)}: {problem.message}") from None
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


# -- what to do about a YAML mistake ----------------------------------------------------
# The parser says what it met ("mapping values are not allowed here"); a person who never
# wrote YAML needs what to change. Each mistake below is one a newcomer made.

# `key:` at the start of a line (after its indentation and a `- `): the key and where its value starts.
_KEY_LINE = re.compile(r"^(?P<indent> *)(?:- +)?(?P<key>[^\s#'\"\[\]{}:][^:#]*?):(?:\s+(?P<value>.*))?$")
_SPECIAL_START = {"@": "@", "`": "`", "%": "%", "*": "*", "&": "&", "!": "!", "|": "|", ">": ">"}


@dataclass(frozen=True)
class YamlProblem:
    """A YAML parse error as one message: the 1-based line (of the text) and what to do."""

    line: int | None
    message: str


def explain_yaml_error(exc: Exception, text: str) -> YamlProblem:
    """The parser's words and, where the mistake is a known one, what to do, for `exc` raised
    parsing `text` (PyYAML's and ruamel.yaml's marked errors have the same fields)."""
    lines = text.split("\n")
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return YamlProblem(None, f"invalid YAML: {problem}")
    index = min(mark.line, len(lines) - 1)
    line = lines[index] if lines else ""
    advice = _advice(exc, problem, lines, index, mark.column)
    if advice is not None:
        index, words = advice
        return YamlProblem(index + 1, f"invalid YAML: {problem}; {words}")
    return YamlProblem(index + 1, f"invalid YAML: {problem}" + (
        "; a value with `: `, ` #` or a leading [ { ' \" @ * & ! % | > needs quotes around it"
        if _KEY_LINE.match(line) else ""))


def _advice(exc: Exception, problem: str, lines: list[str], index: int, column: int) -> tuple[int, str] | None:
    """(line index, advice) for a mistake people make, or None."""
    context_mark = getattr(exc, "context_mark", None)
    context = str(getattr(exc, "context", None) or "")
    line = lines[index]
    tab = _tab_in_indentation(lines, index)
    if tab is not None:
        return tab, ("this line is indented with a tab: YAML indents with spaces only; "
                     "replace the tab with spaces")
    if "'\\t'" in problem:
        return index, "a tab: YAML separates a key from its value with spaces only; replace the tab with a space"
    if "could not find expected ':'" in problem:
        above = _line_above(lines, index)
        if above is not None and ":" not in lines[above]:
            return above, (f"line {above + 1} is not a `key: value` line: add its key and a colon, or, if it goes "
                           "on from the line above, put that whole value in quotes")
    key = _KEY_LINE.match(line)
    if "mapping values are not allowed" in problem and key is not None:
        colon = len(key.group("indent")) + line[len(key.group("indent")):].index(":")
        if colon < column:  # a second `: ` on the line: it is in the value
            name = key.group("key").strip()
            return index, (f"the {name} has a colon followed by a space, which YAML reads as a new key: "
                           f"put the {name} in quotes: {name}: {_quoted(key.group('value') or '')}")
        above = _line_above(lines, index)
        if above is not None:
            return index, (f"line {index + 1} is indented more than line {above + 1} above it, so it reads as "
                           f"part of that line's value: line it up with line {above + 1}"
                           + (f" ({_naming(lines[above]).rstrip(', ')})" if _naming(lines[above]) else ""))
    if "expected <block end>" in problem and "<block" in problem.rsplit("found", 1)[-1]:
        return index, _indentation_advice(lines, index)
    if "expected <block end>" in problem and key is not None and key.group("value"):
        name, value = key.group("key").strip(), key.group("value")
        if value[0] in "'\"[{":
            closing = {"[": "]", "{": "}"}.get(value[0], value[0])
            meant = value.rstrip()
            if meant[-1:] == value[0] and value[0] in "'\"":  # 'It's fine': the quotes were meant around it all
                meant = meant[1:-1]
            return index, (f"the {name} starts with {value[0]}, so YAML ends it at the next {closing}, and more text "
                           f"follows: put the whole {name} in quotes: {name}: {_quoted(meant)}")
    if ("cannot start any token" in problem or "undefined alias" in problem
            or "scanning an alias" in context or "scanning an anchor" in context):
        if key is not None and key.group("value") and key.group("value")[0] in _SPECIAL_START:
            name, value = key.group("key").strip(), key.group("value")
            return index, (f"YAML gives a value starting with {value[0]} a meaning of its own: "
                           f"put the {name} in quotes: {name}: {_quoted(value)}")
    if context_mark is not None and ("flow sequence" in problem or "flow mapping" in problem
                                     or "expected ',' or" in problem):
        opened = min(context_mark.line, len(lines) - 1)
        return opened, (f"the {lines[opened][context_mark.column:context_mark.column + 1] or 'bracket'} "
                        f"opened on line {opened + 1} is never closed: close it, or put the value in quotes "
                        "if the bracket is part of the text")
    if context_mark is not None and "end of stream" in problem:
        opened = min(context_mark.line, len(lines) - 1)
        return opened, f"the quote opened on line {opened + 1} is never closed: add the closing quote"
    return None


def _tab_in_indentation(lines: list[str], index: int) -> int | None:
    """The index of the line at or above `index` indented with a tab (where the parser stopped
    or just above it), or None."""
    for candidate in (index, index - 1):
        if 0 <= candidate < len(lines) and "\t" in lines[candidate][: len(lines[candidate]) -
                                                                  len(lines[candidate].lstrip(" \t"))]:
            return candidate
    return None


def _line_above(lines: list[str], index: int) -> int | None:
    """The nearest line above `index` with something on it other than a comment."""
    for above in range(index - 1, -1, -1):
        if lines[above].strip() and not lines[above].lstrip().startswith("#"):
            return above
    return None


def _indentation_advice(lines: list[str], index: int) -> str:
    """Which lines the wrongly indented line `index` could line up with: the nearest above it
    indented more and the nearest indented less (the block it belongs to, or the one around)."""
    indent = _indent(lines[index])
    deeper = shallower = None
    for above in range(index - 1, -1, -1):
        text = lines[above]
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        if deeper is None and _indent(text) > indent:
            deeper = above
        if _indent(text) < indent:
            shallower = above
            break
    spaces = f"{indent} space{'s' if indent != 1 else ''}"
    choices = [f"line {above + 1} ({_naming(lines[above])}{_indent(lines[above])} spaces in)"
               for above in (deeper, shallower) if above is not None]
    return (f"line {index + 1} starts {spaces} in, which lines up with no line above it: "
            f"line it up with {' or '.join(choices) or 'the lines around it'}")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _naming(line: str) -> str:
    """"`from:`, ": the key of a line, to name it beside its number ("" for a line without one)."""
    key = _KEY_LINE.match(line)
    return f"`{key.group('key').strip()}:`, " if key else ""


def _quoted(value: str) -> str:
    """`value` in the quotes YAML needs around it: double quotes, or single when it holds a double one."""
    value = value.rstrip()
    if '"' not in value:
        return f'"{value}"'
    return "'" + value.replace("'", "''") + "'"
