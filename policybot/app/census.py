"""``policybot census``: who uses each kfunc, read from sources and kept in the state (issue 23).

The weekly run refreshes the config's ``[census] sources`` first, so the week's findings name
the users known that day."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from ..errors import PolicybotError
from ..model.census import CensusRow, CensusRun, CensusTable, KnownUser, Use

if TYPE_CHECKING:
    from ..state import State


def take_census(state: State, sources: list[str], today: dt.date, name: str | None = None,
                version: str | None = None) -> CensusRun:
    """Read each source and keep what it found, replacing that source's earlier census. A
    source that cannot be read at all keeps its earlier census and is said in ``failed``."""
    from ..usage.census import census
    run = CensusRun()
    for spec in sources:
        try:
            found = census(spec, name, version)
        except PolicybotError as e:
            run.failed.append(str(e))
            continue
        for c in found:
            state.replace_census(c.source, c.uses, today)
            run.censuses.append(c)
    return run


def census_table(state: State, by: str = "kfunc") -> CensusTable:
    return CensusTable(kept_rows(state), by)


def kept_rows(state: State) -> list[CensusRow]:
    return [CensusRow(Use(r.kfunc, r.program, r.project, r.version, r.in_tree, r.weak, r.location, r.declared),
                      r.source, r.seen) for r in state.census_rows()]


def known_users(state: State) -> dict[str, tuple[KnownUser, ...]]:
    """kfunc -> its out-of-tree users, strong first, each program once (its strongest use)."""
    best: dict[tuple[str, str], KnownUser] = {}
    for row in kept_rows(state):
        u = row.use
        if u.in_tree:
            continue
        key = (u.kfunc, u.user)
        old = best.get(key)
        if old is None or (old.weak and not u.weak):
            best[key] = KnownUser(u.user, u.version, u.weak, u.in_tree, row.seen)
    out: dict[str, list[KnownUser]] = {}
    for (kfunc, _), user in sorted(best.items()):
        out.setdefault(kfunc, []).append(user)
    return {k: tuple(sorted(v, key=lambda u: (u.weak, u.user))) for k, v in out.items()}
