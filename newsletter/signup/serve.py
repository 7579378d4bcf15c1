"""`newsletter serve`: the sign-up app under uvicorn, and the app for any ASGI server.

The server needs the publication's settings, templates and `welcome.md`, never its
list: it runs in a copy of the publication without `subscribers/` or `sent/`.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette

from newsletter.config import Settings, load_settings
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
    # No access log: its lines would hold the links' tokens, and so readers' addresses (base64 is no secret).
    uvicorn.run(app, host=host, port=port, proxy_headers=True, forwarded_allow_ips=forwarded_allow_ips,
                server_header=False, log_level="info", access_log=False)
