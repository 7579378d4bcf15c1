"""Everything that speaks SendGrid's API: the one place its wire format is written and read.

- `client.py`: the one client of every call but mail send (timeout, retry policy, error
  messages, the key kept out of every message and log);
- `retry.py`: the retry policy (429, 5xx, backoff) shared by mail send and the client;
- `mail.py`: mail-send bodies (content serialized once, personalizations spliced in);
- `transport.py`: mail send over kept-alive connections (the hot path), implementing
  `newsletter/sending/transport.py`'s protocol without importing the rest of sending/;
- `suppressions.py`, `account.py`, `schedule.py`, `category_stats.py`: what `subscribers sync`,
  `doctor`, `send --at`/`cancel` and `stats` ask of the client.
"""
