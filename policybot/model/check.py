"""What ``policybot check`` reads and decides: a compiled BPF object's kfunc externs, the
target kernels it is checked against, and the result per object and target."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .findings import Finding
from .vocabulary import ExternStatus, Level, PromiseState


@dataclass(frozen=True)
class Shape:
    kind: str  # void int ptr array struct union enum fwd float proto unknown
    inner: Shape | None = None  # ptr, array: the target; proto: the return type
    params: tuple[Shape, ...] = ()
    bitfield: bool = False  # an int with a bit offset: libbpf rejects it
    text: str = ""  # for messages

    def __str__(self) -> str:
        if self.kind in ("ptr", "array"):
            return f"pointer to {self.inner}" if self.kind == "ptr" else f"array of {self.inner}"
        if self.kind == "proto":
            return f"function of {len(self.params)} parameter{'' if len(self.params) == 1 else 's'}"
        return self.text or self.kind


@dataclass(frozen=True)
class SourceLine:
    file: str
    line: int
    column: int
    text: str  # the source line as the compiler recorded it

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Extern:
    """One kfunc extern of an object."""
    name: str  # as declared, flavors included
    kfunc: str  # the essential name libbpf resolves
    weak: bool
    proto: int  # FUNC_PROTO type id in the object's BTF
    prototype: str  # as C
    calls: tuple[SourceLine, ...]  # where it is called, when the object has line info
    # how the object uses it: a call instruction (R_BPF_64_32: libbpf makes it a
    # BPF_PSEUDO_KFUNC_CALL) or a 64-bit load of its address (R_BPF_64_64, ld_imm64:
    # BPF_PSEUDO_BTF_ID, which the verifier accepts for any kernel function)
    called: bool = True
    addressed: tuple[SourceLine, ...] = ()  # where its address is loaded, from line info
    address_taken: bool = False
    declared_at: SourceLine | None = None  # its declaration, from the object's DWARF (-g)

    @property
    def address_only(self) -> bool:
        """Its address is loaded and it is never called: libbpf resolves it against any kernel
        function of that name, and the verifier takes the address (no kfunc set is asked)."""
        return self.address_taken and not self.called

    @property
    def where(self) -> SourceLine | None:
        """Where a finding about it points: its first call, else its first address use, else
        its declaration."""
        return (self.calls or self.addressed or (self.declared_at,))[0]


@dataclass(frozen=True)
class BpfObject:
    path: str
    btf: object  # the object's own BTF (a btf.reader.Btf), read lazily
    externs: tuple[Extern, ...]
    # functions the object calls through an undefined symbol with no BTF: libbpf
    # cannot open such an object ("failed to find BTF for extern")
    undescribed: tuple[str, ...]
    source: bytes | None = None  # the object's bytes when it was cut out of a program or package
    container: str = ""  # the file given that holds it (a program, a library, a .deb); "": given itself


STATUSES = tuple(ExternStatus)


@dataclass(frozen=True)
class TargetKfunc:
    name: str
    prototype: str  # C, for people
    shape: Shape | None  # from BTF; None: build it from the texts below
    return_type: str = ""
    param_types: tuple[str, ...] = ()
    flags: tuple[str, ...] | None = None  # None: the target does not say (BTF alone)
    prog_types: tuple[str, ...] | None = None
    location: str = ""
    guards: tuple[str, ...] = ()  # a source tree's config guards of the kfunc (its inventory's)
    # a compiled kernel's function that is tagged bpf_kfunc but no program may call: its set is
    # registered only for fmod_ret (the source says so); its address may still be taken
    callable: bool = True


@dataclass(frozen=True)
class PolicyView:
    """What the target's declarations say of one kfunc."""
    level: Level  # unstable (also undeclared), stable, deprecating, deprecated
    level_key: PromiseState  # the rule catalogue's key: also expired, deprecated_due
    promise_ends: dt.date | None  # stable: end of the window
    earliest_removal: dt.date | None  # deprecated: end of the notice period
    replacement: str | None
    declared_at: str = ""


UNDECLARED = PolicyView(Level.UNSTABLE, PromiseState.UNSTABLE, None, None, None)


@dataclass(frozen=True)
class Target:
    name: str
    kind: str  # "source" or "btf"
    kfuncs: dict[str, TargetKfunc]
    policy: dict[str, PolicyView] = field(default_factory=dict)
    first_release: dict[str, str] = field(default_factory=dict)
    declared: bool = True  # False for BTF alone: no declarations, levels unknown
    # architectures whose JIT can call kfuncs at that revision (arch/*/net/); None for BTF alone
    jit_arches: tuple[str, ...] | None = None
    # functions that are no kfunc, for an extern whose address alone is used (libbpf resolves it
    # against any kernel function of that name): a source tree's function definitions of the
    # names asked, a compiled kernel's FUNCs (their prototypes when at hand)
    functions: dict[str, TargetKfunc] = field(default_factory=dict)
    # a compiled kernel checked with its source: kfuncs of the source this build left out
    # (name -> the source's config guards of it, () for none)
    not_built: dict[str, tuple[str, ...]] = field(default_factory=dict)
    not_built_in: dict[str, str] = field(default_factory=dict)  # name -> the source file defining it
    # the config this build was made with (option -> y, m, n, value), None: not known
    build_config: dict[str, str] | None = None
    ident: str = ""  # stable across path spellings and machines (SARIF category, fingerprints); "": name
    source: str = ""  # the source revision a compiled kernel's policy comes from


@dataclass(frozen=True)
class ExternResult:
    extern: Extern
    status: ExternStatus
    reason: str
    target_kfunc: TargetKfunc | None
    policy: PolicyView
    first_release: str | None

    declared: bool  # the target says what is declared (a source tree): level and promise are known
    needs: tuple[str, ...] = ()  # what the kfunc's flags ask of the program calling it

    @property
    def resolved(self) -> bool:
        return self.status == ExternStatus.OK


@dataclass(frozen=True)
class CheckResult:
    """One object checked against one target."""
    object: BpfObject
    target: Target
    externs: tuple[ExternResult, ...]
    findings: tuple[Finding, ...]

    @property
    def loads(self) -> bool:
        return not self.object.undescribed and all(r.resolved or r.extern.weak for r in self.externs)


@dataclass(frozen=True)
class CheckRun:
    """Every object against every target, and what only the targets together say (dead fallbacks)."""
    results: tuple[CheckResult, ...]
    findings: tuple[Finding, ...] = ()  # about an object over all its targets
    problems: tuple[str, ...] = ()  # embedded objects that could not be read
    bad_inputs: tuple[str, ...] = ()  # inputs not checked (no BPF object, not an ELF, ...): one line each

    def all_findings(self) -> list[Finding]:
        return [f for v in self.results for f in v.findings] + list(self.findings)


@dataclass(frozen=True)
class CrossCheck:
    rev: str
    commit: str
    scanner_misses: tuple[str, ...]  # tagged in the BTF, not in the source inventory
    # tagged because their set is a BTF_KFUNCS set, registered only with
    # register_btf_fmodret_id_set: attachable by fmod_ret programs, not callable
    fmodret_only: dict[str, str]  # name -> the set entry's location
    not_built: tuple[str, ...]  # in the source inventory, not in this kernel's BTF
    # of those, the module (NAME.ko) their file is linked into when built as one (the Makefile's word)
    modules: dict[str, str] = field(default_factory=dict)


