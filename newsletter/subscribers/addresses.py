"""The address identity (`address_key`), and checking an address (`normalize_address`).

`address_key` is what decides that two addresses are one: every comparison of addresses
(a list's rows, an import, `remove`, `sync`, the send and its ledger) goes through it, so
an address typed exactly as a list holds it is always found. Its rules:

- Unicode NFC, so `josé` typed with a combining accent is the `josé` of the list;
- the domain in Unicode (IDNA 2008: `xn--exmple-cua.com` is `exämple.com`), lower-cased;
- the local part lower-cased, as lists have always compared it (mailbox providers treat
  `Ann@` and `ann@` as one reader, and a second copy is worse than a merged row).

`normalize_address` puts an address in the form lists store (trimmed, NFC, domain
lower-cased and in Unicode), or says what is wrong with it.

email-validator decides (syntax only, no DNS look-ups). At a million imported rows its
full check costs most of an import, nearly all of it in checking the domain, which a
list repeats endlessly (example.org, gmail.com, ...). So an address of the plainest
shape (ASCII letters, digits, `_ + -` and single dots before the `@`) has only its
domain checked by email-validator, once per domain; every other address gets the full
check. For the plain shape the two give the same answer; tests/test_addresses.py holds
them to it.
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from functools import lru_cache
from itertools import compress, islice
from operator import eq

import idna
from email_validator import EmailNotValidError, validate_email

try:  # RFC 2142 names email-validator lower-cases ("Postmaster@" → "postmaster@").
    from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES
    _SHORTCUT = True
except ImportError:  # a later email-validator moved it: every address gets the full check
    CASE_INSENSITIVE_MAILBOX_NAMES = []
    _SHORTCUT = False

__all__ = ["EmailNotValidError", "RepeatFinder", "address_key", "normalize_address"]

_PLAIN = re.compile(r"([A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_LOWERED_NAMES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


@lru_cache(maxsize=100_000)
def _checked_domain(domain: str) -> str:
    """The normalized domain, checked by email-validator (raises for a bad one; not cached then)."""
    return validate_email(f"x@{domain}", check_deliverability=False).domain


def normalize_address(text: str) -> str:
    """`text` as lists store it, or EmailNotValidError saying what is wrong with it."""
    text = text.strip()
    plain = _PLAIN.fullmatch(text) if _SHORTCUT else None
    if plain and len(plain[1]) <= 64 and len(text) <= 254 and plain[1].lower() not in _LOWERED_NAMES:
        try:
            return f"{plain[1]}@{_checked_domain(plain[2])}"
        except EmailNotValidError:
            pass  # the full check below says why, in its own words
    return validate_email(text, check_deliverability=False).normalized


def address_key(address: str) -> str:
    """What two addresses are compared by (see the module docstring); never raises.

    Called once per row of every list read for a comparison, so the usual address
    (ASCII, no `xn--` label) takes one `lower()`; for it the rules give exactly that.
    """
    lowered = address.strip().lower()
    if lowered.isascii() and "xn--" not in lowered:
        return lowered
    local, at, domain = unicodedata.normalize("NFC", address.strip()).rpartition("@")
    if not at:
        return unicodedata.normalize("NFC", lowered)
    return f"{local.lower()}@{_unicode_domain(domain)}"


def address_keys(addresses: list[str]) -> list[str]:
    """`address_key` of each address, in C loops when all are plain (ASCII, no `xn--`)."""
    lowered = list(map(str.lower, map(str.strip, addresses)))
    together = "".join(lowered)
    if together.isascii() and "xn--" not in together:
        return lowered
    return [key if key.isascii() and "xn--" not in key else address_key(address)
            for key, address in zip(lowered, addresses, strict=True)]


@lru_cache(maxsize=10_000)
def _unicode_domain(domain: str) -> str:
    """`domain` in Unicode, lower-cased, NFC; a label that is not valid punycode stays as written."""
    labels = []
    for label in domain.lower().split("."):
        if label.startswith("xn--"):
            try:
                label = idna.decode(label)
            except (idna.IDNAError, UnicodeError, ValueError):
                pass
        labels.append(label)
    return unicodedata.normalize("NFC", ".".join(labels).lower())


_PARTS = 8  # ranges of hash values RepeatFinder sorts one at a time
_BOUNDS = tuple(-(2**63) + i * (2**64 // _PARTS) for i in range(1, _PARTS))


class RepeatFinder:
    """Finds the addresses a list holds more than once, in 8 bytes a row.

    A first reading gives it every row's address (`add_all`, a chunk of rows at a time):
    only a 64-bit hash of each key is kept. Equal hashes, found by sorting, are suspects
    (a list without repeats usually has none); `repeats`, a second reading needed only
    then, compares the keys themselves.

    Sorting makes a Python int of every hash, 40 bytes each: so the hashes are kept in
    eight arrays by range of value and sorted one range at a time. Each chunk arrives
    sorted (then cut at the range bounds), so the final sorts only merge sorted runs.
    """

    def __init__(self) -> None:
        self._hashes = [array("q") for _ in range(_PARTS)]

    def add_all(self, addresses: list[str]) -> None:
        """Note the addresses of some rows (a few thousand at a time: the loops stay in C)."""
        digests = sorted(map(hash, address_keys(addresses)))
        start = 0
        for part, bound in zip(self._hashes, (*_BOUNDS, None), strict=True):
            end = len(digests) if bound is None else bisect_left(digests, bound, start)
            part.extend(digests[start:end])
            start = end

    def suspects(self) -> set[int]:
        """The hashes seen more than once (usually none)."""
        found: set[int] = set()
        for part in self._hashes:
            ordered = sorted(part)
            found.update(compress(ordered, map(eq, ordered, islice(ordered, 1, None))))
        return found

    @staticmethod
    def repeats(rows: Iterable[tuple[int, str]], suspects: set[int]) -> list[tuple[int, int, str]]:
        """(row, earlier row, address as written) of each row whose address an earlier row has."""
        first: dict[str, int] = {}
        found: list[tuple[int, int, str]] = []
        for number, address in rows:
            key = address_key(address)
            if hash(key) not in suspects:
                continue
            earlier = first.setdefault(key, number)
            if earlier != number:
                found.append((number, earlier, address))
        return found

