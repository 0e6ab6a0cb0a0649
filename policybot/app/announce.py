"""`policybot notice`: announce a kfunc's deprecation now, as the weekly run does when a tree
starts deprecating one (the same draft, into the same outbox)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from ..mail.drafts import MailDraft
from .config import Tree

if TYPE_CHECKING:
    from .context import Context


def notice(ctx: Context, rev: str, kfunc: str, replacement: str | None,
           removal_not_before: dt.date | None) -> tuple[MailDraft, Path]:
    """Draft the notice of ``kfunc`` at ``rev`` into the outbox (`policybot notice`): the draft
    and the Maildir it went to."""
    from ..kernel.gitrepo import repo_name, resolve
    from .weekly import Runner
    runner = Runner(ctx.config, ctx.state, ctx.today)
    scanner = ctx.scanner  # after the state: the scanner shares its cache
    tree = Tree(repo_name(scanner.repo), ctx.repo_path, policy=ctx.policy)
    draft = runner.deprecation_notice(scanner.repo, scanner, ctx.auditor, tree, resolve(scanner.repo, rev), kfunc,
                                      replacement=replacement, removal_not_before=removal_not_before)
    return draft, runner.outbox.maildir
