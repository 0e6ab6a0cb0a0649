"""``policybot review``: judge a patch series from the list before it lands.

series (b4) -> apply patch by patch in memory -> inventory after each patch
-> findings attributed to the patch that introduces them -> review mails.
The promises that count are those valid at the series' base.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

import pygit2

from ..errors import InputError
from ..kernel.apply import PatchDoesNotApply, ScratchRepo
from ..kernel.flags import flag_effect, parse_flags
from ..kernel.gitrepo import resolve
from ..kernel.model import Inventory
from ..kernel.scanner import Scanner
from ..mail.b4wrap import Patch, Series
from ..policy.audit import ACK_TRAILER, Ack, Auditor, Finding
from ..policy.config import Policy
from ..policy.rules import render_message


@dataclass
class PatchReview:
    patch: Patch
    applied: bool
    problem: str = ""  # why it did not apply ("" if it did)
    findings: list[Finding] = field(default_factory=list)
    files: tuple[str, ...] = ()  # paths the patch touches


@dataclass
class ReviewResult:
    series: Series
    base_rev: str
    base_commit: str
    base_how: str  # "--base", "base-commit", "branch"
    reviews: list[PatchReview]
    notes: list[str] = field(default_factory=list)

    def findings(self) -> list[Finding]:
        return [f for r in self.reviews for f in r.findings]


_FILES = re.compile(r"^diff --git a/(\S+) b/(\S+)", re.M)


def patch_files(diff_text: str) -> tuple[str, ...]:
    out = []
    for a, b in _FILES.findall(diff_text):
        out += [a, b]
    return tuple(dict.fromkeys(out))


def choose_base(repo: pygit2.Repository, series: Series, base_rev: str | None, branch: str) -> tuple[pygit2.Commit, str, str]:
    if base_rev:
        return resolve(repo, base_rev), base_rev, "--base"
    if series.base_commit:
        try:
            return resolve(repo, series.base_commit), series.base_commit[:12], "base-commit"
        except InputError:
            pass
    return resolve(repo, branch), branch, "branch"


def review_series(repo: pygit2.Repository, scanner: Scanner, policy: Policy, series: Series,
                  base_rev: str | None = None, branch: str = "HEAD", today: dt.date | None = None,
                  scratch_dir=None, max_patch_bytes: int | None = None) -> ReviewResult:
    today = today or dt.date.today()
    for patch in series.patches:
        if max_patch_bytes and len(patch.diff) > max_patch_bytes:
            raise InputError(f"<{patch.msgid}>: patch {patch.counter}/{patch.expected} is {len(patch.diff)} "
                             f"bytes, over limits.max_patch_bytes ({max_patch_bytes}): not reviewed")
    base_commit, base_name, how = choose_base(repo, series, base_rev, branch)
    notes = []
    if series.base_commit and how == "branch":
        notes.append(f"base-commit {series.base_commit[:12]} is not in the repository: reviewed on {branch}")
    if series.missing:
        notes.append("patches missing from the series: " + ", ".join(f"{i}/{len(series.patches) + len(series.missing)}"
                                                                      for i in series.missing))
    auditor = Auditor(repo, scanner, policy, today)
    base_inv = scanner.inventory_of_commit(base_commit, base_name)
    promises = auditor.promises_at(base_inv, base_commit, today)
    reviews = []
    with ScratchRepo(repo, scratch_dir) as scratch:
        # the same object checking as the caller's scanner: the libgit2 setting is process-wide
        patched = Scanner(scratch.repo, scanner.cache, jobs=1, verify_objects=scanner.verify_objects)
        # the patched trees' blobs (a new manifest, too) are only in the scratch repository
        patched_auditor = Auditor(scratch.repo, patched, policy, today)
        tree, inv = base_commit.tree, base_inv
        for patch in series.patches:
            files = patch_files(patch.diff)
            where = f"patch {patch.counter}/{patch.expected}"
            acks = [Ack(name, addr, frozenset(files), base_commit.tree, f"a reply from {sender} to {where}")
                    for name, addr, sender in _acks(patch)]
            if _own_acks(patch):
                notes.append(f"{where}: its own Kfunc-Break-Acked-by tag does not count: it was written by "
                             "the patch's author; a maintainer acknowledges a break by replying with the tag")
            try:
                new_tree = scratch.apply(tree, patch.diff)
            except PatchDoesNotApply as e:
                r = PatchReview(patch, False, str(e), files=files)
                r.findings = judge_diff_text(auditor, patch, inv, promises)
                reviews.append(r)
                continue
            new_inv = patched.inventory_of_tree(new_tree, "", f"{base_name}+{patch.counter}")
            findings = patched_auditor.judge(inv, tree, new_inv, new_tree, promises, today, acks)
            reviews.append(PatchReview(patch, True, "", findings, files))
            tree, inv = new_tree, new_inv
    return ReviewResult(series, base_name, str(base_commit.id), how, reviews, notes)


def _acks(patch: Patch) -> list[tuple[str, str, str]]:
    """(name, address, sender) of each ack a reply gave, where the reply's From is the acker:
    as b4 collects trailers from replies. A tag in the patch itself is its author's word."""
    out = []
    for t in patch.reply_trailers:
        for ack_name, addr in ACK_TRAILER.findall(f"{t.name}: {t.value}"):
            if t.sender and addr.strip().lower() == t.sender.lower():
                out.append((ack_name, addr, t.sender))
    return out


def _own_acks(patch: Patch) -> list[tuple[str, str]]:
    return ACK_TRAILER.findall(patch.commit_message)


_ENTRY_LINE = re.compile(r"^([-+])\s*BTF_ID_FLAGS\s*\(\s*func\s*,\s*(\w+)\s*(?:,([^)]*))?\)", re.M)


def judge_diff_text(auditor: Auditor, patch: Patch, inv: Inventory, promises) -> list[Finding]:
    """What can be said of a patch that does not apply: set entries it removes or re-flags."""
    removed: dict[str, str] = {}
    added: dict[str, str] = {}
    for sign, name, flags in _ENTRY_LINE.findall(patch.diff):
        (removed if sign == "-" else added)[name] = flags or ""
    out = []
    for name, old_flags in removed.items():
        kfunc = inv.kfuncs.get(name)
        if kfunc is None or (kfunc.test and not auditor.policy.include_tests):
            continue
        if name not in added:
            out.append(auditor.finding("KFUNC_REMOVED", name, render_message("KFUNC_REMOVED", "diff_text"),
                                       kfunc.location, None, promises.get(name)))
            continue
        a, b = set(parse_flags(old_flags)), set(parse_flags(added[name]))
        deltas = [(f"+{x}", flag_effect(x, added=True)) for x in sorted(b - a)] + \
                 [(f"-{x}", flag_effect(x, added=False)) for x in sorted(a - b)]
        for rule, effect, variant in (("KFUNC_FLAGS_TIGHTENED", "breaking", "diff_text"),
                                      ("KFUNC_NEEDS_REVIEW", "review", "flags_diff_text")):
            mine = [d for d, e in deltas if e == effect]
            if mine:
                out.append(auditor.finding(rule, name, render_message(rule, variant, deltas=" ".join(mine)),
                                           kfunc.location, None, promises.get(name)))
    return [f for f in out if f]
