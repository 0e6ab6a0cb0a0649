"""The check use case: which kfuncs compiled BPF objects can rely on, on each target kernel."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..model.check import CheckResult
    from .context import Context


def check(ctx: Context, objects: list[str], revs: list[str], releases: str | None,
          btf: list[str] | None) -> list[CheckResult]:
    """Every object against every target: the source tree at ``revs`` and the releases matching
    ``releases`` (a tag glob), or the compiled kernel of ``btf`` (its policy from the first
    source target). Objects are read first: bad input fails before any tree is read."""
    from ..btf.program import read_object
    from ..policy.check import btf_target, check as check_object, source_targets
    from ..policy.judge import Judge
    from .census import known_users
    from .inventory import compiled_kernel
    read = [read_object(o) for o in objects]
    targets = []
    if revs or releases:
        targets = source_targets(ctx.repo_path, revs, releases, ctx.policy, lambda: ctx.auditor, ctx.today,
                                 cache_dir=ctx.cache_path("check"))
    if btf:
        kernel, _ = compiled_kernel(ctx, btf)
        targets = [btf_target(kernel, targets[0] if targets else None)]
    judge = Judge(ctx.policy, ctx.today or dt.date.today(), known_users(ctx.state))
    return [check_object(o, t, judge) for o in read for t in targets]
