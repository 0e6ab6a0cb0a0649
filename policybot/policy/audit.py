"""``policybot audit``: hold every change between two revisions against what was promised.

git tree -> inventory -> diff -> findings. The declarations and promise
dates that count are those valid at the base; a change is judged on the
date it landed (the head commit's date), current-state checks on ``today``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace

import pygit2

from ..addresses import address_key
from ..errors import InputError
from ..kernel.gitrepo import resolve
from ..kernel.maintainers import maintainers_at
from ..kernel.model import Inventory, Location
from ..kernel.scanner import Scanner
from .config import Policy
from .declarations import LEVELS, Declaration, Problem, Resolved, collect, parse_declaration_yaml
from .diff import diff
from .history import History, PromiseDate, WindowEnd
from .rules import catalogue, render_message, severity
from ..vocabulary import VERDICTS, Level, PromiseState, Verdict

ACK_TRAILER = re.compile(r"^Kfunc-Break-Acked-by:\s*(.+?)\s*<([^>]+)>\s*$", re.M | re.I)


@dataclass(frozen=True)
class Promise:
    """What a kfunc's declaration at the base promises, with dates."""
    declaration: Declaration
    level_key: str  # unstable, stable, expired, deprecating, deprecated, deprecated_due
    since: PromiseDate | None
    ends: WindowEnd | None  # stable window end, or the earliest removal for deprecated
    stable_since: PromiseDate | None = None


@dataclass(frozen=True)
class Ack:
    """A Kfunc-Break-Acked-by tag: who gave it, for which changed files, where it was given."""
    name: str
    address: str
    files: frozenset[str]  # the files the acked change touches
    tree: pygit2.Tree  # the tree whose MAINTAINERS says who may ack
    where: str  # a commit id, or "a reply from ... to patch 2/5"


@dataclass(frozen=True)
class Acknowledgement:
    """Why a break is accepted: an entry of the operator's allowlist, or a maintainer's
    Kfunc-Break-Acked-by tag. Mail says it in templates/acknowledgement.txt.j2, which
    leaves out the operator's own file (``source``); ``text`` is for the operator."""
    kind: str  # "allowlist" or "tag"
    reason: str = ""  # allowlist: the entry's reason
    until: dt.date | None = None  # allowlist: the day the entry expires
    source: str = ""  # allowlist: policy path:line, the operator's local file
    name: str = ""  # tag: who acknowledged
    address: str = ""
    where: str = ""  # tag: the reply or commit that carries it

    def to_json(self) -> dict:
        """As data: finding JSON (and the HTML page from it), mail views."""
        return {"kind": self.kind, "reason": self.reason, "until": self.until.isoformat() if self.until else None,
                "source": self.source, "name": self.name, "address": self.address, "where": self.where}

    def text(self) -> str:
        if self.kind == "allowlist":
            return f"allowlist ({self.source}): {self.reason}"
        return f"acked by {self.name} <{self.address}> with a Kfunc-Break-Acked-by tag in {self.where}"


@dataclass(frozen=True)
class Finding:
    rule: str
    kfunc: str
    verdict: str
    message: str
    location: Location | None  # head location where there is one, else base
    base_location: Location | None
    head_location: Location | None
    promise: Promise | None
    hint: str
    ack: Acknowledgement | None = None  # why the break is accepted, None if it is not
    notes: tuple[str, ...] = ()
    cause: str = ""  # findings of one rule with the same cause are one finding (group_by_cause)
    kfuncs: tuple[str, ...] = ()  # every kfunc of a grouped finding; ``kfunc`` is its worst member

    @property
    def acknowledged(self) -> str:
        """The acknowledgement for the operator (text, JSON, SARIF): "" if there is none."""
        return self.ack.text() if self.ack else ""

    @property
    def counts(self) -> bool:
        return not self.ack

    @property
    def members(self) -> tuple[str, ...]:
        return self.kfuncs or ((self.kfunc,) if self.kfunc else ())

    @property
    def grouped(self) -> bool:
        """One finding for a cause: many kfuncs, or a change of the tree itself."""
        return bool(self.kfuncs) or (bool(self.cause) and not self.kfunc)


