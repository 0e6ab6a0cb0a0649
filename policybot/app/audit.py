"""The audit use case: a tree's findings at a revision (against a base, or its current state)."""

from __future__ import annotations

import datetime as dt

from ..kernel.scanner import Scanner
from ..policy.audit import AuditResult, Auditor
from ..policy.config import Policy


def audit(scan: Scanner, policy: Policy, rev: str, base: str | None, today: dt.date | None) -> AuditResult:
    return Auditor(scan.repo, scan, policy, today).audit(rev, base)
