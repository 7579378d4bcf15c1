"""The bodies of POST /v3/mail/send: the issue serialized once, personalizations per batch.

Every request of a send carries the same subject, sender and content (tens of
kilobytes); only the personalizations differ. So everything but them is
serialized once, as the tail of the body, and each batch's personalizations are
spliced in front of it.
"""

from __future__ import annotations

import json
import re
import warnings
from json.encoder import encode_basestring_ascii as _string  # C; ASCII out, so bodies splice as bytes
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from newsletter import merge
from newsletter.config import Address, Settings
from newsletter.errors import SendError
from newsletter.headers import ONE_CLICK, ascii_url, header_text
from newsletter.sending.provider import OversizedRecipient, Row
from newsletter.providers.sendgrid.categories import message_categories
from newsletter.subscribers.store import COLUMNS, FIRST_NAME, LAST_NAME

if TYPE_CHECKING:
    from newsletter.render import RenderedEmail

Personalizer = Callable[[str, Row], str]  # (address as sent, canonical list row) -> JSON text

BATCH_SIZE = 1000  # SendGrid's limit of recipients per request
# SendGrid's limit per personalization, counted on the ASCII-escaped JSON; over it, a 400 for all 1,000.
SUBSTITUTIONS_MAX_BYTES = 10_000


# SendGrid's per-recipient unsubscribe link when an unsubscribe group (asm) is set.
ASM_UNSUBSCRIBE_URL = "<%asm_group_unsubscribe_raw_url%>"
# SendGrid rejects `;` and `,` in a recipient's name (and the whole request with it), besides
# what would break any header (`newsletter/headers.py`).
_NAME_UNSAFE = re.compile(r"[,;\x00-\x1f\x7f]+")
_SUBSTITUTIONS_KEY = ',"substitutions":'


