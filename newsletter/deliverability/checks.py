"""`doctor`'s DNS part: will receivers trust mail from the `from` domain sent through this service?

Gmail and Yahoo require of bulk senders (since 2024) SPF and DKIM, a DMARC record and a
`From` domain aligned with them. For the `from` domain, through the resolver of `lookup.py`:

- a `from` at a free-mail domain (gmail.com …) sent through a service that cannot sign for
  it is refused by receivers under that domain's DMARC policy: an error, and nothing else
  about its DNS matters;
- SPF: one record, naming the service, at most 10 DNS lookups deep;
- DKIM: the service's selectors hold a key;
- DMARC: `_dmarc.<domain>` (or the parent domain's) has a record; its policy is named; a
  quarantine or reject policy with nothing that signs for the domain is an error;
- reverse DNS (PTR) of the SMTP host, for SMTP.

Every finding says what to publish, the exact record where it can be known. The whole part
runs within one deadline; what could not be asked is one warning naming what was left unchecked.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from newsletter.config import Settings
from newsletter.deliverability.lookup import DnsLookup, DnsUnavailable
from newsletter.deliverability.records import (
    SPF_LOOKUP_LIMIT, SPF_VOID_LOOKUP_LIMIT, dkim_key, dmarc_records, is_at_or_under, read_spf, spf_records, with_include,
)
from newsletter.doctor import DoctorReport
from newsletter.errors import ConfigError, NewsletterError
from newsletter.findings import Level
from newsletter.placeholders import is_reserved

_Answer = TypeVar("_Answer")
# One budget for every DNS query of a doctor run; a resolver that answers nothing costs this once.
DNS_DEADLINE = 10.0
# Gmail's bulk-sender line (support.google.com/a/answer/81126): DMARC is required above it.
BULK_READERS = 5_000

# Mailbox services whose DMARC policy refuses their addresses sent from anywhere but their own servers.
FREE_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "aol.com",
    "icloud.com", "me.com", "mac.com", "web.de", "proton.me", "protonmail.com", "pm.me",
    "yandex.com", "yandex.ru", "mail.ru", "zoho.com", "mail.com", "fastmail.com",
})
# The same services under country domains: yahoo.co.uk, hotmail.fr, gmx.de, outlook.com.br …
_FREE_MAIL_FAMILIES = re.compile(r"(yahoo|ymail|hotmail|outlook|live|gmx|aol|laposte|orange|libero)"
                                 r"(\.[a-z]{2,3}){1,2}")


def is_free_mail(domain: str) -> bool:
    return domain in FREE_MAIL_DOMAINS or bool(_FREE_MAIL_FAMILIES.fullmatch(domain))


@dataclass(frozen=True)
class MailService:
    """What the DNS of a `from` domain must say for a service's mail to be trusted; each provider describes itself."""

    name: str                                  # "SendGrid", "Fastmail", or the SMTP host
    spf_include: str | None = None             # the include its SPF record publishes (sendgrid.net)
    # Its other SPF domains: an include at or under one of these, or under spf_include, names the service
    # (SendGrid's per-account u1234.wl001.sendgrid.net; Brevo's older spf.sendinblue.com).
    spf_domains: tuple[str, ...] = ()
    dkim_selectors: tuple[str, ...] = ()       # the selectors it signs with (s1, s2); empty when unknown
    dkim_advice: str = ""                      # where its DKIM records are shown
    # The CNAME for a selector where its value can be known (Fastmail's fm1.<domain>.dkim.fmhosted.com).
    dkim_cname: Callable[[str, str], str] | None = None
    all_selectors: bool = False                # every selector must hold a key (SendGrid rotates s1 and s2)
    signs_for: tuple[str, ...] = ()            # free-mail domains whose own server this is (smtp.gmail.com: gmail.com)
    smtp_host: str | None = None               # whose reverse DNS to check
    # SendGrid's automated security: DKIM CNAMEs pointing here mean SPF is checked on its em<n>.<domain>.
    spf_by_dkim_cname: str | None = None

    @property
    def own_spf_domains(self) -> tuple[str, ...]:
        return (self.spf_include, *self.spf_domains) if self.spf_include else self.spf_domains


