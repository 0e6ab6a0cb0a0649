"""The notice use case: the [ANN] deprecation announcement of a kfunc (`policybot notice`,
and the weekly run when a tree starts deprecating one)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..addresses import dedupe
from .config import Config, Tree
from ..errors import InputError
from ..kernel.maintainers import maintainers_at
from ..kernel.scanner import Scanner
from ..mail.drafts import MailDraft, render, subject
from ..policy.audit import Auditor
from ..model.vocabulary import Level


@dataclass
class Announcement:
    """One kfunc's deprecation as its notice says it: the template's values, whom to Cc, the
    MAINTAINERS section of its files, and what identifies it (deprecated_on:removal)."""
    values: dict
    people: list[str]
    lists: list[str]
    section: str
    ident: str


def announcement(repo, scanner: Scanner, auditor: Auditor, tree: Tree, commit, kfunc: str, cfg: Config,
                 replacement: str | None, removal_not_before: dt.date | None, today: dt.date) -> Announcement:
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
    d = k.definition
    values = dict(kfunc=kfunc, signature=d.signature.render(kfunc) if d else kfunc,
                  location=str(d.location if d else k.location), prog_types=", ".join(k.prog_types),
                  flags=" | ".join(k.flags), level=level, stable_since=str(stable_since or ""),
                  deprecated_on=str(deprecated_on), removal=str(removal), replacement=replacement,
                  users=[u.text() for u in auditor.judge.users.get(kfunc, ())])
    section = maint.subsystem_of(sorted(k.files)[0]) if maint and k.files else ""
    return Announcement(values, rec.people if rec else [], rec.lists if rec else [], section,
                        f"{deprecated_on}:{removal}")


def notice_draft(repo, scanner: Scanner, auditor: Auditor, tree: Tree, commit, kfunc: str, cfg: Config, env,
                 replacement: str | None, removal_not_before: dt.date | None, today: dt.date) -> MailDraft:
    a = announcement(repo, scanner, auditor, tree, commit, kfunc, cfg, replacement, removal_not_before, today)
    return single_draft(a, tree, cfg, env)


def single_draft(a: Announcement, tree: Tree, cfg: Config, env) -> MailDraft:
    """The [ANN] of one kfunc: to the list, Cc its maintainers and lists."""
    body = render(env, "notice.txt.j2", tree=tree.name, contacts=a.people[:6], list_addr=cfg.mail.list_addr,
                  **a.values)
    to = [cfg.mail.list_addr]
    seed = f"notice:{tree.name}:{a.values['kfunc']}:{a.ident}"
    return MailDraft("notice", to, dedupe(a.people + a.lists, exclude=to),
                     subject(env, "notice", a.values["kfunc"], a.values["removal"]), body, seed, [a.ident])


def grouped_draft(group: list[Announcement], keys: list[str], tree: Tree, week: str, cfg: Config, env) -> MailDraft:
    """The [ANN] of a MAINTAINERS section's kfuncs deprecated in one week (one alone: its own
    notice): to the list, Cc the section's maintainers and lists; ``keys`` each kfunc's."""
    if len(group) == 1:
        draft = single_draft(group[0], tree, cfg, env)
        draft.keys = keys
        return draft
    section = group[0].section
    people = dedupe([p for a in group for p in a.people])
    body = render(env, "notices.txt.j2", tree=tree.name, section=section, kfuncs=[a.values for a in group],
                  contacts=people[:6], list_addr=cfg.mail.list_addr)
    to = [cfg.mail.list_addr]
    earliest = min(a.values["removal"] for a in group)
    return MailDraft("notice", to, dedupe(people + [x for a in group for x in a.lists], exclude=to),
                     subject(env, "notice_group", len(group), section or tree.name, tree.name, earliest), body,
                     f"notice:{tree.name}:{section}:{week}:{','.join(sorted(keys))}", keys)
