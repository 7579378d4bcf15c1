"""A local stand-in for SendGrid's v3 API: a real HTTP server on 127.0.0.1.

It answers POST /v3/mail/send as SendGrid does (202 with X-Message-Id, or an
error body of the documented shape), checks every body against SendGrid's
published JSON Schema (read from ../shared/sendgrid/ when that folder exists)
and against the rules the schema cannot express (FACTS.md), and serves the
suppression lists page by page with `Link` headers. Tests script faults
(429, 5xx, dropped, cut or idle-closed connections, stalled or trickled
answers) with `script()`.

Used by the tests and by the benchmarks; nothing in the package imports it.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import select
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

SHARED_SENDGRID = Path(__file__).resolve().parents[2] / "shared" / "sendgrid"
SCHEMA_FILE = SHARED_SENDGRID / "mail_send_request.patched.schema.json"
RESERVED_HEADERS = {
    "x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
    "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc", "bcc",
}
SUPPRESSION_KINDS = ("unsubscribes", "bounces", "spam_reports", "invalid_emails", "blocks")
DEFAULT_PAGE_LIMIT = 500


# -- scripted answers to POST /v3/mail/send ---------------------------------------------

@dataclass
class Respond:
    """Answer with this status (and headers, body) instead of validating."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    raw: bytes | None = None  # a body that is not SendGrid's JSON (a proxy's HTML page, say)


def too_many_requests(reset_in: float = 1.0) -> Respond:
    """A 429 as SendGrid sends it: X-RateLimit-* headers, the reset in unix seconds."""
    return Respond(429, {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
                         "X-RateLimit-Reset": str(int(time.time() + reset_in))},
                   {"errors": [{"field": None, "message": "too many requests"}]})


@dataclass
class Accept:
    """Handle the request as if nothing were scripted (to script a fault for a later one).

    `then_close`: answer as usual, keep-alive and all, then close the connection, as a
    server closes one left idle. The answer and the FIN leave in one segment, so the
    client's kernel knows the connection is closed as soon as it has the answer.
    """

    then_close: bool = False


@dataclass
class Drop:
    """Read the request, then close the connection without an answer.

    `accept`: process it first (the mail counts as accepted), as a server that acted
    on a request and then lost the connection.
    """

    accept: bool = False


@dataclass
class Cut:
    """Process the request (it counts as accepted), write the first bytes of the answer,
    then reset the connection."""

    sent: bytes = b"HTTP/1.1 202 Accepted\r\nX-Mess"


@dataclass
class Trickle:
    """Process the request and answer normally, but one byte every `interval` seconds
    (the answer padded to `length` bytes), until done or the client hangs up."""

    interval: float = 0.25
    length: int = 240


@dataclass
class Stall:
    """Read the request, then hold the answer until the client hangs up (it timed out) or
    `seconds` pass, then answer normally if anyone is still there.

    Event-driven: the stall ends when the client gives up, however loaded the machine.
    """

    seconds: float = 120.0
    accept: bool = True  # whether SendGrid "processed" it: the mail counts as accepted
    release: threading.Event | None = None  # set by the test: answer now


Fault = Respond | Accept | Drop | Cut | Trickle | Stall


def load_schema() -> dict[str, Any] | None:
    if not SCHEMA_FILE.is_file():
        return None
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


