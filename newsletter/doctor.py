"""`newsletter doctor`'s report: one finding a line, whichever provider it checked.

Each provider checks its own account or server (`providers/sendgrid/account.py`, `providers/smtp/doctor.py`);
the report is shared, and its findings are the ones `check` and `stats` give (`findings.py`), so the CLI prints and `--json` writes them alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from newsletter.findings import Finding, Level


@dataclass
class DoctorReport:
    findings: list[Finding] = field(default_factory=list)
    created_group: int | None = None

    @property
    def ok(self) -> bool:
        return not any(f.level == "error" for f in self.findings)

    def add(self, level: Level, check: str, message: str) -> None:
        self.findings.append(Finding(level, message, check))

    def lines(self) -> list[str]:
        return [str(f) for f in self.findings]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "created_group": self.created_group,
                "findings": [{"level": f.level, "check": f.check, "message": f.message} for f in self.findings]}
