"""Everything that speaks SendGrid's API: one client, and the calls each command makes.

`client.py` is the one client (timeout, retry policy, error messages, the key kept
out of every message and log); `suppressions.py`, `account.py` and `stats.py` are
what `subscribers sync`, `doctor` and `stats` ask of it.
"""
