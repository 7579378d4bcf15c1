"""Posting one batch until SendGrid gives a definite answer, within bounds.

429: wait until `X-RateLimit-Reset` (or `Retry-After`), never less than the backoff
of that attempt (a reset already past, or `Retry-After: 0`, must not make it hammer
SendGrid), and post again, within a limit on 429s in a row and one on the total
wait. A reset further off than one wait (`max_reset_wait`) stops the send at once,
saying when the limit resets: waiting it out in silence helps nobody. A header that
is no finite number (`nan`, `inf`, garbage) counts as absent, so the backoff holds.
5xx and connections that failed before any answer: exponential backoff with
jitter, a bounded number of times.
No answer after the body went out: uncertain, never posted again here. Any 2xx is
an acceptance; a 3xx or any other 4xx a definite refusal, with SendGrid's own words
and what to do.

Messages here are whole (never cut): `send` shortens them with `errors.scrub`, which
hides the exact API key before anything else (every scrub here does too), so no part
of a key survives a cut or a pattern that does not fit it.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
from collections.abc import Mapping

from newsletter.errors import scrub
from newsletter.files.retry_after import retry_after_seconds

from newsletter.sending.provider import STOPPED, HeldBatch, Hold, Outcome, RetryPolicy, Wait
from newsletter.sending.transport import (
    NotPostedError, PreparedBatch, Response, RetryableError, Transport, UncertainError,
)

# What a person can do about each refusal. With --concurrency, requests posted before the
# refusal came back still get their answer; none is posted after it.
_ADVICE = {
    400: "SendGrid found the request invalid; the send stopped, no request was posted after this answer. "
         "Please report this with the message above (check the list for malformed addresses or names)",
    401: "check SENDGRID_API_KEY: SendGrid does not accept that key",
    403: "the API key needs the Mail Send permission and the from address in newsletter.yaml must be "
         "a verified sender (SendGrid > Settings > Sender Authentication)",
    413: "the request is larger than SendGrid takes (30 MB): shorten the issue",
}
# Where SendGrid's 400 points at one recipient of the request: `personalizations.3.to`.
_PERSONALIZATION = re.compile(r"\bpersonalizations\.(\d+)\b")
NAMED_AT_MOST = 3


def post_with_retries(transport: Transport, batch: PreparedBatch, policy: RetryPolicy,
                      wait: Wait | None = None, hold: Hold | None = None) -> Outcome:
    """Post `batch` until it is accepted, refused, uncertain, or the retries run out.

    `wait` is how it waits between attempts; once it says the send is being stopped
    (Ctrl-C), no further post is made and the batch comes back unsent.

    Never raises: a worker hands back an outcome, never a traceback. An unexpected
    error stops the send; it leaves the batch uncertain only when it came out of a
    post (which may have gone out), and unsent otherwise.
    """
    try:
        return _post_until_answered(transport, batch, policy, wait or threading.Event().wait, hold)
    except Exception as exc:  # noqa: BLE001 - outside any post: nothing of this batch is in doubt
        return Outcome("unsent", error=f"unexpected error while sending: {describe(exc)}", fatal=True)


def _post_until_answered(transport: Transport, batch: PreparedBatch, policy: RetryPolicy,
                         wait: Wait, hold: Hold | None) -> Outcome:
    attempts = 0
    rate_limited = 0  # 429s in a row
    rate_limit_waited = 0.0
    held = HeldBatch(hold)  # recorded as waiting out a 429, not in flight, while it waits
    while True:
        if wait(0):
            return Outcome("unsent", error=STOPPED, attempts=attempts)
        problem = held.post_again()
        if problem:  # not recorded as in flight: not posted
            return Outcome("unsent", error=problem, attempts=attempts, fatal=True)
        attempts += 1
        try:
            response = transport.post(batch)
        except UncertainError as exc:
            return Outcome("uncertain", error=str(exc), attempts=attempts)
        except RetryableError as exc:
            problem, status = str(exc), None
        except NotPostedError as exc:
            return Outcome("unsent", error=str(exc), attempts=attempts, fatal=True)
        except Exception as exc:  # noqa: BLE001 - the body may have gone out: uncertain, and stop
            return Outcome("uncertain", error=f"unexpected error while posting: {describe(exc)}",
                           attempts=attempts, fatal=True)
        else:
            status = response.status
            if 200 <= status < 300:  # 200 in sandbox mode, 202 as documented; any 2xx is a yes
                return Outcome("accepted", message_id=response.message_id, status=status, attempts=attempts)
            if status == 429:
                rate_limited += 1
                asked = _rate_limit_wait(response)
                if asked is not None and asked > policy.max_reset_wait:
                    resume_at = time.time() + asked
                    return Outcome("unsent", status=status, attempts=attempts - 1, fatal=True,
                                   resume_at=resume_at, error=(
                                       f"SendGrid's rate limit is used up (429) until {clock(resume_at)}, "
                                       f"{duration(asked)} from now; nothing more was posted"))
                seconds = max(asked or 0.0, policy.delay(rate_limited))
                if rate_limited >= policy.max_rate_limited or rate_limit_waited + seconds > policy.max_rate_limit_wait:
                    return Outcome("failed", status=status, attempts=attempts, error=(
                        f"SendGrid answered 429 (too many requests) {rate_limited} times in a row "
                        f"over {rate_limit_waited:.0f} s; try again later"))
                rate_limit_waited += seconds
                attempts -= 1  # rate limiting is not a failure of this batch
                held.wait()
                if wait(seconds):
                    return Outcome("unsent", error=STOPPED, attempts=attempts)
                continue
            rate_limited = 0
            if status < 500:
                said, advice = refusal(response, batch)
                return Outcome("refused", status=status, attempts=attempts, error=said, advice=advice)
            problem = f"SendGrid answered {status}: {sendgrid_errors(response.body)}"
        if attempts >= policy.attempts:
            return Outcome("failed", status=status, attempts=attempts,
                           error=f"{problem} (gave up after {attempts} attempts)")
        if wait(policy.delay(attempts)):
            return Outcome("unsent", error=STOPPED, attempts=attempts)


def _rate_limit_wait(response: Response) -> float | None:
    return rate_limit_wait(response.headers)


def rate_limit_wait(response_headers: Mapping[str, str]) -> float | None:
    """Seconds until the limit resets, as SendGrid says; None when it says nothing usable.

    `X-RateLimit-Reset` is unix seconds; `Retry-After` seconds or an HTTP date. A
    value that is not a finite number is ignored rather than trusted: `nan` once
    made every wait zero.
    """
    headers = {k.lower(): v for k, v in response_headers.items()}
    reset = _finite(headers.get("x-ratelimit-reset"))
    if reset is not None:
        return max(reset - time.time(), 0.0) + random.uniform(0.0, 0.25)
    return retry_after_seconds(headers.get("retry-after"))


def _finite(text: str | None) -> float | None:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def clock(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment))


def duration(seconds: float) -> str:
    minutes = math.ceil(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"


def describe(exc: BaseException) -> str:
    """An exception on one line: its type and message (whole: `send` scrubs, then shortens)."""
    text = scrub(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]*>")


def sendgrid_errors(body: bytes) -> str:
    """SendGrid's own error messages from an error body, on one line.

    An HTML page (a proxy's or a load balancer's 503) is summed up by its title,
    never pasted in whole.
    """
    try:
        errors = json.loads(body.decode("utf-8"))["errors"]
        parts = [f"{e['field']}: {e['message']}" if e.get("field") else str(e["message"]) for e in errors]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        text = body.decode("utf-8", "replace").strip()
        if text.startswith("<") or "<html" in text[:1000].lower():
            title = _TITLE.search(text)
            named = scrub(_TAGS.sub(" ", title[1]), limit=80) if title else ""
            return f"an HTML page{f' titled {named!r}' if named else ''} instead of SendGrid's JSON"
        return scrub(text) or "no error message"
    shown = "; ".join(parts[:3]) + (f" (and {len(parts) - 3} more)" if len(parts) > 3 else "")
    return scrub(shown)


def refusal_message(response: Response, batch: PreparedBatch | None = None) -> str:
    """One line: the status, SendGrid's message, and what to do."""
    said, advice = refusal(response, batch)
    return f"{said}: {advice}" if advice else said


