"""Per-kfunc history across release tags (``policybot history``).

For every kfunc seen at any release tag (``v<major>.<minor>``, optionally
narrowed by a glob): the release it first appeared in, the last release
that still had it (when it went away), every release in which its
signature, flags, program types, config guards, place or declared level
changed, and the rename it went through.

Consecutive releases are compared with ``policybot.policy.diff`` (the same
detectors the audit uses: a rename is ``KFUNC_RENAMED``), plus a plain
before/after of each facet, so that a change the compatibility rules call
harmless (a program type added, a parameter renamed) still shows up.

One ``Scanner`` is used for every tag: with a ``State`` its tree and blob
caches mean a tag costs only the directories and files that changed since
the previous one.
"""

from __future__ import annotations

import csv
import datetime as dt
import fnmatch
import io
import json
import re
from dataclasses import dataclass, field

import pygit2

from .. import forked
from ..errors import ConfigError
from ..policy.config import Policy
from ..policy.declarations import collect
from ..policy.diff import Change, diff
from ..policy.history import RELEASE_TAG, History, Release
from ..policy.rules import catalogue, render_message
from ..vocabulary import RuleFamily
from ..kernel.gitrepo import resolve
from ..kernel.jit import JitSupport, arch_condition, arches, kfunc_call_support_of_tree
from ..kernel.model import Inventory, Kfunc
from ..kernel.scanner import Scanner
from ..progress import Progress

HISTORY_SCHEMA = 1

# event kinds, in the order they are listed within one release
KINDS = ("added", "re-added", "renamed", "removed", "signature", "flags", "prog_types", "guards",
         "moved", "level", "other")

# the kind of event a change of each rule family is (rules.toml's family)
_KIND_OF_FAMILY = {RuleFamily.SIGNATURE: "signature", RuleFamily.FLAGS: "flags",
                   RuleFamily.REGISTRATION: "prog_types", RuleFamily.BUILD: "guards", RuleFamily.LOCATION: "moved"}


@dataclass(frozen=True)
class RuleMessage:
    """A rule a change of the history triggers, with the audit's message for it."""
    rule: str
    message: str


def _triggers(rule: str, variant: str, **fields) -> tuple[RuleMessage]:
    """An event's one rule, with its message (rules.toml)."""
    return (RuleMessage(rule, render_message(rule, variant, **fields)),)


@dataclass(frozen=True)
class Event:
    release: str
    date: dt.date
    kind: str  # one of KINDS
    detail: str  # before -> after, in words
    rules: tuple[RuleMessage, ...] = ()  # from policy.diff, if any applies
    other: str | None = None  # the other name of a rename

    @property
    def gone(self) -> bool:
        """The kfunc is not in this release under this name any more."""
        return self.kind == "removed" or (self.kind == "renamed" and self.detail.startswith("renamed to"))

    def to_json(self) -> dict:
        return {"release": self.release, "date": self.date.isoformat(), "kind": self.kind,
                "detail": self.detail, "rules": [{"rule": r.rule, "message": r.message} for r in self.rules],
                "other": self.other}


@dataclass
class KfuncHistory:
    name: str
    test: bool = False
    events: list[Event] = field(default_factory=list)
    # presence intervals: [first release, last release or None while the newest tag has it]
    spans: list[list[str | None]] = field(default_factory=list)
    renamed_from: str | None = None
    renamed_to: str | None = None
    level: str = "unstable"  # declared level at the last release that had it

    @property
    def first_release(self) -> str | None:
        return self.spans[0][0] if self.spans else None

    @property
    def last_release(self) -> str | None:
        """The last release that had the kfunc, or None when the newest release still has it."""
        return self.spans[-1][1] if self.spans else None

    @property
    def present(self) -> bool:
        return bool(self.spans) and self.spans[-1][1] is None

    @property
    def removed_in(self) -> str | None:
        """The first release without it (after the last span), or None."""
        if self.present:
            return None
        gone = [e for e in self.events if e.gone]
        return gone[-1].release if gone else None

    @property
    def changed_in(self) -> list[str]:
        """Releases in which something BPF programs see changed (not additions or removals)."""
        kinds = {"signature", "flags", "prog_types", "guards", "moved", "level", "other"}
        return list(dict.fromkeys(e.release for e in self.events if e.kind in kinds))

    def to_json(self) -> dict:
        return {
            "name": self.name, "test": self.test, "present": self.present,
            "first_release": self.first_release, "last_release": self.last_release,
            "removed_in": self.removed_in, "renamed_from": self.renamed_from,
            "renamed_to": self.renamed_to, "level": self.level, "changed_in": self.changed_in,
            "spans": [{"first": a, "last": b} for a, b in self.spans],
            "events": [e.to_json() for e in self.events],
        }


