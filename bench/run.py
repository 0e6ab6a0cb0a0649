#!/usr/bin/env python3
"""Every speed target of policybot in one run, each as a ratio against its reference.

    python bench/run.py [REPO] [--runs 3] [--only inventory,audit,review,check,history,config] [--readme]
                        [--history-repo REPO]

Each row is the median of --runs separate processes (.pyc files warm, as an
installed policybot has them: see benchlib.py), measured in the same run as
its reference, so a busy machine slows both. A reference is git grep (the
speed of reading the tree in git's threaded C) or another row. Targets given
in seconds by issue 15 are judged on the seconds themselves; their ratio to
git grep is shown beside what it is on the project's quiet 2-core machine
(QUIET_GREP_S: 0.6 s there is 0.5x git grep), since a busy machine slows git
grep's threads more than one policybot process. With --readme, the table of
docs/performance.md between the bench markers is rewritten from this run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import audit as audit_bench  # noqa: E402
import census as census_bench  # noqa: E402
import check as check_bench  # noqa: E402
import config as config_bench  # noqa: E402
import day as day_bench  # noqa: E402
import history as history_bench  # noqa: E402
import inventory as inventory_bench  # noqa: E402
import review as review_bench  # noqa: E402
import benchlib  # noqa: E402
from benchlib import ROOT, kernel_repo, median, warm_bytecode  # noqa: E402

QUIET_GREP_S = 1.2  # git grep of the reference on the quiet machine (docs/performance.md; 1.09-1.73 s when issue 15 measured it)
GROUPS = ("inventory", "audit", "review", "check", "history", "config", "census", "day")
PERFORMANCE = ROOT / "docs" / "performance.md"  # the page whose table --readme rewrites
BEGIN = "<!-- bench:begin: bench/run.py --readme rewrites this table of docs/performance.md -->"
END = "<!-- bench:end -->"


@dataclass
class Row:
    what: str
    value: float
    unit: str  # "s" or "MB"
    reference: str  # what the value is compared with, "" for a plain bound
    ref_value: float | None
    target: float  # the ratio (or, without a reference, the value) at most allowed
    target_text: str
    seconds: float | None = None  # a target in seconds: judged on the value itself, the ratio is context

    @property
    def ratio(self) -> float | None:
        return None if self.ref_value is None else self.value / self.ref_value

    @property
    def met(self) -> bool:
        if self.seconds is not None:
            return self.value <= self.seconds  # NaN: never
        return (self.ratio if self.ratio is not None else self.value) <= self.target


def seconds_row(what: str, value: float, grep: float, seconds: float) -> Row:
    """A target in seconds: the value against it, and its ratio to git grep beside what that is
    on the quiet machine (a busy machine slows git grep's threads more than one process)."""
    r = seconds / QUIET_GREP_S
    return Row(what, value, "s", "git grep", grep, r, f"< {seconds:g} s (quiet: {r:.2f}× git grep)", seconds)


def measure(repo: str, runs: int, only: set[str], history_repo: str | None = None) -> list[Row]:
    rows: list[Row] = []
    m = inventory_bench.measure(repo, "v6.12", runs)  # every run needs these references
    grep, cold = median(m["grep"]), median(m["cold"])
    g = "git grep"
    rows.append(Row("`inventory --rev v6.12`, cold", cold, "s", g, grep, 1.3, "≤ 1.3×"))
    rows.append(Row("the same, warm after a neighbour commit changing 300 `.c` files", median(m["warm"]), "s",
                    "cold inventory", cold, 0.2, "≤ 0.2×"))
    rows.append(Row("peak RSS, cold inventory", max(s.rss_mb for s in m["cold"]), "MB", "", None, 400, "< 400 MB"))
    if "audit" in only:
        a = audit_bench.measure(repo, "v6.1", "v6.12", runs)
        ac = median(a["cold"])
        rows.append(Row("`audit --base v6.1 --rev v6.12`, cold", ac, "s", "two cold inventories",
                        statistics.median(a["inventories"]), 1.1, "≤ 1.1× (little more)"))
        rows.append(Row("the same audit, warm", median(a["warm"]), "s", "cold audit", ac, 0.2, "≤ 0.2×"))
    if "review" in only:
        r = review_bench.measure(repo, "v6.12", runs)
        rows.append(seconds_row("`review` of the 20-patch series on v6.12, warm", median(r["warm"]), grep, 0.6))
        rows.append(Row("the same review, cold", median(r["cold"]), "s", "cold inventory", cold, 1.5, "≤ 1.5×"))
    if "day" in only:
        d = day_bench.measure(repo, runs=1)
        day = median(d["day"])
        c = d["counts"]
        rows.append(Row(f"a day of list traffic: {d['mails']} mails ({d['kfunc']} change a kfunc) reviewed on "
                        f"two trees, warm ({c['skipped']} of {c['patches']} skipped)", day, "s",
                        "`git apply --cached --check` of each on each tree", statistics.median(d["apply"]),
                        float("inf"), f"< {day_bench.DAY_TARGET_S:g} s", day_bench.DAY_TARGET_S))
        rows.append(Row(f"a week: {day_bench.WEEK_TREES} trees (branches) audited against v7.2 in one process, warm",
                        median(d["week"]), "s", "one cold inventory of v7.2",
                        median(d["cold"]), 2.0, "≤ 2×"))
    if "check" in only:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                obj = check_bench.bench_object(tmp)
            except BaseException as e:  # pytest.skip outside pytest: no clang or libbpf headers
                print(f"bench: check rows skipped: {e}", file=sys.stderr)
                obj = None
            c = None
            if obj:
                try:
                    c = check_bench.measure(obj, repo, "v7.2", "7.2", runs)
                except SystemExit as e:  # a command that fails: the rows say so, the others still count
                    print(f"bench: check rows not measured: {e}", file=sys.stderr)
                    rows += [Row(w, float("nan"), "s", g, grep, 0, "not measured: the command failed", s)
                             for w, s in (("vmlinux BTF read, cold", 1.0), ("`check` of one object, warm", 0.3))]
            if c:
                rows.append(seconds_row("vmlinux BTF read (`inventory --btf` 7.2 vmlinuz), cold",
                                        median(c["btf cold"]), grep, 1.0))
                rows.append(seconds_row("the same, cached by content hash", median(c["btf warm"]), grep, 1.0))
                rows.append(seconds_row("`check` of one object against the 7.2 BTF, warm",
                                        median(c["check btf warm"]), grep, 0.3))
                rows.append(seconds_row("`check` of one object against v7.2's source, warm",
                                        median(c["check source warm"]), grep, 0.3))
    if "history" in only:
        h = history_bench.measure(history_repo or kernel_repo("history"), "v6.12", runs)
        rows.append(Row(f"`history` over {', '.join(h['tags'])}, cold", median(h["cold"]), "s",
                        "cold inventory (this group's)", median(h["inventory"]), 2.5, "≤ 2.5×"))
        rows.append(Row("the same history (what it must read: every release's blobs)", median(h["cold"]), "s",
                        "git grep of each release in turn", median(h["greps"]), 1.3, "≤ 1.3× (as one inventory)"))
    if "config" in only:
        c = config_bench.measure(16000, runs)
        rows.append(Row("reading a `policybot.toml` of 16,000 `[[trees]]`", c["config"][0], "s",
                        "tomllib of the same file", c["config"][1], 2.0, "≤ 2×"))
        rows.append(Row("reading a policy of 16,000 `[[allow]]` entries", c["policy"][0], "s",
                        "tomllib of the same file", c["policy"][1], 2.0, "≤ 2×"))
    if "census" in only:
        c = census_bench.measure(runs)
        ref = median(c["bpftool"])
        what = f"`census` of {len(census_bench.PACKAGES)} sid packages ({c['objects']} embedded objects)"
        rows.append(Row(f"{what}, cold", median(c["cold"]), "s", "bpftool btf dump of each object in turn", ref,
                        1.0, "≤ 1×"))
        rows.append(Row("the same census, warm", median(c["warm"]), "s", "bpftool btf dump of each object in turn",
                        ref, 1.0, "≤ 1×"))
    return rows


def fmt(v: float, unit: str) -> str:
    if v != v:
        return "—"
    return f"{v:.0f} MB" if unit == "MB" else f"{v:.2f} s"


def table(rows: list[Row], grep_cpu_note: str = "") -> str:
    out = ["| what | median | reference (same run) | ratio | target | verdict |", "|---|---|---|---|---|---|"]
    for r in rows:
        ref = f"{r.reference} {fmt(r.ref_value, r.unit)}" if r.ref_value is not None else "—"
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None and r.ratio == r.ratio else "—"
        out.append(f"| {r.what} | {fmt(r.value, r.unit)} | {ref} | {ratio} | {r.target_text} | "
                   f"{'met' if r.met else 'NOT met'} |")
    return "\n".join(out) + "\n"


def write_table(text: str, runs: int, page: Path = PERFORMANCE) -> None:
    """Rewrite the table between the bench markers of docs/performance.md (--readme)."""
    doc = page.read_text(encoding="utf-8")
    if BEGIN not in doc or END not in doc:
        raise SystemExit(f"bench: {page} has no {BEGIN} ... {END} markers")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    page.write_text(f"{head}{BEGIN}\n{text}\nMedians of {runs} runs each.\n{END}{tail}", encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("repo", nargs="?", help="kernel repository (default: scripts/kernel-trees)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default=",".join(GROUPS),
                    help="groups to measure besides inventory (always: it gives the references)")
    ap.add_argument("--readme", action="store_true", help="rewrite the table in docs/performance.md")
    ap.add_argument("--history-repo", metavar="REPO", help="for the history rows (default: scripts/kernel-trees "
                    "CACHE history, four releases)")
    ap.add_argument("--code", metavar="DIR", help="measure the policybot of another checkout (e.g. the "
                    "commit before a change, from `git worktree add`), with this checkout's bench")
    args = ap.parse_args()
    if args.code:
        benchlib.CODE[0] = Path(args.code).resolve()
    only = set(args.only.split(","))
    if only - set(GROUPS):
        ap.error(f"--only: unknown group(s) {', '.join(sorted(only - set(GROUPS)))}")
    repo = args.repo or kernel_repo()
    warm_bytecode()
    rows = measure(repo, args.runs, only, args.history_repo)
    text = table(rows)
    sys.stdout.write(text)
    if args.readme:
        write_table(text, args.runs)
    return 0 if all(r.met for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
