#!/usr/bin/env python3
"""BTF reading and `policybot check`, against issue 15's targets.

    python bench/check.py OBJ.bpf.o [REPO] [--rev v7.2] [--release 7.2] [--runs 3]

Targets: reading a vmlinux's BTF < 1 s cold (or cached by content hash);
check of one object against a cached inventory or BTF < 0.3 s warm. Each
measurement is a separate `python -m policybot` process ("cold": an empty
state dir; "warm": the state the cold run left). The kernels come from
scripts/kernel-binaries (Debian's vmlinuz), the tree from scripts/kernel-trees.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from audit import timed  # bench/ is on sys.path when a script of it runs

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("object")
    ap.add_argument("repo", nargs="?")
    ap.add_argument("--rev", default="v7.2")
    ap.add_argument("--release", default="7.2", help="which kernel of scripts/kernel-binaries")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    repo = args.repo or subprocess.run([str(ROOT / "scripts" / "kernel-trees")], check=True,
                                       capture_output=True, text=True).stdout.strip()
    lines = subprocess.run([str(ROOT / "scripts" / "kernel-binaries")], check=True, capture_output=True,
                           text=True).stdout.splitlines()
    vmlinuz = next(p for r, k, p in (line.split(" ", 2) for line in lines) if r == args.release and k == "vmlinuz")
    pb = [sys.executable, "-m", "policybot"]
    res = {k: [] for k in ("btf cold", "btf warm", "check btf warm", "check source cold", "check source warm")}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as s:
            env = dict(os.environ, POLICYBOT_STATE_DIR=s)
            inv = pb + ["inventory", "--btf", vmlinuz]
            res["btf cold"].append(timed(inv, env))
            res["btf warm"].append(timed(inv, env))
            res["check btf warm"].append(timed(pb + ["check", args.object, "--btf", vmlinuz], env))
            src = pb + ["check", args.object, "--repo", repo, "--rev", args.rev]
            res["check source cold"].append(timed(src, env))
            res["check source warm"].append(timed(src, env))
    print(f"kernel                    {vmlinuz}")
    print(f"object                    {args.object}   tree {repo} {args.rev}")
    for name, times in res.items():
        print(f"{name:<24}  {min(times):6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
