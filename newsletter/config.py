"""The publication's settings: `newsletter.yaml` read once into a typed `Settings`."""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from email_validator import EmailNotValidError, validate_email

from newsletter import colors, strings
from newsletter.errors import ConfigError, keep_secret
from newsletter.files.yamlfile import YamlMapping, read_mapping, unknown_key_advice

CONFIG_FILE = "newsletter.yaml"
DEFAULT_SENDGRID_URL = "https://api.sendgrid.com"
# `sendgrid.region`: where the account's data lives. EU accounts (data residency) are served
# from their own host; the API is the same.
REGION_URLS = {"global": DEFAULT_SENDGRID_URL, "eu": "https://api.eu.sendgrid.com"}
# Each send adds the issue's own category (for `newsletter stats`): SendGrid takes 10 at most.
MAX_OWN_CATEGORIES = 9
DEFAULT_TIMEOUT = 30.0
# Requests in flight at once. SendGrid answers each in roughly 100-500 ms and sets no
# practical limit on mail send, so one at a time leaves the wire idle. 8 rather than 4:
# 90,000 recipients at 250 ms per answer take 4.2 s at 8 and 6.9-8.1 s at 4 on a loaded
# 2-core machine (benchmarks/bench_concurrency.py --sweep), and a million at 500 ms about
# a minute; a request lost in flight leaves at most 8,000 recipients uncertain.
DEFAULT_CONCURRENCY = 8
MAX_CONCURRENCY = 16

KNOWN_KEYS = {
    "name", "from", "reply_to", "postal_address", "base_url", "unsubscribe_url",
    "sendgrid", "language", "subscribe_url", "strings", "logo", "accent_color", "proof_prefix",
    "provider", "smtp", "signup",
}
DEFAULT_PROOF_PREFIX = "[Proof]"
# The links, rules and headings of the default templates when no `accent_color` is set.
DEFAULT_ACCENT_COLOR = "#1d5a8c"
DEFAULT_ACCENT_COLOR_DARK = "#8cc0ec"
_HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
REQUIRED_KEYS = ("name", "from", "postal_address", "base_url")
REQUIRED_WHY = {
    "name": "it is the sender's name readers see",
    "from": "it is the address the newsletter is sent from",
    "postal_address": "anti-spam laws (CAN-SPAM, PECR) require a postal address in every email",
    "base_url": "it is where the web version of each issue lives",
}
SENDGRID_KEYS = {"asm_group_id", "categories", "timeout", "region", "concurrency"}
# The mail services an issue can be sent through (`provider:`); SendGrid when absent.
PROVIDERS = ("sendgrid", "smtp")
SMTP_KEYS = {"host", "port", "security", "username", "connections", "rate", "daily_limit", "ca_file", "timeout",
             "dkim_selector"}
# A DKIM selector: one or more DNS labels, the name before `._domainkey.` (RFC 6376 §3.1).
_DKIM_SELECTOR = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?)*")
SMTP_SECURITIES = ("starttls", "tls", "none")
SMTP_DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
DEFAULT_SMTP_CONNECTIONS = 4
DEFAULT_SMTP_TIMEOUT = 60.0
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
SIGNUP_KEYS = {"url", "list", "tags", "per_ip_per_hour"}
DEFAULT_SIGNUPS_PER_IP_PER_HOUR = 10  # issue 19: enough for a household, too few to bomb anyone


class ConfigWarning(UserWarning):
    """Something in `newsletter.yaml` is ignored; the CLI prints these."""


@dataclass(frozen=True)
class Address:
    email: str
    name: str = ""


@dataclass(frozen=True)
class SmtpSettings:
    """`smtp:` of newsletter.yaml: where and how to connect; the password is never in the file."""

    host: str
    port: int
    security: str = "starttls"
    username: str = ""
    connections: int = DEFAULT_SMTP_CONNECTIONS
    rate: float | None = None  # messages a second, across all connections
    daily_limit: int | None = None  # messages a UTC day, proofs included
    ca_file: Path | None = None  # a CA bundle trusted as well as the system's
    timeout: float = DEFAULT_SMTP_TIMEOUT
    dkim_selector: str | None = None  # the provider's DKIM selector, for doctor's DNS check


@dataclass(frozen=True)
class SendGridSettings:
    asm_group_id: int | None = None
    categories: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT
    concurrency: int = DEFAULT_CONCURRENCY
    region: str = "global"


