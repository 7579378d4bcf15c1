"""The SendGrid transport: POST /v3/mail/send over kept-alive HTTP connections.

http.client rather than the sendgrid package: it keeps connections alive between
requests (the package opens one per request through urllib), takes the body as
bytes already serialized, and tells a refused or reset connection apart from an
answer that never came, which decides whether a request may be posted again.

When may a request without an answer be posted again? Only when SendGrid cannot
have acted on it, which is only while the request is not yet whole on the wire:
- the connection could not be made, or broke while the body was being written
  (http.client raised from `request()`): SendGrid never had a whole request.
Once the whole body went out, any failure is *uncertain*, never retried here:
- no answer within the timeout, which is a deadline for the whole exchange (a
  reply trickling a byte at a time cannot hold a request for ever);
- the connection closed or reset with no answer, or after the answer began (a
  status line and a few header bytes, then a reset): SendGrid had the request and
  may have processed it; once any byte of an answer arrived it certainly read it.
That holds for a *reused* keep-alive connection too. A server may close an idle
connection just before our request reaches it (the keep-alive race), but a server
that processed the request and then closed the connection looks exactly the same
from here: retrying that case once sent 2,000 duplicates out of 5,000. So, as
urllib3 does (`is_connection_dropped`), an idle connection is checked before it
is reused: one the server has closed is readable (EOF, or bytes nobody asked for)
and is thrown away for a fresh one. A drop on a connection that looked alive is
then a real failure of that request: uncertain.

Every message that quotes a library or a server goes through `errors.scrub`, so
the API key never appears in one.
"""

from __future__ import annotations

import http.client
import queue
import select
import socket
import threading
from urllib.parse import urlsplit

from newsletter import __version__
from newsletter.errors import SendError, keep_secret, scrub
from newsletter.sending.transport import NotPostedError, PreparedBatch, Response, RetryableError, UncertainError

# Answer headers a send acts on: rate limits and a redirect's target.
_KEPT_HEADERS = ("x-ratelimit", "retry-after", "location")

MAIL_SEND_PATH = "/v3/mail/send"


class SendGridTransport:
    """Posts batches to `base_url`; one connection per concurrent caller, reused."""

    def __init__(self, base_url: str, api_key: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
            raise SendError(f"NEWSLETTER_SENDGRID_URL {base_url!r} is not an http(s):// URL "
                            "(with a port from 1 to 65535, if any)")
        self._connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        self._host = parts.hostname
        self._port = port
        self._path = parts.path.rstrip("/") + MAIL_SEND_PATH
        self._timeout = timeout
        self._key = keep_secret(api_key)
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"newsletter/{__version__}",
        }
        # Idle connections; a thread takes one (or opens one) per request and gives it back.
        self._idle: queue.LifoQueue[http.client.HTTPConnection] = queue.LifoQueue()

    def post(self, batch: PreparedBatch) -> Response:
        """Post `batch` once; the caller decides about retries."""
        conn = self._idle_connection()
        try:
            response = self._exchange(conn, batch.body)
        except BaseException:
            conn.close()
            raise
        if response.will_close or getattr(response, "deadline_passed", False):
            conn.close()
        else:
            self._idle.put(conn)
        return Response(
            status=response.status,
            message_id=response.getheader("X-Message-Id") or "",
            body=response.data,  # type: ignore[attr-defined]
            headers={k: v for k, v in response.getheaders() if k.lower().startswith(_KEPT_HEADERS)},
        )

    def _idle_connection(self) -> http.client.HTTPConnection:
        """A kept-alive connection still open, or a new one (not yet connected)."""
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return self._connection_class(self._host, self._port, timeout=self._timeout)
            if conn.sock is not None and not _readable(conn.sock):
                return conn
            conn.close()  # the server closed it while idle (or sent what nobody asked for)

    def _exchange(self, conn: http.client.HTTPConnection, body: bytes) -> http.client.HTTPResponse:
        where = f"{self._host}:{self._port or ''}".rstrip(":")
        if conn.sock is None:
            try:
                conn.connect()
            except OSError as exc:  # refused, unreachable, DNS, connect timeout: nothing was sent
                raise RetryableError(f"cannot connect to {where}: {self._scrub(exc)}") from None
        assert conn.sock is not None
        deadline = _Deadline(conn.sock, self._timeout)
        try:
            try:
                conn.request("POST", self._path, body=body, headers=self._headers)
            except (OSError, http.client.HTTPException) as exc:
                # The body did not go out whole: SendGrid cannot act on a truncated request.
                raise RetryableError(f"connection to {where} failed while sending: {self._scrub(exc)}") from None
            except ValueError as exc:
                # http.client checks every header before it writes a byte; its message quotes the
                # header, the key included, so it is not repeated here.
                raise NotPostedError(f"could not make the request to {where} ({type(exc).__name__}: "
                                     "a header holds a character HTTP does not allow)") from None
            try:
                response = conn.getresponse()
                response.data = response.read()  # type: ignore[attr-defined]
            except (OSError, http.client.HTTPException) as exc:
                # The whole request went out: SendGrid may have acted on it, whatever came back.
                if deadline.passed or isinstance(exc, TimeoutError):
                    raise UncertainError(f"no whole answer from {where} within {self._timeout:g} s") from None
                if isinstance(exc, (ConnectionError, http.client.IncompleteRead, http.client.BadStatusLine)):
                    raise UncertainError(f"{where} closed the connection after the request was sent, before a "
                                         f"whole answer ({type(exc).__name__})") from None
                raise UncertainError(f"unreadable answer from {where}: {self._scrub(exc)}") from None
        finally:
            passed = deadline.finish()
        response.deadline_passed = passed  # type: ignore[attr-defined]  # the socket was shut: not reusable
        return response

    def _scrub(self, exc: BaseException) -> str:
        # Library messages should not hold the key, but an error line is never worth the risk.
        return scrub(str(exc) or type(exc).__name__, self._key)

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _readable(sock: socket.socket) -> bool:
    """Whether `sock` has something to read (an idle connection should not: EOF or stray bytes)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class _Deadline:
    """Shuts `sock` down once `seconds` pass, unless `finish()` came first.

    The socket's own timeout bounds each read; this bounds the whole exchange, so
    a server trickling its answer cannot keep a request open past the timeout.
    """

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self._finished = False
        self.passed = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.passed = True
            try:
                self._sock.shutdown(socket.SHUT_RDWR)  # a blocked read returns at once
            except OSError:
                pass

    def finish(self) -> bool:
        """Stop the clock; whether the deadline had passed (then the socket is shut)."""
        with self._lock:
            self._finished = True
        self._timer.cancel()
        return self.passed
