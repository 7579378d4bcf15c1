"""The one client for SendGrid's API calls other than mail send.

It wraps the `sendgrid` package's client (python_http_client over urllib, underneath)
so that every call, whatever it is for, gets:

- the same timeout (`sendgrid.timeout` from newsletter.yaml; the library has none);
- the one `RetryPolicy` mail send uses: a 429 waits until SendGrid's reset (never less
  than that attempt's backoff, so `Retry-After: 0` cannot make it hammer SendGrid), a
  5xx or a failed connection backs off with jitter, a bounded number of times. An
  answer that never came after the request went out is retried only for calls that
  may safely be repeated (`Call.idempotent`);
- the same mapping of errors to one line that says what failed and what to do,
  raised as `SendGridError`;
- the API key scrubbed from every message, whatever a library put in it;
- no redirect followed: urllib would carry the `Authorization` header to whatever host a
  3xx names (a 302 or 307 to another host was sent the key on every account call), so a
  redirect is one error naming where it pointed, and nothing is sent there;
- `Answer.shaped`: an answer checked against the shape SendGrid's spec documents for
  it before anything is read from it, so a JSON list where an object is documented,
  or a string where a count is, is one error saying the answer was not understood,
  never a traceback or a figure made up of what was not there;
- python_http_client's logger kept above DEBUG: at DEBUG it logs every request's
  headers, `Authorization: Bearer <key>` included. Its level and a filter are set
  again before each call, so a user's (or a library's) logging set-up made after
  the client cannot turn it back on.

Mail send does not go through here: it keeps its kept-alive transport
(`newsletter/providers/sendgrid/transport.py` says why).
"""

from __future__ import annotations

import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from newsletter.config import Settings, sendgrid_api_key
from newsletter.errors import SendGridError, keep_secret, scrub
from newsletter.providers.sendgrid.retry import clock, duration, rate_limit_wait, sendgrid_errors
from newsletter.sending.provider import RetryPolicy

LIBRARY_LOGGER = "python_http_client.client"

# Every client made without a policy uses it (a command passes its terminal's, tests a quick one).
DEFAULT_POLICY = RetryPolicy()

Query = Mapping[str, str | int | list[str]]


@dataclass(frozen=True)
class Call:
    """What a call is for, in the words its error messages use."""

    label: str                 # what is read or changed: "global unsubscribes"
    action: str = "reading"    # "reading", "creating", "cancelling"
    needs: str = ""            # the permission a 401/403 names: "read access to Suppressions"
    not_found: str = ""        # the whole message of a 404, where a 404 means something to the user
    idempotent: bool = True    # may be posted again when its answer never came


@dataclass(frozen=True)
class Fields:
    """A JSON object with these keys (each of this shape); `optional` ones may be absent.
    Other keys are let be: SendGrid adds fields to its answers."""

    required: Mapping[str, Shape]
    optional: Mapping[str, Shape] = field(default_factory=dict)


@dataclass(frozen=True)
class ListOf:
    """A JSON array whose every item has this shape."""

    item: Shape


# What SendGrid's spec documents for (a part of) an answer: a JSON type as the Python type
# json.loads gives (`int` is an integer, never a boolean; `float` any number), an object, an array.
Shape = type | tuple[type, ...] | Fields | ListOf

_JSON_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "true or false", int: "an integer",
               float: "a number", type(None): "empty (or null)"}


def shape_mismatch(value: Any, shape: Shape, where: str = "") -> str | None:
    """What in `value` is not of `shape` (`stats[0].metrics.delivered is a string, where …`), or None."""
    def named(kind: type) -> str:
        return _JSON_NAMES.get(kind, kind.__name__)

    def wrong(expected: str) -> str:
        return f"{where or 'the answer'} is {named(type(value))}, where SendGrid documents {expected}"

    if isinstance(shape, Fields):
        if not isinstance(value, dict):
            return wrong("an object")
        for key, inner in [*shape.required.items(), *shape.optional.items()]:
            if key not in value:
                if key in shape.required:
                    return f"{where + '.' if where else ''}{key} is missing, which SendGrid documents as always there"
                continue
            found = shape_mismatch(value[key], inner, f"{where}.{key}" if where else key)
            if found:
                return found
        return None
    if isinstance(shape, ListOf):
        if not isinstance(value, list):
            return wrong("a list")
        for index, item in enumerate(value):
            found = shape_mismatch(item, shape.item, f"{where or 'the answer'}[{index}]")
            if found:
                return found
        return None
    kinds = shape if isinstance(shape, tuple) else (shape,)
    if isinstance(value, bool) and bool not in kinds:
        return wrong(" or ".join(named(k) for k in kinds))
    if float in kinds and isinstance(value, int):
        return None
    if not isinstance(value, kinds):
        return wrong(" or ".join(named(k) for k in kinds))
    return None