def _compact(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_address(address: Address) -> dict[str, str]:
    """`from` or `reply_to` as SendGrid's JSON has it, the name cleaned for a header."""
    name = header_text(address.name)
    return {"email": address.email, "name": name} if name else {"email": address.email}


def display_name(first_name: str, last_name: str) -> str:
    """A name SendGrid accepts in `to`: without `,`, `;` or control characters."""
    return header_text(f"{first_name} {last_name}", _NAME_UNSAFE)


class RequestBuilder:
    """Builds the personalizations and bodies of one issue's requests."""

    batch_size = BATCH_SIZE

    def __init__(self, settings: Settings, email: RenderedEmail, issue_name: str, proof: bool = False,
                 dry_run: bool = False, unsubscribe_links: Callable[[str], str] | None = None) -> None:
        html, text = email.html, email.text
        self._unsubscribe_template: str | None = None
        # With `signup:`, each recipient's signed link to `newsletter serve` (it wins over the others).
        self._unsubscribe_links = unsubscribe_links
        body: dict[str, Any] = {}
        if unsubscribe_links is not None:
            pass
        elif settings.sendgrid.asm_group_id is not None:
            # SendGrid fills its own link per recipient and adds the one-click headers itself;
            # replaced here once for the issue rather than once per recipient.
            html, text = _asm_unsubscribe(html), _asm_unsubscribe(text)
            body["asm"] = {"group_id": settings.sendgrid.asm_group_id}
        elif settings.unsubscribe_url:
            self._unsubscribe_template = settings.unsubscribe_url
        elif dry_run:
            # A new publication can be tried before its unsubscribe group exists, as `check`
            # lets it be; the bodies then have an empty link, and a real send is refused.
            warnings.warn(f"{settings.config_path.name}: no way to unsubscribe yet: these bodies have an "
                          "empty unsubscribe link, and a real send is refused until you run "
                          "`newsletter doctor --create-group NAME` (or set unsubscribe_url)", stacklevel=2)
        else:
            raise SendError(
                f"{settings.config_path.name}: no way to unsubscribe: run `newsletter doctor --create-group NAME` "
                "(a SendGrid unsubscribe group), or set unsubscribe_url (with {email}), before sending")
        self.fields = merge.fields_in(text, html)
        body.update({
            "from": json_address(settings.sender),
            "subject": header_text(email.subject),  # a proof's with proof_prefix before it
            # text/plain first: SendGrid refuses any other order (RFC 1341, 7.2).
            "content": [{"type": "text/plain", "value": text}, {"type": "text/html", "value": html}],
            "custom_args": {"issue": issue_name},
        })
        if settings.reply_to is not None:
            body["reply_to"] = json_address(settings.reply_to)
        # The issue's own category too: `newsletter stats` reads its figures by it (a proof's
        # opens are the editors', so it gets a category of its own).
        body["categories"] = message_categories(settings.sendgrid.categories, issue_name, proof)
        self._head = b'{"personalizations":'
        self._body = body
        self._tail = b"," + _compact(body)[1:]
        self.content_bytes = len(self._tail)

    def schedule(self, send_at: int, batch_id: str | None) -> None:
        """Every body from now on is delivered at `send_at` (unix seconds), in batch `batch_id`.

        Message-level, so one scheduled send has one moment and one batch; a dry run has no
        batch id (it asks SendGrid for nothing).
        """
        scheduled = {**self._body, "send_at": send_at}
        if batch_id is not None:
            scheduled["batch_id"] = batch_id
        self._tail = b"," + _compact(scheduled)[1:]

    def unsubscribe_url(self, email: str) -> str | None:
        """This recipient's unsubscribe link when the publication has its own."""
        if self._unsubscribe_links is not None:
            return self._unsubscribe_links(email)
        if self._unsubscribe_template is None:
            return None
        return merge.unsubscribe_link(self._unsubscribe_template, email)

    def personalizer(self, extra_columns: tuple[str, ...] = ()) -> Personalizer:
        """How to write one recipient's personalization, as JSON text, from their list row.

        The row is canonical (`COLUMNS`, then `extra_columns`); the address is the one
        sent in `to`, not the row as typed. Values are substituted, never rendered.
        Everything that depends only on the issue and the list's columns is settled
        here, once: per recipient there is a lookup per merge field and a C-encoded
        string per value, and no object per row. It is the one part of a body made
        per recipient, a million times for a million subscribers.
        """
        # Where each field's value comes from: merge's registry (a computed field, else a column).
        names = (*COLUMNS, *extra_columns)
        columns = {name: index for index, name in enumerate(names)}
        groups: dict[tuple[str, str], list[merge.MergeField]] = {}
        for merge_field in self.fields:  # a field in both parts is looked up once
            groups.setdefault((merge_field.field, merge_field.fallback), []).append(merge_field)
        template = self._unsubscribe_template
        signed_link = self._unsubscribe_links
        # merge.unsubscribe_link, spelt out for the addresses URL-encoding leaves as they are
        # (nearly all): their link is the template's two halves, JSON-encoded once, around them.
        before, _, after = (template or "").partition("{email}")
        splices = template is not None and template.count("{email}") == 1
        link_before, link_after = _string(before)[1:-1], _string(after)[1:-1]
        unsafe_name, plain = _NAME_UNSAFE.search, merge.PLAIN_VALUE.fullmatch
        # A signed link is its prefix (signup.url) and a token of base64url and a dot: when the
        # prefix is plain too, the link is the same in JSON, in HTML and as typed (no encoding per reader).
        signed_prefix = getattr(signed_link, "prefix", None)
        signed_as_is = isinstance(signed_prefix, str) and bool(plain(signed_prefix)) and \
            _string(signed_prefix)[1:-1] == signed_prefix
        # Such an address has no character that JSON, a URL or HTML escapes, so in the link
        # it leaves the halves' plainness as it is.
        spliced_link_plain = bool(plain(before) and plain(after))
        # A header is ASCII: an accented unsubscribe_url or signup.url goes %-encoded in
        # List-Unsubscribe (the body keeps it as written). Settled once: a link in ASCII costs nothing more.
        header_as_link = (template or "").isascii() and (not isinstance(signed_prefix, str) or signed_prefix.isascii())
        address_as_is = merge.URL_SAFE.fullmatch
        plans = []
        for (name, fallback), fields in groups.items():
            computed = merge.COMPUTED_FIELDS.get(name)
            column = columns.get(name) if computed is None else None
            tags = [_string(f.tag) + ":" for f in fields]
            # `encoded.join(pieces)` is `tag1:encoded,tag2:encoded`: one C call for a plain value;
            # `value.join(quoted)` the same for a value JSON leaves as it is, quotes and all.
            pieces = [tags[0], *("," + tag for tag in tags[1:]), ""]
            quoted = [tags[0] + '"', *('",' + tag + '"' for tag in tags[1:]), '"']
            plans.append((column, computed, fallback, pieces, quoted,
                          list(zip(tags, [f.filler() for f in fields], strict=True))))

        def personalization(email: str, row: Row) -> str:
            first, last = row[FIRST_NAME], row[LAST_NAME]
            both = first + last
            # ASCII letters and digits (most names) need no escaping and nothing taken out:
            # str methods in C tell them, where a pattern would cost more than the rest.
            if both.isalnum() and both.isascii():
                encoded_name = f'"{first} {last}"' if first and last else f'"{both}"'
            else:
                name = f"{first} {last}".strip()
                if unsafe_name(name):
                    name = display_name(first, last)
                encoded_name = _string(name) if name else ""
            address_plain = address_as_is(email)
            encoded_email = f'"{email}"' if address_plain else _string(email)
            to = (f'{{"email":{encoded_email},"name":{encoded_name}}}' if encoded_name
                  else f'{{"email":{encoded_email}}}')
            url = link = headers = ""
            url_plain = False
            if signed_link is not None:
                url = signed_link(email)
                if signed_as_is:
                    link, url_plain = url, True
                else:
                    link, url_plain = _string(url)[1:-1], bool(plain(url))
                header_link = link if header_as_link else _string(ascii_url(url))[1:-1]
                headers = f',"headers":{{"List-Unsubscribe":"<{header_link}>","List-Unsubscribe-Post":"{ONE_CLICK}"}}'
            elif template is not None:
                if address_plain and splices:
                    link, url_plain = f"{link_before}{email}{link_after}", spliced_link_plain
                    if not url_plain:
                        url = before + email + after
                else:
                    url = merge.unsubscribe_link(template, email)
                    link = _string(url)[1:-1]
                    url_plain = bool(plain(url))
                header_link = link if header_as_link else _string(
                    ascii_url(merge.unsubscribe_link(template, email)))[1:-1]
                # `"<` and `>"` need no escaping around the link's JSON text.
                headers = f',"headers":{{"List-Unsubscribe":"<{header_link}>","List-Unsubscribe-Post":"{ONE_CLICK}"}}'
            if not plans:
                return f'{{"to":[{to}]{headers}}}'
            parts = []
            reader = None
            for column, computed, fallback, pieces, quoted, fields in plans:
                if column is not None:
                    value = row[column] or fallback
                elif computed is merge.UNSUBSCRIBE_LINK_FIELD:  # these two (in every email) as their fields give them, without a Reader
                    if url_plain:  # the same, escaped or not: encoded once for both parts
                        parts.append(link.join(quoted))
                        continue
                    value = url or fallback
                elif computed is merge.ADDRESS_FIELD:
                    if address_plain:
                        parts.append(email.join(quoted))
                        continue
                    value = email or fallback
                elif computed is not None:
                    # A plain link is in `link` alone (it is the same in JSON).
                    reader = reader or merge.Reader(email, url or link, dict(zip(names, row, strict=False)))
                    value = computed.value(reader) or fallback
                else:
                    value = fallback
                if value.isalnum() and value.isascii():
                    parts.append(value.join(quoted))
                elif plain(value):  # the same, escaped or not: encoded once for both parts
                    parts.append(_string(value).join(pieces))
                else:
                    parts.append(",".join([tag + _string(fill(value)) for tag, fill in fields]))
            # What merge.substitutions() gives, without encoding each tag per recipient.
            substitutions = ",".join(parts)
            # SendGrid does not say how it counts, so the largest form counts: the object as
            # ASCII-escaped JSON, which is what this text is (é is `\u00e9`, 6 bytes, not 2),
            # with its braces.
            if len(substitutions) + 2 > SUBSTITUTIONS_MAX_BYTES:
                raise OversizedRecipient(email)
            return f'{{"to":[{to}]{headers}{_SUBSTITUTIONS_KEY}{{{substitutions}}}}}'

        return personalization

    def body(self, personalizations: list[str]) -> bytes:
        """The whole request body: these personalizations spliced before the issue's content."""
        return b"".join((self._head, b"[", ",".join(personalizations).encode("ascii"), b"]", self._tail))


def _asm_unsubscribe(document: str) -> str:
    return merge.TAG_PATTERN.sub(
        lambda m: ASM_UNSUBSCRIBE_URL if m[2] == merge.UNSUBSCRIBE_FIELD else m[0], document)