def refusal(response: Response, batch: PreparedBatch | None = None) -> tuple[str, str]:
    """What SendGrid said (which may need shortening) and what to do (never shortened)."""
    if 300 <= response.status < 400:
        location = {k.lower(): v for k, v in response.headers.items()}.get("location", "")
        return (f"SendGrid's address answered {response.status}, a redirect"
                f"{f' to {scrub(location, limit=120)}' if location else ''}, instead of an answer",
                "this request was not sent; check NEWSLETTER_SENDGRID_URL (or a proxy between here and SendGrid)")
    advice = _ADVICE.get(response.status, "see SendGrid's message")
    refused = refused_addresses(response, batch) if batch is not None and response.status == 400 else []
    if refused:
        shown = ", ".join(refused[:NAMED_AT_MOST]) + (
            f" (and {len(refused) - NAMED_AT_MOST} more)" if len(refused) > NAMED_AT_MOST else "")
        advice = (f"SendGrid refused the recipient{'s' if len(refused) > 1 else ''} {shown}: fix or remove "
                  f"{'them' if len(refused) > 1 else 'it'} in the list, then send again (the send stopped, "
                  "no request was posted after this answer)")
    return f"SendGrid refused the request ({response.status}: {sendgrid_errors(response.body)})", advice


def refused_addresses(response: Response, batch: PreparedBatch) -> list[str]:
    """The `to` addresses of the personalizations a 400 points at, in order."""
    indexes = sorted({int(m[1]) for m in _PERSONALIZATION.finditer(response.body.decode("utf-8", "replace"))})
    if not indexes:
        return []
    try:
        personalizations = json.loads(batch.body)["personalizations"]
        return [personalizations[i]["to"][0]["email"] for i in indexes if i < len(personalizations)]
    except (ValueError, KeyError, IndexError, TypeError):
        return []
