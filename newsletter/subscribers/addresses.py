"""Checking an address and putting it in the form lists store (trimmed, domain lower-cased).

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
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

try:  # RFC 2142 names email-validator lower-cases ("Postmaster@" → "postmaster@").
    from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES
    _SHORTCUT = True
except ImportError:  # a later email-validator moved it: every address gets the full check
    CASE_INSENSITIVE_MAILBOX_NAMES = []
    _SHORTCUT = False

__all__ = ["EmailNotValidError", "normalize_address"]

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
