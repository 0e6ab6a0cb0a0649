#!/usr/bin/env python3
"""Review speed on a real kernel repository: a 20-patch series on v6.12.

    python bench/review.py [REPO] [--base v6.12] [--runs 3] [--no-overlay] [--keep DIR]

REPO defaults to the scratch repository of scripts/kernel-trees (which honours
$POLICYBOT_KERNEL_CACHE). The series is generated, not downloaded: 20 patches,
each diffed against the tree left by the ones before it (so they apply in
order), each changing one kfunc in a file that registers kfuncs
(kernel/bpf/helpers.c, kernel/bpf/cpumask.c, net/core/filter.c, ...): a flag
added to or dropped from its BTF_ID_FLAGS() line, or a parameter added to its
__bpf_kfunc definition. They go into one mbox with a cover letter carrying
`base-commit:`, as `git format-patch --thread --cover-letter --base` writes it.

v6.12 declares nothing, so every change would be `info` and no mail would be
written; unless --no-overlay, a policy overlay declares the touched kfuncs
stable since v6.1, so the run also judges violations and drafts one reply per
patch (recipients from the real MAINTAINERS).

Each measurement runs `policybot review` as a separate process, as a user
does (.pyc warm: see benchlib). Cold: a fresh state directory. Warm: the same
state directory, a second run (parse cache filled, replies already drafted).
Targets (issue 15): warm <= 0.6 s; cold <= 1.5x one cold inventory.
"""

from __future__ import annotations

import argparse
import difflib
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import POLICYBOT, child_env, kernel_repo, run, warm_bytecode  # noqa: E402

WARM_TARGET = 0.6

# (file, what to change) for the 20 patches; "flags" edits a BTF_ID_FLAGS line,
# "param" adds a parameter to a definition. Each picks the next unused kfunc of its file.
PLAN = [
    ("kernel/bpf/helpers.c", "flags"), ("kernel/bpf/helpers.c", "param"),
    ("kernel/bpf/cpumask.c", "flags"), ("net/core/filter.c", "flags"),
    ("kernel/bpf/helpers.c", "flags"), ("kernel/trace/bpf_trace.c", "flags"),
    ("kernel/bpf/cpumask.c", "param"), ("fs/bpf_fs_kfuncs.c", "flags"),
    ("kernel/bpf/crypto.c", "flags"), ("net/netfilter/nf_conntrack_bpf.c", "flags"),
    ("kernel/sched/ext.c", "flags"), ("kernel/bpf/helpers.c", "param"),
    ("net/core/filter.c", "param"), ("drivers/hid/bpf/hid_bpf_dispatch.c", "flags"),
    ("kernel/bpf/cpumask.c", "flags"), ("net/ipv4/tcp_bbr.c", "flags"),
    ("kernel/sched/ext.c", "param"), ("kernel/bpf/helpers.c", "flags"),
    ("kernel/cgroup/rstat.c", "flags"), ("kernel/bpf/arena.c", "flags"),
]

_ENTRY = re.compile(r"^(BTF_ID_FLAGS\(func,\s*(\w+))(?:,\s*([^)]*))?\)(.*)$")
_DEF = re.compile(r"^(__bpf_kfunc\s+[^(]*?\b(\w+)\()([^)]*)\)(\s*)$")


def git(repo: str, *args: str) -> bytes:
    return subprocess.run(["git", "--git-dir", repo, *args], check=True, capture_output=True).stdout


def blob_id(data: bytes) -> str:
    import hashlib
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def change(path: str, text: str, kind: str, used: set[str]) -> tuple[str, str, str]:
    """(new text, kfunc, what changed) for the first kfunc of ``path`` not in ``used``."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if kind == "flags":
            m = _ENTRY.match(line)
            if not m or m.group(2) in used:
                continue
            name, flags = m.group(2), (m.group(3) or "").strip()
            if "KF_SLEEPABLE" in flags:
                parts = [f.strip() for f in flags.split("|") if f.strip() != "KF_SLEEPABLE"]
                new_flags, what = " | ".join(parts), "drop KF_SLEEPABLE from"
            else:
                new_flags, what = (flags + " | " if flags else "") + "KF_SLEEPABLE", "add KF_SLEEPABLE to"
            lines[i] = f"{m.group(1)}{', ' + new_flags if new_flags else ''}){m.group(4)}"
        else:
            m = _DEF.match(line)
            if not m or m.group(2) in used or m.group(3).strip() in ("", "void"):
                continue
            name, what = m.group(2), "add a flags argument to"
            lines[i] = f"{m.group(1)}{m.group(3)}, u64 bench_flags){m.group(4)}"
        used.add(name)
        return "\n".join(lines), name, what
    raise SystemExit(f"bench: no unused kfunc to change ({kind}) in {path}")


def unified(path: str, old: str, new: str) -> str:
    body = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                        f"a/{path}", f"b/{path}", n=3))
    ob, nb = blob_id(old.encode()), blob_id(new.encode())
    return f"diff --git a/{path} b/{path}\nindex {ob[:12]}..{nb[:12]} 100644\n{body}"


def make_series(repo: str, base: str, out: Path) -> tuple[Path, list[str]]:
    """The 20-patch mbox, generated against ``base``'s blobs."""
    base_commit = git(repo, "rev-parse", f"{base}^{{commit}}").decode().strip()
    files: dict[str, str] = {}
    used: set[str] = set()
    author = "Bench Developer <bench.developer@example.org>"
    n = len(PLAN)
    mails = []
    for i, (path, kind) in enumerate(PLAN, 1):
        if path not in files:
            files[path] = git(repo, "show", f"{base_commit}:{path}").decode("utf-8", "surrogateescape")
        old = files[path]
        new, kfunc, what = change(path, old, kind, used)
        files[path] = new
        subject = f"[PATCH bpf-next {i:02d}/{n}] bpf: {what} {kfunc}"
        body = (f"Change {kfunc} in {path} (generated for bench/review.py).\n\n"
                f"Signed-off-by: {author}\n---\n\n{unified(path, old, new)}-- \n2.39.5\n")
        mails.append(header(i, subject, author) + body)
    cover = (header(0, f"[PATCH bpf-next 00/{n}] bpf: kfunc changes for the review bench", author)
             + f"Twenty kfunc changes.\n\n---\nbase-commit: {base_commit}\n-- \n2.39.5\n")
    mbox = out / "series.mbox"
    mbox.write_text("\n".join([cover] + mails), encoding="utf-8", errors="surrogateescape")
    return mbox, sorted(used)


