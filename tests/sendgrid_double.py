"""A local stand-in for SendGrid's v3 API: a real HTTP server on 127.0.0.1.

It answers POST /v3/mail/send as SendGrid does (202 with X-Message-Id, or an
error body of the documented shape), checks every body against SendGrid's
published JSON Schema (read from ../shared/sendgrid/ when that folder exists)
and against the rules the schema cannot express (FACTS.md), and serves the
suppression lists page by page with `Link` headers. Tests script faults
(429, 5xx, dropped, cut or idle-closed connections, stalled or trickled
answers) with `script()`. `latency` delays every mail/send answer, as SendGrid's
round trip does; each connection has its own thread, so concurrent requests wait at once.

Used by the tests and by the benchmarks; nothing in the package imports it.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import sys
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


class KeyCatcher:
    """A second local HTTP server, the other host a redirect points to: it records every
    request that carries an Authorization header, and answers each with an empty 200."""

    def __init__(self) -> None:
        self.caught: list[tuple[str, str, str]] = []  # method, path, Authorization
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if self.headers.get("Authorization") is not None:
                    catcher.caught.append((self.command, self.path, self.headers["Authorization"]))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = do_PATCH = do_DELETE = _record

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://localhost:{port}"  # another name than the double's 127.0.0.1: another host

    def __enter__(self) -> KeyCatcher:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


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
    arrived: threading.Event | None = None  # set by the double once the request is read


Fault = Respond | Accept | Drop | Cut | Trickle | Stall


def load_schema() -> dict[str, Any] | None:
    if not SCHEMA_FILE.is_file():
        return None
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


class _QuietServer(ThreadingHTTPServer):
    """A client gone mid-answer (a send killed, or timed out while a Stall held its answer) is no
    error of the double's: socketserver would print its traceback to sys.stderr, which is the
    captured stderr of whatever command a test runs in-process at that moment."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class SendGridDouble:
    """Start with `start()` (returns the base URL), stop with `stop()`."""

    def __init__(self, api_key: str | None = None, schema: dict[str, Any] | None = None,
                 validate: bool = True, latency: float = 0.0) -> None:
        self.api_key = api_key or "SG." + secrets.token_urlsafe(16) + "." + secrets.token_urlsafe(24)
        self.validate = validate
        self.latency = latency  # seconds each mail/send waits before its answer (benchmarks)
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
        # path, or "METHOD path" → (status, base URL): a GET or an account call of it is redirected there.
        self.redirects: dict[str, tuple[int, str]] = {}
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self.account = AccountAPI(self, load_account_spec() if validate else None)  # the account API

    # -- life cycle
    def start(self) -> str:
        handler = type("Handler", (_AccountRoutes, _Handler), {"double": self})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
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
        errors += self.account.mail_errors(body)  # send_at and batch_id (the account section below)
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

    def _redirected(self, body_read: bool = False) -> bool:
        """Answer a redirect the test set for this path (as a misconfigured proxy might)."""
        parts = urlsplit(self.path)
        redirect = (self.double.redirects.get(f"{self.command} {parts.path}")
                    or self.double.redirects.get(parts.path))
        if redirect is None:
            return False
        if not body_read:
            self._read_body()
        status, base = redirect
        self._send_json(status, None, {"Location": base + self.path})
        return True

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
        if self._account_answered("POST", raw):  # type: ignore[attr-defined]
            return
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
        if self.double.latency:
            time.sleep(self.double.latency)  # outside the lock: requests wait concurrently
        with self.double.lock:
            self.double.mail_requests.append(body)
            self.double.mail_times.append(time.time())
            answer = self.double.script_queue.popleft() if self.double.script_queue else None
        if isinstance(answer, Drop) and answer.accept:
            self.double.handle_mail_send(body)
        if self._answered_as_scripted(answer):
            return
        if isinstance(answer, Stall):
            if answer.arrived is not None:
                answer.arrived.set()
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
        if self._redirected():
            return
        if not self._authorized():
            return
        if self._account_answered("GET", b""):  # type: ignore[attr-defined]
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


