"""The sign-up server's phrases, in each built-in language (the publication's `strings:` override them).

Kept beside the server rather than in strings.py's table: only the server's pages and
emails use them, and they are merged under the publication's overrides the same way.
The two the web edition's form shares (`email_label`, `subscribe_button`) are in strings.py.
"""

from __future__ import annotations

from newsletter.config import Settings
from newsletter.strings import Strings, base_language

SIGNUP_PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "signup_intro": "Every issue by email. We will send you a link to confirm: nothing happens until you click it.",
        "first_name_label": "First name (optional)",
        "check_inbox_title": "Check your inbox",
        "check_inbox": "If the address can join, an email with a link to confirm is on its way; it may take a "
                       "few minutes to arrive. Nothing happens until you click it.",
        "confirm_title": "Confirm your subscription",
        "confirm_button": "Confirm my subscription",
        "subscribed_title": "You're subscribed",
        "subscribed": "Welcome to {publication}. The next issue will reach you by email.",
        "unsubscribe_title": "Unsubscribe from {publication}",
        "unsubscribe_question": "Stop sending {publication} to {email}?",
        "unsubscribe_button": "Unsubscribe",
        "unsubscribed_title": "You're unsubscribed",
        "unsubscribed": "{email} will receive no more issues of {publication}.",
        "bad_link_title": "This link does not work",
        "bad_link": "It is incomplete or was changed. Copy the whole link from the email, or subscribe again.",
        "expired_link": "It has expired: a confirmation link works for 7 days. Subscribe again to get a new one.",
        "bad_address_title": "That address cannot join",
        "bad_address": "Check the address and try again.",
        "too_many_title": "Too many sign-ups",
        "too_many": "Too many sign-ups came from your network in the last hour. Please try again later.",
        "confirm_subject": "Confirm your subscription to {publication}",
        "confirm_email": "Someone, we hope you, asked to subscribe this address to {publication}. "
                         "To confirm, open this link:",
        "confirm_ignore": "If it was not you, ignore this email: you will not be subscribed, and you will not "
                          "hear from us again.",
        "already_subject": "You're already subscribed to {publication}",
        "already_email": "Someone, we hope you, asked to subscribe this address to {publication}. It is subscribed "
                         "already: there is nothing to do. If the issues stopped reaching you (look in your spam "
                         "folder first), subscribe again with this link:",
        "already_ignore": "If it was not you, ignore this email: nothing changes.",
        "welcome_subject": "Welcome to {publication}",
        "welcome": "Thank you for subscribing. The next issue will reach you by email.",
    },
    "fr": {
        "signup_intro": "Chaque numéro par e-mail. Nous vous enverrons un lien de confirmation : rien ne se passe "
                        "avant que vous ne cliquiez dessus.",
        "first_name_label": "Prénom (facultatif)",
        "check_inbox_title": "Consultez votre boîte de réception",
        "check_inbox": "Si l’adresse peut s’abonner, un e-mail avec un lien de confirmation est en route ; il peut "
                       "mettre quelques minutes à arriver. Rien ne se passe avant que vous ne cliquiez dessus.",
        "confirm_title": "Confirmez votre abonnement",
        "confirm_button": "Confirmer mon abonnement",
        "subscribed_title": "Vous êtes abonné·e",
        "subscribed": "Bienvenue à {publication}. Le prochain numéro vous arrivera par e-mail.",
        "unsubscribe_title": "Se désabonner de {publication}",
        "unsubscribe_question": "Ne plus envoyer {publication} à {email} ?",
        "unsubscribe_button": "Me désabonner",
        "unsubscribed_title": "Vous êtes désabonné·e",
        "unsubscribed": "{email} ne recevra plus aucun numéro de {publication}.",
        "bad_link_title": "Ce lien ne fonctionne pas",
        "bad_link": "Il est incomplet ou a été modifié. Copiez le lien entier depuis l’e-mail, ou abonnez-vous "
                    "de nouveau.",
        "expired_link": "Il a expiré : un lien de confirmation vaut 7 jours. Abonnez-vous de nouveau pour en "
                        "recevoir un autre.",
        "bad_address_title": "Cette adresse ne peut pas s’abonner",
        "bad_address": "Vérifiez l’adresse et réessayez.",
        "too_many_title": "Trop d’inscriptions",
        "too_many": "Trop d’inscriptions sont venues de votre réseau dans l’heure. Réessayez plus tard.",
        "confirm_subject": "Confirmez votre abonnement à {publication}",
        "confirm_email": "Quelqu’un, vous sans doute, a demandé à abonner cette adresse à {publication}. "
                         "Pour confirmer, ouvrez ce lien :",
        "confirm_ignore": "Si ce n’était pas vous, ignorez cet e-mail : vous ne serez pas abonné·e et nous ne "
                          "vous écrirons plus.",
        "already_subject": "Vous êtes déjà abonné·e à {publication}",
        "already_email": "Quelqu’un, vous sans doute, a demandé à abonner cette adresse à {publication}. Elle est "
                         "déjà abonnée : il n’y a rien à faire. Si les numéros ne vous arrivent plus (regardez "
                         "d’abord dans vos indésirables), abonnez-vous de nouveau avec ce lien :",
        "already_ignore": "Si ce n’était pas vous, ignorez cet e-mail : rien ne change.",
        "welcome_subject": "Bienvenue à {publication}",
        "welcome": "Merci de votre abonnement. Le prochain numéro vous arrivera par e-mail.",
    },
    "de": {
        "signup_intro": "Jede Ausgabe per E-Mail. Wir schicken Ihnen einen Link zur Bestätigung: Erst wenn Sie "
                        "ihn anklicken, geschieht etwas.",
        "first_name_label": "Vorname (freiwillig)",
        "check_inbox_title": "Sehen Sie in Ihr Postfach",
        "check_inbox": "Wenn die Adresse abonnieren kann, ist eine E-Mail mit einem Bestätigungslink unterwegs; "
                       "das kann einige Minuten dauern. Erst wenn Sie ihn anklicken, geschieht etwas.",
        "confirm_title": "Bestätigen Sie Ihr Abonnement",
        "confirm_button": "Abonnement bestätigen",
        "subscribed_title": "Sie haben abonniert",
        "subscribed": "Willkommen bei {publication}. Die nächste Ausgabe erreicht Sie per E-Mail.",
        "unsubscribe_title": "{publication} abbestellen",
        "unsubscribe_question": "{publication} nicht mehr an {email} senden?",
        "unsubscribe_button": "Abbestellen",
        "unsubscribed_title": "Sie haben abbestellt",
        "unsubscribed": "{email} erhält keine Ausgabe von {publication} mehr.",
        "bad_link_title": "Dieser Link funktioniert nicht",
        "bad_link": "Er ist unvollständig oder wurde verändert. Kopieren Sie den ganzen Link aus der E-Mail, "
                    "oder abonnieren Sie erneut.",
        "expired_link": "Er ist abgelaufen: Ein Bestätigungslink gilt 7 Tage. Abonnieren Sie erneut, um einen "
                        "neuen zu erhalten.",
        "bad_address_title": "Diese Adresse kann nicht abonnieren",
        "bad_address": "Prüfen Sie die Adresse und versuchen Sie es erneut.",
        "too_many_title": "Zu viele Anmeldungen",
        "too_many": "Aus Ihrem Netz kamen in der letzten Stunde zu viele Anmeldungen. Bitte versuchen Sie es "
                    "später erneut.",
        "confirm_subject": "Bestätigen Sie Ihr Abonnement von {publication}",
        "confirm_email": "Jemand, hoffentlich Sie, möchte diese Adresse für {publication} anmelden. "
                         "Zur Bestätigung öffnen Sie diesen Link:",
        "confirm_ignore": "Waren Sie es nicht, ignorieren Sie diese E-Mail: Sie werden nicht angemeldet und hören "
                          "nichts mehr von uns.",
        "already_subject": "Sie haben {publication} bereits abonniert",
        "already_email": "Jemand, hoffentlich Sie, möchte diese Adresse für {publication} anmelden. Sie ist bereits "
                         "angemeldet: Es ist nichts zu tun. Wenn die Ausgaben Sie nicht mehr erreichen (sehen Sie "
                         "zuerst im Spam-Ordner nach), melden Sie sich mit diesem Link erneut an:",
        "already_ignore": "Waren Sie es nicht, ignorieren Sie diese E-Mail: Es ändert sich nichts.",
        "welcome_subject": "Willkommen bei {publication}",
        "welcome": "Danke für Ihr Abonnement. Die nächste Ausgabe erreicht Sie per E-Mail.",
    },
    "es": {
        "signup_intro": "Cada número por correo. Te enviaremos un enlace para confirmar: no pasa nada hasta que "
                        "lo abras.",
        "first_name_label": "Nombre (opcional)",
        "check_inbox_title": "Revisa tu bandeja de entrada",
        "check_inbox": "Si la dirección puede suscribirse, va de camino un correo con un enlace para confirmar; "
                       "puede tardar unos minutos. No pasa nada hasta que lo abras.",
        "confirm_title": "Confirma tu suscripción",
        "confirm_button": "Confirmar mi suscripción",
        "subscribed_title": "Ya estás suscrito",
        "subscribed": "Bienvenido a {publication}. El próximo número te llegará por correo.",
        "unsubscribe_title": "Darse de baja de {publication}",
        "unsubscribe_question": "¿Dejar de enviar {publication} a {email}?",
        "unsubscribe_button": "Darme de baja",
        "unsubscribed_title": "Te has dado de baja",
        "unsubscribed": "{email} no recibirá más números de {publication}.",
        "bad_link_title": "Este enlace no funciona",
        "bad_link": "Está incompleto o se ha modificado. Copia el enlace entero del correo, o suscríbete de nuevo.",
        "expired_link": "Ha caducado: un enlace de confirmación vale 7 días. Suscríbete de nuevo para recibir otro.",
        "bad_address_title": "Esa dirección no puede suscribirse",
        "bad_address": "Revisa la dirección y vuelve a intentarlo.",
        "too_many_title": "Demasiadas suscripciones",
        "too_many": "Llegaron demasiadas suscripciones desde tu red en la última hora. Inténtalo más tarde.",
        "confirm_subject": "Confirma tu suscripción a {publication}",
        "confirm_email": "Alguien, esperamos que tú, pidió suscribir esta dirección a {publication}. "
                         "Para confirmar, abre este enlace:",
        "confirm_ignore": "Si no fuiste tú, ignora este correo: no quedarás suscrito y no volverás a saber de "
                          "nosotros.",
        "already_subject": "Ya estás suscrito a {publication}",
        "already_email": "Alguien, esperamos que tú, pidió suscribir esta dirección a {publication}. Ya está "
                         "suscrita: no hay nada que hacer. Si los números han dejado de llegarte (mira primero en la "
                         "carpeta de spam), vuelve a suscribirte con este enlace:",
        "already_ignore": "Si no fuiste tú, ignora este correo: no cambia nada.",
        "welcome_subject": "Bienvenido a {publication}",
        "welcome": "Gracias por suscribirte. El próximo número te llegará por correo.",
    },
}


def signup_phrases(settings: Settings, markup: bool) -> Strings:
    """The publication's phrases with the server's added, its `strings:` overrides winning."""
    own = SIGNUP_PHRASES.get(base_language(settings.language), {})
    return Strings(settings.language, {**own, **dict(settings.string_overrides)}, markup=markup)


def missing_signup_phrases(settings: Settings) -> list[str]:
    """The server's phrases a language that is not built in lacks under `strings:` (none for a built-in one)."""
    if base_language(settings.language) in SIGNUP_PHRASES:
        return []
    return sorted(set(SIGNUP_PHRASES["en"]) - {key for key, _ in settings.string_overrides})