def header(i: int, subject: str, author: str) -> str:
    minute = i // 60
    h = (f"From bench-{i} Mon Sep 17 00:00:00 2001\nFrom: {author}\n"
         f"Date: Mon, 2 Dec 2024 10:{minute:02d}:{i % 60:02d} +0000\nSubject: {subject}\n"
         f"Message-Id: <20241202100000.bench-{i}@example.org>\n")
    if i:
        h += ("In-Reply-To: <20241202100000.bench-0@example.org>\n"
              "References: <20241202100000.bench-0@example.org>\n")
    return (h + "To: bpf@vger.kernel.org\nCc: Alexei Starovoitov <ast@kernel.org>\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\n")


def write_policy(out: Path, kfuncs: list[str]) -> Path:
    overlay = out / "overlay.yaml"
    overlay.write_text("kfuncs:\n" + "".join(f"  {k}:\n    stability: stable\n    since: v6.1\n" for k in kfuncs))
    policy = out / "policy.toml"
    policy.write_text('[declarations]\noverlay = "overlay.yaml"\n')
    return policy


def measure(repo: str, base: str = "v6.12", runs: int = 3, overlay: bool = True, keep: str | None = None) -> dict:
    """{"cold", "warm": [Sample], "cold_out", "warm_out": last stdout, "touched": [kfunc]}."""
    with tempfile.TemporaryDirectory(prefix="policybot-bench-") as tmp:
        work = Path(keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        mbox, touched = make_series(repo, base, work)
        cmd = POLICYBOT + ["review", "--repo", repo, "--mbox", str(mbox),
                           "--today", "2025-03-01", "--from", "policybot <policybot@example.org>"]
        if overlay:
            cmd += ["--policy", str(write_policy(work, touched))]
        out = {"cold": [], "warm": [], "touched": touched}
        for r in range(runs):
            c = cmd + ["--state-dir", str(work / f"state-{r}")]
            sample, out["cold_out"] = run(c, child_env(), ok=(0, 1), capture=True)
            out["cold"].append(sample)
            sample, out["warm_out"] = run(c, child_env(), ok=(0, 1), capture=True)
            out["warm"].append(sample)
        return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("repo", nargs="?", help="kernel repository (default: scripts/kernel-trees)")
    ap.add_argument("--base", default="v6.12")
    ap.add_argument("--runs", type=int, default=3, help="cold/warm pairs; the median of each is shown")
    ap.add_argument("--no-overlay", action="store_true", help="judge with v6.12's own (empty) declarations")
    ap.add_argument("--keep", metavar="DIR", help="write the series, policy and state here and keep them")
    args = ap.parse_args()
    repo = args.repo or kernel_repo()
    warm_bytecode()
    m = measure(repo, args.base, args.runs, not args.no_overlay, args.keep)
    cold_out, warm_out, touched = m["cold_out"], m["warm_out"], m["touched"]
    colds, warms = [s.wall for s in m["cold"]], [s.wall for s in m["warm"]]
    summary = cold_out.strip().splitlines()[-1]
    applied = sum(1 for ln in cold_out.splitlines() if ln.startswith("[PATCH") and ln.endswith(": applied"))
    t_cold, t_warm = statistics.median(colds), statistics.median(warms)
    print(f"repository          {repo} at {args.base}")
    print(f"series              {len(PLAN)} patches, {applied} applied, "
          f"{len(touched)} kfuncs changed{'' if args.no_overlay else ' (declared stable by an overlay)'}")
    print(f"cold run            {summary}")
    print(f"warm run            {warm_out.strip().splitlines()[-1]}")
    print(f"review cold         {t_cold:6.2f} s   (fresh state dir; median of {args.runs}: "
          f"{', '.join(f'{t:.2f}' for t in colds)})")
    print(f"review warm         {t_warm:6.2f} s   (same state dir, second run; "
          f"{', '.join(f'{t:.2f}' for t in warms)})")
    print(f"warm / cold         {t_warm / t_cold:6.2f}")
    print(f"warm / target       {t_warm / WARM_TARGET:6.2f}   (target: warm <= {WARM_TARGET} s, "
          f"{'met' if t_warm <= WARM_TARGET else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
