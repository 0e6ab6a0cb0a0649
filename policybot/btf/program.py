"""A compiled BPF object's kfunc externs, as libbpf sees them.

An extern kfunc is a ``FUNC`` with extern linkage in the ``.ksyms`` datasec
of the object's BTF; the ELF symbol table says whether it is weak. libbpf
looks it up by its essential name: everything before the last ``___``
separator (``bpf_core_essential_name_len`` in tools/lib/bpf/libbpf.c), so
``scx_bpf_dsq_insert___v2___compat`` asks the kernel for
``scx_bpf_dsq_insert___v2``, a kfunc 6.19 added under that very name.
Call sites come from the relocations of each call and the line info of
``.BTF.ext`` (Documentation/bpf/btf.rst, section 4.2).
"""

from __future__ import annotations

import bisect
import struct
from pathlib import Path

from ..model.census import essential_name
from ..model.check import BpfObject, Extern, SourceLine
from .container import BtfFile, load
from .reader import BtfError
from .types import Kind, Linkage

KSYMS = ".ksyms"


def read_object(path: str | Path) -> BpfObject:
    return from_btf_file(load(path))


def from_btf_file(f: BtfFile) -> BpfObject:
    if f.elf_kind != "object":
        raise BtfError(f"{f.path}: not a BPF object file (an ELF relocatable without .modinfo)")
    btf = f.btf
    bind = {s.name: s.bind for s in f.symbols if s.section == "SHN_UNDEF"}
    lines = _line_index(f)
    calls: dict[str, list[SourceLine]] = {}
    for r in f.relocations:
        if r.call and r.symbol in bind:
            src = _line_at(lines, r.section, r.offset)
            if src is not None:
                calls.setdefault(r.symbol, []).append(src)
    externs = []
    seen = set()
    for tid in btf.ids_of_kind(Kind.DATASEC):
        sec = btf.type(tid)
        if sec.name != KSYMS:
            continue
        for m in sec.members:
            t = btf.type(m.type)
            if t.kind != Kind.FUNC or t.linkage != Linkage.EXTERN:
                continue  # VARs in .ksyms are typed kernel variables, not kfuncs
            seen.add(t.name)
            externs.append(Extern(t.name, essential_name(t.name), bind.get(t.name) == "STB_WEAK",
                                  t.ref, btf.c_function(t), tuple(dict.fromkeys(calls.get(t.name, ())))))
    called = {r.symbol for r in f.relocations if r.call and r.symbol in bind}
    described = seen | {btf.type(i).name for i in btf.ids_of_kind(Kind.VAR)} | \
        {btf.type(i).name for i in btf.ids_of_kind(Kind.FUNC)}
    undescribed = tuple(sorted(called - described))
    return BpfObject(f.path, btf, tuple(sorted(externs, key=lambda e: e.name)), undescribed)


def _line_index(f: BtfFile) -> dict[str, tuple[list[int], list[SourceLine]]]:
    """Per section: sorted instruction byte offsets and the source line of each."""
    data = f.btf_ext
    if not data or len(data) < 24:
        return {}
    e = f.btf.endian
    try:
        magic, _version, _flags, hdr_len = struct.unpack_from(e + "HBBI", data, 0)
        if magic != 0xEB9F:
            raise BtfError(f"{f.path}: .BTF.ext has a bad magic {magic:#06x}")
        _fi_off, _fi_len, li_off, li_len = struct.unpack_from(e + "IIII", data, 8)
        pos = hdr_len + li_off
        end = pos + li_len
        if not li_len:
            return {}
        (rec_size,) = struct.unpack_from(e + "I", data, pos)
        if rec_size < 16:
            raise BtfError(f"{f.path}: .BTF.ext line_info record size {rec_size} is too small")
        pos += 4
        out: dict[str, tuple[list[int], list[SourceLine]]] = {}
        while pos < end:
            sec_off, count = struct.unpack_from(e + "II", data, pos)
            pos += 8
            offsets, srcs = out.setdefault(f.btf.string(sec_off), ([], []))
            for i in range(count):
                insn, file_off, line_off, line_col = struct.unpack_from(e + "IIII", data, pos + i * rec_size)
                offsets.append(insn)
                srcs.append(SourceLine(f.btf.string(file_off), line_col >> 10,
                                       line_col & 0x3FF, f.btf.string(line_off).strip()))
            pos += count * rec_size
    except struct.error:
        raise BtfError(f"{f.path}: .BTF.ext line info truncated") from None
    return out


def _line_at(lines, section: str, offset: int) -> SourceLine | None:
    entry = lines.get(section)
    if not entry:
        return None
    offsets, srcs = entry
    i = bisect.bisect_right(offsets, offset) - 1
    return srcs[i] if i >= 0 else None
