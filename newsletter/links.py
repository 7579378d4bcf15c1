"""Fetch every link and image of an email and report the broken ones; and the check a real
send makes first, that the issue's web page and images are online.

Each URL is fetched once, concurrently, within a deadline: HEAD first, then GET
where the server refuses HEAD (some answer 405, 403 or 404 to HEAD alone), following
redirects and noting where they end. Links holding merge fields (filled per
recipient) and `mailto:`/`tel:` links are skipped.

The standard library does this (urllib follows redirects, honours the proxy
settings of the environment, and a thread pool gives the concurrency), so no HTTP
client is added for it. Its timeout, like every client's (urllib3's `total` too),
bounds each socket read, so a server sending a byte every few seconds would hold a
check for ever: `_Deadline` bounds the whole exchange of a URL (HEAD, GET and every
redirect) by shutting its sockets down when the time is up. No body is read but a
redirect's, which urllib reads before following it, and that one is capped.

A 429 (Too Many Requests) says the server is rate-limiting us, not that the link is
broken: it is asked once more after a short Retry-After (a few seconds at most, within
the deadline), and is otherwise reported as a link that could not be checked.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from newsletter import __version__, merge
from newsletter.build import render_and_check
from newsletter.checks import CheckReport, check_sending_settings
from newsletter.config import Settings
from newsletter.render import RenderedEmail
from newsletter.files.retry_after import retry_after_seconds

LINK_TIMEOUT = 10.0    # seconds for each request of `check --links`
SEND_TIMEOUT = 5.0     # the check before a send: a few seconds at most, all at once
PREVIEW_TIMEOUT = 3.0
MAX_WORKERS = 16
MAX_BODY = 64 * 1024   # bytes of a redirect's body read before it is followed
USER_AGENT = f"newsletter-link-check/{__version__} (+https://pypi.org/project/newsletter/)"
TEMPLATE_PLACE = "the email's header or footer"
TOO_MANY_REQUESTS = 429
# The longest Retry-After waited for before asking a rate-limiting server once more: a
# check waits seconds, not the minutes a server may ask for.
MAX_RETRY_WAIT = 3.0
RATE_LIMITED = "the server answered 429 Too Many Requests; try again later"

Kind = Literal["link", "image"]


@dataclass(frozen=True)
class Link:
    """A URL of the email, what it is, and where it is (an article's title, or the template)."""

    url: str
    kind: Kind
    places: tuple[str, ...]


@dataclass(frozen=True)
class Fetched:
    """What fetching a URL gave: a status and the URL it ended at, or a network error."""

    url: str
    status: int | None = None
    final_url: str = ""
    error: str = ""
    retry_after: float | None = None  # seconds, from a 429's Retry-After header

    @property
    def rate_limited(self) -> bool:
        """The server answered 429: it says nothing about the link, only that we asked too often."""
        return self.status == TOO_MANY_REQUESTS

    @property
    def broken(self) -> bool:
        return self.status is None or (self.status >= 400 and not self.rate_limited)

    @property
    def redirected(self) -> bool:
        return bool(self.final_url) and self.final_url != self.url

    @property
    def reason(self) -> str:
        if self.status is None:
            return self.error
        return f"{self.status} {http.client.responses.get(self.status, '')}".strip()


@dataclass(frozen=True)
class LinkResult:
    link: Link
    fetched: Fetched


Level = Literal["error", "warning"]  # of a line a report prints on standard error


@dataclass
class LinkReport:
    """`check --links`: the issue's checks, then what each link and image gave."""

    checks: CheckReport
    results: list[LinkResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def broken(self) -> list[LinkResult]:
        return [r for r in self.results if r.fetched.broken]

    @property
    def redirected(self) -> list[LinkResult]:
        return [r for r in self.results if not r.fetched.broken and not r.fetched.rate_limited
                and r.fetched.redirected]

    @property
    def unchecked(self) -> list[LinkResult]:
        """The links a rate-limiting server (429) did not let us check: warnings, not errors."""
        return [r for r in self.results if r.fetched.rate_limited]

    @property
    def ok(self) -> bool:
        return self.checks.ok and not self.broken

    def lines(self) -> list[str]:
        """What `check --links` prints on standard output: the checks' verdict, the redirects, the counts."""
        lines = []
        warned = len(self.checks.warnings)
        if self.checks.ok:
            lines.append(f"{self.checks.issue}: no errors, {warned} warning{'s' if warned != 1 else ''}")
        lines += [f"redirected: {result.link.url} -> {result.fetched.final_url}" for result in self.redirected]
        checked, broken = len(self.results), len(self.broken)
        unchecked = f", {len(self.unchecked)} not checked (429)" if self.unchecked else ""
        lines.append(f"{self.checks.issue}: {checked} link{'s' if checked != 1 else ''} and images fetched, "
                     f"{broken} broken, {len(self.redirected)} redirected{unchecked}, {len(self.skipped)} skipped "
                     "(merge fields, mailto:)")
        return lines

    def problems(self) -> list[tuple[Level, str]]:
        """What it prints on standard error, each with its level: the broken links, then those not checked."""
        problems: list[tuple[Level, str]] = [
            ("error", f"broken: {result.link.url}: {result.fetched.reason} ({result.link.kind} in "
                      f"{', '.join(result.link.places)})") for result in self.broken]
        problems += [("warning", f"warning: {rate_limited_warning(result)}") for result in self.unchecked]
        return problems


def email_links(email: RenderedEmail) -> tuple[list[Link], list[str]]:
    """Every link and image URL of the email, once each with where it is; and the skipped ones."""
    import lxml.html

    found: dict[str, tuple[Kind, list[str]]] = {}
    skipped: list[str] = []

    def note(url: str, kind: Kind, place: str) -> None:
        url = url.strip()
        if not url or url.startswith("#"):
            return
        if merge.TAG_PATTERN.search(url) or "[%" in url or not url.lower().startswith(("http://", "https://")):
            if url not in skipped:
                skipped.append(url)  # merge fields (filled per recipient), mailto:, tel:
            return
        entry = found.setdefault(url, (kind, []))
        if place not in entry[1]:
            entry[1].append(place)

    for article in email.issue.articles:
        if not article.html.strip():
            continue
        fragment = lxml.html.fragment_fromstring(article.html, create_parent="div")
        place = f"“{article.title}”"
        for img in fragment.iter("img"):
            note(img.get("src", ""), "image", place)
        for a in fragment.iter("a"):
            note(a.get("href", ""), "link", place)
    tree = lxml.html.document_fromstring(email.html)
    for img in tree.iter("img"):
        if img.get("src", "").strip() not in found:
            note(img.get("src", ""), "image", TEMPLATE_PLACE)
    for a in tree.iter("a"):
        if a.get("href", "").strip() not in found:
            note(a.get("href", ""), "link", TEMPLATE_PLACE)
    return [Link(url, kind, tuple(places)) for url, (kind, places) in found.items()], skipped


def fetch(url: str, timeout: float = LINK_TIMEOUT) -> Fetched:
    """HEAD `url` (GET where HEAD is refused), following redirects, all within `timeout`
    seconds; never raises."""
    deadline = _Deadline(timeout)
    try:
        head = _asked(url, "HEAD", deadline)
        if head.broken and not deadline.expired and (
                head.status is not None or "closed the connection" in head.error):
            # Some servers refuse HEAD alone (405, 501, or 403/404 from a misconfigured
            # rule): only GET's answer says whether the page is there.
            get = _asked(url, "GET", deadline)
            return get if not get.broken or get.status is not None else head
        return head
    finally:
        deadline.cancel()


class _Deadline:
    """The end of one URL's exchange. Every socket opened for it is shut down then, which
    ends a read blocked on it at once (urllib's timeout only bounds each read)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return self.ends - time.monotonic()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def cancel(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        # The plain socket's shutdown, also for a TLS socket: it ends the connection under
        # a read in progress in another thread without touching the TLS state it is using.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # closed already


def _connection(base: type[http.client.HTTPConnection], deadline: _Deadline) -> type[http.client.HTTPConnection]:
    """`base` (HTTP or HTTPS) with its socket watched by `deadline` once connected."""

    class Watched(base):  # type: ignore[valid-type, misc]
        def connect(self) -> None:
            left = deadline.remaining()
            if left <= 0:
                raise TimeoutError("the deadline has passed")
            current = getattr(self, "timeout", None)  # a number, or socket's "global default" marker
            if not isinstance(current, (int, float)) or current > left:
                self.timeout = left  # connecting (and the TLS handshake) within what is left
            super().connect()
            deadline.watch(self.sock)

    return Watched


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_connection(http.client.HTTPConnection, self.deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_connection(http.client.HTTPSConnection, self.deadline), req,
                            context=self._context)  # type: ignore[attr-defined]


class _CappedBody:
    """A redirect's body as urllib reads it before following it: `MAX_BODY` bytes at most."""

    def __init__(self, fp: IO[bytes]) -> None:
        self.fp = fp

    def read(self, size: int = -1) -> bytes:
        return self.fp.read(MAX_BODY if size is None or size < 0 else min(size, MAX_BODY))

    def close(self) -> None:
        self.fp.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fp, name)


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    def http_error_302(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                       headers: Any) -> Any:
        return super().http_error_302(req, _CappedBody(fp), code, msg, headers)  # type: ignore[arg-type]

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def _asked(url: str, method: str, deadline: _Deadline) -> Fetched:
    """`_request`, asked once more after a 429 whose Retry-After is short and within the deadline."""
    answer = _request(url, method, deadline)
    wait = answer.retry_after
    if answer.rate_limited and wait is not None and wait <= MAX_RETRY_WAIT and wait < deadline.remaining():
        time.sleep(wait)
        answer = _request(url, method, deadline)
    return answer


def _request(url: str, method: str, deadline: _Deadline) -> Fetched:
    request = urllib.request.Request(url, method=method, headers={"User-Agent": USER_AGENT, "Accept": "*/*"})
    opener = urllib.request.build_opener(_HTTPHandler(deadline), _HTTPSHandler(deadline), _RedirectHandler())
    late = f"no answer in time (waited {deadline.seconds:g} s)"
    try:
        left = deadline.remaining()
        if left <= 0:
            return Fetched(url, error=late)
        with opener.open(request, timeout=left) as response:
            if deadline.expired:  # the headers were cut short: http.client takes the cut as their end
                return Fetched(url, error=late)
            return Fetched(url, response.status, response.geturl())
    except urllib.error.HTTPError as exc:
        exc.close()  # its body is not read
        wait = retry_after_seconds(exc.headers.get("Retry-After")) if exc.code == TOO_MANY_REQUESTS else None
        return Fetched(url, exc.code, exc.geturl() or url, retry_after=wait)
    except urllib.error.URLError as exc:
        return Fetched(url, error=late if deadline.expired else _network_error(exc.reason))
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return Fetched(url, error=late if deadline.expired else _network_error(exc))


def _network_error(reason: object) -> str:
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "no answer in time"
    if isinstance(reason, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error ({getattr(reason, 'reason', None) or reason})"
    text = getattr(reason, "strerror", None) or str(reason)
    return text or type(reason).__name__


def fetch_all(urls: Iterable[str], timeout: float = LINK_TIMEOUT) -> dict[str, Fetched]:
    """Fetch each URL once, up to `MAX_WORKERS` at a time."""
    unique = list(dict.fromkeys(urls))
    if not unique:
        return {}
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(unique))) as pool:
        return dict(zip(unique, pool.map(lambda url: fetch(url, timeout), unique), strict=True))


