"""What one revision's tree itself says kfunc flags and argument names mean.

Read from the files that define it, never from a table of releases:

- the ``KF_*`` flags ``include/linux/btf.h`` defines, with bit and comment;
- the argument-name suffixes the verifier matches (``kernel/bpf/verifier.c``,
  and ``kernel/bpf/btf.c``, where 6.1 checked kfunc arguments):
  ``btf_param_match_suffix(btf, arg, "__sz")`` (6.2+, also spelled
  ``__kfunc_param_match_suffix``) and 6.1's
  ``strncmp(param_name, "__sz", sfx_len)`` on the name's tail;
- the structs the verifier gives an argument kind of their own
  (``BTF_ID_LIST(kf_arg_btf_ids)`` in ``kernel/bpf/verifier.c``: bpf_dynptr,
  bpf_list_head, ... ), and each program type's context types
  (``include/linux/bpf_types.h``: ``BPF_PROG_TYPE(id, name, prog ctx, kernel ctx)``);
- which parameters of a ``KF_IMPLICIT_ARGS`` kfunc the verifier supplies:
  ``tools/bpf/resolve_btfids/main.c`` (``is_kf_implicit_arg``) drops every
  parameter from the first one that, qualifiers skipped, points to a struct
  named in ``kf_implicit_arg_types[]``.

policybot's interpretation of the names (flags.py) is separate: this module
only says what the tree defines. Results are cached by the blob ids read.
"""

from __future__ import annotations

import hashlib
import re
from typing import Callable

# The records live in the object model, below the readers that fill them.
from ..model.inventory import FlagDef, Location, Semantics, SuffixDef

# Bump when reading changes: cached semantics of an older version are ignored.
SEMANTICS_VERSION = 2
BTF_H = "include/linux/btf.h"
SUFFIX_FILES = ("kernel/bpf/verifier.c", "kernel/bpf/btf.c")
IMPLICIT_FILE = "tools/bpf/resolve_btfids/main.c"
BPF_TYPES_H = "include/linux/bpf_types.h"
FILES = (BTF_H, *SUFFIX_FILES, IMPLICIT_FILE, BPF_TYPES_H)

_FLAG = re.compile(rb"^[ \t]*#[ \t]*define[ \t]+(KF_\w+)[ \t]+\(?\s*(?:1U?L*\s*<<\s*(\d+)"
                   rb"|BIT(?:_ULL)?\s*\(\s*(\d+)\s*\)|(0x[0-9a-fA-F]+|\d+))\s*\)?"
                   rb"[ \t]*(?:/\*(.*?)\*/)?", re.M)
_SUFFIX_CALL = re.compile(rb"\b\w*param_match_suffix\s*\(([^;{}]*?)\)")
_SUFFIX_TAIL = re.compile(rb"\bstrncmp\s*\(\s*param_name\s*,\s*\"(__\w+)\"")
_LITERAL = re.compile(rb"\"(__\w+)\"")
_IMPLICIT_LIST = re.compile(rb"kf_implicit_arg_types\s*\[\s*\]\s*=\s*\{([^}]*)\}")
_FUNC_HEAD = re.compile(rb"^(?:static\s+)?[\w ]+?\**\s*(\w+)\s*\([^;]*$", re.M)
_FLAG_USE = re.compile(rb"\b(KF_[A-Z0-9_]+)\b")
_ARG_STRUCTS = re.compile(rb"BTF_ID_LIST\(kf_arg_btf_ids\)\s*((?:BTF_ID\(struct,\s*\w+\)\s*)+)")
_PROG_TYPE = re.compile(rb"^BPF_PROG_TYPE\(\s*BPF_PROG_TYPE_(\w+)\s*,\s*\w+\s*,\s*([^,]+?)\s*,\s*([^)]+?)\s*\)", re.M)


def _line_of(data: bytes, pos: int) -> int:
    return data.count(b"\n", 0, pos) + 1


def _norm(text: bytes) -> str:
    lines = [ln.strip().lstrip("*").strip() for ln in text.decode("utf-8", "replace").splitlines()]
    return " ".join(ln for ln in lines if ln)


def _comment_above(data: bytes, pos: int) -> str:
    """The block comment that ends on the line right above ``pos``'s line, or ""."""
    line_start = data.rfind(b"\n", 0, pos) + 1
    before = data[:line_start].rstrip()
    if not before.endswith(b"*/"):
        return ""
    start = before.rfind(b"/*")
    return _norm(before[start + 2:-2]) if start >= 0 else ""


