"""Settings still at the domains reserved for examples: what `init` writes, before it is edited.

RFC 2606 (and RFC 6761) reserve example.com, example.org, example.net and the top-level
domains `.example`, `.test`, `.invalid` and `localhost`: no one can receive mail there or
serve a page. A `from`, `reply_to`, `base_url` or `unsubscribe_url` at one of them is a
placeholder, and so is the example postal address `init` writes. A real send (a proof included) is refused over it; dry runs and `check`
warn, so a new publication can be tried before it is set up.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from urllib.parse import urlsplit

from newsletter.config import Settings
from newsletter.errors import ConfigError, NewsletterError, where
from newsletter.files.yamlfile import read_mapping

RESERVED_DOMAINS = ("example.com", "example.org", "example.net")
RESERVED_TOP_LEVEL = ("example", "test", "invalid", "localhost")
# The street of the postal address `init` writes (newsletter/skeleton/newsletter.yaml):
# anti-spam laws ask for the publication's real one in every email.
EXAMPLE_STREET = "1 Example Street"


class PlaceholderError(NewsletterError):
    """A real send was asked for while settings are still placeholders; one line per key."""


class PlaceholderWarning(UserWarning):
    """A dry run with settings still at placeholders; the CLI prints these."""


def is_reserved(host: str) -> bool:
    """Whether `host` is, or is under, a domain reserved for examples."""
    host = host.lower().rstrip(".")
    if any(host == d or host.endswith("." + d) for d in RESERVED_DOMAINS):
        return True
    return host.rsplit(".", 1)[-1] in RESERVED_TOP_LEVEL


@dataclass(frozen=True)
class Placeholder:
    key: str      # from, reply_to, base_url, unsubscribe_url, postal_address
    value: str
    host: str
    where: str    # newsletter.yaml:3

    def __str__(self) -> str:
        if self.key == "postal_address":
            return (f"{self.where}: postal_address {self.value!r} is the example `init` wrote: put the "
                    "publication's own postal address there (anti-spam laws require a real one in every email)")
        what = "address" if self.key in ("from", "reply_to") else "web address"
        return (f"{self.where}: {self.key} {self.value} is a placeholder ({self.host} is reserved for "
                f"examples, RFC 2606): put the publication's own {what} there")


def placeholders(settings: Settings) -> list[Placeholder]:
    """Each setting of the publication that is still at a reserved domain, in file order."""
    values: list[tuple[str, str, str]] = [("from", settings.sender.email, settings.sender.email.rpartition("@")[2])]
    if settings.reply_to is not None:
        values.append(("reply_to", settings.reply_to.email, settings.reply_to.email.rpartition("@")[2]))
    values.append(("base_url", settings.base_url, urlsplit(settings.base_url).hostname or ""))
    if settings.unsubscribe_url:
        values.append(("unsubscribe_url", settings.unsubscribe_url, urlsplit(settings.unsubscribe_url).hostname or ""))
    found = [(key, value, host) for key, value, host in values if host and is_reserved(host)]
    if EXAMPLE_STREET in settings.postal_address:
        found.append(("postal_address", settings.postal_address, ""))
    if not found:
        return []
    try:
        lines = read_mapping(settings.config_path, ConfigError).lines
    except ConfigError:
        lines = {}
    shown = [Placeholder(key, value, host, where(settings.config_path, lines.get(key)))
             for key, value, host in found]
    return sorted(shown, key=lambda p: lines.get(p.key, 0))


def refuse_placeholders(settings: Settings, what: str) -> None:
    """Raise `PlaceholderError`, one line per placeholder, before `what` ("a send") goes out."""
    found = placeholders(settings)
    if found:
        raise PlaceholderError("\n".join(f"{p}; {what} is refused until then" for p in found))


def warn_placeholders(settings: Settings) -> None:
    """Warn (`PlaceholderWarning`) about each placeholder: for dry runs."""
    for placeholder in placeholders(settings):
        warnings.warn(f"{placeholder}; a real send is refused until then", PlaceholderWarning, stacklevel=2)
