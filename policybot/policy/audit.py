"""``policybot audit``: hold every change between two revisions against what was promised.

git tree -> inventory -> diff -> findings. The declarations and promise
dates that count are those valid at the base; a change is judged on the
date it landed (the head commit's date), current-state checks on ``today``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from typing import Mapping

import pygit2

from ..addresses import address_key
from ..kernel.gitrepo import resolve
from ..kernel.maintainers import maintainers_at
from ..kernel.scanner import Scanner
from ..model.census import KnownUser
from ..kernel.ledger import dated_notes
from ..model.findings import AuditResult, Finding
from ..model.ledger import DatedNote, LedgerEntry, LedgerStatus
from ..model.inventory import Inventory, Location
from ..model.promises import Declaration, Promise, PromiseDate, Resolved, Problem
from ..model.vocabulary import Level, PromiseState, Source, severity
from .calendar import ReleaseCalendar
from .config import Policy, read_overlay
from .declarations import LEVELS, collect, parse_declaration_yaml
from .diff import diff
from .judge import Ack, Judge
from .rules import render_message

ACK_TRAILER = re.compile(r"^Kfunc-Break-Acked-by:\s*(.+?)\s*<([^>]+)>\s*$", re.M | re.I)


class Auditor:
    def __init__(self, repo: pygit2.Repository, scanner: Scanner, policy: Policy, today: dt.date | None = None,
                 users: Mapping[str, tuple[KnownUser, ...]] | None = None):
        self.repo = repo
        self.scanner = scanner
        self.policy = policy
        self.today = today or dt.date.today()
        self.calendar = ReleaseCalendar(repo, scanner.cache)
        self.judge = Judge(policy, self.today, users)
        self._manifest_cache: dict[str, dict] = {}
        self._last_declarations: tuple = ()  # (inventory, tree id, result): a series' next base is this head

    def reading(self, scanner: Scanner) -> Auditor:
        """The same policy and day, reading another repository (a series' scratch repository)."""
        return Auditor(scanner.repo, scanner, self.policy, self.today, self.judge.users)

    # -- declarations ---------------------------------------------------------------

    def _manifest(self, tree: pygit2.Tree) -> tuple[str, str] | None:
        try:
            entry = tree[self.policy.manifest]
        except KeyError:
            return None
        return self.policy.manifest, self.repo[entry.id].data.decode("utf-8", "replace")

    def declarations(self, inv: Inventory, tree: pygit2.Tree) -> tuple[dict[str, Resolved], list[Problem]]:
        last = self._last_declarations
        if last and last[0] is inv and last[1] == tree.id:
            return last[2]
        result = collect(inv, self._manifest(tree), read_overlay(self.policy), self.policy.include_tests)
        self._last_declarations = (inv, tree.id, result)
        return result

    def _level_at(self, commit_id: str, decl: Declaration, inv_kfunc) -> str | None:
        """The level ``decl``'s own source gives the kfunc at another commit."""
        tree = self.repo[commit_id].tree
        if decl.source == Source.MANIFEST:
            try:
                blob = self.repo[tree[self.policy.manifest].id]
            except KeyError:
                return None
            key = str(blob.id)
            if key not in self._manifest_cache:
                entries, _ = parse_declaration_yaml(blob.data.decode("utf-8", "replace"), "", overlay=False)
                self._manifest_cache[key] = {n: f["level"] for n, _, f, _ in entries}
            return self._manifest_cache[key].get(decl.kfunc)
        path = decl.location.path
        try:
            entry = tree[path]
        except KeyError:
            return None
        if decl.source == Source.KERNEL_DOC:
            facts = self.scanner.facts_of(path, str(entry.id), all_defs=True)
            fd = facts.defs.get(decl.kfunc)
            if not fd or not fd.doc:
                return None
            m = re.search(r"^\s*Stability:\s*(\S+)", fd.doc, re.M | re.I)
            if m:
                return m.group(1).lower()
            return Level.DEPRECATED if re.search(r"^\s*Deprecated:", fd.doc, re.M | re.I) else None
        if decl.source == Source.KF_FLAG:
            facts = self.scanner.facts_of(path, str(entry.id))
            for s in facts.sets:
                for e in s.entries:
                    if e.name == decl.kfunc and "KF_DEPRECATED" in e.flags:
                        return Level.DEPRECATED
            return None
        return None

    def _introduced(self, head: pygit2.Commit, decl: Declaration, levels: tuple[str, ...]) -> PromiseDate:
        """When ``decl`` (at one of ``levels``) first appeared on head's first-parent line."""
        commit = self.calendar.introduced(
            str(head.id), lambda c: self._level_at(c, decl, None) in levels,
            f"{decl.source}:{decl.kfunc}:{'/'.join(levels)}:{decl.location.path}")
        return self.calendar.promise_date(commit, self.policy.date_from)

    def _first_seen(self, head: pygit2.Commit, kfunc) -> PromiseDate:
        """For overlay declarations without since: when the kfunc itself appeared."""
        path = kfunc.location.path

        def present(c: str) -> bool:
            try:
                entry = self.repo[c].tree[path]
            except KeyError:
                return False
            facts = self.scanner.facts_of(path, str(entry.id))
            return any(e.name == kfunc.name for s in facts.sets for e in s.entries)

        commit = self.calendar.introduced(str(head.id), present, f"present:{kfunc.name}:{path}")
        return self.calendar.promise_date(commit, self.policy.date_from)

    def promise(self, resolved: Resolved, inv: Inventory, commit: pygit2.Commit, as_of: dt.date) -> Promise:
        """The promise of ``resolved``'s winning declaration at ``commit``, judged on ``as_of``."""
        decl = resolved.effective
        kfunc = inv.kfuncs[decl.kfunc]
        if decl.level == Level.UNSTABLE:
            return Promise(decl, PromiseState.UNSTABLE, None, None)
        since = self.calendar.since(decl.since) if decl.since else None
        if since is None:
            if decl.source == Source.OVERLAY:
                since = self._first_seen(commit, kfunc)
            else:
                since = self._introduced(commit, decl, (decl.level,))
        if decl.level == Level.STABLE:
            ends = self.calendar.stable_end(since.date, self.policy)
            return Promise(decl, PromiseState.STABLE if as_of < ends.date else PromiseState.EXPIRED, since, ends)
        stable_since = self._stable_before(commit, decl, kfunc)
        if decl.level == Level.DEPRECATING:
            return Promise(decl, PromiseState.DEPRECATING, since, None, stable_since)
        ends = self.calendar.deprecation_end(since.date, self.policy, stable_since.date if stable_since else None)
        key = PromiseState.DEPRECATED if as_of < ends.date else PromiseState.DEPRECATED_DUE
        return Promise(decl, key, since, ends, stable_since)

    def _stable_before(self, commit: pygit2.Commit, decl: Declaration, kfunc) -> PromiseDate | None:
        """When a deprecating/deprecated declaration's source first said stable, if it did."""
        if decl.source == Source.OVERLAY:
            return None
        chain_start = self._introduced(commit, decl, (Level.STABLE, Level.DEPRECATING, Level.DEPRECATED))
        if chain_start.commit and self._level_at(chain_start.commit, decl, kfunc) == Level.STABLE:
            return chain_start
        return None

    # -- the audit -------------------------------------------------------------------

    def audit(self, head_rev: str, base_rev: str | None = None) -> AuditResult:
        head_commit = resolve(self.repo, head_rev)
        head = self.scanner.inventory_of_commit(head_commit, head_rev)
        notes = []
        if self.calendar.shallow:
            notes.append("shallow clone: promise dates are commit dates of the oldest commits available")
        elif not self.calendar.releases():
            notes.append("no release tags (v<major>.<minor>): promise dates are commit dates")
        if base_rev is None:
            head_decls, head_problems = self.declarations(head, head_commit.tree)
            findings = [self.judge.problem(p) for p in head_problems]
            promises = {n: self.promise(r, head, head_commit, self.today) for n, r in head_decls.items()}
            findings += self._expiring(promises, head)
            ledger = self.ledger(head_commit, head)
            findings += self._ledger_findings(ledger, head, promises)
            return AuditResult(None, head, self._finish(findings, head), notes, promises, ledger)
        base_commit = resolve(self.repo, base_rev)
        if base_commit.id != head_commit.id and not self.repo.descendant_of(head_commit.id, base_commit.id):
            notes.append(f"{base_rev} is not an ancestor of {head_rev}: comparing the two trees as they are")
        base = self.scanner.inventory_of_commit(base_commit, base_rev)
        as_of = dt.datetime.fromtimestamp(head_commit.commit_time, dt.timezone.utc).date()
        promises = self.promises_at(base, base_commit, as_of)
        findings = self.judge_change(base, base_commit.tree, head, head_commit.tree, promises, as_of,
                              self._acks(base_commit, head_commit))
        base_ledger = self.ledger(base_commit, base)
        ledger = self.ledger(head_commit, head, base_ledger)
        # a range reports what changed in the ledger: a note newly due, overdue or withdrawn, not
        # every note again each week
        before = {e.note.key: e.status for e in base_ledger}
        changed = [e for e in ledger if before.get(e.note.key) != e.status]
        findings = self._finish(findings + self._ledger_findings(changed, head, promises), head, base)
        return AuditResult(base, head, findings, notes, promises, ledger)

    # -- the ledger of dated promises -------------------------------------------------

    def ledger(self, commit: pygit2.Commit, inv: Inventory,
               base_ledger: list[LedgerEntry] | None = None) -> list[LedgerEntry]:
        """The dated notes at ``commit`` with their status against its release; with the base's
        ledger, the base's notes that are gone while what they dated is still at ``commit``
        (withdrawn)."""
        tags = self.calendar.release_numbers()
        current = self.calendar.release_of_commit(commit)
        files = {f for k in inv.kfuncs.values() for f in k.files}
        notes = dated_notes(self.repo, commit.tree, files, self.policy.ledger_paths, tags)
        name = f"v{current[0]}.{current[1]}" if current else ""
        out = [LedgerEntry(n, _status(n, current), name) for n in notes]
        here = {n.key for n in notes}
        for e in base_ledger or ():
            n = e.note
            if n.key not in here and n.release and self._still_there(n, commit, inv):
                out.append(LedgerEntry(n, LedgerStatus.WITHDRAWN, name))
        return out

    def _still_there(self, note: DatedNote, commit: pygit2.Commit, inv: Inventory) -> bool:
        """Whether what ``note`` dated is at ``commit``: a kfunc it names, a function it names
        defined or called in its file, or the line of code under it."""
        if any(s in inv.kfuncs for s in note.symbols):
            return True
        try:
            text = self.repo[commit.tree[note.path].id].data
        except KeyError:
            return False
        if not note.symbols:
            return bool(note.anchor) and note.anchor.encode() in text
        return any(re.search(rb"\b" + re.escape(s.encode()) + rb"\s*\(", text) for s in note.symbols)

    def _ledger_findings(self, entries: list[LedgerEntry], head: Inventory,
                         promises: dict[str, Promise]) -> list[Finding]:
        out = []
        for e in entries:
            n = e.note
            if e.status == LedgerStatus.UNDATED:
                continue  # a run-time warning names no release: listed in the ledger, no finding
            kfunc = next((s for s in n.symbols if s in head.kfuncs), "")
            rule = f"LEDGER_{e.status.upper()}"
            variant = "same" if n.named == n.release else "renamed"
            fields = {"text": n.text.lstrip("/* ").rstrip(" */"), "release": n.release}
            if variant == "renamed":
                fields["named"] = n.named
            if e.status == LedgerStatus.OVERDUE:
                fields["current"] = e.current
            if e.status == LedgerStatus.WITHDRAWN:
                fields["what"] = ", ".join(n.symbols) or n.anchor
            if e.status in (LedgerStatus.FUTURE,) and variant == "same":
                del fields["release"]
            loc = Location(n.path, n.line)
            base, head_loc = (loc, None) if e.status == LedgerStatus.WITHDRAWN else (None, loc)  # withdrawn: at the base
            f = self.judge.finding(rule, kfunc, render_message(rule, variant, **fields), base, head_loc,
                                   promises.get(kfunc) if kfunc else None)
            if f:
                out.append(f)
        return out

    def promises_at(self, base: Inventory, base_commit: pygit2.Commit, as_of: dt.date) -> dict[str, Promise]:
        decls, _ = self.declarations(base, base_commit.tree)
        return {n: self.promise(r, base, base_commit, as_of) for n, r in decls.items()}

    def judge_change(self, base: Inventory, base_tree: pygit2.Tree, head: Inventory, head_tree: pygit2.Tree,
              promises: dict[str, Promise], as_of: dt.date, acks: list[Ack]) -> list[Finding]:
        """Findings of the change from ``base`` to ``head``, against ``promises``.

        ``promises`` are those valid where the change started (an audit's
        base, a series' base), even when ``base`` is an intermediate tree.
        """
        base_decls, base_problems = self.declarations(base, base_tree)
        head_decls, head_problems = self.declarations(head, head_tree)
        # only problems the change introduces; and a declaration left behind by a
        # removal is part of that removal's finding
        known = {(p.rule, p.kfunc, p.message) for p in base_problems}
        findings = [self.judge.problem(p) for p in head_problems
                    if (p.rule, p.kfunc, p.message) not in known
                    and not (p.rule == "DECLARATION_UNKNOWN_KFUNC" and p.kfunc in base.kfuncs)]
        for change in diff(base, head, self.policy.include_tests, self.policy.semantics):
            if not change.kfunc and not change.kfuncs:  # a tree-level change no kfunc carries
                f = self.judge.finding(change.rule, "", change.message, change.base, change.head, None)
                if f:
                    findings.append(replace(f, cause=change.cause))
                continue
            for name in change.kfuncs or (change.kfunc,):
                promise = promises.get(name)
                rule, message = change.rule, change.message
                if rule == "KFUNC_REMOVED" and promise and promise.level_key == PromiseState.DEPRECATED:
                    rule, message = "DEPRECATED_REMOVED_EARLY", render_message("DEPRECATED_REMOVED_EARLY")
                f = self.judge.finding(rule, name, message, change.base, change.head, promise)
                if f:
                    f = replace(f, cause=change.cause, kfuncs=(name,) if change.kfuncs else (), hunk=change.hunk)
                    findings.append(self._acknowledge(f, acks, base, head))
        findings = group_by_cause(findings)
        findings += self._lifecycle(base_decls, head_decls, promises, head, as_of)
        return self._finish(findings, head, base)

    def _lifecycle(self, base_decls, head_decls, promises, head: Inventory, as_of: dt.date) -> list[Finding]:
        out = []
        order = {lvl: i for i, lvl in enumerate(LEVELS)}
        for name, res in head_decls.items():
            new = res.effective
            old = base_decls.get(name)
            old_level = old.effective.level if old else Level.UNSTABLE
            promise = promises.get(name)
            loc = new.location
            if new.level in (Level.DEPRECATING, Level.DEPRECATED) and old_level != new.level:
                removal = self.calendar.earliest_removal(as_of, self.policy, promise)
                said = {"level": new.level, "source": new.source, "removal": removal}
                if new.replacement:
                    message = render_message("DEPRECATION_STARTED", "replacement", **said,
                                             replacement=new.replacement)
                elif new.note:
                    message = render_message("DEPRECATION_STARTED", "note", **said, note=new.note)
                else:
                    message = render_message("DEPRECATION_STARTED", "plain", **said)
                f = self.judge.finding("DEPRECATION_STARTED", name, message,
                                  old.effective.location if old else None, loc, promise)
                if f:
                    out.append(f)
            elif old_level in (Level.STABLE, Level.DEPRECATING, Level.DEPRECATED) and order[new.level] < order[old_level] \
                    and new.level == Level.UNSTABLE:
                f = self.judge.finding("STABILITY_DEMOTED", name,
                                  render_message("STABILITY_DEMOTED", "demoted", level=new.level, old_level=old_level),
                                  old.effective.location, loc, promise)
                if f:
                    out.append(f)
        for name, old in base_decls.items():
            if name in head.kfuncs and name not in head_decls and old.effective.level == Level.STABLE:
                f = self.judge.finding("STABILITY_DEMOTED", name, render_message("STABILITY_DEMOTED", "undeclared"),
                                  old.effective.location, head.kfuncs[name].location, promises.get(name))
                if f:
                    out.append(f)
        return out

    def _expiring(self, promises: dict[str, Promise], head: Inventory) -> list[Finding]:
        out = []
        horizon = self.today + dt.timedelta(days=self.policy.expiring_horizon_days)
        for name, p in promises.items():
            if p.ends and self.today <= p.ends.date <= horizon:
                variant = "stable_window" if p.level_key == PromiseState.STABLE else "notice_period"
                f = self.judge.finding("PROMISE_EXPIRING", name,
                                  render_message("PROMISE_EXPIRING", variant, ends=p.ends.date,
                                                 days=(p.ends.date - self.today).days),
                                  None, head.kfuncs[name].location, p)
                if f:
                    out.append(f)
        return out

    # -- acknowledged breaks ------------------------------------------------------------

    def _acks(self, base: pygit2.Commit, head: pygit2.Commit) -> list[Ack]:
        """Each Kfunc-Break-Acked-by trailer of a commit in base..head."""
        out = []
        walker = self.repo.walk(head.id, pygit2.enums.SortMode.TOPOLOGICAL)
        walker.hide(base.id)
        for c in walker:
            acks = ACK_TRAILER.findall(c.message)
            if not acks:
                continue
            parent = c.parents[0].tree if c.parents else None
            d = self.repo.diff(parent, c.tree) if parent is not None else c.tree.diff_to_tree(swap=True)
            files = frozenset(p for delta in d.deltas for p in (delta.old_file.path, delta.new_file.path))
            for name, addr in acks:
                out.append(Ack(name, addr, files, base.tree, str(c.id)[:12]))  # the base says who maintains
        return out

    def _acknowledge(self, f: Finding, acks: list[Ack], base: Inventory, head: Inventory) -> Finding:
        """The judge's acknowledgement of ``f``, by the files of its kfunc at base and head."""
        kfunc = base.kfuncs.get(f.kfunc) or head.kfuncs.get(f.kfunc)
        files = set(kfunc.files) if kfunc else set()
        if f.kfunc in head.kfuncs:
            files |= set(head.kfuncs[f.kfunc].files)
        return self.judge.acknowledge(f, acks, files, self._maintainers_of)

    def _maintainers_of(self, tree, files: list[str]) -> set[str] | None:
        """Addresses of the files' maintainers, or None when the tree has no MAINTAINERS."""
        maint = maintainers_at(self.repo, tree)
        if maint is None:
            return None
        rec = maint.for_files(files)
        return {address_key(m) for m in rec.maintainers}

    def _finish(self, findings: list[Finding], head: Inventory, base: Inventory | None = None) -> list[Finding]:
        """The findings in order, each naming the revisions its locations are in."""
        def key(f: Finding):
            loc = f.hunk if f.in_base and f.hunk else f.location  # the place the line shows
            return (-severity(f.verdict), loc.path if loc else "", loc.line if loc else 0, f.rule, f.kfunc)
        named = [replace(f, base_rev=f.base_rev or (base.rev if base else ""), head_rev=f.head_rev or head.rev)
                 for f in findings]
        return sorted(named, key=key)


def group_by_cause(findings: list[Finding]) -> list[Finding]:
    """One finding per cause: those of one rule and cause (acknowledged or not) become one,
    listing every kfunc. The judge judged each kfunc by its own promise; the group takes the
    verdict of its worst member, with that member's promise (a break of one stable kfunc is a
    violation even when the others are unstable). Members whose messages differ (one type
    change reaching several parameters or kfuncs) keep each its own, prefixed by the kfunc."""
    groups: dict[tuple, list[Finding]] = {}
    out: list[Finding] = []
    for f in findings:
        if f.cause:
            groups.setdefault((f.rule, f.cause, bool(f.acknowledged)), []).append(f)
        else:
            out.append(f)
    for members in groups.values():
        tree_level = bool(members[0].kfuncs)  # a tree-level change keeps its own form even with one kfunc
        if len(members) == 1 and not tree_level:
            out.append(members[0])
            continue
        out.append(_grouped(members, tree_level))
    return out


def _grouped(members: list[Finding], tree_level: bool) -> Finding:
    names = tuple(sorted({n for f in members for n in f.members}))
    worst = max(members, key=lambda f: severity(f.verdict))
    first = min(members, key=lambda f: (f.location.path, f.location.line, f.kfunc) if f.location
                else ("", 0, f.kfunc))
    notes = tuple(dict.fromkeys(n for f in members for n in f.notes))
    users = tuple({u.user: u for f in members for u in f.users}.values())
    called = tuple(sorted({f.kfunc for f in members if f.users and f.kfunc}))
    ordered = sorted(members, key=lambda f: (f.kfunc, f.location.line if f.location else 0))
    message = worst.message
    if len({f.message for f in members}) > 1:
        per_kfunc: dict[str, list[str]] = {}
        for f in ordered:
            per_kfunc.setdefault(f.kfunc, []).append(f.message)
        parts = {k: ", ".join(dict.fromkeys(m)) for k, m in per_kfunc.items()}
        message = "; ".join(parts.values() if len(parts) == 1 else (f"{k}: {m}" for k, m in parts.items()))
    pick = worst if tree_level else first
    return replace(worst, kfunc=worst.kfunc, kfuncs=names if len(names) > 1 or tree_level else (),
                   notes=notes, users=users, called=called, message=message, location=pick.location,
                   base_location=pick.base_location, head_location=pick.head_location, hunk=pick.hunk)


def _status(note: DatedNote, current: tuple[int, int] | None) -> LedgerStatus:
    if not note.release:
        return LedgerStatus.UNDATED
    named = tuple(int(x) for x in note.release[1:].split("."))
    if current is None or named > current:
        return LedgerStatus.FUTURE
    return LedgerStatus.DUE if named == current else LedgerStatus.OVERDUE
