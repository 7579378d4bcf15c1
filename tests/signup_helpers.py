"""The sign-up server for the tests: the real app under uvicorn on 127.0.0.1, spoken to over HTTP.

The listening socket is bound before uvicorn starts, so its port is known up front (for
`signup.url`) and a request made before uvicorn accepts simply waits in the backlog:
readiness is the first answer to GET /health, never a sleep.
"""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from newsletter.config import load_settings
from newsletter.providers import mailer_for
from newsletter.signup import tokens
from newsletter.signup.app import CHANGES_PAGE, create_app
from tests.helpers import update_config, wait_for
from tests.sendgrid_double import SendGridDouble

SECRET = "test-secret-0123456789abcdef-not-for-production"
READER = "ada@lovelace.internal"
WAIT = 20.0  # seconds at most for something the server does in the background


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


class SignupServer:
    """`with SignupServer(root) as server:` runs `newsletter serve`'s app for the publication at `root`.

    `signup` holds the keys of `signup:` written to newsletter.yaml (its `url` is this server's).
    """

    def __init__(self, root: Path, signup: dict[str, Any] | None = None, forwarded_allow_ips: str = "",
                 first_retry: float = 0.05, db: Path | None = None, changes_page: int = CHANGES_PAGE) -> None:
        self.sock = listening_socket()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        update_config(root, signup={"url": self.url, **(signup or {})})
        self.settings = load_settings(root)
        self.db = db or root / "signup.sqlite"
        app = create_app(self.settings, self.db, mailer_for(self.settings), SECRET, first_retry=first_retry,
                         changes_page=changes_page)
        config = uvicorn.Config(app, lifespan="on", proxy_headers=True, forwarded_allow_ips=forwarded_allow_ips,
                                log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.client = httpx.Client(base_url=self.url, timeout=WAIT)

    def __enter__(self) -> SignupServer:
        self.thread.start()
        assert self.client.get("/health").status_code == 200
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join()
        self.sock.close()

    # -- what a reader and the editor do

    def subscribe(self, email: str = READER, **fields: str) -> httpx.Response:
        return self.client.post("/subscribe", data={"email": email, **fields})

    def changes(self, after: int = 0) -> dict[str, Any]:
        answer = self.client.get("/changes", params={"after": after},
                                 headers={"Authorization": f"Bearer {tokens.changes_bearer(SECRET)}"})
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def path_of(self, url: str) -> str:
        assert url.startswith(self.url + "/"), url
        return url[len(self.url):]


def outbox_idle(server: SignupServer) -> None:
    """Wait until the server's outbox has nothing queued or being sent: every email it will send is sent."""
    wait_for(lambda: not {"queued", "sending"} & set(server.client.get("/health").json()["outbox"]),
             "the outbox to be idle")


def mails_to(double: SendGridDouble, email: str) -> list[dict[str, Any]]:
    """The bodies SendGrid accepted for `email`, in order."""
    return [body for body in list(double.accepted) for p in body["personalizations"] for to in p["to"]
            if to["email"] == email]


def wait_for_mails(double: SendGridDouble, email: str, count: int) -> list[dict[str, Any]]:
    return wait_for(lambda: len(mails_to(double, email)) >= count and mails_to(double, email),
                    f"{count} email(s) to {email}")


def text_of(body: dict[str, Any]) -> str:
    return next(c["value"] for c in body["content"] if c["type"] == "text/plain")


def html_of(body: dict[str, Any]) -> str:
    return next(c["value"] for c in body["content"] if c["type"] == "text/html")


def link_in(body: dict[str, Any], kind: str) -> str:
    """The `<signup.url>/<kind>/<token>` link in an email's text part (the HTML has the same)."""
    found = re.search(rf"(http://127\.0\.0\.1:\d+/{kind}/[A-Za-z0-9_.-]+)", text_of(body))
    assert found, f"no /{kind}/ link in {text_of(body)!r}"
    assert found[1] in html_of(body)
    return found[1]


def signed_out(server: SignupServer, email: str = READER, list_name: str = "main") -> str:
    """The path of an unsubscribe link as a send would sign it for `email`."""
    return "/unsubscribe/" + tokens.Signer(SECRET).sign(tokens.UNSUBSCRIBE, email, list_name)


