"""The one seam through which `doctor` asks the DNS: the system's resolver, or `NEWSLETTER_DNS`.

dnspython does the asking: it parses TXT, CNAME and PTR answers, follows a CNAME chain
within an answer, and holds each query to a lifetime. Every query here gets what is left
of one deadline for the whole DNS part of doctor, so a dead resolver costs that deadline
once, not a timeout a record. An answer that the name or the record does not exist is an
empty answer; anything else that keeps the DNS from answering (no resolver configured, a
server that refuses, the deadline passed) is `DnsUnavailable`, which doctor turns into one
warning saying why.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
import dns.reversename

from newsletter.errors import ConfigError

DNS_VARIABLE = "NEWSLETTER_DNS"
DEFAULT_DNS_PORT = 53


class DnsUnavailable(Exception):
    """The DNS could not be asked; the message says why, for a warning."""


class NotADomainName(DnsUnavailable):
    """A name that cannot be asked for (an empty label, a label over 63 octets): a record naming it
    is broken, not the DNS (an SPF `include:foo..bar` is a permerror at every receiver)."""


@dataclass(frozen=True)
class DnsServer:
    address: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


def dns_server_from_environment() -> DnsServer | None:
    """`NEWSLETTER_DNS` (host[:port]) as a server to ask instead of the system's resolver."""
    given = os.environ.get(DNS_VARIABLE, "").strip()
    if not given:
        return None
    host, port_text = given, ""
    if given.startswith("["):
        host, _, rest = given[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif given.count(":") == 1:
        host, _, port_text = given.partition(":")
    advice = f"{DNS_VARIABLE}={given}: give the DNS server as host[:port], such as 127.0.0.1:5353 or [::1]:53"
    if port_text and not (port_text.isdigit() and 1 <= int(port_text) <= 65535):
        raise ConfigError(f"{advice} (the port is 1 to 65535)")
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        try:
            address = str(socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)[0][4][0])
        except (OSError, UnicodeError):
            raise ConfigError(f"{advice} (the host {host!r} has no address)") from None
    return DnsServer(address, int(port_text) if port_text else DEFAULT_DNS_PORT)


class Deadline:
    """Seconds left of one budget shared by every query."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._ends = time.monotonic() + seconds

    def left(self) -> float:
        return self._ends - time.monotonic()


class DnsLookup:
    """Asks one resolver for the records doctor reads, each query within what is left of `deadline`."""

    def __init__(self, deadline: Deadline, server: DnsServer | None = None) -> None:
        self._deadline = deadline
        self.server = server
        self._resolver: dns.resolver.Resolver | None = None

    @classmethod
    def from_environment(cls, seconds: float) -> DnsLookup:
        return cls(Deadline(seconds), dns_server_from_environment())

    def describe(self) -> str:
        return f"{self.server} ({DNS_VARIABLE})" if self.server else "the system's resolver"

    def _ready(self) -> dns.resolver.Resolver:
        if self._resolver is None:
            if self.server is None:
                try:
                    self._resolver = dns.resolver.Resolver()
                except dns.resolver.NoResolverConfiguration:
                    raise DnsUnavailable(f"this machine has no DNS resolver configured (/etc/resolv.conf): "
                                         f"set {DNS_VARIABLE}=host[:port]") from None
            else:
                self._resolver = dns.resolver.Resolver(configure=False)
                self._resolver.nameservers = [self.server.address]
                self._resolver.port = self.server.port
            self._resolver.cache = None  # a record published a minute ago is what the next run must see
        return self._resolver

    def _answer(self, name: str, rdtype: str) -> list[str]:
        resolver = self._ready()
        left = self._deadline.left()
        if left <= 0:
            raise DnsUnavailable(f"{self.describe()} did not answer within {self._deadline.seconds:g} s")
        resolver.timeout = left
        try:
            query = dns.name.from_text(name)
        except dns.exception.DNSException as exc:
            raise NotADomainName(f"{name} is no domain name ({exc})") from None
        try:
            answer = resolver.resolve(query, rdtype, lifetime=left, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout:
            raise DnsUnavailable(f"{self.describe()} did not answer within {self._deadline.seconds:g} s") from None
        except dns.resolver.NoNameservers as exc:
            errors = exc.kwargs.get("errors") or []
            said = "; ".join(sorted({str(error[3]) for error in errors if len(error) > 3})) or "no answer"
            raise DnsUnavailable(f"{self.describe()} gave no usable answer ({said})") from None
        except dns.exception.DNSException as exc:
            raise DnsUnavailable(f"{self.describe()} could not be asked for {name} ({exc})") from None
        if rdtype == "TXT":
            return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
        if rdtype in ("CNAME", "PTR"):
            return [r.target.to_text(omit_final_dot=True).lower() for r in answer]
        return [r.to_text() for r in answer]

    def txt(self, name: str) -> list[str]:
        """The TXT records at `name` (a CNAME followed), each its strings joined as RFC 7208 §3.3 says."""
        return self._answer(name, "TXT")

    def cname(self, name: str) -> str | None:
        """Where `name` points when it is a CNAME."""
        found = self._answer(name, "CNAME")
        return found[0] if found else None

    def addresses(self, name: str) -> list[str]:
        """The IPv4 and IPv6 addresses of `name`, or `name` itself when it is one."""
        try:
            return [str(ipaddress.ip_address(name))]
        except ValueError:
            pass
        return self._answer(name, "A") + self._answer(name, "AAAA")

    def connection_addresses(self, host: str) -> list[str]:
        """The addresses a connection to `host` reaches: the DNS's, or when it has none the system's
        resolver's. dnspython reads no /etc/hosts, where smtplib's connection (getaddrinfo) does: a relay
        at `localhost` or at a name in /etc/hosts works, and had "no address in the DNS"."""
        found = self.addresses(host)
        if found:
            return found
        try:
            answers = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return []
        return list(dict.fromkeys(str(answer[4][0]) for answer in answers))

    def names_of(self, address: str) -> list[str]:
        """The reverse DNS (PTR) names of an IP address."""
        return self._answer(dns.reversename.from_address(address).to_text(), "PTR")
