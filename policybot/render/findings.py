"""A finding as one compiler-style line and as JSON: the same for audit, review and check."""

from __future__ import annotations

from ..model.findings import Finding
from ..model.promises import Promise
from ..model.vocabulary import Level, PromiseState
from ..policy.rules import users_sentence


def promise_text(p: Promise | None) -> str:
    if p is None:
        return "undeclared (unstable)"
    d = p.declaration
    text = f"declared {d.level} in {d.location} ({d.source})"
    if p.since:
        text += f" since {p.since.release} ({p.since.date})" if p.since.release else f" since {p.since.date}"
        if p.since.how.startswith("fallback"):
            text += f" [{p.since.how}]"
    if p.ends:
        what = "promised until" if d.level == Level.STABLE else "earliest removal"
        text += f", {what} {p.ends.date}" + (" (estimated from release cadence)" if p.ends.estimated else "")
    if p.level_key == PromiseState.EXPIRED:
        text += " (window over)"
    return text


def finding_line(f: Finding, with_target: bool = False) -> str:
    """``where: verdict[RULE]: what``. A check finding's message names its extern; ``with_target``
    adds the target it was checked against (check with several targets)."""
    loc = f"{f.where}: " if f.where else ""
    what = f"{f.kfunc} {f.message}" if f.kfunc and not f.grouped and not f.object else f.message
    if f.grouped:
        what = f"{len(f.members)} kfunc{'s' if len(f.members) != 1 else ''}: {what}"
    ack = f" (acknowledged: {f.acknowledged})" if f.acknowledged else ""
    on = f" [{f.target}]" if with_target and f.target else ""
    was = f" (was {f.was})" if f.was else ""
    return f"{loc}{f.verdict}[{f.rule}]: {what}{was}{ack}{on}"


def users_text(f: Finding) -> str:
    """What the finding says of its kfunc's known users (policy/rules.toml: users), "" for none."""
    kfunc = ", ".join(f.called) or f.kfunc  # a grouped finding: the members its users call
    return users_sentence(f.rule, kfunc, tuple(u.text() for u in f.users)) if f.users else ""


def finding_json(f: Finding) -> dict:
    """A finding for machines (audit/review JSON, the HTML page's data). ``acknowledged`` is the
    operator's text; ``ack`` the same as data (the page words it as mail does, without ``source``)."""
    p = f.promise
    return {
        "rule": f.rule, "kfunc": f.kfunc, "kfuncs": list(f.members), "verdict": f.verdict, "message": f.message,
        "location": str(f.location) if f.location else None,
        "base_location": str(f.base_location) if f.base_location else None,
        "head_location": str(f.head_location) if f.head_location else None,
        # which tree ``location`` is in, and that tree's revision; ``hunk``: for a finding located
        # in the base only, the line of the head where its lines were (None when there is none)
        "tree": f.tree or None,
        "revision": (f.head_rev if f.tree == "head" else f.base_rev) or None,
        "hunk": str(f.hunk) if f.hunk else None,
        "acknowledged": f.acknowledged or None,
        "ack": f.ack.to_json() if f.ack else None,
        "notes": list(f.notes),
        "hint": f.hint,
        "users": [u.to_json() for u in f.users],
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


def ledger_json(entries) -> list[dict]:
    """The tree's dated promises (model.ledger.LedgerEntry), for audit JSON and the page."""
    return [{"path": e.note.path, "line": e.note.line, "text": e.note.text, "named": e.note.named or None,
             "release": e.note.release or None, "symbols": list(e.note.symbols), "status": e.status,
             "audited": e.current or None} for e in entries]

