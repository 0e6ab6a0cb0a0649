"""The usage census: who calls each kfunc (issue 23).

A ``Use`` is one program's use of one kfunc, as found in a BPF C source, a compiled
object, an object embedded in an executable or library, or a Debian package's files.
``KnownUser`` is what a finding says of it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


def essential_name(name: str) -> str:
    """libbpf's flavor rule: drop the suffix from the last ``X___Y`` separator (X, Y not '_'):
    the name libbpf asks the kernel for (``bpf_core_essential_name_len`` in libbpf.c)."""
    for i in range(len(name) - 5, -1, -1):
        if name[i] != "_" and name[i + 1:i + 4] == "___" and name[i + 4] != "_":
            return name[:i + 1]
    return name


@dataclass(frozen=True)
class Use:
    kfunc: str  # the essential name libbpf asks the kernel for
    user: str  # the program: "sigsnoop-libbpf", "tools/sched_ext/scx_simple"
    project: str  # the package or repository it comes from: "libbpf-tools", "linux"
    version: str  # the package's version, the revision, or what the command line said
    in_tree: bool  # under a kernel tree's tools/ or samples/
    weak: bool  # declared __weak: the program loads without it
    location: str  # "usr/sbin/sigsnoop-libbpf@0x2a1c0", "tools/sched_ext/scx_simple.bpf.c:42"
    declared: str = ""  # the name as declared when a flavor (name___suffix) differs

    @property
    def strength(self) -> str:
        return "weak" if self.weak else "strong"


@dataclass
class Census:
    """What one census of one source found, and what it could not read (one line each)."""
    source: str  # the source's key: a new census of it replaces what was kept
    uses: list[Use] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    files: int = 0  # files read
    objects: int = 0  # BPF objects read (standalone and embedded)


@dataclass(frozen=True)
class KnownUser:
    """A user as findings name it: "bpfilter 0.6.0 (strong)"."""
    user: str
    version: str
    weak: bool
    in_tree: bool
    seen: dt.date | None = None

    def text(self) -> str:
        version = f" {self.version}" if self.version else ""
        return f"{self.user}{version} ({'weak' if self.weak else 'strong'})"

    def to_json(self) -> dict:
        return {"user": self.user, "version": self.version, "weak": self.weak, "in_tree": self.in_tree,
                "seen": self.seen.isoformat() if self.seen else None}


@dataclass
class CensusRun:
    """What ``policybot census SOURCE...`` did: each source's census, and the sources it could
    not read at all (one line each). A source read with problems is still kept."""
    censuses: list[Census] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return self.failed + [p for c in self.censuses for p in c.problems]


@dataclass(frozen=True)
class CensusRow:
    """A kept use: a ``Use`` with the source that found it and the day it was seen."""
    use: Use
    source: str
    seen: dt.date


@dataclass
class CensusTable:
    """``policybot census --list``: every kept use, by kfunc or by user."""
    rows: list[CensusRow]
    by: str = "kfunc"  # or "user"
