#!/usr/bin/env python3
"""BTF reading and `policybot check`, against issue 15's targets.

    python bench/check.py [OBJ.bpf.o] [REPO] [--rev v7.2] [--release 7.2] [--runs 3]

Targets: reading a vmlinux's BTF < 1 s cold (or cached by content hash);
check of one object against a cached inventory or BTF < 0.3 s warm. Each
measurement is a separate `python -m policybot` process (.pyc warm: see
benchlib; "cold": an empty state dir; "warm": the state the cold run left).
The kernels come from scripts/kernel-binaries (Debian's vmlinuz), the tree
from scripts/kernel-trees; without OBJ, tests/bpf/kfunc_user.bpf.c is
compiled with Debian's clang.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import POLICYBOT, ROOT, child_env, kernel_repo, run, warm_bytecode  # noqa: E402

ROWS = ("btf cold", "btf warm", "check btf warm", "check source cold", "check source warm")


def vmlinuz_of(release: str) -> str:
    lines = subprocess.run([str(ROOT / "scripts" / "kernel-binaries")], check=True, capture_output=True,
                           text=True).stdout.splitlines()
    return next(p for r, k, p in (line.split(" ", 2) for line in lines) if r == release and k == "vmlinuz")


def bench_object(out_dir: str) -> str:
    """tests/bpf/kfunc_user.bpf.c compiled as the tests compile it (tests/kit/bpf.py)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from kit.bpf import SOURCES, compile_bpf
    return str(compile_bpf(SOURCES / "kfunc_user.bpf.c", Path(out_dir) / "kfunc_user.bpf.o"))


def measure(obj: str, repo: str, rev: str = "v7.2", release: str = "7.2", runs: int = 3) -> dict:
    """{row: [Sample]} for ROWS, and "vmlinuz"."""
    vmlinuz = vmlinuz_of(release)
    res = {k: [] for k in ROWS}
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as s:
            env = child_env(POLICYBOT_STATE_DIR=s)
            inv = POLICYBOT + ["inventory", "--btf", vmlinuz]
            res["btf cold"].append(run(inv, env))
            res["btf warm"].append(run(inv, env))
            res["check btf warm"].append(run(POLICYBOT + ["check", obj, "--btf", vmlinuz], env, ok=(0, 1)))
            src = POLICYBOT + ["check", obj, "--repo", repo, "--rev", rev]
            res["check source cold"].append(run(src, env, ok=(0, 1)))
            res["check source warm"].append(run(src, env, ok=(0, 1)))
    res["vmlinuz"] = vmlinuz
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("object", nargs="?")
    ap.add_argument("repo", nargs="?")
    ap.add_argument("--rev", default="v7.2")
    ap.add_argument("--release", default="7.2", help="which kernel of scripts/kernel-binaries")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    repo = args.repo or kernel_repo()
    warm_bytecode()
    with tempfile.TemporaryDirectory() as tmp:
        obj = args.object or bench_object(tmp)
        res = measure(obj, repo, args.rev, args.release, args.runs)
    print(f"kernel                    {res['vmlinuz']}")
    print(f"object                    {obj}   tree {repo} {args.rev}   (medians of {args.runs})")
    for name in ROWS:
        print(f"{name:<24}  {statistics.median(s.wall for s in res[name]):6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
