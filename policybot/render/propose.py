"""`policybot propose`: the candidates and their evidence as text and JSON, and the declarations
as a patch series (mbox, as `git format-patch --cover-letter` writes one: `git am` applies it,
`b4 send` and `git send-email` send it)."""

from __future__ import annotations

import dataclasses
import json

from .. import __version__
from ..model.proposal import Proposal

PROPOSE_SCHEMA = 1


def text(p: Proposal) -> str:
    out = []
    for c in p.candidates:
        e = c.evidence
        out.append(f"{c.kfunc}: propose {c.proposed}: {c.why}")
        users = ", ".join(e.users_out_of_tree) or "none known"
        out.append(f"    first release: {e.first_release or '-'}; out-of-tree users: {users}; "
                   f"in-tree users: {len(e.users_in_tree)}" + (f"; needs {', '.join(e.guards)}" if e.guards else "")
                   + (f"; JITs that call kfuncs: {', '.join(e.jit_arches)}" if e.jit_arches else ""))
    declared = f"; {len(p.already)} already declared" if p.already else ""
    stable = sum(1 for c in p.candidates if c.proposed == "stable")
    out.append(f"propose at {p.rev}: {len(p.evidence)} kfuncs, {stable} for stable, "
               f"{len(p.candidates) - stable} for deprecating{declared} (stable: at least {p.min_users} "
               f"out-of-tree users and {p.min_unchanged_releases} releases unchanged)")
    return "\n".join(out) + "\n"


def json_text(p: Proposal) -> str:
    return json.dumps({
        "schema": PROPOSE_SCHEMA, "rev": p.rev, "commit": p.commit, "manifest": p.manifest,
        "criteria": {"min_users": p.min_users, "min_unchanged_releases": p.min_unchanged_releases},
        "candidates": [{"kfunc": c.kfunc, "proposed": c.proposed, "why": c.why} for c in p.candidates],
        "declared": p.already,
        "evidence": [dataclasses.asdict(e) for e in p.evidence],
    }, indent=2) + "\n"


def mbox(p: Proposal) -> str:
    out = []
    total = len(p.series) - 1
    cover_id = f"<policybot-propose-{p.commit[:12]}-0@{_domain(p.sender)}>"
    for i, m in enumerate(p.series):
        head = [f"From policybot-{p.commit[:12]} Mon Sep 17 00:00:00 2001", f"From: {p.sender}", f"Date: {p.date}",
                f"Subject: {m.subject}"]
        if m.to:
            head.append("To: " + ", ".join(m.to))
        if m.cc:
            head.append("Cc: " + ", ".join(m.cc))
        head.append(f"Message-ID: <policybot-propose-{p.commit[:12]}-{i}@{_domain(p.sender)}>")
        if i:
            head += [f"In-Reply-To: {cover_id}", f"References: {cover_id}"]
        head += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=UTF-8", "Content-Transfer-Encoding: 8bit"]
        body = m.body.rstrip("\n") + "\n"
        if m.diffs:
            width = max(len(d.path) for d in m.diffs)
            stat = "".join(f" {d.path.ljust(width)} | {d.inserted + d.deleted} "
                           f"{'+' * min(d.inserted, 60)}{'-' * min(d.deleted, 60)}\n" for d in m.diffs)
            ins, dels = sum(d.inserted for d in m.diffs), sum(d.deleted for d in m.diffs)
            n = len(m.diffs)
            stat += (f" {n} file{'s' if n != 1 else ''} changed, {ins} insertion{'s' if ins != 1 else ''}(+)"
                     + (f", {dels} deletion{'s' if dels != 1 else ''}(-)" if dels else "") + "\n")
            body += "---\n" + stat + "".join(
                f"\ndiff --git a/{d.path} b/{d.path}\n" + ("new file mode 100644\n" if d.diff.startswith("--- /dev/null")
                                                       else "") + d.diff for d in m.diffs)
        elif total == 0:
            body += "\n(no kfunc meets the criteria: nothing to declare)\n"
        out.append("\n".join(head) + "\n\n" + body + f"-- \npolicybot {__version__}\n")
    return "\n".join(out)


def _domain(sender: str) -> str:
    return sender.rsplit("@", 1)[-1].rstrip(">").strip() or "policybot"
