#!/usr/bin/env python3
"""The usage census of four real packages, against bpftool reading the same objects.

    python bench/census.py [--runs 3]

sid's bpfilter, libbpf-tools, bpftune and libbpftune0 (scripts/debian-apt downloads them):
`policybot census` of the four .deb files, cold (an empty state dir) and warm (the state
the cold run left, the files in the page cache), against `bpftool btf dump file` of each of
the BPF objects they embed, run one after another (the objects cut out beforehand). The
census also unpacks the packages (their data.tar.xz is most of its time); bpftool is given
the objects ready.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import POLICYBOT, ROOT, Sample, child_env, run, warm_bytecode  # noqa: E402

PACKAGES = ("bpfilter", "libbpf-tools", "bpftune", "libbpftune0")


def download(where: Path) -> list[Path]:
    import os
    cache = os.environ.get("POLICYBOT_KERNEL_CACHE") or str(Path.home() / ".cache" / "policybot-kernels")
    subprocess.run([str(ROOT / "scripts" / "debian-apt"), cache, "sid", "--", "download", *PACKAGES], cwd=where,
                   check=True, capture_output=True)
    return sorted(where.glob("*.deb"))


def cut_objects(debs: list[Path], where: Path) -> list[Path]:
    """The embedded objects, cut out once for the reference (policybot's reader: setup, not timed)."""
    sys.path.insert(0, str(ROOT))
    from policybot.usage.deb import package_files, read_package
    from policybot.usage.embedded import embedded_objects
    out = []
    for deb in debs:
        for name, data in package_files(read_package(str(deb)), str(deb)):
            for obj in embedded_objects(data, [], name):
                path = where / f"obj{len(out)}.o"
                path.write_bytes(obj.data)
                out.append(path)
    return out


def bpftool_all(objects: list[Path]) -> Sample:
    """One Sample: bpftool btf dump of every object in turn."""
    samples = [run(["bpftool", "btf", "dump", "file", str(o)], env=child_env()) for o in objects]
    return Sample(sum(s.wall for s in samples), sum(s.cpu for s in samples), max(s.rss_mb for s in samples))


def measure(runs: int = 3) -> dict:
    """{"cold": [Sample], "warm": [Sample], "bpftool": [Sample], "objects": n}."""
    res = {"cold": [], "warm": [], "bpftool": []}
    with tempfile.TemporaryDirectory() as t:
        debs = download(Path(t))
        objects = cut_objects(debs, Path(t))
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as s:
                env = child_env(POLICYBOT_STATE_DIR=s)
                cmd = POLICYBOT + ["census", *map(str, debs)]
                res["cold"].append(run(cmd, env))
                res["warm"].append(run(cmd, env))
            res["bpftool"].append(bpftool_all(objects))
        res["objects"] = len(objects)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    warm_bytecode()
    m = measure(args.runs)
    ref = statistics.median(s.wall for s in m["bpftool"])
    for row in ("cold", "warm"):
        v = statistics.median(s.wall for s in m[row])
        print(f"census of {len(PACKAGES)} packages, {row}: {v:.2f} s; bpftool btf dump of their "
              f"{m['objects']} objects: {ref:.2f} s; ratio {v / ref:.2f} (target <= 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
