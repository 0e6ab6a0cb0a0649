"""``policybot report --html``: one self-contained HTML page about a tree's kfuncs.

``build_dashboard`` gathers plain, JSON-ready data (dates as ISO strings):
every kfunc with its declared level and promise dates, the support windows
and deprecation periods for the timeline, the current findings (an audit of
``rev`` alone) and each kfunc's history across the release tags.
policybot/render/page.py lays that out (the timeline's geometry is computed
there, not in the template) and renders ``templates/report.html.j2`` with
autoescape on and ``StrictUndefined``. The page loads nothing from the network: CSS, JS and
SVG are inline, and everything is readable without JavaScript.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING


from ..errors import PolicybotError
from ..kernel.gitrepo import repo_name
from ..model.promises import Promise
from ..policy.audit import Auditor
from ..model.findings import Finding
from ..model.vocabulary import LEVELS
from ..render import render
from ..render.findings import finding_json, ledger_json
from ..render.history import jit_json
from .history import kfunc_history

if TYPE_CHECKING:
    from .context import Context

DASHBOARD_SCHEMA = 1
DECLARED = ("stable", "deprecating", "deprecated")  # the levels that get a timeline bar


def _iso(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None


def _kfunc_row(k, p: Promise | None, today: dt.date, first_release: str | None, users=()) -> dict:
    d = p.declaration if p else None
    ends = p.ends.date if p and p.ends else None
    return {
        "name": k.name,
        "test": k.test,
        "level": d.level if d else "unstable",
        "status": p.level_key if p else "unstable",
        "source": d.source if d else None,
        "declared_at": str(d.location) if d else None,
        "version": d.version if d else None,
        "since": _iso(p.since.date) if p and p.since else None,
        "since_release": p.since.release if p and p.since else None,
        "since_how": p.since.how if p and p.since else None,
        "ends": _iso(ends),
        "ends_estimated": bool(p and p.ends and p.ends.estimated),
        "ends_what": None if ends is None else ("stable window" if d.level == "stable" else "earliest removal"),
        "days_left": (ends - today).days if ends else None,
        "prog_types": list(k.prog_types),
        "flags": list(k.flags),
        "guards": list(k.guards),
        "replacement": d.replacement if d else None,
        "note": d.note if d else None,
        "location": str(k.location),
        "definition": str(k.definition.location) if k.definition else None,
        "signature": k.definition.signature.render(k.name) if k.definition else None,
        "first_release": first_release,
        "users": [u.to_json() for u in users],  # out-of-tree programs that call it (policybot census)
    }


def _bar(name: str, p: Promise) -> dict:
    """One timeline bar: the kfunc's support window and deprecation period, as dated segments."""
    level = p.declaration.level
    since = p.since.date if p.since else None
    ends = p.ends.date if p.ends else None
    segments = []
    if level == "stable":
        segments.append({"kind": "expired" if p.level_key == "expired" else "stable",
                         "start": _iso(since), "end": _iso(ends)})
    elif level == "deprecating":
        segments.append({"kind": "deprecating", "start": _iso(since), "end": None})
    else:
        if p.stable_since and since and p.stable_since.date < since:
            segments.append({"kind": "stable", "start": _iso(p.stable_since.date), "end": _iso(since)})
        segments.append({"kind": "due" if p.level_key == "deprecated_due" else "notice",
                         "start": _iso(since), "end": _iso(ends)})
    return {"name": name, "level": level, "status": p.level_key, "start": _iso(since), "end": _iso(ends),
            "estimated": bool(p.ends and p.ends.estimated),
            "since_release": p.since.release if p.since else None, "segments": segments}


@dataclass(frozen=True)
class Week:
    """What the weekly run's page shows beside its report: the tree, the week and its findings."""
    tree: str  # the page is titled with the tree's name ...
    described: str  # ... and `git describe` of its head
    name: str  # "2024-W07"
    base: str | None  # the week's range base..head (None: the first run, no range)
    findings: list[Finding]


def build_dashboard(auditor: Auditor, rev: str = "HEAD", tags_glob: str = "v*", week: Week | None = None) -> dict:
    """Everything the HTML page shows, as JSON-ready data, as of the auditor's day. With ``week``
    (the weekly run), its title and findings are the tree's and the week's: those of its report."""
    repo, scanner, policy, today = auditor.repo, auditor.scanner, auditor.policy, auditor.today
    result = auditor.audit(rev)
    inv = result.head
    histories = kfunc_history(repo, scanner, tags_glob, policy, upto=rev)
    first = {h.name: h.first_release for h in histories}
    kfuncs = [_kfunc_row(k, result.promises.get(k.name), today, first.get(k.name), auditor.judge.users.get(k.name, ()))
              for k in inv.selected(policy.include_tests)]
    bars = [_bar(n, p) for n, p in sorted(result.promises.items())
            if p.declaration.level in DECLARED]
    levels = {lvl: sum(1 for k in kfuncs if k["level"] == lvl) for lvl in LEVELS}
    return {
        "schema": DASHBOARD_SCHEMA,
        "repo": repo_name(repo),
        "rev": rev,
        "commit": inv.commit,
        "today": today.isoformat(),
        "policy": {"path": policy.path, "stable_window": str(policy.stable_window),
                   "notice_period": str(policy.notice_period), "include_tests": policy.include_tests,
                   "expiring_horizon_days": policy.expiring_horizon_days},
        "notes": list(result.notes),
        "levels": levels,
        "counts": result.counts(),
        "kfuncs": kfuncs,
        "timeline": {"today": today.isoformat(), "bars": bars},
        "findings": [finding_json(f) for f in result.findings],
        "ledger": ledger_json(result.ledger),
        "history": {
            "releases": [{"name": r.name, "date": r.date.isoformat()} for r in histories.releases],
            "kfuncs": [h.to_json() for h in histories],
            "jit": jit_json(histories),
        },
    } | (_week(week, result) if week else {})


def _week(week: Week, result) -> dict:
    """The page's title and findings as the week's report has them."""
    counts = dataclasses.replace(result, findings=week.findings).counts()
    return {"repo": week.tree, "rev": week.described, "counts": counts,
            "findings": [finding_json(f) for f in week.findings],
            "week": {"name": week.name, "base": week.base[:12] if week.base else None}}


def write_page(data: dict, path: str | Path) -> Path:
    """The page of ``data`` at ``path``, replaced in one step: readers never see half of it."""
    out = Path(path)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(render("page", "html", data), encoding="utf-8")
    tmp.replace(out)
    return out


def report(ctx: Context, rev: str, tags_glob: str, html: str | None) -> tuple[dict, Path | None]:
    """`policybot report`: the page's data, and the page written to ``html`` when given."""
    data = build_dashboard(ctx.auditor, rev, tags_glob)
    if not html:
        return data, None
    try:
        return data, write_page(data, html)
    except OSError as e:
        raise PolicybotError(f"{html}: {e.strerror}") from None
