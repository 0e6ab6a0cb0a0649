"""policybot history: per-kfunc history across release tags (policybot/app/history.py).

Line numbers in the real-tree tests' comments are those of linux-source-6.1 6.1.192-3
and linux-source-6.12 6.12.117-1~deb12u1; no assertion depends on them.
"""

import csv
import datetime as dt
import io
import json
import os

import pygit2
import pytest

from policybot.errors import ConfigError
from policybot.gitbuild import HistoryBuilder
from policybot.kernel.scanner import Scanner
from policybot.app.history import kfunc_history
from policybot.model.history import Histories
from policybot.render.history import csv_text as history_csv, json_text as history_json, table as history_table
from policybot.policy.config import Policy
from policybot.cache import Cache
from kit.realtree import jit_returns_by_grep
from kit.trees import BTF_H, FOO, MANIFEST, kernel



TASK = "int|struct task_struct *p"

V61 = {"bpf_foo": FOO, "bpf_keep": "int|int x", "bpf_gone": "void|void", "bpf_old": TASK,
       "bpf_back": "int|u32 v"}
# v6.2: bpf_foo gains KF_RCU, bpf_gone and bpf_back go, bpf_old is renamed bpf_new (same set,
# same signature), bpf_added appears, the manifest declares bpf_keep stable
V62 = {"bpf_foo": (FOO, "KF_RCU"), "bpf_keep": "int|int x", "bpf_new": TASK, "bpf_added": "long|void"}
# v6.3: bpf_back is back, bpf_foo takes a third parameter, every kfunc is registered for SYSCALL too
V63 = {"bpf_foo": ("int|struct task_struct *p, u32 flags, u64 extra", "KF_RCU"), "bpf_keep": "int|int x",
       "bpf_new": TASK, "bpf_added": "long|void", "bpf_back": "int|u32 v"}
# v7.0: bpf_added goes
V70 = {k: v for k, v in V63.items() if k != "bpf_added"}
PROGS63 = ("TRACING", "XDP", "SYSCALL")

DATES = {"v6.1": dt.date(2022, 12, 11), "v6.2": dt.date(2023, 2, 19), "v6.3": dt.date(2023, 4, 23),
         "v7.0": dt.date(2023, 6, 25)}


@pytest.fixture
def repo(tmp_path):
    b = HistoryBuilder(tmp_path / "linux")
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": kernel(V61), "README": "linux\n"},
             "v6.1 tree", "2022-12-11T12:00:00")
    b.tag("v6.1")
    b.commit({"kernel/bpf/helpers.c": kernel(V62), MANIFEST: "kfuncs:\n  bpf_keep:\n    stability: stable\n"},
             "v6.2 tree", "2023-02-19T12:00:00")
    b.tag("v6.2")
    b.commit({"README": "rc\n"}, "rc", "2023-03-05T12:00:00")
    b.tag("v6.3-rc1")  # not a release
    b.commit({"kernel/bpf/helpers.c": kernel(V63, PROGS63)}, "v6.3 tree", "2023-04-23T12:00:00")
    b.tag("v6.3")
    b.commit({"kernel/bpf/helpers.c": kernel(V70, PROGS63)}, "v7.0 tree", "2023-06-25T12:00:00")
    b.tag("v7.0", annotated=False)
    return b.repo


def by_name(histories):
    return {h.name: h for h in histories}


def kinds(h, release=None):
    return [e.kind for e in h.events if release is None or e.release == release]


def test_releases_are_the_release_tags_in_version_order(repo):
    hs = kfunc_history(repo, Scanner(repo))
    assert isinstance(hs, Histories) and isinstance(hs, list)
    assert [r.name for r in hs.releases] == ["v6.1", "v6.2", "v6.3", "v7.0"]  # no -rc
    assert [r.date for r in hs.releases] == list(DATES.values())
    assert [h.name for h in hs] == sorted(h.name for h in hs)
    assert {h.name for h in hs} == set(V61) | set(V62) | set(V63)