# == The account API: batches, scheduled sends, stats, scopes, senders, domains, groups ==
# Kept apart from mail send and suppressions above: `SendGridDouble.account` holds its
# state, `_Handler` hands it every request whose path is an operation of
# sendgrid-account.oas.json. Each request is checked against that spec (parameters and
# body; answered 400 with the violations when it fails), and each answer the double
# gives is checked against the spec's response schema (`AccountAPI.answer_violations`,
# which the tests expect to stay empty: the double must not drift from SendGrid).

ACCOUNT_SPEC_FILE = SHARED_SENDGRID / "sendgrid-account.oas.json"

# The scope each operation needs (FACTS.md, "API key scopes"); None: any valid key.
ACCOUNT_SCOPES: dict[tuple[str, str], str | None] = {
    ("POST", "/v3/mail/batch"): "mail.batch.create",
    ("GET", "/v3/mail/batch/{batch_id}"): "mail.batch.read",
    ("POST", "/v3/user/scheduled_sends"): "user.scheduled_sends.create",
    ("GET", "/v3/user/scheduled_sends"): "user.scheduled_sends.read",
    ("GET", "/v3/user/scheduled_sends/{batch_id}"): "user.scheduled_sends.read",
    ("PATCH", "/v3/user/scheduled_sends/{batch_id}"): "user.scheduled_sends.update",
    ("DELETE", "/v3/user/scheduled_sends/{batch_id}"): "user.scheduled_sends.delete",
    ("GET", "/v3/categories"): "categories.read",
    ("GET", "/v3/categories/stats"): "categories.stats.read",
    ("GET", "/v3/categories/stats/sums"): "categories.stats.sums.read",
    ("GET", "/v3/stats"): "stats.read",
    ("GET", "/v3/scopes"): None,
    ("GET", "/v3/verified_senders"): None,
    ("GET", "/v3/whitelabel/domains"): "whitelabel.read",
    ("GET", "/v3/asm/groups"): "asm.groups.read",
    ("POST", "/v3/asm/groups"): "asm.groups.create",
    ("GET", "/v3/asm/groups/{group_id}"): "asm.groups.read",
}
# A key with full access, as the double's default: every scope the commands use.
FULL_ACCESS_SCOPES = sorted({s for s in ACCOUNT_SCOPES.values() if s} | {
    "mail.send", "suppression.read", "suppression.bounces.read", "suppression.blocks.read",
    "suppression.spam_reports.read", "suppression.invalid_emails.read", "suppression.unsubscribes.read",
    "asm.groups.suppressions.read", "asm.suppressions.global.read",
})
METRICS = ("blocks", "bounce_drops", "bounces", "clicks", "deferred", "delivered", "invalid_emails", "opens",
           "processed", "requests", "spam_report_drops", "spam_reports", "unique_clicks", "unique_opens",
           "unsubscribe_drops", "unsubscribes")
MAX_CANCELLED_BATCHES = 10
CANCEL_CUTOFF_SECONDS = 600  # no pause or cancel later than 10 minutes before send_at


