#!/usr/bin/env python3
"""`policybot history` over every release tag of the repository, against one cold inventory.

    python bench/history.py [REPO] [--rev v6.12] [--runs 3]

Target (issue 15): cold history (an empty state dir) <= 2.5x one cold
inventory of REV; warm (the state the cold run left) is shown too. Each a
separate process (.pyc warm: see benchlib).
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import POLICYBOT, child_env, kernel_repo, median, run, warm_bytecode  # noqa: E402


def measure(repo: str, rev: str = "v6.12", runs: int = 3) -> dict:
    """{"inventory", "cold", "warm": [Sample], "tags": [release tag]}."""
    import pygit2
    from policybot.policy.history import RELEASE_TAG
    r = pygit2.Repository(repo)
    tags = sorted((n.removeprefix("refs/tags/") for n in r.references if n.startswith("refs/tags/")
                   and RELEASE_TAG.match(n.removeprefix("refs/tags/"))))
    out = {"inventory": [], "cold": [], "warm": [], "tags": tags}
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as s:
            out["inventory"].append(run(POLICYBOT + ["inventory", "--repo", repo, "--rev", rev],
                                        child_env(POLICYBOT_STATE_DIR=s)))
        with tempfile.TemporaryDirectory() as s:
            env = child_env(POLICYBOT_STATE_DIR=s)
            out["cold"].append(run(POLICYBOT + ["history", "--repo", repo], env))
            out["warm"].append(run(POLICYBOT + ["history", "--repo", repo], env))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("repo", nargs="?")
    ap.add_argument("--rev", default="v6.12")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    repo = args.repo or kernel_repo()
    warm_bytecode()
    m = measure(repo, args.rev, args.runs)
    inv, cold, warm = (median(m[k]) for k in ("inventory", "cold", "warm"))
    print(f"repository          {repo}: {', '.join(m['tags'])}   (medians of {args.runs})")
    print(f"inventory cold      {inv:6.2f} s   ({args.rev})")
    print(f"history cold        {cold:6.2f} s   ratio to the inventory {cold / inv:5.2f}  (target <= 2.5)")
    print(f"history warm        {warm:6.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
