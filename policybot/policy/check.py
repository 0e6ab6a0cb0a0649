"""``policybot check``: which kfuncs a compiled BPF object can rely on, per target kernel.

object (policybot.btf.program) + target (a source tree at a revision, through
the inventory and the promises valid there; or a compiled kernel's BTF) ->
one verdict per extern and per object, decided as libbpf decides: a strong
extern that is missing or incompatible fails the load, a weak one is left
unresolved. The policy (level, promise end, deprecation) comes from the
source tree when there is one.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
import os
import re
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..btf.compat import btf_shape, incompatibility, text_shape
from ..btf.kfuncs import CompiledKernel
from ..errors import ConfigError, InputError
from ..kernel.flags import FLAGS
from ..model.check import (UNDECLARED, BpfObject, CheckResult, CrossCheck, Extern, ExternResult, PolicyView,
                           Shape, Target, TargetKfunc)
from ..model.findings import Finding
from ..model.inventory import Location
from ..model.vocabulary import ExternStatus, Level, PromiseState
from .config import read_overlay
from .diff import bpf_params
from .judge import Judge
from .rules import render_message

if TYPE_CHECKING:
    from .audit import Auditor
    from .config import Policy

# flags that ask nothing of the program calling the kfunc
_SILENT_FLAGS = ("KF_DEPRECATED", "KF_FASTCALL", "KF_IMPLICIT_ARGS")


def check(obj: BpfObject, target: Target, judge: Judge) -> CheckResult:
    results: list[ExternResult] = []
    findings: list[Finding] = []

    def finding(rule: str, level_key: PromiseState, extern: str, message: str, loc) -> None:
        f = judge.finding(rule, extern, message, None, Location(loc.file, loc.line) if loc else None, None,
                          state=level_key, object=obj.path, target=target.name)
        if f:
            findings.append(f)

    for sym in obj.undescribed:
        finding("EXTERN_WITHOUT_BTF", "unstable", sym, render_message("EXTERN_WITHOUT_BTF", symbol=sym), None)
    for ext in obj.externs:
        status, reason, tk = resolve(ext, target, obj)
        policy = target.policy.get(ext.kfunc, UNDECLARED) if tk and tk.name in target.kfuncs else UNDECLARED
        loc = ext.where
        asked = ext.name if ext.kfunc == ext.name else f"{ext.name} (kfunc {ext.kfunc})"
        first = target.first_release.get(ext.kfunc) if tk is not None else None
        # a function that is no kfunc (an address use) has no declared level
        declared = target.declared and (tk is None or tk.name in target.kfuncs)
        results.append(ExternResult(ext, status, reason, tk, policy, first, declared, _needs(tk)))
        if status != ExternStatus.OK:
            # the level of the kfunc the extern names on the target (unstable when it has none)
            if ext.weak:
                finding("EXTERN_UNRESOLVED", policy.level_key, ext.name,
                        render_message("EXTERN_UNRESOLVED", extern=asked, reason=reason), loc)
            elif status == ExternStatus.MISSING:
                finding("EXTERN_MISSING", policy.level_key, ext.name,
                        render_message("EXTERN_MISSING", extern=asked, reason=reason), loc)
            else:
                finding("EXTERN_INCOMPATIBLE", policy.level_key, ext.name,
                        render_message("EXTERN_INCOMPATIBLE", extern=asked, target=target.name,
                                       prototype=tk.prototype, reason=reason), loc)
        elif policy.level in (Level.DEPRECATING, Level.DEPRECATED):
            said = {"extern": asked, "level": policy.level, "target": target.name}
            if policy.replacement:
                said["replacement"] = policy.replacement
            if policy.earliest_removal:
                said["removal"] = policy.earliest_removal
            variant = "_".join(k for k in ("replacement", "removal") if k in said) or "plain"
            finding("EXTERN_DEPRECATED", policy.level_key, ext.name,
                    render_message("EXTERN_DEPRECATED", variant, **said), loc)
    return CheckResult(obj, target, tuple(results), tuple(findings))


def resolve(ext: Extern, target: Target, obj: BpfObject) -> tuple[ExternStatus, str, TargetKfunc | None]:
    """What libbpf and the verifier make of one extern on ``target``: its status, why it does not
    resolve, and what it resolves to.

    A call (BPF_PSEUDO_KFUNC_CALL) needs a kfunc: a function of a registered kfunc set. An
    extern whose address alone is loaded (ld_imm64, BPF_PSEUDO_BTF_ID) needs any kernel
    function of that name: libbpf looks the name up among all the BTF's FUNCs, and the verifier
    takes the address without asking any kfunc set (kernel/bpf/verifier.c: check_pseudo_btf_id).
    Either way libbpf compares the prototypes when it has both."""
    name = ext.kfunc
    tk = target.kfuncs.get(name)
    if tk is not None and not tk.callable and ext.called:
        return (ExternStatus.MISSING, f"{name} is tagged bpf_kfunc in {target.name}, but its set is registered "
                f"only for fmod_ret ({target.source or 'the source'} says so): the verifier refuses the call", None)
    if tk is None and ext.address_only:
        tk = target.functions.get(name)
        if tk is None:
            return ExternStatus.MISSING, f"{name} is no kernel function of {target.name}", None
    if tk is None:
        return ExternStatus.MISSING, _missing_reason(name, target), None
    if tk.shape is None and not tk.return_type and not tk.param_types and tk.name not in target.kfuncs:
        return ExternStatus.OK, "", tk  # a function whose prototype the target does not keep
    shape = tk.shape or _source_shape(tk, obj)
    reason = incompatibility(btf_shape(obj.btf, ext.proto), shape)
    return (ExternStatus.INCOMPATIBLE if reason else ExternStatus.OK), reason, tk


def _missing_reason(name: str, target: Target) -> str:
    """Why a kfunc is not there: with the source a compiled kernel was built from, the config
    guards of the source's kfunc. With the build's config, which of them it left out or built
    as a module (whose .ko was not given); without it, that it needs them, no more."""
    if name not in target.not_built:
        return f"{name} is not a kfunc of {target.name}"
    guards = target.not_built[name]
    head = f"{name} is not a kfunc of {target.name}: {target.source} has it behind {' && '.join(guards)}"
    config = target.build_config
    if guards and config is None:
        return f"{head} (not built in, or in a module not given)"
    values = {g: config.get(g, "n") for g in guards if re.fullmatch(r"CONFIG_\w+", g)} if config else {}
    if unset := [g for g, v in values.items() if v == "n"]:
        return f"{head}, which this build did not set ({', '.join(unset)})"
    if module := [g for g, v in values.items() if v == "m"]:
        where = target.not_built_in.get(name, "")
        if where.endswith(".ko"):
            return f"{head}; this build has {module[0]}=m: it is in module {where}, give its .ko with --btf"
        return (f"{head}; this build has {module[0]}=m: it is in a module"
                + (f" (built from {where})" if where else "") + ", give its .ko with --btf")
    return (f"{name} is not a kfunc of {target.name}, though {target.source} has it with no config guard "
            f"that explains its absence")


def dead_fallbacks(results: list[CheckResult], judge: Judge) -> list[Finding]:
    """Weak externs that resolve on none of an object's targets (two or more): the code behind
    their bpf_ksym_exists() never runs on any of them. The finding points at the extern's
    declaration (the object's DWARF), else where it is used."""
    from ..btf.program import declaration_lines
    by_object: dict[str, list[CheckResult]] = {}
    for v in results:
        by_object.setdefault(v.object.path, []).append(v)
    out = []
    for path, group in by_object.items():
        if len({v.target.name for v in group}) < 2:
            continue
        dead: dict[str, list[ExternResult]] = {}
        for v in group:
            for r in v.externs:
                if r.extern.weak:
                    dead.setdefault(r.extern.name, []).append(r)
        dead = {n: rs for n, rs in dead.items() if not any(r.resolved for r in rs)}
        if not dead:
            continue
        obj = group[0].object
        lines = declaration_lines(obj.source or obj.path, set(dead), obj.path)
        for n, rs in dead.items():
            ext = rs[0].extern
            asked = ext.name if ext.kfunc == ext.name else f"{ext.name} (kfunc {ext.kfunc})"
            by_status: dict[str, list[str]] = {}
            for v, r in zip(group, rs):
                by_status.setdefault(str(r.status), []).append(v.target.name)
            reasons = "; ".join(f"{s} on {', '.join(ts)}" for s, ts in by_status.items())
            loc = lines.get(n) or ext.where
            f = judge.finding("EXTERN_DEAD_FALLBACK", n, render_message(
                "EXTERN_DEAD_FALLBACK", extern=asked, count=len(group), reasons=reasons), None,
                Location(loc.file, loc.line) if loc else None, None, state=PromiseState.UNSTABLE, object=path,
                target=", ".join(v.target.name for v in group))
            if f:
                out.append(f)
    return out


def _needs(tk: TargetKfunc | None) -> tuple[str, ...]:
    """What the kfunc's flags ask of the program calling it."""
    flags = tk.flags if tk else None
    return tuple(FLAGS[f].meaning for f in (flags or ()) if f in FLAGS and f not in _SILENT_FLAGS)


def _source_shape(tk: TargetKfunc, obj: BpfObject) -> Shape:
    """A source definition's BPF-visible prototype; typedef names are looked up in the object."""
    return Shape("proto", text_shape(tk.return_type, obj.btf),
                 tuple(text_shape(p, obj.btf) for p in tk.param_types))


# -- targets --------------------------------------------------------------------------

def btf_target(kernel: CompiledKernel, policy_from: Target | None = None,
               fmodret_only: tuple[str, ...] = (), config: dict[str, str] | None = None,
               modules: dict[str, str] | None = None) -> Target:
    """A compiled kernel; flags, program types and policy from a source target when given, and
    what that source says this build lacks (``not_built``: the source's kfuncs missing here, with
    their config guards) or tags without letting programs call it (``fmodret_only``). An
    address-only extern resolves against any FUNC of the kernel's BTF (``kernel.functions``)."""
    src = policy_from.kfuncs if policy_from else {}
    kfuncs = {n: TargetKfunc(n, k.prototype, k.shape, flags=src[n].flags if n in src else None,
                             prog_types=src[n].prog_types if n in src else None,
                             location=f"{k.origin} [btf {k.btf_id}]", callable=n not in fmodret_only)
              for n, k in kernel.kfuncs.items()}
    functions = {n: TargetKfunc(n, n + "(...)", None, location="btf") for n in kernel.functions}
    functions |= {n: TargetKfunc(n, p.prototype, p.shape, location=f"{p.origin} [btf {p.btf_id}]")
                  for n, p in kernel.prototypes.items()}
    not_built = {n: k.guards for n, k in src.items() if n not in kernel.kfuncs}
    not_built_in = {n: src[n].location.rsplit(":", 1)[0] for n in not_built if src[n].location}
    not_built_in |= {n: m for n, m in (modules or {}).items() if n in not_built}
    return Target(kernel.name, "btf", kfuncs, policy_from.policy if policy_from else {},
                  policy_from.first_release if policy_from else {}, declared=policy_from is not None,
                  functions=functions, not_built=not_built, source=policy_from.name if policy_from else "",
                  not_built_in=not_built_in, build_config=config, ident=kernel.ident())


def source_targets(repo_path: str, revs: list[str], releases_glob: str | None, policy: Policy,
                   auditor: Callable[[], Auditor], today: dt.date | None,
                   cache_dir: str | None = None, functions: frozenset[str] = frozenset()) -> list[Target]:
    """Targets for revisions of a source tree: the inventory and the promises valid there, and
    the definitions of ``functions`` (names whose address alone an object loads) in its .c files.

    A target is cached as JSON under a key naming everything it depends on
    (commit, release tags, policy and overlay, the day, policybot's own
    code), so a warm check opens the repository but reads no tree and does
    not load the state database.
    """
    import pygit2

    from ..kernel.gitrepo import open_repo, resolve

    repo = open_repo(repo_path)
    today = today or dt.date.today()
    tags = sorted((r.shorthand, str(r.target)) for r in repo.references.iterator(pygit2.enums.ReferenceFilter.TAGS))
    names = list(revs)
    if releases_glob:
        from .calendar import RELEASE_TAG, release_number
        matched = [n for n, _ in tags if RELEASE_TAG.match(n) and fnmatch.fnmatchcase(n, releases_glob)]
        if not matched:
            raise InputError(f"{repo_path}: no release tag matches {releases_glob!r} "
                             f"(tags: {', '.join(n for n, _ in tags) or 'none'})")
        matched.sort(key=release_number)
        names += [n for n in matched if n not in names]
    commits = {rev: str(resolve(repo, rev).id) for rev in names}
    overlay = ""
    if policy.overlay:
        try:
            overlay = read_overlay(policy)[1]
        except ConfigError:
            overlay = "unreadable"  # the Auditor names the file when it reads it
    common = [repr(policy), overlay, today.isoformat(), tags, _code_digest(), os.path.realpath(repo_path),
              sorted(functions)]
    out: list[Target | None] = []
    keys = {}
    for rev in names:
        keys[rev] = hashlib.sha256(json.dumps([rev, commits[rev], *common]).encode()).hexdigest()
        out.append(_target_get(cache_dir, keys[rev]))
    if all(out):
        return out  # type: ignore[return-value]
    computed = _compute_source_targets(auditor(), [n for n, t in zip(names, out) if t is None], today, functions)
    for i, rev in enumerate(names):
        if out[i] is None:
            out[i] = computed[rev]
            _target_put(cache_dir, keys[rev], computed[rev])
    return out  # type: ignore[return-value]


def _code_digest() -> str:
    """policybot's own code that decides a target: a change to it is a new cache key."""
    here = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for path in sorted([*here.glob("kernel/*.py"), *here.glob("model/*.py"), *here.glob("policy/*.py"),
                        *here.glob("policy/*.toml")]):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def _compute_source_targets(auditor: Auditor, names: list[str], today: dt.date,
                            functions: frozenset[str] = frozenset()) -> dict[str, Target]:
    from ..kernel.gitrepo import resolve
    from ..kernel.jit import kfunc_call_arches

    repo, scanner = auditor.repo, auditor.scanner
    releases = auditor.calendar.releases()
    inventories: dict[str, object] = {}

    def inventory_at(commit_id: str):
        if commit_id not in inventories:
            inventories[commit_id] = scanner.inventory_of_commit(repo[commit_id])
        return inventories[commit_id]

    out = {}
    for rev in names:
        commit = resolve(repo, rev)
        inv = scanner.inventory_of_commit(commit, rev)
        inventories[str(commit.id)] = inv
        views = {}
        for name, p in auditor.promises_at(inv, commit, today).items():
            d = p.declaration
            ends = p.ends.date if p.ends else None
            views[name] = PolicyView(d.level, p.level_key, ends if d.level == Level.STABLE else None,
                                     ends if d.level == Level.DEPRECATED else None, d.replacement,
                                     str(d.location))
        kfuncs = {}
        for k in inv.selected(include_tests=True):
            d = k.definition
            if d is None:
                kfuncs[k.name] = TargetKfunc(k.name, k.name + "(?)", Shape("unknown", text="no definition"),
                                             flags=k.flags, prog_types=k.prog_types, location=str(k.location),
                                             guards=k.guards)
                continue
            visible = bpf_params(k, inv)  # as the tree's resolve_btfids builds the BPF prototype
            shown = replace(d.signature, params=visible)
            kfuncs[k.name] = TargetKfunc(k.name, shown.render(k.name), None, d.signature.return_type,
                                         tuple(p.type for p in visible), k.flags, k.prog_types, str(d.location),
                                         k.guards)
        # the first release carrying each kfunc: releases this revision contains, oldest first
        first: dict[str, str] = {}
        for rel in releases:
            if rel.commit != str(commit.id) and not repo.descendant_of(commit.id, rel.commit):
                continue
            for name in inventory_at(rel.commit).kfuncs:
                first.setdefault(name, rel.name)
        out[rev] = Target(rev, "source", kfuncs, views, first,
                          jit_arches=tuple(kfunc_call_arches(repo, str(commit.id))),
                          functions=_functions_of(auditor, commit, functions - set(kfuncs)))
    return out


def _functions_of(auditor: Auditor, commit, names: set[str]) -> dict[str, TargetKfunc]:
    """A source tree's definitions of ``names`` (functions, static or not, in its .c files): what an
    address-only extern resolves to. As in a compiled kernel's BTF, any definition counts, whatever
    the config options it needs (a tree is every build of it); the first one found is kept."""
    from ..kernel.grep import files_naming
    from ..model.inventory import Param, Signature
    out: dict[str, TargetKfunc] = {}
    if not names:
        return out
    for name, paths in files_naming(auditor.repo.path, str(commit.tree.id), sorted(names)).items():
        for path in paths:
            try:
                oid = str(commit.tree[path].id)
            except KeyError:
                continue
            d = auditor.scanner.facts_of(path, oid, all_defs=True).defs.get(name)
            if d is not None:
                sig = Signature(d.return_type, tuple(Param(p.type, p.name, p.suffix) for p in d.params), d.variadic)
                out[name] = TargetKfunc(name, sig.render(name), None, d.return_type, tuple(p.type for p in d.params),
                                        location=f"{path}:{d.line}", guards=tuple(d.guards))
                break
    return out


def _target_json(t: Target) -> dict:
    def day(d):
        return d.isoformat() if d else None
    return {"name": t.name, "kind": t.kind,
            "kfuncs": [[k.name, k.prototype, k.return_type, list(k.param_types),
                        list(k.flags) if k.flags is not None else None,
                        list(k.prog_types) if k.prog_types is not None else None, k.location,
                        k.shape is not None, list(k.guards)] for k in t.kfuncs.values()],
            "functions": [[k.name, k.prototype, k.return_type, list(k.param_types), k.location]
                          for k in t.functions.values()],
            "policy": {n: [p.level, p.level_key, day(p.promise_ends), day(p.earliest_removal), p.replacement,
                           p.declared_at] for n, p in t.policy.items()},
            "first_release": t.first_release,
            "jit_arches": list(t.jit_arches) if t.jit_arches is not None else None}


def _target_get(cache_dir: str | None, key: str) -> Target | None:
    if cache_dir is None:
        return None
    try:
        d = json.loads((Path(cache_dir) / f"{key}.json").read_text())

        def day(v):
            return dt.date.fromisoformat(v) if v else None
        kfuncs = {}
        for name, proto, ret, params, flags, progs, loc, no_definition, guards in d["kfuncs"]:
            kfuncs[name] = TargetKfunc(name, proto, Shape("unknown", text="no definition") if no_definition
                                       else None, ret, tuple(params), tuple(flags) if flags is not None else None,
                                       tuple(progs) if progs is not None else None, loc, tuple(guards))
        functions = {name: TargetKfunc(name, proto, None, ret, tuple(params), location=loc)
                     for name, proto, ret, params, loc in d["functions"]}
        policy = {n: PolicyView(Level(v[0]), PromiseState(v[1]), day(v[2]), day(v[3]), v[4], v[5])
                  for n, v in d["policy"].items()}
        arches = d["jit_arches"]
        return Target(d["name"], d["kind"], kfuncs, policy, d["first_release"],
                      jit_arches=tuple(arches) if arches is not None else None, functions=functions)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def _target_put(cache_dir: str | None, key: str, t: Target) -> None:
    if cache_dir is None:
        return
    try:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(_target_json(t), fh)
        os.replace(tmp, Path(cache_dir) / f"{key}.json")
    except OSError:
        pass  # a cache we cannot write only costs time


# -- inventory --btf --repo: what the compiled kernel and the source tree say -------------

def cross_check(kernel: CompiledKernel, scanner, rev: str) -> CrossCheck:
    from ..kernel.gitrepo import resolve
    commit = resolve(scanner.repo, rev)
    inv = scanner.inventory_of_commit(commit, rev)
    only_btf = [n for n in kernel.kfuncs if n not in inv.kfuncs]
    fmodret: dict[str, str] = {}
    if only_btf:
        # the files that register kfunc sets are where an fmodret-only set would be
        for path in sorted({p for k in inv.kfuncs.values() for p in k.files}):
            try:
                oid = str(commit.tree[path].id)
            except KeyError:
                continue
            facts = scanner.facts_of(path, oid)
            if not any(c.func == "register_btf_fmodret_id_set" for c in facts.calls):
                continue
            for s in facts.sets:
                for e in s.entries:
                    if e.name in only_btf:
                        fmodret.setdefault(e.name, f"{path}:{e.line}")
    not_built = tuple(sorted(n for n in inv.kfuncs if n not in kernel.kfuncs))
    return CrossCheck(rev, inv.commit, tuple(n for n in only_btf if n not in fmodret), fmodret, not_built,
                      _modules_of(scanner, commit, {n: str(inv.kfuncs[n].location).rsplit(":", 1)[0]
                                                    for n in not_built}))


def _modules_of(scanner, commit, files: dict[str, str]) -> dict[str, str]:
    """The module each kfunc's file is linked into when built as one (its directory's Makefile:
    ``NAME-y += file.o`` or ``NAME-$(CONFIG_X) += file.o`` puts it in NAME.ko, ``obj-$(CONFIG_X)
    += file.o`` makes it file.ko); a name the Makefile does not say is left out."""
    makefiles: dict[str, str] = {}
    out = {}
    for name, path in files.items():
        d, _, base = path.rpartition("/")
        if d not in makefiles:
            try:
                makefiles[d] = scanner.read(commit.tree[f"{d}/Makefile"].id).decode("utf-8", "replace")
            except (KeyError, AttributeError):
                makefiles[d] = ""
        obj = base.rsplit(".", 1)[0] + ".o"
        for m in re.finditer(r"^([\w-]+?)-(?:y|objs|\$\(CONFIG_\w+\))\s*[:+]?=(.*)$",
                             makefiles[d].replace("\\\n", " "), re.M):
            if obj in m[2].split():
                out[name] = (obj[:-2] if m[1] == "obj" else m[1]) + ".ko"
                break
    return out
