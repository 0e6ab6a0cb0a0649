#!/usr/bin/env python3
"""A day of list traffic, reviewed warm against two trees; and a weekly run over eight trees.

    python bench/day.py [REPO] [--patches 1000] [--kfunc-share 0.05] [--runs 1] [--keep DIR]

REPO defaults to the scratch repository of scripts/kernel-trees. Nothing is written to it: the
trees are branches of a scratch repository that borrows its objects (objects/info/alternates).

The day (issue 26): ``--patches`` single-patch series, as patchwork.kernel.org sees about 1,150
patches a day across all its lists; ``--kfunc-share`` of them (5%) change a kfunc's
BTF_ID_FLAGS() line in a file that registers kfuncs, the rest add a comment to a .c file that
holds no kfunc code. Each is one mail (Message-ID, From, Subject), generated against v7.2's blobs
as bench/review.py generates its series. Two trees: ``stable`` (v7.2) and ``next`` (v7.2 and one
commit). Warm: both trees' inventories are in the cache (``policybot inventory`` of each, before
the clock starts); then one process reviews every mail against both trees, as the inbox job
does (app/review.py's ``review``, the replies drafted into the outbox). Reference: ``git apply
--cached --check`` of every patch on each tree, one process per patch and tree (an index read
from the tree, no checkout). Target: at most 60 s.

The week: eight trees (branches ``w0`` .. ``w7``: v7.2 and 0..7 commits changing kfunc files),
each audited against v7.2 in one process, as the weekly run audits its trees, warm (the trees
were audited once before: last week's state), as a ratio to one cold inventory of v7.2.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import review as review_bench  # noqa: E402
from benchlib import POLICYBOT, child_env, grep_cmd, kernel_repo, run, warm_bytecode  # noqa: E402

BASE = "v7.2"
DAY_TARGET_S = 60.0
TREES = ("stable", "next")
WEEK_TREES = 8
FROM = "policybot <policybot@example.org>"
TODAY = "2026-12-01"


def git(repo: str, *args: str, env: dict | None = None, data: bytes | None = None) -> bytes:
    return subprocess.run(["git", "--git-dir", repo, *args], check=True, capture_output=True, env=env,
                          input=data).stdout


def scratch_repo(repo: str, work: Path) -> str:
    """A bare repository borrowing ``repo``'s objects, with v7.2 as ``stable``, a ``next`` one commit
    ahead, and the week's branches w0..w7."""
    path = work / "trees.git"
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    (path / "objects" / "info" / "alternates").write_text(os.path.join(os.path.abspath(repo), "objects") + "\n")
    base = git(repo, "rev-parse", f"{BASE}^{{commit}}").decode().strip()
    tagged = git(repo, "rev-parse", BASE).decode().strip()
    git(str(path), "update-ref", f"refs/tags/{BASE}", tagged)
    git(str(path), "update-ref", "refs/heads/stable", base)
    git(str(path), "update-ref", "refs/heads/next", commit_on(str(path), base, {"MAINTAINERS": None}, "next: a step"))
    kfile_list = kfunc_files(repo)
    head = base
    git(str(path), "update-ref", "refs/heads/w0", base)
    used: set[str] = set()
    for i in range(1, WEEK_TREES):
        f = kfile_list[(i * 7) % len(kfile_list)]
        text = git(str(path), "show", f"{head}:{f}").decode("utf-8", "surrogateescape")
        new, _, _ = review_bench.change(f, text, "flags", used)
        head = commit_on(str(path), head, {f: new}, f"week {i}")
        git(str(path), "update-ref", f"refs/heads/w{i}", head)
    return str(path)


def commit_on(repo: str, parent: str, files: dict[str, str | None], msg: str) -> str:
    """A commit on ``parent`` changing ``files`` (None: append a line to it), made with an index
    file only (no checkout)."""
    env = dict(os.environ, GIT_INDEX_FILE=str(Path(repo) / "bench.index"), GIT_AUTHOR_NAME="bench",
               GIT_AUTHOR_EMAIL="bench@example.org", GIT_COMMITTER_NAME="bench",
               GIT_COMMITTER_EMAIL="bench@example.org", GIT_AUTHOR_DATE="2026-11-30T10:00:00+00:00",
               GIT_COMMITTER_DATE="2026-11-30T10:00:00+00:00")
    git(repo, "read-tree", parent, env=env)
    for path, text in files.items():
        if text is None:
            text = git(repo, "show", f"{parent}:{path}").decode("utf-8", "surrogateescape") + "\n"
        blob = git(repo, "hash-object", "-w", "--stdin", data=text.encode("utf-8", "surrogateescape")).decode().strip()
        git(repo, "update-index", "--cacheinfo", f"100644,{blob},{path}", env=env)
    tree = git(repo, "write-tree", env=env).decode().strip()
    return git(repo, "commit-tree", tree, "-p", parent, "-m", msg, env=env).decode().strip()


