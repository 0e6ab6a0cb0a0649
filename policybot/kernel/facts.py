"""What one C file says about kfuncs, before any cross-file linking.

``extract_facts`` is a pure function of the file's bytes (and path), so its
result is cached by blob id: a second revision re-reads only changed blobs.
Everything here is plain data that round-trips through JSON.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import asdict, dataclass, field

from .ctype import type_shape
from .flags import SUFFIXES
from .csource import CSource, expand_macros, parse_csource, split_top_level, call_args

# Bump when extraction changes: cached facts of an older version are ignored.
FACTS_VERSION = 13  # 13: KF_* flags written BIT(n) are read (12: one list of integer typedefs)

SET_MACROS = {
    "BTF_SET_START": ("BTF_SET_END", "BTF_SET"),
    "BTF_SET8_START": ("BTF_SET8_END", "BTF_SET8"),
    "BTF_KFUNCS_START": ("BTF_KFUNCS_END", "BTF_KFUNCS"),
}
# Each pattern below, to _CHECK_CALLS, starts with a literal and leaves the word boundary
# before it to _words:
# re finds a literal prefix at memchr speed, where a leading \b makes it try every position
# (30 ms instead of 1 ms for each scan of kernel/bpf/verifier.c).
_SET_START = re.compile(r"(BTF_SET_START|BTF_SET8_START|BTF_KFUNCS_START)\s*\(\s*(\w+)\s*\)")
_SET_END = re.compile(r"(BTF_SET_END|BTF_SET8_END|BTF_KFUNCS_END)\s*\(\s*(\w+)\s*\)")
_ENTRY = re.compile(r"(BTF_ID_FLAGS|BTF_ID)\s*\(")
_ID_LIST = re.compile(r"(BTF_ID_LIST|BTF_ID_LIST_GLOBAL|BTF_ID_LIST_SINGLE)\s*\(\s*(\w+)")
_KSET_STRUCT = re.compile(r"struct\s+btf_kfunc_id_set\s+(\w+)\s*=\s*\{")
_OPS_STRUCT = re.compile(r"struct\s+(bpf_verifier_ops|bpf_struct_ops)\s+(\w+)\s*=\s*\{")
_CALLS = re.compile(
    r"(register_btf_kfunc_id_set|register_btf_fmodret_id_set|register_btf_id_dtor_kfuncs"
    r"|register_kfunc_btf_id_set|DEFINE_KFUNC_BTF_ID_SET)\s*\(")
_CHECK_CALLS = re.compile(r"(btf_id_set_contains|bpf_check_mod_kfunc_call)\s*\(\s*&\s*(\w+)")
_FIELD = re.compile(r"\.\s*(\w+)\s*=\s*(.+)", re.S)
_IDENT = re.compile(r"\b[A-Za-z_]\w*\b")
_WORDS = re.compile(r"[A-Za-z_]\w*|\*|\.\.\.|\S")
_SPACES = re.compile(r"\s+")

# Words that decorate a definition but are not part of its C type.
DECORATIONS = frozenset("""
    static inline __always_inline noinline __noinline __used __bpf_kfunc __weak notrace
    __init __exit __nocfi __maybe_unused __noclone __visible extern __cold __hot
    __bpf_fastcall __no_kcsan __no_sanitize_address __flatten __bpf_hook