def _with_nullable(schema: Any) -> Any:
    """OAS 3.0 `nullable: true` as JSON Schema: the spec uses it inside a 3.1 document (FACTS.md)."""
    if isinstance(schema, list):
        return [_with_nullable(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _with_nullable(v) for k, v in schema.items() if k not in ("nullable", "example", "examples")}
    if schema.get("nullable") is True and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
    return out


@dataclass
class _Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    parameters: list[dict[str, Any]]
    body_schema: dict[str, Any] | None
    responses: dict[str, Any]


class AccountSpec:
    """The operations of sendgrid-account.oas.json, matched by method and path."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.operations: list[_Operation] = []
        for template, item in spec["paths"].items():
            shared = item.get("parameters", [])
            pattern = re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)))
            for method, op in item.items():
                if method == "parameters":
                    continue
                body = (op.get("requestBody") or {}).get("content", {}).get("application/json", {}).get("schema")
                self.operations.append(_Operation(
                    method.upper(), template, pattern, [*shared, *op.get("parameters", [])],
                    _with_nullable(body) if body else None, op.get("responses", {})))

    def find(self, method: str, path: str) -> _Operation | None:
        for op in self.operations:
            if op.method == method and op.pattern.fullmatch(path):
                return op
        return None

    def templates(self) -> set[str]:
        return {op.template for op in self.operations}

    def request_errors(self, op: _Operation, path: str, query: dict[str, list[str]], raw: bytes) -> list[str]:
        """Why SendGrid would refuse this request by its spec; empty when it conforms."""
        import jsonschema

        errors: list[str] = []
        match = op.pattern.fullmatch(path)
        assert match is not None
        known = set()
        for parameter in op.parameters:
            name, where_in, schema = parameter["name"], parameter["in"], parameter.get("schema", {})
            if where_in == "path":
                values = [match[name]]
            elif where_in == "query":
                known.add(name)
                values = query.get(name, [])
                if not values:
                    if parameter.get("required"):
                        errors.append(f"query parameter {name} is required")
                    continue
            else:
                continue
            for value in values:
                errors += [f"{where_in} parameter {name}={value!r}: {e}" for e in _parameter_errors(value, schema)]
        errors += [f"query parameter {name} is not a parameter of {op.method} {op.template}"
                   for name in query if name not in known]
        if op.body_schema is not None:
            if not raw:
                errors.append("request body: missing (JSON expected)")
            else:
                try:
                    body = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, ValueError) as exc:
                    return [*errors, f"request body: not JSON ({exc})"]
                validator = jsonschema.Draft202012Validator(op.body_schema)
                errors += [f"request body {'.'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
                           for e in validator.iter_errors(body)]
        elif raw:
            errors.append(f"request body: {op.method} {op.template} takes none")
        return errors

    def answer_errors(self, op: _Operation, status: int, payload: Any) -> list[str]:
        """Where the double's own answer departs from the spec's response (documented statuses only)."""
        import jsonschema

        response = op.responses.get(str(status))
        if response is None:
            return [] if status >= 400 else [f"{op.method} {op.template}: {status} is not a documented answer"]
        schema = (response.get("content") or {}).get("application/json", {}).get("schema")
        if schema is None:
            return [] if payload is None else [f"{op.method} {op.template} {status}: a body where none is documented"]
        validator = jsonschema.Draft202012Validator(_with_nullable(schema))
        return [f"{op.method} {op.template} {status} {'.'.join(map(str, e.absolute_path))}: {e.message}"
                for e in validator.iter_errors(payload)]


def _parameter_errors(value: str, schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type", "string")
    try:
        typed: Any = {"integer": int, "number": float}.get(kind, str)(value)
    except ValueError:
        return [f"not {kind}"]
    if kind == "boolean":
        if value not in ("true", "false"):
            return ["not boolean (true or false)"]
        typed = value == "true"
    if "enum" in schema and typed not in schema["enum"]:
        return [f"not one of {schema['enum']}"]
    return []


def _zero_metrics() -> dict[str, int]:
    return dict.fromkeys(METRICS, 0)


class AccountAPI:
    """The state of the account behind the key, and the answers to its operations."""

    def __init__(self, double: SendGridDouble, spec: dict[str, Any] | None) -> None:
        self.double = double
        self.spec = AccountSpec(spec) if spec is not None else None
        self.scopes: list[str] = list(FULL_ACCESS_SCOPES)
        self.verified_senders: list[dict[str, Any]] = []
        self.domains: list[dict[str, Any]] = []
        self.groups: dict[int, dict[str, Any]] = {}
        self.batches: list[str] = []                       # batch ids created
        self.scheduled: dict[str, str] = {}                # batch id → pause/cancel
        self.category_stats: dict[str, dict[str, dict[str, int]]] = {}  # category → date → metrics
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []  # method, path, query
        self.rejections: list[list[str]] = []             # spec violations of requests answered 400
        self.answer_violations: list[str] = []             # the double's answers that break the spec
        self.script_queue: deque[Respond | Accept | Drop | Stall] = deque()
        self._group_ids = itertools.count(101)

    # -- set-up helpers for tests
    def verify_sender(self, email: str, verified: bool = True) -> None:
        self.verified_senders.append({
            "id": len(self.verified_senders) + 1, "nickname": email, "from_email": email, "from_name": "",
            "reply_to": email, "reply_to_name": "", "address": "1 Test Street", "address2": "", "state": "",
            "city": "Testbury", "zip": "TB1 1AA", "country": "GB", "verified": verified, "locked": False})

    def authenticate_domain(self, domain: str, valid: bool = True) -> None:
        record = {"valid": valid, "type": "cname", "host": f"em1.{domain}", "data": "u1.wl.sendgrid.net"}
        self.domains.append({
            "id": len(self.domains) + 1, "user_id": 1, "subdomain": "em1", "domain": domain, "username": "test",
            "ips": [], "custom_spf": False, "default": False, "legacy": False, "automatic_security": True,
            "valid": valid, "dns": {"mail_cname": record, "dkim1": record, "dkim2": record}})

    def add_group(self, name: str, description: str = "") -> int:
        group_id = next(self._group_ids)
        self.groups[group_id] = {"id": group_id, "name": name, "description": description or name,
                                 "is_default": False, "unsubscribes": 0, "last_email_sent_at": None}
        return group_id

    def add_stats(self, category: str, date: str, **metrics: int) -> None:
        day = self.category_stats.setdefault(category, {}).setdefault(date, _zero_metrics())
        for name, count in metrics.items():
            assert name in METRICS, name
            day[name] += count

    def script(self, *answers: Respond | Accept | Drop | Stall) -> None:
        """Queue answers for the next account requests, one each, in order."""
        with self.double.lock:
            self.script_queue.extend(answers)

    def requested(self, method: str, template_prefix: str) -> list[tuple[str, str, dict[str, list[str]]]]:
        return [r for r in self.requests if r[0] == method and r[1].startswith(template_prefix)]

    # -- dispatch
    def owns(self, path: str) -> bool:
        """Whether `path` is one of the account operations' paths (any method)."""
        if self.spec is None:
            return any(re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", t), path) for _, t in ACCOUNT_SCOPES)
        return any(op.pattern.fullmatch(path) for op in self.spec.operations)

    def handle(self, method: str, path: str, query: dict[str, list[str]], raw: bytes
               ) -> tuple[int, dict[str, str], Any]:
        with self.double.lock:
            self.requests.append((method, path, query))
        template = next((t for (m, t) in ACCOUNT_SCOPES
                         if m == method and re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", t), path)), None)
        op = self.spec.find(method, path) if self.spec is not None else None
        if template is None:
            return 405, {}, {"errors": [{"field": None, "message": f"{method} is not allowed on {path}"}]}
        if op is not None:
            errors = self.spec.request_errors(op, path, query, raw) if self.spec is not None else []
            if errors:
                self.rejections.append(errors)
                return 400, {}, {"errors": [{"field": None, "message": e} for e in errors]}
        scope = ACCOUNT_SCOPES[(method, template)]
        if scope is not None and scope not in self.scopes:
            return 403, {}, {"errors": [{"field": None, "message": "access forbidden"}]}
        body = json.loads(raw) if raw else None
        status, headers, payload = self._answer(method, template, path, query, body)
        if op is not None and self.spec is not None:
            self.answer_violations += self.spec.answer_errors(op, status, payload)
        return status, headers, payload

    def _answer(self, method: str, template: str, path: str, query: dict[str, list[str]], body: Any
                ) -> tuple[int, dict[str, str], Any]:
        last = path.rsplit("/", 1)[-1]
        if template == "/v3/scopes":
            return 200, {}, {"scopes": list(dict.fromkeys(self.scopes))}
        if template == "/v3/verified_senders":
            limit = int(float(query.get("limit", ["100"])[0]))
            after = int(float(query.get("lastSeenID", ["0"])[0]))
            results = [s for s in self.verified_senders if s["id"] > after][:limit]
            return 200, {}, {"results": results}
        if template == "/v3/whitelabel/domains":
            limit = int(query.get("limit", ["50"])[0])
            offset = int(query.get("offset", ["0"])[0])
            return 200, {}, self.domains[offset:offset + limit]
        if template == "/v3/asm/groups" and method == "GET":
            return 200, {}, [dict(g) for g in self.groups.values()]
        if template == "/v3/asm/groups" and method == "POST":
            name, description = (body or {}).get("name"), (body or {}).get("description")
            if not name or not description:
                return 400, {}, {"errors": [{"field": "name" if not name else "description",
                                             "message": "required when creating a group"}]}
            if any(g["name"] == name for g in self.groups.values()):
                return 400, {}, {"errors": [{"field": "name", "message": "This group name is already in use"}]}
            group_id = self.add_group(name, description)
            group = self.groups[group_id]
            return 201, {}, {k: group[k] for k in ("id", "name", "description", "is_default")}
        if template == "/v3/asm/groups/{group_id}":
            group = self.groups.get(int(last)) if last.isdigit() else None
            if group is None:
                return 404, {}, {"errors": [{"field": None, "message": "Group not found"}]}
            return 200, {}, {**group, "last_email_sent_at": None}
        if template == "/v3/mail/batch":
            batch_id = secrets.token_urlsafe(24).replace("-", "x").replace("_", "y")
            self.batches.append(batch_id)
            return 201, {}, {"batch_id": batch_id}
        if template == "/v3/mail/batch/{batch_id}":
            if last not in self.batches:
                return 400, {}, {"errors": [{"field": None, "message": "invalid batch id"}]}
            return 200, {}, {"batch_id": last}
        if template == "/v3/user/scheduled_sends" and method == "GET":
            return 200, {}, [{"batch_id": b, "status": s} for b, s in self.scheduled.items()]
        if template == "/v3/user/scheduled_sends":
            return self._pause_or_cancel(body["batch_id"], body["status"])
        if template == "/v3/user/scheduled_sends/{batch_id}":
            if method == "GET":
                return 200, {}, [{"batch_id": last, "status": self.scheduled[last]}] if last in self.scheduled else []
            if last not in self.scheduled:
                return 404, {}, {"errors": [{"field": None, "message": "batch id has no pause or cancel"}]}
            if method == "DELETE":
                del self.scheduled[last]
            else:
                self.scheduled[last] = body["status"]
            return 204, {}, None
        if template == "/v3/categories/stats":
            return self._category_stats(query)
        return 404, {}, {"errors": [{"field": None, "message": f"the double does not serve {method} {template}"}]}

    def mail_errors(self, body: dict[str, Any]) -> list[str]:
        """What SendGrid refuses in a mail body's scheduling: send_at past 72 hours, an unknown batch id."""
        errors: list[str] = []
        send_at = body.get("send_at")
        if isinstance(send_at, int) and send_at > time.time() + 72 * 3600:
            errors.append("send_at: scheduling more than 72 hours in advance is forbidden")
        batch_id = body.get("batch_id")
        if batch_id is not None and batch_id not in self.batches:
            errors.append(f"batch_id: {batch_id!r} is not a batch id of this account (POST /v3/mail/batch)")
        # A cancelled batch id is not refused: SendGrid takes the mail and discards it at send_at,
        # which is why a send after a cancel must use a new batch (the tests check the ids).
        return errors

    def scheduled_recipients(self, batch_id: str) -> list[str]:
        """The `to` addresses SendGrid holds for a batch (accepted with that batch id), cancelled or not."""
        return [to["email"] for body in list(self.double.accepted) if body.get("batch_id") == batch_id
                for p in body["personalizations"] for to in p["to"]]

    def send_at_of(self, batch_id: str) -> int | None:
        """The send_at of the accepted mail of a batch, if any carried one."""
        for body in list(self.double.accepted):
            if body.get("batch_id") == batch_id and isinstance(body.get("send_at"), int):
                return int(body["send_at"])
        return None

    def _pause_or_cancel(self, batch_id: str, status: str) -> tuple[int, dict[str, str], Any]:
        def refused(message: str) -> tuple[int, dict[str, str], Any]:
            return 400, {}, {"errors": [{"field": "batch_id", "message": message, "help": {}}]}

        if batch_id not in self.batches:
            return refused("invalid batch id")
        if batch_id in self.scheduled:
            return refused("batch id already has a status: change it with PATCH or remove it with DELETE")
        if len(self.scheduled) >= MAX_CANCELLED_BATCHES:
            return refused("max limit reached")
        send_at = self.send_at_of(batch_id)
        if send_at is not None and send_at - time.time() < CANCEL_CUTOFF_SECONDS:
            return refused("cannot cancel or pause a send less than 10 minutes before its send time")
        self.scheduled[batch_id] = status
        return 201, {}, {"batch_id": batch_id, "status": status}

    def _category_stats(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        import datetime as dt

        def refused(message: str) -> tuple[int, dict[str, str], Any]:
            return 400, {}, {"errors": [{"field": None, "message": message}]}

        try:
            start = dt.date.fromisoformat(query["start_date"][0])
            end = dt.date.fromisoformat(query.get("end_date", [dt.date.today().isoformat()])[0])
        except ValueError:
            return refused("dates must be YYYY-MM-DD")
        categories = query["categories"]
        if len(categories) > 10:
            return refused("at most 10 categories")
        if start > end:
            return refused("start_date must be before end_date")
        if query.get("aggregated_by", ["day"])[0] != "day":
            return refused("the double sums by day only")
        days = []
        day = start
        while day <= end:
            stats = [{"type": "category", "name": name,
                      "metrics": dict(self.category_stats.get(name, {}).get(day.isoformat(), _zero_metrics()))}
                     for name in categories]
            days.append({"date": day.isoformat(), "stats": stats})
            day += dt.timedelta(days=1)
        return 200, {}, days


def load_account_spec() -> dict[str, Any] | None:
    if not ACCOUNT_SPEC_FILE.is_file():
        return None
    return json.loads(ACCOUNT_SPEC_FILE.read_text(encoding="utf-8"))


class _AccountRoutes(BaseHTTPRequestHandler):
    """The handler's part for the account API (mixed in front of `_Handler` by `start()`)."""

    double: SendGridDouble

    def _account_answered(self, method: str, raw: bytes | None = None) -> bool:
        """Answer an account request; False when the path is none of the account's."""
        parts = urlsplit(self.path)
        account = self.double.account
        if not account.owns(parts.path):
            return False
        if self._redirected(body_read=raw is not None):  # type: ignore[attr-defined]
            return True
        if raw is None:
            raw = self._read_body()  # type: ignore[attr-defined]
        if not self._authorized():  # type: ignore[attr-defined]
            return True
        with self.double.lock:
            answer = account.script_queue.popleft() if account.script_queue else None
        if self._answered_as_scripted(answer):  # type: ignore[attr-defined]
            return True
        if isinstance(answer, Stall):
            time.sleep(answer.seconds)
        status, headers, payload = account.handle(method, parts.path, parse_qs(parts.query), raw)
        self._send_json(status, payload, headers)  # type: ignore[attr-defined]
        return True

    def do_PATCH(self) -> None:
        if not self._account_answered("PATCH"):
            self._read_body()  # type: ignore[attr-defined]
            self._send_json(404, {"errors": [{"field": None, "message": "not found"}]})  # type: ignore[attr-defined]

    def do_DELETE(self) -> None:
        if not self._account_answered("DELETE"):
            self._read_body()  # type: ignore[attr-defined]
            self._send_json(404, {"errors": [{"field": None, "message": "not found"}]})  # type: ignore[attr-defined]
