"""The state's backup (`policybot state backup FILE`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .context import Context


def backup(ctx: Context, target: str) -> Path:
    """A consistent copy of the SQLite state at ``target`` (PostgreSQL: an error saying pg_dump)."""
    return ctx.state.backup(target)
