"""Raw BTF data -> an indexed, lazily decoded type table.

The format is Documentation/bpf/btf.rst: a header, a type section parsed
sequentially (ids from 1, 0 being void) and a string section. Split BTF
(a module's, over vmlinux) continues the base's type ids and string offsets.
Indexing walks the type section once, reading only each type's info word;
types are decoded when asked for, so a 150,000-type vmlinux opens in a
fraction of a second.
"""

from __future__ import annotations

import struct
import sys
from array import array
from functools import lru_cache

from ..errors import InputError
from .types import MODIFIERS, VOID, Kind, Member, Type

MAGIC = 0xEB9F
HEADER_LEN = 24

# bytes that follow struct btf_type: fixed part, and per vlen entry
_FIXED = {Kind.INT: 4, Kind.ARRAY: 12, Kind.VAR: 4, Kind.DECL_TAG: 4}
_PER_ENTRY = {Kind.STRUCT: 12, Kind.UNION: 12, Kind.ENUM: 8, Kind.FUNC_PROTO: 8,
              Kind.DATASEC: 12, Kind.ENUM64: 12}
_MAX_KIND = max(Kind)


class BtfError(InputError):
    """Not BTF, or BTF that contradicts itself."""


class Btf:
    """One BTF blob, optionally split over a base. ``name`` names it in errors."""

    def __init__(self, data: bytes, name: str = "<btf>", base: Btf | None = None):
        self.name = name
        self.base = base
        if len(data) < HEADER_LEN:
            raise BtfError(f"{name}: BTF too short ({len(data)} bytes)")
        (magic,) = struct.unpack_from("<H", data, 0)
        if magic == MAGIC:
            self.endian = "<"
        elif magic == 0x9FEB:
            self.endian = ">"
        else:
            raise BtfError(f"{name}: not BTF (magic {magic:#06x}, expected 0xeb9f)")
        _, version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
            self.endian + "HBBIIIII", data, 0)
        if version != 1:
            raise BtfError(f"{name}: unsupported BTF version {version}")
        if hdr_len < HEADER_LEN or hdr_len > len(data):
            raise BtfError(f"{name}: bad BTF header length {hdr_len}")
        body = memoryview(data)[hdr_len:]
        if type_off + type_len > len(body) or str_off + str_len > len(body):
            raise BtfError(f"{name}: BTF sections run past the end ({len(data)} bytes)")
        self._types = bytes(body[type_off:type_off + type_len])
        self._strings = bytes(body[str_off:str_off + str_len])
        if str_len and self._strings[-1] != 0:
            raise BtfError(f"{name}: BTF string section is not NUL-terminated")
        self.first_id = base.count if base else 1  # split BTF continues the base's ids
        self.str_base = base.str_end if base else 0
        self.str_end = self.str_base + str_len
        self._offsets, self._kinds = self._index()
        self.count = self.first_id + len(self._offsets)  # one past the last id
        self._decode = lru_cache(maxsize=None)(self._decode_uncached)

    def _index(self) -> tuple[array, bytearray]:
        data = self._types
        if len(data) % 4:
            raise BtfError(f"{self.name}: BTF type section length {len(data)} is not a multiple of 4")
        words = array("I", data)  # every BTF record is a whole number of u32s
        if (self.endian == "<") != (sys.byteorder == "little"):
            words.byteswap()
        # u32s that follow struct btf_type: fixed part, and per vlen entry
        fixed = [_FIXED.get(k, 0) // 4 for k in range(_MAX_KIND + 1)]
        per = [_PER_ENTRY.get(k, 0) // 4 for k in range(_MAX_KIND + 1)]
        offsets = array("I")
        kinds = bytearray()
        add_offset, add_kind = offsets.append, kinds.append
        pos, end = 0, len(words)
        try:
            while pos < end:
                info = words[pos + 1]
                kind = (info >> 24) & 0x7F
                if kind > _MAX_KIND or kind == 0:
                    raise BtfError(f"{self.name}: BTF type {self.first_id + len(offsets)} "
                                   f"at byte {4 * pos} has unknown kind {kind}")
                add_offset(4 * pos)
                add_kind(kind)
                pos += 3 + fixed[kind] + per[kind] * (info & 0xFFFFFF)
        except IndexError:
            raise BtfError(f"{self.name}: BTF type section truncated at byte {4 * pos}") from None
        if pos != end:
            raise BtfError(f"{self.name}: BTF type section truncated at byte {4 * end}")
        return offsets, kinds

    # strings
    def string(self, off: int) -> str:
        if off < self.str_base:
            return self.base.string(off)
        rel = off - self.str_base
        if rel >= len(self._strings):
            raise BtfError(f"{self.name}: string offset {off} out of range")
        return self._strings[rel:self._strings.index(0, rel)].decode("utf-8", "replace")

    # types
    def kind(self, tid: int) -> Kind:
        if tid < self.first_id:
            return self.base.kind(tid) if self.base else Kind.UNKN
        return Kind(self._kinds[tid - self.first_id])

    def type(self, tid: int) -> Type:
        if tid == 0:
            return VOID
        if tid < self.first_id:
            if self.base is None:
                raise BtfError(f"{self.name}: type id {tid} out of range")
            return self.base.type(tid)
        if tid >= self.count:
            raise BtfError(f"{self.name}: type id {tid} out of range (last is {self.count - 1})")
        return self._decode(tid)

    def ids_of_kind(self, kind: Kind) -> list[int]:
        """Type ids of one kind in this blob (not its base), in order."""
        out, kinds, k, first = [], self._kinds, int(kind), self.first_id
        i = kinds.find(k)
        while i >= 0:
            out.append(first + i)
            i = kinds.find(k, i + 1)
        return out

    def _decode_uncached(self, tid: int) -> Type:
        data, e = self._types, self.endian
        pos = self._offsets[tid - self.first_id]
        name_off, info, size_or_type = struct.unpack_from(e + "III", data, pos)
        kind = Kind((info >> 24) & 0x7F)
        vlen = info & 0xFFFFFF
        kflag = bool(info >> 31)
        name = self.string(name_off)
        p = pos + 12
        members: tuple[Member, ...] = ()
        extra: tuple[int, ...] = ()
        ref = size = 0
        if kind in (Kind.INT, Kind.ENUM, Kind.STRUCT, Kind.UNION, Kind.ENUM64, Kind.DATASEC, Kind.FLOAT):
            size = size_or_type
        else:
            ref = size_or_type
        if kind == Kind.INT:
            (v,) = struct.unpack_from(e + "I", data, p)
            extra = ((v >> 24) & 0x0F, (v >> 16) & 0xFF, v & 0xFF)
        elif kind == Kind.ARRAY:
            extra = struct.unpack_from(e + "III", data, p)
        elif kind in (Kind.VAR,):
            extra = struct.unpack_from(e + "I", data, p)
        elif kind == Kind.DECL_TAG:
            extra = struct.unpack_from(e + "i", data, p)
        elif kind in (Kind.STRUCT, Kind.UNION):
            members = tuple(Member(self.string(n), t, o)
                            for n, t, o in struct.iter_unpack(e + "III", data[p:p + 12 * vlen]))
        elif kind == Kind.ENUM:
            members = tuple(Member(self.string(n), 0, v)
                            for n, v in struct.iter_unpack(e + "Ii", data[p:p + 8 * vlen]))
        elif kind == Kind.ENUM64:
            members = tuple(Member(self.string(n), 0, lo | (hi << 32))
                            for n, lo, hi in struct.iter_unpack(e + "III", data[p:p + 12 * vlen]))
        elif kind == Kind.FUNC_PROTO:
            members = tuple(Member(self.string(n), t)
                            for n, t in struct.iter_unpack(e + "II", data[p:p + 8 * vlen]))
        elif kind == Kind.DATASEC:
            members = tuple(Member(self.type(t).name if t < self.count else "", t, o, s)
                            for t, o, s in struct.iter_unpack(e + "III", data[p:p + 12 * vlen]))
        return Type(tid, kind, name, ref, size, vlen, kflag, members, extra)

    def skip_modifiers(self, tid: int) -> Type:
        """The type behind typedefs, const, volatile, restrict and type tags."""
        for _ in range(64):  # a loop in corrupt BTF must not hang us
            t = self.type(tid)
            if t.kind not in MODIFIERS:
                return t
            tid = t.ref
        raise BtfError(f"{self.name}: modifier chain too long at type {tid}")

    def decl_tags(self, tag: str) -> list[Type]:
        """DECL_TAG types named ``tag``, in this blob."""
        out = []
        for tid in self.ids_of_kind(Kind.DECL_TAG):
            t = self.type(tid)
            if t.name == tag:
                out.append(t)
        return out

    def find(self, name: str, kind: Kind) -> Type | None:
        """The first type of this kind and name, looking in the base first (as libbpf does)."""
        if self.base is not None:
            found = self.base.find(name, kind)
            if found is not None:
                return found
        for tid in self.ids_of_kind(kind):
            t = self.type(tid)
            if t.name == name:
                return t
        return None

    # C rendering, for people
    def c_type(self, tid: int, declarator: str = "", depth: int = 64) -> str:
        """``tid`` as a C declaration of ``declarator`` (``struct task_struct *p``). ``depth``
        bounds the nesting (arrays of const of arrays ...): hostile BTF must not recurse without end."""
        if depth <= 0:
            raise BtfError(f"{self.name}: type nested too deeply at type {tid}")
        for _ in range(64):
            t = self.type(tid)
            if t.kind == Kind.PTR:
                inner = self.type(t.ref)
                if inner.kind == Kind.FUNC_PROTO:
                    return self._c_proto(inner, f"(*{declarator})", depth - 1)
                declarator = "*" + declarator
                tid = t.ref
                continue
            if t.kind in (Kind.CONST, Kind.VOLATILE, Kind.RESTRICT):
                word = t.kind.name.lower()
                if self.type(t.ref).kind == Kind.PTR:  # "char *const p"
                    declarator = f"{word} {declarator}".rstrip()
                    tid = t.ref
                    continue
                return f"{word} {self.c_type(t.ref, declarator, depth - 1)}"
            if t.kind == Kind.TYPE_TAG:
                tid = t.ref
                continue
            if t.kind == Kind.ARRAY:
                return self.c_type(t.extra[0], f"{declarator}[{t.extra[2]}]", depth - 1)
            if t.kind == Kind.FUNC_PROTO:
                return self._c_proto(t, declarator, depth - 1)
            base = {Kind.STRUCT: "struct ", Kind.UNION: "union ", Kind.ENUM: "enum ",
                    Kind.ENUM64: "enum "}.get(t.kind, "")
            if t.kind == Kind.FWD:
                base = "union " if t.kind_flag else "struct "
            spelled = base + (t.name or ("void" if t.kind == Kind.UNKN else "<anon>"))
            return f"{spelled} {declarator}" if declarator else spelled
        raise BtfError(f"{self.name}: type chain too long at type {tid}")

    def _c_proto(self, proto: Type, declarator: str, depth: int = 64) -> str:
        params = ", ".join(self.c_type(m.type, m.name, depth - 1) if m.type else "..." for m in proto.members)
        return self.c_type(proto.ref, f"{declarator}({params or 'void'})", depth - 1)

    def c_function(self, func: Type) -> str:
        """A FUNC as its C prototype: ``struct task_struct *bpf_task_acquire(struct task_struct *p)``."""
        return self._c_proto(self.type(func.ref), func.name)
