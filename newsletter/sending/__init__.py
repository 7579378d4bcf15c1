"""Sending an issue: recipients → request bodies → a transport, recorded in a ledger.

`send.py` holds the core (`prepare_send`, `SendPlan.run`); `transport.py` is the
one seam for side effects, with SendGrid's transport (`newsletter/sendgrid/
transport.py`, HTTP) and `dryrun.py` (files) behind it; `ledger.py` makes a send
resumable and keeps anyone from getting an issue twice. The request bodies, the
retry policy and everything else in SendGrid's wire format live in
`newsletter/sendgrid/`: no SendGrid JSON is built here.
"""
