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
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from .btf.compat import Shape, btf_shape, incompatibility, text_shape
from .btf.kfuncs import CompiledKernel
from .btf.program import BpfObject, Extern, SourceLine
from .errors import InputError
from .kernel.flags import FLAGS
from .policy.diff import bpf_params
from .policy.rules import catalogue, render_message

STATUSES = ("ok", "missing", "incompatible")
# flags that ask nothing of the program calling the kfunc
_SILENT_FLAGS = ("KF_DEPRECATED", "KF_FASTCALL", "KF_IMPLICIT_ARGS")


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


@dataclass(frozen=True)
class PolicyView:
    """What the target's declarations say of one kfunc."""
    level: str  # unstable (also undeclared), stable, deprecating, deprecated
    level_key: str  # the rule catalogue's key: also expired, deprecated_due
    promise_ends: dt.date | None  # stable: end of the window
    earliest_removal: dt.date | None  # deprecated: end of the notice period
    replacement: str | None
    declared_at: str = ""


UNDECLARED = PolicyView("unstable", "unstable", None, None, None)


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


@dataclass(frozen=True)
class ExternResult:
    extern: Extern
    status: str
    reason: str
    target_kfunc: TargetKfunc | None
    policy: PolicyView
    first_release: str | None

    declared: bool  # the target says what is declared (a source tree): level and promise are known

    @property
    def resolved(self) -> bool:
        return self.status == "ok"

    @property
    def needs(self) -> tuple[str, ...]:
        flags = self.target_kfunc.flags if self.target_kfunc else None
        return tuple(FLAGS[f].meaning for f in (flags or ()) if f in FLAGS and f not in _SILENT_FLAGS)


@dataclass(frozen=True)
class CheckFinding:
    rule: str
    verdict: str
    extern: str
    message: str
    location: SourceLine | None
    object: str
    target: str

    @property
    def where(self) -> str:
        return f"{self.location.file}:{self.location.line}" if self.location else self.object


@dataclass(frozen=True)
class Verdict:
    object: BpfObject
    target: Target
    externs: tuple[ExternResult, ...]
    findings: tuple[CheckFinding, ...]

    @property
    def loads(self) -> bool:
        return not self.object.undescribed and all(r.resolved or r.extern.weak for r in self.externs)


def check(obj: BpfObject, target: Target) -> Verdict:
    rules = catalogue()
    results, findings = [], []

    def finding(rule: str, level_key: str, extern: str, message: str, loc: SourceLine | None) -> None:
        verdict = rules[rule].verdict[level_key]
        if verdict != "none":
            findings.append(CheckFinding(rule, verdict, extern, message, loc, obj.path, target.name))

    for sym in obj.undescribed:
        finding("EXTERN_WITHOUT_BTF", "unstable", sym, render_message("EXTERN_WITHOUT_BTF", symbol=sym), None)
    for ext in obj.externs:
        tk = target.kfuncs.get(ext.kfunc)
        policy = target.policy.get(ext.kfunc, UNDECLARED) if tk else UNDECLARED
        loc = ext.calls[0] if ext.calls else None
        asked = ext.name if ext.kfunc == ext.name else f"{ext.name} (kfunc {ext.kfunc})"
        if tk is None:
            status, reason = "missing", f"{ext.kfunc} is not a kfunc of {target.name}"
        else:
            shape = tk.shape or _source_shape(tk, obj)
            reason = incompatibility(btf_shape(obj.btf, ext.proto), shape)
            status = "incompatible" if reason else "ok"
        first = target.first_release.get(ext.kfunc) if tk is not None else None
        results.append(ExternResult(ext, status, reason, tk, policy, first, target.declared))
        if status != "ok":
            # the level of the kfunc the extern names on the target (unstable when it has none)
            if ext.weak:
                finding("EXTERN_UNRESOLVED", policy.level_key, ext.name,
                        render_message("EXTERN_UNRESOLVED", extern=asked, reason=reason), loc)
            elif status == "missing":
                finding("EXTERN_MISSING", policy.level_key, ext.name,
                        render_message("EXTERN_MISSING", extern=asked, reason=reason), loc)
            else:
                finding("EXTERN_INCOMPATIBLE", policy.level_key, ext.name,
                        render_message("EXTERN_INCOMPATIBLE", extern=asked, target=target.name,
                                       prototype=tk.prototype, reason=reason), loc)
        elif policy.level in ("deprecating", "deprecated"):
            said = {"extern": asked, "level": policy.level, "target": target.name}
            if policy.replacement:
                said["replacement"] = policy.replacement
            if policy.earliest_removal:
                said["removal"] = policy.earliest_removal
            variant = "_".join(k for k in ("replacement", "removal") if k in said) or "plain"
            finding("EXTERN_DEPRECATED", policy.level_key, ext.name,
                    render_message("EXTERN_DEPRECATED", variant, **said), loc)
    return Verdict(obj, target, tuple(results), tuple(findings))


