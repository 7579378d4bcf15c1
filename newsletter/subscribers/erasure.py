"""Erased addresses: the keyed hash that stands for an address once it is erased, and the register.

`newsletter subscribers delete` erases an address everywhere (newsletter.rights). Two things
must still hold afterwards, and neither may keep the address itself:

- exactly-once: a ledger row of the erased address becomes `erased:<hash>`, so a later
  send of that issue (if the person subscribes again) finds it has the issue already;
- no quiet return: `sent/erased.csv` holds the hash and the date of each erasure, so an
  import of an old spreadsheet (or an `add`) that holds the address is refused, named,
  unless `--resubscribe`.

The hash is HMAC-SHA256 of the address's `address_key` under a random key of the
publication, `sent/erasure.key` (32 bytes, made at the first erasure, mode 600, never
printed). A plain hash of an address can be reversed by hashing every address of a
leaked list; a keyed one cannot without the key. A random key rather than one derived
from `NEWSLETTER_SECRET`: that secret may be absent, or rotated, and a changed key would
silently make every erased address new again. Both files live in `sent/`, beside the
ledgers the hashes are in, so a backup of `sent/` keeps the key with what it unlocks.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from newsletter.files.atomic import atomic_file
from newsletter.config import Settings
from newsletter.errors import SubscriberError, where
from newsletter.files.locking import FileLock
from newsletter.subscribers.addresses import address_key

# sending/ledger.SENT_DIR, spelled out: subscribers/ sits below sending/ and does not import it.
ERASURE_DIR = "sent"
KEY_FILE = "erasure.key"
REGISTER_FILE = "erased.csv"
REGISTER_LOCK = "erased.lock"
TOKEN_PREFIX = "erased:"  # how an erased recipient reads in a ledger: never an address (no @)
REGISTER_HEADER = ("hash", "erased_on")


def key_path(settings: Settings) -> Path:
    return settings.root / ERASURE_DIR / KEY_FILE


def register_path(settings: Settings) -> Path:
    return settings.root / ERASURE_DIR / REGISTER_FILE


@dataclass(frozen=True)
class Hasher:
    """Turns an address into its keyed hash (`token`), as the ledgers and the register hold it."""

    key: bytes

    def digest(self, address: str) -> str:
        return hmac.new(self.key, address_key(address).encode(), hashlib.sha256).hexdigest()

    def token(self, address: str) -> str:
        """What stands for `address` in a ledger once it is erased."""
        return TOKEN_PREFIX + self.digest(address)


def load_hasher(settings: Settings) -> Hasher | None:
    """The publication's hasher, or None when nothing was ever erased (no key yet)."""
    path = key_path(settings)
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        if register_path(settings).exists():
            raise SubscriberError(f"{where(register_path(settings))} lists erased addresses but {where(path)} is "
                                  "missing: restore it from your backup of sent/ (without it no erased address "
                                  "is recognised)") from None
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise SubscriberError(f"{where(path)}: cannot read the erasure key ({exc}); restore it from your backup "
                              "of sent/") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise SubscriberError(f"{where(path)}: not an erasure key (64 hex digits); restore it from your backup "
                              "of sent/")
    return Hasher(key)


def create_hasher(settings: Settings) -> Hasher:
    """The publication's hasher, making its key the first time (never over an existing one)."""
    existing = load_hasher(settings)
    if existing is not None:
        return existing
    path = key_path(settings)
    key = secrets.token_bytes(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another erasure made it a moment ago: use that one
        hasher = load_hasher(settings)
        assert hasher is not None
        return hasher
    except OSError as exc:
        raise SubscriberError(f"{where(path)}: cannot create the erasure key ({exc.strerror or exc})") from None
    try:
        os.write(fd, key.hex().encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return Hasher(key)


def read_register(settings: Settings) -> dict[str, str]:
    """Each erased address's hash → the date it was erased (YYYY-MM-DD)."""
    path = register_path(settings)
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return {row["hash"]: row.get("erased_on") or "" for row in csv.DictReader(handle) if row.get("hash")}
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, csv.Error, KeyError) as exc:
        raise SubscriberError(f"{where(path)}: cannot read the register of erased addresses ({exc}); restore it "
                              "from your backup of sent/") from None


@dataclass(frozen=True)
class Erased:
    """The erased addresses: `erased_on(address)` is the date one was erased, or None."""

    hasher: Hasher | None
    register: dict[str, str]

    def erased_on(self, address: str) -> str | None:
        if self.hasher is None or not self.register:
            return None
        return self.register.get(self.hasher.digest(address))

    def refusal(self, address: str) -> str:
        """Why `address` is not added back: it was erased (the caller knows it was)."""
        return (f"{address.strip()} was erased on {self.erased_on(address)} at their request; left out "
                "(use --resubscribe if they asked to subscribe again)")


def erased_addresses(settings: Settings) -> Erased:
    """The register of erased addresses, read once (empty, and free, when nothing was ever erased)."""
    hasher = load_hasher(settings)
    return Erased(hasher, read_register(settings) if hasher is not None else {})


def erased_lookup(settings: Settings, known: dict[str, str]) -> Hasher | None:
    """The hasher to look up erased recipients by, when the ledger states `known` hold any; else None.

    A send asks once: a publication that never erased anyone (no key) costs a stat(), and
    a ledger without erased rows no hashing.
    """
    hasher = load_hasher(settings)
    if hasher is None or not any(key.startswith(TOKEN_PREFIX) for key in known):
        return None
    return hasher


def _edit_register(settings: Settings, hasher: Hasher, add: Iterable[str] = (),
                   drop: Iterable[str] = ()) -> dict[str, str]:
    """Add (dated today) or drop addresses, under the register's lock, written atomically; the register
    as it now stands (hash: date)."""
    path = register_path(settings)
    lock = FileLock(path.with_name(REGISTER_LOCK))
    try:
        lock.acquire()
    except OSError as exc:
        raise SubscriberError(f"{where(lock.path)}: cannot write its lock file ({exc.strerror or exc})") from None
    try:
        register = read_register(settings)
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        before = dict(register)
        for address in add:
            register.setdefault(hasher.digest(address), today)
        for address in drop:
            register.pop(hasher.digest(address), None)
        if register == before:
            return register

        def private(temporary: Path) -> None:
            os.chmod(temporary, 0o600)

        with atomic_file(path, before_replace=private) as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(REGISTER_HEADER)
            writer.writerows(sorted(register.items()))
        return register
    finally:
        lock.release()


def record_erasure(settings: Settings, hasher: Hasher, address: str) -> str:
    """Note `address` as erased (today, unless it was before); the date it stands as erased since."""
    return _edit_register(settings, hasher, add=[address]).get(hasher.digest(address), "")


def forget_erasure(settings: Settings, addresses: Iterable[str]) -> None:
    """They subscribed again (`--resubscribe`): their addresses are no longer refused."""
    wanted = list(addresses)
    hasher = load_hasher(settings)
    if hasher is not None and wanted:
        _edit_register(settings, hasher, drop=wanted)