@dataclass
class AuditResult:
    base: Inventory | None
    head: Inventory
    findings: list[Finding]
    notes: list[str] = field(default_factory=list)
    promises: dict[str, Promise] = field(default_factory=dict)

    def worst(self) -> str | None:
        counted = [f.verdict for f in self.findings if f.counts]
        return max(counted, key=severity) if counted else None

    def counts(self) -> dict[str, int]:
        out = {v: 0 for v in reversed(VERDICTS)}
        for f in self.findings:
            if f.counts:
                out[f.verdict] += 1
        out["acknowledged"] = sum(1 for f in self.findings if f.acknowledged)
        return out


def stable_span(history: History, policy: Policy,
                promise: Promise | None) -> tuple[dt.date | None, dt.date | None]:
    """When the kfunc's stable promise began and when it ends: its own, or, for a kfunc
    deprecated since, the one its declaration made before; (None, None) if it never had one."""
    if promise is None:
        return None, None
    level = promise.declaration.level
    if level == Level.STABLE and promise.since and promise.ends:
        return promise.since.date, promise.ends.date
    if level in (Level.DEPRECATING, Level.DEPRECATED) and promise.stable_since:
        since = promise.stable_since.date
        return since, history.window_end(since, policy.stable_window).date
    return None, None


def earliest_removal(history: History, policy: Policy, deprecated_on: dt.date, promise: Promise | None) -> dt.date:
    """The one rule for when a kfunc may go: the notice period from ``deprecated_on``, never
    before a declared deprecation's own end, and never before a stable promise ends."""
    end = history.window_end(deprecated_on, policy.notice_period).date
    if promise and promise.level_key in (PromiseState.DEPRECATED, PromiseState.DEPRECATED_DUE) and promise.ends:
        end = max(end, promise.ends.date)
    _, stable_end = stable_span(history, policy, promise)
    return max(end, stable_end) if stable_end else end


