"""``policybot propose``: from evidence to declarations (issue 24).

For every kfunc of a revision: when it appeared, how many releases its prototype, flags and
program types have been unchanged, who uses it (the census), what it needs to build, whether
a successor replaces it. From that, the candidates: for ``stable``, kfuncs undeclared or
unstable with enough independent out-of-tree users and long enough unchanged ([propose] in
the policy); for ``deprecating``, those a successor (NAME_v2, NAME___v2, NAME2) replaces, or
that nobody uses and whose kernel-doc names a replacement. Nothing declared stable is ever
proposed for anything else: that would break its promise.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..kernel.gitrepo import resolve
from ..kernel.ledger import release_distance
from ..model.proposal import Candidate, Evidence, FileDiff, PatchMail, Proposal, Proposed
from ..model.vocabulary import Level
from ..policy.calendar import release_number
from .census import kept_rows
from .history import kfunc_history

if TYPE_CHECKING:
    from .context import Context

CHANGES = ("signature", "flags", "prog_types")
_SUCCESSOR = (re.compile(r"(.+)_v\d+"), re.compile(r"(.+)___v\d+"), re.compile(r"(.+)\d"))


def successors_of(names) -> dict[str, str]:
    """NAME -> the first (by name) of ``names`` that is NAME_vN, NAME___vN or NAME and a digit:
    one pass over the names, each read as each of the three."""
    successors: dict[str, str] = {}
    for name in sorted(names):
        for suffix in _SUCCESSOR:
            m = suffix.fullmatch(name)
            if m:
                successors.setdefault(m[1], name)
    return successors


def propose(ctx: Context, rev: str, tags_glob: str = "v*") -> Proposal:
    auditor, policy = ctx.auditor, ctx.policy
    repo, scanner = auditor.repo, auditor.scanner
    commit = resolve(repo, rev)
    inv = scanner.inventory_of_commit(commit, rev)
    decls, _ = auditor.declarations(inv, commit.tree)
    history = kfunc_history(repo, scanner, tags_glob, policy, upto=rev)
    histories = {h.name: h for h in history}
    by_release = history.arches()
    jit = tuple(by_release[history.releases[-1].name]) if history.releases else ()
    tags = auditor.calendar.release_numbers()
    current = auditor.calendar.release_of_commit(commit)
    # out-of-tree users as findings name them (one per program, its strongest use); in-tree by name
    outside = auditor.judge.users
    inside: dict[str, set[str]] = {}
    for row in kept_rows(ctx.state):
        if row.use.in_tree:
            inside.setdefault(row.use.kfunc, set()).add(row.use.user)
    successors = successors_of(inv.kfuncs)
    out = Proposal(rev, str(commit.id), policy.manifest, policy.propose_min_users,
                   policy.propose_min_unchanged_releases, policy.propose_write)
    for k in inv.selected(policy.include_tests):
        res = decls.get(k.name)
        level = res.effective.level if res and res.effective else Level.UNSTABLE
        h = histories.get(k.name)
        changes = [e.release for e in (h.events if h else []) if e.kind in CHANGES]
        since = changes[-1] if changes else (h.first_release if h else None)
        start = release_number(since)
        unchanged = release_distance(start, current, tags) if start and current else 0
        successor = successors.get(k.name)
        doc = k.definition.doc if k.definition else None
        replacement = (res.effective.replacement if res and res.effective else None) or \
            (doc.replacement if doc and doc.deprecated else None) or None
        out.evidence.append(Evidence(k.name, str(level), bool(res and res.effective), h.first_release if h else None,
                                     changes[-1] if changes else None, unchanged, tuple(sorted(inside.get(k.name, ()))),
                                     tuple(sorted(u.text() for u in outside.get(k.name, ()))), tuple(k.guards), jit,
                                     tuple(k.files), successor,
                                     replacement, str(k.definition.location) if k.definition else "",
                                     doc.line if doc else 0))
        if res and res.effective and level != Level.UNSTABLE:
            out.already.append(k.name)
    for e in out.evidence:
        if e.level != Level.UNSTABLE or e.kfunc in out.already:
            continue  # declared: nothing to propose (a demotion of a promise never is)
        if e.successor or (not e.users_in_tree and not e.users_out_of_tree and e.replacement):
            why = f"{e.successor} replaces it" if e.successor else f"no known user; its kernel-doc names {e.replacement}"
            out.candidates.append(Candidate(e.kfunc, Proposed.DEPRECATING, why, e))
        elif len(e.users_out_of_tree) >= out.min_users and e.unchanged_releases >= out.min_unchanged_releases:
            why = (f"{len(e.users_out_of_tree)} out-of-tree users, unchanged for {e.unchanged_releases} releases "
                   f"(since {e.last_change or e.first_release})")
            out.candidates.append(Candidate(e.kfunc, Proposed.STABLE, why, e))
    out.candidates.sort(key=lambda c: (c.proposed != Proposed.STABLE, -len(c.evidence.users_out_of_tree),
                                       -c.evidence.unchanged_releases, c.kfunc))
    return out


def declaration_series(ctx: Context, proposal: Proposal, sender: str) -> None:
    """The candidates declared the tree's way ([propose] write: entries of the manifest, or a
    "Stability:" line in each kfunc's kernel-doc comment, the manifest for those without one),
    one patch per MAINTAINERS subsystem of their files, each to what get_maintainer.pl names for
    those files, after a cover letter with the evidence; proposal.series. The patches apply in
    order on the revision."""
    import email.utils

    from ..kernel.maintainers import maintainers_at
    from ..mail.drafts import render, subject, template_env
    repo = ctx.auditor.repo
    commit = repo[proposal.commit]
    maint = maintainers_at(repo, commit.tree)
    texts: dict[str, str] = {}  # path -> its text as the patches so far leave it

    def current(path: str) -> str:
        if path not in texts:
            try:
                texts[path] = repo[commit.tree[path].id].data.decode("utf-8", "surrogateescape")
            except KeyError:
                texts[path] = ""
        return texts[path]

    groups: dict[str, list[Candidate]] = {}
    for c in proposal.candidates:
        files = list(c.evidence.files)
        name = (maint.subsystem_of(files[0]) if maint and files else "") or "BPF"
        groups.setdefault(name, []).append(c)
    env = template_env(ctx.config.templates or None)
    total = len(groups)
    patches = []
    for i, (subsystem, members) in enumerate(sorted(groups.items()), 1):
        edits: dict[str, str] = {}
        in_manifest = []
        for c in members:
            path, _, line = c.evidence.definition.rpartition(":")
            if proposal.write == "kernel-doc" and c.evidence.doc_line and path:
                edits[path] = _with_stability(edits.get(path, current(path)), c, c.evidence.doc_line, int(line))
            else:
                in_manifest.append(c)
        if in_manifest:
            edits[proposal.manifest] = _with_entries(current(proposal.manifest), in_manifest)
        diffs = tuple(_diff(path, current(path), new) for path, new in sorted(edits.items()))
        texts.update(edits)
        rec = maint.for_files(sorted({f for c in members for f in c.evidence.files})) if maint else None
        body = render(env, "propose-patch.txt.j2", subsystem=subsystem, candidates=members,
                      files=[d.path for d in diffs], rev=proposal.rev)
        patches.append(PatchMail(subject(env, "propose", i, total, subsystem, len(members)),
                                 tuple(rec.lists if rec else ()), tuple(rec.people if rec else ()), body, diffs))
    to = tuple(dict.fromkeys(a for p in patches for a in p.to))
    cc = tuple(dict.fromkeys(a for p in patches for a in p.cc))
    cover = render(env, "propose-cover.txt.j2", proposal=proposal, subsystems=sorted(groups))
    proposal.series = [PatchMail(subject(env, "propose", 0, total, "", len(proposal.candidates)), to, cc, cover)] \
        + patches
    proposal.sender = sender
    proposal.date = email.utils.formatdate(commit.commit_time)


def _diff(path: str, old: str, new: str) -> FileDiff:
    import difflib
    diff = "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        "/dev/null" if not old else f"a/{path}", f"b/{path}"))
    lines = diff.splitlines()
    return FileDiff(path, diff, sum(1 for ln in lines if ln.startswith("+") and not ln.startswith("+++")),
                    sum(1 for ln in lines if ln.startswith("-") and not ln.startswith("---")))


def _with_stability(text: str, c: Candidate, doc_line: int, definition_line: int) -> str:
    """``text`` with a "Stability:" line (and for a successor, a "Deprecated:" line) at the end of
    the kernel-doc comment that starts at ``doc_line``, as kernel-doc sections are written."""
    lines = text.split("\n")
    end = next((i for i in range(doc_line - 1, min(definition_line, len(lines))) if lines[i].strip() == "*/"), None)
    if end is None:
        return text
    added = [" *", f" * Stability: {c.proposed}"]
    if c.proposed == Proposed.DEPRECATING and c.evidence.successor:
        added.append(f" * Deprecated: use {c.evidence.successor}() instead.")
    return "\n".join(lines[:end] + added + lines[end:])


def _with_entries(text: str, members: list[Candidate]) -> str:
    """The manifest with ``members`` declared under its ``kfuncs:`` key (made when absent)."""
    entries = "".join(f"  {c.kfunc}:\n    stability: {c.proposed}\n"
                      + (f"    replacement: {c.evidence.successor}\n" if c.proposed == Proposed.DEPRECATING
                         and c.evidence.successor else "") for c in members)
    if not text:
        return "# kfunc stability declarations (Documentation/bpf/kfuncs.rst)\nkfuncs:\n" + entries
    m = re.search(r"^kfuncs:[ \t]*(\{\})?[ \t]*$", text, re.M)
    if m is None:
        return text.rstrip("\n") + "\nkfuncs:\n" + entries
    return text[:m.start()] + "kfuncs:\n" + entries + text[m.end() + 1:]
