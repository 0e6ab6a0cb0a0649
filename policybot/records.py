"""Records back from JSON: a dataclass rebuilt from what ``dataclasses.asdict`` gave.

The field annotations say what each value becomes (nested records, tuples,
lists, ``X | None``), so a record read from a cache is equal to the one that
was stored, and a record whose fields changed is a new cache key's business,
not this module's.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import types
import typing


def revive(cls: type, value):
    """``value`` (JSON: dicts, lists, strings, numbers) as an instance of ``cls``."""
    return _as(cls, value)


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict:
    return typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))


def _as(tp, value):
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in typing.get_args(tp) if a is not type(None)]
        return _as(kinds[0], value) if len(kinds) == 1 else value
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_as(args[0], v) for v in value)
        return tuple(_as(a, v) for a, v in zip(args, value))
    if origin is list:
        (arg,) = typing.get_args(tp) or (typing.Any,)
        return [_as(arg, v) for v in value]
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        return tp(**{f.name: _as(hints[f.name], value[f.name]) for f in dataclasses.fields(tp) if f.name in value})
    return value
