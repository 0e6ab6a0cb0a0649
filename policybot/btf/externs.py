"""The extern functions of a BPF object's BTF: what its loader must resolve (no ELF parsing
here: the census reads symbols itself, check through btf/container.py)."""

from __future__ import annotations

from .types import Kind, Linkage


def extern_functions(btf, undefined: dict[str, bool]) -> list[tuple[str, bool]]:
    """(name as declared, weak) of every function an object leaves to its loader: a FUNC with
    extern linkage in its BTF whose ELF symbol is undefined (``undefined``: name -> weak, the
    global or weak symbols of no type libbpf's ``sym_is_extern`` takes). Those in ``.ksyms``
    are what libbpf resolves; some loaders resolve others themselves (bpfilter's objects declare
    ``bpf_dynptr_slice`` in no section), and ``.kconfig`` holds variables, never functions."""
    out = []
    for tid in btf.ids_of_kind(Kind.FUNC):
        t = btf.type(tid)
        if t.linkage == Linkage.EXTERN and t.name in undefined:
            out.append((t.name, undefined[t.name]))
    return sorted(out)
