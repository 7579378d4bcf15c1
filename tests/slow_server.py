"""A real HTTP server on 127.0.0.1 that answers the way hostile or broken servers do: a byte at a
time, or with a body that goes on and on. It speaks HTTP by hand on raw sockets, since
`http.server` cannot trickle, and records how each answer ended, so that a test can wait on
the event of the client hanging up rather than on the clock."""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from dataclasses import dataclass, field
from types import TracebackType

TRICKLE_PAUSE = 1.0  # seconds between two bytes of /trickle: shorter than any per-read timeout here
TRICKLED = b"X-Trickle: " + b"z" * 45 + b"\r\n\r\n"  # with the pause: a minute in all
LONG_BODY = 256 * 1024 * 1024  # bytes of /redirect-with-a-long-body's body


@dataclass
class Answer:
    """How one answer ended: bytes of it sent, and set once the client hung up before its end."""

    sent: int = 0
    hung_up: threading.Event = field(default_factory=threading.Event)


class SlowServer:
    """`with SlowServer() as server:` serves at `server.url`:

    - `/trickle`: a 200 whose headers come one byte every `TRICKLE_PAUSE` seconds;
    - `/redirect-with-a-long-body`: to GET, a 301 to `/fine` with a body of `LONG_BODY` bytes,
      as fast as the client reads it (HEAD is refused, 405, so that a link check GETs it);
    - `/fine`: an empty 200.

    `answers[path]` says how the latest answer to `path` ended.
    """

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self._stopping = threading.Event()
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    chunk = sock.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                method, path = (part.decode("ascii", "replace") for part in head.split(b" ", 2)[:2])
                answer = server.answers[path] = Answer()
                try:
                    if path == "/trickle":
                        server._trickle(sock, answer)
                    elif path == "/redirect-with-a-long-body" and method == "HEAD":
                        sock.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n"
                                     b"Connection: close\r\n\r\n")
                    elif path == "/redirect-with-a-long-body":
                        server._long_body(sock, answer)
                    else:
                        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:  # the client hung up mid-answer (EPIPE, ECONNRESET)
                    answer.hung_up.set()

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _trickle(self, sock: socket.socket, answer: Answer) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\n")
        for byte in TRICKLED:
            sock.sendall(bytes([byte]))
            answer.sent += 1
            # The pause, cut short when the client hangs up (its end becomes readable, at EOF).
            readable, _, _ = select.select([sock], [], [], TRICKLE_PAUSE)
            if self._stopping.is_set():
                return
            if readable and not sock.recv(1):
                answer.hung_up.set()
                return

    def _long_body(self, sock: socket.socket, answer: Answer) -> None:
        sock.sendall(b"HTTP/1.1 301 Moved Permanently\r\nLocation: /fine\r\n"
                     b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % LONG_BODY)
        chunk = b"x" * 65536
        while answer.sent < LONG_BODY and not self._stopping.is_set():
            sock.sendall(chunk)
            answer.sent += len(chunk)

    def __enter__(self) -> SlowServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
