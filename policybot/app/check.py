"""The check use case: which kfuncs compiled BPF objects can rely on, on each target kernel."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..model.check import BpfObject, CheckRun
    from .context import Context


def check(ctx: Context, objects: list[str], revs: list[str], releases: str | None,
          btf: list[str] | None) -> CheckRun:
    """Every object against every target: the source tree at ``revs`` and the releases matching
    ``releases`` (a tag glob), or the compiled kernel of ``btf`` (its policy, the config guards of
    what it lacks and which tagged functions it does not let programs call from the first source
    target). Objects are read first: bad input fails before any tree is read. Then what only
    all the targets together tell: weak externs that resolve on none (dead fallbacks)."""
    from ..btf.kconfig import config_beside
    from ..model.check import CheckRun
    from ..policy.check import btf_target, check as check_object, dead_fallbacks, source_targets
    from ..policy.judge import Judge
    from .census import known_users
    from .inventory import compiled_kernel
    from ..errors import InputError, PolicybotError
    problems: list[str] = []
    bad: list[str] = []
    read = []
    for path in objects:
        try:
            read += read_objects(path, problems)
        except PolicybotError as e:
            bad.append(str(e))  # one bad input never stops the rest
    if bad and not read:
        raise InputError("; ".join(bad))
    addressed = frozenset(e.kfunc for o in read for e in o.externs if e.address_only)
    targets = []
    if revs or releases:
        targets = source_targets(ctx.repo_path, revs, releases, ctx.policy, lambda: ctx.auditor, ctx.today,
                                 cache_dir=ctx.cache_path("check"), functions=addressed)
    if btf:
        kernel, cross = compiled_kernel(ctx, btf, revs[0] if revs else None, addressed)
        fmodret = tuple(cross.fmodret_only) if cross else ()
        targets = [btf_target(kernel, targets[0] if targets else None, fmodret, config_beside(btf[0]),
                              cross.modules if cross else None)]
    judge = Judge(ctx.policy, ctx.today or dt.date.today(), known_users(ctx.state))
    results = [check_object(o, t, judge) for o in read for t in targets]
    return CheckRun(tuple(results), tuple(dead_fallbacks(results, judge)), tuple(problems), tuple(bad))


def read_objects(path: str, problems: list[str]) -> list[BpfObject]:
    """The BPF objects of one file: itself (a .bpf.o), or those embedded in an executable, a shared
    library or the files of a Debian package (usage/embedded.py, as census reads them). An
    embedded object that cannot be read is said in ``problems``; a file with none is bad input
    (check() says it and checks the other files)."""
    from dataclasses import replace

    from ..btf.program import read_object, read_object_bytes
    from ..errors import InputError, PolicybotError
    from ..usage.embedded import file_kind, objects_in_file
    if file_kind(path) in ("bpf", "other"):
        return [read_object(path)]  # which says what is wrong with anything else
    out = []
    for where, data in objects_in_file(path, problems):
        try:
            out.append(replace(read_object_bytes(data, where), container=path))
        except PolicybotError as e:
            problems.append(str(e))
    if not out:
        raise InputError(f"{path}: no BPF object in it" + (f" ({problems[-1]})" if problems else ""))
    return out
