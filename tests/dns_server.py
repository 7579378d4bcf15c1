"""A real DNS server on 127.0.0.1 for doctor's DNS checks, answering the records a test sets.

dnslib's server answers over UDP what `DnsZone` holds: a CNAME is followed within the zone, as
a resolver's answer follows it; a name the zone does not hold is NXDOMAIN; a name set to `fail`
is SERVFAIL (its servers out of reach, as a resolver says then). A zone holding no
record at all refuses every query (REFUSED), as a resolver that serves nobody does: the tests
that never set a record see doctor's one warning that the DNS cannot be checked, quickly,
and no test ever asks the system's resolver (`NEWSLETTER_DNS` points here, tests/conftest.py).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from dnslib import AAAA, CNAME, PTR, QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer

_QUIET = DNSLogger(log="-request,-reply,-truncated,-error", prefix=False)
_RDATA = {"A": A, "AAAA": AAAA, "CNAME": CNAME, "PTR": PTR}


def _key(name: str) -> str:
    return name.lower().rstrip(".")


class DnsZone(BaseResolver):
    """The records the server answers; a test adds them, the conftest fixture clears them."""

    def __init__(self) -> None:
        self._records: dict[str, list[tuple[str, str]]] = {}
        self._failing: set[str] = set()
        self._lock = threading.Lock()
        self.questions: list[str] = []

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._failing.clear()
            self.questions.clear()

    def add(self, name: str, kind: str, value: str) -> None:
        with self._lock:
            self._records.setdefault(_key(name), []).append((kind, value))

    def fail(self, name: str) -> None:
        """Every question about `name` answered SERVFAIL."""
        with self._lock:
            self._failing.add(_key(name))

    def txt(self, name: str, value: str) -> None:
        self.add(name, "TXT", value)

    def cname(self, name: str, target: str) -> None:
        self.add(name, "CNAME", target)

    def address(self, name: str, address: str) -> None:
        self.add(name, "AAAA" if ":" in address else "A", address)

    def ptr(self, address: str, name: str) -> None:
        self.add(ipaddress.ip_address(address).reverse_pointer, "PTR", name)

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        reply = request.reply()
        name = _key(str(request.q.qname))
        wanted = QTYPE[request.q.qtype]
        with self._lock:
            self.questions.append(f"{wanted} {name}")
            if not self._records:
                reply.header.rcode = RCODE.REFUSED
                return reply
            if name in self._failing:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            if name not in self._records:
                reply.header.rcode = RCODE.NXDOMAIN
                return reply
            for _ in range(8):  # a CNAME chain, as far as the zone holds it
                records = self._records.get(name, [])
                cname = next((value for kind, value in records if kind == "CNAME"), None)
                if cname is not None and wanted != "CNAME":
                    reply.add_answer(RR(name, QTYPE.CNAME, rdata=CNAME(cname), ttl=60))
                    name = _key(cname)
                    continue
                for kind, value in records:
                    if kind == wanted:
                        reply.add_answer(RR(name, getattr(QTYPE, kind), ttl=60, rdata=self._rdata(kind, value)))
                break
        return reply

    @staticmethod
    def _rdata(kind: str, value: str) -> object:
        if kind == "TXT":  # character-strings of up to 255 bytes, as a long DKIM key is published
            data = value.encode()
            return TXT([data[i:i + 255] for i in range(0, len(data), 255)] or [b""])
        return _RDATA[kind](value)


@contextmanager
def dns_server() -> Iterator[tuple[DnsZone, str]]:
    """A DNS server on 127.0.0.1 for the `with` block: its zone, and its `host:port` for NEWSLETTER_DNS."""
    zone = DnsZone()
    server = DNSServer(zone, address="127.0.0.1", port=0, logger=_QUIET)
    server.start_thread()
    try:
        yield zone, f"127.0.0.1:{server.server.server_address[1]}"
    finally:
        server.stop()
        server.server.server_close()


@contextmanager
def silent_dns_server() -> Iterator[str]:
    """A UDP port on 127.0.0.1 that takes queries and never answers: a resolver that hangs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()