@dataclass(frozen=True)
class SignupSettings:
    """`signup:` of newsletter.yaml: where `newsletter serve` answers readers, and what they join."""

    url: str                      # the server's public address, without a trailing slash
    list: str = "main"            # the list sign-ups join
    tags: tuple[str, ...] = ()    # tags sign-ups get
    per_ip_per_hour: int = DEFAULT_SIGNUPS_PER_IP_PER_HOUR


@dataclass(frozen=True)
class Settings:
    """Everything a command needs to know about the publication."""

    root: Path
    name: str
    sender: Address
    reply_to: Address | None
    postal_address: str
    base_url: str
    unsubscribe_url: str | None
    sendgrid: SendGridSettings
    provider: str = "sendgrid"
    smtp: SmtpSettings | None = None  # set when provider is smtp
    language: str = strings.DEFAULT_LANGUAGE  # as written (`fr`, `en-GB`): `<html lang>`, phrases, dates
    subscribe_url: str | None = None  # where the web edition invites readers to subscribe
    # `strings:` of newsletter.yaml: phrases that replace the built-in ones, or add to them.
    string_overrides: tuple[tuple[str, str], ...] = ()
    logo: Path | None = None  # an image file of the publication, shown atop the email and web page
    accent_color: str = DEFAULT_ACCENT_COLOR  # links, rules and headings
    accent_color_dark: str = DEFAULT_ACCENT_COLOR_DARK  # the same in dark mode
    proof_prefix: str = DEFAULT_PROOF_PREFIX  # before the subject of a proof (`send --to`); "" for none
    signup: SignupSettings | None = None  # `newsletter serve`'s settings; None without `signup:`

    def phrases(self, markup: bool = False) -> strings.Strings:
        """The phrases of the publication's language, its overrides applied (`markup`: for HTML)."""
        return strings.Strings(self.language, dict(self.string_overrides), markup=markup)

    def proof_subject(self, subject: str) -> str:
        """The subject a proof of an issue with `subject` is sent with."""
        return f"{self.proof_prefix} {subject}" if self.proof_prefix else subject

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def issues_dir(self) -> Path:
        return self.root / "issues"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def subscribers_dir(self) -> Path:
        return self.root / "subscribers"

    @property
    def build_dir(self) -> Path:
        return self.root / "build"

    def web_url(self, issue_name: str) -> str:
        """Where the web version of an issue lives."""
        return f"{self.base_url}/{quote(issue_name)}/"

    @property
    def sendgrid_url(self) -> str:
        """SendGrid's base URL: the region's, unless the environment points elsewhere (a local double)."""
        return (os.environ.get("NEWSLETTER_SENDGRID_URL", "").rstrip("/")
                or REGION_URLS[self.sendgrid.region])


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` that holds `newsletter.yaml`."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise ConfigError(
        f"no {CONFIG_FILE} in {start} or any folder above it: "
        "run this inside a publication, or create one with `newsletter init DIR`"
    )


def load_settings(root: Path | None = None) -> Settings:
    """Read `newsletter.yaml` from `root` (default: found from the current directory)."""
    root = root if root is not None else find_root()
    config = read_mapping(root / CONFIG_FILE, ConfigError)
    return _settings_from(root, config)


def _settings_from(root: Path, config: YamlMapping) -> Settings:
    data = config.data
    for key in data:
        if key not in KNOWN_KEYS:
            warnings.warn(
                f"{config.where(key)}: unknown key {key!r} is ignored ({unknown_key_advice(key, KNOWN_KEYS)})",
                ConfigWarning,
                stacklevel=2,
            )
    missing = [key for key in REQUIRED_KEYS if data.get(key) in (None, "")]
    if missing:
        # `postal_adress: ...` leaves postal_address missing: name the line that meant it.
        misspelt = {key: config.misspelling_of(key, KNOWN_KEYS) for key in missing}
        typos = [f"{written!r} on line {config.lines[written]} is ignored: did you mean {key}?"
                 for key, written in misspelt.items() if written is not None]
        first = next((written for written in misspelt.values() if written is not None), None)
        raise ConfigError(
            f"{config.where(first)}: missing required key{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}" + (f"; {'; '.join(typos)}" if typos else "")
        )
    for key in REQUIRED_KEYS:  # `postal_address: "   "` is as good as none (and "" is in any text)
        if isinstance(data[key], str) and not data[key].strip():
            raise ConfigError(f"{config.where(key)}: {key} is empty; {REQUIRED_WHY[key]}")
    base_url = _text(config, "base_url").rstrip("/")
    if not _is_web_address(base_url):
        raise ConfigError(f"{config.where('base_url')}: base_url must be a web address starting with https://")
    unsubscribe_url = _optional_text(config, "unsubscribe_url")
    if unsubscribe_url is not None and not _is_web_address(unsubscribe_url):
        raise ConfigError(
            f"{config.where('unsubscribe_url')}: unsubscribe_url must be a web address starting with https:// "
            "(the page where a subscriber unsubscribes)"
        )
    if unsubscribe_url is not None and "{email}" not in unsubscribe_url:
        raise ConfigError(
            f"{config.where('unsubscribe_url')}: unsubscribe_url must contain {{email}}, "
            "where each subscriber's address goes"
        )
    reply_to = data.get("reply_to")
    provider, smtp = _provider(root, config)
    overrides = _string_overrides(config)
    return Settings(
        root=root,
        name=_text(config, "name"),
        sender=_address(config, "from", data["from"]),
        reply_to=_address(config, "reply_to", reply_to) if reply_to else None,
        postal_address=_text(config, "postal_address"),
        base_url=base_url,
        unsubscribe_url=unsubscribe_url,
        sendgrid=_sendgrid(config),
        provider=provider,
        smtp=smtp,
        language=_language(config, overrides),
        subscribe_url=_web_address(config, "subscribe_url"),
        string_overrides=overrides,
        logo=root / _text(config, "logo") if _optional_text(config, "logo") else None,
        **_accent_colors(config),
        proof_prefix=_proof_prefix(config),
        signup=_signup(config),
    )



def _warn_unknown_keys(config: YamlMapping, section: str, value: dict[str, Any], known: Collection[str]) -> None:
    """A warning at its own line for each key of `section:` the code does not know, naming the one
    meant ("unknown key smtp.hots is ignored (did you mean smtp.host?)")."""
    for key in value:
        if key not in known:
            advice = unknown_key_advice(str(key), known).replace("mean ", f"mean {section}.")
            warnings.warn(f"{config.where(f'{section}.{key}')}: unknown key {section}.{key} is ignored ({advice})",
                          ConfigWarning, stacklevel=4)  # the caller of load_settings, as before


def _language(config: YamlMapping, overrides: tuple[tuple[str, str], ...]) -> str:
    """`language:`, a built-in one, or any language Babel knows whose every phrase `strings:` gives."""
    language = _optional_text(config, "language") or strings.DEFAULT_LANGUAGE
    built_in = f"{', '.join(strings.built_in_languages())} (a region may follow, as in en-GB)"
    try:
        strings.babel_locale(language)
    except strings.UnknownLanguage:
        raise ConfigError(f"{config.where('language')}: language {language!r} is not built in, nor a language "
                          f"code dates can be written in; the built-in languages are {built_in}") from None
    if not strings.is_built_in(language):
        missing = sorted(set(strings.BUILT_IN[strings.DEFAULT_LANGUAGE]) - {key for key, _ in overrides})
        if missing:
            raise ConfigError(
                f"{config.where('language')}: language {language!r} is not built in: give every phrase in it "
                f"under `strings:` (missing: {', '.join(missing)}), or use a built-in language: {built_in}")
    return language


def _string_overrides(config: YamlMapping) -> tuple[tuple[str, str], ...]:
    value = config.data.get("strings") or {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, (str, int, float)) and not isinstance(v, bool)
            for k, v in value.items()):
        raise ConfigError(
            f"{config.where('strings')}: strings must be a mapping of phrase names to text, "
            "such as `in_this_issue: This week`"
        )
    return tuple((key, " ".join(str(text).split())) for key, text in value.items())


def _accent_colors(config: YamlMapping) -> dict[str, str]:
    """`accent_color: "#c0392b"`, or `accent_color: {light: "#c0392b", dark: "#f5a89e"}`.

    Without a dark colour, dark mode gets the accent lightened until it reads on the
    dark background (see `colors.readable_on`).
    """
    value = config.data.get("accent_color")
    if value in (None, ""):
        return {"accent_color": DEFAULT_ACCENT_COLOR, "accent_color_dark": DEFAULT_ACCENT_COLOR_DARK}
    if isinstance(value, dict):
        unknown = set(value) - {"light", "dark"}
        if unknown or "light" not in value:
            raise ConfigError(f"{config.where('accent_color')}: accent_color is a colour, or a mapping with "
                              "`light` and, optionally, `dark` colours")
        light = _color(config, value["light"])
        dark = _color(config, value["dark"]) if value.get("dark") else colors.readable_on(light, colors.DARK_BACKGROUND)
        return {"accent_color": light, "accent_color_dark": dark}
    light = _color(config, value)
    return {"accent_color": light, "accent_color_dark": colors.readable_on(light, colors.DARK_BACKGROUND)}


def _color(config: YamlMapping, value: object) -> str:
    color = str(value).strip() if isinstance(value, str) else ""
    if not _HEX_COLOR.fullmatch(color):
        raise ConfigError(
            f"{config.where('accent_color')}: accent_color must be a colour like \"#1d5a8c\" "
            f"(# and 3 or 6 hex digits, in quotes), not {value!r}"
        )
    if len(color) == 4:
        color = "#" + "".join(c * 2 for c in color[1:])
    return color.lower()


def _proof_prefix(config: YamlMapping) -> str:
    if "proof_prefix" not in config.data:
        return DEFAULT_PROOF_PREFIX
    if config.data["proof_prefix"] is None:
        return ""
    return _text(config, "proof_prefix")


def _signup(config: YamlMapping) -> SignupSettings | None:
    value = config.data.get("signup")
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("url"), str) \
            or not _is_web_address(value["url"].strip()):
        raise ConfigError(f"{config.where('signup')}: signup must be a mapping with `url`, the https:// address "
                          "where readers reach `newsletter serve` (and, optionally, `list` and `tags`)")
    url = urlsplit(value["url"].strip())
    if url.query or url.fragment or "?" in value["url"] or "#" in value["url"]:
        raise ConfigError(f"{config.where('signup')}: signup.url must be the server's address without a query or "
                          "fragment (`?`, `#`): the server's paths (/subscribe, /changes) are added to it")
    if "@" in url.netloc:  # never echoed: what is before the @ may be a password
        raise ConfigError(f"{config.where('signup')}: signup.url must not hold a user name or password (`user:pw@`): "
                          "remove it; the sync authenticates with NEWSLETTER_SECRET")
    _warn_unknown_keys(config, "signup", value, SIGNUP_KEYS)
    list_name = value.get("list", "main")
    if not isinstance(list_name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", list_name):
        raise ConfigError(f"{config.where('signup')}: signup.list must be a list name (letters, digits, - and _), "
                          f"not {list_name!r}")
    tags = value.get("tags") or []
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(t, str) and ";" not in t for t in tags):
        raise ConfigError(f"{config.where('signup')}: signup.tags must be a list of tags (text without ';')")
    per_hour = value.get("per_ip_per_hour", DEFAULT_SIGNUPS_PER_IP_PER_HOUR)
    if isinstance(per_hour, bool) or not isinstance(per_hour, int) or per_hour < 1:
        raise ConfigError(f"{config.where('signup')}: signup.per_ip_per_hour must be a whole number of sign-ups "
                          f"from 1 up (at most that many from one client address in an hour), not {per_hour!r}")
    return SignupSettings(url=value["url"].strip().rstrip("/"), list=list_name,
                          tags=tuple(dict.fromkeys(t.strip() for t in tags if t.strip())), per_ip_per_hour=per_hour)


