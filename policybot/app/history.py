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

import fnmatch
import re
from typing import TYPE_CHECKING

import pygit2

from .. import forked
from ..errors import InputError
from ..policy.config import Policy, read_overlay
from ..policy.declarations import collect
from ..policy.diff import Change, diff
from ..kernel.gitrepo import resolve
from ..kernel.jit import kfunc_call_support_of_tree
from ..kernel.scanner import Scanner
from ..model.history import KINDS, Event, Histories, JitSupport, KfuncHistory, RuleMessage
from ..model.inventory import Inventory, Kfunc
from ..model.promises import Release
from ..model.vocabulary import Level, RuleFamily
from ..policy.calendar import ReleaseCalendar, release_number
from ..policy.rules import catalogue, render_message
from ..progress import Progress

if TYPE_CHECKING:
    from .context import Context

# the kind of event a change of each rule family is (rules.toml's family)
_KIND_OF_FAMILY = {RuleFamily.SIGNATURE: "signature", RuleFamily.FLAGS: "flags",
                   RuleFamily.REGISTRATION: "prog_types", RuleFamily.BUILD: "guards", RuleFamily.LOCATION: "moved"}


def _triggers(rule: str, variant: str, **fields) -> tuple[RuleMessage]:
    """An event's one rule, with its message (rules.toml)."""
    return (RuleMessage(rule, render_message(rule, variant, **fields)),)


def release_key(name: str) -> tuple[int, ...]:
    return release_number(name) or (1 << 30,)


def releases_for(repo: pygit2.Repository, tags_glob: str = "v*", history: ReleaseCalendar | None = None,
                 upto: str | None = None, since: str | None = None) -> list[Release]:
    """Release tags (v<major>.<minor>, no -rc) matching ``tags_glob``, oldest version first;
    with ``upto``, only those that are this revision or its ancestors; with ``since`` (a
    release tag), only that release and the later ones."""
    rels = (history or ReleaseCalendar(repo)).releases()
    out = sorted((r for r in rels if fnmatch.fnmatchcase(r.name, tags_glob)
                  and (since is None or release_key(r.name) >= release_key(since))),
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
                  upto: str | None = None, since: str | None = None) -> Histories:
    """The history of every kfunc over the release tags matching ``tags_glob``, sorted by name.

    ``policy`` gives the manifest path and overlay (declared levels) and, unless
    ``include_tests`` says otherwise, whether test kfuncs count (default: no).
    ``upto``: only releases that are this revision or its ancestors; ``since``: only this
    release tag and the later ones.
    """
    policy = policy or Policy()
    if include_tests is None:
        include_tests = policy.include_tests
    releases = releases_for(repo, tags_glob, ReleaseCalendar(repo, scanner.cache), upto, since)
    overlay = read_overlay(policy)
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
            for c in diff(prev_inv, inv, include_tests, policy.semantics):
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
            hist[name].level = levels.get(name, Level.UNSTABLE)
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


def history(ctx: Context, tags_glob: str) -> Histories:
    """`policybot history`: every kfunc of the repository over its release tags."""
    scanner = ctx.scanner
    if scanner.repo.head_is_unborn:
        raise InputError(f"{ctx.repo_path}: repository has no commits")
    return kfunc_history(scanner.repo, scanner, tags_glob, ctx.policy)
