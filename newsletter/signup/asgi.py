"""The sign-up app for any ASGI server: `uvicorn newsletter.signup.asgi:app` behind a TLS proxy.

The publication is NEWSLETTER_PUBLICATION (or the current folder); the records are
NEWSLETTER_SIGNUP_DB (or `signup.sqlite` in the publication). A setting that stops the
server (no secret, no `signup:`) ends the process with one `error:` line, as the CLI would.
"""

from newsletter.errors import NewsletterError
from newsletter.signup.serve import app_from_environment

try:
    app = app_from_environment()
except NewsletterError as exc:
    raise SystemExit(f"error: {exc}") from None
