"""Renderers for audit results: text (compiler-style), JSON, Markdown. Plain data in, text out."""

from __future__ import annotations

import json

from .policy.audit import AuditResult, Finding, Promise

AUDIT_SCHEMA = 1


def _promise_text(p: Promise | None) -> str:
    if p is None:
        return "undeclared (unstable)"
    d = p.declaration
    text = f"declared {d.level} in {d.location} ({d.source})"
    if p.since:
        text += f" since {p.since.release} ({p.since.date})" if p.since.release else f" since {p.since.date}"
        if p.since.how.startswith("fallback"):
            text += f" [{p.since.how}]"
    if p.ends:
        what = "promised until" if d.level == "stable" else "earliest removal"
        text += f", {what} {p.ends.date}" + (" (estimated from release cadence)" if p.ends.estimated else "")
    if p.level_key == "expired":
        text += " (window over)"
    return text


def finding_line(f: Finding) -> str:
    loc = f"{f.location}: " if f.location else ""
    status = f"{f.verdict}[{f.rule}]"
    ack = f" (acknowledged: {f.acknowledged})" if f.acknowledged else ""
    what = f"{f.kfunc} {f.message}" if f.kfunc and not f.grouped else f.message
    if f.grouped:
        what = f"{len(f.members)} kfunc{'s' if len(f.members) != 1 else ''}: {what}"
    return f"{loc}{status}: {what}{ack}"


def render_text(r: AuditResult) -> str:
    lines = []
    for note in r.notes:
        lines.append(f"policybot: note: {note}")
    for f in r.findings:
        lines.append(finding_line(f))
        if f.grouped and f.members:
            lines.append(f"    kfuncs: {', '.join(f.members)}")
        if f.rule.startswith("DECLARATION_"):
            lines.append(f"    hint: {f.hint}")
            continue
        if f.rule == "DEPRECATION_STARTED":
            continue  # the message holds the new declaration and the earliest removal
        lines.append(f"    promise: {_promise_text(f.promise)}")
        if f.base_location and f.head_location and f.base_location.path != f.head_location.path:
            lines.append(f"    was at: {f.base_location} ({r.base.rev if r.base else 'base'})")
        for n in f.notes:
            lines.append(f"    note: {n}")
        if f.verdict in ("violation", "warning") and not f.acknowledged:
            lines.append(f"    hint: {f.hint}")
    c = r.counts()
    scope = f"{r.base.rev}..{r.head.rev}" if r.base else r.head.rev
    summary = ", ".join(f"{c[k]} {k}{'s' if c[k] != 1 else ''}" for k in ("violation", "warning", "notice", "info"))
    if c["acknowledged"]:
        summary += f", {c['acknowledged']} acknowledged"
    lines.append(f"audit {scope}: {summary}")
    return "\n".join(lines) + "\n"


def finding_json(f: Finding) -> dict:
    """A finding for machines (audit/review JSON, the HTML page's data). ``acknowledged`` is the
    operator's text; ``ack`` the same as data (the page words it as mail does, without ``source``)."""
    p = f.promise
    return {
        "rule": f.rule, "kfunc": f.kfunc, "kfuncs": list(f.members), "verdict": f.verdict, "message": f.message,
        "location": str(f.location) if f.location else None,
        "base_location": str(f.base_location) if f.base_location else None,
        "head_location": str(f.head_location) if f.head_location else None,
        "acknowledged": f.acknowledged or None,
        "ack": f.ack.to_json() if f.ack else None,
        "notes": list(f.notes),
        "hint": f.hint,
        "declaration": None if p is None else {
            "level": p.declaration.level, "source": p.declaration.source,
            "location": str(p.declaration.location), "version": p.declaration.version,
            "replacement": p.declaration.replacement,
            "status": p.level_key,
            "since": None if not p.since else {"date": p.since.date.isoformat(), "release": p.since.release,
                                               "commit": p.since.commit, "how": p.since.how},
            "ends": None if not p.ends else {"date": p.ends.date.isoformat(), "estimated": p.ends.estimated},
        },
    }


def render_json(r: AuditResult) -> str:
    doc = {
        "schema": AUDIT_SCHEMA,
        "base": None if r.base is None else {"rev": r.base.rev, "commit": r.base.commit},
        "head": {"rev": r.head.rev, "commit": r.head.commit},
        "notes": r.notes,
        "counts": r.counts(),
        "findings": [finding_json(f) for f in r.findings],
    }
    return json.dumps(doc, indent=2) + "\n"


def render_markdown(r: AuditResult) -> str:
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
            cells = [verdict, f"`{f.rule}`", who, f"`{f.location}`" if f.location else "",
                     f.message, _promise_text(f.promise)]
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out) + "\n"
