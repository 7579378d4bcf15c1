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
    keys: list[tuple[yaml.Node, list[tuple[yaml.Node, yaml.Node]]]] = []
    # One pass over the text: the nodes (for their lines) are then built into the data, as
    # yaml.load builds them; composing and loading apart read every file twice. The keys are
    # noted before building, which folds `<<:` merges into the nodes.
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if isinstance(node, yaml.MappingNode):
            keys = [(key, list(value.value) if isinstance(value, yaml.MappingNode) else [])
                    for key, value in node.value]
        data = loader.construct_document(node) if node is not None else None
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
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(f"{where(path, 1 + line_offset)}: expected a mapping of `key: value` lines")
    lines: dict[str, int] = {}
    for key_node, sub_keys in keys:
        line = key_node.start_mark.line + 1 + line_offset
        if str(key_node.value) in lines:  # YAML keeps the last silently; the first was meant too
            warnings.warn(f"{where(path, line)}: {key_node.value!r} is given twice (also on line "
                          f"{lines[str(key_node.value)]}): this later one is used", stacklevel=2)
        lines[str(key_node.value)] = line
        for sub_node, _ in sub_keys:  # `from: {email: ...}`, `sendgrid:` settings
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
# What YAML reads as more than text at the start of a plain value: a reserved character, an
# alias or anchor, a tag, a block scalar.
_SPECIAL_START = "@`%*&!|>"


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


@dataclass(frozen=True)
class _Mistake:
    """Where a parser stopped: its words, the text's lines, the line (0-based) and column."""

    exc: Exception
    problem: str
    lines: list[str]
    index: int
    column: int

    @property
    def key(self) -> re.Match[str] | None:
        return _KEY_LINE.match(self.lines[self.index])


def _advice(exc: Exception, problem: str, lines: list[str], index: int, column: int) -> tuple[int, str] | None:
    """(line index, advice) for a mistake people make, or None."""
    mistake = _Mistake(exc, problem, lines, index, column)
    for advise in (_tab_advice, _no_colon_advice, _colon_advice, _indentation_advice, _closing_quote_advice,
                   _special_start_advice, _unclosed_advice):
        advice = advise(mistake)
        if advice is not None:
            return advice
    return None


def _tab_advice(mistake: _Mistake) -> tuple[int, str] | None:
    tab = _tab_in_indentation(mistake.lines, mistake.index)
    if tab is not None:
        return tab, "this line is indented with a tab: YAML indents with spaces only; replace the tab with spaces"
    if "'\\t'" in mistake.problem:
        return mistake.index, ("a tab: YAML separates a key from its value with spaces only; "
                               "replace the tab with a space")
    return None


def _no_colon_advice(mistake: _Mistake) -> tuple[int, str] | None:
    """A line of text with no `key:` among `key: value` lines (a value's second line, unindented)."""
    if "could not find expected ':'" not in mistake.problem:
        return None
    above = _line_above(mistake.lines, mistake.index)
    if above is None or ":" in mistake.lines[above]:
        return None
    return above, (f"line {above + 1} is not a `key: value` line: add its key and a colon, or, if it goes "
                   "on from the line above, put that whole value in quotes")


def _colon_advice(mistake: _Mistake) -> tuple[int, str] | None:
    """`title: Notes: winter` (a colon in a value), or a `key:` line indented under a value."""
    key, line, index = mistake.key, mistake.lines[mistake.index], mistake.index
    if "mapping values are not allowed" not in mistake.problem or key is None:
        return None
    colon = len(key.group("indent")) + line[len(key.group("indent")):].index(":")
    if colon < mistake.column:  # a second `: ` on the line: it is in the value
        name = key.group("key").strip()
        return index, (f"the {name} has a colon followed by a space, which YAML reads as a new key: "
                       f"put the {name} in quotes: {name}: {_quoted(key.group('value') or '')}")
    above = _line_above(mistake.lines, index)
    if above is None:
        return None
    named = _naming(mistake.lines[above]).rstrip(", ")
    return index, (f"line {index + 1} is indented more than line {above + 1} above it, so it reads as part of "
                   f"that line's value: line it up with line {above + 1}" + (f" ({named})" if named else ""))


def _indentation_advice(mistake: _Mistake) -> tuple[int, str] | None:
    """A line indented to no level open above it: the lines it could line up with, the nearest
    above it indented more and the nearest indented less (the block it belongs to, or the one around)."""
    if "expected <block end>" not in mistake.problem or "<block" not in mistake.problem.rsplit("found", 1)[-1]:
        return None
    lines, index = mistake.lines, mistake.index
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
    choices = [f"line {above + 1} ({_naming(lines[above])}{_indent(lines[above])} spaces in)"
               for above in (deeper, shallower) if above is not None]
    return index, (f"line {index + 1} starts {indent} space{'s' if indent != 1 else ''} in, which lines up with "
                   f"no line above it: line it up with {' or '.join(choices) or 'the lines around it'}")


def _closing_quote_advice(mistake: _Mistake) -> tuple[int, str] | None:
    """`subject: 'It's fine'` or `title: [Draft] notes`: the value ended early, more text follows."""
    key = mistake.key
    if "expected <block end>" not in mistake.problem or key is None or not key.group("value"):
        return None
    name, value = key.group("key").strip(), key.group("value")
    if value[0] not in "'\"[{":
        return None
    closing = {"[": "]", "{": "}"}.get(value[0], value[0])
    meant = value.rstrip()
    if meant[-1:] == value[0] and value[0] in "'\"":  # 'It's fine': the quotes were meant around it all
        meant = meant[1:-1]
    return mistake.index, (f"the {name} starts with {value[0]}, so YAML ends it at the next {closing}, and more "
                           f"text follows: put the whole {name} in quotes: {name}: {_quoted(meant)}")


def _special_start_advice(mistake: _Mistake) -> tuple[int, str] | None:
    """`title: @home`, `title: *bold*`: characters YAML gives a meaning at the start of a value."""
    context = str(getattr(mistake.exc, "context", None) or "")
    if not ("cannot start any token" in mistake.problem or "undefined alias" in mistake.problem
            or "scanning an alias" in context or "scanning an anchor" in context):
        return None
    key = mistake.key
    if key is None or not key.group("value") or key.group("value")[0] not in _SPECIAL_START:
        return None
    name, value = key.group("key").strip(), key.group("value")
    return mistake.index, (f"YAML gives a value starting with {value[0]} a meaning of its own: "
                           f"put the {name} in quotes: {name}: {_quoted(value)}")


def _unclosed_advice(mistake: _Mistake) -> tuple[int, str] | None:
    """A `[`, `{` or quote never closed: named at the line where it opens."""
    opened_at = getattr(mistake.exc, "context_mark", None)
    if opened_at is None:
        return None
    opened = min(opened_at.line, len(mistake.lines) - 1)
    problem = mistake.problem
    if "flow sequence" in problem or "flow mapping" in problem or "expected ',' or" in problem:
        bracket = mistake.lines[opened][opened_at.column:opened_at.column + 1] or "bracket"
        return opened, (f"the {bracket} opened on line {opened + 1} is never closed: close it, or put the value "
                        "in quotes if the bracket is part of the text")
    if "end of stream" in problem:
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