def _source_shape(tk: TargetKfunc, obj: BpfObject) -> Shape:
    """A source definition's BPF-visible prototype; typedef names are looked up in the object."""
    return Shape("proto", text_shape(tk.return_type, obj.btf),
                 tuple(text_shape(p, obj.btf) for p in tk.param_types))


# -- targets --------------------------------------------------------------------------

def btf_target(kernel: CompiledKernel, policy_from: Target | None = None) -> Target:
    """A compiled kernel; flags, program types and policy from a source target when given."""
    src = policy_from.kfuncs if policy_from else {}
    kfuncs = {n: TargetKfunc(n, k.prototype, k.shape, flags=src[n].flags if n in src else None,
                             prog_types=src[n].prog_types if n in src else None,
                             location=f"{k.origin} [btf {k.btf_id}]")
              for n, k in kernel.kfuncs.items()}
    return Target(kernel.name, "btf", kfuncs, policy_from.policy if policy_from else {},
                  policy_from.first_release if policy_from else {}, declared=policy_from is not None)




def source_targets(repo_path: str, revs: list[str], releases_glob: str | None, cache_factory, policy_file,
                   today: dt.date | None, verify_objects: bool = False,
                   cache_dir: str | None = None) -> list[Target]:
    """Targets for revisions of a source tree: the inventory and the promises valid there.

    A target is cached as JSON under a key naming everything it depends on
    (commit, release tags, policy and overlay, the day, policybot's own
    code), so a warm check opens the repository but reads no tree and does
    not load the state database.
    """
    import pygit2

    from .kernel.gitrepo import open_repo, resolve
    from .policy.config import load_policy

    repo = open_repo(repo_path)
    policy = load_policy(policy_file)
    today = today or dt.date.today()
    tags = sorted((r.shorthand, str(r.target)) for r in repo.references.iterator(pygit2.enums.ReferenceFilter.TAGS))
    names = list(revs)
    if releases_glob:
        from .policy.history import RELEASE_TAG
        matched = [n for n, _ in tags if RELEASE_TAG.match(n) and fnmatch.fnmatchcase(n, releases_glob)]
        if not matched:
            raise InputError(f"{repo_path}: no release tag matches {releases_glob!r} "
                             f"(tags: {', '.join(n for n, _ in tags) or 'none'})")
        matched.sort(key=lambda n: tuple(int(x) for x in RELEASE_TAG.match(n).groups()))
        names += [n for n in matched if n not in names]
    commits = {rev: str(resolve(repo, rev).id) for rev in names}
    overlay = ""
    if policy.overlay:
        try:
            overlay = Path(policy.overlay).read_text(encoding="utf-8")
        except OSError:
            overlay = "unreadable"  # the Auditor names the file when it reads it
    common = [repr(policy), overlay, today.isoformat(), tags, _code_digest(), os.path.realpath(repo_path)]
    out: list[Target | None] = []
    keys = {}
    for rev in names:
        keys[rev] = hashlib.sha256(json.dumps([rev, commits[rev], *common]).encode()).hexdigest()
        out.append(_target_get(cache_dir, keys[rev]))
    if all(out):
        return out  # type: ignore[return-value]
    computed = _compute_source_targets(repo, [n for n, t in zip(names, out) if t is None], cache_factory(),
                                       policy, today, verify_objects)
    for i, rev in enumerate(names):
        if out[i] is None:
            out[i] = computed[rev]
            _target_put(cache_dir, keys[rev], computed[rev])
    return out  # type: ignore[return-value]


