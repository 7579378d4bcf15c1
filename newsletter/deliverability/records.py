"""SPF, DKIM and DMARC records read as receivers read them (RFC 7208, RFC 6376, RFC 7489).

Only what doctor needs: whether an SPF record names a service (directly or through its
includes), how many DNS lookups it costs, whether a DKIM selector holds a key, and a DMARC
record's policy.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from newsletter.deliverability.lookup import DnsLookup, DnsUnavailable, NotADomainName

# RFC 7208 §4.6.4: a receiver evaluating SPF stops with permerror after 10 of these.
SPF_LOOKUP_LIMIT = 10
# RFC 7208 §4.6.4: and with permerror after more than 2 lookups that find nothing (NXDOMAIN, no answer).
SPF_VOID_LOOKUP_LIMIT = 2
_LOOKUP_TERMS = ("include", "a", "mx", "ptr", "exists", "redirect")
# Past this many lookups the record is far over the limit: it is not read further.
_SPF_WALK_LIMIT = 30
_SPF_START = re.compile(r"(?i)v=spf1(\s|$)")
_DMARC_START = re.compile(r"(?i)v\s*=\s*DMARC1\s*(;|$)")


def spf_records(texts: list[str]) -> list[str]:
    """The TXT records that are SPF records (`v=spf1` followed by a space or nothing)."""
    return [text.strip() for text in texts if _SPF_START.match(text.strip())]


def spf_terms(record: str) -> list[tuple[str, str, str]]:
    """Each term of an SPF record as (qualifier, name, value): `include:x.org` → ("+", "include", "x.org"),
    `-all` → ("-", "all", ""), `redirect=x.org` → ("+", "redirect", "x.org")."""
    terms = []
    for term in record.split()[1:]:
        qualifier = term[0] if term[0] in "+-~?" else "+"
        term = term.lstrip("+-~?")
        name, _, value = term.partition("=") if "=" in term.partition(":")[0] else term.partition(":")
        if "/" in name and not value:  # `a/24`, `mx/24`: a mechanism with a prefix length only
            name = name.partition("/")[0]
        terms.append((qualifier, name.lower(), value))
    return terms


def with_include(record: str, include: str) -> str:
    """`record` with `include:INCLUDE` added before its `all` (or redirect), as one record; the same
    include written after `all`, where receivers never reach it, moves there; one written with a
    qualifier other than + (`-include:`, `~include:`) loses it, where it stands."""
    words = record.split()
    wanted = f"include:{include}".lower()

    def is_it(word: str) -> bool:
        return word.lstrip("+-~?").lower() == wanted

    at = next((i for i, word in enumerate(words)
               if word.lstrip("+-~?").lower() == "all" or word.lower().startswith("redirect=")), len(words))
    before = [f"include:{include}" if is_it(word) else word for word in words[:at]]
    if not any(is_it(word) for word in words[:at]):
        before.append(f"include:{include}")
    return " ".join([*before, *(word for word in words[at:] if not is_it(word))])


def is_at_or_under(name: str, domains: Iterable[str]) -> bool:
    """Whether `name` is one of `domains` or a name under one (u1234.wl001.sendgrid.net under sendgrid.net)."""
    return any(name == domain or name.endswith("." + domain) for domain in domains)


@dataclass
class SpfTree:
    """An SPF record with every include and redirect under it read."""

    lookups: int = 0
    includes: list[str] = field(default_factory=list)         # every include: and redirect= target that can pass
    # include: targets written with -, ~ or ? (or reached only through one): a match there fails, softfails
    # or is neutral, never a pass; each with that term, as written.
    not_passing: dict[str, str] = field(default_factory=dict)
    unreached: set[str] = field(default_factory=set)          # include: targets written after `all`
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = field(default_factory=list)
    hosts: set[str] = field(default_factory=set)              # the names of a: mechanisms
    broken: list[str] = field(default_factory=list)           # what makes receivers fail it (permerror)
    walked_all: bool = True                                   # False when it was too deep to read whole
    unanswered: list[str] = field(default_factory=list)       # the service's own includes the DNS did not answer for
    void: list[str] = field(default_factory=list)             # include: and redirect= terms whose lookup found nothing

    def breaks(self, term: str) -> None:
        """`term` makes receivers fail the record; said once, though two includes reach it."""
        if term not in self.broken:
            self.broken.append(term)

    def names(self, domains: Iterable[str]) -> str | None:
        """The first include or redirect at or under one of `domains` (a service's SPF domains), if any."""
        return next((target for target in self.includes if is_at_or_under(target, domains)), None)

    def authorises(self, addresses: list[str]) -> bool:
        """Whether one of `addresses` is in an ip4:/ip6: network of the record or its includes."""
        for text in addresses:
            address = ipaddress.ip_address(text)
            if any(address.version == network.version and address in network for network in self.networks):
                return True
        return False


def read_spf(lookup: DnsLookup, domain: str, record: str, own_domains: tuple[str, ...] = ()) -> SpfTree:
    """Count `record`'s DNS lookups, its includes' and redirects' included, and collect what it names.

    An include at or under `own_domains` (the sending service's) is the service's to publish: when the
    DNS does not answer for it, it is named in `unanswered` and its lookups are not counted, rather than
    the whole record left unchecked."""
    tree = SpfTree()

    # `within`: the domains whose records lead here. Receivers evaluate an include each time it is
    # reached, so one reached twice by two paths costs its lookups twice; one that leads back to
    # a record it is within is a loop they follow until the lookups run out (permerror).
    # `held_by`: the term with a -, ~ or ? qualifier this record is reached through, if any. RFC 7208
    # §4.6.2: a mechanism's qualifier is the result when it matches, so `-include:sendgrid.net` fails
    # SendGrid's mail, `~` softfails and `?` is neutral; only `+` (or none) passes, at every step down.
    def walk(record: str, within: tuple[str, ...], held_by: str | None) -> None:
        terms = spf_terms(record)
        ends = next((i for i, (_, name, _) in enumerate(terms) if name == "all"), None)
        if ends is not None:
            # RFC 7208 §5.1: receivers stop at `all`, so a term after it is never tested (an include
            # added at the end of "v=spf1 mx ~all").
            tree.unreached.update(value.lower().rstrip(".") for _, name, value in terms[ends + 1:]
                                  if name == "include" and value)
            terms = terms[:ends]
        for qualifier, name, value in terms:
            held = held_by or (None if qualifier == "+" else f"{qualifier}{name}:{value}")
            passes = held is None
            if name in ("ip4", "ip6"):
                try:
                    network = ipaddress.ip_network(value, strict=False)
                except ValueError:
                    tree.breaks(f"{name}:{value} is no address")
                    continue
                if passes:
                    tree.networks.append(network)
                continue
            if name not in _LOOKUP_TERMS:
                continue
            tree.lookups += 1
            if name == "a" and value and passes:
                tree.hosts.add(value.partition("/")[0].lower())
            if name not in ("include", "redirect") or not value:
                continue
            target = value.lower().rstrip(".")
            if held is not None:
                tree.not_passing.setdefault(target, held)
            elif target not in tree.includes:
                tree.includes.append(target)
            if "%" in target:
                continue  # a macro is expanded per message, not here
            if target in within:
                tree.breaks(f"{name}:{value}, which leads back to the record of {target} (a loop)")
                continue
            if tree.lookups > _SPF_WALK_LIMIT:
                tree.walked_all = False
                return
            try:
                texts = lookup.txt(target)
            except NotADomainName:
                tree.breaks(f"{name}:{value}, which is no domain name")
                continue
            except DnsUnavailable:
                if not is_at_or_under(target, own_domains):
                    raise
                tree.unanswered.append(target)
                continue
            if not texts:
                tree.void.append(f"{name}:{value}")
            found = spf_records(texts)
            if len(found) != 1:
                tree.breaks(f"{name}:{value} " + ("publishes no SPF record" if not found
                                                         else f"publishes {len(found)} SPF records"))
                continue
            walk(found[0], (*within, target), held)

    walk(record, (domain.lower().rstrip("."),), None)
    return tree


def dkim_key(texts: list[str]) -> str | None:
    """The key (`p=`) of a DKIM key record, "" for a revoked one, None when there is no key record."""
    for text in texts:
        tags = dict(_tags(text))
        if "p" in tags and tags.get("v", "DKIM1").upper() == "DKIM1":
            return tags["p"].replace(" ", "")
    return None


def dmarc_records(texts: list[str]) -> list[dict[str, str]]:
    """The DMARC records among TXT records, as their tags (`p`, `sp`, `rua` …)."""
    return [dict(_tags(text)) for text in texts if _DMARC_START.match(text.strip())]


def _tags(text: str) -> list[tuple[str, str]]:
    pairs = []
    for part in text.split(";"):
        name, equals, value = part.partition("=")
        if equals:
            pairs.append((name.strip().lower(), value.strip()))
    return pairs
