"""The audit use case: a tree's findings at a revision (against a base, or its current state)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..model.findings import AuditResult
    from .context import Context


def audit(ctx: Context, rev: str, base: str | None) -> AuditResult:
    return ctx.auditor.audit(rev, base)
