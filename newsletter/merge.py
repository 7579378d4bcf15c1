"""Merge fields: per-subscriber values in an email that is rendered only once.

The templates are rendered once per issue with a stand-in `subscriber` whose
fields render as tags, such as `[%html:first_name|friend%]` in the HTML part and
`[%text:first_name|friend%]` in the text part. At send time each recipient gets a
value per tag (SendGrid substitutions): HTML-escaped for `html` tags, as written
for `text` tags. Subscriber values are only ever substituted, never rendered as
templates, so nothing a subscriber typed can run.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from markupsafe import escape

Part = Literal["html", "text"]

TAG_PATTERN = re.compile(r"\[%(html|text):([^%|\]:]+)(?:\|([^%\]]*))?%\]")
_FORBIDDEN = set("%|]:[")

# The per-recipient field every email has: its unsubscribe link.
UNSUBSCRIBE_FIELD = "unsubscribe_url"


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Put between `[` and `%` in text of the issue that looks like a tag: the text reads the
# same, but neither SendGrid nor `fields_in` sees a tag in it.
WORD_JOINER = "\u2060"


def defuse(text: str) -> str:
    """`text` (an article, a title, the subject) with anything shaped like a merge tag made inert.

    Only the templates' `{{ subscriber.… }}` may make a live tag: article text that
    happens to read `[%html:email%]` would otherwise be filled with each recipient's
    address by SendGrid.
    """
    return text.replace("[%", "[" + WORD_JOINER + "%") if "[%" in text else text


class MergeFieldMisuse(Exception):
    """A template used a merge field in a way that needs its value at render time."""


def _tag(part: Part, field: str, fallback: str) -> str:
    # In the HTML part the fallback is HTML text like the rest of the document.
    shown = html.escape(fallback, quote=False) if part == "html" else fallback
    return f"[%{part}:{field}{'|' + shown if shown else ''}%]"


@dataclass(frozen=True)
class MergeField:
    """One tag found in a rendered part: which field, its fallback, and which part.

    `tag` is the tag exactly as it stands in the part, the key of its substitution.
    """

    part: Part
    field: str
    fallback: str = ""
    tag: str = ""

    def __post_init__(self) -> None:
        if not self.tag:
            object.__setattr__(self, "tag", _tag(self.part, self.field, self.fallback))

    def value_for(self, values: Mapping[str, str]) -> str:
        """The substitution for a recipient whose fields are `values`."""
        value = values.get(self.field) or self.fallback
        # A value that looks like a tag must not be expanded by a second pass.
        if "[%" in value:
            value = value.replace("[%", "[ %")
        # A NUL or another control character in a list cell (a paste, a bad export) is not
        # text anyone meant to send: dropped, line breaks and tabs kept.
        if _CONTROL.search(value):
            value = _CONTROL.sub("", value)
        # markupsafe's escape (C, already loaded with Jinja) is what a send calls a
        # million times; it escapes & < > " ' as html.escape does.
        return str(escape(value)) if self.part == "html" else value


    def filler(self) -> Callable[[str], str]:
        """`value_for` as a function of this field's value alone: what a send calls per recipient.

        Nearly every name and address is plain text that `value_for` gives back as
        it is; only the others go through it.
        """
        fallback, field, value_for = self.fallback, self.field, self.value_for

        def fill(value: str) -> str:
            value = value or fallback
            if PLAIN_VALUE.fullmatch(value):
                return value
            return value_for({field: value})

        return fill


# Text that `value_for` gives back unchanged in either part: no `[` (a tag opening), no
# control character (line breaks and tabs included, to be safe), nothing HTML escapes.
PLAIN_VALUE = re.compile(r"[^\[\x00-\x1f\x7f&<>\"']*")


class MergeTag:
    """What `{{ subscriber.first_name }}` renders to while the issue is rendered."""

    __slots__ = ("part", "field", "fallback")

    def __init__(self, part: Part, field: str, fallback: str = "") -> None:
        if not field or _FORBIDDEN & set(field) or _FORBIDDEN & set(fallback):
            raise MergeFieldMisuse(
                f"merge field {field!r} with fallback {fallback!r}: "
                "names and fallbacks may not contain % | : [ or ]"
            )
        self.part, self.field, self.fallback = part, field, fallback

    def __str__(self) -> str:
        return _tag(self.part, self.field, self.fallback)

    __html__ = __str__

    def __bool__(self) -> bool:
        raise MergeFieldMisuse(
            f"subscriber.{self.field} is filled per recipient when the issue is sent, so a "
            f"template cannot test it; write {{{{ subscriber.{self.field} | default('...') }}}}"
        )

    def with_fallback(self, fallback: str) -> MergeTag:
        return MergeTag(self.part, self.field, str(fallback))


class SubscriberFields:
    """The `subscriber` of a template: any field, as a merge tag for `part`."""

    def __init__(self, part: Part) -> None:
        self._part = part

    def __getattr__(self, field: str) -> MergeTag:
        if field.startswith("_"):
            raise AttributeError(field)
        return MergeTag(self._part, field)

    def __getitem__(self, field: str) -> MergeTag:
        return MergeTag(self._part, field)


# Addresses that URL-encoding leaves as they are (nearly all): no need to call quote().
URL_SAFE = re.compile(r"[A-Za-z0-9._~@-]+")


def unsubscribe_link(template: str, email: str) -> str:
    """`unsubscribe_url` of newsletter.yaml for one recipient: `{email}` URL-encoded.

    Called once per recipient of a send, hence the shortcut for plain addresses.
    """
    encoded = email if URL_SAFE.fullmatch(email) else quote(email, safe="@")
    return template.replace("{email}", encoded)


def fields_in(*documents: str) -> tuple[MergeField, ...]:
    """Every distinct merge field used in `documents`, in order of first use."""
    found: dict[str, MergeField] = {}
    for document in documents:
        for match in TAG_PATTERN.finditer(document):
            if match[0] not in found:
                found[match[0]] = _field(match)
    return tuple(found.values())


def _field(match: re.Match[str]) -> MergeField:
    part, fallback = match[1], match[3] or ""
    if part == "html":
        fallback = html.unescape(fallback)
    return MergeField(part, match[2], fallback, match[0])  # type: ignore[arg-type]


def broken_tags(document: str) -> list[str]:
    """Text that starts like a merge field but is not one any more, e.g. after `| upper`."""
    valid = {m.start() for m in TAG_PATTERN.finditer(document)}
    return [document[i:i + 40].split("%]")[0] + "%]" for i in (m.start() for m in re.finditer(r"\[%", document))
            if i not in valid]


def substitutions(fields: Iterable[MergeField], values: Mapping[str, str]) -> dict[str, str]:
    """The SendGrid `substitutions` of one recipient."""
    return {f.tag: f.value_for(values) for f in fields}


def fill(document: str, values: Mapping[str, str]) -> str:
    """`document` with its tags replaced, as one recipient will see it (previews, proofs)."""
    return TAG_PATTERN.sub(lambda m: _field(m).value_for(values), document)


# -- the merge fields a reader has ----------------------------------------------------------
#
# A merge field is a column of the list (first_name, a column an import added, …) or one of
# the computed fields below. Every provider's personalizer, the preview's sample, a
# `Subscriber`'s fields and `check`'s known names take them from here: a new computed field
# is one entry in COMPUTED_FIELDS.


@dataclass(slots=True)  # not frozen: made per recipient of a send, and a frozen one costs 3 times as much
class Reader:
    """What a computed field is computed from, for one reader of one message."""

    address: str  # the address the message goes to (trimmed), not the cell as typed
    unsubscribe_url: str  # their own link; "" where the send has none per reader (SendGrid's group, a dry run)
    cells: Mapping[str, str]  # their list row, by column name


@dataclass(frozen=True)
class ComputedField:
    """A merge field that is no column of the list as it stands: worked out per reader."""

    name: str
    description: str  # what a writer gets, for the documentation
    value: Callable[[Reader], str]


def _tags_text(reader: Reader) -> str:
    # A hand-edited cell may read `b; a;;b`: each tag once, trimmed, in order, as
    # subscribers.store's split_tags and join_tags read and write a cell (a test holds them equal).
    cell = reader.cells.get("tags", "")
    return ";".join(dict.fromkeys(tag.strip() for tag in cell.split(";") if tag.strip())) if cell else ""


ADDRESS_FIELD = ComputedField("email", "the address the email is sent to", lambda reader: reader.address)
UNSUBSCRIBE_LINK_FIELD = ComputedField(UNSUBSCRIBE_FIELD, "the reader's own unsubscribe link",
                                       lambda reader: reader.unsubscribe_url)
TAGS_FIELD = ComputedField("tags", "the reader's tags, separated by ;", _tags_text)

# By name. A computed field wins over a list column of the same name.
COMPUTED_FIELDS: dict[str, ComputedField] = {field.name: field for field in (
    ADDRESS_FIELD, UNSUBSCRIBE_LINK_FIELD, TAGS_FIELD)}


def known_fields(columns: Sequence[str]) -> tuple[str, ...]:
    """Every merge field a list with these columns fills: its columns, then the computed ones."""
    return tuple(dict.fromkeys((*columns, *COMPUTED_FIELDS)))


def values_for(reader: Reader) -> dict[str, str]:
    """Every merge field's value for one reader: the columns of their row, then the computed fields."""
    values = dict(reader.cells)
    values.update({name: field.value(reader) for name, field in COMPUTED_FIELDS.items()})
    return values
