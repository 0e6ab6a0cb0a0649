#!/usr/bin/env python3
"""`policybot history` over every release tag of the repository, against one cold inventory.

    python bench/history.py [REPO] [--rev v6.12] [--runs 3]

REPO defaults to `scripts/kernel-trees CACHE history`: the test repository's
v6.1, v6.12 and v7.2 and, after them, v7.3 (Debian's trixie-backports): four
releases, as issue 15 asks, of which only the last two are consecutive.

Target (issue 15): cold history (an empty state dir) <= 2.5x one cold
inventory of REV in the same repository; warm (the state the cold run left)
is shown too. Each a separate process (.pyc warm: see benchlib).

The second reference is git grep of every release's tree, one after another
(as the inventory's reference is one such grep). Releases far apart share
few .c blobs (v6.1, v6.12, v7.2 a quarter), so a history of them must read
nearly every tree; it reads each distinct blob once, in path order, so that
git rebuilds each file's versions from one another.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import POLICYBOT, Sample, child_env, grep_cmd, kernel_repo, median, run, warm_bytecode  # noqa: E402


def measure(repo: str, rev: str = "v6.12", runs: int = 3) -> dict:
    """{"inventory", "cold", "warm", "greps": [Sample], "tags": [release tag]}; a "greps" sample is
    the wall time of one git grep per release, in turn."""
    import pygit2
    from policybot.policy.calendar import RELEASE_TAG
    r = pygit2.Repository(repo)
    tags = sorted((n.removeprefix("refs/tags/") for n in r.references if n.startswith("refs/tags/")
                   and RELEASE_TAG.match(n.removeprefix("refs/tags/"))))
    out = {"inventory": [], "cold": [], "warm": [], "greps": [], "tags": tags}
    for _ in range(runs):
        each = [run(grep_cmd(repo, t)) for t in tags]
        out["greps"].append(Sample(sum(x.wall for x in each), sum(x.cpu for x in each), max(x.rss_mb for x in each)))
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
    repo = args.repo or kernel_repo("history")
    warm_bytecode()
    m = measure(repo, args.rev, args.runs)
    inv, cold, warm, greps = (median(m[k]) for k in ("inventory", "cold", "warm", "greps"))
    print(f"repository          {repo}: {', '.join(m['tags'])}   (medians of {args.runs})")
    print(f"inventory cold      {inv:6.2f} s   ({args.rev})")
    print(f"git grep, each tag  {greps:6.2f} s   ratio to the inventory {greps / inv:5.2f}")
    print(f"history cold        {cold:6.2f} s   ratio to the inventory {cold / inv:5.2f}  (target <= 2.5), "
          f"to the greps {cold / greps:5.2f}")
    print(f"history warm        {warm:6.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
