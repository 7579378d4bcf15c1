"""`newsletter doctor` with provider: smtp: the server checked as a send will use it, nothing sent.

It connects, secures the connection (STARTTLS or TLS, the certificate verified against the
system's CAs and `smtp.ca_file`), logs in, and asks `MAIL FROM` for the sender, then `RSET`:
what a real send would meet first, without a message. Then what a send through SMTP needs of
newsletter.yaml: a way to unsubscribe of the publication's own; the `from` domain's DNS for the
service behind the host (`services.py`) and the host's reverse DNS; and no placeholders.
"""

from __future__ import annotations

from newsletter.config import Settings, smtp_password
from newsletter.errors import ConfigError
from newsletter.deliverability.checks import check_sending_domain
from newsletter.doctor import DoctorReport
from newsletter.placeholders import placeholders
from newsletter.providers.smtp.connection import (
    Deferred, NotConnected, QuotaReached, Reconnect, SenderRefused, SmtpConnection, SmtpSetupError,
)
from newsletter.providers.smtp.services import smtp_service


def check_smtp(settings: Settings, dns_deadline: float | None = None) -> DoctorReport:
    """One finding a line: connection and TLS, login, the sender, the settings a send needs, the DNS
    (within `dns_deadline` seconds; None: the checks' own)."""
    smtp = settings.smtp
    assert smtp is not None
    report = DoctorReport()
    where = f"{smtp.host}:{smtp.port}"
    try:
        password = smtp_password(smtp)
    except ConfigError as exc:
        report.add("error", "password", str(exc))
        password = None
    if password is not None:
        connection = SmtpConnection(smtp, password)
        try:
            connection.open()
            tls = connection.describe_tls()
            report.add("ok" if tls else "warning", "tls",
                       f"{where} answers, over {tls} with a certificate valid for {smtp.host}" if tls
                       else f"{where} answers without TLS (security: none): only for a server on this machine")
            if smtp.username:
                report.add("ok", "login", f"logged in as {smtp.username}")
            answer = connection.probe_sender(settings.sender.email)
            report.add("ok", "sender", f"the server takes mail from {settings.sender.email} ({answer}); "
                       "nothing was sent")
        except SenderRefused as exc:
            report.add("error", "sender", str(exc))
        except SmtpSetupError as exc:
            report.add("error", "connection", str(exc))
        except NotConnected as exc:
            report.add("warning", "connection", f"{exc}: the server is busy; try again later")
        except (Deferred, QuotaReached, Reconnect) as exc:
            report.add("warning", "sender", f"{where} answered MAIL FROM with {exc}: try again later")
        finally:
            connection.close()
    if settings.signup is None and not settings.unsubscribe_url:
        report.add("error", "unsubscribe", "an SMTP send has no SendGrid unsubscribe page: set unsubscribe_url "
                   "(with {email}) or signup: (newsletter serve) in newsletter.yaml")
    limits = [f"{smtp.rate:g} a second" if smtp.rate else "", f"{smtp.daily_limit:,} a day" if smtp.daily_limit else ""]
    shown = " and ".join(limit for limit in limits if limit)
    report.add("ok" if shown else "warning", "limits", f"sends pace themselves at {shown}" if shown else
               "no smtp.rate or smtp.daily_limit: set your provider's limits (Gmail 500 a day, SES 14 a second…) "
               "so a send stays inside them")
    check_sending_domain(settings, smtp_service(smtp), report, deadline=dns_deadline)
    for placeholder in placeholders(settings):
        report.add("error", "placeholder", f"{placeholder}; a real send is refused until then")
    return report
