"""Signed links: who, which list, what for, and when, under an HMAC of NEWSLETTER_SECRET.

A token is `<payload>.<signature>`, both base64url without padding, so it sits in a URL
path as it is. The payload is compact JSON `[purpose, address, list, issued]` (issued in
unix seconds); the signature is HMAC-SHA256 over the payload's text with a key derived
from the secret for tokens only, so no other value made from the secret (the `/changes`
bearer) can pass for a token. Signatures are compared in constant time.

A confirm token expires after 7 days (the pending sign-up is deleted then too). An
unsubscribe token never expires: an email is read years later.
"""

from __future__ import annotations

import base64
import binascii
from binascii import b2a_base64
import hashlib
import hmac
import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any

from newsletter.errors import ConfigError

SECRET_VARIABLE = "NEWSLETTER_SECRET"
MIN_SECRET_LENGTH = 16
CONFIRM = "confirm"
UNSUBSCRIBE = "unsubscribe"
PURPOSES = (CONFIRM, UNSUBSCRIBE)
CONFIRM_LIFETIME = 7 * 24 * 3600  # seconds


def newsletter_secret() -> str:
    """NEWSLETTER_SECRET, from the environment only; its value appears in no message."""
    secret = os.environ.get(SECRET_VARIABLE, "").strip()
    if not secret:
        raise ConfigError(f"{SECRET_VARIABLE} is not set: export the same long random value on the server and "
                          "wherever you send and sync (for instance `openssl rand -hex 32`); it is read from "
                          "the environment only")
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(f"{SECRET_VARIABLE} is shorter than {MIN_SECRET_LENGTH} characters: anyone could guess "
                          "it and forge links; export a long random value (`openssl rand -hex 32`)")
    return secret


class BadToken(Exception):
    """A token that is not ours, was altered, is for something else, or has expired."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


@dataclass(frozen=True)
class Token:
    purpose: str
    email: str
    list_name: str
    issued: int  # unix seconds


def _derived(secret: str, use: str) -> bytes:
    return hmac.new(secret.encode(), use.encode(), hashlib.sha256).digest()


_URL_SAFE = bytes.maketrans(b"+/", b"-_")
# HMAC-SHA256 cut to 128 bits (as RFC 4868 does), in hex: shorter links, still unforgeable, and
# hexdigest is one C call where base64 takes three (once per reader of a send).
SIGNATURE_CHARS = 32


def _b64(data: bytes) -> str:
    # binascii rather than base64.urlsafe_b64encode: a third of the time, once per reader of a send.
    return binascii.b2a_base64(data, newline=False).translate(_URL_SAFE).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac_of(key: bytes) -> Any:
    """An HMAC-SHA256 of `key` to `copy()` per token: OpenSSL's own object where there is one
    (its copy, update and digest are C calls), else the standard library's."""
    try:
        import _hashlib

        return _hashlib.hmac_new(key, digestmod="sha256")
    except (ImportError, AttributeError, ValueError):  # a Python without OpenSSL's HMAC
        return hmac.new(key, digestmod=hashlib.sha256)


class Signer:
    """Makes and checks the tokens of one secret (its derived key computed once)."""

    def __init__(self, secret: str) -> None:
        self._mac = _mac_of(_derived(secret, "newsletter signup token v1"))

    def _signature(self, payload: str) -> str:
        mac = self._mac.copy()
        mac.update(payload.encode("ascii"))
        return str(mac.hexdigest()[:SIGNATURE_CHARS])

    def sign(self, purpose: str, email: str, list_name: str, issued: int | None = None) -> str:
        if purpose not in PURPOSES:
            raise ValueError(purpose)
        stamp = int(time.time()) if issued is None else issued
        payload = _b64(json.dumps([purpose, email, list_name, stamp], separators=(",", ":"),
                                  ensure_ascii=False).encode("utf-8"))
        return f"{payload}.{self._signature(payload)}"

    def verify(self, token: str, purpose: str, now: float | None = None) -> Token:
        """The token's content, once its signature, purpose and age are right; else `BadToken`."""
        payload, dot, signature = token.partition(".")
        if not dot or not payload.isascii() or not signature.isascii():
            raise BadToken()
        if not hmac.compare_digest(self._signature(payload), signature):
            raise BadToken()
        try:
            found, email, list_name, issued = json.loads(_unb64(payload).decode("utf-8"))
        except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
            raise BadToken() from None  # signed by us yet unreadable: never made here
        if found != purpose or not isinstance(email, str) or not isinstance(list_name, str) \
                or not isinstance(issued, int):
            raise BadToken()
        now = time.time() if now is None else now
        if purpose == CONFIRM and now - issued > CONFIRM_LIFETIME:
            raise BadToken(expired=True)
        return Token(purpose, email, list_name, issued)


# List names JSON writes as they are: a send's payload is spliced around the address, not encoded.
_JSON_AS_IS = re.compile(r"[A-Za-z0-9._~@+!#$%&'*/=?^`{|}-]+")


class UnsubscribeLinks:
    """Each recipient's `<signup.url>/unsubscribe/<token>` for one send (one list, one issue time).

    Called once per recipient of a send, so the work common to every link (the key's
    HMAC set-up, the payload's ends) is done once here; a link is then one JSON splice,
    two base64s and one copy of the HMAC. The tokens are `Signer.sign`'s, byte for byte.
    """

    def __init__(self, secret: str, signup_url: str, list_name: str, issued: int | None = None) -> None:
        self._signer = Signer(secret)
        self._list = list_name
        self._issued = int(time.time()) if issued is None else issued
        self._tail = f'","{list_name}",{self._issued}]' if _JSON_AS_IS.fullmatch(list_name) else None
        self.prefix = f"{signup_url}/unsubscribe/"
        self._mac = self._signer._mac

    def __call__(self, email: str) -> str:
        # An ASCII address without a quote, backslash or control character goes into JSON as it is
        # (str methods in C; a pattern costs as much as the rest).
        if self._tail is None or not (email.isascii() and email.isprintable()) or '"' in email or "\\" in email:
            return self.prefix + self._signer.sign(UNSUBSCRIBE, email, self._list, self._issued)
        # Signer.sign and _signature spelt out in bytes: no frame, no str round trip per reader.
        payload = b2a_base64(f'["unsubscribe","{email}{self._tail}'.encode(), newline=False
                             ).translate(_URL_SAFE).rstrip(b"=")
        mac = self._mac.copy()
        mac.update(payload)
        return f"{self.prefix}{payload.decode()}.{mac.hexdigest()[:SIGNATURE_CHARS]}"


def changes_bearer(secret: str) -> str:
    """The bearer token `/changes` asks for: HMAC(secret, "changes"), so the secret itself never travels."""
    return _b64(_derived(secret, "newsletter signup changes v1"))


def bearer_matches(secret: str, header: str) -> bool:
    """Whether an `Authorization` header carries the changes bearer (compared in constant time)."""
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), changes_bearer(secret).encode())
