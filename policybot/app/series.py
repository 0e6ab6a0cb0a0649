"""``policybot review``: judge a patch series from the list before it lands.

series (b4) -> apply patch by patch in memory -> inventory after each patch
-> findings attributed to the patch that introduces them -> review mails.
The promises that count are those valid at the series' base.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from typing import Callable

import pygit2

from .. import forked
from ..errors import InputError
from ..kernel.apply import PatchDoesNotApply, ScratchRepo
from ..kernel.flags import flag_effect, parse_flags
from ..kernel.gitrepo import resolve
from ..model.inventory import Inventory, Location
from ..kernel.scanner import Scanner
from ..mail.b4wrap import Patch, Series
from ..mail.quote import parse_hunks
from ..model.findings import Finding
from ..policy.audit import ACK_TRAILER, Auditor
from ..policy.judge import Ack
from ..policy.rules import render_message


@dataclass
class PatchReview:
    patch: Patch
    applied: bool
    problem: str = ""  # why it did not apply ("" if it did)
    findings: list[Finding] = field(default_factory=list)
    files: tuple[str, ...] = ()  # paths the patch touches
    skipped: bool = False  # not applied nor judged: its series touches no kfunc code (review_series)


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


# a +/- line of a diff saying what the scanner's first test looks for (not a ---/+++ file line)
_KFUNC_LINE = re.compile(r"^(?!\+\+\+ |--- )[-+].*(?:kfunc|KFUNC)", re.M)


def cannot_matter(scanner: Scanner, base_tree: pygit2.Tree, patches: list[Patch]) -> bool:
    """Whether no patch of a series can change the inventory, told from the diffs alone: each
    touches only .c files the base's inventory does not read (scanner.relevant_paths) and adds
    or removes no line saying kfunc or KFUNC (the scanner's first test of a .c file). A header,
    a Kbuild or Kconfig file, the manifest or anything else that is not .c may matter."""
    relevant = scanner.relevant_paths(base_tree)
    for patch in patches:
        files = patch_files(patch.diff)
        if not files or any(not f.endswith(".c") or f in relevant for f in files) or _KFUNC_LINE.search(patch.diff):
            return False
    return True


def review_series(auditor: Auditor, series: Series, base_rev: str | None = None, branch: str = "HEAD",
                  scratch_dir=None, max_patch_bytes: int | None = None,
                  on_judged: Callable[[ReviewResult], None] | None = None,
                  skip_unrelated: bool = False) -> ReviewResult:
    """The series' findings, patch by patch. ``on_judged`` is given the patches in order as
    they are judged (all at once, or a long series' first half while its second is judged),
    each time as a ReviewResult of those patches that shares the notes of the whole. With
    ``skip_unrelated`` (the inbox job: a day of list traffic), a series that cannot_matter is
    neither applied nor judged: its patches are ``skipped``."""
    repo, scanner, today = auditor.repo, auditor.scanner, auditor.today
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
    if skip_unrelated and cannot_matter(scanner, base_commit.tree, series.patches):
        skipped = [PatchReview(p, False, "", [], patch_files(p.diff), skipped=True) for p in series.patches]
        return ReviewResult(series, base_name, str(base_commit.id), how, skipped, notes)
    base_inv = scanner.inventory_of_commit(base_commit, base_name)
    promises = auditor.promises_at(base_inv, base_commit, today)
    steps = _steps(base_commit.tree, series.patches, notes)

    def judge_in(scratch: ScratchRepo) -> _Judge:
        # the same object checking as the caller's scanner: the libgit2 setting is process-wide
        patched = Scanner(scratch.repo, scanner.cache, jobs=1, verify_objects=scanner.verify_objects)
        # the patched trees' blobs (a new manifest, too) are only in the scratch repository
        return _Judge(scratch, scratch_dir, auditor, patched, auditor.reading(patched),
                      promises, today, base_name, judge_in)

    def judged(some: list[PatchReview]) -> None:
        if on_judged is not None and some:
            on_judged(ReviewResult(series, base_name, str(base_commit.id), how, some, notes))

    with ScratchRepo(repo, scratch_dir) as scratch:
        reviews = _judged(judge_in(scratch), steps, base_commit.tree, base_inv, scanner.jobs, judged)
    return ReviewResult(series, base_name, str(base_commit.id), how, reviews, notes)


@dataclass
class _Step:
    """One patch of the series, applied (``new_tree``) or not (``problem``) to ``tree``
    (both None until it is applied)."""
    patch: Patch
    files: tuple[str, ...]
    acks: list[Ack]
    tree: pygit2.Tree | None = None
    new_tree: pygit2.Tree | None = None
    problem: str = ""


def _steps(base_tree: pygit2.Tree, patches: list[Patch], notes: list[str]) -> list[_Step]:
    """Each patch with the files it touches and the acks its replies give, in order."""
    steps = []
    for patch in patches:
        files = patch_files(patch.diff)
        where = f"patch {patch.counter}/{patch.expected}"
        acks = [Ack(name, addr, frozenset(files), base_tree, f"a reply from {sender} to {where}")
                for name, addr, sender in _acks(patch)]
        if _own_acks(patch):
            notes.append(f"{where}: its own Kfunc-Break-Acked-by tag does not count: it was written by "
                         "the patch's author; a maintainer acknowledges a break by replying with the tag")
        steps.append(_Step(patch, files, acks))
    return steps


def _apply(scratch: ScratchRepo, tree: pygit2.Tree, steps: list[_Step]) -> pygit2.Tree:
    """Each step's patch applied to the tree the ones before it left (one that does not apply
    changes nothing); the tree the last one leaves."""
    for st in steps:
        st.tree = tree
        try:
            st.new_tree = tree = scratch.apply(tree, st.patch.diff)
        except PatchDoesNotApply as e:
            st.problem = str(e)
    return tree


@dataclass
class _Judge:
    scratch: ScratchRepo  # where the patches are applied
    scratch_dir: object  # where a forked child makes its own
    auditor: Auditor  # of the real repository: a patch that does not apply is judged by its text
    patched: Scanner  # of the scratch repository, as the auditor below
    patched_auditor: Auditor
    promises: dict
    today: dt.date
    base_name: str
    judge_in: Callable[[ScratchRepo], _Judge]  # the same judge over another scratch repository

    def inventory_of(self, tree: pygit2.Tree, before: list[_Step], base_inv: Inventory) -> Inventory:
        """The inventory of ``tree``, which the steps ``before`` left: the base's when none of them
        applied, else named after the last that did (messages quote the name), even when that
        tree is the base's again."""
        last = next((st for st in reversed(before) if st.new_tree is not None), None)
        if last is None:
            return base_inv
        return self.patched.inventory_of_tree(tree, "", f"{self.base_name}+{last.patch.counter}")

    def reviews(self, steps: list[_Step], inv: Inventory) -> list[PatchReview]:
        """The steps' findings; ``inv`` is the inventory of the first one's tree."""
        out = []
        for st in steps:
            if st.new_tree is None:
                out.append(PatchReview(st.patch, False, st.problem,
                                       judge_diff_text(self.auditor, st.patch, inv, self.promises), st.files))
                continue
            new_inv = self.patched.inventory_of_tree(st.new_tree, "", f"{self.base_name}+{st.patch.counter}")
            findings = self.patched_auditor.judge_change(inv, st.tree, new_inv, st.new_tree, self.promises,
                                                  self.today, st.acks)
            out.append(PatchReview(st.patch, True, "", findings, st.files))
            inv = new_inv
        return out


FORK_MIN = 6  # patches: below this, a second process costs more than it saves


def _judged(judge: _Judge, steps: list[_Step], base_tree: pygit2.Tree, base_inv: Inventory, jobs: int,
            done: Callable[[list[PatchReview]], None]) -> list[PatchReview]:
    """Every step applied and judged, each part handed to ``done`` as it is ready. A long series
    in two processes: the parent applies and judges the first part and hands it on while a
    forked child applies the rest in a scratch repository of its own (beside the parent's,
    whose trees it reads) and judges it, linking its first tree itself. A child that fails
    has its part redone here."""
    if jobs < 2 or len(steps) < FORK_MIN or not forked.available():
        _apply(judge.scratch, base_tree, steps)
        reviews = judge.reviews(steps, base_inv)
        done(reviews)
        return reviews
    split = len(steps) * 2 // 5  # the child takes three fifths: the parent also drafts its part's replies
    head, tail = steps[:split], steps[split:]
    tree = _apply(judge.scratch, base_tree, head)
    # the child's scratch repository, made and removed here: a child stopped by the parent
    # (which failed first) cannot remove it
    own = ScratchRepo(judge.scratch.repo, judge.scratch_dir)

    def first_part() -> list[PatchReview]:
        first = judge.reviews(head, base_inv)
        done(first)
        return first

    def later_part(j: _Judge, start: pygit2.Tree) -> list[tuple[bool, str, list[Finding]]]:
        """The rest applied from ``start`` (in ``j``'s scratch repository) and judged: as data to pickle."""
        _apply(j.scratch, start, tail)
        return [(r.applied, r.problem, r.findings) for r in j.reviews(tail, j.inventory_of(start, head, base_inv))]

    try:
        first, later = forked.both(first_part, lambda: later_part(judge.judge_in(own), own.repo[tree.id]),
                                   lambda: later_part(judge, tree),  # the child failed: here, from the parent's tree
                                   judge.patched.cache.after_fork if judge.patched.cache else lambda: None)
    finally:
        own.close()
    rest = [PatchReview(st.patch, ok, problem, findings, st.files) for st, (ok, problem, findings) in zip(tail, later)]
    done(rest)
    return first + rest


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
    places = _entry_places(patch.diff)
    out = []
    for name, old_flags in removed.items():
        kfunc = inv.kfuncs.get(name)
        if kfunc is None or (kfunc.test and not auditor.policy.include_tests):
            continue
        if name not in added:
            f = auditor.judge.finding("KFUNC_REMOVED", name, render_message("KFUNC_REMOVED", "diff_text"),
                                      kfunc.location, None, promises.get(name))
            out.append(f and replace(f, hunk=places.get(("-", name))))
            continue
        a, b = set(parse_flags(old_flags)), set(parse_flags(added[name]))
        answers = auditor.policy.semantics
        deltas = [(f"+{x}", flag_effect(x, added=True, answers=answers)) for x in sorted(b - a)] + \
                 [(f"-{x}", flag_effect(x, added=False, answers=answers)) for x in sorted(a - b)]
        for rule, effect, variant in (("KFUNC_FLAGS_TIGHTENED", "breaking", "diff_text"),
                                      ("KFUNC_NEEDS_REVIEW", "review", "flags_diff_text")):
            mine = [d for d, e in deltas if e == effect]
            if mine:
                out.append(auditor.judge.finding(rule, name, render_message(rule, variant, deltas=" ".join(mine)),
                                           kfunc.location, places.get(("+", name)), promises.get(name)))
    return [replace(f, base_rev=inv.rev) for f in out if f]


def _entry_places(diff_text: str) -> dict[tuple[str, str], Location]:
    """Where the patch's hunks put each set entry it adds ("+", name) or removes ("-", name), on
    the side of the patched file: a removed line is at the line that follows it there."""
    out: dict[tuple[str, str], Location] = {}
    for h in parse_hunks(diff_text):
        for i, (text, _, new) in enumerate(h.lines):
            m = _ENTRY_LINE.match(text)
            if not m:
                continue
            if m.group(1) == "-":
                new = next((ln[2] for ln in h.lines[i + 1:] if ln[2] is not None), None) or \
                    next((ln[2] + 1 for ln in reversed(h.lines[:i]) if ln[2] is not None), None)
            if new is not None:
                out.setdefault((m.group(1), m.group(2)), Location(h.path, new))
    return out
