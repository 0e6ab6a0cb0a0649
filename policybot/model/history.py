"""A kfunc's history across release tags (``policybot history``): its events, the releases
that carried it, and which JITs could call kfuncs in each release."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .inventory import Location
from .promises import Release
from .vocabulary import Level

# event kinds, in the order they are listed within one release
KINDS = ("added", "re-added", "renamed", "removed", "signature", "flags", "prog_types", "guards",
         "moved", "level", "other")


@dataclass(frozen=True)
class JitSupport:
    """One JIT file whose ``bpf_jit_supports_kfunc_call()`` can answer true."""
    arch: str
    location: Location  # the definition
    conditions: tuple[str, ...]  # all must hold (build, #if, returned expression); () = always

    def to_json(self) -> dict:
        return {"arch": self.arch, "location": str(self.location), "conditions": list(self.conditions)}


def arches(support: tuple[JitSupport, ...]) -> list[str]:
    return sorted({s.arch for s in support})


@dataclass(frozen=True)
class RuleMessage:
    """A rule a change of the history triggers, with the audit's message for it."""
    rule: str
    message: str


@dataclass(frozen=True)
class Event:
    release: str
    date: dt.date
    kind: str  # one of KINDS
    detail: str  # before -> after, in words
    rules: tuple[RuleMessage, ...] = ()  # from policy.diff, if any applies
    other: str | None = None  # the other name of a rename

    @property
    def gone(self) -> bool:
        """The kfunc is not in this release under this name any more."""
        return self.kind == "removed" or (self.kind == "renamed" and self.detail.startswith("renamed to"))

    def to_json(self) -> dict:
        return {"release": self.release, "date": self.date.isoformat(), "kind": self.kind,
                "detail": self.detail, "rules": [{"rule": r.rule, "message": r.message} for r in self.rules],
                "other": self.other}


@dataclass
class KfuncHistory:
    name: str
    test: bool = False
    events: list[Event] = field(default_factory=list)
    # presence intervals: [first release, last release or None while the newest tag has it]
    spans: list[list[str | None]] = field(default_factory=list)
    renamed_from: str | None = None
    renamed_to: str | None = None
    level: Level = Level.UNSTABLE  # declared level at the last release that had it

    @property
    def first_release(self) -> str | None:
        return self.spans[0][0] if self.spans else None

    @property
    def last_release(self) -> str | None:
        """The last release that had the kfunc, or None when the newest release still has it."""
        return self.spans[-1][1] if self.spans else None

    @property
    def present(self) -> bool:
        return bool(self.spans) and self.spans[-1][1] is None

    @property
    def removed_in(self) -> str | None:
        """The first release without it (after the last span), or None."""
        if self.present:
            return None
        gone = [e for e in self.events if e.gone]
        return gone[-1].release if gone else None

    @property
    def changed_in(self) -> list[str]:
        """Releases in which something BPF programs see changed (not additions or removals)."""
        kinds = {"signature", "flags", "prog_types", "guards", "moved", "level", "other"}
        return list(dict.fromkeys(e.release for e in self.events if e.kind in kinds))

    def to_json(self) -> dict:
        return {
            "name": self.name, "test": self.test, "present": self.present,
            "first_release": self.first_release, "last_release": self.last_release,
            "removed_in": self.removed_in, "renamed_from": self.renamed_from,
            "renamed_to": self.renamed_to, "level": self.level, "changed_in": self.changed_in,
            "spans": [{"first": a, "last": b} for a, b in self.spans],
            "events": [e.to_json() for e in self.events],
        }


class Histories(list):
    """A list of KfuncHistory that also knows which releases it covers (oldest first), and
    which JITs could call kfuncs in each."""

    def __init__(self, items=(), releases: list[Release] | None = None,
                 jits: dict[str, tuple[JitSupport, ...]] | None = None):
        super().__init__(items)
        self.releases: list[Release] = list(releases or [])
        self.jits: dict[str, tuple[JitSupport, ...]] = dict(jits or {})

    def arches(self) -> dict[str, list[str]]:
        """release -> architectures whose JIT can call kfuncs (some under a condition)."""
        return {r.name: arches(self.jits.get(r.name, ())) for r in self.releases}

    def arch_since(self) -> dict[str, str]:
        """architecture -> the first release (of those covered) whose JIT can call kfuncs."""
        out: dict[str, str] = {}
        for release, names in self.arches().items():
            for a in names:
                out.setdefault(a, release)
        return out
