"""The kfunc inventory of one tree at one revision: plain frozen data."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

# Bump when the JSON of ``Inventory.to_json`` changes shape (docs/inventory.md documents it).
INVENTORY_SCHEMA = 1


@dataclass(frozen=True)
class Location:
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class FlagDef:
    name: str
    bit: int | None  # None when not defined as (1 << n)
    comment: str  # the definition's comment, whitespace-normalised ("" if none)
    location: Location


@dataclass(frozen=True)
class SuffixDef:
    suffix: str
    comment: str  # the comment above the matching function, else the matching line
    location: Location  # where the verifier matches it


@dataclass(frozen=True)
class Semantics:
    """What one tree defines. ``None`` fields: the tree has no such file (policybot assumes)."""
    key: str  # the blob ids read, joined
    flags: tuple[FlagDef, ...] | None
    suffixes: tuple[SuffixDef, ...] | None
    implicit_structs: tuple[str, ...] | None  # struct names of verifier-supplied parameters
    implicit_location: Location | None = None
    # KF_* names the verifier's files (SUFFIX_FILES) use: a flag they never test
    # changes nothing the verifier checks (7.2's KF_ARENA_* are read only by pahole)
    verifier_flags: tuple[str, ...] | None = None
    # structs the verifier's get_kfunc_ptr_arg_type gives an argument kind of their own
    arg_structs: tuple[str, ...] | None = None
    # (program type, its context type, its kernel context type), as bpf_types.h spells them
    ctx_types: tuple[tuple[str, str, str], ...] | None = None

    def ctx_structs(self, prog_types: tuple[str, ...]) -> set[str] | None:
        """Struct names of the contexts of ``prog_types`` (UNSPEC: every type), None if the tree does not say."""
        if self.ctx_types is None:
            return None
        every = "UNSPEC" in prog_types
        return {t.removeprefix("struct ").strip() for p, user, kern in self.ctx_types
                if every or p in prog_types for t in (user, kern) if t.startswith("struct ")}

    def enforced(self, flag: str) -> bool | None:
        """Whether the verifier reads ``flag`` here; None when the tree does not say."""
        if self.verifier_flags is None or self.flags is None:
            return None
        return flag in self.verifier_flags

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Semantics":
        d = json.loads(text)

        def loc(x):
            return Location(x["path"], x["line"]) if x else None

        def tup(x):
            return tuple(x) if x is not None else None

        return cls(d["key"],
                   None if d["flags"] is None else tuple(
                       FlagDef(f["name"], f["bit"], f["comment"], loc(f["location"])) for f in d["flags"]),
                   None if d["suffixes"] is None else tuple(
                       SuffixDef(x["suffix"], x["comment"], loc(x["location"])) for x in d["suffixes"]),
                   tup(d["implicit_structs"]), loc(d["implicit_location"]), tup(d["verifier_flags"]),
                   tup(d["arg_structs"]),
                   None if d["ctx_types"] is None else tuple(tuple(c) for c in d["ctx_types"]))

    def flag(self, name: str) -> FlagDef | None:
        return next((f for f in self.flags or () if f.name == name), None)

    def suffix(self, name: str) -> SuffixDef | None:
        return next((s for s in self.suffixes or () if s.suffix == name), None)

    @property
    def flag_names(self) -> tuple[str, ...]:
        return tuple(sorted(f.name for f in self.flags or ()))

    @property
    def suffix_names(self) -> tuple[str, ...]:
        return tuple(sorted(s.suffix for s in self.suffixes or ()))

    def suffix_of(self, param_name: str) -> str | None:
        """The suffix the verifier matches on ``param_name`` ("" for none), None if the tree does not say.

        Like btf_param_match_suffix: the name ends with the suffix and is longer
        than it; of several matches the longest wins (``__szk`` over ``__k``).
        """
        if self.suffixes is None:
            return None
        hits = [s.suffix for s in self.suffixes
                if param_name.endswith(s.suffix) and len(param_name) > len(s.suffix)]
        return max(hits, key=len) if hits else ""


@dataclass(frozen=True)
class Param:
    type: str
    name: str
    suffix: str = ""  # a verifier suffix such as "__sz" (Documentation/bpf/kfuncs.rst), or ""

    @property
    def c_text(self) -> str:
        """The parameter as C writes it: ``u32 flags``, ``void *p``, ``bool (*less)(int)``."""
        if "(*)" in self.type and self.name:  # a function pointer: the name goes inside
            return self.type.replace("(*)", f"(*{self.name})", 1)
        return f"{self.type}{'' if self.type.endswith('*') else ' '}{self.name}".strip()


@dataclass(frozen=True)
class Signature:
    return_type: str
    params: tuple[Param, ...]
    variadic: bool = False

    def render(self, name: str) -> str:
        params = ", ".join(p.c_text for p in self.params) or "void"
        if self.variadic:
            params += ", ..."
        sep = "" if self.return_type.endswith("*") else " "
        return f"{self.return_type}{sep}{name}({params})"


@dataclass(frozen=True)
class KernelDoc:
    line: int
    summary: str
    stability: str = ""  # the value of a "Stability:" line, lower-cased
    deprecated: str = ""  # the text of a "Deprecated:" line
    stability_line: int = 0
    deprecated_line: int = 0

    @property
    def replacement(self) -> str:
        """The kfunc the "Deprecated:" line names ("use bpf_foo2() instead"), or ""."""
        named = _REPLACEMENT.search(self.deprecated)
        return named.group(1) if named else ""


@dataclass(frozen=True)
class BuildGuard:
    """A condition under which kbuild compiles a file at all (policybot.kernel.kbuild)."""
    condition: str  # "CONFIG_TCP_CONG_BBR", "CONFIG_NF_CONNTRACK=m", "!CONFIG_X86_32"
    location: Location  # the Kbuild/Makefile line, or the #include line, that sets it
    what: str  # "object", "composite", "directory", "ifeq" or "include"
    tristate: bool = False  # the tree's Kconfig declares the option tristate

    @property
    def module(self) -> bool:
        """The file's own obj-$(CONFIG_X) line with a tristate X: it may be built as a module."""
        return self.what == "object" and self.tristate

    def to_json(self) -> dict:
        return {"condition": self.condition, "location": str(self.location), "what": self.what,
                "tristate": self.tristate}


