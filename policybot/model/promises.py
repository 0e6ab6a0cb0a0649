"""What a tree promises about a kfunc: its declarations, the releases that date them, and
the promise they make on a given day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .inventory import Location
from .vocabulary import Level, PromiseState, Source


@dataclass(frozen=True)
class Declaration:
    kfunc: str
    level: Level
    source: Source
    location: Location
    version: int | None = None
    since: str | None = None
    replacement: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Problem:
    """A declaration that cannot be used: becomes a DECLARATION_* finding."""
    rule: str
    kfunc: str
    location: Location
    message: str


@dataclass
class Resolved:
    """What holds for one kfunc: the winning declaration and everything else that was said."""
    effective: Declaration | None
    all: list[Declaration]


@dataclass(frozen=True)
class Release:
    name: str
    commit: str
    date: dt.date


@dataclass(frozen=True)
class PromiseDate:
    date: dt.date
    release: str | None  # the release that carried the declaration first
    commit: str | None  # the commit that introduced it
    how: str  # "release", "commit", "since", "fallback: ..." (said in output)


@dataclass(frozen=True)
class WindowEnd:
    date: dt.date
    estimated: bool  # counted in releases that do not exist yet


@dataclass(frozen=True)
class Promise:
    """What a kfunc's declaration at the base promises, with dates."""
    declaration: Declaration
    level_key: PromiseState
    since: PromiseDate | None
    ends: WindowEnd | None  # stable window end, or the earliest removal for deprecated
    stable_since: PromiseDate | None = None
