"""BPF objects inside executables and shared libraries.

A libbpf skeleton (``bpftool gen skeleton``) carries its whole BPF object, an ELF
relocatable for ``e_machine`` 247 (EM_BPF), as a byte array in the host's ``.rodata``.
Each is found by its ELF header and cut where its last section or its section header
table ends, whichever is later; an object whose table or sections point past the end of
the host is said, not read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ..btf.externs import extern_functions
from ..btf.reader import Btf
from ..errors import InputError

ELF_MAGIC = b"\x7fELF"
EM_BPF = 247
ET_REL = 1
SHT_NOBITS = 8
MAX_SECTIONS = 4096  # a BPF object has tens; a header claiming more is not one


@dataclass(frozen=True)
class Embedded:
    offset: int
    data: bytes


def bpf_object_end(data: bytes | memoryview, pos: int) -> int | None | str:
    """Where the BPF object whose ELF header is at ``pos`` ends (an offset into ``data``),
    None when the header is not a 64-bit EM_BPF relocatable, or why it cannot be cut."""
    head = bytes(data[pos:pos + 64])
    if len(head) < 64 or head[:4] != ELF_MAGIC or head[4] != 2 or head[5] not in (1, 2):
        return None
    e = "<" if head[5] == 1 else ">"
    e_type, e_machine = struct.unpack_from(e + "HH", head, 16)
    if e_machine != EM_BPF or e_type != ET_REL:
        return None
    (shoff,) = struct.unpack_from(e + "Q", head, 40)
    shentsize, shnum = struct.unpack_from(e + "HH", head, 58)
    if shentsize != 64 or not 0 < shnum <= MAX_SECTIONS:
        return f"a section table of {shnum} entries of {shentsize} bytes"
    end = shoff + shnum * shentsize
    if pos + end > len(data):
        return f"its section table ends at {end:#x}, past the end of the file ({len(data) - pos:#x} bytes on)"
    for i in range(shnum):
        sh_type, = struct.unpack_from(e + "I", data, pos + shoff + i * 64 + 4)
        sh_offset, sh_size = struct.unpack_from(e + "QQ", data, pos + shoff + i * 64 + 24)
        if sh_type != SHT_NOBITS:
            if pos + sh_offset + sh_size > len(data):
                return f"section {i} ends at {sh_offset + sh_size:#x}, past the end of the file"
            end = max(end, sh_offset + sh_size)
    return pos + end


def embedded_objects(data: bytes, problems: list[str], name: str) -> list[Embedded]:
    """The BPF objects in ``data`` (itself, when it is one: a ``.bpf.o``), in order."""
    out = []
    pos = data.find(ELF_MAGIC)
    while pos >= 0:
        end = bpf_object_end(data, pos)
        if isinstance(end, int):
            out.append(Embedded(pos, data[pos:end]))
            pos = data.find(ELF_MAGIC, end)
            continue
        if isinstance(end, str):
            problems.append(f"{name}: BPF object at {pos:#x} not read: {end}")
        pos = data.find(ELF_MAGIC, pos + 1)
    return out


def bpf_objects(path: str, data: bytes, problems: list[str]) -> list[tuple[str, bytes]]:
    """(where, bytes) of each BPF object in ``data`` (the file ``path``): ``path`` itself when it is
    one, else ``path@OFFSET`` for each one embedded in it."""
    return [(path if emb.offset == 0 and len(emb.data) == len(data) else f"{path}@{emb.offset:#x}", emb.data)
            for emb in embedded_objects(data, problems, path)]


def file_kind(path: str) -> str:
    """"bpf" (a BPF object file), "elf" (another ELF file: a program or library that may embed
    some), "deb" (a Debian package), or "other", from the file's first bytes."""
    from .. import bounded
    from .deb import AR_MAGIC
    with bounded.open_input(path) as fh:
        head = fh.read(64)
    if head.startswith(AR_MAGIC):
        return "deb"
    if not head.startswith(ELF_MAGIC):
        return "other"
    return "bpf" if _bpf_header(head) else "elf"


def _bpf_header(head: bytes) -> bool:
    if len(head) < 20 or head[5] not in (1, 2):
        return False
    e_type, e_machine = struct.unpack_from("<HH" if head[5] == 1 else ">HH", head, 16)
    return e_machine == EM_BPF and e_type == ET_REL


def objects_in_file(path: str, problems: list[str]) -> list[tuple[str, bytes]]:
    """Every BPF object of a file: a BPF object, an executable or shared library that embeds some,
    or a Debian package (``NAME.deb:PATH[@OFFSET]`` for each in its files). What census and
    check read alike; objects that cannot be cut are said in ``problems``."""
    import os

    from .. import bounded
    from .deb import AR_MAGIC, package_files, read_package
    with bounded.open_input(path) as fh:
        head = fh.read(8)
    if head.startswith(AR_MAGIC):
        out = []
        package = read_package(path)
        for rel, data in package_files(package, path):
            if data.startswith(ELF_MAGIC):
                out += bpf_objects(f"{os.path.basename(path)}:{rel}", data, problems)
        return out
    if not head.startswith(ELF_MAGIC):
        raise InputError(f"{path}: neither an ELF file (a BPF object, an executable, a shared library) "
                         f"nor a Debian package")
    return bpf_objects(path, bounded.read_input(path), problems)


SHT_SYMTAB = 2
STB_GLOBAL, STB_WEAK = 1, 2
STT_NOTYPE = 0


def object_externs(obj: bytes, name: str) -> list[tuple[str, bool]]:
    """(name as declared, weak) of the extern functions of one cut BPF object (``Embedded.data``,
    whose header and tables ``bpf_object_end`` checked): its ``.BTF`` read by btf/reader.py, its
    symbol table read here with struct. Not pyelftools: a census reads a hundred objects, and its
    parse was 60% of one (docs/performance.md, census row)."""
    e = "<" if obj[5] == 1 else ">"
    (shoff,) = struct.unpack_from(e + "Q", obj, 40)
    shnum, shstrndx = struct.unpack_from(e + "HH", obj, 60)
    sections = [struct.unpack_from(e + "IIQQQQIIQQ", obj, shoff + i * 64) for i in range(shnum)]
    if shstrndx >= shnum:
        raise InputError(f"{name}: corrupt ELF file: no section names")
    names_at = sections[shstrndx][4]

    def section_name(sh) -> str:
        end = obj.find(b"\0", names_at + sh[0])
        return obj[names_at + sh[0]:end].decode("utf-8", "replace") if end >= 0 else ""

    btf = next((sh for sh in sections if section_name(sh) == ".BTF"), None)
    if btf is None:
        raise InputError(f"{name}: no .BTF section (built without CONFIG_DEBUG_INFO_BTF, or clang without -g)")
    undefined: dict[str, bool] = {}
    for sh in sections:
        if sh[1] != SHT_SYMTAB or sh[6] >= shnum or sh[9] != 24:
            continue
        strings = sections[sh[6]][4]
        for off in range(sh[4] + 24, sh[4] + sh[5] - 23, 24):  # entry 0 is the null symbol
            st_name, st_info, _other, st_shndx = struct.unpack_from(e + "IBBH", obj, off)
            if st_shndx == 0 and st_info >> 4 in (STB_GLOBAL, STB_WEAK) and st_info & 0xF == STT_NOTYPE:
                end = obj.find(b"\0", strings + st_name)
                if end > 0:
                    undefined[obj[strings + st_name:end].decode("utf-8", "replace")] = st_info >> 4 == STB_WEAK
    return extern_functions(Btf(obj[btf[4]:btf[4] + btf[5]], name), undefined)
