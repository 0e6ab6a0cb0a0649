"""The words every layer shares: declared levels, promise states, verdicts, run statuses.

StrEnums, so that a member is its text (in JSON, SQL, templates and rules.toml alike).
"""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    """What a declaration says about a kfunc."""
    UNSTABLE = "unstable"
    STABLE = "stable"
    DEPRECATING = "deprecating"
    DEPRECATED = "deprecated"


class PromiseState(StrEnum):
    """A declared level judged on a date: the columns of rules.toml's verdict tables."""
    UNSTABLE = "unstable"
    STABLE = "stable"
    EXPIRED = "expired"  # stable, and the window is over
    DEPRECATING = "deprecating"
    DEPRECATED = "deprecated"
    DEPRECATED_DUE = "deprecated_due"  # deprecated, and the earliest removal has passed


class Verdict(StrEnum):
    """What a finding means, in ascending severity; NONE: the rule says nothing at that level."""
    NONE = "none"
    INFO = "info"
    NOTICE = "notice"
    WARNING = "warning"
    VIOLATION = "violation"


class RunStatus(StrEnum):
    """How one tree's part of a weekly run ended."""
    OK = "ok"
    FETCH_FAILED = "fetch-failed"
    UNCHANGED = "unchanged"
    BASELINE = "baseline"
    ERROR = "error"


LEVELS = tuple(Level)
LEVEL_KEYS = tuple(PromiseState)
VERDICTS = tuple(v for v in Verdict if v is not Verdict.NONE)  # ascending severity
