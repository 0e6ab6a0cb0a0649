"""Kfunc histories (``policybot history``): a table, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json

from ..kernel.jit import arch_condition, arches
from ..model.history import Event, Histories, KfuncHistory

HISTORY_SCHEMA = 1


def _event_text(e: Event) -> str:
    if e.kind == "renamed":
        return f"{e.release} {e.detail}"
    label = {"prog_types": "program types"}.get(e.kind, e.kind)
    rules = ",".join(r.rule for r in e.rules if r.rule not in ("KFUNC_RENAMED", "KFUNC_REMOVED"))
    return f"{e.release} {label} {e.detail}" + (f" [{rules}]" if rules else "")


def table(histories: list[KfuncHistory]) -> str:
    rows = [("KFUNC", "FIRST", "LAST", "LEVEL", "CHANGES")]
    for h in histories:
        changes = [_event_text(e) for e in h.events if e.kind != "added" or len(h.spans) > 1]
        rows.append((h.name + (" [test]" if h.test else ""), h.first_release or "-",
                     h.last_release or "-", h.level, "; ".join(changes) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
    releases = getattr(histories, "releases", None)
    n = len(rows) - 1
    scope = ""
    if releases:
        scope = f" over {len(releases)} release{'s' if len(releases) != 1 else ''} " \
                f"({releases[0].name}..{releases[-1].name})"
    lines.extend(jit_table(histories))
    lines.append(f"{n} kfunc{'s' if n != 1 else ''}{scope}")
    return "\n".join(lines) + "\n"


def json_text(histories: list[KfuncHistory]) -> str:
    releases = getattr(histories, "releases", None) or []
    doc = {
        "schema": HISTORY_SCHEMA,
        "releases": [{"name": r.name, "date": r.date.isoformat(), "commit": r.commit} for r in releases],
        **jit_json(histories),
        "kfuncs": [h.to_json() for h in histories],
    }
    return json.dumps(doc, indent=2) + "\n"


def jit_json(histories: list[KfuncHistory]) -> dict:
    """The JITs able to call kfuncs: per release, since when, and each file's conditions."""
    if not isinstance(histories, Histories):
        return {"arches": {}, "arch_since": {}, "arch_conditions": {}, "jit_support": {}}
    return {
        "arches": histories.arches(),
        "arch_since": histories.arch_since(),
        "arch_conditions": {r.name: {a: arch_condition(histories.jits[r.name], a) or None
                                     for a in arches(histories.jits.get(r.name, ()))}
                            for r in histories.releases},
        "jit_support": {r.name: [s.to_json() for s in histories.jits.get(r.name, ())]
                        for r in histories.releases},
    }


def jit_table(histories: list[KfuncHistory]) -> list[str]:
    """One line per release: the architectures whose JIT can call kfuncs, conditions in ()."""
    if not isinstance(histories, Histories):
        return []
    out = []
    for r in histories.releases:
        parts = []
        for a in arches(histories.jits.get(r.name, ())):
            cond = arch_condition(histories.jits[r.name], a)
            parts.append(f"{a} ({cond})" if cond else a)
        out.append(f"kfunc calls at {r.name}: {', '.join(parts) or 'no JIT'}")
    return out


def csv_text(histories: list[KfuncHistory]) -> str:
    """One row per event."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "test", "release", "date", "kind", "detail", "rules", "other"])
    for h in histories:
        for e in h.events:
            w.writerow([h.name, int(h.test), e.release, e.date.isoformat(), e.kind, e.detail,
                        "|".join(r.rule for r in e.rules), e.other or ""])
    return buf.getvalue()