def _web_address(config: YamlMapping, key: str) -> str | None:
    value = _optional_text(config, key)
    if value is not None and not value.startswith(("https://", "http://")):
        raise ConfigError(f"{config.where(key)}: {key} must be a web address starting with https://")
    return value


def _text(config: YamlMapping, key: str) -> str:
    value = config.data.get(key)
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ConfigError(f"{config.where(key)}: {key} must be text")
    return str(value).strip()


def _optional_text(config: YamlMapping, key: str) -> str | None:
    if config.data.get(key) in (None, ""):
        return None
    return _text(config, key)


def _address(config: YamlMapping, key: str, value: Any) -> Address:
    if isinstance(value, str):
        return Address(email=_checked_email(config, key, value))
    if isinstance(value, dict) and isinstance(value.get("email"), str) and value["email"].strip():
        name = value.get("name") or ""
        if not isinstance(name, str):
            raise ConfigError(f"{config.where(key + '.name')}: {key}.name must be text")
        return Address(email=_checked_email(config, f"{key}.email", value["email"]), name=name.strip())
    raise ConfigError(
        f"{config.where(key)}: {key} must be an address, or a mapping with `email` and `name`"
    )


def _checked_email(config: YamlMapping, key: str, text: str) -> str:
    """`text` trimmed, once email-validator finds it a valid address (syntax only, no DNS)."""
    email = text.strip()
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ConfigError(f"{config.where(key)}: {key} {email!r} is not an email address ({exc})") from None
    return email


