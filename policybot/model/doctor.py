"""What ``policybot doctor`` found: one record per thing checked (the configuration, each
tree, SMTP, patchwork, the state database, the templates)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CheckStatus(StrEnum):
    OK = "ok"
    PROBLEM = "problem"  # the operator must fix something: the detail says what
    SKIPPED = "skipped"  # could not be checked because an earlier check failed


@dataclass(frozen=True)
class CheckResult:
    check: str  # what was checked: "config", "tree bpf-next", "smtp", "state", "templates", ...
    status: CheckStatus
    detail: str  # one line: what was found; for a problem, what is wrong and what to fix
