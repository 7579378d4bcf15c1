"""`newsletter check ISSUE --spam`: the message one reader would get, scored by SpamAssassin.

The message scored is the one the SMTP provider builds for a sample reader, byte for byte:
MIME parts, `From`, `List-Id`, `List-Unsubscribe` and the rest of the headers, the greeting
and unsubscribe link filled in. Through SendGrid the same message is built with the link
SendGrid's send would carry, an equivalent of what SendGrid makes of the request (its own
`Received`, `Message-ID` and DKIM headers are added on its servers and cannot be had here).

SpamAssassin runs with its network tests off (`-L`: no DNS blocklists, no Razor or Pyzor),
Bayes off and no user preferences, so the score is the same on every machine and says what
the message itself earns. Debian's package ships its rules in /usr/share/spamassassin, so no
`sa-update` is needed. Where it is not installed the check says how to install it and passes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from newsletter.build import render_and_check
from newsletter.checks import CheckReport, check_sending_settings
from newsletter.config import Settings
from newsletter.errors import NewsletterError, where
from newsletter.render import RenderedEmail

SPAMASSASSIN = "spamassassin"
INSTALL = "apt-get install spamassassin"
# SpamAssassin's own default `required_score`: from 5 it files the message as spam.
SPAM_SCORE = 5.0
# Over 3, a filter stricter than the default, or one more rule on a receiver's side, tips it.
WARNING_SCORE = 3.0
MOST_RULES_NAMED = 5  # in the error or warning line: the rules that add most (all are listed above it)
TIMEOUT = 120  # seconds; SpamAssassin takes 1-3 to start and score one message
# The rule that fires on a link holding the reader's address, as phishing links do (`?email=…`).
ADDRESS_IN_LINK_RULE = "GB_CUSTOM_HTM_URI"
# Who the sample message is for (RFC 2606's example domain: it can reach nobody).
SAMPLE_EMAIL = "reader@example.org"
SAMPLE_FIRST_NAME, SAMPLE_LAST_NAME = "Sam", "Reader"
# SendGrid fills `<%asm_group_unsubscribe_raw_url%>` with a link to its page holding an opaque
# token for the reader (never the address); this stands in for it, of the same shape.
SENDGRID_GROUP_PAGE = "https://u0000000.ct.sendgrid.net/asm/unsubscribe/?user_id=0000000&data=sample-token"


class SpamCheckFailed(NewsletterError):
    """SpamAssassin is installed but did not score the message."""


@dataclass(frozen=True)
class FiredRule:
    name: str
    points: float
    description: str


@dataclass(frozen=True)
class SpamScore:
    score: float
    rules: tuple[FiredRule, ...]
    version: str  # "SpamAssassin 4.0.1"

    def fired(self, name: str) -> FiredRule | None:
        return next((rule for rule in self.rules if rule.name == name), None)


@dataclass
class SpamReport:
    """`check --spam`: the issue's checks, then SpamAssassin's score (None where it is not installed)."""

    checks: CheckReport
    score: SpamScore | None

    def lines(self) -> list[str]:
        if self.score is None:
            return []
        lines = [f"spam score: {self.score.score or 0.0:.1f} for the message a reader gets ({self.score.version}, network "
                 f"tests off; over {WARNING_SCORE:.0f} is a warning, {SPAM_SCORE:.0f} or more an error), rules fired:"]
        width = max((len(rule.name) for rule in self.score.rules), default=0)
        lines.extend(f"  {rule.points:5.1f}  {rule.name:<{width}}  {rule.description}"
                     for rule in _by_points(self.score.rules))
        return lines


def check_issue_spam(settings: Settings, name: str) -> SpamReport:
    """Everything plain `check` reports about issue `name`, then the spam score of a reader's message."""
    email, checks = render_and_check(settings, name, write_cache=False)  # a check writes nothing
    check_sending_settings(settings, checks)
    message = reader_message(settings, email)
    score = run_spamassassin(message)
    if score is None:
        checks.warn(f"the spam score was not checked: SpamAssassin is not installed; install it "
                    f"(Debian, Ubuntu: `{INSTALL}`; its rules come with the package) and run this again")
        return SpamReport(checks, None)
    adding = [f"{rule.name} {rule.points:+.1f}" for rule in _by_points(score.rules) if rule.points > 0]
    fired = ", ".join(adding[:MOST_RULES_NAMED]) + (
        f" and {len(adding) - MOST_RULES_NAMED} more" if len(adding) > MOST_RULES_NAMED else "")
    if score.score >= SPAM_SCORE:
        checks.error(f"SpamAssassin scores the email {score.score:.1f}, at or over {SPAM_SCORE:.0f}: most "
                     f"filters would put it in spam ({fired}); change what those rules find")
    elif score.score > WARNING_SCORE:
        checks.warn(f"SpamAssassin scores the email {score.score:.1f}, over {WARNING_SCORE:.0f}: a stricter filter "
                    f"would put it in spam ({fired}); change what those rules find")
    address_rule = score.fired(ADDRESS_IN_LINK_RULE)
    if address_rule is not None:
        checks.warn(_address_in_link(settings, address_rule))
    return SpamReport(checks, score)


def _by_points(rules: tuple[FiredRule, ...]) -> list[FiredRule]:
    """The rules that add most first (SpamAssassin lists them in the order they ran)."""
    return sorted(rules, key=lambda rule: -rule.points)


