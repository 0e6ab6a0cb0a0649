"""Where BTF lives: raw blobs, ELF sections, compressed kernel images.

``load(path)`` accepts raw BTF (``/sys/kernel/btf/vmlinux``), an ELF file
with a ``.BTF`` section (a vmlinux, a module ``.ko``, a BPF object) and a
``vmlinuz``: an x86 bzImage whose payload is found through its setup header,
or any file holding a compressed ELF, found by the compressors' magic bytes
as the kernel's scripts/extract-vmlinux does (zstd, gzip, xz, lzma, bzip2).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from .. import bounded
from ..errors import InputError
from .reader import MAGIC, Btf, BtfError

ELF_MAGIC = b"\x7fELF"


@dataclass(frozen=True)
class Symbol:
    name: str
    bind: str  # STB_GLOBAL, STB_WEAK, STB_LOCAL
    section: str  # "UND" for an undefined (extern) symbol, else the section index or name


@dataclass(frozen=True)
class Relocation:
    """An ELF relocation of a BPF object: ``symbol`` used by the instruction at ``offset``."""
    section: str  # the section the relocation applies to ("struct_ops/simple_enqueue")
    offset: int  # byte offset of the instruction
    symbol: str
    call: bool  # R_BPF_64_32 (a call), as opposed to R_BPF_64_64 (a load of the address)


@dataclass(frozen=True)
class BtfFile:
    """What ``load`` found: the BTF, and for ELF files their .BTF.ext and symbols."""
    path: str
    btf: Btf
    btf_ext: bytes | None = None
    symbols: tuple[Symbol, ...] = ()
    relocations: tuple[Relocation, ...] = ()
    elf_kind: str = ""  # "object", "executable", "module", "raw", "vmlinuz"


# the compressors scripts/extract-vmlinux knows but lzo and lz4, by their magic bytes
KERNEL_CODECS = ((b"\x28\xb5\x2f\xfd", "zstd"), (b"\x1f\x8b\x08", "gzip"), (b"\xfd7zXZ\x00", "xz"),
                 (b"\x5d\x00\x00", "lzma"), (b"BZh", "bzip2"))
MODULE_CODECS = {b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}  # .ko.xz, .ko.zst


def _bzimage_payload(data: bytes) -> memoryview | None:
    """The compressed kernel inside an x86 bzImage (Documentation/arch/x86/boot.rst)."""
    if len(data) < 0x250 or data[0x202:0x206] != b"HdrS":
        return None
    setup_sects = data[0x1F1] or 4
    payload_offset, payload_length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sects + 1) * 512 + payload_offset
    if not payload_length or start + payload_length > len(data):
        return None
    return memoryview(data)[start:start + payload_length]


def decompress_kernel(data: bytes, name: str) -> bytes:
    """The ELF vmlinux inside a compressed kernel image, at most limits.max_decompressed_bytes."""
    whole = memoryview(data)
    payload = _bzimage_payload(data)
    for blob in ([payload] if payload is not None else []) + [whole]:
        raw = blob.tobytes() if blob is not whole else data  # bytes.find; the payload is a few MB
        for magic, codec in KERNEL_CODECS:
            pos = raw.find(magic)
            tried = 0
            while pos >= 0 and tried < 16:
                tried += 1
                # the first bytes say whether this stream holds an ELF (bzip2 needs a whole block)
                if bounded.inflate_head(codec, blob[pos:pos + (2 << 20)], 4) == ELF_MAGIC:
                    try:
                        out = bounded.inflate(codec, blob[pos:], name)
                    except bounded.TooLarge:
                        raise
                    except InputError:
                        out = b""
                    if out.startswith(ELF_MAGIC):
                        return out
                pos = raw.find(magic, pos + 1)
    raise InputError(f"{name}: not BTF, an ELF file or a compressed kernel image with an ELF inside")


def load(path: str | Path, base: Btf | None = None) -> BtfFile:
    """Read the BTF of ``path``; ``base`` is vmlinux's BTF for a module's split BTF.

    An ELF file is read where its section headers point (a vmlinux with DWARF is 1 GB,
    its .BTF 6 MB); anything else is read whole, within limits.max_input_bytes."""
    name = str(path)
    with bounded.open_input(path) as f:
        if f.read(4) == ELF_MAGIC:
            return _from_elf(bounded.CappedFile(f, name), name, base, "")
    return load_bytes(bounded.read_input(path), name, base)


def load_bytes(data: bytes, name: str, base: Btf | None = None) -> BtfFile:
    if len(data) >= 2 and struct.unpack_from("<H", data)[0] in (MAGIC, 0x9FEB):
        return BtfFile(name, Btf(data, name, base), elf_kind="raw")
    kind = ""
    codec = MODULE_CODECS.get(data[:6]) or MODULE_CODECS.get(data[:4])
    if codec:  # a module as distributions ship it: .ko.xz, .ko.zst
        data = bounded.inflate(codec, data, name)
    if not data.startswith(ELF_MAGIC):
        data = decompress_kernel(data, name)
        kind = "vmlinuz"
    return _from_elf(io.BytesIO(data), name, base, kind)


def _section_bytes(section, name: str) -> bytes:
    """A section's bytes, its sizes checked against the limits before anything is read."""
    limits = bounded.limits()
    if section["sh_type"] != "SHT_NOBITS" and section["sh_size"] > limits.max_input_bytes:
        raise bounded.too_large(name, f"section {section.name} is", section["sh_size"], "max_input_bytes",
                                limits.max_input_bytes)
    if section.data_size > limits.max_decompressed_bytes:
        raise bounded.too_large(name, f"section {section.name} unpacks to", section.data_size,
                                "max_decompressed_bytes", limits.max_decompressed_bytes)
    return section.data()


