"""A C source file as the scanner needs to see it.

Not a compiler: enough of the preprocessor's view to find kfunc sets and
definitions reliably. Comments and string contents are blanked (newlines
kept, so offsets still map to lines), preprocessor directives are removed
from the code text and interpreted: ``#if`` nesting gives every line its
config guards, ``#if 0`` regions are dropped, and ``#define`` bodies are
kept aside as macros (a ``BTF_ID_FLAGS`` inside a macro body is not a
kfunc by itself; it becomes one only where the macro is expanded).
"""

from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass, field

# Comments, string and character literals, in one pass so that a "/*"
# inside a string is not a comment and a quote inside a comment is not a string.
_LEXICAL = re.compile(
    r"/\*.*?(?:\*/|\Z)|//[^\n]*|\"(?:\\.|[^\"\\\n])*\"?|'(?:\\.|[^'\\\n])*'?",
    re.S,
)
_DIRECTIVE = re.compile(r"#\s*(\w+)\s*(.*)", re.S)
_DEFINE = re.compile(r"(\w+)(\(([^)]*)\))?\s*(.*)", re.S)
_DEFINED = re.compile(r"\bdefined\s*(?:\(\s*(\w+)\s*\)|(\w+))")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Macro:
    name: str
    params: tuple[str, ...] | None  # None: object-like macro
    body: str
    line: int
    undef_line: int | None = None  # valid from line to undef_line (exclusive)


@dataclass(frozen=True)
class DocComment:
    text: str  # the comment's lines, with "/**", "*/" and leading " * " removed
    start_line: int
    end_line: int
    end_offset: int  # offset just past "*/" in the code text


@dataclass
class CSource:
    path: str
    code: str  # comments, strings and directives blanked; same length and lines as the input
    line_starts: list[int]
    guards_by_line: list[tuple[str, ...]]  # index = 1-based line number
    macros: dict[str, list[Macro]] = field(default_factory=dict)
    docs: list[DocComment] = field(default_factory=list)
    includes: list[tuple[str, bool]] = field(default_factory=list)  # (name, angle brackets)

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.line_starts, offset)

    def guards_at(self, offset: int) -> tuple[str, ...]:
        return self.guards_by_line[self.line_of(offset)]

    def macro_at(self, name: str, line: int) -> Macro | None:
        for macro in reversed(self.macros.get(name, ())):
            if macro.line <= line and (macro.undef_line is None or line < macro.undef_line):
                return macro
        return None


