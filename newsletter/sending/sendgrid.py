"""The SendGrid transport: POST /v3/mail/send over kept-alive HTTP connections.

http.client rather than the sendgrid package: it keeps connections alive between
requests (the package opens one per request through urllib), takes the body as
bytes already serialized, and tells a refused or reset connection apart from an
answer that never came, which decides whether a request may be posted again.

When may a request without an answer be posted again? Only when SendGrid cannot
have acted on it:
- the connection could not be made, or broke while the body was being written
  (http.client raised from `request()`): SendGrid never had a whole request;
- a *reused* keep-alive connection was closed (or reset) with no bytes back: the
  server had closed that idle connection before our request reached it, the
  well-known keep-alive race, so nothing read the request.
A *fresh* connection closed or reset after the whole body went out is different:
the server accepted the connection and had the whole request, and may have
processed it before the connection died. Like a read timeout, that is uncertain:
the recipients are not posted again without the user's say-so.
"""

from __future__ import annotations

import http.client
import queue
from urllib.parse import urlsplit

from newsletter import __version__
from newsletter.errors import SendError
from newsletter.sending.transport import NotPostedError, PreparedBatch, Response, RetryableError, UncertainError

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
        self._key = api_key
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
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._connection_class(self._host, self._port, timeout=self._timeout)
        try:
            response = self._exchange(conn, batch.body)
        except BaseException:
            conn.close()
            raise
        if response.will_close:
            conn.close()
        else:
            self._idle.put(conn)
        return Response(
            status=response.status,
            message_id=response.getheader("X-Message-Id") or "",
            body=response.data,  # type: ignore[attr-defined]
            headers={k: v for k, v in response.getheaders() if k.lower().startswith(("x-ratelimit", "retry-after"))},
        )

    def _exchange(self, conn: http.client.HTTPConnection, body: bytes) -> http.client.HTTPResponse:
        where = f"{self._host}:{self._port or ''}".rstrip(":")
        reused = conn.sock is not None
        if not reused:
            try:
                conn.connect()
            except OSError as exc:  # refused, unreachable, DNS, connect timeout: nothing was sent
                raise RetryableError(f"cannot connect to {where}: {self._scrub(exc)}") from None
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
        except TimeoutError:
            raise UncertainError(f"no answer from {where} within {self._timeout:g} s") from None
        except ConnectionError as exc:
            if reused:
                # A kept-alive connection the server had already dropped: it never read the request.
                raise RetryableError(f"{where} closed a kept-alive connection without an answer "
                                     f"({type(exc).__name__})") from None
            # A fresh connection that took the whole request: SendGrid may have acted on it.
            raise UncertainError(f"{where} closed the connection after the request was sent, without an "
                                 f"answer ({type(exc).__name__})") from None
        except (OSError, http.client.HTTPException) as exc:
            raise UncertainError(f"unreadable answer from {where}: {self._scrub(exc)}") from None
        return response

    def _scrub(self, exc: BaseException) -> str:
        # Library messages should not hold the key, but an error line is never worth the risk.
        return (str(exc) or type(exc).__name__).replace(self._key, "***")

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
