#!/usr/bin/env python3
"""Inventory speed on a real kernel repository, as ratios against git grep.

    python bench/inventory.py [REPO] [--rev v6.12] [--neighbour v6.12~1]

REPO defaults to the scratch repository of scripts/kernel-trees. Each
measurement runs `policybot inventory` as a separate process (what a user
runs), with a fresh state dir for cold runs. Targets (issue 2): cold within
1.5x of `git grep -l -e BTF_ID_FLAGS -e __bpf_kfunc REV -- '*.c'`; warm (after
scanning a neighbour revision with <5% of blobs changed) at most 0.2x of
cold; peak RSS under 400 MB.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(cmd, env=None) -> tuple[float, int]:
    """Wall time and peak RSS (KB) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before)


def best(n, fn):
    results = [fn() for _ in range(n)]
    return min(r[0] for r in results), max(r[1] for r in results)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("repo", nargs="?")
    ap.add_argument("--rev", default="v6.12")
    ap.add_argument("--neighbour", help="revision scanned before the warm run (default: a synthetic "
                    "commit on top of REV changing 1%% of the kfunc files)")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    repo = args.repo or subprocess.run([str(ROOT / "scripts" / "kernel-trees")], check=True,
                                       capture_output=True, text=True).stdout.strip()
    policybot = [sys.executable, "-m", "policybot"]
    grep = ["git", "--git-dir", repo, "grep", "-l", "-e", "BTF_ID_FLAGS", "-e", "__bpf_kfunc",
            args.rev, "--", "*.c"]
    run(grep)  # warm the page cache for both
    t_grep, _ = best(args.runs, lambda: run(grep))

    def cold():
        with tempfile.TemporaryDirectory() as state:
            env = dict(os.environ, POLICYBOT_STATE_DIR=state)
            return run(policybot + ["inventory", "--repo", repo, "--rev", args.rev], env)

    t_cold, rss_cold = best(args.runs, cold)

    neighbour = args.neighbour
    if neighbour is None:
        neighbour = make_neighbour(repo, args.rev)

    def warm():
        with tempfile.TemporaryDirectory() as state:
            env = dict(os.environ, POLICYBOT_STATE_DIR=state)
            run(policybot + ["inventory", "--repo", repo, "--rev", neighbour], env)
            return run(policybot + ["inventory", "--repo", repo, "--rev", args.rev], env)

    t_warm, rss_warm = best(args.runs, warm)
    print(f"repository          {repo} at {args.rev}")
    print(f"git grep            {t_grep:6.2f} s")
    print(f"inventory cold      {t_cold:6.2f} s   ratio to git grep {t_cold / t_grep:5.2f}  (target <= 1.5)")
    print(f"inventory warm      {t_warm:6.2f} s   ratio to cold     {t_warm / t_cold:5.2f}  (target <= 0.2)"
          f"   after {neighbour}")
    print(f"peak RSS            {max(rss_cold, rss_warm) / 1024:6.0f} MB  (target < 400)")
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