def decode(data: bytes) -> str:
    """Kernel sources are UTF-8 with the odd Latin-1 byte; never fail on them."""
    text = data.decode("utf-8", errors="replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def normalise_condition(text: str) -> str:
    text = _SPACES.sub(" ", text).strip()
    return _DEFINED.sub(lambda m: m.group(1) or m.group(2), text)


def _negate(cond: str) -> str:
    if re.fullmatch(r"!?[\w()]+", cond) and "(" not in cond:
        return cond[1:] if cond.startswith("!") else "!" + cond
    return f"!({cond})"


# Bounds that keep the preprocessor view linear in its input whatever a file holds:
# guards recorded per line (deeper #if nesting still nests, unrecorded) and the length
# of one guard's text (an #elif chain's negations).
MAX_GUARDS = 64
MAX_GUARD_TEXT = 512


@dataclass(frozen=True)
class _Frame:
    tried: str  # the #if condition ("0", "1", or other), then "|elif"/"|else" per branch
    negated: str  # the negation of every branch condition so far
    guards: tuple[str, ...]  # guards of the lines inside this branch
    dead: bool  # inside #if 0 (here or outside)


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_GUARD_TEXT else text[:MAX_GUARD_TEXT] + "..."


def _blank(text: str) -> str:
    """Same length, same newlines, nothing else."""
    if "\n" not in text:
        return " " * len(text)
    return "\n".join(" " * len(part) for part in text.split("\n"))


def _lex(text: str) -> tuple[str, list[tuple[int, int, str]]]:
    """Comments and literals blanked (same length, same newlines), and the /** */ comments."""
    docs: list[tuple[int, int, str]] = []

    def lexical(m: re.Match) -> str:
        tok = m.group(0)
        if tok.startswith("/*"):
            if tok.startswith("/**") and not tok.startswith("/**/"):
                docs.append((m.start(), m.end(), tok))
            # a comment is whitespace to the compiler; keep the newlines
            return " " + _blank(tok[1:])
        if tok[0] in "\"'":
            return tok[0] + _blank(tok[1:-1]) + tok[-1] if len(tok) > 1 else tok
        return _blank(tok)

    return _LEXICAL.sub(lexical, text), docs


def _record(word: str, rest: str, line: int, macros: dict[str, list[Macro]],
            includes: list[tuple[str, bool]]) -> None:
    """A live #define, #undef or #include."""
    if word == "define":
        dm = _DEFINE.match(rest)
        if dm:
            params = None
            if dm.group(2) is not None:
                params = tuple(p.strip() for p in dm.group(3).split(",") if p.strip())
            macros.setdefault(dm.group(1), []).append(Macro(dm.group(1), params, dm.group(4).strip(), line))
    elif word == "undef":
        name = rest.split()[0] if rest.split() else ""
        defs = macros.get(name)
        if defs and defs[-1].undef_line is None:
            last = defs[-1]
            defs[-1] = Macro(last.name, last.params, last.body, last.line, line)
    elif word == "include":
        im = re.match(r"[<\"]([^>\"]+)[>\"]", rest)
        if im:
            includes.append((im.group(1), rest.startswith("<")))


def _attach_docs(src: CSource, text: str, docs: list[tuple[int, int, str]]) -> None:
    text_starts = _starts_of(text) if docs else []
    for start, end, tok in docs:
        start_line = bisect.bisect_right(text_starts, start)
        end_line = start_line + tok.count("\n")
        src.docs.append(DocComment(_doc_text(tok), start_line, end_line,
                                   src.line_starts[end_line - 1] if end_line - 1 < len(src.line_starts)
                                   else len(src.code)))


def parse_csource(path: str, data: bytes | str) -> CSource:
    text = decode(data) if isinstance(data, bytes) else data
    code, docs = _lex(text)
    lines = code.split("\n")
    out_lines = list(lines)
    guards_by_line: list[tuple[str, ...]] = [()] * (len(lines) + 2)
    macros: dict[str, list[Macro]] = {}
    includes: list[tuple[str, bool]] = []
    # one frame per open #if: each frame carries what holds inside it (the guards and
    # whether the code is dead) so a directive costs the same at any nesting depth
    stack: list[_Frame] = []
    current: tuple[str, ...] = ()
    dead = False

    def push(negated: str, guard: str | None, frame_dead: bool, tried: str) -> None:
        outer_guards, outer_dead = (stack[-1].guards, stack[-1].dead) if stack else ((), False)
        guards = outer_guards
        if guard and len(outer_guards) < MAX_GUARDS:
            guards = outer_guards + (_bounded(guard),)
        stack.append(_Frame(tried, _bounded(negated), guards, outer_dead or frame_dead))

    i = 0
    n = len(lines)
    # only directive lines need a look of their own; the lines between take the state in bulk
    directives = [j for j, line in enumerate(lines) if line.lstrip().startswith("#")]
    for first in directives + [n]:
        if first < i:
            continue  # a continuation line of the directive before
        if first > i:
            guards_by_line[i + 1:first + 1] = [current] * (first - i)
            if dead:
                out_lines[i:first] = [""] * (first - i)
            i = first
        if first == n:
            break
        # a directive, possibly continued over several lines
        parts = [lines[i].lstrip()]
        while parts[-1].endswith("\\") and i + 1 < n:
            parts[-1] = parts[-1][:-1]
            i += 1
            parts.append(lines[i])
        for j in range(first, i + 1):
            out_lines[j] = ""
            guards_by_line[j + 1] = current
        i += 1
        m = _DIRECTIVE.match(" ".join(parts))
        if not m:
            continue
        word, rest = m.group(1), m.group(2).strip()
        if word in ("if", "ifdef", "ifndef"):
            cond = normalise_condition(rest)
            if word == "ifndef":
                cond = _negate(cond)
            push(_negate(cond), cond if cond != "1" else None, cond == "0", cond)
        elif word in ("elif", "else") and stack:
            frame = stack.pop()
            negated = frame.negated
            if word == "elif":
                cond = normalise_condition(rest)
                guard = f"{negated} && {cond}" if negated else cond
                push(f"{negated} && {_negate(cond)}", guard, cond == "0", frame.tried + "|elif")
            else:
                was_zero = frame.tried == "0"
                guard = None if was_zero else (negated or None)
                push(negated, guard, False if was_zero else frame.tried == "1", frame.tried + "|else")
        elif word == "endif" and stack:
            stack.pop()
        elif not dead:
            _record(word, rest, first + 1, macros, includes)
        current, dead = (stack[-1].guards, stack[-1].dead) if stack else ((), False)

    code = "\n".join(out_lines)
    # directives and dead code shortened lines: recompute line starts
    line_starts = [0, *itertools.accumulate(len(ln) + 1 for ln in out_lines[:-1])]
    src = CSource(path, code, line_starts, guards_by_line, macros, [], includes)
    _attach_docs(src, text, docs)
    return src


def _starts_of(text: str) -> list[int]:
    starts = [0]
    pos = text.find("\n")
    while pos != -1:
        starts.append(pos + 1)
        pos = text.find("\n", pos + 1)
    return starts


def _doc_text(tok: str) -> str:
    body = tok[3:-2] if tok.endswith("*/") else tok[3:]
    out = []
    for ln in body.split("\n"):
        ln = ln.strip()
        if ln.startswith("*"):
            ln = ln[1:]
            if ln.startswith(" "):
                ln = ln[1:]
        out.append(ln.rstrip())
    while out and not out[0]:
        out.pop(0)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


# The scanner reads these itself (and KF_* flags by name); expanding them would lose them.
KEEP_UNEXPANDED = frozenset(("BTF_ID_FLAGS", "BTF_ID", "BTF_ID_UNUSED"))


def expand_macros(text: str, lookup, depth: int = 0) -> str:
    """Expand function- and object-like macros found by ``lookup(name)``.

    Enough for the X-macro lists the kernel uses inside kfunc sets; no
    stringification or token pasting (those never produce kfunc entries).
    """
    if depth > 8:
        return text
    out = []
    pos = 0
    for m in re.finditer(r"\b[A-Za-z_]\w*\b", text):
        if m.start() < pos or m.group(0) in KEEP_UNEXPANDED or m.group(0).startswith("KF_"):
            continue
        macro = lookup(m.group(0))
        if macro is None:
            continue
        if macro.params is None:
            out.append(text[pos:m.start()])
            out.append(" " + expand_macros(macro.body, lookup, depth + 1) + " ")
            pos = m.end()
            continue
        args, end = call_args(text, m.end())
        if args is None:
            continue
        mapping = dict(zip(macro.params, args))
        body = re.sub(r"\b\w+\b", lambda t: mapping.get(t.group(0), t.group(0)), macro.body)
        out.append(text[pos:m.start()])
        out.append(" " + expand_macros(body, lookup, depth + 1) + " ")
        pos = end
    out.append(text[pos:])
    return "".join(out)


# A macro call's arguments are looked for this far: real calls (set entries,
# registrations, X-macro invocations) are short, and an unclosed "(" must not
# make every later call scan to the end of the file.
MAX_CALL_TEXT = 4096
MAX_CALL_DEPTH = 32
_ARG_PUNCT = re.compile(r"[(),]")


def call_args(text: str, pos: int) -> tuple[list[str] | None, int]:
    while pos < len(text) and text[pos] in " \t\n":
        pos += 1
    if pos >= len(text) or text[pos] != "(":
        return None, pos
    depth = 0
    args: list[str] = []
    start = pos + 1
    for m in _ARG_PUNCT.finditer(text, pos, pos + MAX_CALL_TEXT):
        c = m.group(0)
        i = m.start()
        if c == "(":
            depth += 1
            if depth > MAX_CALL_DEPTH:
                return None, pos
        elif c == ")":
            depth -= 1
            if depth == 0:
                args.append(text[start:i].strip())
                return args, i + 1
        elif depth == 1:
            args.append(text[start:i].strip())
            start = i + 1
    return None, pos


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside parentheses and brackets."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def code_only(text: str) -> str:
    """``text`` with comments and string and character literals blanked (same length, same
    newlines): what a compiler sees as code, for readers that look for declarations."""
    return _lex(text)[0]
