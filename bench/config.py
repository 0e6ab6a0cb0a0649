#!/usr/bin/env python3
"""Reading a large configuration and policy, against tomllib reading the same files.

    python bench/config.py [--entries 16000] [--runs 3]

policybot.toml with N [[trees]] (sharing one policy file) and a policy with N
[[allow]] entries: load_config / load_policy against tomllib.loads of the same
text, in this process (both are pure Python; no process start to compare).
Reading must stay linear in the entries: locating each entry's line for error
messages once scanned the whole file per entry.
"""

import argparse
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def files(tmp: Path, n: int) -> tuple[Path, Path]:
    (tmp / "policy.toml").write_text('[windows]\nstable = "5y"\n')
    config = tmp / "policybot.toml"
    config.write_text('[mail]\nfrom = "bot <bot@example.org>"\n' + "".join(
        f'\n[[trees]]\nname = "t{i}"\nrepo = "/srv/t{i}.git"\nbranch = "master"\npolicy = "policy.toml"\n'
        for i in range(n)))
    policy = tmp / "allow.toml"
    policy.write_text("".join(f'\n[[allow]]\nkfunc = "bpf_k{i}"\nrule = "KFUNC_REMOVED"\nreason = "r"\n'
                              f'expires = 2030-01-01\n' for i in range(n)))
    return config, policy


def measure(n: int = 16000, runs: int = 3) -> dict:
    """{"config": (policybot s, tomllib s), "policy": (...)}, medians."""
    from policybot.app.config import load_config
    from policybot.policy.config import load_policy
    out = {}
    with tempfile.TemporaryDirectory() as t:
        config, policy = files(Path(t), n)
        for name, load, path in (("config", load_config, config), ("policy", load_policy, policy)):
            ours, ref = [], []
            for _ in range(runs):
                start = time.perf_counter()
                tomllib.loads(path.read_text(encoding="utf-8"))
                ref.append(time.perf_counter() - start)
                start = time.perf_counter()
                load(path)
                ours.append(time.perf_counter() - start)
            out[name] = (statistics.median(ours), statistics.median(ref))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=16000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    for name, (ours, ref) in measure(args.entries, args.runs).items():
        print(f"{name}: policybot {ours:.2f} s, tomllib {ref:.2f} s, {ours / ref:.2f}x (target <= 2x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
