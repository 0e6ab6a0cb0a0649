"""The stability page (``policybot report``, the weekly run's report_html): self-contained
HTML from templates/report.html.j2, and the same data as JSON."""

from __future__ import annotations

import datetime as dt
import json

import jinja2

from ..model.vocabulary import LEVELS
from ..templating import environment

TEMPLATE = "report.html.j2"


def json_text(data: dict) -> str:
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

def page_environment() -> jinja2.Environment:
    """The page's templates (always the bundled ones), HTML-escaped, with the page's filters."""
    env = environment(html=True)
    env.filters["flagtext"] = lambda flags: " ".join(f.removeprefix("KF_") for f in flags)
    return env


LEVEL_RANK = {lvl: i for i, lvl in enumerate(LEVELS)}
VERDICT_RANK = {"violation": 0, "warning": 1, "notice": 2, "info": 3}


def html(data: dict) -> str:
    """The page: self-contained HTML (inline CSS, JS and SVG)."""
    template = page_environment().get_template(TEMPLATE)
    return template.render(d=data, layout=timeline_layout(data["timeline"]), level_rank=LEVEL_RANK,
                           verdict_rank=VERDICT_RANK)