def read_flags(path: str, data: bytes) -> tuple[FlagDef, ...]:
    out = {}
    for m in _FLAG.finditer(data):
        name = m.group(1).decode()
        shift = m.group(2) or m.group(3)  # (1 << n), BIT(n)
        bit = int(shift) if shift else None
        if bit is None and m.group(4):
            value = int(m.group(4), 0)
            bit = value.bit_length() - 1 if value and value & (value - 1) == 0 else None
        comment = _norm(m.group(5)) if m.group(5) else _comment_above(data, m.start())
        out.setdefault(name, FlagDef(name, bit, comment, Location(path, _line_of(data, m.start()))))
    return tuple(out.values())


def read_suffixes(path: str, data: bytes) -> list[SuffixDef]:
    out = []
    hits = [(m.start(), lit) for m in _SUFFIX_CALL.finditer(data) for lit in _LITERAL.findall(m.group(1))]
    hits += [(m.start(), m.group(1)) for m in _SUFFIX_TAIL.finditer(data)]
    for pos, lit in sorted(hits):
        line = _line_of(data, pos)
        out.append(SuffixDef(lit.decode(), _suffix_comment(data, pos), Location(path, line)))
    return out


def _suffix_comment(data: bytes, pos: int) -> str:
    """The comment above the function holding ``pos``, else the matching line itself."""
    head = None
    for m in _FUNC_HEAD.finditer(data, max(0, pos - 4000), pos):
        head = m
    if head is not None and data.count(b"\n}", head.start(), pos) == 0:
        comment = _comment_above(data, head.start())
        if comment:
            return comment
    line_start = data.rfind(b"\n", 0, pos) + 1
    line_end = data.find(b"\n", pos)
    return data[line_start:line_end if line_end >= 0 else None].decode("utf-8", "replace").strip()


def read_implicit(path: str, data: bytes) -> tuple[tuple[str, ...], Location] | None:
    m = _IMPLICIT_LIST.search(data)
    if not m:
        return None
    names = tuple(n.decode() for n in re.findall(rb"\"(\w+)\"", m.group(1)))
    return names, Location(path, _line_of(data, m.start()))


def read_arg_structs(data: bytes) -> tuple[str, ...] | None:
    m = _ARG_STRUCTS.search(data)
    return tuple(n.decode() for n in re.findall(rb"BTF_ID\(struct,\s*(\w+)\)", m.group(1))) if m else None


def read_ctx_types(data: bytes) -> tuple[tuple[str, str, str], ...]:
    norm = lambda b: " ".join(b.decode("utf-8", "replace").split())  # noqa: E731
    return tuple((m.group(1).decode(), norm(m.group(2)), norm(m.group(3))) for m in _PROG_TYPE.finditer(data))


_CACHE: dict[str, Semantics] = {}


def semantics_of(blob_ids: dict[str, str], read: Callable[[str], bytes],
                 load: Callable[[str], str | None] | None = None,
                 store: Callable[[str, str], None] | None = None) -> Semantics:
    """The semantics of a tree whose files in ``FILES`` have ``blob_ids`` (path -> oid; absent: missing).

    ``read(oid)`` gives a blob's bytes; it is called only on a cache miss, in
    memory and in the persistent cache behind ``load``/``store`` (key -> JSON).
    """
    key = ",".join(f"{p}={blob_ids.get(p, '')}" for p in FILES)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    store_key = f"semantics{SEMANTICS_VERSION}:" + hashlib.sha1(key.encode()).hexdigest()
    text = load(store_key) if load else None
    if text:
        sem = _CACHE[key] = Semantics.from_json(text)
        return sem
    flags = read_flags(BTF_H, read(blob_ids[BTF_H])) if BTF_H in blob_ids else None
    suffixes = verifier_flags = arg_structs = None
    if all(p in blob_ids for p in SUFFIX_FILES):
        seen: dict[str, SuffixDef] = {}
        used: set[str] = set()
        for path in SUFFIX_FILES:
            data = read(blob_ids[path])
            for s in read_suffixes(path, data):
                seen.setdefault(s.suffix, s)
            used.update(m.decode() for m in _FLAG_USE.findall(data))
            if path == SUFFIX_FILES[0]:
                arg_structs = read_arg_structs(data)
        suffixes, verifier_flags = tuple(seen.values()), tuple(sorted(used))
    ctx_types = read_ctx_types(read(blob_ids[BPF_TYPES_H])) if BPF_TYPES_H in blob_ids else None
    implicit = implicit_loc = None
    if flags is not None and any(f.name == "KF_IMPLICIT_ARGS" for f in flags):
        found = read_implicit(IMPLICIT_FILE, read(blob_ids[IMPLICIT_FILE])) if IMPLICIT_FILE in blob_ids else None
        if found:
            implicit, implicit_loc = found
    elif flags is not None:
        implicit = ()  # the tree has no KF_IMPLICIT_ARGS: no parameter is the verifier's
    sem = Semantics(key, flags, suffixes, implicit, implicit_loc, verifier_flags, arg_structs, ctx_types)
    _CACHE[key] = sem
    if store:
        store(store_key, sem.to_json())
    return sem
