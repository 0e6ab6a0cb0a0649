"""The notice use case: the [ANN] deprecation announcement of a kfunc (`policybot notice`,
and the weekly run when a tree starts deprecating one)."""

from __future__ import annotations

import datetime as dt

from ..addresses import dedupe
from .config import Config, Tree
from ..errors import InputError
from ..kernel.maintainers import maintainers_at
from ..kernel.scanner import Scanner
from ..mail.drafts import MailDraft, render, subject
from ..policy.audit import Auditor
from ..model.vocabulary import Level


def notice_draft(repo, scanner: Scanner, auditor: Auditor, tree: Tree, commit, kfunc: str, cfg: Config, env,
                 replacement: str | None, removal_not_before: dt.date | None, today: dt.date) -> MailDraft:
    inv = scanner.inventory_of_commit(commit, str(commit.id)[:12])
    k = inv.kfuncs.get(kfunc)
    if k is None:
        raise InputError(f"{kfunc}: no such kfunc at {str(commit.id)[:12]}")
    decls, _ = auditor.declarations(inv, commit.tree)
    resolved = decls.get(kfunc)
    promise = auditor.promise(resolved, inv, commit, today) if resolved else None
    level = promise.declaration.level if promise else Level.UNSTABLE
    deprecated_on = promise.since.date if promise and level in (Level.DEPRECATING, Level.DEPRECATED) and promise.since \
        else today
    stable_since, stable_end = auditor.calendar.stable_span(tree.policy, promise)
    earliest = auditor.calendar.earliest_removal(deprecated_on, tree.policy, promise)
    if removal_not_before and removal_not_before < earliest:
        why = f"the {tree.policy.notice_period} notice period from {deprecated_on}"
        if stable_end and stable_end >= earliest:
            why = f"the stable promise (since {stable_since}) runs until {stable_end}"
        raise InputError(f"{kfunc}: removal on {removal_not_before} is too early: {why}; "
                         f"the earliest removal is {earliest}")
    removal = removal_not_before or earliest
    replacement = replacement or (promise.declaration.replacement if promise else None) or ""
    maint = maintainers_at(repo, commit.tree)
    rec = maint.for_files(list(k.files)) if maint else None
    people = rec.people if rec else []
    lists = rec.lists if rec else []
    d = k.definition
    body = render(env, "notice.txt.j2",
        tree=tree.name, kfunc=kfunc, signature=d.signature.render(kfunc) if d else kfunc,
        location=str(d.location if d else k.location), prog_types=", ".join(k.prog_types),
        flags=" | ".join(k.flags), level=level, stable_since=str(stable_since or ""),
        deprecated_on=str(deprecated_on), removal=str(removal), replacement=replacement,
        contacts=people[:6], list_addr=cfg.mail.list_addr,
        users=[u.text() for u in auditor.judge.users.get(kfunc, ())])
    title = subject(env, "notice", kfunc, str(removal))
    to = [cfg.mail.list_addr]
    cc = dedupe(people + lists, exclude=to)
    seed = f"notice:{tree.name}:{kfunc}:{deprecated_on}:{removal}"
    return MailDraft("notice", to, cc, title, body, seed, [f"{deprecated_on}:{removal}"])