@dataclass(frozen=True)
class Answer:
    """SendGrid's answer to one call: status, parsed JSON body (None when empty), headers."""

    status: int
    body: Any
    headers: Mapping[str, str]
    method: str = ""
    path: str = ""

    def shaped(self, shape: Shape) -> Any:
        """The body, once it has the shape SendGrid documents; else `SendGridError` saying so."""
        mismatch = shape_mismatch(self.body, shape)
        if mismatch is not None:
            raise SendGridError(f"SendGrid's answer to {self.method} {self.path} was not understood: {mismatch} "
                                "(is NEWSLETTER_SENDGRID_URL, or a proxy, answering in SendGrid's place?); "
                                "nothing was taken from it")
        return self.body


class _RedirectsRefused(urllib.request.HTTPRedirectHandler):
    """Follows no redirect: the 3xx comes back as the HTTPError it is, Location and all."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _open_without_redirects(node: Any) -> Callable[..., Any]:
    """`node._make_request` with an opener that follows no redirect (the library builds a default one)."""
    from python_http_client.client import Client

    opener = urllib.request.build_opener(_RedirectsRefused())

    def make_request(_default_opener: Any, request: urllib.request.Request, timeout: float | None = None) -> Any:
        return Client._make_request(node, opener, request, timeout=timeout)
    return make_request


class _BelowInfoDropped(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


def quiet_library_logger() -> None:
    """Keep python_http_client's logger above DEBUG, where it writes the API key."""
    logger = logging.getLogger(LIBRARY_LOGGER)
    if logger.level <= logging.DEBUG:  # NOTSET (0) inherits the root's level, which may be DEBUG
        logger.setLevel(logging.INFO)
    if not any(isinstance(f, _BelowInfoDropped) for f in logger.filters):
        logger.addFilter(_BelowInfoDropped())