def _address_in_link(settings: Settings, rule: FiredRule) -> str:
    """What to do about a link holding the reader's address: the signed links of the sign-up server."""
    from newsletter.merge import unsubscribe_link

    which = ("the unsubscribe link holds the reader's address (unsubscribe_url's {email}), as phishing links do"
             if settings.signup is None and settings.unsubscribe_url
             and SAMPLE_EMAIL in unsubscribe_link(settings.unsubscribe_url, SAMPLE_EMAIL)
             else "a link of the email holds the reader's address, as phishing links do")
    return (f"{where(settings.config_path)}: {rule.name} ({rule.points:+.1f} in SpamAssassin): {which}; use the "
            "sign-up server's signed links (`signup:` and `newsletter serve`: <signup.url>/unsubscribe/<token>), "
            "or a page of your own that takes a token rather than the address")


def reader_message(settings: Settings, email: RenderedEmail) -> bytes:
    """The whole message the sample reader would get, as the SMTP provider builds it."""
    from newsletter.providers.smtp.provider import SmtpBuilder
    from newsletter.subscribers.store import COLUMNS

    issue = email.issue.name
    with warnings.catch_warnings():  # no way to unsubscribe yet: `check` says so already
        warnings.simplefilter("ignore")
        builder = SmtpBuilder(settings, email, issue, proof=False, dry_run=True,
                              unsubscribe_links=_unsubscribe_links(settings))
    values = {"email": SAMPLE_EMAIL, "first_name": SAMPLE_FIRST_NAME, "last_name": SAMPLE_LAST_NAME,
              "status": "subscribed"}
    row = [values.get(column, "") for column in COLUMNS]
    message = builder.personalizer()(SAMPLE_EMAIL, row)
    # A dry run's builder makes the message at once; a real send's, when its connection posts it.
    assert isinstance(message, bytes)
    return message


def _unsubscribe_links(settings: Settings) -> Callable[[str], str] | None:
    """The reader's unsubscribe link as the send would choose it (see `send`): the sign-up server's signed
    one, then (through SendGrid) its group's page; None leaves unsubscribe_url's to the builder."""
    if settings.signup is not None:
        import secrets

        from newsletter.signup.tokens import UnsubscribeLinks

        # Signed with a throwaway secret: the token has the shape of the real one, and
        # NEWSLETTER_SECRET is not needed (nor read) to score a message.
        return UnsubscribeLinks(secrets.token_hex(32), settings.signup.url, settings.signup.list)
    if settings.provider != "smtp" and settings.sendgrid.asm_group_id is not None:
        return lambda _email: SENDGRID_GROUP_PAGE
    return None


def run_spamassassin(message: bytes) -> SpamScore | None:
    """The one place SpamAssassin runs: `message` scored with network tests off; None where it is
    not installed (not on PATH). Raises `SpamCheckFailed` when it runs but gives no score."""
    command = shutil.which(SPAMASSASSIN)
    if command is None:
        return None
    # -L: local tests only; -t: the report after the message; -x and -p /dev/null: no user
    # preferences read or written (the editor's own welcome lists would sway the score);
    # Bayes off (trained on the editor's mail, not the reader's); report_safe 0: a spam
    # message is marked, not wrapped. The report in English, to be read here.
    arguments = [command, "-L", "-t", "-x", "-p", os.devnull, "--cf=use_bayes 0", "--cf=report_safe 0"]
    environment = {**os.environ, "LC_ALL": "C", "LANG": "C", "LANGUAGE": ""}
    try:
        finished = subprocess.run(arguments, input=message, capture_output=True, timeout=TIMEOUT,
                                  env=environment, check=False)
    except FileNotFoundError:
        return None
    except subprocess.TimeoutExpired:
        raise SpamCheckFailed(f"{command} did not score the message within {TIMEOUT} s: run it by hand "
                              f"(`{SPAMASSASSIN} -L -t < message.eml`) to see why") from None
    output = finished.stdout.decode("utf-8", "replace")
    score = _parse_report(output)
    if finished.returncode != 0 or score is None:
        said = [line for line in finished.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        raise SpamCheckFailed(f"{command} gave no score (exit status {finished.returncode}"
                              f"{': ' + said[-1].strip() if said else ''}): run `{SPAMASSASSIN} --lint` to see why")
    return score


_TOTAL = re.compile(r"^Content analysis details:\s+\((-?[\d.]+) points?,", re.MULTILINE)
_RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s+(.*)$")
_VERSION = re.compile(r"^X-Spam-Checker-Version: (SpamAssassin \S+)", re.MULTILINE)


def _parse_report(output: str) -> SpamScore | None:
    """The score and rules of the report `-t` puts after the message:

        Content analysis details:   (1.0 points, 5.0 required)

         pts rule name              description
        ---- ---------------------- ------------------------------------
         1.0 GB_CUSTOM_HTM_URI      Custom html uri

    A description too long for its line goes on below it, indented.
    """
    totals = list(_TOTAL.finditer(output))
    if not totals:
        return None
    rules: list[FiredRule] = []
    table = output[totals[-1].end():].split("\n")
    started = False
    for line in table:
        if line.startswith("----"):
            started = True
            continue
        if not started or not line.strip():
            continue
        match = _RULE.match(line)
        if match:
            rules.append(FiredRule(match[2], float(match[1]), match[3].strip()))
        elif rules and line.startswith(" "):
            last = rules[-1]
            rules[-1] = FiredRule(last.name, last.points, f"{last.description} {line.strip()}")
    version = _VERSION.search(output)
    return SpamScore(float(totals[-1][1]), tuple(rules), version[1] if version else "SpamAssassin")
