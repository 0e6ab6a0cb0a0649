"""The words every layer shares: declared levels, promise states, verdicts, rule families, run statuses.

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


class RuleFamily(StrEnum):
    """What kind of change a rule of rules.toml is about (`policybot rules` groups by it)."""
    REMOVAL = "removal"  # the kfunc, or its name, is gone
    SIGNATURE = "signature"  # parameters, return type, argument annotations
    FLAGS = "flags"  # the KF_* flags of one kfunc
    SEMANTICS = "semantics"  # what the tree's verifier makes of flags, suffixes and types
    REGISTRATION = "registration"  # the program types it is registered for, and how (filters)
    BUILD = "build"  # the Kconfig options it needs
    LOCATION = "location"  # the files that define or register it
    LIFECYCLE = "lifecycle"  # declared levels moving, promises ending
    DECLARATION = "declaration"  # the declarations themselves
    OBJECT = "object"  # `policybot check`: a compiled BPF object against a kernel


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