@dataclass(frozen=True)
class Definition:
    location: Location
    signature: Signature
    static: bool
    marked: bool  # carries __bpf_kfunc
    guards: tuple[str, ...]
    doc: KernelDoc | None
    build: tuple[BuildGuard, ...] = ()  # build conditions of the definition's file
    # structs its parameters point to that its file defines with scalar members only: the
    # verifier takes a pointer to one as memory (KF_ARG_PTR_TO_MEM), not as a trusted object
    scalar_structs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Membership:
    """One kfunc set a kfunc is listed in, and what registering that set gives it."""
    set_name: str
    set_macro: str  # BTF_SET, BTF_SET8 or BTF_KFUNCS
    location: Location  # the entry
    flags: tuple[str, ...]
    flags_text: str  # verbatim
    prog_types: tuple[str, ...]  # "TRACING", ...; "UNSPEC" means every program type
    filter: str  # name of a .filter callback that narrows the set, or ""
    guards: tuple[str, ...]  # config guards of the set, entry and registration
    via_macro: str = ""
    build: tuple[BuildGuard, ...] = ()  # build conditions of the set's file


@dataclass(frozen=True)
class Kfunc:
    name: str
    memberships: tuple[Membership, ...]
    definition: Definition | None
    test: bool

    @property
    def location(self) -> Location:
        return self.memberships[0].location

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(sorted({f for m in self.memberships for f in m.flags}))

    @property
    def prog_types(self) -> tuple[str, ...]:
        return tuple(sorted({p for m in self.memberships for p in m.prog_types}))

    @property
    def guards(self) -> tuple[str, ...]:
        """Config options the kfunc needs: those common to all its memberships, plus the
        definition's; each with the build conditions of its file."""
        sets = [set(m.guards) | {b.condition for b in m.build} for m in self.memberships]
        common = set.intersection(*sets) if sets else set()
        if self.definition:
            common |= set(self.definition.guards) | {b.condition for b in self.definition.build}
        return tuple(sorted(common))

    @property
    def build(self) -> tuple[BuildGuard, ...]:
        """The build conditions among ``guards``, with where each is written."""
        wanted = set(self.guards)
        out: dict[str, BuildGuard] = {}
        for b in (self.definition.build if self.definition else ()) + \
                tuple(b for m in self.memberships for b in m.build):
            if b.condition in wanted:
                out.setdefault(b.condition, b)
        return tuple(out[c] for c in sorted(out))

    @property
    def module(self) -> bool:
        """Some file the kfunc needs may be built as a module (then it is in that module's BTF)."""
        return any(b.module for b in self.build)

    @property
    def files(self) -> tuple[str, ...]:
        paths = [m.location.path for m in self.memberships]
        if self.definition:
            paths.append(self.definition.location.path)
        return tuple(dict.fromkeys(paths))


