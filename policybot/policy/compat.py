"""The entries of a compat header (``policybot compat``), decided from data: each release's
BPF-visible prototypes, the renames of the history, the successors propose finds, and the
promises declared for each kfunc; then a self-check of the externs against each release.

A lineage is a chain of names (a kfunc and the names it had before it was renamed, or for a
successor ``NAME___v2`` the chain of ``NAME`` and then itself). In each release the newest name of
the chain that the release has is the one a program calls there; consecutive releases with the
same name and prototype are one variant. A lineage with one variant over the whole range needs
nothing. Every variant gets a weak extern ``KFUNC___vN`` (libbpf drops the suffix after the last
``___``, so the kernel is asked for KFUNC itself; N counts the prototypes KFUNC had in the range).

The wrapper takes the newest variant's prototype. An older variant is reached directly (same
prototype), with casts (same number of parameters, integers for integers and pointers for
pointers), or not at all: an argument added or removed, a parameter or return type of another
kind, a value returned where there was none. A release of the range with no variant at all (the
kfunc added within the range, or renamed or changed after the range's first release lacked it)
has nothing to call either. Then the wrapper is left out, unless the operator's policy file
gives a fallback body for the kfunc (``[compat."NAME"] fallback = "..."``): an untested last
resort is only for a lineage that every release of the range has.
"""

from __future__ import annotations

import re
from typing import Iterable

from ..btf.compat import incompatibility, text_shape
from ..kernel.ctype import ANNOTATIONS
from ..model.census import essential_name
from ..model.check import Shape, Target
from ..model.compat import Bridge, CParam, DeadExtern, Entry, EntryKind, Promise, Prototype, Variant

# a release's BPF-visible prototypes by kfunc
Prototypes = dict[str, Prototype]


_ANNOTATION = re.compile(r"\b(?:" + "|".join(sorted(ANNOTATIONS)) + r")\b\s*")


def c_type(text: str) -> str:
    """A source type as a program against vmlinux.h writes it: without ``__user``, ``__rcu``..."""
    return re.sub(r"\s+", " ", _ANNOTATION.sub("", text)).replace(" *", "*").replace("*", " *", 1).strip() \
        if _ANNOTATION.search(text) else text


def _norm(ctype: str) -> str:
    return re.sub(r"\s+", " ", ctype.replace("*", " * ")).strip()


def _key(proto: Prototype) -> tuple[str, tuple[str, ...]]:
    return _norm(proto.return_type), tuple(_norm(p.type) for p in proto.params)


def chains(renamed_from: dict[str, str], successors: dict[str, str], names: Iterable[str]) -> dict[str, list[str]]:
    """Newest name -> its chain of names, oldest first. ``renamed_from``: new -> old (history);
    ``successors``: NAME -> NAME___v2 (propose); ``names``: every kfunc of the range."""
    renamed_to = {old: new for new, old in renamed_from.items()}
    out: dict[str, list[str]] = {}
    for name in sorted(set(names)):
        if name in renamed_to:
            continue  # not the newest name of its chain
        chain = [name]
        while chain[0] in renamed_from and renamed_from[chain[0]] not in chain:
            chain.insert(0, renamed_from[chain[0]])
        out[name] = chain
    for base, succ in successors.items():
        if succ in out and base in out and base != succ and base not in out[succ]:
            out[succ] = [*out[base], *out[succ]]
    return out


def variants_of(chain: list[str], releases: list[str], protos: dict[str, Prototypes],
                promises: dict[str, dict[str, Promise]], numbering: dict[str, list]) -> list[Variant]:
    """The chain's variants, oldest first. ``numbering``: kfunc -> its prototypes in the order
    first seen (shared by every lineage, so that one extern name is one prototype)."""
    eras: list[tuple[str, tuple, list[str]]] = []
    for rel in releases:
        have = [n for n in chain if n in protos[rel]]
        if not have:
            eras.append(("", (), [rel]))
            continue
        name = have[-1]
        key = (name, _key(protos[rel][name]))
        if eras and (eras[-1][0], eras[-1][1]) == key:
            eras[-1][2].append(rel)
        else:
            eras.append((key[0], key[1], [rel]))
    out = []
    for i, (name, key, rels) in enumerate(eras):
        if not name:
            continue
        seen = numbering.setdefault(name, [])
        if key not in seen:
            seen.append(key)
        proto = protos[rels[-1]][name]
        ret = c_type(proto.return_type)
        params = tuple(CParam(c_type(p.type), p.name or f"arg{j}") for j, p in enumerate(proto.params, 1))
        after = releases.index(rels[-1]) + 1
        nxt = releases[after] if after < len(releases) else None
        gone = nxt if nxt and name not in protos[nxt] else None
        # the era may end because a newer name of the chain takes over: only another prototype
        # of this name is a change
        changed = nxt if nxt and not gone and _key(protos[nxt][name]) != key else None
        promise = promises.get(rels[-1], {}).get(name, Promise("unstable"))
        out.append(Variant(name, f"{name}___v{seen.index(key) + 1}", ret, params, tuple(rels), promise,
                           gone, changed))
    return out