def kfunc_files(repo: str) -> list[str]:
    out = git(repo, "grep", "-l", "-e", "BTF_ID_FLAGS(func,", BASE, "--", "*.c").decode()
    return sorted(line.split(":", 1)[1] for line in out.splitlines()
                  if not line.split(":", 1)[1].startswith("tools/"))


def plain_files(repo: str, n: int) -> list[str]:
    """``n`` .c files holding no kfunc code, spread over the tree."""
    every = set(git(repo, "ls-tree", "-r", "--name-only", BASE).decode().splitlines())
    words = set(line.split(":", 1)[1] for line in
                git(repo, "grep", "-l", "-e", "kfunc", "-e", "KFUNC", BASE, "--", "*.c").decode().splitlines())
    pool = sorted(p for p in every if p.endswith(".c") and p not in words and not p.startswith("tools/"))
    step = max(len(pool) // n, 1)
    return pool[::step][:n]


def make_day(repo: str, out: Path, patches: int, share: float) -> tuple[list[Path], list[str]]:
    """The day's mails (one file each) and the kfuncs the kfunc patches change."""
    n_kfunc = round(patches * share)
    kfiles, plain = kfunc_files(repo), plain_files(repo, patches - n_kfunc)
    used: set[str] = set()
    mails, touched = [], []
    every = max(patches // max(n_kfunc, 1), 1)
    k = p = 0
    for i in range(patches):
        author = f"Developer {i} <dev{i}@example.org>"
        if k < n_kfunc and i % every == 0:
            path, old, new, kfunc, what = _kfunc_change(repo, kfiles, k, used)
            k += 1
            touched.append(kfunc)
            subject = f"[PATCH bpf-next] bpf: {what} {kfunc}"
        else:
            path = plain[p % len(plain)]
            p += 1
            old = git(repo, "show", f"{BASE}:{path}").decode("utf-8", "surrogateescape")
            lines = old.split("\n")
            new = "\n".join(lines[:1] + [f"/* bench note {i} */"] + lines[1:])
            subject = f"[PATCH] {path.split('/')[0]}: note {i}"
        body = (f"A change to {path} (generated for bench/day.py).\n\n"
                f"Signed-off-by: {author}\n---\n\n{review_bench.unified(path, old, new)}-- \n2.39.5\n")
        mail = out / f"mail-{i:04d}.eml"
        mail.write_text(_header(i, subject, author) + body, encoding="utf-8", errors="surrogateescape")
        mails.append(mail)
    return mails, sorted(touched)


def _kfunc_change(repo: str, kfiles: list[str], k: int, used: set[str]) -> tuple[str, str, str, str, str]:
    """(path, old, new, kfunc, what): the next kfunc file from the ``k``-th on with a kfunc not changed yet."""
    for j in range(len(kfiles)):
        path = kfiles[(k + j) % len(kfiles)]
        old = git(repo, "show", f"{BASE}:{path}").decode("utf-8", "surrogateescape")
        try:
            new, kfunc, what = review_bench.change(path, old, "flags", used)
        except SystemExit:  # every kfunc of this file changed already
            continue
        return path, old, new, kfunc, what
    raise SystemExit("bench: no kfunc left to change")


def _header(i: int, subject: str, author: str) -> str:
    return (f"From day-{i} Mon Sep 17 00:00:00 2001\nFrom: {author}\n"
            f"Date: Mon, 30 Nov 2026 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d} +0000\n"
            f"Subject: {subject}\nMessage-Id: <20261130.day-{i}@example.org>\nTo: bpf@vger.kernel.org\n"
            "MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\n")


CHILD = """
import datetime as dt, json, sys, time
from pathlib import Path
from policybot.app.context import Context
from policybot.app.settings import Overrides
from policybot.app.review import ReplySettings, read_series, review
from policybot.mail.drafts import template_env
repo, policy, state, listing = sys.argv[1:5]
SKIP = sys.argv[5] == "skip"
t0 = time.perf_counter()
ctx = Context(Overrides(state_dir=state), repo_path=repo, policy_path=policy, today=dt.date.fromisoformat("%s"),
              from_addr="%s")
cfg = ctx.config
replies = ReplySettings(ctx.outbox, ctx.mail, "bench", ctx.mail.list_addr, cfg.review_min_verdict,
                        template_env(None), cfg.limits)
counts = {"patches": 0, "applied": 0, "skipped": 0, "findings": 0, "drafted": 0}
for path in Path(listing).read_text().split():
    series = read_series(ctx.state_dir, cfg.limits, data=Path(path).read_bytes(), cache=ctx.scanner.cache)
    for branch in %r:
        r = review(ctx.auditor, series, replies, None, branch, skip_unrelated=SKIP)
        counts["patches"] += len(r.result.reviews)
        counts["applied"] += sum(x.applied for x in r.result.reviews)
        counts["skipped"] += sum(x.skipped for x in r.result.reviews)
        counts["findings"] += len(r.result.findings())
        counts["drafted"] += len(r.queued)
ctx.close()
counts["seconds"] = time.perf_counter() - t0
print(json.dumps(counts))
""" % (TODAY, FROM, TREES)


def measure_day(repo: str, trees: str, work: Path, patches: int, share: float, runs: int,
                skip: bool = True) -> dict:
    mails, touched = make_day(repo, work, patches, share)
    listing = work / "mails.txt"
    listing.write_text("\n".join(map(str, mails)) + "\n")
    policy = review_bench.write_policy(work, touched)
    out: dict = {"mails": len(mails), "kfunc": len(touched), "day": [], "apply": [], "counts": None}
    for r in range(runs):
        state = work / f"state-day-{r}"
        for tree in TREES:  # warm: each tree's inventory in the cache before the clock starts
            run(POLICYBOT + ["inventory", "--repo", trees, "--rev", tree, "--state-dir", str(state),
                             "--format", "json"], child_env())
        sample, text = run([sys.executable, "-c", CHILD, trees, str(policy), str(state), str(listing),
                            "skip" if skip else "full"],
                           child_env(), capture=True)
        out["day"].append(sample)
        out["counts"] = json.loads(text.strip().splitlines()[-1])
        out["apply"].append(apply_check(trees, mails, work))
    return out


def apply_check(trees: str, mails: list[Path], work: Path) -> float:
    """Seconds for ``git apply --cached --check`` of every mail on each tree, one process each."""
    total = 0.0
    for tree in TREES:
        index = work / f"{tree}.index"
        env = dict(os.environ, GIT_INDEX_FILE=str(index))
        git(trees, "read-tree", tree, env=env)
        t = time.perf_counter()
        for m in mails:
            subprocess.run(["git", "--git-dir", trees, "apply", "--cached", "--check", str(m)], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        total += time.perf_counter() - t
    return total


def measure_week(repo: str, trees: str, work: Path, runs: int) -> dict:
    """Eight trees audited against v7.2, warm; one cold inventory of v7.2 for the ratio."""
    out: dict = {"week": [], "cold": []}
    for r in range(runs):
        state = work / f"state-week-{r}"
        cold = run(POLICYBOT + ["inventory", "--repo", trees, "--rev", BASE, "--state-dir", str(state),
                                "--format", "json"], child_env())
        out["cold"].append(cold)
        week = [sys.executable, "-c", WEEK_CHILD, trees, str(state)]
        run(week, child_env())  # the weeks before: every tree audited once
        out["week"].append(run(week, child_env()))
    return out


WEEK_CHILD = """
import datetime as dt, sys
from policybot.app.audit import audit
from policybot.app.context import Context
from policybot.app.settings import Overrides
repo, state = sys.argv[1:3]
ctx = Context(Overrides(state_dir=state), repo_path=repo, today=dt.date.fromisoformat("%s"))
for i in range(%d):
    audit(ctx, f"w{i}", "%s")
ctx.close()
""" % (TODAY, WEEK_TREES, BASE)


def measure(repo: str | None = None, patches: int = 1000, share: float = 0.05, runs: int = 1,
            keep: str | None = None, skip: bool = True) -> dict:
    repo = repo or kernel_repo()
    with tempfile.TemporaryDirectory(prefix="policybot-day-") as tmp:
        work = Path(keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        trees = scratch_repo(repo, work)
        grep = run(grep_cmd(trees, BASE), ok=(0, 1))
        return {**measure_day(repo, trees, work, patches, share, runs, skip), **measure_week(repo, trees, work, runs),
                "grep": grep}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("repo", nargs="?", help="kernel repository (default: scripts/kernel-trees)")
    ap.add_argument("--patches", type=int, default=1000)
    ap.add_argument("--kfunc-share", type=float, default=0.05)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--keep", metavar="DIR", help="write the trees, mails and state here and keep them")
    ap.add_argument("--no-skip", action="store_true", help="apply and judge every series, as `policybot "
                    "review` does (the inbox job skips a series that touches no kfunc code)")
    args = ap.parse_args()
    warm_bytecode()
    m = measure(args.repo, args.patches, args.kfunc_share, args.runs, args.keep, not args.no_skip)
    day = statistics.median(s.wall for s in m["day"])
    apply = statistics.median(m["apply"])
    week = statistics.median(s.wall for s in m["week"])
    cold = statistics.median(s.wall for s in m["cold"])
    c = m["counts"]
    print(f"day                 {m['mails']} mails, {m['kfunc']} change a kfunc; reviewed on {', '.join(TREES)}: "
          f"{c['patches']} patch reviews, {c['applied']} applied, {c['skipped']} skipped, {c['findings']} findings, {c['drafted']} drafted")
    print(f"review, warm        {day:7.2f} s   (target <= {DAY_TARGET_S:g} s: "
          f"{'met' if day <= DAY_TARGET_S else 'NOT met'}; in-process {c['seconds']:.2f} s)")
    print(f"git apply --check   {apply:7.2f} s   (one process per patch and tree); ratio {day / apply:.2f}x")
    print(f"week, warm          {week:7.2f} s   ({WEEK_TREES} trees audited against {BASE})")
    print(f"cold inventory      {cold:7.2f} s   ratio {week / cold:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
