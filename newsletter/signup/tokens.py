"""Signed links: who, which list, what for, and when, under a key derived from NEWSLETTER_SECRET.

A token is `<context>.<address>.<signature>`, which sits in a URL path as it is:
- the context is base64url (no padding) of compact JSON `[purpose, list, issued]` (issued in
  unix seconds): the same for every reader of one send, so a send encodes it once;
- the address is its UTF-8 in hex (one C call per reader, where base64url took four);
- the signature is keyed BLAKE2s, 128 bits in hex, over `<context>.` and the address's UTF-8,
  with a key derived from the secret for tokens only, so no other value made from the secret
  (the `/changes` bearer) can pass for a token. BLAKE2's keyed mode is a MAC (RFC 7693), the
  one Python's hashlib calls "a faster and simpler replacement for HMAC": a copy of the keyed
  state, an update and a digest cost a send about a third of what OpenSSL's HMAC-SHA256 did
  per reader (issue 19: signing must not slow the send measurably).

Tokens made before (`<payload>.<signature>`: base64url of `[purpose, address, list, issued]`,
HMAC-SHA256 cut to 128 bits in hex) are still honoured: their unsubscribe links are in emails
already sent, and an unsubscribe link works for ever. Signatures are compared in constant time.

A confirm token expires after 7 days (the pending sign-up is deleted then too). An
unsubscribe token never expires: an email is read years later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass

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
SIGNATURE_BYTES = 16  # 128 bits, as RFC 4868 cuts HMAC-SHA256: 32 hex digits, still unforgeable


def _b64(data: bytes) -> str:
    # binascii rather than base64.urlsafe_b64encode: a third of the time.
    return binascii.b2a_base64(data, newline=False).translate(_URL_SAFE).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _context(purpose: str, list_name: str, issued: int) -> str:
    if purpose not in PURPOSES:
        raise ValueError(purpose)
    return _b64(json.dumps([purpose, list_name, issued], separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


class Signer:
    """Makes and checks the tokens of one secret (its derived keys computed once)."""

    def __init__(self, secret: str) -> None:
        self._mac = hashlib.blake2b(key=_derived(secret, "newsletter signup token v2"), digest_size=SIGNATURE_BYTES)
        self._v1_key = _derived(secret, "newsletter signup token v1")  # the tokens of earlier versions

    def keyed(self, context: str) -> hashlib.blake2b:
        """The MAC with `<context>.` fed in: each token of that context is a copy of it and its address."""
        mac = self._mac.copy()
        mac.update(f"{context}.".encode("ascii"))
        return mac

    def sign(self, purpose: str, email: str, list_name: str, issued: int | None = None) -> str:
        context = _context(purpose, list_name, int(time.time()) if issued is None else issued)
        address = email.encode("utf-8")
        mac = self.keyed(context)
        mac.update(address)
        return f"{context}.{address.hex()}.{mac.hexdigest()}"

    def verify(self, token: str, purpose: str, now: float | None = None) -> Token:
        """The token's content, once its signature, purpose and age are right; else `BadToken`."""
        if not token.isascii():
            raise BadToken()
        parts = token.split(".")
        try:
            if len(parts) == 3:
                found, email, list_name, issued = self._content(*parts)
            elif len(parts) == 2:
                found, email, list_name, issued = self._earlier_content(*parts)
            else:
                raise BadToken()
        except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
            raise BadToken() from None  # signed by us yet unreadable: never made here
        if found != purpose or not isinstance(email, str) or not isinstance(list_name, str) \
                or not isinstance(issued, int):
            raise BadToken()
        now = time.time() if now is None else now
        if purpose == CONFIRM and now - issued > CONFIRM_LIFETIME:
            raise BadToken(expired=True)
        return Token(purpose, email, list_name, issued)

    def _content(self, context: str, address_hex: str, signature: str) -> list[object]:
        address = bytes.fromhex(address_hex)
        if address.hex() != address_hex:  # one spelling per token: no upper case, no spaces
            raise BadToken()
        mac = self.keyed(context)
        mac.update(address)
        if not hmac.compare_digest(mac.hexdigest(), signature):
            raise BadToken()
        found, list_name, issued = json.loads(_unb64(context).decode("utf-8"))
        return [found, address.decode("utf-8"), list_name, issued]

    def _earlier_content(self, payload: str, signature: str) -> list[object]:
        """A token of the versions before keyed BLAKE2s: `<payload>.<signature>`."""
        expected = hmac.new(self._v1_key, payload.encode("ascii"), hashlib.sha256).hexdigest()[:2 * SIGNATURE_BYTES]
        if not hmac.compare_digest(expected, signature):
            raise BadToken()
        content = json.loads(_unb64(payload).decode("utf-8"))
        if not isinstance(content, list) or len(content) != 4:
            raise BadToken()
        return content


class UnsubscribeLinks:
    """Each recipient's `<signup.url>/unsubscribe/<token>` for one send (one list, one issue time).

    Called once per recipient of a send, so everything common to the send's links (the
    context, the keyed MAC fed with it) is done once here; a link is then one encode, one
    hex, one copy of the MAC, an update and a digest. The tokens are `Signer.sign`'s, byte for byte.
    """

    def __init__(self, secret: str, signup_url: str, list_name: str, issued: int | None = None) -> None:
        context = _context(UNSUBSCRIBE, list_name, int(time.time()) if issued is None else issued)
        self.prefix = f"{signup_url}/unsubscribe/{context}."
        self._mac = Signer(secret).keyed(context)

    def __call__(self, email: str) -> str:
        address = email.encode("utf-8")
        mac = self._mac.copy()
        mac.update(address)
        return f"{self.prefix}{address.hex()}.{mac.hexdigest()}"


def changes_bearer(secret: str) -> str:
    """The bearer token `/changes` asks for: HMAC(secret, "changes"), so the secret itself never travels."""
    return _b64(_derived(secret, "newsletter signup changes v1"))


def bearer_matches(secret: str, header: str) -> bool:
    """Whether an `Authorization` header carries the changes bearer (compared in constant time)."""
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), changes_bearer(secret).encode())
