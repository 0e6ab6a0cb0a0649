"""kfunc externs in BPF C: ``extern T name(params) __ksym [__weak];``.

libbpf resolves an extern in the ``.ksyms`` section against the kernel's BTF, and ``__ksym``
is the macro that puts it there (``tools/lib/bpf/bpf_helpers.h``). A declaration may hide
``__ksym`` behind a macro of its own (``#define __kfunc __ksym``): object-like macros whose
body says ``__ksym`` count too. Typed ksyms (variables, no parameter list) are not kfuncs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..kernel.csource import code_only, decode

_DIRECTIVE = re.compile(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", re.M)
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]+((?:\\\n|[^\n])*)", re.M)
_STATEMENT = re.compile(r"[^;{}]*;")
_DECLARATOR = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
_NOT_A_NAME = frozenset({"__attribute__", "__attribute", "__ksym", "__weak", "__section", "SEC", "sizeof",
                         "typeof", "__typeof__", "__always_inline", "static", "extern", "const", "_Pragma",
                         "__pragma", "asm", "__asm__", "__asm", "_Static_assert", "static_assert",
                         "__declspec"})
_WEAK = re.compile(r"\b__weak\b|\bweak\b")


@dataclass(frozen=True)
class KsymExtern:
    name: str  # as declared (flavors included)
    weak: bool
    line: int


def _code(data: bytes | str) -> tuple[str, re.Pattern, re.Pattern]:
    """The code (comments, literals and directives blanked), the pattern of what marks a ksym
    (``__ksym`` and macros that say it), and of what makes one weak."""
    text = code_only(decode(data) if isinstance(data, bytes) else data)
    defines = [(m[1], m[2]) for m in _DEFINE.finditer(text)]
    markers = {"__ksym"} | {name for name, body in defines if re.search(r"\b__ksym\b", body)}
    weak = {"__weak", "weak"} | {name for name, body in defines if _WEAK.search(body)}
    code = _DIRECTIVE.sub(lambda m: re.sub(r"[^\n]", " ", m[0]), text)
    return (code, re.compile(r"\b(?:" + "|".join(sorted(markers)) + r")\b"),
            re.compile(r"\b(?:" + "|".join(sorted(weak)) + r")\b"))


_PAREN_OR_CALL = re.compile(r"([A-Za-z_]\w*)\s*\(|[()]")


def _declarator(body: str, end: int) -> tuple[str, int] | None:
    """The declared function: the last name with a parameter list outside any parentheses
    before ``end`` (not ``__attribute__((...))``, not a ``_Pragma("...")`` a macro left)."""
    depth, found = 0, None
    for t in _PAREN_OR_CALL.finditer(body, 0, end):
        if t[0] == ")":
            depth = max(depth - 1, 0)
        elif t[0] == "(":
            depth += 1
        else:
            if depth == 0 and t[1] not in _NOT_A_NAME:
                found = (t[1], t.start(1))
            depth += 1
    return found


def ksym_externs(data: bytes | str) -> list[KsymExtern]:
    """The kfunc externs ``data`` declares, in order. Linear in its length."""
    code, marker, weak = _code(data)
    out = []
    for stmt in _STATEMENT.finditer(code):
        body = stmt[0]
        mark = marker.search(body)
        if not mark:
            continue
        declarator = _declarator(body, mark.start())
        if declarator is not None:
            name, at = declarator
            line = code.count("\n", 0, stmt.start() + at) + 1
            out.append(KsymExtern(name, bool(weak.search(body)), line))
    return out


_IDENT = re.compile(r"\b[A-Za-z_]\w*\b")
_FUNCTION_HEAD = re.compile(r"\b([A-Za-z_]\w*)\s*\([^;{}()]*(?:\([^;{}()]*\)[^;{}()]*)*\)[\s\w()]*$")
_MACRO = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)\(([^)\n]*)\)((?:\\\n|[^\n])*)", re.M)


def references(data: bytes | str, names: set[str]) -> dict[str, int]:
    """Of ``names``, those ``data`` names outside a ksym declaration and a directive (a call,
    or ``bpf_ksym_exists(name)``), each with the line of its first mention."""
    if not names:
        return {}
    code, marker, _ = _code(data)
    code = _STATEMENT.sub(lambda m: re.sub(r"[^\n]", " ", m[0]) if marker.search(m[0]) else m[0], code)
    out: dict[str, int] = {}
    for m in _IDENT.finditer(code):
        if m[0] in names and m[0] not in out:
            out[m[0]] = code.count("\n", 0, m.start()) + 1
    return out


def wrappers(data: bytes | str) -> dict[str, set[str]]:
    """The function-like macros and function definitions of ``data`` (a header's inline
    wrappers: ``scx_bpf_dsq_insert_vtime()`` calls ``__scx_bpf_dsq_insert_vtime`` or a
    ``___compat`` flavor), each with the identifiers its body names."""
    text = code_only(decode(data) if isinstance(data, bytes) else data)
    out: dict[str, set[str]] = {}
    for m in _MACRO.finditer(text):
        params = {p.strip() for p in m[2].split(",")}
        out[m[1]] = set(_IDENT.findall(m[3])) - params
    code = _DIRECTIVE.sub(lambda m: re.sub(r"[^\n]", " ", m[0]), text)
    depth, head_start, body_start, name = 0, 0, 0, None
    for brace in re.finditer(r"[{};]", code):
        i, ch = brace.start(), brace[0]
        if ch == "{":
            if depth == 0:
                head = _FUNCTION_HEAD.search(code, head_start, i)
                name, body_start = (head[1] if head else None), i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                if name:
                    out[name] = set(_IDENT.findall(code, body_start, i))
                head_start = i + 1
        elif ch == ";" and depth == 0:
            head_start = i + 1
    return out
