"""The categories on every message of an issue, by which SendGrid counts it.

Every send adds the issue's own category (`issue_category`) to the configured ones, so
`GET /v3/categories/stats` (`sendgrid/category_stats.py`) can answer for one issue alone. SendGrid
takes at most 10 categories a message, each ASCII and at most 255 characters. Apart from
the stats, which need the HTTP client, so that building a body loads none.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable

MAX_CATEGORY_CHARS = 255
MAX_CATEGORIES = 10       # per message, and per stats request


def issue_category(issue: str) -> str:
    """The issue's own category: its name (`issue-12`), made ASCII and short enough if need be.

    A name SendGrid would refuse keeps its ASCII letters and gains a short hash of the
    whole name, so two issues never share a category.
    """
    if issue.isascii() and issue.isprintable() and 0 < len(issue) <= MAX_CATEGORY_CHARS:
        return issue
    folded = unicodedata.normalize("NFKD", issue).encode("ascii", "ignore").decode("ascii")
    folded = re.sub(r"[^\x21-\x7e]+", "-", folded).strip("-") or "issue"
    digest = hashlib.sha256(issue.encode("utf-8")).hexdigest()[:8]
    return f"{folded[:MAX_CATEGORY_CHARS - 9]}-{digest}"


def message_categories(configured: Iterable[str], issue: str, proof: bool = False) -> list[str]:
    """The categories of every message of `issue`: the configured ones, then the issue's own.

    A proof's is `<issue>-proof`, so the editors' opens of proofs stay out of the issue's figures.
    """
    own = issue_category(f"{issue}-proof" if proof else issue)
    return list(dict.fromkeys([*configured, own]))[:MAX_CATEGORIES]