def check_sending_domain(settings: Settings, service: MailService, report: DoctorReport,
                         lookup: DnsLookup | None = None, deadline: float | None = None) -> None:
    """Add the DNS findings for `settings`' `from` domain sent through `service` to `report`,
    all within `deadline` seconds (None: `DNS_DEADLINE`)."""
    domain = settings.sender.email.rpartition("@")[2].lower().rstrip(".")
    if is_reserved(domain):
        return  # a placeholder (example.org, what `init` writes): its finding says to put the real address there
    try:
        dns = lookup or DnsLookup.from_environment(DNS_DEADLINE if deadline is None else deadline)
    except ConfigError as exc:  # a mistyped NEWSLETTER_DNS: said, and the account's findings still shown
        report.add("error", "dns", str(exc))
        return
    # Each part stands alone: a name that times out or fails (SERVFAIL) leaves its own part unchecked,
    # and the others still report (one slow include stopped DKIM and DMARC too).
    unchecked = _Unchecked()
    if is_free_mail(domain):
        if domain in service.signs_for:
            report.add("ok", "from-domain", f"from {domain} goes through {service.name}, {domain}'s own "
                       "server, which signs for it: nothing to publish")
        else:
            report.add("error", "from-domain", f"receivers will refuse mail from {domain} sent through "
                       f"{service.name}: send from your own domain")
    else:
        unchecked.run("SPF", lambda: _check_spf(dns, domain, service, report))
        signed = unchecked.run("DKIM", lambda: _check_dkim(dns, domain, service, report))
        unchecked.run("DMARC", lambda: _check_dmarc(dns, domain, service, settings, signed, report))
    if service.smtp_host:
        host = service.smtp_host
        unchecked.run("reverse DNS", lambda: _check_reverse_dns(dns, host, report))
    unchecked.report(domain, report)


class _Unchecked:
    """The parts the DNS did not answer for, grouped by why."""

    def __init__(self) -> None:
        self._parts: dict[str, list[str]] = {}  # why → the parts it left unchecked, in order

    def run(self, part: str, check: Callable[[], _Answer]) -> _Answer | None:
        try:
            return check()
        except DnsUnavailable as exc:
            self._parts.setdefault(str(exc), []).append(part)
            return None

    def report(self, domain: str, report: DoctorReport) -> None:
        # A resolver that answers nothing fails every part alike: one warning naming them all.
        for why, parts in self._parts.items():
            named = " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)
            report.add("warning", "dns", f"cannot check {named} for {domain}: {why}; "
                       "run doctor again once the DNS answers")


def _record(kind: str, value: str, name: str) -> str:
    return f'{kind} "{value}" at {name}' if kind == "TXT" else f"{kind} {name} → {value}"


def _check_spf(lookup: DnsLookup, domain: str, service: MailService, report: DoctorReport) -> bool:
    """SPF's findings; whether the service's mail passes SPF for the domain (by record or by SendGrid's CNAMEs)."""
    found = spf_records(lookup.txt(domain))
    by_cname = _spf_by_dkim_cname(lookup, domain, service)
    if len(found) > 1:
        report.add("error", "spf", f"{domain} has {len(found)} SPF records, so receivers fail SPF for all of them "
                   "(RFC 7208 §4.5): merge them into one TXT record")
        return by_cname
    if not found:
        if by_cname:
            report.add("ok", "spf", f"SPF: {service.name}'s automated security is on (s1._domainkey.{domain} points at "
                       f"it), so SPF is checked on its em….{domain} return path, which {service.name} publishes")
            return True
        record = _spf_suggestion(lookup, service)
        report.add("error", "spf", f"{domain} has no SPF record: add {_record('TXT', record, domain)}"
                   if record else f"{domain} has no SPF record: add a TXT record \"v=spf1 … ~all\" at {domain} "
                   f"naming the servers of {service.name}")
        return False
    record = found[0]
    tree = read_spf(lookup, domain, record, service.own_spf_domains)
    authorised = True
    if tree.lookups > SPF_LOOKUP_LIMIT or not tree.walked_all:
        count = f"{tree.lookups}" if tree.walked_all else f"more than {tree.lookups}"
        report.add("error", "spf", f"the SPF record of {domain} needs {count} DNS lookups, over the "
                   f"{SPF_LOOKUP_LIMIT} receivers allow (RFC 7208 §4.6.4), so SPF fails everywhere: drop the "
                   "includes you no longer use, or put ip4:/ip6: ranges in place of a, mx and includes")
        authorised = False
    if len(tree.void) > SPF_VOID_LOOKUP_LIMIT:
        report.add("error", "spf", f"the SPF record of {domain} makes {len(tree.void)} DNS lookups that find nothing "
                   f"({', '.join(tree.void)}), over the {SPF_VOID_LOOKUP_LIMIT} receivers allow (RFC 7208 §4.6.4), "
                   "so SPF fails everywhere: remove the includes of domains that publish nothing")
        authorised = False
    for broken in tree.broken:
        report.add("error", "spf", f"the SPF record of {domain} has {broken}, so receivers fail SPF (permerror): "
                   "remove or fix that term")
        authorised = False
    if by_cname:
        if authorised:
            report.add("ok", "spf", f"SPF: {domain} has one record ({_lookups(tree.lookups)}), and "
                       f"{service.name}'s automated security checks its own em….{domain} return path")
        return True
    if service.spf_include:
        # An include of the service's own names it, whatever its record holds or whether it answers here:
        # the service publishes it (a per-account include:u1234.wl001.sendgrid.net lists addresses only).
        named = tree.names(service.own_spf_domains)
        if named:
            if authorised:
                counted = _lookups(tree.lookups) if not tree.unanswered else (
                    f"at least {_lookups(tree.lookups)}; {', '.join(tree.unanswered)} did not answer here, so "
                    "the lookups under it are not counted")
                report.add("ok", "spf", f"SPF: {domain} names {service.name} (include:{named}, {counted})")
            return authorised
        held = next(((target, term) for target, term in tree.not_passing.items()
                     if is_at_or_under(target, service.own_spf_domains)), None)
        if held is not None:
            target, term = held
            written_here = term.lower() in (word.lower() for word in record.split())
            report.add("error", "spf", f"the SPF record of {domain} has {term}: its {term[0]} makes SPF "
                       f"{_QUALIFIER_RESULTS[term[0]]} for {service.name}'s mail, not pass (only include: or "
                       f"+include: authorises a service): change it to "
                       f"{_record('TXT', with_include(record, target if written_here else service.spf_include), domain)}")
            return False
        fault = f"names {service.name} after `all`, where receivers stop reading it" \
            if any(is_at_or_under(target, service.own_spf_domains) for target in tree.unreached) \
            else f"does not name {service.name}"
        report.add("error", "spf", f"the SPF record of {domain} {fault}: change it to "
                   f"{_record('TXT', with_include(record, service.spf_include), domain)}")
        return False
    host = service.smtp_host or ""
    if host.lower() in tree.hosts or (host and tree.authorises(lookup.addresses(host))):
        if authorised:
            report.add("ok", "spf", f"SPF: {domain} names {host} ({_lookups(tree.lookups)})")
        return authorised
    report.add("warning", "spf", f"cannot tell whether the SPF record of {domain} lets {host} send its mail: "
               f"make sure it names {host}'s addresses (a:{host}) or your provider's include")
    return False


