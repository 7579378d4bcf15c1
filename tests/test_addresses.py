"""`normalize_address` gives email-validator's answer, including on its shortcut for plain addresses."""

from __future__ import annotations

import random

import pytest
from email_validator import EmailNotValidError, validate_email

from newsletter.subscribers.addresses import address_key, address_keys, normalize_address

TRICKY = [
    "Ada.Lovelace@Example.ORG", "reader+news@example.com", "a_b-c@sub.example.org", "x@example",
    "Postmaster@Example.org", "INFO@example.com", "a..b@example.org", ".a@example.org", "a.@example.org",
    "a@-example.org", "a@example-.org", "a@exa_mple.org", "a@example..org", "a@123.example.org",
    "a@example.123", "a@localhost", "a@test", "a@example.invalid", "a@[192.0.2.1]", "ö@example.org",
    "a@bücher.example", "a@XN--BCHER-KVA.example", "\"quoted\"@example.org", "a b@example.org",
    "a@b@example.org", "@example.org", "a@", "", "  spaced@example.org  ", "x" * 64 + "@example.org",
    "x" * 65 + "@example.org", "a@" + "b" * 63 + ".example.org", "a@" + "b" * 64 + ".example.org",
    "a@" + ".".join(["c" * 60] * 4) + ".org", "Ada <ada@example.org>", "a@example.org.",
    "USENET@example.com", "news@example.com", "a+@example.org", "-@example.org", "a@1.2.3.4",
]


def reference(text: str) -> str | None:
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def ours(text: str) -> str | None:
    try:
        return normalize_address(text)
    except EmailNotValidError:
        return None


@pytest.mark.parametrize("text", TRICKY)
def test_same_answer_as_email_validator(text: str) -> None:
    assert ours(text) == reference(text)


def test_same_answer_on_random_plain_looking_addresses() -> None:
    """Random strings over the shortcut's alphabet and its near misses, with a fixed seed."""
    rng = random.Random(20261125)

    def word(chars: str, longest: int) -> str:
        return "".join(rng.choice(chars) for _ in range(rng.randint(0, longest)))

    valid = 0
    for _ in range(3000):
        local = word("abcXYZ0189._+-!#'", 8)
        labels = [word("abcXYZ0189-_", 6) for _ in range(rng.randint(1, 3))]
        domain = ".".join(labels) + rng.choice([".org", ".com", ".Example", "", ".c0m", ".123", "."])
        text = f"{local}@{domain}"
        assert ours(text) == reference(text), text
        valid += reference(text) is not None
    assert valid > 300  # the sample must exercise the shortcut, not only the rejections


def test_every_stored_form_of_an_address_has_the_key_of_its_normalized_form() -> None:
    """`address_key` of what a list may hold equals that of what `normalize_address` makes of it."""
    for text in TRICKY + ["jose\u0301@example.org", "bob@xn--exmple-cua.com", "BOB@EXÄMPLE.COM"]:
        normalized = reference(text)
        if normalized is not None:
            assert address_key(text) == address_key(normalized), text


def test_address_keys_of_a_chunk_are_the_keys_one_by_one() -> None:
    """The C-loop shortcut of `address_keys` gives `address_key`'s answer, plain or not."""
    plain = ["Ada@Example.ORG", " reader@example.com "]
    mixed = plain + ["jose\u0301@EXAMPLE.org", "bob@XN--exmple-cua.com", "x@n--y.org", "nobody"]
    for chunk in (plain, mixed, []):
        assert address_keys(chunk) == [address_key(text) for text in chunk]
    assert address_key("jose\u0301@EXAMPLE.org") == "jos\u00e9@example.org"
    assert address_key("bob@XN--exmple-cua.com") == "bob@ex\u00e4mple.com"