def _from_elf(stream, name: str, base: Btf | None, kind: str) -> BtfFile:
    try:
        elf = ELFFile(stream)
        sections = {s.name: s for s in elf.iter_sections()}
        btf_sec = sections.get(".BTF")
        if btf_sec is None:
            raise InputError(f"{name}: no .BTF section (built without CONFIG_DEBUG_INFO_BTF, or clang without -g)")
        btf_data = _section_bytes(btf_sec, name)
        ext = sections.get(".BTF.ext")
        ext_data = _section_bytes(ext, name) if ext is not None else None
        etype = elf["e_type"]
        symbols: tuple[Symbol, ...] = ()
        relocations: list[Relocation] = []
        is_module = ".modinfo" in sections
        if etype == "ET_REL" and not is_module:
            symtab = sections.get(".symtab")
            if symtab is not None:
                syms = list(symtab.iter_symbols())
                symbols = tuple(Symbol(s.name, s["st_info"]["bind"], str(s["st_shndx"]))
                                for s in syms if s.name)
                relocations = _relocations(elf, syms)
    except (ELFError, struct.error, ValueError) as e:
        raise InputError(f"{name}: corrupt ELF file: {e}") from None
    if not kind:
        kind = {"ET_REL": "module" if is_module else "object"}.get(etype, "executable")
    # a module's BTF is split over vmlinux: without a base it cannot be read
    if kind == "module" and base is None:
        raise BtfError(f"{name}: module BTF is split BTF: give the kernel's BTF as its base")
    return BtfFile(name, Btf(btf_data, name, base if kind == "module" else None),
                   ext_data, symbols, tuple(relocations), kind)


R_BPF_64_32 = 10  # the relocation of a call instruction (llvm's BPF ELF ABI)


def _relocations(elf: ELFFile, syms) -> list[Relocation]:
    out = []
    for sec in elf.iter_sections():
        if sec["sh_type"] != "SHT_REL":
            continue
        target = elf.get_section(sec["sh_info"]).name
        if target.startswith(".debug") or target.startswith(".BTF"):
            continue
        for rel in sec.iter_relocations():
            idx = rel["r_info_sym"]
            if 0 < idx < len(syms):
                out.append(Relocation(target, rel["r_offset"], syms[idx].name,
                                      rel["r_info_type"] == R_BPF_64_32))
    return out



