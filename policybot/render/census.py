"""The usage census (``policybot census``): what a census found, and what is kept, as a table,
JSON and CSV (one row per use)."""

from __future__ import annotations

import csv
import io
import json

from ..model.census import CensusRow, CensusRun, CensusTable, Use

CENSUS_SCHEMA = 1
CSV_HEADER = ["kfunc", "user", "project", "version", "in_tree", "strength", "location", "declared", "source",
              "seen"]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(r[i].ljust(widths[i]) for i in range(len(widths))) + "  " + r[-1] for r in rows]


def _who(u: Use) -> str:
    return " ".join(p for p in (u.user, u.version) if p) + f" ({u.strength}{', in-tree' if u.in_tree else ''})"


def run_text(run: CensusRun) -> str:
    out = []
    for c in run.censuses:
        users = {u.user for u in c.uses}
        project = next((f"{u.project} {u.version}".strip() for u in c.uses), "")
        out.append(f"{c.source}{f' ({project})' if project else ''}: {_plural(c.files, 'file')}, "
                   f"{_plural(c.objects, 'BPF object')}, {_plural(len(c.uses), 'use')} of "
                   f"{_plural(len({u.kfunc for u in c.uses}), 'kfunc')} by {_plural(len(users), 'program')}")
        rows = [(u.kfunc, _who(u), u.location) for u in c.uses]
        out += ["  " + line for line in _columns(rows)] if rows else []
    if run.problems:
        out.append(f"{_plural(len(run.problems), 'problem')} (on stderr)")
    return "\n".join(out) + "\n" if out else ""


def _use_json(u: Use) -> dict:
    return {"kfunc": u.kfunc, "user": u.user, "project": u.project, "version": u.version, "in_tree": u.in_tree,
            "strength": u.strength, "location": u.location, "declared": u.declared or None}


def run_json(run: CensusRun) -> str:
    return json.dumps({"schema": CENSUS_SCHEMA, "sources": [
        {"source": c.source, "files": c.files, "objects": c.objects, "uses": [_use_json(u) for u in c.uses],
         "problems": c.problems} for c in run.censuses], "failed": run.failed}, indent=2) + "\n"


def _csv(rows: list[tuple[Use, str, str]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_HEADER)
    for u, source, seen in rows:
        w.writerow([u.kfunc, u.user, u.project, u.version, int(u.in_tree), u.strength, u.location, u.declared,
                    source, seen])
    return buf.getvalue()


def run_csv(run: CensusRun) -> str:
    return _csv([(u, c.source, "") for c in run.censuses for u in c.uses])


def _grouped(rows: list[CensusRow], by: str) -> dict[str, list[CensusRow]]:
    out: dict[str, list[CensusRow]] = {}
    for r in sorted(rows, key=lambda r: (r.use.kfunc, r.use.user) if by == "kfunc" else (r.use.user, r.use.kfunc)):
        out.setdefault(r.use.kfunc if by == "kfunc" else r.use.user, []).append(r)
    return out


def table_text(table: CensusTable) -> str:
    groups = _grouped(table.rows, table.by)
    rows = [("KFUNC" if table.by == "kfunc" else "USER", "USERS" if table.by == "kfunc" else "KFUNCS")]
    for key, members in groups.items():
        if table.by == "kfunc":
            rows.append((key, ", ".join(_who(r.use) for r in members)))
        else:
            rows.append((key, ", ".join(f"{r.use.kfunc} ({r.use.strength})" for r in members)))
    kfuncs = len({r.use.kfunc for r in table.rows})
    users = len({r.use.user for r in table.rows})
    return "\n".join(_columns(rows) + [f"{_plural(kfuncs, 'kfunc')} used by {_plural(users, 'program')}"]) + "\n"


def table_json(table: CensusTable) -> str:
    """By kfunc, each with how many programs in the kernel's tree and outside it use it (the
    evidence a promise is made from); by user, each program's uses."""
    out = {}
    for key, members in _grouped(table.rows, table.by).items():
        entry = {"uses": [dict(_use_json(r.use), source=r.source, seen=r.seen.isoformat()) for r in members]}
        if table.by == "kfunc":
            entry = {"in_tree": len({r.use.user for r in members if r.use.in_tree}),
                     "out_of_tree": len({r.use.user for r in members if not r.use.in_tree}), **entry}
        out[key] = entry
    return json.dumps({"schema": CENSUS_SCHEMA, "by": table.by, table.by + "s": out}, indent=2) + "\n"


def table_csv(table: CensusTable) -> str:
    return _csv([(r.use, r.source, r.seen.isoformat()) for members in _grouped(table.rows, table.by).values()
                 for r in members])
