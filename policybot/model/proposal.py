"""`policybot propose`: the evidence about each kfunc, and the declarations it supports (issue 24)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Proposed(StrEnum):
    STABLE = "stable"
    DEPRECATING = "deprecating"


@dataclass(frozen=True)
class Evidence:
    kfunc: str
    level: str  # declared at the revision ("unstable" when undeclared)
    declared: bool
    first_release: str | None  # the first release tag that has it
    last_change: str | None  # the release whose tag first shows its last signature, flags or program types change
    unchanged_releases: int  # releases since then (version numbers: 6.19 then 7.0), 0 when unknown
    users_in_tree: tuple[str, ...]
    users_out_of_tree: tuple[str, ...]  # "bpfilter 0.6.0-2 (strong)"
    guards: tuple[str, ...]  # the Kconfig options it needs
    jit_arches: tuple[str, ...]  # architectures whose JIT can call kfuncs at the newest release read
    files: tuple[str, ...]
    successor: str | None  # a newer kfunc of the same name: NAME_v2, NAME___v2, NAME2
    replacement: str | None  # named in its kernel-doc
    definition: str = ""  # path:line of its definition
    doc_line: int = 0  # the line of its kernel-doc comment's "/**", 0 when it has none


@dataclass(frozen=True)
class Candidate:
    kfunc: str
    proposed: Proposed
    why: str  # the criteria it meets, in words
    evidence: Evidence


@dataclass
class Proposal:
    rev: str
    commit: str
    manifest: str  # where declarations are written ("manifest" mode, and kfuncs without kernel-doc)
    min_users: int
    min_unchanged_releases: int
    write: str = "manifest"  # or "kernel-doc": a "Stability:" line in each kfunc's kernel-doc comment
    candidates: list[Candidate] = field(default_factory=list)  # stable first, ranked; then deprecating
    evidence: list[Evidence] = field(default_factory=list)  # every kfunc, by name
    already: list[str] = field(default_factory=list)  # kfuncs declared at the revision
    series: list = field(default_factory=list)  # PatchMail: the declarations as patches (--format mbox)
    sender: str = ""  # From: of the series
    date: str = ""  # Date: of the series (the revision's commit date: the same series each time)


@dataclass(frozen=True)
class FileDiff:
    path: str
    diff: str  # unified diff, "--- /dev/null" for a new file
    inserted: int
    deleted: int


@dataclass(frozen=True)
class PatchMail:
    """One mail of the declarations series: [PATCH 0/n] (the cover letter, no diff) to n/n."""
    subject: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    body: str
    diffs: tuple[FileDiff, ...] = ()
