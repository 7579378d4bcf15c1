"""Every fixed phrase of the default templates, in each built-in language, and dates in it.

One table: a template asks for a phrase by its key (`{{ t("in_this_issue") }}`), and
the publication's `language` picks the column. `strings:` in newsletter.yaml
overrides a phrase, or adds one for a publication's own templates. `{name}` in a
phrase is filled from what the template passes (`t("by", author=article.author)`).

The greeting is "{hello} {name}," with the subscriber's first name, or, where it is
empty, the phrase `friend`: not the word "friend" in each language but what completes
the greeting without a name ("Bonjour à vous,", "Hallo zusammen,", "Hola a todos:"),
since the email is rendered once and only the name is filled per recipient. `label`
puts a colon after a label as the language writes it: French sets a (no-break) space
before it ("Dans ce numéro :").

Dates are written by Babel from the Unicode CLDR data, so "10 mars 2023" needs no
table of month names here. A language may carry a region (`en-GB`, `de-CH`): the
phrases come from the language, the date's form from the region.

A language not built in (Arabic, Hebrew, Dutch…) is allowed when `strings:` gives
every phrase; its dates and its direction (right to left for Arabic, Hebrew, Persian,
Urdu, Yiddish…) still come from Babel.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

from markupsafe import Markup, escape

DEFAULT_LANGUAGE = "en"

BUILT_IN: dict[str, dict[str, str]] = {
    "en": {
        "hello": "Hello",
        "friend": "friend",
        "greeting": "{hello} {name},",
        "label": "{text}:",
        "in_this_issue": "In this issue",
        "by": "by {author}",
        "read_on_web": "Read on the web",
        "read_issue_on_web": "Read this issue on the web",
        "unsubscribe": "Unsubscribe",
        "reply": "Something to say about this issue? Reply to this email: we read every answer.",
        "why_you_get_it": "You receive {publication} because you subscribed to it.",
        "subscribe": "Subscribe to {publication}",
        "subscribe_why": "to get every issue by email.",
        "email_label": "Your email address",
        "subscribe_button": "Subscribe",
        "all_issues": "All issues",
        "feed": "Atom feed",
        "archive_title": "{publication}: every issue",
        "archive_description": "Every issue of {publication}, newest first.",
        "archive_dateline": "Every issue, newest first",
        "no_issue_yet": "No issue is published yet.",
    },
    "fr": {
        "hello": "Bonjour",
        "friend": "à vous",
        "greeting": "{hello} {name},",
        "label": "{text}\u00a0:",
        "in_this_issue": "Dans ce numéro",
        "by": "par {author}",
        "read_on_web": "Lire sur le web",
        "read_issue_on_web": "Lire ce numéro sur le web",
        "unsubscribe": "Se désabonner",
        "reply": "Une réaction à ce numéro ? Répondez à cet e-mail : nous lisons toutes les réponses.",
        "why_you_get_it": "Vous recevez {publication} parce que vous vous y êtes abonné·e.",
        "subscribe": "Abonnez-vous à {publication}",
        "subscribe_why": "pour recevoir chaque numéro par e-mail.",
        "email_label": "Votre adresse e-mail",
        "subscribe_button": "M’abonner",
        "all_issues": "Tous les numéros",
        "feed": "Flux Atom",
        "archive_title": "{publication} : tous les numéros",
        "archive_description": "Tous les numéros de {publication}, du plus récent au plus ancien.",
        "archive_dateline": "Tous les numéros, du plus récent au plus ancien",
        "no_issue_yet": "Aucun numéro n’est encore publié.",
    },
    "de": {
        "hello": "Hallo",
        "friend": "zusammen",
        "greeting": "{hello} {name},",
        "label": "{text}:",
        "in_this_issue": "In dieser Ausgabe",
        "by": "von {author}",
        "read_on_web": "Im Web lesen",
        "read_issue_on_web": "Diese Ausgabe im Web lesen",
        "unsubscribe": "Abbestellen",
        "reply": "Etwas zu dieser Ausgabe zu sagen? Antworten Sie auf diese E-Mail: Wir lesen jede Antwort.",
        "why_you_get_it": "Sie erhalten {publication}, weil Sie es abonniert haben.",
        "subscribe": "Abonnieren Sie {publication},",
        "subscribe_why": "um jede Ausgabe per E-Mail zu erhalten.",
        "email_label": "Ihre E-Mail-Adresse",
        "subscribe_button": "Abonnieren",
        "all_issues": "Alle Ausgaben",
        "feed": "Atom-Feed",
        "archive_title": "{publication}: alle Ausgaben",
        "archive_description": "Alle Ausgaben von {publication}, die neueste zuerst.",
        "archive_dateline": "Alle Ausgaben, die neueste zuerst",
        "no_issue_yet": "Noch ist keine Ausgabe erschienen.",
    },
    "es": {
        "hello": "Hola",
        "friend": "a todos",
        "greeting": "{hello} {name}:",
        "label": "{text}:",
        "in_this_issue": "En este número",
        "by": "por {author}",
        "read_on_web": "Leer en la web",
        "read_issue_on_web": "Leer este número en la web",
        "unsubscribe": "Darse de baja",
        "reply": "¿Algo que decir sobre este número? Responde a este correo: leemos todas las respuestas.",
        "why_you_get_it": "Recibes {publication} porque te suscribiste.",
        "subscribe": "Suscríbete a {publication}",
        "subscribe_why": "para recibir cada número por correo.",
        "email_label": "Tu dirección de correo",
        "subscribe_button": "Suscribirme",
        "all_issues": "Todos los números",
        "feed": "Canal Atom",
        "archive_title": "{publication}: todos los números",
        "archive_description": "Todos los números de {publication}, del más reciente al más antiguo.",
        "archive_dateline": "Todos los números, del más reciente al más antiguo",
        "no_issue_yet": "Todavía no se ha publicado ningún número.",
    },
}

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class UnknownLanguage(ValueError):
    """A `language` Babel does not know."""


class MissingPhrase(LookupError):
    """A template asks for a phrase the table does not have."""


def built_in_languages() -> list[str]:
    return sorted(BUILT_IN)


def base_language(language: str) -> str:
    """`en` of `en-GB` or `en_GB`, lower case: the column of the table."""
    return re.split(r"[-_]", language, maxsplit=1)[0].lower()


def is_built_in(language: str) -> bool:
    """Whether the table has a column for `language` (a language not built in needs every phrase in `strings:`)."""
    return base_language(language) in BUILT_IN


def babel_locale(language: str) -> str:
    """`en_GB` of `en-GB`: the name of the locale in Babel's data. Raises `UnknownLanguage`.

    Looked up in the data's index, not parsed (Babel's `Locale.parse` loads the locale's
    data, a cost every command would pay at start for reading `newsletter.yaml`).
    """
    from babel import localedata

    parts = re.split(r"[-_]", language)
    name = "_".join([parts[0].lower(), *(p.title() if len(p) == 4 else p.upper() for p in parts[1:])])
    if not all(parts) or not localedata.exists(name):
        raise UnknownLanguage(language)
    return name


@cache
def text_direction(language: str) -> str:
    """`rtl` for a language written right to left (Arabic, Hebrew, Persian, Urdu, Yiddish…), else `ltr`.

    From Babel's CLDR data, which knows every script's direction (a list here would miss
    some); read when a template is rendered, not when newsletter.yaml is.
    """
    from babel import Locale

    return "rtl" if Locale.parse(babel_locale(language)).text_direction == "rtl" else "ltr"


@dataclass(frozen=True)
class Strings:
    """The phrases of one language with the publication's overrides, callable from templates.

    With `markup` (the HTML templates) a phrase and the values put into it are escaped
    here and the result is marked safe, so that a merge tag passed as a value (the
    greeting's name) goes in as the tag it is, escaped once.
    """

    language: str = DEFAULT_LANGUAGE
    overrides: Mapping[str, str] = field(default_factory=dict)
    markup: bool = False

    @property
    def phrases(self) -> dict[str, str]:
        # A language not built in has every phrase in the overrides (`config` sees to it).
        return {**BUILT_IN.get(base_language(self.language), {}), **self.overrides}

    def __call__(self, key: str, **values: object) -> str:
        phrases = self.phrases
        if key not in phrases:
            raise MissingPhrase(
                f"no phrase {key!r} in the strings table: add it under `strings:` in newsletter.yaml "
                f"(phrases: {', '.join(sorted(phrases))})"
            )
        if self.markup:
            return Markup(fill(str(escape(phrases[key])), {k: escape(v) for k, v in values.items()}))
        return fill(phrases[key], values)

    def date(self, day: dt.date) -> str:
        """`day` written out in the language ("2 December 2026", "2 décembre 2026")."""
        from babel.dates import format_date

        return format_date(day, format="long", locale=babel_locale(self.language))


def fill(phrase: str, values: Mapping[str, object]) -> str:
    """`phrase` with each `{name}` given in `values` replaced; any other `{…}` is kept as written."""
    return _PLACEHOLDER.sub(lambda m: str(values[m[1]]) if m[1] in values else m[0], phrase)
