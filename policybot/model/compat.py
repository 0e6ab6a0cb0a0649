"""A compat header for BPF programs (``policybot compat``): for each kfunc whose name, prototype or
availability differs across a range of releases, the flavored weak externs of each era and the
wrapper that calls whichever the running kernel has (or why there is none)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


class EntryKind(StrEnum):
    """Why a kfunc is in the header."""
    RENAMED = "renamed"  # its name changed within the range (history's renames)
    PROTOTYPE = "prototype"  # same name, its BPF-visible prototype changed
    SUCCESSOR = "successor"  # NAME___vN (or NAME_vN) added beside NAME, which it replaces
    ADDED = "added"  # not in the oldest release of the range
    REMOVED = "removed"  # not in the newest release of the range


class Bridge(StrEnum):
    """How the wrapper reaches one older variant."""
    DIRECT = "direct"  # same prototype: the arguments as they are
    CAST = "cast"  # same arity, integers or pointers of another type: the arguments cast
    NONE = "none"  # cannot be bridged mechanically (``why`` says what is missing)


@dataclass(frozen=True)
class CParam:
    type: str  # as the kernel's source writes it: ``struct task_struct *``, ``u64``
    name: str

    @property
    def c_text(self) -> str:
        if "(*)" in self.type:
            return self.type.replace("(*)", f"(*{self.name})", 1)
        return f"{self.type}{'' if self.type.endswith('*') else ' '}{self.name}"


@dataclass(frozen=True)
class Prototype:
    """A kfunc's prototype as BPF programs call it in one release (implicit arguments dropped)."""
    return_type: str
    params: tuple[CParam, ...]


@dataclass(frozen=True)
class Promise:
    """What the declarations of the last release carrying a variant say of it."""
    level: str  # unstable, stable, deprecating, deprecated
    promise_ends: dt.date | None = None
    earliest_removal: dt.date | None = None
    replacement: str | None = None


@dataclass(frozen=True)
class Variant:
    """One era of a kfunc: the releases in which it has this name and this BPF-visible prototype."""
    kfunc: str  # the name the kernel registers (libbpf's essential name of ``extern``)
    extern: str  # the weak flavored extern: ``kfunc___vN``
    return_type: str
    params: tuple[CParam, ...]
    releases: tuple[str, ...]  # oldest first, consecutive within the range
    promise: Promise
    gone_in: str | None = None  # the first release of the range without it, when it went
    changed_in: str | None = None  # the first release of the range with another prototype of it
    bridge: Bridge = Bridge.DIRECT
    why: str = ""  # Bridge.NONE: what cannot be made up
    call: str = ""  # the call expression the wrapper makes (arguments cast as needed)
    weak: bool = True  # how the header declares it (every variant is weak: none is in every release)

    @property
    def first(self) -> str:
        return self.releases[0]

    @property
    def last(self) -> str:
        return self.releases[-1]

    @property
    def span(self) -> str:
        """The releases it covers, as people write them: ``v6.12`` or ``v6.12..v6.19``."""
        return self.first if self.first == self.last else f"{self.first}..{self.last}"

    @property
    def void(self) -> bool:
        return self.return_type.strip() == "void"

    def prototype(self, name: str | None = None) -> str:
        params = ", ".join(p.c_text for p in self.params) or "void"
        ret = self.return_type
        return f"{ret}{'' if ret.endswith('*') else ' '}{name or self.extern}({params})"


@dataclass(frozen=True)
class Entry:
    """One kfunc of the header: its variants, newest first, and its wrapper (or why none)."""
    name: str  # the name programs call: the newest variant's kfunc
    kind: EntryKind
    variants: tuple[Variant, ...]  # newest first
    old_names: tuple[str, ...] = ()  # earlier names (renames), and for a successor those of its base
    replaces: str | None = None  # a successor: the kfunc it is added beside (NAME for NAME___v2)
    wrapper: bool = False
    why_no_wrapper: str = ""
    fallback: str | None = None  # the operator's body (policy file [compat."NAME"]), when used
    checked_last: bool = True  # False: the oldest variant is called without bpf_ksym_exists()
    lacking: tuple[str, ...] = ()  # the releases of the range with none of its variants, as runs

    @property
    def newest(self) -> Variant:
        return self.variants[0]


@dataclass(frozen=True)
class DeadExtern:
    """A weak extern of the header that resolves on none of the releases, a strong one that
    does not resolve on one of them, or the last resort a wrapper calls untested while on some
    release none of the wrapper's variants resolves: the self-check's findings."""
    extern: str
    kfunc: str
    weak: bool
    reasons: tuple[str, ...]  # per release: why not
    untested: str = ""  # the wrapper that calls it untested, when no variant resolves on some release


@dataclass
class CompatHeader:
    repo: str
    first: str  # the range's oldest release
    last: str  # and its newest
    releases: tuple[str, ...]
    entries: list[Entry] = field(default_factory=list)
    filtered_by: tuple[str, ...] = ()  # the --kfuncs files, when given
    dead: list[DeadExtern] = field(default_factory=list)

    @property
    def guard(self) -> str:
        return "__POLICYBOT_COMPAT_H"

    @property
    def tagged_types(self) -> list[str]:
        """Every ``struct X`` and ``union X`` a prototype of the header names, sorted: declared at
        file scope (a type only a module defines is not in vmlinux.h, and in a prototype clang
        scopes it to that prototype)."""
        import re
        found = set()
        for e in self.entries:
            for v in e.variants:
                for text in (v.return_type, *(p.type for p in v.params)):
                    found.update(f"{kind} {name}" for kind, name in re.findall(r"\b(struct|union)\s+(\w+)", text))
        return sorted(found)
