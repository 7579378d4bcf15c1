"""Sending an issue: recipients → batches → a provider, recorded in a ledger.

`send.py` holds the core (`prepare_send`, `SendPlan.run`); `provider.py` is the seam to
a mail service (a message builder and a transport: SendGrid in `newsletter/providers/sendgrid/`,
SMTP in `newsletter/providers/smtp/`, chosen by `newsletter.providers.provider_for`), and
`dryrun.py` the transport that writes files instead; `ledger.py` makes a send resumable,
keeps anyone from getting an issue twice, and answers `status`, `stats`, `cancel` and
`add` without the send core; `pacing.py` keeps a send inside a provider's quotas. No
provider's wire format is built here.
"""
