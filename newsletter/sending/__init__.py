"""Sending an issue: recipients → batches → a provider, recorded in a ledger.

`plan.py` settles a send before anything is posted (`prepare_send`, `SendPlan`: options,
recipients, pre-send checks and warnings), `run.py` posts it (`run_send`: the loop,
concurrency, stop signals, the ledger records), `report.py` says what came of it
(`SendReport.lines()`); `provider.py` is the seam to
a mail service (a message builder and a transport: SendGrid in `newsletter/providers/sendgrid/`,
SMTP in `newsletter/providers/smtp/`, chosen by `newsletter.providers.provider_for`), and
`dryrun.py` the transport that writes files instead; `ledger.py` makes a send resumable,
keeps anyone from getting an issue twice, and answers `status`, `stats`, `cancel` and
`add` without the send core; `pacing.py` keeps a send inside a provider's quotas. No
provider's wire format is built here.
"""
