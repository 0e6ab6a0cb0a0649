"""What changed for BPF programs between two inventories: small detectors, one per rule family.

Each detector yields ``Change``s; none knows about declarations or verdicts
(that is audit.py's job). Comparing an inventory with itself yields nothing.
A change names its rule's message variant and the fields it fills in; the
wording is rules.toml's (rules.render_message).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator, Mapping

from ..kernel.ctype import INT_WORDS, QUALIFIERS, type_shape
from ..kernel.flags import FLAGS, IMPLICIT_PARAM_STRUCTS, SUFFIXES, answered_effect, flag_effect, same_suffix
from ..model.inventory import Inventory, Kfunc, Location, Param
from ..kernel.semantics import BTF_H
from .rules import DEFAULT_VARIANT, render_message

Answers = Mapping[str, str] | None  # the policy's [semantics]: name -> kernel/flags.py ANSWERS


@dataclass(frozen=True)
class Change:
    rule: str
    kfunc: str
    variant: str  # which of the rule's messages (rules.toml); DEFAULT_VARIANT for a rule with one
    fields: Mapping[str, object] = field(hash=False)  # what the message template fills in
    base: Location | None = None
    head: Location | None = None
    new_name: str | None = None
    # one cause that touches many kfuncs: changes with the same rule and cause are one finding
    cause: str = ""
    kfuncs: tuple[str, ...] = ()  # a tree-level change (kfunc ""): the kfuncs it touches
    hunk: Location | None = None  # a change located in the base only: where its lines were in the head

    @property
    def message(self) -> str:
        return render_message(self.rule, self.variant, **self.fields)


def _change(rule: str, kfunc: str, variant: str, fields: Mapping[str, object], base: Location | None,
            head: Location | None, **rest) -> Change:
    return Change(rule, kfunc, variant, dict(fields), base, head, **rest)


_SIZED_INT = re.compile(r"^(?:__)?([us])(8|16|32|64)$|^(u?)int(8|16|32|64)_t$")
_WORD_BITS = {"char": 8, "short": 16, "long": 64}  # LP64, as BPF and its JITs


def int_kind(text: str) -> tuple[int, bool] | None:
    """(bits, signed) of an integer type policybot can size, else None (gfp_t, __be32, ...)."""
    words = [w for w in re.findall(r"[A-Za-z_]\w*", text) if w not in QUALIFIERS]
    if len(words) == 1 and (m := _SIZED_INT.match(words[0])):
        return (int(m.group(2)), m.group(1) == "s") if m.group(1) else (int(m.group(4)), m.group(3) != "u")
    if words in (["size_t"], ["ssize_t"]):
        return 64, words[0] == "ssize_t"
    if words and all(w in INT_WORDS for w in words) and not {"bool", "_Bool"} & set(words):
        sized = [_WORD_BITS[w] for w in words if w in _WORD_BITS]
        return (sized[0] if sized else 32), "unsigned" not in words
    return None


def compare_types(old: str, new: str) -> str:
    """'same', 'int-width' (needs review), 'signedness' (same width) or 'changed'."""
    if re.sub(r"\s+", " ", old) == re.sub(r"\s+", " ", new):
        return "same"
    a, b = type_shape(old), type_shape(new)
    if a == b:
        if a[0] != "int" or len(a) != 1:
            return "same"
        ka, kb = int_kind(old), int_kind(new)
        if ka and kb and ka[0] == kb[0]:
            return "same" if ka[1] == kb[1] else "signedness"
        return "int-width"
    return "changed"


def implicit_structs(inv: Inventory | None) -> tuple[str, ...]:
    sem = inv.semantics if inv else None
    if sem is not None and sem.implicit_structs is not None:
        return sem.implicit_structs
    return IMPLICIT_PARAM_STRUCTS


def bpf_params(k: Kfunc, inv: Inventory | None = None) -> tuple[Param, ...]:
    """Parameters as BPF programs pass them.

    For KF_IMPLICIT_ARGS kfuncs, as tools/bpf/resolve_btfids/main.c builds the
    BPF prototype: parameters up to the first one that, qualifiers skipped,
    points to a struct the tree lists as implicit (``const`` changes nothing).
    """
    params = k.definition.signature.params if k.definition else ()
    if "KF_IMPLICIT_ARGS" in k.flags:
        structs = implicit_structs(inv)
        for i, p in enumerate(params):
            shape = type_shape(p.type)
            if shape[0] == "struct" and shape[2] == 1 and shape[1] in structs:
                return params[:i]
    return params


def signature_key(k: Kfunc, inv: Inventory | None = None) -> tuple:
    if not k.definition:
        return ()
    return (type_shape(k.definition.signature.return_type),) + tuple(type_shape(p.type) for p in bpf_params(k, inv))


def _defined(inv: Inventory, kind: str) -> set[str] | None:
    """The flag (``kind`` "flag") or suffix names the tree defines; None when it does not say."""
    sem = inv.semantics
    if sem is None or (sem.flags if kind == "flag" else sem.suffixes) is None:
        return None
    return set(sem.flag_names if kind == "flag" else sem.suffix_names)


def _retired(base: Inventory, head: Inventory, kind: str) -> set[str]:
    """Names the base tree defines and the head tree does not: a change of the tree, not of each kfunc."""
    a, b = _defined(base, kind), _defined(head, kind)
    return a - b if a is not None and b is not None else set()


def _new_unknown(base: Inventory, head: Inventory, kind: str, answers: Answers = None) -> set[str]:
    """Names the head tree defines anew that neither policybot nor the operator (``answers``, the
    policy's [semantics]) knows."""
    a, b = _defined(base, kind), _defined(head, kind)
    known = FLAGS if kind == "flag" else SUFFIXES
    return {n for n in b - a if n not in known and n not in (answers or {})} \
        if a is not None and b is not None else set()


def retired_flags(base: Inventory, head: Inventory) -> set[str]:
    return _retired(base, head, "flag")


def new_unknown_flags(base: Inventory, head: Inventory, answers: Answers = None) -> set[str]:
    return _new_unknown(base, head, "flag", answers)


def retired_suffixes(base: Inventory, head: Inventory) -> set[str]:
    return _retired(base, head, "suffix")


def new_unknown_suffixes(base: Inventory, head: Inventory, answers: Answers = None) -> set[str]:
    return _new_unknown(base, head, "suffix", answers)


def diff(base: Inventory, head: Inventory, include_tests: bool = False, answers: Answers = None) -> Iterator[Change]:
    """The changes from ``base`` to ``head``; ``answers`` (the policy's [semantics]) say what the
    flags and suffixes policybot does not know do, as the operator recorded it."""
    old = {k.name: k for k in base.selected(include_tests)}
    new = {k.name: k for k in head.selected(include_tests)}
    yield from semantics_changes(base, head, old, new, answers)
    yield from removed_and_renamed(old, new, base, head)
    # each detector compares the kfunc's two records read in their trees' meaning: with the
    # same meaning (a patch that leaves btf.h and the verifier alone), equal records differ in nothing
    same_meaning = base.semantics == head.semantics
    for name in sorted(old.keys() & new.keys()):
        a, b = old[name], new[name]
        if same_meaning and a == b:
            continue
        yield from signature_changes(a, b, base, head, answers)
        yield from flag_changes(a, b, base, head, answers)
        yield from prog_type_changes(a, b)
        yield from filter_changes(a, b)
        yield from guard_changes(a, b)
        yield from moves(a, b)


def removed_and_renamed(old: dict[str, Kfunc], new: dict[str, Kfunc],
                        base: Inventory | None = None, head: Inventory | None = None) -> Iterator[Change]:
    added = [new[n] for n in sorted(new.keys() - old.keys())]
    for name in sorted(old.keys() - new.keys()):
        k = old[name]
        sets = {m.set_name for m in k.memberships}
        twin = next((a for a in added if sets & {m.set_name for m in a.memberships}
                     and k.definition and a.definition and signature_key(a, head) == signature_key(k, base)), None)
        if twin:
            added.remove(twin)
            yield _change("KFUNC_RENAMED", name, "old", {"new_name": twin.name},
                          k.location, twin.location, new_name=twin.name, cause=_registry_cause("renamed", k, False))
        else:
            yield _change("KFUNC_REMOVED", name, "registry", {}, k.location, None,
                          hunk=removal_point(k, old, new), cause=_registry_cause("removed", k, True))


def _registry_cause(kind: str, k: Kfunc, by_set: bool) -> str:
    """The cause of a removal (``by_set``: the kfuncs removed from the same sets are one) or of a
    rename (the kfuncs renamed in the same registration files are one: a renamed family such as
    scx_bpf_dispatch* spans the sets of its file)."""
    where = sorted({f"{m.location.path}:{m.set_name}" if by_set else m.location.path for m in k.memberships})
    return f"{kind}:{','.join(where)}"


def removal_point(k: Kfunc, old: dict[str, Kfunc], new: dict[str, Kfunc]) -> Location | None:
    """Where in the head the removed kfunc's registration line was (where a diff's hunk shows
    it removed, or replaced): the line after the head's line of the entry that preceded it in
    its set in the base, else the line of the entry that followed it, else the set's first
    entry in the head (entries that replaced it). None when the head has no entry of that set
    in that file."""
    m = k.memberships[0]
    siblings = sorted((n.location.line, name) for name, o in old.items() if name in new
                      for n in o.memberships if n.set_name == m.set_name and n.location.path == m.location.path)

    def head_line(name: str) -> int | None:
        return next((n.location.line for n in new[name].memberships
                     if n.set_name == m.set_name and n.location.path == m.location.path), None)

    before = [head_line(name) for line, name in reversed(siblings) if line < m.location.line]
    after = [head_line(name) for line, name in siblings if line > m.location.line]
    if (line := next((x for x in before if x is not None), None)) is not None:
        return Location(m.location.path, line + 1)
    if (line := next((x for x in after if x is not None), None)) is not None:
        return Location(m.location.path, line)
    # no entry of the base survived: the set's entries in the head replaced them there
    lines = [n.location.line for o in new.values() for n in o.memberships
             if n.set_name == m.set_name and n.location.path == m.location.path]
    return Location(m.location.path, min(lines)) if lines else None


def _type_cause(kind: str, old: str, new: str) -> str:
    """The cause of a type change: the same change of type is one cause, whichever kfunc, parameter
    or return value it reaches (integers by width and sign: '__u32' -> 'u64' is 'u32->u64')."""
    def name(text: str) -> str:
        k = int_kind(text)
        return f"{'s' if k[1] else 'u'}{k[0]}" if k else re.sub(r"\s+", " ", text.strip())
    return f"{kind}:{name(old)}->{name(new)}"


def signature_changes(a: Kfunc, b: Kfunc, base: Inventory | None = None,
                      head: Inventory | None = None, answers: Answers = None) -> Iterator[Change]:
    """One change per edit of the prototype. A parameter added or removed is the one change of
    the parameter list: its message shows both lists, and comparing the parameters by position
    past the edit would report the same edit again as retyped parameters."""
    if not (a.definition and b.definition):
        return
    loc_a, loc_b = a.definition.location, b.definition.location
    pa, pb = bpf_params(a, base), bpf_params(b, head)
    if len(pa) != len(pb):
        rule = "KFUNC_PARAM_ADDED" if len(pb) > len(pa) else "KFUNC_PARAM_REMOVED"
        old, new = _plist(pa), _plist(pb)
        yield _change(rule, a.name, DEFAULT_VARIANT, {"count": len(pb), "s": "s" if len(pb) != 1 else "",
                      "old_count": len(pa), "old_params": old, "new_params": new}, loc_a, loc_b,
                      cause=f"params:({old})->({new})")
    ra, rb = a.definition.signature.return_type, b.definition.signature.return_type
    verdict = compare_types(ra, rb)
    types = {"old": ra, "new": rb}
    if verdict == "changed":
        yield _change("KFUNC_RETURN_TYPE_CHANGED", a.name, DEFAULT_VARIANT, types, loc_a, loc_b,
                      cause=_type_cause("type", ra, rb))
    elif verdict == "int-width":
        yield _change("KFUNC_NEEDS_REVIEW", a.name, "return_width", types, loc_a, loc_b,
                      cause=_type_cause("width", ra, rb))
    elif verdict == "signedness":
        yield _change("KFUNC_SIGNEDNESS_CHANGED", a.name, "return", types, loc_a, loc_b,
                      cause=_type_cause("sign", ra, rb))
    if len(pa) == len(pb):
        yield from _param_changes(a, pa, pb, base, head, loc_a, loc_b, answers)


def _param_changes(a: Kfunc, pa: tuple[Param, ...], pb: tuple[Param, ...], base: Inventory | None,
                   head: Inventory | None, loc_a: Location, loc_b: Location,
                   answers: Answers = None) -> Iterator[Change]:
    """The parameters of a list of the same length, compared one by one."""
    # unknown suffixes whose coming or going is one tree-level change (semantics_changes)
    tree_level = {s for s in new_unknown_suffixes(base, head, answers) | retired_suffixes(base, head)
                  if s not in SUFFIXES} if base and head else set()
    for i, (x, y) in enumerate(zip(pa, pb), 1):
        verdict = compare_types(x.type, y.type)
        param = {"index": i, "name": y.name or x.name, "old": x.type, "new": y.type}
        if verdict == "changed":
            yield _change("KFUNC_PARAM_TYPE_CHANGED", a.name, DEFAULT_VARIANT, param, loc_a, loc_b,
                          cause=_type_cause("type", x.type, y.type))
        elif verdict == "int-width":
            yield _change("KFUNC_NEEDS_REVIEW", a.name, "param_width", param, loc_a, loc_b,
                          cause=_type_cause("width", x.type, y.type))
        elif verdict == "signedness":
            yield _change("KFUNC_SIGNEDNESS_CHANGED", a.name, "param", param, loc_a, loc_b,
                          cause=_type_cause("sign", x.type, y.type))
        ra_, rb_ = x.suffix, y.suffix  # as each revision's verifier matches them (the scanner reads it)
        if rb_ in tree_level or ra_ in tree_level or _renamed_suffix(ra_, rb_, base, head):
            continue
        sa, sb = same_suffix(ra_), same_suffix(rb_)
        if sa == sb:
            continue
        added, removed = _suffix_effect(sb, True, answers), _suffix_effect(sa, False, answers)
        names = {"index": i, "old_name": x.name, "new_name": y.name}
        if "breaking" in (added, removed):
            variant = _SUFFIX_EFFECT.get(sb, "narrower")
            yield _change("KFUNC_PARAM_ANNOTATION_TIGHTENED", a.name, variant,
                          names | ({"old_suffix": sa} if variant == "narrower" else {}), loc_a, loc_b,
                          cause=f"suffix:{sa or '-'}->{sb or '-'}")
        elif "review" in (added, removed) or (sa and sb):
            yield _change("KFUNC_NEEDS_REVIEW", a.name, "annotation", names, loc_a, loc_b,
                          cause=f"suffix:{sa or '-'}->{sb or '-'}")


def _renamed_suffix(old: str, new: str, base: Inventory | None, head: Inventory | None) -> bool:
    """A suffix the head's verifier dropped, renamed to the one that carries its meaning (one tree-level change)."""
    return bool(base and head and old in retired_suffixes(base, head) and old != new
                and SUFFIXES.get(old) and SUFFIXES[old].same_as == new)


def _plist(params) -> str:
    return ", ".join(p.c_text for p in params) or "void"


# What a suffix added asks of the caller: the KFUNC_PARAM_ANNOTATION_TIGHTENED message variant
# ("narrower" for any other: the old suffix allowed more).
_SUFFIX_EFFECT = {"__k": "known_constant", "__szk": "known_constant", "__str": "constant_string",
                  "__uninit": "uninitialised"}


def _suffix_effect(suffix: str, added: bool, answers: Answers) -> str:
    """What a parameter gaining (or losing) ``suffix`` does: policybot's table, else the operator's answer."""
    if not suffix:
        return "compatible"
    if suffix in SUFFIXES:
        return SUFFIXES[suffix].adding if added else SUFFIXES[suffix].removing
    answer = (answers or {}).get(suffix)
    return answered_effect(answer, added) if answer else "review"


def flag_changes(a: Kfunc, b: Kfunc, base: Inventory, head: Inventory, answers: Answers = None) -> Iterator[Change]:
    # a flag the head tree no longer defines, or a new one policybot does not know,
    # is one tree-level change (semantics_changes), not one per kfunc
    tree_level = retired_flags(base, head) | new_unknown_flags(base, head, answers) | {"KF_DEPRECATED"}
    fa, fb = set(a.flags) - tree_level, set(b.flags) - tree_level
    tight, relaxed, review, unread = [], [], [], []
    for sign, flags, inv in (("+", sorted(fb - fa), head), ("-", sorted(fa - fb), base)):
        for flag in flags:
            if inv.semantics is not None and inv.semantics.enforced(flag) is False:
                unread.append(f"{sign}{flag}")  # the verifier of that tree never tests it
                continue
            effect = flag_effect(flag, added=sign == "+", answers=answers)
            {"breaking": tight, "compatible": relaxed}.get(effect, review).append(f"{sign}{flag}")
    loc_a, loc_b = a.location, b.location
    # one edit of the kfunc's flags is one cause, whatever each flag does: the kfuncs given the
    # same whole delta are one finding per rule (two findings of one rule for one kfunc are one)
    cause = "flags:" + " ".join(sorted(tight + relaxed + unread + review, key=lambda d: (d[0] != "+", d[1:])))

    def change(rule: str, deltas: list[str], variant: str) -> Change:
        return _change(rule, a.name, variant, {"deltas": " ".join(deltas)}, loc_a, loc_b, cause=cause)

    if tight:
        yield change("KFUNC_FLAGS_TIGHTENED", tight, "registry")
    if relaxed:
        yield change("KFUNC_FLAGS_RELAXED", relaxed, "compatible")
    if unread:
        yield change("KFUNC_FLAGS_RELAXED", unread, "untested")
    if review:
        yield change("KFUNC_NEEDS_REVIEW", review, "flags")


def prog_type_changes(a: Kfunc, b: Kfunc) -> Iterator[Change]:
    pa, pb = set(a.prog_types), set(b.prog_types)
    if "UNSPEC" in pb:
        return
    dropped = sorted(pa - pb)
    if "UNSPEC" in pa:
        variant, fields = ("all_but", {"kept": ", ".join(sorted(pb))}) if pb else ("all", {})
    elif dropped:
        variant, fields = "types", {"prog_types": ", ".join(dropped)}
    else:
        return
    yield _change("KFUNC_PROG_TYPE_DROPPED", a.name, variant, fields, a.location, b.location)


def _filters(m) -> list[str]:
    return [f for f in m.filter.split(",") if f]


def filter_changes(a: Kfunc, b: Kfunc) -> Iterator[Change]:
    """A ``.filter`` callback the kfunc's registration did not have.

    The verifier asks each filter of a program type's hook about every call
    (7.2 kernel/bpf/btf.c:9074 __btf_kfunc_is_allowed), so a filter can only
    narrow; it narrows what programs did before only on the program types the
    kfunc was registered for at the base. A filter dropped is compatible. One
    cause per filter name and file (a static name is its file's).
    """
    before = {f for m in a.memberships for f in _filters(m)}
    old_types = set(a.prog_types)
    added: dict[tuple[str, str], Location] = {}
    for m in b.memberships:
        if not (old_types & set(m.prog_types) or "UNSPEC" in old_types | set(m.prog_types)):
            continue  # a registration for new program types: nothing was callable there to refuse
        for name in _filters(m):
            if name not in before:
                added.setdefault((name, m.location.path), m.location)
    was = ", ".join(sorted(before))
    for (name, path), loc in sorted(added.items()):
        fields = {"filter": name, "path": path} | ({"before": was} if before else {})
        yield _change("KFUNC_FILTER_ADDED", a.name, "replaced" if before else "new", fields,
                      a.location, loc, cause=f"filter:{name}:{path}:{was}")


def guard_changes(a: Kfunc, b: Kfunc) -> Iterator[Change]:
    added = sorted(set(b.guards) - set(a.guards))
    if added:
        yield _change("KFUNC_CONFIG_GUARD_ADDED", a.name, DEFAULT_VARIANT, {"guards": " && ".join(added)},
                      a.location, b.location, cause=f"guard:{' && '.join(added)}:{b.location.path}")


def moves(a: Kfunc, b: Kfunc) -> Iterator[Change]:
    sa = {m.location.path for m in a.memberships}
    sb = {m.location.path for m in b.memberships}
    da = a.definition.location.path if a.definition else None
    db = b.definition.location.path if b.definition else None
    # a registration gained in another file is not a move: only losing a file is
    if sa - sb:
        fields = {"new_files": ", ".join(sorted(sb)), "old_files": ", ".join(sorted(sa))}
        yield _change("KFUNC_MOVED", a.name, "registered", fields, a.location, b.location,
                      cause=f"registered:{fields['old_files']}->{fields['new_files']}")
    elif da and db and da != db:
        yield _change("KFUNC_MOVED", a.name, "defined", {"new_path": db, "old_path": da},
                      a.definition.location, b.definition.location, cause=f"defined:{da}->{db}")


# -- changes of the tree's own semantics: one change per cause ---------------------------------

def _quote(loc: Location, comment: str, rev: str) -> str:
    """Where a tree defines a name, with its definition comment: a field of the messages below."""
    return f"{loc} ({rev}): \"{comment}\"" if comment else f"{loc} ({rev})"


# Argument suffixes that give a pointer a kind of its own in 7.2's get_kfunc_ptr_arg_type
# (kernel/bpf/verifier.c:11421): ignored (__ign), constant string, refcounted kptr, irq flag,
# iterator, uninitialised dynptr; and __map, which is trust-checked but always gets the
# program's own map pointer, trusted by construction.
_OWN_KIND_SUFFIXES = ("__ign", "__str", "__refcounted_kptr", "__irq_flag", "__iter", "__uninit", "__map")
_SIZE_SUFFIXES = ("__sz", "__szk")  # the pointer before one is memory (KF_ARG_PTR_TO_MEM_SIZE)


def trust_checked_params(k: Kfunc, inv: Inventory) -> tuple[Param, ...]:
    """BPF-visible parameters the verifier holds to "trusted" (KF_ARG_PTR_TO_BTF_ID and kin).

    As 7.2 kernel/bpf/verifier.c classifies kfunc arguments (get_kfunc_ptr_arg_type;
    the trusted check is the KF_ARG_PTR_TO_BTF_ID case of check_kfunc_args): a pointer
    to a struct, except the program's context (bpf_types.h's context type, or the
    kernel one bpf_cast_to_kern_ctx returns trusted), the structs with their own
    kind (kf_arg_btf_ids: bpf_dynptr, bpf_list_head, ...), an iterator kfunc's
    first argument, memory with a size (followed by __sz/__szk), a struct of scalars
    its file defines (Definition.scalar_structs) and the suffixed kinds above.
    Scalars, void * and scalar pointers are memory; callbacks are code.
    """
    params = bpf_params(k, inv)
    sem = inv.semantics
    own = set(sem.arg_structs or ()) if sem else set()
    ctx = (sem.ctx_structs(k.prog_types) if sem else None) or set()
    iterator = any(f in k.flags for f in ("KF_ITER_NEW", "KF_ITER_NEXT", "KF_ITER_DESTROY"))
    out = []
    for i, p in enumerate(params):
        shape = type_shape(p.type)
        if shape[0] not in ("struct", "union") or shape[2] != 1:
            continue
        if shape[1] in own or shape[1] in ctx or (iterator and i == 0) or p.suffix in _OWN_KIND_SUFFIXES:
            continue
        if k.definition and shape[1] in k.definition.scalar_structs:
            continue  # memory the program fills (verifier.c __btf_type_is_scalar_struct)
        if i + 1 < len(params) and params[i + 1].suffix in _SIZE_SUFFIXES:
            continue
        out.append(p)
    return tuple(out)


def _definition_point(d, sb, sh, kind: str) -> Location | None:
    """Where in the head a definition the base had (``d``, a flag or a suffix: ``kind``) was: the
    head's line of the definition that followed it in its file in the base (the comment above a
    definition may stay when the definition goes), else the line after the one that preceded
    it. None when none of its file's definitions survives."""
    def places(sem) -> dict[str, Location]:
        names = sem.flag_names if kind == "flag" else sem.suffix_names
        defs = {n: (sem.flag(n) if kind == "flag" else sem.suffix(n)) for n in names}
        return {n: x.location for n, x in defs.items() if x.location.path == d.location.path}
    now, was = places(sh), places(sb)
    mine = sorted((loc.line, n) for n, loc in was.items() if n in now)
    nxt = [now[n].line for line, n in mine if line > d.location.line]
    if nxt:
        return Location(d.location.path, nxt[0])
    prev = [now[n].line for line, n in reversed(mine) if line < d.location.line]
    return Location(d.location.path, prev[0] + 1) if prev else None


def semantics_changes(base: Inventory, head: Inventory, old: dict[str, Kfunc],
                      new: dict[str, Kfunc], answers: Answers = None) -> Iterator[Change]:
    """Flags and suffixes the trees define differently: each one change listing the kfuncs it touches."""
    sb, sh = base.semantics, head.semantics
    if sb is None or sh is None:
        return
    kept = sorted(old.keys() & new.keys())
    for flag in sorted(retired_flags(base, head)):
        d = sb.flag(flag)
        info = FLAGS.get(flag)
        was = {"flag": flag, "definition": _quote(d.location, d.comment, base.rev), "btf_h": BTF_H, "rev": head.rev}
        if info and info.retired == "default":
            exempt = {flag, *info.default_exempt}
            hit = tuple(n for n in kept if not exempt & (set(old[n].flags) | set(new[n].flags))
                        and trust_checked_params(new[n], head))
            if hit:
                yield _change("KFUNC_DEFAULT_CHANGED", "", DEFAULT_VARIANT,
                              was | {"meaning": info.meaning, "exempt": ", ".join(info.default_exempt)},
                              d.location, None, cause=f"default:{flag}", kfuncs=hit,
                              hunk=_definition_point(d, sb, sh, "flag"))
        else:
            hit = tuple(n for n in kept if flag in old[n].flags)
            if hit:
                yield _change("KFUNC_NEEDS_REVIEW", "", "retired_flag", was, d.location, None,
                              cause=f"retired-flag:{flag}", kfuncs=hit, hunk=_definition_point(d, sb, sh, "flag"))
    for flag in sorted(new_unknown_flags(base, head, answers)):
        d = sh.flag(flag)
        hit = tuple(sorted(n for n, k in new.items() if flag in k.flags))
        fields = {"flag": flag, "definition": _quote(d.location, d.comment, head.rev)}
        variant = "new_flag_bit" if d.bit is not None else "new_flag"
        yield _change("KFUNC_NEEDS_REVIEW", "", variant, fields | ({"bit": d.bit} if d.bit is not None else {}),
                      None, d.location, cause=f"new-flag:{flag}", kfuncs=hit)
    for suffix in sorted(retired_suffixes(base, head)):
        d = sb.suffix(suffix)
        info = SUFFIXES.get(suffix)
        was = {"suffix": suffix, "definition": _quote(d.location, d.comment, base.rev)}
        carried = [n for n in kept if old[n].definition and new[n].definition
                   and any(p.suffix == suffix for p in bpf_params(old[n], base))]
        if info and info.same_as and sh.suffix(info.same_as):
            to = sh.suffix(info.same_as)
            hit = tuple(n for n in carried if any(
                x.suffix == suffix and y.suffix == info.same_as
                for x, y in zip(bpf_params(old[n], base), bpf_params(new[n], head))))
            if hit:
                yield _change("KFUNC_SUFFIX_RENAMED", "", DEFAULT_VARIANT,
                              was | {"same_as": info.same_as, "same_as_location": str(to.location)},
                              d.location, to.location, cause=f"suffix:{suffix}->{info.same_as}", kfuncs=hit)
        elif carried:
            yield _change("KFUNC_NEEDS_REVIEW", "", "retired_suffix", was, d.location, None,
                          cause=f"retired-suffix:{suffix}", kfuncs=tuple(carried),
                          hunk=_definition_point(d, sb, sh, "suffix"))
    for suffix in sorted(new_unknown_suffixes(base, head, answers)):
        d = sh.suffix(suffix)
        hit = tuple(sorted(n for n, k in new.items() if k.definition
                           and any(p.suffix == suffix for p in bpf_params(k, head))))
        yield _change("KFUNC_NEEDS_REVIEW", "", "new_suffix",
                      {"suffix": suffix, "definition": _quote(d.location, d.comment, head.rev)}, None, d.location,
                      cause=f"new-suffix:{suffix}", kfuncs=hit)