def _code_digest() -> str:
    """policybot's own code that decides a target: a change to it is a new cache key."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted([*here.glob("kernel/*.py"), *here.glob("policy/*.py"), *here.glob("policy/*.toml"),
                        here / "check.py"]):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def _compute_source_targets(repo, names: list[str], cache, policy, today: dt.date,
                            verify_objects: bool) -> dict[str, Target]:
    from .kernel.gitrepo import resolve
    from .kernel.jit import kfunc_call_arches
    from .kernel.scanner import Scanner
    from .policy.audit import Auditor

    scanner = Scanner(repo, cache, verify_objects=verify_objects)
    auditor = Auditor(repo, scanner, policy, today)
    releases = auditor.history.releases()
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
            views[name] = PolicyView(d.level, p.level_key, ends if d.level == "stable" else None,
                                     ends if d.level == "deprecated" else None, d.replacement,
                                     str(d.location))
        kfuncs = {}
        for k in inv.selected(include_tests=True):
            d = k.definition
            if d is None:
                kfuncs[k.name] = TargetKfunc(k.name, k.name + "(?)", Shape("unknown", text="no definition"),
                                             flags=k.flags, prog_types=k.prog_types, location=str(k.location))
                continue
            visible = bpf_params(k, inv)  # as the tree's resolve_btfids builds the BPF prototype
            shown = replace(d.signature, params=visible)
            kfuncs[k.name] = TargetKfunc(k.name, shown.render(k.name), None, d.signature.return_type,
                                         tuple(p.type for p in visible), k.flags, k.prog_types, str(d.location))
        # the first release carrying each kfunc: releases this revision contains, oldest first
        first: dict[str, str] = {}
        for rel in releases:
            if rel.commit != str(commit.id) and not repo.descendant_of(commit.id, rel.commit):
                continue
            for name in inventory_at(rel.commit).kfuncs:
                first.setdefault(name, rel.name)
        out[rev] = Target(rev, "source", kfuncs, views, first,
                          jit_arches=tuple(kfunc_call_arches(repo, str(commit.id))))
    return out


def _target_json(t: Target) -> dict:
    def day(d):
        return d.isoformat() if d else None
    return {"name": t.name, "kind": t.kind,
            "kfuncs": [[k.name, k.prototype, k.return_type, list(k.param_types),
                        list(k.flags) if k.flags is not None else None,
                        list(k.prog_types) if k.prog_types is not None else None, k.location,
                        k.shape is not None] for k in t.kfuncs.values()],
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
        for name, proto, ret, params, flags, progs, loc, no_definition in d["kfuncs"]:
            kfuncs[name] = TargetKfunc(name, proto, Shape("unknown", text="no definition") if no_definition
                                       else None, ret, tuple(params), tuple(flags) if flags is not None else None,
                                       tuple(progs) if progs is not None else None, loc)
        policy = {n: PolicyView(v[0], v[1], day(v[2]), day(v[3]), v[4], v[5]) for n, v in d["policy"].items()}
        arches = d["jit_arches"]
        return Target(d["name"], d["kind"], kfuncs, policy, d["first_release"],
                      jit_arches=tuple(arches) if arches is not None else None)
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


# -- rendering ---------------------------------------------------------------------------

def extern_json(r: ExternResult) -> dict:
    k, p = r.target_kfunc, r.policy
    return {
        "name": r.extern.name, "kfunc": r.extern.kfunc, "weak": r.extern.weak, "status": r.status,
        "reason": r.reason or None,
        "prototype": r.extern.prototype,
        "target_prototype": k.prototype if k else None,
        "level": p.level if k and r.declared else None,
        "promise_ends": p.promise_ends.isoformat() if p.promise_ends else None,
        "deprecated": p.level in ("deprecating", "deprecated"),
        "replacement": p.replacement,
        "earliest_removal": p.earliest_removal.isoformat() if p.earliest_removal else None,
        "first_release": r.first_release,
        "flags": list(k.flags) if k and k.flags is not None else None,
        "needs": list(r.needs),
        "prog_types": list(k.prog_types) if k and k.prog_types is not None else None,
        "calls": [str(c) for c in r.extern.calls],
    }


def verdict_json(v: Verdict) -> dict:
    return {
        "object": v.object.path, "target": v.target.name, "target_kind": v.target.kind,
        "loads": v.loads,
        "externs": [extern_json(r) for r in v.externs],
        "without_btf": list(v.object.undescribed),
        "jit_arches": list(v.target.jit_arches) if v.target.jit_arches is not None else None,
        "findings": [{"rule": f.rule, "verdict": f.verdict, "extern": f.extern, "location": f.where,
                      "message": f.message} for f in v.findings],
    }


def finding_line(f: CheckFinding, several_targets: bool) -> str:
    on = f" [{f.target}]" if several_targets else ""
    return f"{f.where}: {f.verdict}[{f.rule}]: {f.message}{on}"


def summary_line(v: Verdict) -> str:
    counts = {s: 0 for s in STATUSES}
    weak_unresolved = 0
    for r in v.externs:
        counts[r.status] += 1
        weak_unresolved += r.extern.weak and not r.resolved
    what = (f"{len(v.externs)} kfunc externs: {counts['ok']} ok, {counts['missing']} missing, "
            f"{counts['incompatible']} incompatible")
    if weak_unresolved:
        what += f"; weak, left unresolved: {weak_unresolved}"
    if v.target.jit_arches is not None:
        what += f"; JITs that call kfuncs: {', '.join(v.target.jit_arches) or 'none'}"
    if v.loads:
        return f"{v.object.path} on {v.target.name}: loads ({what})"
    failing = [r.extern.name for r in v.externs if not r.resolved and not r.extern.weak]
    failing += [f"{s} (no BTF)" for s in v.object.undescribed]
    return f"{v.object.path} on {v.target.name}: does not load: {', '.join(failing)} ({what})"


def details(r: ExternResult) -> str:
    """One indented line of what an extern resolved to, for text output."""
    parts = []
    k, p = r.target_kfunc, r.policy
    if k is not None and r.declared:
        parts.append(f"declared {p.level}")
        if p.promise_ends:
            parts.append(f"promised until {p.promise_ends}")
        if p.earliest_removal:
            parts.append(f"earliest removal {p.earliest_removal}")
        if p.replacement:
            parts.append(f"replacement {p.replacement}")
    if r.first_release:
        parts.append(f"since {r.first_release}")
    if r.needs:
        parts.append("needs: " + "; ".join(r.needs))
    weak = " (weak)" if r.extern.weak else ""
    return f"    {r.extern.name}{weak}: {r.status}" + (f" — {', '.join(parts)}" if parts else "")


def matrix(verdicts: list[Verdict]) -> str:
    """extern x target, for one object: where each extern resolves, and where the object loads."""
    targets = [v.target.name for v in verdicts]
    rows = {}
    for v in verdicts:
        for r in v.externs:
            label = r.extern.name + (" (weak)" if r.extern.weak else "")
            rows.setdefault(label, {})[v.target.name] = r.status
    rows["loads"] = {v.target.name: "yes" if v.loads else "NO" for v in verdicts}
    width = max(len(k) for k in rows) + 2
    cols = [max(len(t), 12) + 2 for t in targets]
    lines = [verdicts[0].object.path.ljust(width) + "".join(t.ljust(c) for t, c in zip(targets, cols))]
    for label, cells in rows.items():
        lines.append(label.ljust(width) + "".join(cells.get(t, "-").ljust(c) for t, c in zip(targets, cols)))
    return "\n".join(line.rstrip() for line in lines) + "\n"


def render_text(verdicts: list[Verdict]) -> str:
    several = len({v.target.name for v in verdicts}) > 1
    out = []
    for v in verdicts:
        out += [finding_line(f, several) for f in v.findings]
    by_object: dict[str, list[Verdict]] = {}
    for v in verdicts:
        by_object.setdefault(v.object.path, []).append(v)
    for group in by_object.values():
        for v in group:
            out.append(summary_line(v))
            if not several:
                out += [details(r) for r in v.externs]
        if several:
            out.append("")
            out.append(matrix(group).rstrip("\n"))
            oldest = next((v.target.name for v in group if v.loads), None)
            out.append(f"first target it loads on: {oldest}" if oldest else "it loads on none of the targets")
    return "\n".join(out) + "\n"


# -- inventory --btf --repo: what the compiled kernel and the source tree say -------------

@dataclass(frozen=True)
class CrossCheck:
    rev: str
    commit: str
    scanner_misses: tuple[str, ...]  # tagged in the BTF, not in the source inventory
    # tagged because their set is a BTF_KFUNCS set, registered only with
    # register_btf_fmodret_id_set: attachable by fmod_ret programs, not callable
    fmodret_only: dict[str, str]  # name -> the set entry's location
    not_built: tuple[str, ...]  # in the source inventory, not in this kernel's BTF


def cross_check(kernel: CompiledKernel, scanner, rev: str) -> CrossCheck:
    from .kernel.gitrepo import resolve
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
    return CrossCheck(rev, inv.commit, tuple(n for n in only_btf if n not in fmodret), fmodret,
                      tuple(sorted(n for n in inv.kfuncs if n not in kernel.kfuncs)))
