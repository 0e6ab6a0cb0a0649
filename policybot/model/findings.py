"""Findings: what the one judge (policybot/policy/judge.py) decided about a change, a tree's
state or a compiled object, and the results that carry them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .census import KnownUser
from .inventory import Inventory, Location
from .ledger import LedgerEntry
from .promises import Promise
from .vocabulary import VERDICTS, AckKind, Verdict, severity


@dataclass(frozen=True)
class Acknowledgement:
    """Why a break is accepted: an entry of the operator's allowlist, or a maintainer's
    Kfunc-Break-Acked-by tag. Mail says it in templates/acknowledgement.txt.j2, which
    leaves out the operator's own file (``source``); ``text`` is for the operator."""
    kind: AckKind
    reason: str = ""  # allowlist: the entry's reason
    until: dt.date | None = None  # allowlist: the day the entry expires
    source: str = ""  # allowlist: policy path:line, the operator's local file
    name: str = ""  # tag: who acknowledged
    address: str = ""
    where: str = ""  # tag: the reply or commit that carries it

    def to_json(self) -> dict:
        """As data: finding JSON (and the HTML page from it), mail views."""
        return {"kind": self.kind, "reason": self.reason, "until": self.until.isoformat() if self.until else None,
                "source": self.source, "name": self.name, "address": self.address, "where": self.where}

    def text(self) -> str:
        if self.kind == AckKind.ALLOWLIST:
            return f"allowlist ({self.source}): {self.reason}"
        return f"acked by {self.name} <{self.address}> with a Kfunc-Break-Acked-by tag in {self.where}"


@dataclass(frozen=True)
class Finding:
    """One finding of audit, review or check. ``kfunc`` is the kfunc (check: the extern as
    declared); ``object`` and ``target`` are set for check's findings about a compiled object."""
    rule: str
    kfunc: str
    verdict: Verdict
    message: str
    location: Location | None  # head location where there is one, else base (``tree`` says which)
    base_location: Location | None
    head_location: Location | None
    promise: Promise | None
    hint: str
    ack: Acknowledgement | None = None  # why the break is accepted, None if it is not
    notes: tuple[str, ...] = ()
    cause: str = ""  # findings of one rule with the same cause are one finding (group_by_cause)
    kfuncs: tuple[str, ...] = ()  # every kfunc of a grouped finding; ``kfunc`` is its worst member
    object: str = ""  # check: the BPF object
    target: str = ""  # check: the kernel it was checked against
    users: tuple[KnownUser, ...] = ()  # out-of-tree programs known to call the kfunc (policybot census)
    called: tuple[str, ...] = ()  # a grouped finding: the members that ``users`` call
    # a finding located only in the base (a removed kfunc): the line of the head where the removed
    # lines were (the patch's hunk), a real place of the tree the user has; None when there is none
    hunk: Location | None = None
    base_rev: str = ""  # the revisions the locations are in ("v7.2", "v7.2+3" for a series' patch 3)
    head_rev: str = ""

    @property
    def acknowledged(self) -> str:
        """The acknowledgement for the operator (text, JSON, SARIF): "" if there is none."""
        return self.ack.text() if self.ack else ""

    @property
    def counts(self) -> bool:
        return not self.ack

    @property
    def members(self) -> tuple[str, ...]:
        return self.kfuncs or ((self.kfunc,) if self.kfunc else ())

    @property
    def grouped(self) -> bool:
        """One finding for a cause: many kfuncs, or a change of the tree itself."""
        return bool(self.kfuncs) or (bool(self.cause) and not self.kfunc)

    @property
    def tree(self) -> str:
        """Which tree ``location`` is in: "head", "base", or "" (none, or check's object)."""
        if self.head_location is not None:
            return "head"
        return "base" if self.base_location is not None else ""

    @property
    def in_base(self) -> bool:
        """Located only in the base: its line is not a place of the head the user has checked out."""
        return self.tree == "base"

    @property
    def where(self) -> str:
        """Where it points, as a place of the tree the user has (the head): its file:line; for a
        finding located only in the base, the line of the head where its lines were (``hunk``),
        else its base file:line followed by " (in BASE)", which editors do not take for a place
        of their checkout; else (check) the object."""
        if self.in_base:
            return str(self.hunk) if self.hunk else f"{self.base_location} (in {_rev_name(self.base_rev)})"
        return str(self.location) if self.location else self.object

    @property
    def was(self) -> str:
        """Where a finding located in the base was, when ``where`` is its head hunk: "kernel/bpf/x.c:10 in v6.12"."""
        return f"{self.base_location} in {_rev_name(self.base_rev)}" if self.in_base and self.hunk else ""


def _rev_name(rev: str) -> str:
    """A revision as a line names it: a commit id by its first 12 digits (as git's short ids)."""
    if not rev:
        return "base"
    return rev[:12] if len(rev) == 40 and all(c in "0123456789abcdef" for c in rev) else rev


@dataclass
class AuditResult:
    base: Inventory | None
    head: Inventory
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)
    promises: dict[str, Promise] = field(default_factory=dict)
    ledger: list[LedgerEntry] = field(default_factory=list)  # the tree's dated promises at the head

    def worst(self) -> Verdict | None:
        counted = [f.verdict for f in self.findings if f.counts]
        return max(counted, key=severity) if counted else None

    def counts(self) -> dict[str, int]:
        out = {v: 0 for v in reversed(VERDICTS)}
        for f in self.findings:
            if f.counts:
                out[f.verdict] += 1
        out["acknowledged"] = sum(1 for f in self.findings if f.acknowledged)
        return out