class Auditor:
    def __init__(self, repo: pygit2.Repository, scanner: Scanner, policy: Policy, today: dt.date | None = None):
        self.repo = repo
        self.scanner = scanner
        self.policy = policy
        self.today = today or dt.date.today()
        self.history = History(repo, scanner.cache)
        self._manifest_cache: dict[str, dict] = {}
        self._last_declarations: tuple = ()  # (inventory, tree id, result): a series' next base is this head

    # -- declarations ---------------------------------------------------------------

    def _manifest(self, tree: pygit2.Tree) -> tuple[str, str] | None:
        try:
            entry = tree[self.policy.manifest]
        except KeyError:
            return None
        return self.policy.manifest, self.repo[entry.id].data.decode("utf-8", "replace")

    def _overlay(self) -> tuple[str, str] | None:
        if not self.policy.overlay:
            return None
        try:
            with open(self.policy.overlay, encoding="utf-8") as fh:
                return self.policy.overlay, fh.read()
        except OSError as e:
            from ..errors import ConfigError
            raise ConfigError(f"{self.policy.overlay}: {e.strerror}") from None

    def declarations(self, inv: Inventory, tree: pygit2.Tree) -> tuple[dict[str, Resolved], list[Problem]]:
        last = self._last_declarations
        if last and last[0] is inv and last[1] == tree.id:
            return last[2]
        result = collect(inv, self._manifest(tree), self._overlay(), self.policy.include_tests)
        self._last_declarations = (inv, tree.id, result)
        return result

    def _level_at(self, commit_id: str, decl: Declaration, inv_kfunc) -> str | None:
        """The level ``decl``'s own source gives the kfunc at another commit."""
        tree = self.repo[commit_id].tree
        if decl.source == "manifest":
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
        if decl.source == "kernel-doc":
            facts = self.scanner.facts_of(path, str(entry.id), all_defs=True)
            fd = facts.defs.get(decl.kfunc)
            if not fd or not fd.doc:
                return None
            m = re.search(r"^\s*Stability:\s*(\S+)", fd.doc, re.M | re.I)
            if m:
                return m.group(1).lower()
            return "deprecated" if re.search(r"^\s*Deprecated:", fd.doc, re.M | re.I) else None
        if decl.source == "kf-flag":
            facts = self.scanner.facts_of(path, str(entry.id))
            for s in facts.sets:
                for e in s.entries:
                    if e.name == decl.kfunc and "KF_DEPRECATED" in e.flags:
                        return "deprecated"
            return None
        return None

    def _introduced(self, head: pygit2.Commit, decl: Declaration, levels: tuple[str, ...]) -> PromiseDate:
        """When ``decl`` (at one of ``levels``) first appeared on head's first-parent line."""
        commit = self.history.introduced(
            str(head.id), lambda c: self._level_at(c, decl, None) in levels,
            f"{decl.source}:{decl.kfunc}:{'/'.join(levels)}:{decl.location.path}")
        return self.history.promise_date(commit, self.policy.date_from)

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

        commit = self.history.introduced(str(head.id), present, f"present:{kfunc.name}:{path}")
        return self.history.promise_date(commit, self.policy.date_from)

    def promise(self, resolved: Resolved, inv: Inventory, commit: pygit2.Commit, as_of: dt.date) -> Promise:
        """The promise of ``resolved``'s winning declaration at ``commit``, judged on ``as_of``."""
        decl = resolved.effective
        kfunc = inv.kfuncs[decl.kfunc]
        if decl.level == Level.UNSTABLE:
            return Promise(decl, PromiseState.UNSTABLE, None, None)
        since = self.history.since(decl.since) if decl.since else None
        if since is None:
            if decl.source == "overlay":
                since = self._first_seen(commit, kfunc)
            else:
                since = self._introduced(commit, decl, (decl.level,))
        if decl.level == Level.STABLE:
            ends = self.history.window_end(since.date, self.policy.stable_window)
            return Promise(decl, PromiseState.STABLE if as_of < ends.date else PromiseState.EXPIRED, since, ends)
        stable_since = self._stable_before(commit, decl, kfunc)
        if decl.level == Level.DEPRECATING:
            return Promise(decl, PromiseState.DEPRECATING, since, None, stable_since)
        # deprecated: the notice period, and never before an earlier stable window ends
        ends = self.history.window_end(since.date, self.policy.notice_period)
        if stable_since:
            stable_end = self.history.window_end(stable_since.date, self.policy.stable_window)
            if stable_end.date > ends.date:
                ends = stable_end
        key = PromiseState.DEPRECATED if as_of < ends.date else PromiseState.DEPRECATED_DUE
        return Promise(decl, key, since, ends, stable_since)

    def _stable_before(self, commit: pygit2.Commit, decl: Declaration, kfunc) -> PromiseDate | None:
        """When a deprecating/deprecated declaration's source first said stable, if it did."""
        if decl.source == "overlay":
            return None
        chain_start = self._introduced(commit, decl, ("stable", "deprecating", "deprecated"))
        if chain_start.commit and self._level_at(chain_start.commit, decl, kfunc) == "stable":
            return chain_start
        return None

    # -- the audit -------------------------------------------------------------------

    def audit(self, head_rev: str, base_rev: str | None = None) -> AuditResult:
        head_commit = resolve(self.repo, head_rev)
        head = self.scanner.inventory_of_commit(head_commit, head_rev)
        notes = []
        if self.history.shallow:
            notes.append("shallow clone: promise dates are commit dates of the oldest commits available")
        elif not self.history.releases():
            notes.append("no release tags (v<major>.<minor>): promise dates are commit dates")
        if base_rev is None:
            head_decls, head_problems = self.declarations(head, head_commit.tree)
            findings = [self._problem(p) for p in head_problems]
            promises = {n: self.promise(r, head, head_commit, self.today) for n, r in head_decls.items()}
            findings += self._expiring(promises, head)
            return AuditResult(None, head, self._finish(findings, head), notes, promises)
        base_commit = resolve(self.repo, base_rev)
        if base_commit.id != head_commit.id and not self.repo.descendant_of(head_commit.id, base_commit.id):
            notes.append(f"{base_rev} is not an ancestor of {head_rev}: comparing the two trees as they are")
        base = self.scanner.inventory_of_commit(base_commit, base_rev)
        as_of = dt.datetime.fromtimestamp(head_commit.commit_time, dt.timezone.utc).date()
        promises = self.promises_at(base, base_commit, as_of)
        findings = self.judge(base, base_commit.tree, head, head_commit.tree, promises, as_of,
                              self._acks(base_commit, head_commit))
        return AuditResult(base, head, self._finish(findings, head), notes, promises)

    def promises_at(self, base: Inventory, base_commit: pygit2.Commit, as_of: dt.date) -> dict[str, Promise]:
        decls, _ = self.declarations(base, base_commit.tree)
        return {n: self.promise(r, base, base_commit, as_of) for n, r in decls.items()}

    def judge(self, base: Inventory, base_tree: pygit2.Tree, head: Inventory, head_tree: pygit2.Tree,
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
        findings = [self._problem(p) for p in head_problems
                    if (p.rule, p.kfunc, p.message) not in known
                    and not (p.rule == "DECLARATION_UNKNOWN_KFUNC" and p.kfunc in base.kfuncs)]
        for change in diff(base, head, self.policy.include_tests):
            if not change.kfunc and not change.kfuncs:  # a tree-level change no kfunc carries
                f = self.finding(change.rule, "", change.message, change.base, change.head, None)
                if f:
                    findings.append(replace(f, cause=change.cause))
                continue
            for name in change.kfuncs or (change.kfunc,):
                promise = promises.get(name)
                rule, message = change.rule, change.message
                if rule == "KFUNC_REMOVED" and promise and promise.level_key == "deprecated":
                    rule, message = "DEPRECATED_REMOVED_EARLY", render_message("DEPRECATED_REMOVED_EARLY")
                f = self.finding(rule, name, message, change.base, change.head, promise)
                if f:
                    f = replace(f, cause=change.cause, kfuncs=(name,) if change.kfuncs else ())
                    findings.append(self._acknowledge(f, acks, base, head))
        findings = group_by_cause(findings)
        findings += self._lifecycle(base_decls, head_decls, promises, head, as_of)
        return self._finish(findings, head)

    def _verdict(self, rule: str, level_key: str) -> str:
        override = self.policy.verdict_overrides.get(rule)
        return override or catalogue()[rule].verdict[level_key]

    def finding(self, rule: str, kfunc: str, message: str, base: Location | None, head: Location | None,
                 promise: Promise | None) -> Finding | None:
        key = promise.level_key if promise else "unstable"
        verdict = self._verdict(rule, key)
        if verdict == Verdict.NONE:
            return None
        return Finding(rule, kfunc, verdict, message, head or base, base, head, promise, catalogue()[rule].hint)

    def _problem(self, p: Problem) -> Finding:
        verdict = self._verdict(p.rule, "unstable")
        message = p.message.removeprefix(f"{p.kfunc}: ") if p.kfunc else p.message
        return Finding(p.rule, p.kfunc, verdict, message, p.location, None, p.location, None,
                       catalogue()[p.rule].hint)

    def earliest_removal(self, deprecated_on: dt.date, promise: Promise | None) -> dt.date:
        return earliest_removal(self.history, self.policy, deprecated_on, promise)

    def _lifecycle(self, base_decls, head_decls, promises, head: Inventory, as_of: dt.date) -> list[Finding]:
        out = []
        order = {lvl: i for i, lvl in enumerate(LEVELS)}
        for name, res in head_decls.items():
            new = res.effective
            old = base_decls.get(name)
            old_level = old.effective.level if old else "unstable"
            promise = promises.get(name)
            loc = new.location
            if new.level in ("deprecating", "deprecated") and old_level != new.level:
                removal = self.earliest_removal(as_of, promise)
                said = {"level": new.level, "source": new.source, "removal": removal}
                if new.replacement:
                    message = render_message("DEPRECATION_STARTED", "replacement", **said,
                                             replacement=new.replacement)
                elif new.note:
                    message = render_message("DEPRECATION_STARTED", "note", **said, note=new.note)
                else:
                    message = render_message("DEPRECATION_STARTED", "plain", **said)
                f = self.finding("DEPRECATION_STARTED", name, message,
                                  old.effective.location if old else None, loc, promise)
                if f:
                    out.append(f)
            elif old_level in ("stable", "deprecating", "deprecated") and order[new.level] < order[old_level] \
                    and new.level == "unstable":
                f = self.finding("STABILITY_DEMOTED", name,
                                  render_message("STABILITY_DEMOTED", "demoted", level=new.level, old_level=old_level),
                                  old.effective.location, loc, promise)
                if f:
                    out.append(f)
        for name, old in base_decls.items():
            if name in head.kfuncs and name not in head_decls and old.effective.level == "stable":
                f = self.finding("STABILITY_DEMOTED", name, render_message("STABILITY_DEMOTED", "undeclared"),
                                  old.effective.location, head.kfuncs[name].location, promises.get(name))
                if f:
                    out.append(f)
        return out

    def _expiring(self, promises: dict[str, Promise], head: Inventory) -> list[Finding]:
        out = []
        horizon = self.today + dt.timedelta(days=self.policy.expiring_horizon_days)
        for name, p in promises.items():
            if p.ends and self.today <= p.ends.date <= horizon:
                variant = "stable_window" if p.level_key == "stable" else "notice_period"
                f = self.finding("PROMISE_EXPIRING", name,
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
                out.append(Ack(name, addr, files, c.tree, str(c.id)[:12]))
        return out

    def _acknowledge(self, f: Finding, acks: list[Ack], base: Inventory, head: Inventory) -> Finding:
        if f.verdict != Verdict.VIOLATION:
            return f
        for entry in self.policy.allow:
            if entry.kfunc == f.kfunc and entry.rule == f.rule:
                if self.today <= entry.expires:
                    return replace(f, ack=Acknowledgement("allowlist", reason=entry.reason, until=entry.expires,
                                                          source=f"{self.policy.path}:{entry.line}"))
                f = replace(f, notes=f.notes + (f"allowlist entry {self.policy.path}:{entry.line} expired "
                                                f"on {entry.expires}",))
        kfunc = base.kfuncs.get(f.kfunc) or head.kfuncs.get(f.kfunc)
        files = set(kfunc.files) if kfunc else set()
        if f.kfunc in head.kfuncs:
            files |= set(head.kfuncs[f.kfunc].files)
        for ack in acks:
            if not files & ack.files:
                continue
            name, addr, where = ack.name, ack.address, ack.where
            maintainers = self._maintainers_of(ack.tree, sorted(files & ack.files))
            if maintainers is not None and addr.lower() not in maintainers:
                f = replace(f, notes=f.notes + (f"the Kfunc-Break-Acked-by tag of {name} <{addr}> in {where} "
                                                "does not count: not a maintainer of the kfunc's files",))
                continue
            return replace(f, ack=Acknowledgement("tag", name=name, address=addr, where=where))
        return f

    def _maintainers_of(self, tree: pygit2.Tree, files: list[str]) -> set[str] | None:
        """Addresses of the files' maintainers, or None when the tree has no MAINTAINERS."""
        maint = maintainers_at(self.repo, tree)
        if maint is None:
            return None
        rec = maint.for_files(files)
        return {address_key(m) for m in rec.maintainers}

    def _finish(self, findings: list[Finding], head: Inventory) -> list[Finding]:
        def key(f: Finding):
            loc = f.location
            return (-severity(f.verdict), loc.path if loc else "", loc.line if loc else 0, f.rule, f.kfunc)
        return sorted(findings, key=key)


def group_by_cause(findings: list[Finding]) -> list[Finding]:
    """One finding per cause: those of one rule and cause (acknowledged or not) become one,
    listing every kfunc, at the verdict of its worst member and with that member's promise."""
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
        names = tuple(sorted({n for f in members for n in f.members}))
        worst = max(members, key=lambda f: severity(f.verdict))
        first = min(members, key=lambda f: (str(f.location), f.kfunc))
        notes = tuple(dict.fromkeys(n for f in members for n in f.notes))
        location = worst.location if tree_level else first.location
        out.append(replace(worst, kfunc=worst.kfunc, kfuncs=names, notes=notes,
                           location=location, base_location=first.base_location if not tree_level
                           else worst.base_location, head_location=first.head_location if not tree_level
                           else worst.head_location))
    return out


def check_fail_on(level: str) -> str:
    if level not in (*VERDICTS, "never"):
        raise InputError(f"--fail-on: unknown level {level!r} (violation, warning, notice, info, never)")
    return level
