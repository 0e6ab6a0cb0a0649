"""``policybot check``'s results: text (findings, a summary per object and target, a matrix
extern x target with several targets) and JSON lines."""

from __future__ import annotations

import json

from ..model.check import STATUSES, CheckResult, CheckRun, ExternResult
from ..model.vocabulary import Level
from ..policy.rules import catalogue
from ..templating import environment
from .findings import finding_line, users_text


def _uses(r: ExternResult) -> str:
    e = r.extern
    return "call and address" if e.called and e.address_taken else "address" if e.address_only else "call"


def extern_json(r: ExternResult, dead: bool = False) -> dict:
    k, p = r.target_kfunc, r.policy
    return {
        "name": r.extern.name, "kfunc": r.extern.kfunc, "weak": r.extern.weak, "status": r.status,
        "reason": r.reason or None,
        "prototype": r.extern.prototype,
        "target_prototype": k.prototype if k else None,
        "level": p.level if k and r.declared else None,
        "promise_ends": p.promise_ends.isoformat() if p.promise_ends else None,
        "deprecated": p.level in (Level.DEPRECATING, Level.DEPRECATED),
        "replacement": p.replacement,
        "earliest_removal": p.earliest_removal.isoformat() if p.earliest_removal else None,
        "first_release": r.first_release,
        "flags": list(k.flags) if k and k.flags is not None else None,
        "needs": list(r.needs),
        "prog_types": list(k.prog_types) if k and k.prog_types is not None else None,
        "calls": [str(c) for c in r.extern.calls],
        "uses": _uses(r),
        "address_uses": [str(c) for c in r.extern.addressed],
        "dead_fallback": dead,
    }


def result_json(v: CheckResult, dead: set[tuple[str, str]] = frozenset(), about_all: list = ()) -> dict:
    """``about_all``: the object's findings over all the targets (dead fallbacks), in each of its lines."""
    return {
        "object": v.object.path, "target": v.target.name, "target_kind": v.target.kind,
        "loads": v.loads,
        "externs": [extern_json(r, (v.object.path, r.extern.name) in dead) for r in v.externs],
        "without_btf": list(v.object.undescribed),
        "jit_arches": list(v.target.jit_arches) if v.target.jit_arches is not None else None,
        "findings": [{"rule": f.rule, "verdict": f.verdict, "extern": f.kfunc, "location": f.where,
                      "message": f.message} for f in [*v.findings, *about_all]],
    }


def summary_line(v: CheckResult) -> str:
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
        return f"{v.object.path} on {v.target.name}: loads, as far as its kfunc externs go ({what})"
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
    if r.extern.address_only:
        parts.append("its address only (any kernel function of that name)")
    weak = " (weak)" if r.extern.weak else ""
    return f"    {r.extern.name}{weak}: {r.status}" + (f" — {', '.join(parts)}" if parts else "")


def details_over_targets(group: list[CheckResult]) -> list[str]:
    """Each extern's details for several targets: one line per extern, the targets that say the
    same thing named together."""
    out = []
    for i, r0 in enumerate(group[0].externs):
        said: dict[str, list[str]] = {}
        for v in group:
            said.setdefault(details(v.externs[i]).split(": ", 1)[1], []).append(v.target.name)
        weak = " (weak)" if r0.extern.weak else ""
        out.append(f"    {r0.extern.name}{weak}: " + "; ".join(f"{', '.join(ts)}: {d}" for d, ts in said.items()))
    return out


def matrix(verdicts: list[CheckResult]) -> str:
    """extern x target, for one object: where each extern resolves, and where the object loads."""
    targets = [v.target.name for v in verdicts]
    rows = {}
    for v in verdicts:
        for r in v.externs:
            label = r.extern.name + (" (weak)" if r.extern.weak else "")
            rows.setdefault(label, {})[v.target.name] = r.status
    rows["loads"] = {v.target.name: "yes" if v.loads else "NO" for v in verdicts}
    # the object is named by the summary lines above: the first column is its externs
    width = max(len(k) for k in [*rows, "extern"]) + 2
    cols = [max(len(t), 12) + 2 for t in targets]
    lines = ["extern".ljust(width) + "".join(t.ljust(c) for t, c in zip(targets, cols))]
    for label, cells in rows.items():
        lines.append(label.ljust(width) + "".join(cells.get(t, "-").ljust(c) for t, c in zip(targets, cols)))
    return "\n".join(line.rstrip() for line in lines) + "\n"


def text(run: CheckRun) -> str:
    verdicts = list(run.results)
    several = len({v.target.name for v in verdicts}) > 1
    out = []
    for f in [f for v in verdicts for f in v.findings] + list(run.findings):
        out.append(finding_line(f, with_target=several))
        if f.users:
            out.append(f"    users: {users_text(f)}")
    by_object: dict[str, list[CheckResult]] = {}
    for v in verdicts:
        by_object.setdefault(v.object.path, []).append(v)
    for group in by_object.values():
        for v in group:
            out.append(summary_line(v))
            if not several:
                out += [details(r) for r in v.externs]
        if several:
            out += details_over_targets(group)
            out.append("")
            out.append(matrix(group).rstrip("\n"))
            oldest = next((v.target.name for v in group if v.loads), None)
            out.append(f"first target it loads on: {oldest}" if oldest else "it loads on none of the targets")
    rules = catalogue()
    used = dict.fromkeys(f.rule for f in run.all_findings())
    footer = environment().get_template("check.txt.j2").render(
        hints=[(rid, rules[rid].hint) for rid in used], problems=list(run.problems))
    return "\n".join(out) + "\n" + footer


def json_lines(run: CheckRun) -> str:
    """One JSON object per line, per object and target; an extern that resolves on none of the
    object's targets (two or more) says ``dead_fallback``."""
    dead = {(f.object, f.kfunc) for f in run.findings if f.rule == "EXTERN_DEAD_FALLBACK"}
    return "".join(json.dumps(result_json(v, dead, [f for f in run.findings if f.object == v.object.path])) + "\n"
                   for v in run.results)
