"""Round-trip edits of a YAML file a person wrote: comments, key order and quoting are kept.

`load_document` reads a file with ruamel.yaml's round-trip loader; `save_document`
writes it back atomically (a reader sees the old file or the new one), in the
indentation the file already used. `edit_document` is both around a `with` block:

    with edit_document(path, ContentError) as issue:
        issue["articles"].append("03-the-river.md")

Any module that changes a file the editor keeps (issue.yaml, newsletter.yaml) goes
through here; `files/yamlfile.py` is the strict reader with line numbers for messages.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from newsletter.files.atomic import write_failure, write_text
from newsletter.errors import NewsletterError, where
from newsletter.files.yamlfile import explain_yaml_error, read_yaml_text


@dataclass(frozen=True)
class Indentation:
    """How a file indents: `mapping` under a key, a `- ` item's `offset` from its key."""

    mapping: int = 2
    offset: int = 2

    @property
    def sequence(self) -> int:
        return self.offset + 2


# The README's style for new files: `articles:` then `  - 01-editorial.md`.
DEFAULT_INDENTATION = Indentation()


def _yaml(indentation: Indentation = DEFAULT_INDENTATION) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long subject line the editor wrote on one line
    yaml.indent(mapping=indentation.mapping, sequence=indentation.sequence, offset=indentation.offset)
    return yaml


def detect_indentation(text: str) -> Indentation:
    """The indentation `text` uses, judged from its first nested mapping and sequence."""
    mapping = offset = None
    lines = text.splitlines()
    for above, below in zip(lines, lines[1:], strict=False):
        key = re.match(r"^( *)(?:- )?[^\s#-][^:#]*:\s*(?:#.*)?$", above)
        if not key:
            continue
        indent = len(key.group(1))
        item = re.match(r"^( *)- ", below)
        child = re.match(r"^( *)[^\s#-]", below)
        if item and offset is None and len(item.group(1)) >= indent:
            offset = len(item.group(1)) - indent
        elif child and mapping is None and len(child.group(1)) > indent:
            mapping = len(child.group(1)) - indent
    return Indentation(
        mapping=mapping or DEFAULT_INDENTATION.mapping,
        offset=DEFAULT_INDENTATION.offset if offset is None else offset,
    )


def parse_document(text: str, path: Path, error: type[NewsletterError]) -> CommentedMap:
    """Parse `text` (from `path`) round-trip; it must be a mapping (an empty text is an empty one)."""
    try:
        data = _yaml().load(text)
    except YAMLError as exc:
        problem = explain_yaml_error(exc, text)
        raise error(f"{where(path, problem.line)}: {problem.message}") from None
    if data is None:
        return CommentedMap()
    if not isinstance(data, CommentedMap):
        raise error(f"{where(path, 1)}: expected a mapping of `key: value` lines")
    return data


def load_document(path: Path, error: type[NewsletterError]) -> tuple[CommentedMap, Indentation]:
    """Read `path` for editing: its mapping and the indentation to write it back in."""
    text = read_yaml_text(path, error)
    return parse_document(text, path, error), detect_indentation(text)


def dump_document(data: CommentedMap, indentation: Indentation = DEFAULT_INDENTATION) -> str:
    """`data` as YAML text, comments and quoting as loaded."""
    out = io.StringIO()
    _yaml(indentation).dump(data, out)
    return out.getvalue()


def save_document(path: Path, data: CommentedMap, error: type[NewsletterError],
                  indentation: Indentation = DEFAULT_INDENTATION) -> Path:
    """Write `data` to `path` atomically; an OSError becomes `error` naming the file."""
    def cannot_write(target: Path, exc: OSError) -> Exception:
        return error(write_failure(target, exc))

    return write_text(path, dump_document(data, indentation), on_os_error=cannot_write)


@contextmanager
def edit_document(path: Path, error: type[NewsletterError]) -> Iterator[CommentedMap]:
    """The mapping of `path` to change in place; saved when the block ends without an error."""
    data, indentation = load_document(path, error)
    yield data
    save_document(path, data, error, indentation)


def set_value(data: CommentedMap, keys: tuple[str, ...], value: object, path: Path,
              error: type[NewsletterError]) -> None:
    """Set `keys` (mapping keys from the top: ("sendgrid", "asm_group_id")) to `value` in `data`.

    A missing mapping on the way is created; a new key goes at the end of its mapping,
    and comment lines that followed the mapping's last key stay after the mapping
    (ruamel.yaml attaches them to that key, so the new key would otherwise land below
    comments that were about what follows). `path` only names the file in messages.
    """
    node = data
    for depth, key in enumerate(keys[:-1]):
        child = node.get(key)
        if child is None:
            child = CommentedMap()
            node[key] = child
        if not isinstance(child, CommentedMap):
            raise error(f"{where(path)}: {'.'.join(keys[:depth + 1])} must be a mapping to hold {keys[-1]}")
        node = child
    previous_last = next(reversed(node), None) if keys[-1] not in node else None
    node[keys[-1]] = value
    if previous_last is not None:
        _keep_trailing_comment_last(node, previous_last, keys[-1])


def _keep_trailing_comment_last(node: CommentedMap, previous_last: object, added: object) -> None:
    """Move the comment lines after `previous_last` (not its end-of-line comment) to the added key."""
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