def bridge(new: Variant, old: Variant) -> Variant:
    """``old`` with how the wrapper of ``new``'s prototype reaches it."""
    n, o = len(new.params), len(old.params)
    if n != o:
        if n > o:
            extra = ", ".join(p.c_text for p in _beyond(new.params, old.params))
            why = (f"{new.kfunc} takes {extra} beyond the {o} parameter{'s' if o != 1 else ''} of {old.kfunc}"
                   f" ({old.span}): an added argument has no neutral value to drop")
        else:
            extra = ", ".join(p.c_text for p in _beyond(old.params, new.params))
            why = (f"{old.kfunc} ({old.span}) takes {extra} that {new.kfunc} does not:"
                   f" a removed argument has no value to pass")
        return _with(old, Bridge.NONE, why)
    args, how = [], Bridge.DIRECT
    for i, (a, b) in enumerate(zip(new.params, old.params), 1):
        if _norm(a.type) == _norm(b.type):
            args.append(a.name)
            continue
        if not _castable(a.type, b.type):
            return _with(old, Bridge.NONE, f"parameter {i} is {b.type} in {old.kfunc} ({old.span}) "
                                           f"and {a.type} in {new.kfunc}: a cast would change its meaning")
        args.append(f"({b.type}){a.name}")
        how = Bridge.CAST
    call = f"{old.extern}({', '.join(args)})"
    if new.void:
        return _with(old, how, "", call)
    if old.void:
        return _with(old, Bridge.NONE, f"{old.kfunc} ({old.span}) returns nothing and {new.kfunc} "
                                       f"returns {new.return_type}: no value can be made up")
    if _norm(new.return_type) != _norm(old.return_type):
        if not _castable(new.return_type, old.return_type):
            return _with(old, Bridge.NONE, f"{old.kfunc} returns {old.return_type} and {new.kfunc} returns "
                                           f"{new.return_type}: a cast would change its meaning")
        return _with(old, Bridge.CAST, "", f"({new.return_type}){call}")
    return _with(old, how, "", call)


def _beyond(more: tuple[CParam, ...], fewer: tuple[CParam, ...]) -> list[CParam]:
    """The parameters of ``more`` that ``fewer`` lacks: by name when every name of ``fewer`` is
    in ``more`` in the same order (an argument added in the middle), else the trailing ones."""
    names = [p.name for p in more]
    at = [names.index(p.name) if p.name in names else -1 for p in fewer]
    if len(set(names)) == len(names) and -1 not in at and at == sorted(at):
        kept = {p.name for p in fewer}
        return [p for p in more if p.name not in kept]
    return list(more[len(fewer):])


def _castable(a: str, b: str) -> bool:
    ka, kb = text_shape(a).kind, text_shape(b).kind
    return ka == kb and ka in ("int", "ptr")


def _with(v: Variant, how: Bridge, why: str, call: str = "") -> Variant:
    from dataclasses import replace
    return replace(v, bridge=how, why=why, call=call)


