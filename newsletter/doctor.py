"""`newsletter doctor`'s report: one finding a line, whichever provider it checked.

Each provider checks its own account or server (`providers/sendgrid/account.py`, `providers/smtp/doctor.py`);
the report and its levels are shared, so the CLI prints and `--json` writes them alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Level = Literal["ok", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    level: Level
    check: str       # key, scopes, sender, group, placeholder; connection, tls, login for SMTP;
                     # from-domain, spf, dkim, dmarc, reverse-dns, dns for the sending domain's DNS
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.message}"


@dataclass
class DoctorReport:
    findings: list[Finding] = field(default_factory=list)
    created_group: int | None = None

    @property
    def ok(self) -> bool:
        return not any(f.level == "error" for f in self.findings)

    def add(self, level: Level, check: str, message: str) -> None:
        self.findings.append(Finding(level, check, message))

    def lines(self) -> list[str]:
        return [str(f) for f in self.findings]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "created_group": self.created_group,
                "findings": [asdict(f) for f in self.findings]}
