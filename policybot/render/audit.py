"""An audit's findings: compiler-style text, JSON and Markdown."""

from __future__ import annotations

import json

from ..model.findings import AuditResult
from ..model.vocabulary import Verdict
from .findings import finding_json, finding_line, ledger_json, promise_text, users_text

AUDIT_SCHEMA = 1


def text(r: AuditResult) -> str:
    lines = []
    for note in r.notes:
        lines.append(f"policybot: note: {note}")
    for f in r.findings:
        lines.append(finding_line(f))
        if f.users:
            lines.append(f"    users: {users_text(f)}")
        if f.grouped and f.members:
            lines.append(f"    kfuncs: {', '.join(f.members)}")
        if f.rule.startswith("DECLARATION_"):
            lines.append(f"    hint: {f.hint}")
            continue
        if f.rule == "DEPRECATION_STARTED":
            continue  # the message holds the new declaration and the earliest removal
        lines.append(f"    promise: {promise_text(f.promise)}")
        if f.base_location and f.head_location and f.base_location.path != f.head_location.path:
            lines.append(f"    was at: {f.base_location} ({r.base.rev if r.base else 'base'})")
        for n in f.notes:
            lines.append(f"    note: {n}")
        if f.verdict in (Verdict.VIOLATION, Verdict.WARNING) and not f.acknowledged:
            lines.append(f"    hint: {f.hint}")
    c = r.counts()
    scope = f"{r.base.rev}..{r.head.rev}" if r.base else r.head.rev
    summary = ", ".join(f"{c[k]} {k}{'s' if c[k] != 1 else ''}" for k in ("violation", "warning", "notice", "info"))
    if c["acknowledged"]:
        summary += f", {c['acknowledged']} acknowledged"
    lines.append(f"audit {scope}: {summary}")
    return "\n".join(lines) + "\n"


def json_text(r: AuditResult) -> str:
    doc = {
        "schema": AUDIT_SCHEMA,
        "base": None if r.base is None else {"rev": r.base.rev, "commit": r.base.commit},
        "head": {"rev": r.head.rev, "commit": r.head.commit},
        "notes": r.notes,
        "counts": r.counts(),
        "findings": [finding_json(f) for f in r.findings],
        "ledger": ledger_json(r.ledger),
    }
    return json.dumps(doc, indent=2) + "\n"


def markdown(r: AuditResult) -> str:
    scope = f"`{r.base.rev}..{r.head.rev}`" if r.base else f"`{r.head.rev}`"
    c = r.counts()
    def n(k: str) -> str:
        return f"{c[k]} {k}{'' if c[k] == 1 or k == 'info' else 's'}"

    out = [f"# policybot audit {scope}", "",
           f"{n('violation')}, {n('warning')}, {n('notice')}, {n('info')}, {c['acknowledged']} acknowledged", ""]
    for note in r.notes:
        out.append(f"> note: {note}")
    if r.findings:
        out += ["| verdict | rule | kfunc | where | what | promise |", "|---|---|---|---|---|---|"]
        for f in r.findings:
            verdict = f.verdict + (" (acknowledged)" if f.acknowledged else "")
            who = ", ".join(f"`{n}`" for n in f.members)
            where = (f"`{f.where}`" if f.where else "") + (f" (was `{f.was}`)" if f.was else "")
            cells = [verdict, f"`{f.rule}`", who, where,
                     f.message, promise_text(f.promise)]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out) + "\n"
