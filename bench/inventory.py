#!/usr/bin/env python3
"""Inventory speed on a real kernel repository, as ratios against git grep.

    python bench/inventory.py [REPO] [--rev v6.12] [--neighbour REV] [--runs 3]

REPO defaults to the scratch repository of scripts/kernel-trees. Each
measurement runs `policybot inventory` as a separate process (what a user
runs, .pyc files warm: see benchlib), with a fresh state dir for cold runs,
interleaved with the reference `git grep -l -e BTF_ID_FLAGS -e __bpf_kfunc
REV -- '*.c'` so both see the same machine. Targets (issue 15): cold within
1.3x of git grep; warm (after scanning a neighbour revision with <5% of
blobs changed) at most 0.2x of cold; peak RSS under 400 MB.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import POLICYBOT, child_env, grep_cmd, kernel_repo, median, run, warm_bytecode  # noqa: E402


def measure(repo: str, rev: str = "v6.12", runs: int = 3, neighbour: str | None = None) -> dict:
    """{"grep", "cold", "warm": [Sample]} and the neighbour revision, one run of each in turn."""
    neighbour = neighbour or make_neighbour(repo, rev)
    inv = POLICYBOT + ["inventory", "--repo", repo]
    run(grep_cmd(repo, rev))  # the page cache warm for both
    out = {"grep": [], "cold": [], "warm": [], "neighbour": neighbour}
    for _ in range(runs):
        out["grep"].append(run(grep_cmd(repo, rev)))
        with tempfile.TemporaryDirectory() as state:
            out["cold"].append(run(inv + ["--rev", rev], child_env(POLICYBOT_STATE_DIR=state)))
        with tempfile.TemporaryDirectory() as state:
            env = child_env(POLICYBOT_STATE_DIR=state)
            run(inv + ["--rev", neighbour], env)
            out["warm"].append(run(inv + ["--rev", rev], env))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("repo", nargs="?")
    ap.add_argument("--rev", default="v6.12")
    ap.add_argument("--neighbour", help="revision scanned before the warm run (default: a synthetic "
                    "commit on top of REV changing 1%% of the kfunc files)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    repo = args.repo or kernel_repo()
    warm_bytecode()
    m = measure(repo, args.rev, args.runs, args.neighbour)
    g, c, w = median(m["grep"]), median(m["cold"]), median(m["warm"])
    print(f"repository          {repo} at {args.rev}   (medians of {args.runs})")
    print(f"git grep            {g:6.2f} s   cpu {median(m['grep'], 'cpu'):5.2f} s")
    print(f"inventory cold      {c:6.2f} s   cpu {median(m['cold'], 'cpu'):5.2f} s   ratio to git grep "
          f"{c / g:5.2f} (cpu {median(m['cold'], 'cpu') / median(m['grep'], 'cpu'):4.2f})  (target <= 1.3)")
    print(f"inventory warm      {w:6.2f} s   ratio to cold     {w / c:5.2f}  (target <= 0.2)"
          f"   after {m['neighbour']}")
    print(f"peak RSS            {max(s.rss_mb for s in m['cold'] + m['warm']):6.0f} MB  (target < 400)")
    return 0


def make_neighbour(repo: str, rev: str) -> str:
    """A commit on top of REV touching a few files: what a week of a tree looks like to the cache."""
    import pygit2
    r = pygit2.Repository(repo)
    base = r.revparse_single(rev).peel(pygit2.Commit)
    ref = "refs/policybot-bench/neighbour"
    if ref in r.references:
        return ref
    index = pygit2.Index()
    index.read_tree(base.tree)
    changed = 0
    for entry in list(index):
        if entry.path.endswith(".c") and changed < 300 and hash(entry.path) % 97 == 0:
            data = r[entry.id].data + b"\n/* bench: changed */\n"
            index.add(pygit2.IndexEntry(entry.path, r.create_blob(data), entry.mode))
            changed += 1
    tree = index.write_tree(r)
    sig = pygit2.Signature("bench", "bench@policybot.invalid")
    oid = r.create_commit(ref, sig, sig, f"bench: {changed} files changed", tree, [base.id])
    return str(oid)


if __name__ == "__main__":
    raise SystemExit(main())