def test_added_changed_renamed_removed_readded(repo):
    h = by_name(kfunc_history(repo, Scanner(repo)))

    # present throughout, nothing changed but the program types (v6.3) and its level (v6.2)
    keep = h["bpf_keep"]
    assert (keep.first_release, keep.last_release, keep.present, keep.removed_in) == ("v6.1", None, True, None)
    assert kinds(keep) == ["added", "level", "prog_types"]
    level = next(e for e in keep.events if e.kind == "level")
    assert (level.release, level.detail) == ("v6.2", "unstable -> stable")
    assert keep.level == "stable"
    assert keep.changed_in == ["v6.2", "v6.3"]

    # flags (v6.2) and signature (v6.3) changes, with the audit's rules
    foo = h["bpf_foo"]
    assert kinds(foo, "v6.2") == ["flags"]
    flags = foo.events[1]
    assert flags.detail == "+KF_RCU"
    assert [r.rule for r in flags.rules] == ["KFUNC_FLAGS_RELAXED"]
    assert kinds(foo, "v6.3") == ["signature", "prog_types"]
    sig = next(e for e in foo.events if e.kind == "signature")
    assert sig.date == DATES["v6.3"]
    assert sig.detail == ("int bpf_foo(struct task_struct *p, u32 flags) -> "
                          "int bpf_foo(struct task_struct *p, u32 flags, u64 extra)")
    assert [r.rule for r in sig.rules] == ["KFUNC_PARAM_ADDED"]
    progs = next(e for e in foo.events if e.kind == "prog_types")
    assert (progs.detail, progs.rules) == ("+SYSCALL", ())  # widening: no rule, still history
    assert foo.changed_in == ["v6.2", "v6.3"]

    # renamed in v6.2: one history ends, the other starts, each names the other
    old, new = h["bpf_old"], h["bpf_new"]
    assert (old.first_release, old.last_release, old.removed_in, old.present) == ("v6.1", "v6.1", "v6.2", False)
    assert (old.renamed_to, old.renamed_from) == ("bpf_new", None)
    assert kinds(old) == ["added", "renamed"]
    assert old.events[-1].other == "bpf_new" and old.events[-1].release == "v6.2"
    assert [r.rule for r in old.events[-1].rules] == ["KFUNC_RENAMED"]
    assert (new.first_release, new.last_release, new.renamed_from, new.renamed_to) == ("v6.2", None, "bpf_old", None)
    assert kinds(new) == ["renamed", "prog_types"]

    # removed for good
    gone = h["bpf_gone"]
    assert (gone.first_release, gone.last_release, gone.removed_in, gone.present) == ("v6.1", "v6.1", "v6.2", False)
    assert kinds(gone) == ["added", "removed"]
    assert gone.renamed_to is None

    # removed in v6.2, back in v6.3: two spans
    back = h["bpf_back"]
    assert back.spans == [["v6.1", "v6.1"], ["v6.3", None]]
    assert kinds(back) == ["added", "removed", "re-added"]
    assert [e.release for e in back.events] == ["v6.1", "v6.2", "v6.3"]
    assert (back.first_release, back.last_release, back.present, back.removed_in) == ("v6.1", None, True, None)
    assert "v6.1" in back.events[-1].detail

    # added in v6.2, removed in v7.0 (a lightweight tag)
    added = h["bpf_added"]
    assert (added.first_release, added.last_release, added.removed_in) == ("v6.2", "v6.3", "v7.0")
    assert kinds(added) == ["added", "prog_types", "removed"]


