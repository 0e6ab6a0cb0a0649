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