@dataclass(frozen=True)
class Diagnostic:
    location: Location
    code: str  # e.g. "set-unregistered", "no-definition", "unknown-flag"
    message: str

    def __str__(self) -> str:
        return f"{self.location}: note[{self.code}]: {self.message}"


@dataclass
class Inventory:
    commit: str
    rev: str
    kfuncs: dict[str, Kfunc]
    diagnostics: list[Diagnostic] = field(default_factory=list)
    dtors: list[tuple[str, Location]] = field(default_factory=list)
    tree_flags: tuple[str, ...] = ()  # KF_* flags include/linux/btf.h defines
    stats: dict = field(default_factory=dict)
    semantics: Semantics | None = None  # what the tree says flags and suffixes mean
    build_baseline: tuple[str, ...] = ()  # build options every kfunc needs, left out of its guards

    def selected(self, include_tests: bool) -> list[Kfunc]:
        return [k for _, k in sorted(self.kfuncs.items()) if include_tests or not k.test]

    def to_json(self, include_tests: bool = False) -> dict:
        return {
            "schema": INVENTORY_SCHEMA,
            "commit": self.commit,
            "rev": self.rev,
            "include_tests": include_tests,
            "count": len(self.selected(include_tests)),
            "build_baseline": list(self.build_baseline),
            "kfuncs": [kfunc_json(k) for k in self.selected(include_tests)],
            "dtors": [{"name": n, "location": str(loc)} for n, loc in self.dtors],
            "diagnostics": [{"location": str(d.location), "code": d.code, "message": d.message}
                            for d in self.diagnostics],
        }


def kfunc_json(k: Kfunc) -> dict:
    d = k.definition
    return {
        "name": k.name,
        "test": k.test,
        "flags": list(k.flags),
        "prog_types": list(k.prog_types),
        "guards": list(k.guards),
        "build": [b.to_json() for b in k.build],
        "module": k.module,
        "sets": [{
            "set": m.set_name, "macro": m.set_macro, "location": str(m.location),
            "flags": list(m.flags), "flags_text": m.flags_text, "prog_types": list(m.prog_types),
            "filter": m.filter or None, "guards": list(m.guards), "via_macro": m.via_macro or None,
        } for m in k.memberships],
        "definition": None if d is None else {
            "location": str(d.location),
            "signature": d.signature.render(k.name),
            "return_type": d.signature.return_type,
            "params": [asdict(p) for p in d.signature.params],
            "variadic": d.signature.variadic,
            "static": d.static,
            "marked": d.marked,
            "guards": list(d.guards),
            "scalar_structs": list(d.scalar_structs),
            "doc": None if d.doc is None else {
                "line": d.doc.line, "summary": d.doc.summary,
                "stability": d.doc.stability or None, "deprecated": d.doc.deprecated or None,
            },
        },
    }


_BRIEF = re.compile(r"^(?:struct\s+|union\s+|enum\s+)?[\w.]+(?:\(\))?\s*[-:]\s*(.*)$")
_STABILITY = re.compile(r"^[ \t]*Stability:[ \t]*(\S+)[ \t]*$", re.I | re.M)  # [ \t]: never across lines
_DEPRECATED = re.compile(r"^[ \t]*Deprecated:[ \t]*(.*\S)[ \t]*$", re.I | re.M)
# "use bpf_foo2() instead", "replaced by bpf_foo2()", "use bpf_foo2 instead"
_REPLACEMENT = re.compile(r"\b(?:use|replaced\s+by|in\s+favou?r\s+of)\s+([A-Za-z_]\w*)\b(?:\s*\(\))?", re.I)


def kernel_doc(text: str, line: int) -> KernelDoc | None:
    if not text:
        return None
    # the brief description runs from "name() - " (or ":") to a blank or @arg line
    lines = text.split("\n")
    brief = []
    for i, ln in enumerate(lines):
        if i and (not ln.strip() or ln.lstrip().startswith("@")):
            break
        brief.append(ln.strip())
    head = " ".join(brief)
    m = _BRIEF.match(head)
    summary = m.group(1).strip() if m else head.strip()
    stab = _STABILITY.search(text)
    dep = _DEPRECATED.search(text)

    def line_of(m):
        return line + text[:m.start()].count("\n") + 1 if m else 0  # +1: the "/**" line

    return KernelDoc(line, summary, stab.group(1).lower() if stab else "",
                     dep.group(1) if dep else "", line_of(stab), line_of(dep))
