"""Sending an issue: recipients → request bodies → a transport, recorded in a ledger.

`send.py` holds the core (`prepare_send`, `SendPlan.run`); `requests.py` builds
the bodies; `transport.py` is the one seam for side effects, with `sendgrid.py`
(HTTP) and `dryrun.py` (files) behind it; `ledger.py` makes a send resumable and
keeps anyone from getting an issue twice.
"""
