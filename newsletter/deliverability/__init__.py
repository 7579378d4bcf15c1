"""Whether mail from the publication's `from` domain will be trusted: its DNS, checked by `doctor`.

`lookup.py` is the one seam through which the DNS is asked; `records.py` reads SPF, DKIM and
DMARC records; `checks.py` turns them into doctor's findings, each saying what to publish.
"""