def check_links(links: Sequence[Link], timeout: float = LINK_TIMEOUT) -> list[LinkResult]:
    fetched = fetch_all((link.url for link in links), timeout)
    return [LinkResult(link, fetched[link.url]) for link in links]


def check_issue_links(settings: Settings, name: str, timeout: float = LINK_TIMEOUT) -> LinkReport:
    """`newsletter check ISSUE --links`: the checks, then every link and image fetched."""
    email, checks = render_and_check(settings, name, write_cache=False)  # a check writes nothing
    check_sending_settings(settings, checks)  # everything plain `check` reports, then the links
    links, skipped = email_links(email)
    return LinkReport(checks, check_links(links, timeout), skipped)


def web_check(settings: Settings, email: RenderedEmail, timeout: float = SEND_TIMEOUT) -> list[str]:
    """Before a real send: the issue's web page and every image of the email must be online.

    Returns a warning for each that is not, naming the URL and what to do.
    """
    links, _ = email_links(email)
    images = [link.url for link in links if link.kind == "image"]
    fetched = fetch_all([email.issue.web_url, *images], timeout)
    todo = (f"run `newsletter site`, then publish build/site/ so that it is served at {settings.base_url}/")
    warnings = []
    for url, result in fetched.items():
        if result.rate_limited:
            warnings.append(f"{url} could not be checked: {RATE_LIMITED}")
            continue
        if not result.broken:
            continue
        what = "the issue's web page (the email's “Read on the web” link)" if url == email.issue.web_url else (
            "an image of the email: readers would see it broken")
        warnings.append(f"{url} is not online ({result.reason}): {what}; {todo}")
    return warnings


def rate_limited_warning(result: LinkResult) -> str:
    """The warning for a link a rate-limiting server did not let us check."""
    return (f"{result.link.url}: could not be checked: {RATE_LIMITED} "
            f"({result.link.kind} in {', '.join(result.link.places)})")


def offline_note(settings: Settings, email: RenderedEmail, timeout: float = PREVIEW_TIMEOUT) -> str:
    """For the preview: one line when the issue's web page is not online, else ''."""
    result = fetch(email.issue.web_url, timeout)
    if not result.broken:
        return ""
    return (f"The web edition is not online yet ({email.issue.web_url}: {result.reason}): readers load the "
            f"images from {settings.base_url}/, not from this computer. Run `newsletter site` and publish "
            "build/site/ there.")
