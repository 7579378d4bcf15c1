"""`newsletter serve`: the sign-up app under uvicorn, and the app for any ASGI server.

The server needs the publication's settings, templates and `welcome.md`, never its
list: it runs in a copy of the publication without `subscribers/` or `sent/`.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from starlette.applications import Starlette

from newsletter.config import Settings, load_settings
from newsletter.errors import ConfigError
from newsletter.providers import mailer_for
from newsletter.signup.app import create_app, require_signup
from newsletter.signup.store import DEFAULT_DB

PUBLICATION_VARIABLE = "NEWSLETTER_PUBLICATION"  # the publication folder, for `newsletter.signup.asgi:app`
DB_VARIABLE = "NEWSLETTER_SIGNUP_DB"


def db_path(settings: Settings, db: Path | None) -> Path:
    return db if db is not None else settings.root / DEFAULT_DB


def app_for(settings: Settings, db: Path | None = None) -> Starlette:
    """The app of this publication with its provider; a ConfigError for a missing secret or key."""
    from newsletter.signup.tokens import newsletter_secret

    require_signup(settings)
    secret = newsletter_secret()  # before the provider's key: the one every server needs
    return create_app(settings, db_path(settings, db), mailer_for(settings), secret)


def app_from_environment() -> Starlette:
    """The app of the publication in NEWSLETTER_PUBLICATION (or the current folder)."""
    root = os.environ.get(PUBLICATION_VARIABLE)
    settings = load_settings(Path(root) if root else None)
    db = os.environ.get(DB_VARIABLE)
    return app_for(settings, Path(db) if db else None)


def serve(settings: Settings, host: str, port: int, db: Path | None, forwarded_allow_ips: str) -> None:
    """Run the server until interrupted."""
    import uvicorn

    app = app_for(settings, db)
    sock = _listening(host, port)  # bound here, so a port in use is our one line, not uvicorn's log
    # No access log: its lines would hold the links' tokens, and so readers' addresses (base64 is no secret).
    config = uvicorn.Config(app, host=host, port=port, proxy_headers=True, forwarded_allow_ips=forwarded_allow_ips,
                            server_header=False, log_level="info", access_log=False)
    # uvicorn says where it listens only for a socket it bound itself: said here, in its words.
    shown = f"[{host}]" if ":" in host else host
    logging.getLogger("uvicorn.error").info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)", shown, port)
    uvicorn.Server(config).run(sockets=[sock])


def _listening(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port` and listening, or a ConfigError saying why it cannot be."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror:
        raise ConfigError(f"--host {host!r} is no address of this machine (it does not resolve)") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"{host}:{port}: cannot listen there ({exc.strerror or exc}): another program may be "
                          "using the port; stop it or choose another --port") from None
    return sock
