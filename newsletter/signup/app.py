"""The sign-up server as a Starlette app: `create_app(settings, db_path, mailer)`.

Routes (exact paths: emails and other tools link to them):
  GET  /                     the sign-up page
  POST /subscribe            always "check your inbox"; queues a confirmation (one per address a day), or
                             a note saying so to an address confirmed here already
  GET  /confirm/<token>      a page that posts itself: a link scanner's GET confirms nobody
  POST /confirm/<token>      records the confirmed sign-up with its evidence, queues the welcome
  GET  /unsubscribe/<token>  a page with a button: a GET never unsubscribes
  POST /unsubscribe/<token>  records the unsubscribe (a page, or 200 for RFC 8058 one-click)
  GET  /changes?after=N      the editor's sync: JSON, oldest first (bearer derived from NEWSLETTER_SECRET)
  GET  /health               liveness, and how many emails wait
  GET  /style.css            the web edition's stylesheet, so the pages look like the publication

Abuse (issue 19, subscription bombing): a honeypot field, one confirmation per address
per 24 h, `signup.per_ip_per_hour` sign-ups per client address (429 beyond), bodies over
10 KB refused (413), and a POST from another site's page refused (403, `Origin`).
The client address is `request.client.host`: uvicorn puts X-Forwarded-For there only
from a proxy its `--forwarded-allow-ips` trusts. Nothing here prints; the outbox logs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsletter.config import Settings
from newsletter.errors import ConfigError, SubscriberError, where
from newsletter.headers import ONE_CLICK
from newsletter.placeholders import is_reserved
from newsletter.render.templates import environment, render, shared_context
from newsletter.render.web import FEED, render_stylesheet
from newsletter.sending.mailer import Mailer
from newsletter.signup import tokens
from newsletter.signup.emails import EmailMaker, load_welcome
from newsletter.signup.outbox import FIRST_RETRY, OutboxWorker
from newsletter.signup.phrases import missing_signup_phrases, signup_phrases
from newsletter.signup.store import Pending, SignupStore
from newsletter.subscribers.addresses import address_key
from newsletter.subscribers.lists import valid_address
from newsletter.subscribers.store import iso_utc, join_tags

MAX_BODY = 10 * 1024          # bytes; a sign-up form is a few hundred
HONEYPOT = "website"          # hidden from people; bots fill in every field
MAX_FIRST_NAME = 100
MAX_PAGE = 500
CHANGES_PAGE = 1000           # events per /changes answer


def create_app(settings: Settings, db_path: Path, mailer: Mailer, secret: str | None = None,
               first_retry: float = FIRST_RETRY, changes_page: int = CHANGES_PAGE) -> Starlette:
    """The app for `settings` (which must have `signup:`), its records in `db_path`; /changes
    answers `changes_page` events at most.

    `secret` defaults to NEWSLETTER_SECRET (a ConfigError when it is missing). Raises a
    ContentError for a `welcome.md` that cannot be read, before anything is served.
    """
    require_signup(settings)
    endpoints = SignupEndpoints(settings, db_path, mailer, secret or tokens.newsletter_secret(),
                                EmailMaker(settings, load_welcome(settings)), first_retry, changes_page)
    routes = [
        Route("/", endpoints.home, methods=["GET"]),
        Route("/subscribe", endpoints.subscribe, methods=["POST"]),
        Route("/confirm/{token}", endpoints.confirm_page, methods=["GET"]),
        Route("/confirm/{token}", endpoints.confirm, methods=["POST"]),
        Route("/unsubscribe/{token}", endpoints.unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe/{token}", endpoints.unsubscribe, methods=["POST"]),
        Route("/changes", endpoints.changes, methods=["GET"]),
        Route("/health", endpoints.health, methods=["GET"]),
        Route("/style.css", endpoints.stylesheet, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=endpoints.lifespan)
    allowed = {urlsplit(url).hostname or "" for url in (settings.base_url, endpoints.signup.url)}
    return SameSiteOnly(LimitBody(app, MAX_BODY), allowed)  # type: ignore[return-value]


def require_signup(settings: Settings) -> None:
    if settings.signup is None:
        raise ConfigError(f"{where(settings.config_path)}: no `signup:` section: add one with `url:`, the address "
                          "where readers reach this server (the guide: docs/signups.md)")
    missing = missing_signup_phrases(settings)
    if missing:
        raise ConfigError(f"{where(settings.config_path)}: language {settings.language!r} is not built in: give the "
                          f"sign-up server's phrases under `strings:` too (missing: {', '.join(missing)})")


class SignupEndpoints:
    """The handlers, sharing one store, signer, worker and set of templates."""

    def __init__(self, settings: Settings, db_path: Path, mailer: Mailer, secret: str, emails: EmailMaker,
                 first_retry: float, changes_page: int = CHANGES_PAGE) -> None:
        assert settings.signup is not None
        self.changes_page = changes_page
        self.settings = settings
        self.signup = settings.signup
        self.secret = secret
        self.signer = tokens.Signer(secret)
        self.store = SignupStore(db_path)
        self.emails = emails
        self.worker = OutboxWorker(self.store, mailer, first_retry)
        self.env = environment(settings.templates_dir)
        self.text_phrases = signup_phrases(settings, markup=False)
        # What every page shares, the phrase tables (built-in, the server's, the publication's overrides)
        # merged once, not per request.
        self.page_context: dict[str, Any] = {
            **shared_context(settings, markup=True), "t": signup_phrases(settings, markup=True),
            "signup_url": self.signup.url, "home": f"{settings.base_url}/",
            "stylesheet_url": f"{self.signup.url}/style.css", "feed_url": f"{settings.base_url}/{FEED}",
            "signup_page": True,
        }
        self.stylesheet_text = render_stylesheet(settings)
        self.check_inbox_page: HTMLResponse | None = None
        # Rendered now rather than by the first readers (a burst of sign-ups right after a start).
        self.check_inbox()
        emails.confirmation("", "")
        emails.already_subscribed("", "")
        emails.welcome("", "")

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.worker.start()
        try:
            yield
        finally:
            await run_in_threadpool(self.worker.stop)
            self.store.close()

    # -- pages

    def page(self, view: str, title: str, *paragraphs: str, status: int = 200) -> HTMLResponse:
        context: dict[str, Any] = {**self.page_context, "view": view, "title": title, "paragraphs": paragraphs}
        # Caches keep none of these pages: they answer one reader, once. "same-origin": the signed link in the
        # address bar never goes to another host (the logo's) as a Referer, and a form posting back here still
        # carries its real Origin ("no-referrer" made Chromium send `Origin: null`, refused: no one could confirm).
        return HTMLResponse(render(self.env, "signup-page.html", context), status,
                            headers={"Cache-Control": "no-store", "Referrer-Policy": "same-origin"})

    def phrase(self, key: str, **values: str) -> str:
        return self.text_phrases(key, **values)

    def bad_link(self, problem: tokens.BadToken) -> HTMLResponse:
        return self.page("message", self.phrase("bad_link_title"),
                         self.phrase("expired_link" if problem.expired else "bad_link"), status=400)

    def check_inbox(self) -> HTMLResponse:
        # The one answer to every sign-up, the same for all: rendered once.
        if self.check_inbox_page is None:
            self.check_inbox_page = self.page("message", self.phrase("check_inbox_title"), self.phrase("check_inbox"))
        page = self.check_inbox_page
        return HTMLResponse(page.body, page.status_code, headers={k: v for k, v in page.headers.items()
                                                                   if k != "content-length"})

    # -- handlers

    async def home(self, request: Request) -> Response:
        name = self.settings.name
        return self.page("signup", self.phrase("subscribe", publication=name), self.phrase("signup_intro"))

    async def subscribe(self, request: Request) -> Response:
        form = await request.form()
        ip = client_ip(request)
        now = int(time.time())
        limit = self.signup.per_ip_per_hour
        try:
            email = checked_address(str(form.get("email") or ""))
        except SubscriberError:
            email = ""
        if str(form.get(HONEYPOT) or "") or not email:  # counted against the IP all the same
            if not await run_in_threadpool(self.store.take_rate, ip, limit, now):
                return self.too_many()
            if email:
                return self.check_inbox()  # a bot: answered as anyone, told nothing, sent nothing
            return self.page("signup", self.phrase("bad_address_title"), self.phrase("bad_address"), status=400)
        first_name = " ".join(str(form.get("first_name") or "").split())[:MAX_FIRST_NAME]
        pending = Pending(email=email, first_name=first_name, requested_at=now, ip=ip,
                          page=form_page(str(form.get("page") or request.headers.get("referer") or ""),
                                         f"{self.signup.url}/"))
        list_name = self.signup.list
        token = self.signer.sign(tokens.CONFIRM, email, list_name, now)
        # Rendered before the transaction, which then holds the database for a few writes only (each is the
        # email rendered at start-up with the link put in). Which goes is settled in the transaction.
        confirm_url = f"{self.signup.url}/confirm/{token}"
        queued = await run_in_threadpool(self.store.request_signup, address_key(email), list_name, pending,
                                         self.emails.confirmation(email, confirm_url), limit,
                                         self.emails.already_subscribed(email, confirm_url))
        if queued is None:
            return self.too_many()
        if queued:
            self.worker.wake()
        return self.check_inbox()  # the same answer, whatever the address's state

    def too_many(self) -> HTMLResponse:
        return self.page("message", self.phrase("too_many_title"), self.phrase("too_many"), status=429)

    async def confirm_page(self, request: Request) -> Response:
        try:
            self.signer.verify(request.path_params["token"], tokens.CONFIRM)
        except tokens.BadToken as problem:
            return self.bad_link(problem)
        return self.page("confirm", self.phrase("confirm_title"))

    async def confirm(self, request: Request) -> Response:
        try:
            token = self.signer.verify(request.path_params["token"], tokens.CONFIRM)
        except tokens.BadToken as problem:
            return self.bad_link(problem)

        def welcome(pending: Pending) -> Any:
            unsubscribe = self.signer.sign(tokens.UNSUBSCRIBE, pending.email, token.list_name)
            return self.emails.welcome(pending.email, f"{self.signup.url}/unsubscribe/{unsubscribe}")

        confirmed = await run_in_threadpool(self.store.confirm, address_key(token.email), token.list_name,
                                            join_tags(self.signup.tags), client_ip(request), int(time.time()), welcome)
        if confirmed:
            self.worker.wake()
        return self.page("message", self.phrase("subscribed_title"),
                         self.phrase("subscribed", publication=self.settings.name))

    async def unsubscribe_page(self, request: Request) -> Response:
        try:
            token = self.signer.verify(request.path_params["token"], tokens.UNSUBSCRIBE)
        except tokens.BadToken as problem:
            return self.bad_link(problem)
        name = self.settings.name
        return self.page("unsubscribe", self.phrase("unsubscribe_title", publication=name),
                         self.phrase("unsubscribe_question", publication=name, email=token.email))

    async def unsubscribe(self, request: Request) -> Response:
        try:
            token = self.signer.verify(request.path_params["token"], tokens.UNSUBSCRIBE)
        except tokens.BadToken as problem:
            return self.bad_link(problem)
        body = (await request.body()).decode("utf-8", "replace").strip()
        await run_in_threadpool(self.store.unsubscribe, token.email, address_key(token.email), token.list_name,
                                int(time.time()))
        if body == ONE_CLICK:  # RFC 8058: the mail provider posts it; a status is all it reads
            return PlainTextResponse("unsubscribed\n")
        return self.page("message", self.phrase("unsubscribed_title"),
                         self.phrase("unsubscribed", publication=self.settings.name, email=token.email))

    async def changes(self, request: Request) -> Response:
        if not tokens.bearer_matches(self.secret, request.headers.get("authorization", "")):
            return JSONResponse({"error": "a bearer token derived from NEWSLETTER_SECRET is required"}, 401,
                                headers={"WWW-Authenticate": "Bearer"})
        after_text = request.query_params.get("after", "0")
        if not after_text.isascii() or not after_text.isdigit():
            return JSONResponse({"error": "after must be a cursor: a whole number from 0"}, 400)
        after = int(after_text)
        found = await run_in_threadpool(self.store.changes, after, self.changes_page)
        return JSONResponse({
            "changes": [{**change.as_json(), "at": iso_utc(change.at), "requested_at": iso_utc(change.requested_at)}
                        for change in found],
            "next": found[-1].cursor if found else after,
            "more": len(found) == self.changes_page,
        }, headers={"Cache-Control": "no-store"})

    async def health(self, request: Request) -> Response:
        counts = await run_in_threadpool(self.store.outbox_counts)
        return JSONResponse({"status": "ok", "outbox": counts, "uncertain_this_run": self.worker.uncertain})

    async def stylesheet(self, request: Request) -> Response:
        return Response(self.stylesheet_text, media_type="text/css")


def checked_address(text: str) -> str:
    """The address as the list would store it; a SubscriberError for one the list would refuse,
    or one at a domain reserved for examples (no one receives mail there)."""
    email = valid_address(text)
    if is_reserved(email.rpartition("@")[2]):
        raise SubscriberError(f"{email} is at a domain reserved for examples")
    return email


def client_ip(request: Request) -> str:
    """The reader's address, as uvicorn's ProxyHeadersMiddleware left it (trusted proxies only)."""
    return request.client.host if request.client else ""


def form_page(text: str, fallback: str) -> str:
    """The page the form was on (evidence of where consent was given): an http(s) address, or `fallback`."""
    text = text.strip()
    parts = urlsplit(text)
    if parts.scheme in ("http", "https") and parts.netloc and len(text) <= MAX_PAGE and text.isprintable():
        return text
    return fallback


# -- the two guards in front of every route (plain ASGI: they work before a body is read)

class LimitBody:
    """Refuses (413) a request whose body is over `limit` bytes, declared or streamed.

    The body is read here first (at most `limit` bytes are ever held) and handed on whole:
    a handler never meets a body cut off half-way.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await too_large(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                await too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def whole() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: a disconnect, when it comes
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, whole, send)


async def too_large(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse(f"request body over {MAX_BODY} bytes\n", 413)(scope, receive, send)


class SameSiteOnly:
    """Refuses (403) a POST whose `Origin` is present and names a host other than the publication's
    (base_url's or signup.url's): another site's page cannot post readers' addresses here."""

    def __init__(self, app: ASGIApp, hosts: set[str]) -> None:
        self.app = app
        self.hosts = {host.lower() for host in hosts if host}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            origin = Headers(scope=scope).get("origin")
            if origin is not None and (urlsplit(origin).hostname or "").lower() not in self.hosts:
                await PlainTextResponse("cross-site request refused\n", 403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


