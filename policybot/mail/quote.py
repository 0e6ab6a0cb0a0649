"""Quoting, in a reply, the hunk of a patch that causes a finding."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..model.findings import Finding

_FILES = re.compile(r"^diff --git a/(\S+) b/(\S+)", re.M)


@dataclass
class Hunk:
    path: str
    header: str
    lines: list[tuple[str, int | None, int | None]]  # (text, old line, new line)


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@.*$")


def parse_hunks(diff_text: str) -> list[Hunk]:
    hunks: list[Hunk] = []
    path = None
    cur = None
    old = new = 0
    for line in diff_text.split("\n"):
        if line.startswith("diff --git "):
            m = _FILES.match(line)
            path = m.group(2) if m else None
            cur = None
        elif line.startswith("+++ ") or line.startswith("--- "):
            continue
        elif line.startswith("@@"):
            m = _HUNK.match(line)
            if not m or path is None:
                cur = None
                continue
            old, new = int(m.group(1)), int(m.group(3))
            cur = Hunk(path, line, [])
            hunks.append(cur)
        elif cur is not None and line[:1] in (" ", "-", "+"):
            if line.startswith("-"):
                cur.lines.append((line, old, None))
                old += 1
            elif line.startswith("+"):
                cur.lines.append((line, None, new))
                new += 1
            else:
                cur.lines.append((line, old, new))
                old += 1
                new += 1
    return hunks


QUOTED_LINE_CHARS = 200  # a quoted line is cut here: a sender's megabyte line is not mailed back


def _quoted(text: str) -> str:
    return f"> {text[:QUOTED_LINE_CHARS]}" + (" [...]" if len(text) > QUOTED_LINE_CHARS else "")


def quote_for(f: Finding, hunks: list[Hunk], context: int = 3, max_lines: int = 40,
              quoted: set[int] | None = None) -> list[str]:
    """The ``> ``-quoted lines of the hunk that causes ``f``, trimmed around the change
    and to ``max_lines`` lines of at most QUOTED_LINE_CHARS characters. A hunk whose index is
    in ``quoted`` (a mail quotes each hunk once) gives []; the one quoted is added to it."""
    at = _locate(f, hunks)
    return quote_hunk(hunks, at, context, max_lines, quoted) if at else []


def quote_hunk(hunks: list[Hunk], at: tuple[int, int], context: int = 3, max_lines: int = 40,
               quoted: set[int] | None = None) -> list[str]:
    """Hunk ``at[0]`` quoted around its line ``at[1]`` (see quote_for)."""
    if quoted is not None:
        if at[0] in quoted:
            return []
        quoted.add(at[0])
    out = _quote_lines(hunks[at[0]], at[1], context)
    if len(out) > max_lines:
        out = out[:max_lines - 1] + [_skip(len(out) - max_lines + 1)]
    return out


def hunks_naming(hunks: list[Hunk], word: str, paths: tuple[str, ...]) -> list[tuple[int, int]]:
    """Each hunk of a file in ``paths`` whose added or removed lines name ``word`` (a whole word):
    (hunk index, the first such line)."""
    pattern = re.compile(rf"(?<![\w]){re.escape(word)}(?![\w])")
    out = []
    for i, h in enumerate(hunks):
        if h.path in paths:
            idx = next((j for j, ln in enumerate(h.lines) if ln[0][:1] in "+-" and pattern.search(ln[0])), None)
            if idx is not None:
                out.append((i, idx))
    return out


def _locate(f: Finding, hunks: list[Hunk]) -> tuple[int, int] | None:
    for loc, side in ((f.head_location, 2), (f.base_location, 1)):
        if loc is None:
            continue
        for i, h in enumerate(hunks):
            if h.path != loc.path:
                continue
            idx = next((j for j, ln in enumerate(h.lines) if ln[side] == loc.line), None)
            if idx is not None:
                return i, idx
    return None


def _quote_lines(h: Hunk, idx: int, context: int) -> list[str]:
    changed = [i for i, ln in enumerate(h.lines) if ln[0][:1] in "+-"]
    near = [i for i in changed if abs(i - idx) <= context] or [idx]
    lo, hi = max(0, min(near) - context), min(len(h.lines), max(near) + context + 1)
    out = [_quoted(h.header)]
    if lo > 0:
        out.append(_skip(lo))
    out += [_quoted(ln[0]) for ln in h.lines[lo:hi]]
    if hi < len(h.lines):
        out.append(_skip(len(h.lines) - hi))
    return out


def _skip(n: int) -> str:
    """The line a quote has in place of ``n`` lines it leaves out."""
    return f"> [ ... skip {n} line{'' if n == 1 else 's'} ... ]"