class Histories(list):
    """A list of KfuncHistory that also knows which releases it covers (oldest first), and
    which JITs could call kfuncs in each."""

    def __init__(self, items=(), releases: list[Release] | None = None,
                 jits: dict[str, tuple[JitSupport, ...]] | None = None):
        super().__init__(items)
        self.releases: list[Release] = list(releases or [])
        self.jits: dict[str, tuple[JitSupport, ...]] = dict(jits or {})

    def arches(self) -> dict[str, list[str]]:
        """release -> architectures whose JIT can call kfuncs (some under a condition)."""
        return {r.name: arches(self.jits.get(r.name, ())) for r in self.releases}

    def arch_since(self) -> dict[str, str]:
        """architecture -> the first release (of those covered) whose JIT can call kfuncs."""
        out: dict[str, str] = {}
        for release, names in self.arches().items():
            for a in names:
                out.setdefault(a, release)
        return out


def release_key(name: str) -> tuple[int, ...]:
    m = RELEASE_TAG.match(name)
    return tuple(int(x) for x in m.groups()) if m else (1 << 30,)


def releases_for(repo: pygit2.Repository, tags_glob: str = "v*", history: History | None = None,
                 upto: str | None = None) -> list[Release]:
    """Release tags (v<major>.<minor>, no -rc) matching ``tags_glob``, oldest version first;
    with ``upto``, only those that are this revision or its ancestors."""
    rels = (history or History(repo)).releases()
    out = sorted((r for r in rels if fnmatch.fnmatchcase(r.name, tags_glob)),
                 key=lambda r: (release_key(r.name), r.date))
    if upto is not None:
        tip = resolve(repo, upto).id
        out = [r for r in out if pygit2.Oid(hex=r.commit) == tip or repo.descendant_of(tip, pygit2.Oid(hex=r.commit))]
    return out


def _sig(k: Kfunc) -> str | None:
    if not k.definition:
        return None
    return re.sub(r"\s+", " ", k.definition.signature.render(k.name)).strip()


def _set_delta(a: tuple[str, ...], b: tuple[str, ...], strip: str = "") -> str:
    plus = [f"+{x.removeprefix(strip)}" for x in sorted(set(b) - set(a))]
    minus = [f"-{x.removeprefix(strip)}" for x in sorted(set(a) - set(b))]
    return " ".join(plus + minus)


def _overlay(policy: Policy) -> tuple[str, str] | None:
    if not policy.overlay:
        return None
    try:
        with open(policy.overlay, encoding="utf-8") as fh:
            return policy.overlay, fh.read()
    except OSError as e:
        raise ConfigError(f"{policy.overlay}: {e.strerror}") from None


def _levels(repo: pygit2.Repository, commit: pygit2.Commit, inv: Inventory, policy: Policy,
            overlay: tuple[str, str] | None) -> dict[str, str]:
    """kfunc -> declared level at ``commit`` (undeclared kfuncs are absent: unstable)."""
    manifest = None
    try:
        entry = commit.tree[policy.manifest]
        manifest = (policy.manifest, repo[entry.id].data.decode("utf-8", "replace"))
    except KeyError:
        pass
    resolved, _ = collect(inv, manifest, overlay, include_tests=True)
    return {n: r.effective.level for n, r in resolved.items() if r.effective}


def _facet_events(a: Kfunc, b: Kfunc, la: str, lb: str, changes: list[Change],
                  rel: Release) -> list[Event]:
    """What changed for one kfunc present in two consecutive releases."""
    raw: dict[str, str] = {}
    sa, sb = _sig(a), _sig(b)
    if sa != sb:
        raw["signature"] = f"{sa or '?'} -> {sb or '?'}"
    if a.flags != b.flags:
        raw["flags"] = _set_delta(a.flags, b.flags)
    if a.prog_types != b.prog_types:
        raw["prog_types"] = _set_delta(a.prog_types, b.prog_types)
    if a.guards != b.guards:
        raw["guards"] = (" && ".join(a.guards) or "none") + " -> " + (" && ".join(b.guards) or "none")
    if la != lb:
        raw["level"] = f"{la} -> {lb}"
    by_kind: dict[str, list[RuleMessage]] = {}
    for c in changes:
        kind = _KIND_OF_FAMILY.get(catalogue()[c.rule].family)
        if c.rule == "KFUNC_NEEDS_REVIEW":
            kind = "flags" if c.variant in ("flags", "flags_diff_text") else "signature"
        by_kind.setdefault(kind or "other", []).append(RuleMessage(c.rule, c.message))
    out = []
    for kind in KINDS:
        if kind in raw or kind in by_kind:
            rules = tuple(by_kind.get(kind, ()))
            detail = raw.get(kind) or "; ".join(r.message for r in rules)
            out.append(Event(rel.name, rel.date, kind, detail, rules))
    return out


