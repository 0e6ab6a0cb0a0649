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
from dataclasses import replace
from pathlib import Path

from ..model.census import essential_name
from ..model.check import BpfObject, Extern, SourceLine
from .container import BtfFile, load, load_bytes
from .reader import BtfError
from .types import Kind, Linkage

KSYMS = ".ksyms"


def read_object(path: str | Path) -> BpfObject:
    return from_btf_file(load(path))


def read_object_bytes(data: bytes, name: str) -> BpfObject:
    """An object cut out of a program or package (usage/embedded.py), named ``name``."""
    return replace(from_btf_file(load_bytes(data, name)), source=data)


def from_btf_file(f: BtfFile) -> BpfObject:
    if f.elf_kind != "object":
        raise BtfError(f"{f.path}: not a BPF object file (an ELF relocatable without .modinfo)")
    btf = f.btf
    bind = {s.name: s.bind for s in f.symbols if s.section == "SHN_UNDEF"}
    lines = _line_index(f)
    calls: dict[str, list[SourceLine]] = {}
    addresses: dict[str, list[SourceLine]] = {}
    called, addressed = set(), set()
    for r in f.relocations:
        if r.symbol in bind:
            (called if r.call else addressed).add(r.symbol)
            src = _line_at(lines, r.section, r.offset)
            if src is not None:
                (calls if r.call else addresses).setdefault(r.symbol, []).append(src)
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
            # an extern the code never uses is judged as a call, as it would be once called
            externs.append(Extern(t.name, essential_name(t.name), bind.get(t.name) == "STB_WEAK",
                                  t.ref, btf.c_function(t), tuple(dict.fromkeys(calls.get(t.name, ()))),
                                  called=t.name in called or t.name not in addressed,
                                  addressed=tuple(dict.fromkeys(addresses.get(t.name, ()))),
                                  address_taken=t.name in addressed))
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


def declaration_lines(source: str | bytes, names: set[str], name: str = "") -> dict[str, SourceLine]:
    """Where each extern of ``names`` is declared, from the object's DWARF (``clang -g``): the
    ``DW_AT_decl_file``/``DW_AT_decl_line`` of its declaring ``DW_TAG_subprogram``. ``source``
    is the object's path or bytes. BTF line info covers instructions only; a declaration has
    none. An object without DWARF, or one pyelftools cannot read, has no lines: {}."""
    import io

    from elftools.common.exceptions import DWARFError, ELFError
    from elftools.elf.elffile import ELFFile

    from .. import bounded
    data = source if isinstance(source, bytes) else bounded.read_input(source)
    out: dict[str, SourceLine] = {}
    try:
        elf = ELFFile(io.BytesIO(data))
        if not elf.has_dwarf_info():
            return out
        # a BPF object's DWARF relocations are REL with their addend in place over section
        # symbols of value 0: the bytes as they are hold the right offsets
        dwarf = elf.get_dwarf_info(relocate_dwarf_sections=False)
        for cu in dwarf.iter_CUs():
            program = dwarf.line_program_for_CU(cu)
            files = program["file_entry"] if program else []
            dirs = program["include_directory"] if program else []
            base = 0 if cu.header.version >= 5 else 1
            for die in cu.iter_DIEs():
                a = die.attributes
                if die.tag != "DW_TAG_subprogram" or "DW_AT_declaration" not in a or "DW_AT_name" not in a:
                    continue
                sym = a["DW_AT_name"].value.decode("utf-8", "replace")
                if sym not in names or sym in out or "DW_AT_decl_line" not in a:
                    continue
                i = a["DW_AT_decl_file"].value - base if "DW_AT_decl_file" in a else -1
                path = ""
                if 0 <= i < len(files):
                    entry = files[i]
                    path = entry.name.decode("utf-8", "replace")
                    d = entry.dir_index - (0 if base == 0 else 1)
                    if not path.startswith("/") and 0 <= d < len(dirs):
                        path = dirs[d].decode("utf-8", "replace").rstrip("/") + "/" + path
                out[sym] = SourceLine(path or name, a["DW_AT_decl_line"].value, 0, "")
    except (ELFError, DWARFError, struct.error, ValueError, KeyError, IndexError, AttributeError):
        return out
    return out
