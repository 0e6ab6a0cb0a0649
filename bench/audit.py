#!/usr/bin/env python3
"""policybot audit across two real releases, against two cold inventories of the same revisions.

    python bench/audit.py [REPO] [--base v6.1] [--rev v6.12] [--runs 3]

Each measurement is a separate `python -m policybot` process. "cold" starts
from an empty state dir; "warm" repeats the audit on the state the cold run
left. The audit should cost little more than the two inventories it diffs
(the rest is the diff, declarations and promise dates).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd, env) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {r.returncode}")
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("repo", nargs="?")
    ap.add_argument("--base", default="v6.1")
    ap.add_argument("--rev", default="v6.12")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    repo = args.repo or subprocess.run([str(ROOT / "scripts" / "kernel-trees")], check=True,
                                       capture_output=True, text=True).stdout.strip()
    pb = [sys.executable, "-m", "policybot"]
    inv_times, cold, warm = [], [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            env_a = dict(os.environ, POLICYBOT_STATE_DIR=a)
            inv_times.append(timed(pb + ["inventory", "--repo", repo, "--rev", args.base], env_a)
                             + timed(pb + ["inventory", "--repo", repo, "--rev", args.rev],
                                     dict(os.environ, POLICYBOT_STATE_DIR=b)))
        with tempfile.TemporaryDirectory() as s:
            env = dict(os.environ, POLICYBOT_STATE_DIR=s)
            audit = pb + ["audit", "--repo", repo, "--base", args.base, "--rev", args.rev]
            cold.append(timed(audit, env))
            warm.append(timed(audit, env))
    two, c, w = min(inv_times), min(cold), min(warm)
    print(f"repository               {repo}  {args.base}..{args.rev}")
    print(f"two cold inventories     {two:6.2f} s")
    print(f"audit, cold              {c:6.2f} s   ratio to the two inventories {c / two:5.2f}")
    print(f"audit, warm              {w:6.2f} s   ratio to cold audit          {w / c:5.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
