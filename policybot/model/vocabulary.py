"""The words every layer shares: declared levels, declaration sources, promise states, verdicts,
rule families, run statuses.

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


class Source(StrEnum):
    """Where a declaration was made, in precedence order (the first wins)."""
    MANIFEST = "manifest"  # the tree's kfunc manifest (YAML)
    KERNEL_DOC = "kernel-doc"  # a Stability: or Deprecated: line in the kfunc's kernel-doc
    KF_FLAG = "kf-flag"  # KF_DEPRECATED in the kfunc's set entry
    OVERLAY = "overlay"  # the operator's overlay file


class AckKind(StrEnum):
    """Why a break is accepted."""
    ALLOWLIST = "allowlist"  # an entry of the operator's policy
    TAG = "tag"  # a maintainer's Kfunc-Break-Acked-by tag


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
    LEDGER = "ledger"  # the tree's own dated promises: "will be removed in v6.22"


class ExternStatus(StrEnum):
    """What a BPF object's kfunc extern resolves to on a target kernel, as libbpf decides."""
    OK = "ok"
    MISSING = "missing"  # no kfunc of that essential name
    INCOMPATIBLE = "incompatible"  # libbpf's prototype rule rejects it


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


def severity(verdict: str | None) -> int:
    """A verdict's rank: -1 for none (or no verdict), then info < notice < warning < violation."""
    return VERDICTS.index(verdict) if verdict in VERDICTS else -1


def fails(verdicts, fail_on: str) -> bool:
    """Whether a verdict reaches ``fail_on`` (a verdict or "never"): the exit status 1 of
    audit, review and check."""
    if fail_on == "never":
        return False
    return max((severity(v) for v in verdicts if v is not None), default=-1) >= severity(fail_on)