def entry(chain: list[str], variants: list[Variant], releases: list[str], replaces: str | None,
          fallback: str | None) -> Entry | None:
    """The header's entry for one lineage (``variants`` oldest first), or None when nothing
    differs across the range."""
    if not variants or (len(variants) == 1 and variants[0].releases == tuple(releases)):
        return None
    newest = variants[-1]
    newest = _with(newest, Bridge.DIRECT, "", f"{newest.extern}({', '.join(p.name for p in newest.params)})")
    older = [bridge(newest, v) for v in reversed(variants[:-1])]
    names = {v.kfunc for v in variants}
    if replaces:
        kind = EntryKind.SUCCESSOR
    elif len(names) > 1:
        kind = EntryKind.RENAMED
    elif len(variants) > 1:
        kind = EntryKind.PROTOTYPE
    elif variants[0].first != releases[0]:
        kind = EntryKind.ADDED
    else:
        kind = EntryKind.REMOVED
    old_names = tuple(n for n in chain if n != newest.kfunc and n in names)
    blocked = [v.why for v in older if v.bridge == Bridge.NONE]
    covered = {r for v in variants for r in v.releases}
    lacking = spans([r for r in releases if r not in covered], releases)
    if kind in (EntryKind.ADDED, EntryKind.REMOVED):
        blocked.append(_unavailable(newest, releases))
    elif lacking:  # as for a kfunc added within the range: those releases have nothing to call
        blocked.append(_lacking([n for n in chain if n in names], lacking))
    variants = (newest, *older)
    if blocked and fallback is None:
        return Entry(newest.kfunc, kind, variants, old_names, replaces, False, "; ".join(blocked), lacking=lacking)
    # every release of the range has a variant: without a fallback the oldest is called
    # unconditionally (a kernel older than the range has none of them, and libbpf refuses the call)
    return Entry(newest.kfunc, kind, variants, old_names, replaces, True, "", fallback,
                 checked_last=fallback is not None, lacking=lacking)


def spans(some: list[str], releases: list[str]) -> tuple[str, ...]:
    """``some`` of ``releases`` as runs of consecutive releases: ``v6.1``, ``v6.2..v6.11``."""
    runs: list[list[str]] = []
    for rel in some:
        if runs and releases.index(runs[-1][-1]) + 1 == releases.index(rel):
            runs[-1].append(rel)
        else:
            runs.append([rel])
    return tuple(r[0] if len(r) == 1 else f"{r[0]}..{r[-1]}" for r in runs)


def _lacking(names: list[str], lacking: tuple[str, ...]) -> str:
    where = ", ".join(lacking)
    if len(names) == 1:
        return f"{names[0]} is not in {where}: nothing else does its work"
    return f"none of {', '.join(names)} is in {where}: nothing else does its work"


def _unavailable(v: Variant, releases: list[str]) -> str:
    if v.first != releases[0]:
        before = releases[:releases.index(v.first)]
        span = before[0] if len(before) == 1 else f"{before[0]}..{before[-1]}"
        return f"{v.kfunc} is not in {span}: nothing else does its work"
    return f"{v.kfunc} is gone from {v.gone_in}: nothing else does its work"


# -- the self-check --------------------------------------------------------------------------

def _shape(ret: str, params: Iterable[str]) -> Shape:
    return Shape("proto", text_shape(ret), tuple(text_shape(p) for p in params))


def _unresolved(v: Variant, t: Target) -> str:
    """Why ``v``'s extern does not resolve on ``t``, or "" when it does."""
    kfunc = essential_name(v.extern)
    tk = t.kfuncs.get(kfunc)
    if tk is None:
        return f"{kfunc} is not a kfunc of {t.name}"
    mine = _shape(v.return_type, (p.type for p in v.params))
    return incompatibility(mine, tk.shape or _shape(tk.return_type, tk.param_types)) or ""


def self_check(externs: list[Variant], targets: list[Target], entries: Iterable[Entry] = ()) -> list[DeadExtern]:
    """The header's externs against every release: a strong one must resolve on each, a weak
    one on at least one (libbpf's flavor and prototype rules, as ``check`` applies them); and a
    wrapper that calls its oldest variant untested must have a variant that resolves on each
    release (else the untested call is refused there)."""
    dead = []
    for v in externs:
        reasons = [f"{t.name}: {why}" for t in targets if (why := _unresolved(v, t))]
        resolved = len(targets) - len(reasons)
        if (v.weak and resolved == 0) or (not v.weak and reasons):
            dead.append(DeadExtern(v.extern, essential_name(v.extern), v.weak, tuple(reasons)))
    for e in entries:
        called = [v for v in e.variants if v.bridge != Bridge.NONE]
        if not e.wrapper or e.checked_last or not called:
            continue
        reasons = [f"{t.name}: none of {', '.join(v.extern for v in called)} resolves"
                   for t in targets if all(_unresolved(v, t) for v in called)]
        if reasons:
            last = called[-1]
            dead.append(DeadExtern(last.extern, essential_name(last.extern), last.weak, tuple(reasons),
                                   untested=f"__compat_{e.name}"))
    return dead