class SendGridDouble:
    """Start with `start()` (returns the base URL), stop with `stop()`."""

    def __init__(self, api_key: str | None = None, schema: dict[str, Any] | None = None,
                 validate: bool = True) -> None:
        self.api_key = api_key or "SG." + secrets.token_urlsafe(16) + "." + secrets.token_urlsafe(24)
        self.validate = validate
        self._validator = None
        schema = schema if schema is not None else (load_schema() if validate else None)
        if schema is not None:
            import jsonschema

            self._validator = jsonschema.Draft202012Validator(schema)
        self.schema_checked = self._validator is not None
        self.lock = threading.Lock()
        self.script_queue: deque[Fault] = deque()
        self.mail_requests: list[dict[str, Any]] = []   # every mail/send body received
        self.accepted: list[dict[str, Any]] = []        # bodies answered 202
        self.rejections: list[list[str]] = []           # validation errors of rejected bodies
        self.request_headers: list[dict[str, str]] = []
        self.suppressions: dict[str, list[dict[str, Any]]] = {kind: [] for kind in SUPPRESSION_KINDS}
        self.group_suppressions: dict[int, list[str]] = {}
        self.suppression_pages_served = 0
        self.suppression_requests: list[str] = []  # path and query of every suppression GET
        self.suppression_script: deque[Fault] = deque()
        self.suppression_links = True  # False: pages without Link headers (offset paging only)
        self.mail_times: list[float] = []               # time.time() each mail/send body arrived
        self.connections = 0                            # TCP connections accepted (keep-alive shows)
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # -- life cycle
    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"double": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval (0.5 s by default, per test).
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> SendGridDouble:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting and inspection
    def script(self, *answers: Fault) -> None:
        """Queue answers for the next mail/send requests, one each, in order."""
        with self.lock:
            self.script_queue.extend(answers)

    def script_suppressions(self, *answers: Fault) -> None:
        """Queue answers for the next suppression GETs (any list), one each, in order."""
        with self.lock:
            self.suppression_script.extend(answers)

    def accepted_recipients(self) -> list[str]:
        """Every `to` address of every accepted request, duplicates kept."""
        return [to["email"] for body in self.accepted for p in body["personalizations"] for to in p["to"]]

    # -- mail/send
    def check_mail_body(self, body: Any) -> list[str]:
        """Every reason SendGrid would answer 400; empty when the body is valid."""
        errors: list[str] = []
        if self._validator is not None:
            errors += [f"{'.'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
                       for e in self._validator.iter_errors(body)]
        if not isinstance(body, dict):
            return errors or ["body is not a JSON object"]
        errors += _facts_errors(body)
        return errors

    def handle_mail_send(self, body: Any) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        errors = self.check_mail_body(body)
        if errors:
            self.rejections.append(errors)
            return 400, {}, {"errors": [{"message": e, "field": None, "help": None} for e in errors]}
        with self.lock:
            self.accepted.append(body)
            message_id = f"double-{next(self._ids):06d}-{secrets.token_hex(4)}"
        return 202, {"X-Message-Id": message_id}, None

    # -- suppressions
    def suppression_page(self, kind: str, query: dict[str, list[str]]) -> tuple[list[dict[str, Any]], str]:
        limit = int(query.get("limit", [DEFAULT_PAGE_LIMIT])[0])
        offset = int(query.get("offset", [0])[0])
        rows = self.suppressions[kind]
        page = rows[offset:offset + limit]
        links = [f'<{self.url}/v3/suppression/{kind}?limit={limit}&offset=0>; rel="first"']
        if offset + limit < len(rows):
            links.append(f'<{self.url}/v3/suppression/{kind}?limit={limit}&offset={offset + limit}>; rel="next"')
        if offset > 0:
            links.append(f'<{self.url}/v3/suppression/{kind}?limit={limit}&offset={max(offset - limit, 0)}>; rel="prev"')
        last = max((len(rows) - 1) // limit * limit, 0)
        links.append(f'<{self.url}/v3/suppression/{kind}?limit={limit}&offset={last}>; rel="last"')
        with self.lock:
            self.suppression_pages_served += 1
        return page, ", ".join(links)


def _facts_errors(body: dict[str, Any]) -> list[str]:
    """The rules of FACTS.md that the JSON Schema cannot express."""
    errors: list[str] = []
    content = body.get("content") or []
    types = [c.get("type") for c in content if isinstance(c, dict)]
    if "text/html" in types and "text/plain" in types and types.index("text/plain") > types.index("text/html"):
        errors.append("content: text/plain must come before text/html (RFC 1341, section 7.2)")
    if types and types[0] not in ("text/plain", "text/html") and "text/plain" in types:
        errors.append("content: text/plain must come first")
    personalizations = body.get("personalizations") or []
    seen: set[str] = set()
    total = 0
    for index, p in enumerate(personalizations):
        if not isinstance(p, dict):
            continue
        for kind in ("to", "cc", "bcc"):
            for recipient in p.get(kind) or []:
                total += 1
                email = str(recipient.get("email", "")).lower()
                if email in seen:
                    errors.append(f"personalizations.{index}.{kind}: You have included {email} more than once")
                seen.add(email)
                name = recipient.get("name")
                if isinstance(name, str) and re.search(r"[;,]", name):
                    errors.append(f"personalizations.{index}.{kind}: names may not contain ; or , ({name!r})")
        for key in ("substitutions", "custom_args"):
            value = p.get(key)
            # Counted as ASCII-escaped compact JSON, the largest form (SendGrid does not say how it counts).
            if isinstance(value, dict) and len(json.dumps(value, separators=(",", ":"))) > 10_000:
                errors.append(f"personalizations.{index}.{key}: over 10,000 bytes")
        for header in (p.get("headers") or {}):
            if header.lower() in RESERVED_HEADERS or " " in header or not header.isascii():
                errors.append(f"personalizations.{index}.headers: {header!r} is reserved or invalid")
    if total > 1000:
        errors.append(f"personalizations: {total} recipients; at most 1000 per request")
    if body.get("reply_to") and body.get("reply_to_list"):
        errors.append("reply_to and reply_to_list cannot both be set")
    for header in (body.get("headers") or {}):
        if header.lower() in RESERVED_HEADERS:
            errors.append(f"headers: {header!r} is reserved")
    if body.get("custom_args") == {}:
        errors.append("custom_args cannot be empty")
    categories = body.get("categories") or []
    if len(categories) > 10 or len(set(categories)) != len(categories):
        errors.append("categories: at most 10, unique")
    return errors


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    double: SendGridDouble

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.double.lock:
            self.double.connections += 1

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        try:
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a test of timeouts): nothing to answer

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.double.api_key}":
            return True
        self._send_json(401, {"errors": [{"field": None, "message": "The provided authorization grant is invalid, expired, or revoked"}]})
        return False

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answered_as_scripted(self, answer: Fault | None) -> bool:
        """Carry out a scripted drop or response; False when the request goes on."""
        if isinstance(answer, Drop):
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True
        if isinstance(answer, Respond) and answer.raw is not None:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.raw)))
            self.end_headers()
            self.wfile.write(answer.raw)
            return True
        if isinstance(answer, Respond):
            default = {"errors": [{"field": None, "message": f"scripted {answer.status}"}]}
            self._send_json(answer.status, answer.body if answer.body is not None else default, answer.headers)
            return True
        return False

    def do_POST(self) -> None:
        raw = self._read_body()
        self.double.request_headers.append(dict(self.headers.items()))
        if urlsplit(self.path).path != "/v3/mail/send":
            self._send_json(404, {"errors": [{"field": None, "message": "not found"}]})
            return
        if not self._authorized():
            return
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._send_json(400, {"errors": [{"field": None, "message": f"Bad Request: {exc}"}]})
            return
        with self.double.lock:
            self.double.mail_requests.append(body)
            self.double.mail_times.append(time.time())
            answer = self.double.script_queue.popleft() if self.double.script_queue else None
        if isinstance(answer, Drop) and answer.accept:
            self.double.handle_mail_send(body)
        if self._answered_as_scripted(answer):
            return
        if isinstance(answer, Stall):
            if answer.accept:
                status, headers, payload = self.double.handle_mail_send(body)
            else:
                errors = self.double.check_mail_body(body)
                status, headers, payload = (400, {}, {"errors": [{"message": e} for e in errors]}) if errors else (
                    202, {"X-Message-Id": "never-processed"}, None)
            self._wait_for_hang_up(answer.seconds, answer.release)
            self._send_json(status, payload, headers)
            return
        status, headers, payload = self.double.handle_mail_send(body)
        if isinstance(answer, Cut):
            self.close_connection = True
            try:
                self.connection.sendall(answer.sent)
                # Linger 0: close() sends a reset, not a FIN, as a crashing server or proxy does.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            finally:
                self.connection.close()
            return
        if isinstance(answer, Trickle):
            self._trickle(status, headers, payload, answer)
            return
        if isinstance(answer, Accept) and answer.then_close:
            self.close_connection = True
            # Corked, the answer waits for the FIN and both leave together.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            self._send_json(status, payload, headers)
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            return
        self._send_json(status, payload, headers)

    def _wait_for_hang_up(self, seconds: float, release: threading.Event | None = None) -> None:
        """Block until the client closes the connection (readable at EOF), `release` is set
        or `seconds` pass."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if release is not None:
                if release.is_set():
                    return
                left = min(left, 0.05)
            readable, _, _ = select.select([self.connection], [], [], left)
            if readable:
                try:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        return
                except OSError:
                    return
                time.sleep(0.01)  # bytes of a next request that will never be read: keep waiting

    def _trickle(self, status: int, headers: dict[str, str], payload: Any, answer: Trickle) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        head = f"HTTP/1.1 {status} Accepted\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        padding = max(answer.length - len(head) - 40, 1)
        raw = (head + f"X-Padding: {'a' * padding}\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data
        self.close_connection = True
        for index in range(len(raw)):
            try:
                self.connection.sendall(raw[index:index + 1])
            except OSError:
                return  # the client gave up
            time.sleep(answer.interval)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if not self._authorized():
            return
        if parts.path.startswith(("/v3/suppression/", "/v3/asm/")):
            with self.double.lock:
                self.double.suppression_requests.append(self.path)
                answer = self.double.suppression_script.popleft() if self.double.suppression_script else None
            if self._answered_as_scripted(answer):
                return
            if isinstance(answer, Stall):
                self._wait_for_hang_up(answer.seconds)  # then answer normally, if anyone is still there
        match = re.fullmatch(r"/v3/suppression/(\w+)", parts.path)
        if match and match[1] in SUPPRESSION_KINDS:
            page, link = self.double.suppression_page(match[1], query)
            self._send_json(200, page, {"Link": link} if self.double.suppression_links else {})
            return
        match = re.fullmatch(r"/v3/asm/groups/(\d+)/suppressions", parts.path)
        if match:
            group = int(match[1])
            if group not in self.double.group_suppressions:
                self._send_json(404, {"errors": [{"field": None, "message": "Group not found"}]})
                return
            self._send_json(200, self.double.group_suppressions[group])
            return
        self._send_json(404, {"errors": [{"field": None, "message": "not found"}]})