def test_tags_glob_narrows_the_releases(repo):
    hs = kfunc_history(repo, Scanner(repo), tags_glob="v6.*")
    assert [r.name for r in hs.releases] == ["v6.1", "v6.2", "v6.3"]
    h = by_name(hs)
    assert h["bpf_added"].present and h["bpf_added"].removed_in is None
    # two releases only: v6.1 -> v6.3 directly
    hs = kfunc_history(repo, Scanner(repo), tags_glob="v6.[13]")
    h = by_name(hs)
    assert [r.name for r in hs.releases] == ["v6.1", "v6.3"]
    assert kinds(h["bpf_back"]) == ["added", "prog_types"]  # never seen missing
    assert h["bpf_old"].renamed_to == "bpf_new" and h["bpf_old"].removed_in == "v6.3"
    assert kfunc_history(repo, Scanner(repo), tags_glob="v9.*") == []


def test_upto_keeps_the_releases_a_revision_contains(repo):
    hs = kfunc_history(repo, Scanner(repo), upto="v6.2")
    assert [r.name for r in hs.releases] == ["v6.1", "v6.2"]
    assert by_name(hs)["bpf_added"].present
    assert [r.name for r in kfunc_history(repo, Scanner(repo), upto="v6.3-rc1").releases] == ["v6.1", "v6.2"]
    assert len(kfunc_history(repo, Scanner(repo), upto="HEAD").releases) == 4


def test_overlay_levels_and_a_missing_overlay(repo, tmp_path):
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("kfuncs:\n  bpf_foo:\n    stability: stable\n", encoding="utf-8")
    h = by_name(kfunc_history(repo, Scanner(repo), policy=Policy(overlay=str(overlay))))
    assert h["bpf_foo"].level == "stable" and "level" not in kinds(h["bpf_foo"])  # stable at every tag
    assert "declared stable" in h["bpf_foo"].events[0].detail
    with pytest.raises(ConfigError, match="overlay-missing.yaml"):
        kfunc_history(repo, Scanner(repo), policy=Policy(overlay=str(tmp_path / "overlay-missing.yaml")))