def _is_web_address(url: str) -> bool:
    """An http(s) URL with a host: what a mail client opens (never `javascript:` and the like)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # `http://[::1`: an unclosed IPv6 bracket
        return False
    return parts.scheme.lower() in ("https", "http") and bool(parts.netloc) and url.lower().startswith(("https://", "http://"))


def _sendgrid(config: YamlMapping) -> SendGridSettings:
    value = config.data.get("sendgrid")
    if value is None:  # `sendgrid:` with nothing under it
        value = {}
    if not isinstance(value, dict):  # `sendgrid: []` was silently ignored
        raise ConfigError(
            f"{config.where('sendgrid')}: sendgrid must be a mapping of settings "
            f"({', '.join(sorted(SENDGRID_KEYS))}), one per indented line"
        )
    _warn_unknown_keys(config, "sendgrid", value, SENDGRID_KEYS)
    group = value.get("asm_group_id")
    if group is not None and (isinstance(group, bool) or not isinstance(group, int) or group < 1):
        raise ConfigError(
            f"{config.where('sendgrid.asm_group_id')}: sendgrid.asm_group_id must be the number of a SendGrid "
            "unsubscribe group (1 or more; SendGrid > Suppressions > Unsubscribe Groups)"
        )
    categories = value.get("categories") or []
    if isinstance(categories, str):
        categories = [categories]
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise ConfigError(f"{config.where('sendgrid')}: sendgrid.categories must be a list of text")
    if len(categories) > MAX_OWN_CATEGORIES or any(len(c) > 255 or not c.isascii() for c in categories):
        raise ConfigError(
            f"{config.where('sendgrid')}: sendgrid.categories takes at most {MAX_OWN_CATEGORIES} categories, "
            "each ASCII and at most 255 characters (SendGrid takes 10, and each send adds the issue's own)"
        )
    timeout = value.get("timeout", DEFAULT_TIMEOUT)
    # YAML reads `.nan` and `.inf` as floats: neither is a deadline (a NaN one once marked a
    # batch uncertain although nothing had been sent).
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
            or timeout <= 0:
        raise ConfigError(f"{config.where('sendgrid')}: sendgrid.timeout must be a number of seconds above 0, "
                          f"such as {DEFAULT_TIMEOUT:g} (not {timeout!r})")
    concurrency = value.get("concurrency", DEFAULT_CONCURRENCY)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ConfigError(f"{config.where('sendgrid')}: sendgrid.concurrency must be a whole number from 1 to "
                          f"{MAX_CONCURRENCY} (requests in flight at once), not {concurrency!r}")
    region = value.get("region", "global")
    if region not in REGION_URLS:
        raise ConfigError(
            f"{config.where('sendgrid')}: sendgrid.region must be one of {', '.join(REGION_URLS)} "
            f"(not {region!r}): eu for an account whose data lives in the EU"
        )
    return SendGridSettings(
        asm_group_id=group, categories=tuple(dict.fromkeys(categories)), timeout=float(timeout),
        concurrency=concurrency, region=region,
    )


def _provider(root: Path, config: YamlMapping) -> tuple[str, SmtpSettings | None]:
    """`provider:` and, for SMTP, `smtp:`: each mistake one line naming the key."""
    provider = config.data.get("provider") or "sendgrid"
    if provider not in PROVIDERS:
        raise ConfigError(f"{config.where('provider')}: provider must be one of {', '.join(PROVIDERS)}, "
                          f"not {provider!r}")
    value = config.data.get("smtp")
    if provider != "smtp":
        if value is not None:
            warnings.warn(f"{config.where('smtp')}: smtp is ignored while provider is {provider} "
                          "(add `provider: smtp` to send through it)", ConfigWarning, stacklevel=3)
        return provider, None
    if not isinstance(value, dict) or not value.get("host"):
        raise ConfigError(f"{config.where('smtp' if value is not None else 'provider')}: provider smtp needs an "
                          "`smtp:` mapping with at least `host:` (the mail service's SMTP server)")
    _warn_unknown_keys(config, "smtp", value, SMTP_KEYS)

    def number(key: str, default: float | None, low: float, high: float, whole: bool, what: str) -> Any:
        given = value.get(key, default)
        if given is None:
            return None
        if isinstance(given, bool) or not isinstance(given, (int, float)) or (whole and not isinstance(given, int)) \
                or not math.isfinite(given) or not low <= given <= high:
            raise ConfigError(f"{config.where('smtp')}: smtp.{key} must be {what}, not {given!r}")
        return given

    host = str(value["host"]).strip()
    security = value.get("security", "starttls")
    if security not in SMTP_SECURITIES:
        raise ConfigError(f"{config.where('smtp')}: smtp.security must be one of {', '.join(SMTP_SECURITIES)}, "
                          f"not {security!r}")
    if security == "none" and host.lower() not in LOOPBACK_HOSTS:
        raise ConfigError(f"{config.where('smtp')}: smtp.security none sends the password and every reader's "
                          f"address in clear; it is allowed only to this machine (localhost), not {host}: "
                          "use starttls or tls")
    ca_file = None
    if value.get("ca_file"):
        ca_file = root / str(value["ca_file"])
        if not ca_file.is_file():
            raise ConfigError(f"{config.where('smtp')}: smtp.ca_file {value['ca_file']!r} is not a file "
                              "(a PEM bundle of the CA that signed the server's certificate)")
    username = value.get("username") or ""
    if not isinstance(username, str):
        raise ConfigError(f"{config.where('smtp')}: smtp.username must be text")
    selector = value.get("dkim_selector")
    if selector is not None and (not isinstance(selector, str) or not _DKIM_SELECTOR.fullmatch(selector.strip())
                                 or "._domainkey" in selector.lower()):
        raise ConfigError(f"{config.where('smtp.dkim_selector')}: smtp.dkim_selector must be the DKIM selector your provider gave, "
                          f"the name before ._domainkey (fm1 for fm1._domainkey.example.org), not {selector!r}")
    smtp = SmtpSettings(
        host=host,
        port=number("port", SMTP_DEFAULT_PORTS[security], 1, 65535, True, "a port number (587, 465 or 25)"),
        security=security,
        username=username.strip(),
        connections=number("connections", DEFAULT_SMTP_CONNECTIONS, 1, MAX_CONCURRENCY, True,
                           f"a whole number from 1 to {MAX_CONCURRENCY}"),
        rate=number("rate", None, 0.001, 10_000, False, "messages a second, above 0"),
        daily_limit=number("daily_limit", None, 1, 10_000_000, True, "a whole number of messages a day, 1 or more"),
        ca_file=ca_file,
        timeout=float(number("timeout", DEFAULT_SMTP_TIMEOUT, 1, 3600, False, "a number of seconds from 1 to 3600")),
        dkim_selector=selector.strip() if selector else None,
    )
    return provider, smtp


SMTP_PASSWORD_VARIABLE = "NEWSLETTER_SMTP_PASSWORD"


def smtp_password(smtp: SmtpSettings) -> str:
    """The SMTP password, from the environment only, and only when `smtp.username` asks to log in."""
    if not smtp.username:
        return ""
    password = os.environ.get(SMTP_PASSWORD_VARIABLE, "")
    if not password:
        raise ConfigError(f"{SMTP_PASSWORD_VARIABLE} is not set: export it with the password (or app password) "
                          f"of {smtp.username} at {smtp.host}; it is read from the environment only")
    if "\n" in password or "\r" in password:
        raise ConfigError(f"{SMTP_PASSWORD_VARIABLE} holds a line break: export the password alone")
    return password


API_KEY_VARIABLE = "SENDGRID_API_KEY"


# What the key must be allowed to do, as the messages name it.
SEND_MAIL = "can send mail (Mail Send)"
READ_SUPPRESSIONS = "can read suppressions (Suppressions: read access)"


def sendgrid_api_key(needs: str = SEND_MAIL) -> str:
    """The SendGrid API key, from the environment only: never from a file, never shown.

    `needs` says, in a missing key's message, what the command needs the key for.
    A key is printable ASCII without spaces; anything else (a line break pasted with
    it, a non-ASCII look-alike) is refused here, in words that never repeat the key.
    """
    raw = os.environ.get(API_KEY_VARIABLE)
    if raw is None:
        raise ConfigError(
            f"{API_KEY_VARIABLE} is not set: export it with an API key that {needs} "
            "(SendGrid > Settings > API Keys); it is read from the environment only"
        )
    key = raw.strip()
    if not key:
        raise ConfigError(
            f"{API_KEY_VARIABLE} is empty: export it with an API key that {needs} "
            "(SendGrid > Settings > API Keys)"
        )
    if not all("!" <= char <= "~" for char in key):
        raise ConfigError(
            f"{API_KEY_VARIABLE} holds a character no API key has (a space, line break, control or "
            "non-ASCII character): copy the key again from SendGrid and export it"
        )
    return keep_secret(key)