class SendGridClient:
    """SendGrid's v3 API at `base_url` (no `/v3`), with one key, timeout and retry policy."""

    def __init__(self, base_url: str, api_key: str, timeout: float,
                 policy: RetryPolicy | None = None, wait: Callable[[float], object] = time.sleep) -> None:
        parts = urlsplit(base_url)
        try:
            parts.port  # noqa: B018 - raises on a port out of range
        except ValueError:
            parts = parts._replace(scheme="")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SendGridError(f"NEWSLETTER_SENDGRID_URL {base_url!r} is not an http(s):// URL "
                                "(with a port from 1 to 65535, if any)")
        self.base_url = base_url.rstrip("/")
        self._origin = (parts.scheme, parts.netloc)
        self._prefix = parts.path.rstrip("/")
        self._key = keep_secret(api_key)
        self.timeout = timeout
        self.policy = policy or DEFAULT_POLICY
        self._wait = wait
        quiet_library_logger()
        # Imported here, not at the top: a send imports this module, and needs the library only
        # for a scheduled send's batch id (its import costs more than the rest of a dry run's start).
        from sendgrid import SendGridAPIClient

        # The library adds /v3 itself; `host` may carry a path prefix (a proxy).
        self._api = SendGridAPIClient(api_key, host=self.base_url)
        self._api.client.timeout = timeout

    @classmethod
    def for_settings(cls, settings: Settings, needs: str, policy: RetryPolicy | None = None) -> SendGridClient:
        """The client of this publication: its region (or NEWSLETTER_SENDGRID_URL), key and timeout.

        `needs` says what the key must be allowed to do, for the message when it is missing.
        """
        return cls(settings.sendgrid_url, sendgrid_api_key(needs), settings.sendgrid.timeout, policy)

    # -- calls

    def get(self, path: str, call: Call, query: Query | None = None) -> Answer:
        return self.request("GET", path, call, query=query)

    def post(self, path: str, call: Call, body: Any = None) -> Answer:
        return self.request("POST", path, call, body=body)

    def patch(self, path: str, call: Call, body: Any = None) -> Answer:
        return self.request("PATCH", path, call, body=body)

    def delete(self, path: str, call: Call) -> Answer:
        return self.request("DELETE", path, call)

    def request(self, method: str, path: str, call: Call, query: Query | None = None,
                body: Any = None) -> Answer:
        """One call of `path` (`/v3/...`), retried as the policy says; raises `SendGridError`."""
        from python_http_client.exceptions import HTTPError

        verb = self._verb(method, path)
        policy = self.policy
        attempts = 0
        rate_limited = 0
        rate_limit_waited = 0.0
        while True:
            attempts += 1
            quiet_library_logger()
            # The library merges a call's headers into a dict every later call shares.
            self._api.reset_request_headers()
            try:
                response = verb(request_body=body, query_params=dict(query) if query else None,
                                timeout=self.timeout)
                return Answer(response.status_code, self._parsed(response.body, method, path),
                              _headers(response.headers), method, path)
            except HTTPError as exc:
                status = int(exc.status_code)
                if 300 <= status < 400:
                    raise self._redirected(status, _headers(exc.headers), call) from None
                if status == 429:
                    rate_limited += 1
                    asked = rate_limit_wait(_headers(exc.headers))
                    if asked is not None and asked > policy.max_reset_wait:
                        # As mail send does: a reset far off is said, not waited out in silence.
                        raise SendGridError(
                            f"SendGrid's rate limit is used up (429) until {clock(time.time() + asked)}, "
                            f"{duration(asked)} from now, when {call.action} {call.label}; try again then",
                            status) from None
                    seconds = max(asked or 0.0, policy.delay(rate_limited))
                    if (rate_limited >= policy.max_rate_limited
                            or rate_limit_waited + seconds > policy.max_rate_limit_wait):
                        raise SendGridError(self.scrub(
                            f"SendGrid answered 429 (too many requests) {rate_limited} times in a row when "
                            f"{call.action} {call.label}; try again later"), status) from None
                    rate_limit_waited += seconds
                    attempts -= 1  # being rate limited is not a failure of the call
                    self._wait(seconds)
                    continue
                if status >= 500 and attempts < policy.attempts:
                    self._wait(policy.delay(attempts))
                    continue
                raise self._refusal(status, exc.body, method, path, call) from None
            except urllib.error.URLError as exc:
                # Failed while connecting or sending: SendGrid never had the whole request.
                if attempts < policy.attempts:
                    self._wait(policy.delay(attempts))
                    continue
                raise self._unreachable(exc.reason, call) from None
            except (OSError, http.client.HTTPException) as exc:
                # The request went out and no (whole) answer came: SendGrid may have acted on it.
                if call.idempotent and attempts < policy.attempts:
                    self._wait(policy.delay(attempts))
                    continue
                if not call.idempotent:
                    raise SendGridError(self.scrub(
                        f"no answer from SendGrid at {self.base_url} when {call.action} {call.label} "
                        f"({_reason(exc)}): it may or may not have been done; check SendGrid's dashboard"
                    )) from None
                raise self._unreachable(exc, call) from None

    def same_origin(self, url: str) -> bool:
        """Whether `url` is on SendGrid's host (the key goes with every request)."""
        return (urlsplit(url).scheme, urlsplit(url).netloc) == self._origin

    def split_url(self, url: str) -> tuple[str, dict[str, list[str]]]:
        """A whole URL of this API (a next-page link) as the path and query `get` takes."""
        parts = urlsplit(url)
        path = parts.path
        if self._prefix and path.startswith(self._prefix):
            path = path[len(self._prefix):]
        return path, parse_qs(parts.query)

    def scrub(self, text: str) -> str:
        """`text` on one line with the key (and anything shaped like a SendGrid key) hidden."""
        return scrub(text, self._key)

    # -- the parts of a call

    def _verb(self, method: str, path: str) -> Callable[..., Any]:
        if not path.startswith("/v3/"):
            raise ValueError(f"not a v3 path: {path}")
        node = self._api.client
        for segment in path[len("/v3/"):].split("/"):
            node = node._(segment)
        node._make_request = _open_without_redirects(node)
        verb: Callable[..., Any] = getattr(node, method.lower())
        return verb

    def _parsed(self, body: bytes, method: str, path: str) -> Any:
        if not body:
            return None
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise SendGridError(f"SendGrid answered {method} {path} with something other than JSON") from None

    def _refusal(self, status: int, body: bytes | None, method: str, path: str, call: Call) -> SendGridError:
        if status in (401, 403):
            message = (f"SendGrid refused the API key ({status}) when {call.action} {call.label}: "
                       "check SENDGRID_API_KEY" + (f" (it needs {call.needs})" if call.needs else ""))
        elif status == 404 and call.not_found:
            message = call.not_found
        else:
            # The key hidden before sendgrid_errors shortens anything: no head of it survives a cut.
            shown = self.scrub((body or b"").decode("utf-8", "replace")).encode("utf-8")
            detail = sendgrid_errors(shown) if body else ""
            message = (f"SendGrid answered {status} when {call.action} {call.label} ({method} {path})"
                       + (f": {detail}" if detail and detail != "no error message" else ""))
        return SendGridError(self.scrub(message), status)

    def _redirected(self, status: int, headers: Mapping[str, str], call: Call) -> SendGridError:
        location = {k.lower(): v for k, v in headers.items()}.get("location", "")
        target = urlsplit(location)
        host = target.netloc or (self._origin[1] if location else "")
        to = f" to {host}" if host else ""
        return SendGridError(self.scrub(
            f"SendGrid's address answered {status}, a redirect{to}, when {call.action} {call.label}: not followed, "
            f"so the API key went nowhere else; check NEWSLETTER_SENDGRID_URL ({self.base_url}) "
            "or a proxy between here and SendGrid"), status)

    def _unreachable(self, reason: object, call: Call) -> SendGridError:
        return SendGridError(self.scrub(
            f"could not reach SendGrid at {self.base_url} for {call.label} ({_reason(reason)}); "
            "check NEWSLETTER_SENDGRID_URL and the network"))


def _reason(reason: object) -> str:
    text = " ".join(str(reason).split())
    return text or type(reason).__name__


def _headers(message: Any) -> dict[str, str]:
    """Response headers as a plain dict (last value wins), from an http.client message or None."""
    if message is None:
        return {}
    return {str(k): str(v) for k, v in message.items()}

