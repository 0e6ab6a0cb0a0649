"""The ledger of the tree's own dated promises (issue 24): comments such as "COMPAT: Will be
removed in v6.23" or "drop compat helper after v6.22", and run-time deprecation warnings."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class LedgerStatus(StrEnum):
    FUTURE = "future"  # the named release is after the one audited
    DUE = "due"  # the named release is the one audited
    OVERDUE = "overdue"  # the named release is out, and the note and what it dates are still here
    WITHDRAWN = "withdrawn"  # the note was at the base, is gone at the head, and what it dated is still here
    UNDATED = "undated"  # a run-time deprecation warning that names no release


@dataclass(frozen=True)
class DatedNote:
    path: str
    line: int
    text: str  # the note's line, as written (cut at 200 characters)
    named: str  # the version it names, "v6.22"; "" for a warning without one
    release: str  # the release that carries that name, "v7.2" (6.20 and later became 7.x); ""
    symbols: tuple[str, ...]  # what it dates: the function defined under it, names written name()
    anchor: str = ""  # a note inside a function, naming nothing: the first line of code under it

    @property
    def key(self) -> tuple:
        """The same note in another revision: where it is may move, what it says and dates may not
        (one file may say "Will be removed in v6.23" above several things)."""
        return (self.path, " ".join(self.text.split()), self.symbols or (self.anchor,))


@dataclass(frozen=True)
class LedgerEntry:
    note: DatedNote
    status: LedgerStatus
    current: str = ""  # the release audited, "v7.3" ("" when the tree says none)
