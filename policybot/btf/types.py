"""BTF types as plain frozen data (Documentation/bpf/btf.rst, section 2).

A ``Type`` is one entry of a type section, decoded on demand by
``reader.Btf.type``: 150,000 vmlinux types are indexed, not all decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Kind(IntEnum):
    UNKN = 0  # type id 0: void
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


class Linkage(IntEnum):
    """vlen of a FUNC, linkage of a VAR."""
    STATIC = 0
    GLOBAL = 1
    EXTERN = 2


MODIFIERS = frozenset({Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG})


@dataclass(frozen=True)
class Member:
    """A struct/union member, enum value, function parameter or datasec entry.

    ``type`` is the member's type id (0 for enum values); ``value`` the
    member's bit offset, the enum value, or the datasec entry's offset;
    ``size`` is a datasec entry's size.
    """
    name: str
    type: int
    value: int = 0
    size: int = 0


@dataclass(frozen=True)
class Type:
    id: int
    kind: Kind
    name: str
    ref: int  # "type" of PTR, TYPEDEF, modifiers, FUNC, FUNC_PROTO (return), VAR, DECL_TAG
    size: int  # "size" of INT, ENUM, STRUCT, UNION, ENUM64, DATASEC, FLOAT
    vlen: int  # linkage for FUNC
    kind_flag: bool
    members: tuple[Member, ...] = ()
    # INT: encoding, bit offset, bits; ARRAY: element type, index type, count;
    # VAR: linkage; DECL_TAG: component index (-1 for the declaration itself)
    extra: tuple[int, ...] = ()

    @property
    def linkage(self) -> Linkage:
        return Linkage(self.extra[0] if self.kind == Kind.VAR else self.vlen)


VOID = Type(0, Kind.UNKN, "", 0, 0, 0, False)
