"""Which configured trees an inbox series is for (docs/operators.md: Routing inbox series).

In this order, the first that names any tree decides:

1. its ``base-commit:`` trailer: the trees whose head contains that commit (when the
   subject's tag also names some of them, only those: bpf-next contains bpf's commits);
2. its subject tag (``[PATCH bpf-next]``): the trees whose ``tags`` list it (a tree's
   own name when it sets none);
3. the trees whose head the whole series applies to.

A series none of these name is skipped, and the skip is recorded and said.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from ..errors import InputError
from ..kernel.apply import PatchDoesNotApply, ScratchRepo
from ..kernel.gitrepo import resolve
from ..mail.b4wrap import Series
from .config import Tree

BY_BASE, BY_TAG, BY_APPLYING = "base-commit", "tag", "applies"

_PREFIX = re.compile(r"^\s*(?:re:\s*)?\[([^\]]*)\]", re.I)
# the words of a subject prefix that are not a tree: PATCH, RFC, RESEND, v2, 3/7
_NOT_A_TAG = re.compile(r"^(patch|rfc|resend|v\d+|\d+/\d+)$", re.I)


@dataclass(frozen=True, eq=False)
class Head:
    """A tree as the inbox sees it: its repository and the commit its branch names now."""
    tree: Tree
    repo: pygit2.Repository
    commit: pygit2.Commit


@dataclass
class Route:
    heads: list[Head] = field(default_factory=list)  # the trees to judge the series on
    how: str = ""  # BY_BASE, BY_TAG, BY_APPLYING; "" when none matched
    why: str = ""  # for a skip: what was tried


def subject_tags(subject: str) -> list[str]:
    """The tree tags of a patch subject: "[PATCH bpf-next v2 1/3] x" -> ["bpf-next"] (lower case)."""
    m = _PREFIX.match(subject)
    return [w.lower() for w in m.group(1).split() if not _NOT_A_TAG.match(w)] if m else []


def series_subject(series: Series) -> str:
    """The full subject of the series' first mail (the cover letter's, else the first patch's);
    "(no subject)" for a mail without one."""
    first = series.cover or (series.patches[0] if series.patches else None)
    return (first.subject if first else series.subject) or "(no subject)"


def contains(head: Head, commit: str) -> bool:
    """Whether the tree's head is ``commit`` or descends from it."""
    try:
        found = resolve(head.repo, commit)
    except InputError:
        return False
    return found.id == head.commit.id or head.repo.descendant_of(head.commit.id, found.id)


def applies(head: Head, series: Series, scratch_dir: Path | None) -> bool:
    """Whether every patch of the series applies, in order, to the tree's head."""
    diffs = [p.diff for p in series.patches if p.diff.strip()]
    if not diffs:
        return False
    with ScratchRepo(head.repo, scratch_dir) as scratch:
        tree = head.commit.tree
        for diff in diffs:
            try:
                tree = scratch.apply(tree, diff)
            except PatchDoesNotApply:
                return False
    return True


def route(series: Series, heads: list[Head], scratch_dir: Path | None = None) -> Route:
    """The trees ``series`` is for, and how they were found (module docstring)."""
    tags = subject_tags(series_subject(series))
    tagged = [h for h in heads if set(tags) & set(h.tree.subject_tags())]
    if series.base_commit:
        based = [h for h in heads if contains(h, series.base_commit)]
        if based:
            return Route([h for h in based if h in tagged] or based, BY_BASE)
    if tagged:
        return Route(tagged, BY_TAG)
    applying = [h for h in heads if applies(h, series, scratch_dir)]
    if applying:
        return Route(applying, BY_APPLYING)
    tried = [f"no configured tree contains its base-commit {series.base_commit[:12]}"] if series.base_commit else []
    tried.append(f"its subject tag{'s' if len(tags) > 1 else ''} {', '.join(tags)} name{'' if len(tags) > 1 else 's'} "
                 "no tree" if tags else "its subject has no tree tag")
    tried.append("it applies to no tree's head")
    return Route([], "", "; ".join(tried))