""".split())
# Argument suffixes policybot knows (flags.SUFFIXES), longest first so "__szk" wins over "__sz";
# what a revision's verifier matches is read from its tree (semantics.py)
ARG_SUFFIXES = tuple(sorted(SUFFIXES, key=lambda s: (-len(s), s)))


@dataclass
class Entry:
    name: str
    line: int
    flags: str  # verbatim, whitespace-normalised; "" when none
    guards: list[str]
    via_macro: str = ""


@dataclass
class IdSet:
    name: str
    macro: str  # BTF_SET, BTF_SET8 or BTF_KFUNCS
    line: int
    end_line: int
    guards: list[str]
    entries: list[Entry]


@dataclass
class KsetStruct:
    """A ``struct btf_kfunc_id_set`` initializer (5.18+)."""
    var: str
    line: int
    fields: dict[str, str]
    guards: list[str]


@dataclass
class Call:
    """A registration-like call: which function, its arguments, where."""
    func: str
    args: list[str]
    line: int
    guards: list[str]
    in_function: str  # the function the call sits in ("" at file scope)


@dataclass
class Param:
    type: str
    name: str
    suffix: str


@dataclass
class FuncDef:
    name: str
    line: int
    return_type: str
    params: list[Param]
    variadic: bool
    static: bool
    marked: bool  # carries __bpf_kfunc
    guards: list[str]
    doc: str  # the kernel-doc comment right above, "" if none
    doc_line: int
    set_checks: list[str]  # sets / module lists a legacy check function consults


@dataclass
class PendingMacro:
    """Text inside a set that names a macro this file does not define."""
    set_name: str
    text: str
    line: int
    guards: list[str]
    local_macros: dict[str, list]  # name -> [params or None, body]


@dataclass
class FileFacts:
    path: str
    sets: list[IdSet] = field(default_factory=list)
    structs: list[KsetStruct] = field(default_factory=list)
    ops: list[dict] = field(default_factory=list)  # {kind, var, line, check, verifier_ops}
    calls: list[Call] = field(default_factory=list)
    dtor_funcs: list[list] = field(default_factory=list)  # [name, line]
    defs: dict[str, FuncDef] = field(default_factory=dict)
    pending: list[PendingMacro] = field(default_factory=list)
    macros: dict[str, list] = field(default_factory=dict)  # only for headers: name -> [params, body]
    includes: list[list] = field(default_factory=list)
    all_defs: bool = False  # defs holds every function, not only the kfunc-related ones
    # structs a kept definition points to, defined in this file with scalar members only
    scalar_structs: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    def json_text(self) -> str:
        """``json.dumps(self.to_json())``, the same text without asdict's deep copy (a cold
        scan stores every parsed file)."""
        return json.dumps(self, default=vars)

    @classmethod
    def from_json(cls, d: dict) -> "FileFacts":
        return cls(
            path=d["path"],
            sets=[IdSet(**{**s, "entries": [Entry(**e) for e in s["entries"]]}) for s in d["sets"]],
            structs=[KsetStruct(**s) for s in d["structs"]],
            ops=d["ops"],
            calls=[Call(**c) for c in d["calls"]],
            dtor_funcs=d["dtor_funcs"],
            defs={k: FuncDef(**{**v, "params": [Param(**p) for p in v["params"]]})
                  for k, v in d["defs"].items()},
            pending=[PendingMacro(**p) for p in d["pending"]],
            macros=d["macros"],
            includes=d["includes"],
            all_defs=d["all_defs"],
            scalar_structs=d["scalar_structs"],
        )


def norm(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


_BRACES = re.compile(r"[{}]")


def _matching_brace(code: str, open_pos: int) -> int:
    depth = 0
    for m in _BRACES.finditer(code, open_pos):
        depth += 1 if m.group(0) == "{" else -1
        if depth == 0:
            return m.start()
    return len(code)


def extract_facts(path: str, data: bytes, *, all_defs: bool = False,
                  want_macros: bool = False) -> FileFacts:
    """Facts of one file. Definitions are kept for the file's own set entries,
    ``__bpf_kfunc``-marked functions and legacy check callbacks, or for every
    function with ``all_defs`` (a file searched for a definition listed elsewhere)."""
    src = parse_csource(path, data)
    facts = FileFacts(path=path, includes=[[n, a] for n, a in src.includes], all_defs=all_defs)
    code = src.code
    if want_macros:
        facts.macros = {name: [list(d[-1].params) if d[-1].params is not None else None, d[-1].body]
                        for name, d in src.macros.items()}
    _extract_sets(src, facts)
    wanted = None if all_defs else {e.name for st in facts.sets for e in st.entries}
    blocks: list[tuple[int, int]] = []
    functions = _functions(src, wanted, blocks)
    facts.defs = {f.name: f for f, _, _ in functions}
    facts.scalar_structs = _scalar_structs(code, {shape[1] for fd in facts.defs.values() for p in fd.params
                                                  if (shape := type_shape(p.type))[0] == "struct"})
    for m in _words(_KSET_STRUCT, code):
        open_pos = m.end() - 1
        body = code[open_pos + 1:_matching_brace(code, open_pos)]
        facts.structs.append(KsetStruct(m.group(1), src.line_of(m.start()), _fields(body),
                                        list(src.guards_at(m.start()))))
    for m in _words(_OPS_STRUCT, code):
        open_pos = m.end() - 1
        fields = _fields(code[open_pos + 1:_matching_brace(code, open_pos)])
        if "check_kfunc_call" in fields or "verifier_ops" in fields:
            facts.ops.append({"kind": m.group(1), "var": m.group(2), "line": src.line_of(m.start()),
                              "check": fields.get("check_kfunc_call", ""),
                              "verifier_ops": fields.get("verifier_ops", "").lstrip("&").strip()})
    spans = [(start, end, f.name) for f, start, end in functions]
    for m in _words(_CALLS, code):
        args, _ = call_args(code, m.end() - 1)
        if args is None:
            continue
        owner = next((name for start, end, name in spans if start <= m.start() < end), "")
        if not owner:
            i = bisect.bisect_right(blocks, (m.start(), len(code))) - 1
            owner = "<block>" if i >= 0 and blocks[i][0] <= m.start() < blocks[i][1] else ""
        if not owner and m.group(1).startswith("register_"):
            continue  # registrations run inside functions; at file scope this is a prototype
        facts.calls.append(Call(m.group(1), [norm(a) for a in args], src.line_of(m.start()),
                                list(src.guards_at(m.start())), owner))
    if facts.calls and any(c.func == "register_btf_id_dtor_kfuncs" for c in facts.calls):
        for m in _words(_ID_LIST, code):
            body_end = code.find(";", m.end())
            for e in re.finditer(r"\bBTF_ID\s*\(\s*func\s*,\s*(\w+)\s*\)", code[m.end():body_end if body_end > 0 else None]):
                facts.dtor_funcs.append([e.group(1), src.line_of(m.end() + e.start())])
    return facts


def _scalar_structs(code: str, names: set[str]) -> list[str]:
    """Which of ``names`` this file defines as a struct of scalars: integers, enums, arrays of
    them and such structs (7.2 kernel/bpf/verifier.c __btf_type_is_scalar_struct). The verifier
    takes a pointer to one as memory the program fills, not as an object it must trust.
    Read conservatively: a pointer, a union or nested braces, a function pointer, an attribute
    or a type not known as an integer leave the struct out (the verifier's view stays assumed)."""
    bodies: dict[str, str] = {}
    for name in names:
        m = next(_words(re.compile(r"struct\s+" + re.escape(name) + r"\s*\{"), code), None)
        if m is not None:
            bodies[name] = code[m.end():_matching_brace(code, m.end() - 1)]
    return sorted(n for n in bodies if _is_scalar_body(bodies[n]))


def _is_scalar_body(body: str) -> bool:
    members = [m.strip() for m in body.split(";")]
    if "{" in body or "}" in body or not any(members):
        return False
    for m in filter(None, members):
        if "(" in m or "*" in m or "#" in m:
            return False
        decl = re.sub(r"\[[^\]]*\]|:\s*\w+", "", m)  # array bounds, bit-field widths
        words = decl.replace(",", " ").split()
        if len(words) < 2 or type_shape(" ".join(words[:-1]))[0] not in ("int", "enum"):
            return False
    return True


def _words(pattern: re.Pattern, text: str, pos: int = 0):
    """``pattern.finditer(text)`` for matches that start a word, as a leading ``\\b`` would
    have them: a match inside a longer word is skipped and the search goes on one
    character after its start, so none that starts later is missed."""
    while (m := pattern.search(text, pos)) is not None:
        at = m.start()
        if at and (text[at - 1].isalnum() or text[at - 1] == "_"):
            pos = at + 1
            continue
        yield m
        pos = m.end() if m.end() > at else at + 1


def _fields(body: str) -> dict[str, str]:
    fields = {}
    for part in split_top_level(body):
        fm = _FIELD.match(part.strip())
        if fm:
            fields[fm.group(1)] = norm(fm.group(2))
    return fields


def _extract_sets(src: CSource, facts: FileFacts) -> None:
    code = src.code
    for m in _words(_SET_START, code):
        end_macro, kind = SET_MACROS[m.group(1)]
        name = m.group(2)
        end = next((e for e in _words(_SET_END, code, m.end()) if e.group(1) == end_macro and e.group(2) == name),
                   None)
        body_end = end.start() if end else len(code)
        start_line = src.line_of(m.start())
        idset = IdSet(name, kind, start_line, src.line_of(body_end), list(src.guards_at(m.start())), [])
        body = code[m.end():body_end]
        consumed = []
        for e in _words(_ENTRY, body):
            if consumed and e.start() < consumed[-1][1]:
                continue  # inside the previous entry's arguments
            args, stop = call_args(body, e.end() - 1)
            if args is None:
                continue
            consumed.append((e.start(), stop))
            entry = _entry(args, src.line_of(m.end() + e.start()), list(src.guards_at(m.end() + e.start())))
            if entry:
                idset.entries.append(entry)
        # whatever else stands in the set is a macro invocation (X-macro lists)
        rest, pos = [], 0
        for a, b in consumed:
            rest.append((pos, body[pos:a]))
            pos = b
        rest.append((pos, body[pos:]))
        local = None  # macros defined inside the set, computed once for all pending invocations
        for offset, chunk in rest:
            for ident in _IDENT.finditer(chunk):
                if ident.start() and chunk[ident.start() - 1] not in " \t\n;)":
                    continue
                if ident.group(0) == "BTF_ID_UNUSED":
                    continue
                at = m.end() + offset + ident.start()
                line = src.line_of(at)
                if local is None:
                    local = {n: [list(d.params) if d.params is not None else None, d.body]
                             for n, defs in src.macros.items() for d in defs
                             if idset.line <= d.line <= idset.end_line}
                _expand_in_set(src, facts, idset, chunk, ident, line, list(src.guards_at(at)), local)
        facts.sets.append(idset)


def _expand_in_set(src, facts, idset, chunk, ident, line, guards, local) -> None:
    name = ident.group(0)
    args, stop = call_args(chunk, ident.end())
    text = chunk[ident.start():stop] if args is not None else name
    if src.macro_at(name, line) is None:
        facts.pending.append(PendingMacro(idset.name, text, line, guards, local))
    else:
        expanded = expand_macros(text, lambda n: src.macro_at(n, line))
        idset.entries.extend(entries_from_text(expanded, line, guards, via=name))


def entries_from_text(text: str, line: int, guards: list[str], via: str) -> list[Entry]:
    out = []
    for e in _words(_ENTRY, text):
        args, _ = call_args(text, e.end() - 1)
        entry = _entry(args, line, guards, via) if args else None
        if entry:
            out.append(entry)
    return out


def _entry(args: list[str], line: int, guards: list[str], via: str = "") -> Entry | None:
    if len(args) < 2 or args[0].strip() != "func" or not re.fullmatch(r"\w+", args[1].strip()):
        return None
    flags = norm(",".join(args[2:]))
    return Entry(args[1].strip(), line, flags, guards, via)


def _functions(src: CSource, wanted: set[str] | None,
               blocks: list[tuple[int, int]]) -> list[tuple[FuncDef, int, int]]:
    """Top-level function definitions: (def, body start, body end).

    With ``wanted``, only those names, ``__bpf_kfunc``-marked functions and
    legacy check callbacks are parsed in full: most functions of a file are
    none of these, and parsing parameters is the expensive part.
    """
    code = src.code
    out = []
    depth = 0
    boundary = 0  # end of the previous top-level construct
    open_at = -1
    head_start = 0
    for m in _PUNCT.finditer(code):
        c = m.group(0)
        if c == ";":
            if depth == 0:
                boundary = m.end()
        elif c == "}":
            depth -= 1
            if depth <= 0:
                depth = 0
                if open_at >= 0:
                    blocks.append((open_at, m.start()))
                    body = code[open_at:m.start()]
                    checks = []
                    if "btf_id_set_contains" in body or "bpf_check_mod_kfunc_call" in body:
                        checks = [c.group(2) for c in _words(_CHECK_CALLS, body)]
                    fd = None
                    if wanted is None or checks or "__bpf_kfunc" in code[head_start:open_at] or \
                            _name_before(code, head_start, open_at) in wanted:
                        fd = _definition_before(src, head_start, open_at)
                    if fd is not None:
                        fd.set_checks = checks
                        out.append((fd, open_at, m.start()))
                    open_at = -1
                boundary = m.end()
        else:
            depth += 1
            if depth == 1:
                open_at, head_start = m.start(), boundary
    return out


def _name_before(code: str, start: int, brace: int) -> str:
    head = code[start:brace].rstrip()
    if not head.endswith(")"):
        return ""
    nm = _HEAD_NAME.search(head, 0, head.find("(") if "(" in head else len(head))
    return nm.group(1) if nm else ""


_HEAD_NAME = re.compile(r"([A-Za-z_]\w*)\s*$")
_PUNCT = re.compile(r"[{};]")


def _definition_before(src: CSource, boundary: int, brace: int) -> FuncDef | None:
    code = src.code
    head = code[boundary:brace].rstrip()
    if not head.endswith(")"):
        return None
    # the parameter list: match the final ')' back to its '('
    depth = 0
    for i in range(len(head) - 1, -1, -1):
        if head[i] == ")":
            depth += 1
        elif head[i] == "(":
            depth -= 1
            if depth == 0:
                break
    else:
        return None
    params_text = head[i + 1:-1]
    before = head[:i].rstrip()
    nm = re.search(r"([A-Za-z_]\w*)$", before)
    if not nm or "=" in before:
        return None
    name = nm.group(1)
    if name in ("if", "while", "for", "switch", "return", "sizeof"):
        return None
    prefix = before[:nm.start()]
    words = _WORDS.findall(prefix)
    # a macro call before the definition (e.g. "__diag_pop()" without ';') is not part of the type
    if "(" in prefix or ")" in prefix:
        prefix = prefix[prefix.rfind(")") + 1:]
        words = _WORDS.findall(prefix)
    if not words:
        return None
    static = "static" in words
    marked = "__bpf_kfunc" in words
    type_words = [w for w in words if w not in DECORATIONS]
    if not type_words:
        return None
    params, variadic = parse_params(params_text)
    name_at = boundary + nm.start()
    line = src.line_of(name_at)
    doc, doc_line = "", 0
    for d in reversed(src.docs):
        if d.end_line > line:
            continue
        # attached only if nothing but decorations stands between comment and name
        if not re.search(r"[;{}]", code[src.line_starts[d.end_line - 1]:name_at]):
            doc, doc_line = d.text, d.start_line
        break
    return FuncDef(name, line, type_text(type_words), params, variadic, static, marked,
                   list(src.guards_by_line[line]), doc, doc_line, [])


def type_text(words: list[str]) -> str:
    """Canonical spelling of a C type: single spaces, '*' attached."""
    out = " ".join(words)
    out = re.sub(r"\s*\*\s*", " *", out).replace("* *", "**").replace(" *", " *")
    out = re.sub(r"\*\s+(?=\*)", "*", out)
    return out.strip()


def parse_params(text: str) -> tuple[list[Param], bool]:
    text = norm(text)
    if text in ("", "void"):
        return [], False
    params, variadic = [], False
    for part in split_top_level(text):
        part = part.strip()
        if part == "...":
            variadic = True
            continue
        params.append(_param(part))
    return params, variadic


def _param(text: str) -> Param:
    fp = re.match(r"(.*?)\(\s*\*?\s*(\w+)\s*\)\s*\((.*)\)$", text)
    if fp:  # function pointer, or a function type (decays to one): "bool (less)(...)"
        inner = ", ".join(type_text(_WORDS.findall(a)) for a in split_top_level(fp.group(3)))
        return Param(f"{type_text(_WORDS.findall(fp.group(1)))} (*)({inner})", fp.group(2), suffix_of(fp.group(2)))
    arr = re.match(r"(.*?)(\w+)\s*(\[.*\])$", text)
    if arr:
        return Param(type_text(_WORDS.findall(arr.group(1))) + " " + arr.group(3).replace(" ", ""),
                     arr.group(2), suffix_of(arr.group(2)))
    words = _WORDS.findall(text)
    if len(words) >= 2 and re.fullmatch(r"[A-Za-z_]\w*", words[-1]) and words[-1] not in (
            "int", "long", "char", "short", "unsigned", "signed") and not (
            len(words) == 2 and words[0] in ("struct", "union", "enum")):
        return Param(type_text(words[:-1]), words[-1], suffix_of(words[-1]))
    return Param(type_text(words), "", "")


def suffix_of(name: str) -> str:
    for suffix in ARG_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return suffix
    return ""
