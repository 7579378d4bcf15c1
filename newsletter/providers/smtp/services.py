"""The mail services the README lists for SMTP, known by their host: what their DNS records are.

doctor checks a `from` domain's SPF for the service's include and its DKIM selectors for a
key; a host not listed here is checked for its addresses in SPF, and for DKIM under
`smtp.dkim_selector`. The includes and selectors are the services' published setup
(Fastmail's DKIM help, Google Workspace's SPF page, Amazon SES's custom MAIL FROM, Brevo's
and Mailgun's domain authentication); a mailbox service's own server signs for its own
free-mail domains (smtp.gmail.com for gmail.com).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from newsletter.config import SmtpSettings
from newsletter.deliverability.checks import MailService


@dataclass(frozen=True)
class KnownService:
    name: str
    hosts: re.Pattern[str]
    spf_include: str | None = None
    dkim_selectors: tuple[str, ...] = ()
    dkim_advice: str = ""
    dkim_cname: str | None = None   # the CNAME value, {selector} and {domain} filled in
    signs_for: tuple[str, ...] = ()
    spf_domains: tuple[str, ...] = ()   # its other SPF domains (an older name), as MailService has them


KNOWN_SERVICES = (
    KnownService("Fastmail", re.compile(r"smtp\.fastmail\.com|smtp\.messagingengine\.com"),
                 "spf.messagingengine.com", ("fm1", "fm2", "fm3"), "Fastmail shows under Settings > Domains",
                 "{selector}.{domain}.dkim.fmhosted.com", ("fastmail.com",)),
    KnownService("Google", re.compile(r"smtp(-relay)?\.gmail\.com"), "_spf.google.com", ("google",),
                 "Google Workspace generates under Apps > Gmail > Authenticate email",
                 signs_for=("gmail.com", "googlemail.com")),
    # SES signs with three selectors of random tokens (Easy DKIM): smtp.dkim_selector names one.
    KnownService("Amazon SES", re.compile(r"email-smtp(-fips)?\.[a-z0-9-]+\.amazonaws\.com"), "amazonses.com",
                 (), "SES shows under Verified identities > DKIM"),
    # Brevo was Sendinblue until 2023: domains set up before publish include:spf.sendinblue.com.
    KnownService("Brevo", re.compile(r"smtp-relay\.(brevo|sendinblue)\.com"), "spf.brevo.com",
                 ("brevo1", "brevo2", "mail"), "Brevo shows under Senders, Domains & Dedicated IPs > Domains",
                 spf_domains=("spf.sendinblue.com",)),
    KnownService("Mailgun", re.compile(r"smtp(\.eu)?\.mailgun\.org"), "mailgun.org",
                 ("pdk1", "pdk2", "smtp", "mx", "k1"), "Mailgun shows under Sending > Domains > DNS records"),
    KnownService("Yahoo", re.compile(r"smtp\.mail\.yahoo\.com"), signs_for=("yahoo.com", "ymail.com")),
    KnownService("Outlook", re.compile(r"smtp-mail\.outlook\.com|smtp\.office365\.com"),
                 signs_for=("outlook.com", "hotmail.com", "live.com", "msn.com")),
    KnownService("iCloud", re.compile(r"smtp\.mail\.me\.com"), signs_for=("icloud.com", "me.com", "mac.com")),
    KnownService("AOL", re.compile(r"smtp\.aol\.com"), signs_for=("aol.com",)),
    KnownService("GMX", re.compile(r"mail\.gmx\.(net|com)"), signs_for=("gmx.net", "gmx.de", "gmx.com")),
    KnownService("WEB.DE", re.compile(r"smtp\.web\.de"), signs_for=("web.de",)),
)


def smtp_service(smtp: SmtpSettings) -> MailService:
    """The SMTP host as doctor's DNS checks see it: a listed service by its host, or the host itself."""
    host = smtp.host.lower().rstrip(".")
    known = next((service for service in KNOWN_SERVICES if service.hosts.fullmatch(host)), None)
    if known is None:
        return MailService(name=smtp.host, dkim_selectors=(smtp.dkim_selector,) if smtp.dkim_selector else (),
                           dkim_advice="your provider gives", smtp_host=smtp.host)
    template = known.dkim_cname
    return MailService(
        name=known.name, spf_include=known.spf_include, spf_domains=known.spf_domains,
        dkim_selectors=(smtp.dkim_selector,) if smtp.dkim_selector else known.dkim_selectors,
        dkim_advice=known.dkim_advice,
        dkim_cname=(lambda selector, domain: template.format(selector=selector, domain=domain)) if template else None,
        signs_for=known.signs_for, smtp_host=smtp.host,
    )
