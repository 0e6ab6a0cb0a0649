"""``policybot report --html``: one self-contained HTML page about a tree's kfuncs.

``build_dashboard`` gathers plain, JSON-ready data (dates as ISO strings):
every kfunc with its declared level and promise dates, the support windows
and deprecation periods for the timeline, the current findings (an audit of
``rev`` alone) and each kfunc's history across the release tags.
``render_html`` lays that out (the timeline's geometry is computed here, not
in the template) and renders ``templates/report.html.j2`` with autoescape on
and ``StrictUndefined``. The page loads nothing from the network: CSS, JS and
SVG are inline, and everything is readable without JavaScript.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import jinja2
import pygit2

from ..kernel.gitrepo import repo_name
from ..kernel.scanner import Scanner
from ..policy.audit import Auditor, Promise
from ..policy.config import Policy
from ..policy.declarations import LEVELS
from ..report import finding_json
from ..templating import environment
from .history import jit_json, kfunc_history

DASHBOARD_SCHEMA = 1
TEMPLATE = "report.html.j2"
DECLARED = ("stable", "deprecating", "deprecated")  # the levels that get a timeline bar


def _iso(d: dt.date | None) -> str | None:
    return d.isoformat() if d else None


def _kfunc_row(k, p: Promise | None, today: dt.date, first_release: str | None) -> dict:
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


def build_dashboard(repo: pygit2.Repository, scanner: Scanner, policy: Policy, rev: str = "HEAD",
                    today: dt.date | None = None, tags_glob: str = "v*") -> dict:
    """Everything the HTML page shows, as JSON-ready data."""
    today = today or dt.date.today()
    auditor = Auditor(repo, scanner, policy, today)
    result = auditor.audit(rev)
    inv = result.head
    histories = kfunc_history(repo, scanner, tags_glob, policy, upto=rev)
    first = {h.name: h.first_release for h in histories}
    kfuncs = [_kfunc_row(k, result.promises.get(k.name), today, first.get(k.name))
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
        "history": {
            "releases": [{"name": r.name, "date": r.date.isoformat()} for r in histories.releases],
            "kfuncs": [h.to_json() for h in histories],
            "jit": jit_json(histories),
        },
    }


def dashboard_json(data: dict) -> str:
    return json.dumps(data, indent=2) + "\n"


# -- the timeline's geometry ----------------------------------------------------------------

ROW_H = 20
BAR_H = 12
AXIS_H = 28
PLOT_W = 720
CHAR_W = 7.2  # of the label font, monospace 12px


def _d(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


def timeline_layout(timeline: dict) -> dict:
    """Pixel positions for the inline SVG: one row per bar, a date axis and the today line."""
    today = _d(timeline["today"])
    bars = timeline["bars"]
    dates = [today]
    for b in bars:
        for s in b["segments"]:
            dates += [_d(x) for x in (s["start"], s["end"]) if x]
    lo, hi = min(dates), max(dates)
    if (hi - lo).days < 365:
        hi = max(hi, lo + dt.timedelta(days=365))
    pad = max(30, (hi - lo).days // 40)
    lo, hi = lo - dt.timedelta(days=pad), hi + dt.timedelta(days=pad)
    label_w = min(340, max(120, int(max((len(b["name"]) for b in bars), default=10) * CHAR_W) + 16))
    span = (hi - lo).days

    def x(d: dt.date) -> float:
        return round(label_w + (d - lo).days / span * PLOT_W, 1)

    years = range(lo.year + (0 if lo == dt.date(lo.year, 1, 1) else 1), hi.year + 1)
    ticks = [{"x": x(dt.date(y, 1, 1)), "label": str(y)} for y in years]
    if len(ticks) < 3:  # short ranges: quarters too
        ticks = []
        d = dt.date(lo.year, ((lo.month - 1) // 3) * 3 + 1, 1)
        while d <= hi:
            if d >= lo:
                ticks.append({"x": x(d), "label": d.strftime("%Y-%m") if d.month != 1 else str(d.year)})
            d = dt.date(d.year + (d.month + 3 > 12), (d.month + 2) % 12 + 1, 1)
    rows = []
    for i, b in enumerate(bars):
        y = AXIS_H + i * ROW_H
        segs = []
        for s in b["segments"]:
            start = _d(s["start"]) if s["start"] else lo
            end = _d(s["end"]) if s["end"] else hi
            segs.append({**s, "x": x(start), "w": max(1.0, round(x(end) - x(start), 1)), "open": s["end"] is None})
        rows.append({**b, "y": y, "bar_y": y + (ROW_H - BAR_H) / 2, "text_y": y + ROW_H / 2 + 4, "segs": segs})
    height = AXIS_H + len(bars) * ROW_H + 8
    return {"width": label_w + PLOT_W + 16, "height": height, "label_w": label_w, "plot_w": PLOT_W,
            "axis_y": AXIS_H - 6, "bottom": height - 4, "bar_h": BAR_H, "row_h": ROW_H,
            "ticks": ticks, "rows": rows, "today_x": x(today), "today": timeline["today"],
            "start": lo.isoformat(), "end": hi.isoformat()}


# -- rendering ------------------------------------------------------------------------------

def _environment() -> jinja2.Environment:
    env = environment(html=True)
    env.filters["flagtext"] = lambda flags: " ".join(f.removeprefix("KF_") for f in flags)
    return env


LEVEL_RANK = {lvl: i for i, lvl in enumerate(LEVELS)}
VERDICT_RANK = {"violation": 0, "warning": 1, "notice": 2, "info": 3}


def render_html(data: dict) -> str:
    """The page: self-contained HTML (inline CSS, JS and SVG)."""
    template = _environment().get_template(TEMPLATE)
    return template.render(d=data, layout=timeline_layout(data["timeline"]), level_rank=LEVEL_RANK,
                           verdict_rank=VERDICT_RANK)


def write_page(data: dict, path: str | Path) -> Path:
    """The page of ``data`` at ``path``, replaced in one step: readers never see half of it."""
    out = Path(path)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(render_html(data), encoding="utf-8")
    tmp.replace(out)
    return out


def page(repo: pygit2.Repository, scanner: Scanner, policy: Policy, rev: str, today: dt.date | None,
         tags_glob: str = "v*") -> dict:
    """The page's data (`policybot report`, and the weekly run's report_html)."""
    return build_dashboard(repo, scanner, policy, rev, today, tags_glob)
