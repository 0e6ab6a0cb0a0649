#!/usr/bin/env python3
"""policybot audit across two real releases, against two cold inventories of the same revisions.

    python bench/audit.py [REPO] [--base v6.1] [--rev v6.12] [--runs 3]

Each measurement is a separate `python -m policybot` process (.pyc warm:
see benchlib). "cold" starts from an empty state dir; "warm" repeats the
audit on the state the cold run left. The audit should cost little more
than the two inventories it diffs (the rest is the diff, declarations and
promise dates).
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import POLICYBOT, child_env, kernel_repo, median, run, warm_bytecode  # noqa: E402


def measure(repo: str, base: str = "v6.1", rev: str = "v6.12", runs: int = 3) -> dict:
    """{"inventories": [seconds of two cold inventories], "cold", "warm": [Sample]}."""
    out = {"inventories": [], "cold": [], "warm": []}
    for _ in range(runs):
        two = 0.0
        for r in (base, rev):
            with tempfile.TemporaryDirectory() as s:
                two += run(POLICYBOT + ["inventory", "--repo", repo, "--rev", r],
                           child_env(POLICYBOT_STATE_DIR=s)).wall
        out["inventories"].append(two)
        with tempfile.TemporaryDirectory() as s:
            env = child_env(POLICYBOT_STATE_DIR=s)
            audit = POLICYBOT + ["audit", "--repo", repo, "--base", base, "--rev", rev]
            out["cold"].append(run(audit, env, ok=(0, 1)))
            out["warm"].append(run(audit, env, ok=(0, 1)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("repo", nargs="?")
    ap.add_argument("--base", default="v6.1")
    ap.add_argument("--rev", default="v6.12")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    repo = args.repo or kernel_repo()
    warm_bytecode()
    m = measure(repo, args.base, args.rev, args.runs)
    import statistics
    two, c, w = statistics.median(m["inventories"]), median(m["cold"]), median(m["warm"])
    print(f"repository               {repo}  {args.base}..{args.rev}   (medians of {args.runs})")
    print(f"two cold inventories     {two:6.2f} s")
    print(f"audit, cold              {c:6.2f} s   ratio to the two inventories {c / two:5.2f}")
    print(f"audit, warm              {w:6.2f} s   ratio to cold audit          {w / c:5.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
