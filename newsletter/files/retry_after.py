"""An HTTP `Retry-After` header (RFC 9110, 10.2.3) in seconds: for SendGrid's 429s and the link check's."""

from __future__ import annotations

import math
import time
from email.utils import parsedate_to_datetime


def retry_after_seconds(value: str | None) -> float | None:
    """`120` or an HTTP date as seconds from now (never below 0); None when absent or unreadable.

    A value that is not a finite number is ignored rather than trusted: `nan` once made
    every wait zero, and `²` is a digit to `str.isdigit()` but not to `float()`.
    """
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except (ValueError, OverflowError):
        try:
            seconds = parsedate_to_datetime(text).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None