# RFC 7208 §4.6.2: what a mechanism that matches makes the result, by its qualifier.
_QUALIFIER_RESULTS = {"-": "fail", "~": "softfail", "?": "neutral"}


def _lookups(count: int) -> str:
    return f"{count} DNS lookup{'' if count == 1 else 's'}"


def _spf_suggestion(lookup: DnsLookup, service: MailService) -> str | None:
    if service.spf_include:
        return f"v=spf1 include:{service.spf_include} ~all"
    if service.smtp_host:
        addresses = lookup.addresses(service.smtp_host)
        if addresses == [service.smtp_host]:  # an IP address as the host
            return f"v=spf1 ip{6 if ':' in service.smtp_host else 4}:{service.smtp_host} ~all"
        return f"v=spf1 a:{service.smtp_host} ~all"
    return None


def _spf_by_dkim_cname(lookup: DnsLookup, domain: str, service: MailService) -> bool:
    if not service.spf_by_dkim_cname or not service.dkim_selectors:
        return False
    target = lookup.cname(f"{service.dkim_selectors[0]}._domainkey.{domain}")
    return target is not None and (target == service.spf_by_dkim_cname
                                   or target.endswith("." + service.spf_by_dkim_cname))


def _check_dkim(lookup: DnsLookup, domain: str, service: MailService, report: DoctorReport) -> bool | None:
    """DKIM's findings; whether the service can sign for the domain (None: cannot tell, no selector known)."""
    if not service.dkim_selectors:
        report.add("warning", "dkim", f"cannot tell whether {service.name} signs mail from {domain} with DKIM: "
                   "set smtp.dkim_selector in newsletter.yaml to the selector your provider gave "
                   "(the name before ._domainkey)")
        return None
    keys: dict[str, str | None] = {}
    for selector in service.dkim_selectors:
        keys[selector] = dkim_key(lookup.txt(f"{selector}._domainkey.{domain}"))
    with_key = [selector for selector, key in keys.items() if key]
    revoked = [selector for selector, key in keys.items() if key == ""]
    for selector in revoked:
        report.add("error", "dkim", f"the DKIM key at {selector}._domainkey.{domain} is revoked (an empty p=): "
                   f"publish the current one {service.dkim_advice}".rstrip())
    missing = [selector for selector, key in keys.items() if key is None]
    if with_key and (not service.all_selectors or not missing):
        names = ", ".join(f"{selector}._domainkey.{domain}" for selector in with_key)
        report.add("ok", "dkim", f"DKIM: {service.name} can sign mail from {domain} (a key at {names})")
        return True
    if service.all_selectors:
        missing = [selector for selector in service.dkim_selectors if not keys[selector]]
    names = " and ".join(f"{selector}._domainkey.{domain}" for selector in missing)
    if service.dkim_cname is not None and missing:
        cnames = "; ".join(_record("CNAME", service.dkim_cname(selector, domain), f"{selector}._domainkey.{domain}")
                           for selector in missing)
        advice = f"add {cnames}"
    else:
        advice = f"add the DKIM record{'s' if len(missing) > 1 else ''} {service.dkim_advice}".rstrip()
    if missing:
        report.add("error", "dkim", f"no DKIM key at {names}, so receivers cannot tell mail from {domain} is yours: "
                   f"{advice}")
    return False


