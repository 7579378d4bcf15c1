"""One thing a check found, printed as one line: `check`'s, `doctor`'s and `stats`'s findings alike.

`check` and `stats` find errors and warnings about one issue; `doctor` also says what is
ok, and names the part it checked (`check`: key, spf, dkim...) for `doctor --json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["ok", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    level: Level
    message: str
    check: str = ""  # doctor's: key, scopes, sender, group, placeholder; connection, tls, login for SMTP;
                     # from-domain, spf, dkim, dmarc, reverse-dns, dns for the sending domain's DNS

    def __str__(self) -> str:
        return f"{self.level}: {self.message}"
