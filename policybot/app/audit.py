"""The audit use case: a tree's findings at a revision (against a base, or its current state)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from ..kernel.scanner import Scanner
from ..policy.audit import AuditResult, Auditor
from ..policy.config import Policy
from ..policy.rules import severity


def audit(scan: Scanner, policy: Policy, rev: str, base: str | None, today: dt.date | None) -> AuditResult:
    return Auditor(scan.repo, scan, policy, today).audit(rev, base)


def fails(verdicts: Iterable[str | None], fail_on: str) -> bool:
    """Whether a verdict reaches ``fail_on`` (the exit status 1 of audit, review and check)."""
    if fail_on == "never":
        return False
    return max((severity(v) for v in verdicts if v is not None), default=-1) >= severity(fail_on)