def _check_dmarc(lookup: DnsLookup, domain: str, service: MailService, settings: Settings,
                 signed: bool | None, report: DoctorReport) -> None:
    labels = domain.split(".")
    # RFC 7489 §6.6.3: without a record of its own, a subdomain's mail falls under its organisational domain's.
    for start in range(0, max(len(labels) - 1, 1)):
        name = ".".join(labels[start:])
        records = dmarc_records(lookup.txt(f"_dmarc.{name}"))
        if records:
            break
    else:
        readers = _subscribed_readers(settings)
        level: Level = "error" if readers is not None and readers > BULK_READERS else "warning"
        count = f"{readers:,} subscribed readers" if readers is not None else "a list"
        report.add(level, "dmarc", f"{domain} has no DMARC record, which Gmail and Yahoo require of senders of "
                   f"over {BULK_READERS:,} a day ({count} here): add {_record('TXT', 'v=DMARC1; p=none', f'_dmarc.{domain}')}")
        return
    where = f"_dmarc.{name}"
    if len(records) > 1:
        report.add("error", "dmarc", f"{where} has {len(records)} DMARC records, so receivers ignore them all "
                   "(RFC 7489 §6.6.3): keep one")
        return
    tags = records[0]
    policy = (tags.get("sp", "") if name != domain and "sp" in tags else tags.get("p", "")).lower()
    meaning = {"none": "receivers deliver mail that fails and only report it",
               "quarantine": "receivers put mail that fails in spam",
               "reject": "receivers refuse mail that fails"}.get(policy)
    if meaning is None:
        report.add("error", "dmarc", f"the DMARC record at {where} has no valid policy (p={policy or 'missing'}), "
                   f"so receivers ignore it: change it to {_record('TXT', 'v=DMARC1; p=none', where)}")
        return
    report.add("ok", "dmarc", f"DMARC: {where} has policy {policy} ({meaning})")
    if policy in ("quarantine", "reject") and signed is False:
        report.add("error", "dmarc", f"receivers will refuse mail from {domain} sent through {service.name}: "
                   f"its DMARC policy is {policy} and {service.name} cannot sign for {domain} yet: "
                   "publish the DKIM records above")


def _subscribed_readers(settings: Settings) -> int | None:
    """Addresses subscribed on any list, or None when a list cannot be read (doctor says so elsewhere)."""
    from newsletter.subscribers.store import subscribed_keys

    readers: set[str] = set()
    try:
        for path in sorted(settings.subscribers_dir.glob("*.csv")):
            readers |= subscribed_keys(path)
    except (NewsletterError, OSError):
        return None
    return len(readers)


def _check_reverse_dns(lookup: DnsLookup, host: str, report: DoctorReport) -> None:
    addresses = lookup.connection_addresses(host)
    if not addresses:
        report.add("warning", "reverse-dns", f"{host} has no address in the DNS, so its reverse DNS cannot be "
                   "checked: check smtp.host")
        return
    checked = None
    for address in addresses:
        names = lookup.names_of(address)
        points_back = bool(names) and address in lookup.addresses(names[0])
        if not points_back and not ipaddress.ip_address(address).is_global:
            # A relay on this machine or a private network hands the mail on from another address: that
            # one is what receivers see, so this one needs no reverse DNS (localhost has none in the DNS).
            continue
        if not names:
            report.add("warning", "reverse-dns", f"{host} ({address}) has no reverse DNS (PTR), which receivers "
                       "distrust: ask whoever runs the server to set one that names it")
            return
        if not points_back:
            report.add("warning", "reverse-dns", f"the reverse DNS of {host} ({address}) is {names[0]}, which does "
                       f"not point back at {address}: ask whoever runs the server to make them match")
            return
        checked = names[0]
    if checked is None:
        where = "on this machine" if ipaddress.ip_address(addresses[0]).is_loopback else "on a private network"
        report.add("ok", "reverse-dns", f"{host} ({addresses[0]}) is a relay {where}, so it needs no reverse DNS "
                   "of its own: receivers see the address it passes the mail on from")
        return
    report.add("ok", "reverse-dns", f"{host}'s reverse DNS names {checked}, which points back at it")
