"""The maintainers use case: who MAINTAINERS at a revision assigns to some files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import PolicybotError

if TYPE_CHECKING:
    from .context import Context


def maintainers(ctx: Context, rev: str, files: list[str]) -> list[str]:
    """The maintainers, reviewers and lists of ``files``, in get_maintainer.pl's order."""
    from ..kernel.gitrepo import open_repo, resolve
    from ..kernel.maintainers import maintainers_at
    repo = open_repo(ctx.repo_path)
    maint = maintainers_at(repo, resolve(repo, rev).tree)
    if maint is None:
        raise PolicybotError(f"{ctx.repo_path}: no MAINTAINERS file at {rev}")
    return maint.for_files(files).all()