def kfunc_history(repo: pygit2.Repository, scanner: Scanner, tags_glob: str = "v*",
                  policy: Policy | None = None, include_tests: bool | None = None,
                  upto: str | None = None) -> Histories:
    """The history of every kfunc over the release tags matching ``tags_glob``, sorted by name.

    ``policy`` gives the manifest path and overlay (declared levels) and, unless
    ``include_tests`` says otherwise, whether test kfuncs count (default: no).
    ``upto``: only releases that are this revision or its ancestors.
    """
    policy = policy or Policy()
    if include_tests is None:
        include_tests = policy.include_tests
    releases = releases_for(repo, tags_glob, History(repo, scanner.cache), upto)
    overlay = _overlay(policy)
    scanner.read_ahead([repo[r.commit].tree for r in releases], f"{len(releases)} releases")
    linked = _linked(repo, scanner, releases)
    hist: dict[str, KfuncHistory] = {}
    prev_inv: Inventory | None = None
    prev_levels: dict[str, str] = {}
    prev_rel: Release | None = None
    jits: dict[str, tuple[JitSupport, ...]] = {}
    for rel, (inv, jits[rel.name]) in zip(releases, linked):
        commit = repo[rel.commit]
        levels = _levels(repo, commit, inv, policy, overlay)
        cur = {k.name: k for k in inv.selected(include_tests)}
        old = {k.name: k for k in prev_inv.selected(include_tests)} if prev_inv else {}
        changes: dict[str, list[Change]] = {}
        renames: dict[str, str] = {}  # old name -> new name
        if prev_inv is not None:
            for c in diff(prev_inv, inv, include_tests):
                if c.rule == "KFUNC_RENAMED" and c.new_name:
                    renames[c.kfunc] = c.new_name
                elif c.rule != "KFUNC_REMOVED":
                    changes.setdefault(c.kfunc, []).append(c)
        renamed_to_old = {new: o for o, new in renames.items()}
        # gone: removed or renamed
        for name in sorted(old.keys() - cur.keys()):
            h = hist[name]
            h.spans[-1][1] = prev_rel.name
            if name in renames:
                new = renames[name]
                h.renamed_to = new
                h.events.append(Event(rel.name, rel.date, "renamed", f"renamed to {new}",
                                      _triggers("KFUNC_RENAMED", "old", new_name=new), new))
            else:
                h.events.append(Event(rel.name, rel.date, "removed",
                                      f"no longer in any registered kfunc set (last in {prev_rel.name})",
                                      _triggers("KFUNC_REMOVED", "registry")))
        # new: added, re-added, or the new name of a rename
        for name in sorted(cur.keys() - old.keys()):
            k = cur[name]
            level = levels.get(name, "unstable")
            declared = f" (declared {level})" if level != "unstable" else ""
            h = hist.get(name)
            if h is None:
                h = hist[name] = KfuncHistory(name, k.test)
            h.spans.append([rel.name, None])
            if name in renamed_to_old:
                o = renamed_to_old[name]
                h.renamed_from = o
                h.events.append(Event(rel.name, rel.date, "renamed", f"renamed from {o}{declared}",
                                      _triggers("KFUNC_RENAMED", "new", old_name=o, new_name=name), o))
            elif len(h.spans) > 1:
                h.events.append(Event(rel.name, rel.date, "re-added",
                                      f"back after removal (last in {h.spans[-2][1]}){declared}"))
            else:
                where = str(k.definition.location) if k.definition else str(k.location)
                h.events.append(Event(rel.name, rel.date, "added", f"at {where}{declared}"))
        for name in sorted(old.keys() & cur.keys()):
            hist[name].events.extend(_facet_events(old[name], cur[name], prev_levels.get(name, "unstable"),
                                                   levels.get(name, "unstable"), changes.get(name, []), rel))
        for name in cur:
            hist[name].level = levels.get(name, "unstable")
            hist[name].test = cur[name].test
        prev_inv, prev_levels, prev_rel = inv, levels, rel
    return Histories((hist[n] for n in sorted(hist)), releases, jits)


FORK_MIN = 3  # releases: below this, a second process costs more than it saves


