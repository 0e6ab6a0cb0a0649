"""What changed for BPF programs between two inventories: small detectors, one per rule family.

Each detector yields ``Change``s; none knows about declarations or verdicts
(that is audit.py's job). Comparing an inventory with itself yields nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

from ..kernel.flags import FLAGS, IMPLICIT_PARAM_TYPES
from ..kernel.model import Inventory, Kfunc, Location, Param

TIGHTENING_ADDED = {"__k", "__szk", "__str", "__uninit"}
TIGHTENING_REMOVED = {"__nullable", "__opt", "__ign"}
# the mirror image: programs that verified before still do
RELAXING = ({(None, s) for s in TIGHTENING_REMOVED} | {(s, None) for s in TIGHTENING_ADDED})
_SAME_SUFFIX = {"__opt": "__nullable"}  # renamed in 7.0, same meaning
_QUALIFIERS = {"const", "volatile", "__user", "__rcu", "__iomem", "__percpu", "__kernel",
               "__force", "__nocast", "__restrict", "restrict", "__must_check"}
_INT_WORDS = {"char", "short", "int", "long", "signed", "unsigned", "bool", "_Bool"}
_INT_TYPEDEF = re.compile(r"^(__)?[us](8|16|32|64|128)$|^(u?int(8|16|32|64)_t|size_t|ssize_t|"
                          r"loff_t|off_t|gfp_t|pid_t|uid_t|gid_t|dev_t|umode_t|__be(16|32|64)|"
                          r"__le(16|32|64)|__wsum|__sum16|phys_addr_t|dma_addr_t|time64_t|ktime_t)$")


@dataclass(frozen=True)
class Change:
    rule: str
    kfunc: str
    message: str
    base: Location | None
    head: Location | None
    new_name: str | None = None


# Structs the verifier treats as one argument kind under either name (so a
# rename between them changes nothing for programs): kernel/bpf/btf.c
# matches bpf_dynptr_kern in 6.1 and bpf_dynptr from 6.x as the dynptr argument.
STRUCT_ALIASES = {"bpf_dynptr_kern": "bpf_dynptr"}


def type_shape(text: str) -> tuple:
    """A C type as libbpf compares it: ('int',), ('struct', 'sk_buff', 1) ... qualifiers ignored."""
    words = [w for w in re.findall(r"[A-Za-z_]\w*|\*|\[\S*\]|\(\*\)", text) if w not in _QUALIFIERS]
    depth = sum(1 for w in words if w == "*" or w.startswith("["))
    if "(*)" in words:
        return ("funcptr", depth)
    core = [w for w in words if w != "*" and not w.startswith("[")]
    if core and core[0] in ("struct", "union", "enum") and len(core) > 1:
        return (core[0], STRUCT_ALIASES.get(core[1], core[1]), depth)
    if core and (all(w in _INT_WORDS for w in core) or (len(core) == 1 and _INT_TYPEDEF.match(core[0]))):
        return ("int", depth) if depth else ("int",)
    if core == ["void"]:
        return ("void", depth)
    return ("typedef", " ".join(core), depth)


def compare_types(old: str, new: str) -> str:
    """'same', 'int-width' (needs review) or 'changed'."""
    if re.sub(r"\s+", " ", old) == re.sub(r"\s+", " ", new):
        return "same"
    a, b = type_shape(old), type_shape(new)
    if a == b:
        return "int-width" if a[0] == "int" and len(a) == 1 else "same"
    return "changed"


def bpf_params(k: Kfunc) -> tuple[Param, ...]:
    """Parameters as BPF programs pass them (KF_IMPLICIT_ARGS ones are the verifier's)."""
    params = k.definition.signature.params if k.definition else ()
    if "KF_IMPLICIT_ARGS" in k.flags:
        params = tuple(p for p in params if p.type not in IMPLICIT_PARAM_TYPES)
    return params


def effective_flags(k: Kfunc, inv: Inventory) -> set[str]:
    """Flags by behaviour: a flag whose behaviour became the default (and was dropped) still applies."""
    flags = set(k.flags)
    if inv.tree_flags:
        for name, info in FLAGS.items():
            if info.default_from and name not in inv.tree_flags:
                flags.add(name)
    return flags


def signature_key(k: Kfunc) -> tuple:
    if not k.definition:
        return ()
    return (type_shape(k.definition.signature.return_type),) + tuple(type_shape(p.type) for p in bpf_params(k))


def diff(base: Inventory, head: Inventory, include_tests: bool = False) -> Iterator[Change]:
    old = {k.name: k for k in base.selected(include_tests)}
    new = {k.name: k for k in head.selected(include_tests)}
    yield from removed_and_renamed(old, new)
    for name in sorted(old.keys() & new.keys()):
        a, b = old[name], new[name]
        yield from signature_changes(a, b)
        yield from flag_changes(a, b, base, head)
        yield from prog_type_changes(a, b)
        yield from guard_changes(a, b)
        yield from moves(a, b)


def removed_and_renamed(old: dict[str, Kfunc], new: dict[str, Kfunc]) -> Iterator[Change]:
    added = [new[n] for n in sorted(new.keys() - old.keys())]
    for name in sorted(old.keys() - new.keys()):
        k = old[name]
        sets = {m.set_name for m in k.memberships}
        twin = next((a for a in added if sets & {m.set_name for m in a.memberships}
                     and k.definition and a.definition and signature_key(a) == signature_key(k)), None)
        if twin:
            added.remove(twin)
            yield Change("KFUNC_RENAMED", name, f"renamed to {twin.name} (same signature, same set)",
                         k.location, twin.location, twin.name)
        else:
            yield Change("KFUNC_REMOVED", name, "is no longer in any registered kfunc set",
                         k.location, None)


def signature_changes(a: Kfunc, b: Kfunc) -> Iterator[Change]:
    if not (a.definition and b.definition):
        return
    loc_a, loc_b = a.definition.location, b.definition.location
    pa, pb = bpf_params(a), bpf_params(b)
    if len(pa) != len(pb):
        rule = "KFUNC_PARAM_ADDED" if len(pb) > len(pa) else "KFUNC_PARAM_REMOVED"
        yield Change(rule, a.name, f"takes {len(pb)} parameters instead of {len(pa)}: "
                     f"({_plist(pa)}) became ({_plist(pb)})", loc_a, loc_b)
    ra, rb = a.definition.signature.return_type, b.definition.signature.return_type
    verdict = compare_types(ra, rb)
    if verdict == "changed":
        yield Change("KFUNC_RETURN_TYPE_CHANGED", a.name, f"returns '{rb}' instead of '{ra}'", loc_a, loc_b)
    elif verdict == "int-width":
        yield Change("KFUNC_NEEDS_REVIEW", a.name, f"return type '{ra}' became '{rb}' (integer width)",
                     loc_a, loc_b)
    for i, (x, y) in enumerate(zip(pa, pb), 1):
        verdict = compare_types(x.type, y.type)
        if verdict == "changed":
            yield Change("KFUNC_PARAM_TYPE_CHANGED", a.name,
                         f"parameter {i} ({y.name or x.name}) is '{y.type}' instead of '{x.type}'", loc_a, loc_b)
        elif verdict == "int-width":
            yield Change("KFUNC_NEEDS_REVIEW", a.name,
                         f"parameter {i} ({y.name or x.name}) changed from '{x.type}' to '{y.type}' "
                         "(integer width)", loc_a, loc_b)
        sa, sb = _SAME_SUFFIX.get(x.suffix, x.suffix), _SAME_SUFFIX.get(y.suffix, y.suffix)
        if sa == sb:
            continue
        tight = (sb in TIGHTENING_ADDED) or (sa in TIGHTENING_REMOVED)
        if not tight and (sa or None, sb or None) in RELAXING:
            continue
        what = f"parameter {i} '{x.name}' became '{y.name}'"
        if tight:
            yield Change("KFUNC_PARAM_ANNOTATION_TIGHTENED", a.name,
                         f"{what}: the verifier now {_suffix_effect(sa, sb)}", loc_a, loc_b)
        else:
            yield Change("KFUNC_NEEDS_REVIEW", a.name, f"{what}: argument annotation changed", loc_a, loc_b)


def _plist(params) -> str:
    return ", ".join(f"{p.type}{'' if p.type.endswith('*') else ' '}{p.name}".strip() for p in params) or "void"


def _suffix_effect(old: str, new: str) -> str:
    if new in ("__k", "__szk"):
        return "requires a known constant"
    if new == "__str":
        return "requires a constant string"
    if new == "__uninit":
        return "requires uninitialised memory"
    return f"no longer accepts what '{old}' allowed"


def flag_changes(a: Kfunc, b: Kfunc, base: Inventory, head: Inventory) -> Iterator[Change]:
    fa, fb = effective_flags(a, base), effective_flags(b, head)
    fa.discard("KF_DEPRECATED")
    fb.discard("KF_DEPRECATED")
    tight, relaxed, review = [], [], []
    for flag in sorted(fb - fa):
        effect = FLAGS[flag].adding if flag in FLAGS else "review"
        {"breaking": tight, "compatible": relaxed}.get(effect, review).append(f"+{flag}")
    for flag in sorted(fa - fb):
        effect = FLAGS[flag].removing if flag in FLAGS else "review"
        {"breaking": tight, "compatible": relaxed}.get(effect, review).append(f"-{flag}")
    loc_a, loc_b = a.location, b.location
    if tight:
        yield Change("KFUNC_FLAGS_TIGHTENED", a.name, f"flags {' '.join(tight)}: programs that "
                     "verified before may be rejected", loc_a, loc_b)
    if relaxed:
        yield Change("KFUNC_FLAGS_RELAXED", a.name, f"flags {' '.join(relaxed)}: compatible", loc_a, loc_b)
    if review:
        yield Change("KFUNC_NEEDS_REVIEW", a.name, f"flags {' '.join(review)}: policybot does not know "
                     "what the verifier does with this flag", loc_a, loc_b)


def prog_type_changes(a: Kfunc, b: Kfunc) -> Iterator[Change]:
    pa, pb = set(a.prog_types), set(b.prog_types)
    if "UNSPEC" in pb:
        return
    dropped = sorted(pa - pb)
    if "UNSPEC" in pa:
        dropped = ["every type but " + (", ".join(sorted(pb)) or "none")]
    if dropped:
        yield Change("KFUNC_PROG_TYPE_DROPPED", a.name, f"no longer registered for {', '.join(dropped)}",
                     a.location, b.location)


def guard_changes(a: Kfunc, b: Kfunc) -> Iterator[Change]:
    added = sorted(set(b.guards) - set(a.guards))
    if added:
        yield Change("KFUNC_CONFIG_GUARD_ADDED", a.name, f"now exists only with {' && '.join(added)}",
                     a.location, b.location)


def moves(a: Kfunc, b: Kfunc) -> Iterator[Change]:
    sa = {m.location.path for m in a.memberships}
    sb = {m.location.path for m in b.memberships}
    da = a.definition.location.path if a.definition else None
    db = b.definition.location.path if b.definition else None
    if sa != sb:
        yield Change("KFUNC_MOVED", a.name, f"registered in {', '.join(sorted(sb))} instead of "
                     f"{', '.join(sorted(sa))}", a.location, b.location)
    elif da and db and da != db:
        yield Change("KFUNC_MOVED", a.name, f"defined in {db} instead of {da}",
                     a.definition.location, b.definition.location)
