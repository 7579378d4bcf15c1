"""The server's emails: the confirmation (a signed link), the note to an address subscribed already
(the same link), and the welcome (`welcome.md`).

Both are rendered by Jinja templates the publication may override (`signup-email.html`,
`signup-email.txt`), with what readers typed passed in as values, escaped: text from a
reader is never evaluated as a template. `welcome.md` is Markdown with a `subject:` in
its front matter, read once when the server starts, so a broken one is an error at
`newsletter serve`, not a failed email later.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

from newsletter.config import Settings
from newsletter.content import read_front_matter
from newsletter.errors import ContentError, where
from newsletter.headers import ascii_url
from newsletter.render.templates import environment, render, shared_context
from newsletter.sending.mailer import OutgoingEmail
from newsletter.signup.phrases import signup_phrases

WELCOME_FILE = "welcome.md"


@dataclass(frozen=True)
class Welcome:
    subject: str
    html: str   # the body, rendered from Markdown
    text: str


def load_welcome(settings: Settings) -> Welcome:
    """`welcome.md` of the publication, or the short default in its language."""
    path = settings.root / WELCOME_FILE
    phrases = signup_phrases(settings, markup=False)
    if not path.is_file():
        text = phrases("welcome")
        return Welcome(phrases("welcome_subject", publication=settings.name), f"<p>{escape(text)}</p>", text)
    document = read_front_matter(path, "the welcome email", "the welcome email starts with front matter: a `---` "
                                                           "line, `subject: ...`, then another `---` line")
    subject = document.meta.data.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        raise ContentError(f"{document.meta.where('subject')}: the welcome email needs a `subject:` in its front "
                           "matter")
    body = document.render(settings.base_url)
    return Welcome(" ".join(subject.split()), body.html, body.text.strip())


class EmailMaker:
    """Renders the confirmation and welcome emails of one publication."""

    def __init__(self, settings: Settings, welcome: Welcome) -> None:
        self._settings = settings
        self._welcome = welcome
        self._env = environment(settings.templates_dir)
        if _LINK in welcome.html or _LINK in welcome.text:
            raise ContentError(f"{where(welcome_path(settings))}: the welcome email holds {_LINK!r}, the "
                               "placeholder of its unsubscribe link: take it out")
        self._confirmation: OutgoingEmail | None = None
        self._already_subscribed: OutgoingEmail | None = None
        self._welcome_email: OutgoingEmail | None = None

    def _render(self, to: str, subject: str, html_body: str, text_body: str, action_url: str = "",
                after: tuple[str, ...] = (), unsubscribe_url: str = "") -> OutgoingEmail:
        settings = self._settings
        context: dict[str, Any] = {**shared_context(settings, markup=True), "subject": subject,
                                   "action_url": action_url, "unsubscribe_url": unsubscribe_url, "after": after}
        context["t"] = signup_phrases(settings, markup=True)
        html = render(self._env, "signup-email.html", {**context, "body": Markup(html_body)})
        context["t"] = signup_phrases(settings, markup=False)
        text = render(self._env, "signup-email.txt", {**context, "body": text_body})
        headers: dict[str, str] = {}
        if unsubscribe_url:  # RFC 8058: a mail client's own button unsubscribes in one POST
            headers = {"List-Unsubscribe": f"<{unsubscribe_url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        return OutgoingEmail(to=to, subject=subject, html=html, text=text, headers=headers)

    def confirmation(self, to: str, confirm_url: str) -> OutgoingEmail:
        if self._confirmation is None:
            t = signup_phrases(self._settings, markup=False)
            name = self._settings.name
            intro = t("confirm_email", publication=name)
            self._confirmation = self._render("", t("confirm_subject", publication=name), f"<p>{escape(intro)}</p>",
                                              intro, action_url=_LINK, after=(t("confirm_ignore"),))
        return _with_link(self._confirmation, to, confirm_url)

    def already_subscribed(self, to: str, confirm_url: str) -> OutgoingEmail:
        """To an address that asks again once confirmed: it is on the list; the link joins again all the same."""
        if self._already_subscribed is None:
            t = signup_phrases(self._settings, markup=False)
            name = self._settings.name
            intro = t("already_email", publication=name)
            self._already_subscribed = self._render("", t("already_subject", publication=name),
                                                    f"<p>{escape(intro)}</p>", intro, action_url=_LINK,
                                                    after=(t("already_ignore"),))
        return _with_link(self._already_subscribed, to, confirm_url)

    def welcome(self, to: str, unsubscribe_url: str) -> OutgoingEmail:
        if self._welcome_email is None:
            welcome = self._welcome
            self._welcome_email = self._render("", welcome.subject, welcome.html, welcome.text, unsubscribe_url=_LINK)
        return _with_link(self._welcome_email, to, unsubscribe_url)


# Each email differs from reader to reader by one link only: it is rendered once, with this in the
# link's place, and each reader's link put there (escaped for HTML). Made of letters only, so no
# template or escaping changes it; a text that holds it already cannot be told apart, so it is refused.
_LINK = "QzLinkPlaceholderXq"


def _with_link(email: OutgoingEmail, to: str, url: str) -> OutgoingEmail:
    return OutgoingEmail(to=to, subject=email.subject, html=email.html.replace(_LINK, str(escape(url))),
                         text=email.text.replace(_LINK, url),
                         # A header is ASCII: an accented signup.url goes %-encoded (a browser sends the same).
                         headers={name: value.replace(_LINK, ascii_url(url)) for name, value in email.headers.items()})


def welcome_path(settings: Settings) -> Path:
    return settings.root / WELCOME_FILE


@dataclass
class WelcomeCheck:
    """`check --welcome`: what readers' welcome email will be, and what is wrong with it."""

    source: str            # "welcome.md", or the built-in default
    subject: str
    errors: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors

    def lines(self) -> list[str]:
        return [f"{self.source}: subject {self.subject!r}; "
                f"{'no errors' if self.ok else f'{len(self.errors)} error' + ('s' if len(self.errors) != 1 else '')}"]


def check_welcome(settings: Settings) -> WelcomeCheck:
    """Render the welcome email as a reader gets it; a ContentError for a welcome.md that cannot be read.

    Errors: an email without the reader's unsubscribe link in both parts (a template of the
    publication's that dropped it), or a welcome.md without text.
    """
    path = welcome_path(settings)
    welcome = load_welcome(settings)
    source = where(path) if path.is_file() else f"no {WELCOME_FILE}: the built-in welcome"
    link = "https://example.invalid/unsubscribe/CHECK"
    email = EmailMaker(settings, welcome).welcome("reader@example.invalid", link)
    errors = []
    if not welcome.text.strip():
        errors.append(f"{where(path)}: the welcome email has no text after its front matter")
    for part, body in (("HTML", email.html), ("text", email.text)):
        if link not in body:
            errors.append(f"the {part} part has no unsubscribe link: keep {{{{ unsubscribe_url }}}} in "
                          f"templates/signup-email.{'html' if part == 'HTML' else 'txt'}")
    return WelcomeCheck(source, welcome.subject, errors)
