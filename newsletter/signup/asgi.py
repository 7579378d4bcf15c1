"""The sign-up app for any ASGI server: `uvicorn newsletter.signup.asgi:app` behind a TLS proxy.

The publication is NEWSLETTER_PUBLICATION (or the current folder); the records are
NEWSLETTER_SIGNUP_DB (or `signup.sqlite` in the publication).
"""

from newsletter.signup.serve import app_from_environment

app = app_from_environment()