def test_no_release_tags(tmp_path):
    b = HistoryBuilder(tmp_path / "r")
    b.commit({"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO})}, "one")
    b.tag("v6.1-rc1")
    hs = kfunc_history(b.repo, Scanner(b.repo))
    assert hs == [] and hs.releases == []
    assert history_table(hs).splitlines()[-1] == "0 kfuncs"
    assert json.loads(history_json(hs))["kfuncs"] == []


class CountingScanner(Scanner):
    """Records, per inventory, which blobs were read to be classified."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.classified: dict[str, list[str]] = {}
        self.per_rev: dict[str, dict] = {}
        self._rev = None

    def inventory_of_commit(self, commit, rev=None):
        self._rev = rev
        self.classified[rev] = []
        inv = super().inventory_of_commit(commit, rev)
        self.per_rev[rev] = dict(self.stats)
        return inv

    def read_ahead(self, trees, label):
        self._rev = "read-ahead"
        self.classified["read-ahead"] = []
        super().read_ahead(trees, label)
        self.per_rev["read-ahead"] = dict(self.stats)


@pytest.fixture
def counting(monkeypatch):
    """Record which blobs the scanner reads (small trees are read in-process by _classify), all
    in this process: no release is linked in a forked child."""
    from policybot import forked
    from policybot.kernel import scanner as scanner_module
    monkeypatch.setattr(forked, "available", lambda: False)
    current: list[CountingScanner] = []
    real = scanner_module._classify

    def classify(repo, chunk):
        current[0].classified[current[0]._rev].extend(p for p, _ in chunk)
        return real(repo, chunk)

    monkeypatch.setattr(scanner_module, "_classify", classify)
    return current


def _three_releases(tmp_path):
    """v6.1 with 31 .c files; v6.2 changes kernel/bpf/helpers.c, v6.3 drivers/d3/f1.c."""
    b = HistoryBuilder(tmp_path / "r")
    filler = {f"drivers/d{i}/f{j}.c": f"int f{i}_{j}(void) {{ return {i * 10 + j}; }}\n"
              for i in range(5) for j in range(6)}
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": kernel(V61), **filler}, "one", "2022-12-11")
    b.tag("v6.1")
    b.commit({"kernel/bpf/helpers.c": kernel(V62)}, "two", "2023-02-19")
    b.tag("v6.2")
    b.commit({"drivers/d3/f1.c": "int changed(void) { return 0; }\n"}, "three", "2023-04-23")
    b.tag("v6.3")
    return b


def test_one_scanner_and_state_reread_only_changed_blobs(tmp_path, counting):
    b = _three_releases(tmp_path)
    scanner = CountingScanner(b.repo, Cache(tmp_path / "state"), jobs=1)  # no read-ahead on one core
    counting.append(scanner)
    kfunc_history(b.repo, scanner)
    assert scanner.classified.pop("read-ahead") == []
    assert len(scanner.classified["v6.1"]) == 31  # cold: every .c blob
    assert scanner.classified["v6.2"] == ["kernel/bpf/helpers.c"]
    assert scanner.classified["v6.3"] == ["drivers/d3/f1.c"]
    # unchanged directories are not walked again
    assert scanner.per_rev["v6.1"]["trees_walked"] > 10
    assert scanner.per_rev["v6.3"]["trees_walked"] == 3  # root, drivers/, drivers/d3/
    # a second run with the same state reads nothing
    again = CountingScanner(b.repo, Cache(tmp_path / "state"))
    counting[0] = again
    kfunc_history(b.repo, again)
    assert all(v == [] for v in again.classified.values())


def test_a_history_reads_every_release_ahead_each_blob_once(tmp_path, counting):
    b = _three_releases(tmp_path)
    scanner = CountingScanner(b.repo, Cache(tmp_path / "state"), jobs=2)
    counting.append(scanner)
    hs = kfunc_history(b.repo, scanner)
    ahead = scanner.classified.pop("read-ahead")
    # v6.1's 31 .c blobs, then the one new blob of v6.2 and of v6.3
    assert len(ahead) == 33 and len(set(ahead)) == 31
    assert ahead.count("kernel/bpf/helpers.c") == 2 and ahead.count("drivers/d3/f1.c") == 2
    trees, todo = set(), [b.repo.revparse_single(t).peel(pygit2.Tree) for t in ("v6.1", "v6.2", "v6.3")]
    while todo:  # every distinct tree object of the three releases, walked once
        t = todo.pop()
        if t.id not in trees:
            trees.add(t.id)
            todo.extend(e for e in t if e.type == pygit2.enums.ObjectType.TREE)
    assert scanner.per_rev["read-ahead"]["trees_walked"] == len(trees) == 17
    assert all(v == [] for v in scanner.classified.values())  # the releases read nothing more
    assert all(scanner.per_rev[r]["trees_walked"] == 0 for r in ("v6.1", "v6.2", "v6.3"))
    # and say what a history of one release at a time says
    alone = kfunc_history(b.repo, Scanner(b.repo, Cache(tmp_path / "state1"), jobs=1))
    assert history_json(hs) == history_json(alone)


def test_renderers(repo):
    hs = kfunc_history(repo, Scanner(repo))
    table = history_table(hs)
    lines = table.splitlines()
    assert lines[0].split() == ["KFUNC", "FIRST", "LAST", "LEVEL", "CHANGES"]
    assert lines[-1] == "7 kfuncs over 4 releases (v6.1..v7.0)"
    row = next(ln for ln in lines if ln.startswith("bpf_old "))
    assert row.split()[:4] == ["bpf_old", "v6.1", "v6.1", "unstable"]
    assert "v6.2 renamed to bpf_new" in row
    row = next(ln for ln in lines if ln.startswith("bpf_foo "))
    assert "v6.2 flags +KF_RCU [KFUNC_FLAGS_RELAXED]" in row and "[KFUNC_PARAM_ADDED]" in row
    row = next(ln for ln in lines if ln.startswith("bpf_back "))
    assert row.split()[1:3] == ["v6.1", "-"] and "v6.3 re-added" in row

    doc = json.loads(history_json(hs))
    assert doc["schema"] == 1
    assert [r["name"] for r in doc["releases"]] == ["v6.1", "v6.2", "v6.3", "v7.0"]
    assert doc["releases"][0]["date"] == "2022-12-11"
    k = {x["name"]: x for x in doc["kfuncs"]}
    assert k["bpf_old"]["renamed_to"] == "bpf_new" and k["bpf_new"]["renamed_from"] == "bpf_old"
    assert k["bpf_back"]["spans"] == [{"first": "v6.1", "last": "v6.1"}, {"first": "v6.3", "last": None}]
    assert k["bpf_added"]["removed_in"] == "v7.0" and k["bpf_added"]["last_release"] == "v6.3"
    sig = next(e for e in k["bpf_foo"]["events"] if e["kind"] == "signature")
    assert sig["release"] == "v6.3" and sig["rules"][0]["rule"] == "KFUNC_PARAM_ADDED"

    rows = list(csv.DictReader(io.StringIO(history_csv(hs))))
    assert {"name", "release", "date", "kind", "detail", "rules", "other"} <= set(rows[0])
    assert len(rows) == sum(len(h.events) for h in hs)
    ren = [r for r in rows if r["kind"] == "renamed"]
    assert {(r["name"], r["release"], r["other"]) for r in ren} == {("bpf_old", "v6.2", "bpf_new"),
                                                                  ("bpf_new", "v6.2", "bpf_old")}


# -- the real trees ------------------------------------------------------------------------------

@pytest.mark.realtree
def test_history_on_real_trees(kernel_repo, kernel_state):
    """Spot checks against Debian's linux-source-6.1 and -6.12 (paths and lines from those trees)."""
    from policybot.kernel.gitrepo import open_repo
    repo = open_repo(kernel_repo)
    scanner = Scanner(repo, kernel_state)
    # 6.1 -> 6.12 only (the repository has v7.2 too, where cgroup_rstat_flush is renamed)
    hs = kfunc_history(repo, scanner, "v6.*", include_tests=True)
    assert [r.name for r in hs.releases] == ["v6.1", "v6.12"]
    h = by_name(hs)

    # in both, unchanged: 6.1 kernel/cgroup/rstat.c:548 and 6.12 kernel/cgroup/rstat.c:658
    # `BTF_ID_FLAGS(func, cgroup_rstat_flush, KF_SLEEPABLE)`, registered for TRACING in both
    # (6.1 rstat.c:558, 6.12 rstat.c:668); 6.1 nf_conntrack_bpf.c:480 / 6.12 :529
    # `BTF_ID_FLAGS(func, bpf_ct_release, KF_RELEASE)`, XDP and SCHED_CLS in both
    for name in ("cgroup_rstat_flush", "bpf_ct_release"):
        assert (h[name].first_release, h[name].present) == ("v6.1", True), name
        assert kinds(h[name]) == ["added"], h[name].events

    # added: 6.12 kernel/bpf/helpers.c:3100 `BTF_ID_FLAGS(func, bpf_task_acquire, KF_ACQUIRE |
    # KF_RCU | KF_RET_NULL)`; 6.1 has no such entry
    acq = h["bpf_task_acquire"]
    assert (acq.first_release, acq.present, kinds(acq)) == ("v6.12", True, ["added"])
    assert acq.events[0].release == "v6.12" and acq.events[0].date == dt.date(2024, 11, 17)

    # removed: 6.1 net/bpf/test_run.c:751 `BTF_ID_FLAGS(func, bpf_kfunc_call_test_kptr_get,
    # KF_ACQUIRE | KF_RET_NULL | KF_KPTR_GET)` (a test kfunc); no such name anywhere in 6.12
    gone = h["bpf_kfunc_call_test_kptr_get"]
    assert gone.test
    assert (gone.first_release, gone.last_release, gone.removed_in) == ("v6.1", "v6.1", "v6.12")
    assert kinds(gone) == ["added", "removed"]

    # changed: 6.1 net/ipv4/tcp_bbr.c:1026 `bbr_main(struct sock *sk, const struct rate_sample *rs)`,
    # 6.12 net/ipv4/tcp_bbr.c:1027 `bbr_main(struct sock *sk, u32 ack, int flag, const struct rate_sample *rs)`
    sig = next(e for e in h["bbr_main"].events if e.kind == "signature")
    assert sig.release == "v6.12"
    # one edit of the parameter list: the parameters after the insertion are not "retyped" as well
    assert {r.rule for r in sig.rules} == {"KFUNC_PARAM_ADDED"}

    # crash_kexec: 6.1 kernel/bpf/helpers.c:1819 under CONFIG_KEXEC_CORE, set registered for
    # TRACING only; 6.12 kernel/bpf/helpers.c:3088-3090 under CONFIG_CRASH_DUMP in generic_btf_ids,
    # registered for TRACING, SCHED_CLS, XDP, STRUCT_OPS, SYSCALL, CGROUP_SKB (helpers.c:3194-3199)
    ck = {e.kind: e for e in h["crash_kexec"].events}
    assert ck["prog_types"].detail == "+CGROUP_SKB +SCHED_CLS +STRUCT_OPS +SYSCALL +XDP"
    assert ck["guards"].detail == "CONFIG_KEXEC_CORE -> CONFIG_CRASH_DUMP"
    assert [r.rule for r in ck["guards"].rules] == ["KFUNC_CONFIG_GUARD_ADDED"]

    # with test kfuncs excluded (the default) the histories present at v6.12 are its inventory
    default = kfunc_history(repo, scanner, "v6.*")
    inv = scanner.inventory("v6.12")
    assert {x.name for x in default if x.present} == {k.name for k in inv.selected(False)}
    assert not any(x.test for x in default)


def _git(repo, *args):
    import subprocess
    return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, check=True).stdout


@pytest.mark.realtree
def test_history_json_gives_the_jit_arches_of_each_real_release(kernel_repo, kernel_state, capsys):
    """`history --format json` against the trees' arch/, read independently with git grep."""
    import re

    from policybot.cli import main

    tags = [t for t in _git(kernel_repo, "tag", "--list", "--sort=version:refname", "v*").split()
            if re.fullmatch(r"v\d+\.\d+", t)]
    expected, conditions = {}, {}
    for tag in tags:
        arches = jit_returns_by_grep(kernel_repo, tag)
        expected[tag] = sorted(arches)
        conditions[tag] = {a: next(iter(v)) for a, v in arches.items() if v != {"true"}}
    assert main(["history", "--repo", kernel_repo, "--state-dir", str(kernel_state.state_dir),
                 "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["arches"] == expected
    # kfuncs.md: "6.1 has x86 (64 and 32 bit), arm64 and LoongArch; later releases add more"
    assert doc["arches"]["v6.1"] == ["arm64", "loongarch", "x86"]
    since = {}
    for tag in tags:
        for a in expected[tag]:
            since.setdefault(a, tag)
    assert doc["arch_since"] == since
    # powerpc returns IS_ENABLED(CONFIG_PPC64) (6.12 arch/powerpc/net/bpf_jit_comp.c:365)
    for tag in tags:
        for a, cond in conditions[tag].items():
            assert cond in doc["arch_conditions"][tag][a], (tag, a)
    assert conditions["v6.12"] == {"powerpc": "IS_ENABLED(CONFIG_PPC64)"}


def test_a_history_read_ahead_is_git_grep_of_new_blobs_begun_during_the_walk(tmp_path, counting, monkeypatch):
    from policybot.kernel import scanner as scanner_module
    b = _three_releases(tmp_path)
    b.commit({"drivers/d0/sub/deep.c": "/* no kfunc here */\n"}, "four", "2023-06-25")
    b.tag("v6.4")
    greps = []

    class Recorded(scanner_module.BlobGrep):
        def __init__(self, git_dir, blob_ids, *a, **kw):
            greps.append(len(blob_ids))
            super().__init__(git_dir, blob_ids, *a, **kw)

    monkeypatch.setattr(scanner_module, "BlobGrep", Recorded)
    # as on a kernel tree, in miniature: git grep starts on the blobs of the first levels
    # that hold 10 (here depth 3: every release's drivers/d*/ and kernel/bpf/, 33 blobs),
    # a second one reads the rest when the walk is done (v6.4's drivers/d0/sub/deep.c)
    monkeypatch.setattr(scanner_module, "UNION_EARLY", 10)
    monkeypatch.setattr(scanner_module, "BLOB_GREP_MIN", 1)
    scanner = CountingScanner(b.repo, Cache(tmp_path / "state"), jobs=2)
    counting.append(scanner)
    hs = kfunc_history(b.repo, scanner)
    assert greps == [33, 1]
    # only what git grep listed is read here: helpers.c of v6.1 and of v6.2, and deep.c
    assert sorted(scanner.classified.pop("read-ahead")) == ["drivers/d0/sub/deep.c"] + ["kernel/bpf/helpers.c"] * 2
    assert all(v == [] for v in scanner.classified.values())
    alone = kfunc_history(b.repo, Scanner(b.repo, Cache(tmp_path / "state1"), jobs=1))
    assert history_json(hs) == history_json(alone)


def test_a_read_ahead_that_fails_stops_the_git_grep_it_began(tmp_path, monkeypatch):
    import os
    from policybot.kernel import scanner as scanner_module
    b = _three_releases(tmp_path)
    started = []

    class Recorded(scanner_module.BlobGrep):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            started.append(self)

    def fail(self):
        raise OSError("disk gone")

    monkeypatch.setattr(scanner_module, "BlobGrep", Recorded)
    monkeypatch.setattr(scanner_module, "UNION_EARLY", 10)
    monkeypatch.setattr(scanner_module._Reader, "finish", fail)
    scanner = Scanner(b.repo, Cache(tmp_path / "state"), jobs=2)
    with pytest.raises(OSError):
        kfunc_history(b.repo, scanner)
    assert len(started) == 1
    assert started[0].proc.poll() is not None and not os.path.exists(started[0].scratch)


def test_a_history_links_its_later_releases_in_a_child_as_it_would_here(tmp_path, monkeypatch):
    from policybot import forked
    from policybot.app import history as history_module
    b = _three_releases(tmp_path)
    b.commit({"drivers/d0/sub/deep.c": "/* no kfunc here */\n"}, "four", "2023-06-25")
    b.tag("v6.4")
    monkeypatch.setattr(forked, "available", lambda: False)
    alone = history_json(kfunc_history(b.repo, Scanner(b.repo, Cache(tmp_path / "state1"), jobs=2)))
    children, real = [], forked.Forked.result

    def result(self):
        pid, value = self.pid, real(self)
        children.append(pid)  # only a child that succeeded
        return value

    monkeypatch.setattr(forked, "available", lambda: True)
    monkeypatch.setattr(forked.Forked, "result", result)
    assert history_json(kfunc_history(b.repo, Scanner(b.repo, Cache(tmp_path / "state2"), jobs=2))) == alone
    assert len(children) == 1
    # a child that fails: its releases are linked here, with the same result
    parent, link = os.getpid(), Scanner.inventory_of_commit

    def failing(self, commit, rev=None):
        if os.getpid() != parent:
            raise MemoryError("the child ran out")
        return link(self, commit, rev)

    monkeypatch.setattr(Scanner, "inventory_of_commit", failing)
    assert history_json(kfunc_history(b.repo, Scanner(b.repo, Cache(tmp_path / "state3"), jobs=2))) == alone
    assert history_module.FORK_MIN <= 4
