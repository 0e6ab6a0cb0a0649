"""Prototype compatibility as libbpf decides it when it resolves a kfunc extern.

``__bpf_core_types_are_compat`` (tools/lib/bpf/relo_core.c): after skipping
typedefs and modifiers, both sides must have the same kind (any two enums
match); integers match whatever their width (not bitfield-like ones);
pointers and arrays recurse into what they point at; struct, union, enum
and forward declarations match by kind alone, names are not compared;
function prototypes match when their arity is equal and each parameter and
the return type match.

Both sides are first turned into a ``Shape``: from BTF, or from the C type
text of a source tree's definition (which has no BTF). A name the text
cannot place (a typedef) is looked up among the object's own typedefs, else
it is ``unknown`` and not held against the program.
"""

from __future__ import annotations

import re
from ..kernel.ctype import INT_TYPEDEF, INT_WORDS, QUALIFIERS
from ..model.check import Shape
from .reader import Btf
from .types import Kind

MAX_DEPTH = 32  # libbpf's recursion limit


def btf_shape(btf: Btf, tid: int, depth: int = MAX_DEPTH) -> Shape:
    t = btf.skip_modifiers(tid)
    if depth <= 0:
        return Shape("unknown", text="(too deep)")
    k = t.kind
    if k == Kind.UNKN:
        return Shape("void", text="void")
    if k == Kind.INT:
        return Shape("int", bitfield=t.extra[1] != 0, text=t.name)
    if k == Kind.PTR:
        return Shape("ptr", btf_shape(btf, t.ref, depth - 1))
    if k == Kind.ARRAY:
        return Shape("array", btf_shape(btf, t.extra[0], depth - 1))
    if k in (Kind.STRUCT, Kind.UNION):
        return Shape(k.name.lower(), text=f"{k.name.lower()} {t.name}".strip())
    if k in (Kind.ENUM, Kind.ENUM64):
        return Shape("enum", text=f"enum {t.name}".strip())
    if k == Kind.FWD:
        return Shape("fwd", text=f"{'union' if t.kind_flag else 'struct'} {t.name} (declared only)")
    if k == Kind.FLOAT:
        return Shape("float", text=t.name)
    if k == Kind.FUNC_PROTO:
        return Shape("proto", btf_shape(btf, t.ref, depth - 1),
                     tuple(btf_shape(btf, m.type, depth - 1) for m in t.members))
    if k == Kind.FUNC:
        return btf_shape(btf, t.ref, depth - 1)  # a FUNC whose type is a FUNC: corrupt, and bounded
    return Shape("unknown", text=k.name)


_QUALIFIERS = re.compile(r"\b(" + "|".join(sorted(QUALIFIERS)) + r")\b")


def text_shape(text: str, local: Btf | None = None) -> Shape:
    """The shape of a C type as a source definition spells it (``const struct task_struct *``)."""
    s = _QUALIFIERS.sub(" ", text)
    s = re.sub(r"__attribute__\s*\(\(.*?\)\)", " ", s)
    if "(" in s:  # a function pointer
        return Shape("ptr", Shape("unknown", text=text.strip()))
    stars = s.count("*") + s.count("[")
    s = re.sub(r"[*\[\]0-9]", " ", s) if "[" in s else s.replace("*", " ")
    words = s.split()
    base: Shape
    if not words or words == ["void"]:
        base = Shape("void", text="void")
    elif words[0] in ("struct", "union", "enum") and len(words) >= 2:
        kind = words[0]
        base = Shape(kind, text=f"{kind} {words[1]}")
    elif set(words) <= INT_WORDS:
        base = Shape("int", text=" ".join(words))
    elif words in (["float"], ["double"], ["long", "double"]):
        base = Shape("float", text=" ".join(words))
    elif len(words) == 1 and INT_TYPEDEF.match(words[0]):
        base = Shape("int", text=words[0])
    else:
        base = Shape("unknown", text=" ".join(words))
        if local is not None and len(words) == 1:
            found = local.find(words[0], Kind.TYPEDEF)
            if found is not None:
                base = btf_shape(local, found.id)
    for _ in range(stars):
        base = Shape("ptr", base)
    return base


def incompatibility(local: Shape, target: Shape, where: str = "") -> str:
    """"" when libbpf accepts ``local`` (the program's) for ``target`` (the kernel's), else why not."""
    if local.kind == "unknown" or target.kind == "unknown":
        return ""
    if local.kind != target.kind:
        return f"{where}{local} in the program, {target} in the kernel".strip()
    if local.kind == "int":
        return f"{where}a bitfield-like integer" if local.bitfield or target.bitfield else ""
    if local.kind in ("ptr", "array"):
        return incompatibility(local.inner, target.inner, where)
    if local.kind == "proto":
        if len(local.params) != len(target.params):
            return (f"{where}{len(local.params)} parameter{'' if len(local.params) == 1 else 's'} in the program, "
                    f"{len(target.params)} in the kernel")
        for i, (a, b) in enumerate(zip(local.params, target.params), 1):
            why = incompatibility(a, b, f"{where}parameter {i}: ")
            if why:
                return why
        return incompatibility(local.inner, target.inner, f"{where}return type: ")
    return ""