def _linked(repo: pygit2.Repository, scanner: Scanner,
            releases: list[Release]) -> list[tuple[Inventory, tuple[JitSupport, ...]]]:
    """Each release's inventory and JITs; with several, the second half in a forked child
    (after a read-ahead, linking is all that is left, and it holds the GIL; without one,
    the child reads its releases itself). A child that fails has its half linked here."""
    def link(rels: list[Release]) -> list[tuple[Inventory, tuple[JitSupport, ...]]]:
        out = []
        for rel in rels:
            commit = repo[rel.commit]
            out.append((scanner.inventory_of_commit(commit, rel.name),
                        kfunc_call_support_of_tree(repo, commit.tree, scanner.kbuild_cache)))
        return out

    if len(releases) < FORK_MIN or scanner.jobs < 2 or not forked.available():
        return link(releases)
    half = len(releases) // 2

    def in_child() -> None:
        scanner.progress = Progress(enabled=False)  # the parent's progress line is the parent's
        if scanner.cache is not None:
            scanner.cache.after_fork()

    head, tail = forked.both(lambda: link(releases[:half]), lambda: link(releases[half:]), in_child=in_child)
    return head + tail


# -- renderers ------------------------------------------------------------------------

def _event_text(e: Event) -> str:
    if e.kind == "renamed":
        return f"{e.release} {e.detail}"
    label = {"prog_types": "program types"}.get(e.kind, e.kind)
    rules = ",".join(r.rule for r in e.rules if r.rule not in ("KFUNC_RENAMED", "KFUNC_REMOVED"))
    return f"{e.release} {label} {e.detail}" + (f" [{rules}]" if rules else "")


def history_table(histories: list[KfuncHistory]) -> str:
    rows = [("KFUNC", "FIRST", "LAST", "LEVEL", "CHANGES")]
    for h in histories:
        changes = [_event_text(e) for e in h.events if e.kind != "added" or len(h.spans) > 1]
        rows.append((h.name + (" [test]" if h.test else ""), h.first_release or "-",
                     h.last_release or "-", h.level, "; ".join(changes) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
    releases = getattr(histories, "releases", None)
    n = len(rows) - 1
    scope = ""
    if releases:
        scope = f" over {len(releases)} release{'s' if len(releases) != 1 else ''} " \
                f"({releases[0].name}..{releases[-1].name})"
    lines.extend(jit_table(histories))
    lines.append(f"{n} kfunc{'s' if n != 1 else ''}{scope}")
    return "\n".join(lines) + "\n"


def history_json(histories: list[KfuncHistory]) -> str:
    releases = getattr(histories, "releases", None) or []
    doc = {
        "schema": HISTORY_SCHEMA,
        "releases": [{"name": r.name, "date": r.date.isoformat(), "commit": r.commit} for r in releases],
        **jit_json(histories),
        "kfuncs": [h.to_json() for h in histories],
    }
    return json.dumps(doc, indent=2) + "\n"


def jit_json(histories: list[KfuncHistory]) -> dict:
    """The JITs able to call kfuncs: per release, since when, and each file's conditions."""
    if not isinstance(histories, Histories):
        return {"arches": {}, "arch_since": {}, "arch_conditions": {}, "jit_support": {}}
    return {
        "arches": histories.arches(),
        "arch_since": histories.arch_since(),
        "arch_conditions": {r.name: {a: arch_condition(histories.jits[r.name], a) or None
                                     for a in arches(histories.jits.get(r.name, ()))}
                            for r in histories.releases},
        "jit_support": {r.name: [s.to_json() for s in histories.jits.get(r.name, ())]
                        for r in histories.releases},
    }


def jit_table(histories: list[KfuncHistory]) -> list[str]:
    """One line per release: the architectures whose JIT can call kfuncs, conditions in ()."""
    if not isinstance(histories, Histories):
        return []
    out = []
    for r in histories.releases:
        parts = []
        for a in arches(histories.jits.get(r.name, ())):
            cond = arch_condition(histories.jits[r.name], a)
            parts.append(f"{a} ({cond})" if cond else a)
        out.append(f"kfunc calls at {r.name}: {', '.join(parts) or 'no JIT'}")
    return out


def history_csv(histories: list[KfuncHistory]) -> str:
    """One row per event."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "test", "release", "date", "kind", "detail", "rules", "other"])
    for h in histories:
        for e in h.events:
            w.writerow([h.name, int(h.test), e.release, e.date.isoformat(), e.kind, e.detail,
                        "|".join(r.rule for r in e.rules), e.other or ""])
    return buf.getvalue()
