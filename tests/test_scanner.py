"""The scanner on trees the tests build: every era, every trap, odd formatting, the cache."""

import json
import os
from pathlib import Path

import pygit2
import pytest

from policybot.errors import InputError
from policybot.gitbuild import HistoryBuilder
from policybot.kernel.gitrepo import open_repo
from policybot.kernel.scanner import Scanner
from policybot.cache import Cache
from kit import eras as fx


def scan(tmp_path, files, rev="HEAD", bare=False, state=None):
    b = HistoryBuilder(tmp_path / "repo", bare=bare)
    b.commit({"include/linux/bpf_types.h": fx.BPF_TYPES_H, "include/linux/btf.h": fx.BTF_H, **files},
             "tree")
    return Scanner(b.repo, state).inventory(rev)


def test_era_5_13_check_kfunc_call(tmp_path):
    inv = scan(tmp_path, {"net/bpf/test_run.c": fx.ERA_5_13, "net/ipv4/bpf_tcp_ca.c": fx.ERA_5_13_TCP_CA,
                          "net/ipv4/tcp_cong.c": fx.TCP_CONG})
    k = inv.kfuncs["bpf_kfunc_call_test1"]
    assert k.prog_types == ("SCHED_ACT", "SCHED_CLS")  # tc_cls_act serves both in bpf_types.h
    assert k.memberships[0].set_macro == "BTF_SET"
    assert k.test
    ca = inv.kfuncs["tcp_reno_ssthresh"]
    assert ca.prog_types == ("STRUCT_OPS",)
    # defined in another file than the set, without any marker
    assert str(ca.definition.location) == "net/ipv4/tcp_cong.c:2"
    assert ca.definition.signature.render("tcp_reno_ssthresh") == "u32 tcp_reno_ssthresh(struct sock *sk)"
    # listed, never defined: recorded with a note, not dropped
    assert inv.kfuncs["tcp_legacy_helper"].definition is None
    assert any(d.code == "no-definition" and "tcp_legacy_helper" in d.message for d in inv.diagnostics)


def test_era_5_18_flag_sets(tmp_path):
    inv = scan(tmp_path, {"net/netfilter/nf_conntrack_bpf.c": fx.ERA_5_18})
    assert set(inv.kfuncs) == {"bpf_xdp_ct_lookup", "bpf_ct_release"}
    assert inv.kfuncs["bpf_xdp_ct_lookup"].flags == ("KF_ACQUIRE", "KF_RET_NULL")
    assert inv.kfuncs["bpf_ct_release"].flags == ("KF_RELEASE",)
    sig = inv.kfuncs["bpf_xdp_ct_lookup"].definition.signature
    assert sig.return_type == "struct nf_conn *"
    assert [(p.type, p.name, p.suffix) for p in sig.params][2] == ("u32", "tuple__sz", "__sz")
    assert inv.kfuncs["bpf_xdp_ct_lookup"].prog_types == ("XDP",)


def test_era_6_1_set8(tmp_path):
    inv = scan(tmp_path, {"kernel/bpf/helpers.c": fx.ERA_6_1})
    acq = inv.kfuncs["bpf_task_acquire"]
    assert acq.flags == ("KF_ACQUIRE", "KF_TRUSTED_ARGS")
    assert acq.memberships[0].flags_text == "KF_ACQUIRE | KF_TRUSTED_ARGS"
    assert acq.prog_types == ("SCHED_CLS", "TRACING")
    assert acq.memberships[0].filter == "generic_filter"
    assert acq.memberships[0].set_macro == "BTF_SET8"
    assert acq.definition.marked and not acq.definition.static
    assert acq.definition.doc.summary == "Acquire a reference to a task."
    assert acq.definition.doc.stability == "stable"
    rel = inv.kfuncs["bpf_task_release"].definition.doc
    assert (rel.stability, rel.deprecated) == ("deprecated", "use bpf_put_task() instead")
    # config guard on the entry and on the definition
    assert inv.kfuncs["bpf_crash"].guards == ("CONFIG_KEXEC_CORE",)
    assert inv.kfuncs["bpf_task_acquire"].guards == ()
    local = inv.kfuncs["bpf_local_helper"].definition
    assert local.static
    assert [(p.type, p.suffix) for p in local.signature.params] == [
        ("const void *", "__sz"), ("u32", "__szk"), ("char **", "__str")]
    # destructors are a dependency, not new kfuncs
    assert [n for n, _ in inv.dtors] == ["bpf_task_release"]
    assert inv.commit and not inv.diagnostics


def test_era_6_12_kfuncs_struct_ops(tmp_path):
    inv = scan(tmp_path, {"kernel/sched/ext.c": fx.ERA_6_12})
    k = inv.kfuncs["scx_bpf_select_cpu_dfl"]
    assert k.prog_types == ("STRUCT_OPS",)
    assert k.memberships[0].set_macro == "BTF_KFUNCS"
    assert k.definition.signature.render(k.name) == (
        "s32 scx_bpf_select_cpu_dfl(struct task_struct *p, s32 prev_cpu, u64 wake_flags, bool *is_idle)")


def test_traps_are_not_kfuncs(tmp_path):
    inv = scan(tmp_path, {"kernel/trace/bpf_trace.c": fx.TRAPS,
                          "Documentation/bpf/kfuncs.rst": "BTF_ID_FLAGS(func, bpf_doc_example)\n",
                          "tools/lib/bpf/user.c": fx.ERA_6_12.replace("scx_bpf", "tool_bpf")[:0]})
    assert inv.kfuncs == {}


def test_xmacro_entries_from_header(tmp_path):
    inv = scan(tmp_path, {"include/net/xdp.h": fx.XMACRO_H, "net/core/xdp.c": fx.XMACRO_C})
    assert sorted(inv.kfuncs) == ["bpf_xdp_metadata_rx_hash", "bpf_xdp_metadata_rx_timestamp"]
    k = inv.kfuncs["bpf_xdp_metadata_rx_hash"]
    assert k.flags == ("KF_TRUSTED_ARGS",) and k.memberships[0].via_macro == "XDP_METADATA_KFUNC_xxx"
    assert k.definition.location.line == 8


def test_odd_formatting(tmp_path):
    inv = scan(tmp_path, {"net/core/odd.c": fx.ODD})
    assert sorted(inv.kfuncs) == ["bpf_odd_one", "bpf_odd_two"]
    one = inv.kfuncs["bpf_odd_one"]
    assert one.flags == ("KF_SLEEPABLE",) and one.location.line == 12
    assert one.prog_types == ("UNSPEC",)
    assert one.definition.signature.params[1].suffix == "__str"
    # an unknown flag is kept verbatim and noted, never dropped
    assert inv.kfuncs["bpf_odd_two"].flags == ("KF_FUTURE_FLAG",)
    assert [d.code for d in inv.diagnostics] == ["unknown-flag"]


def test_crlf_and_non_utf8(tmp_path):
    data = fx.ERA_6_12.replace("\n", "\r\n").encode().replace(b"__bpf_kfunc_end_defs", b"/* \xff\xfe */ __bpf_kfunc_end_defs")
    inv = scan(tmp_path, {"kernel/sched/ext.c": data})
    k = inv.kfuncs["scx_bpf_select_cpu_dfl"]
    assert k.location.line == 12 and k.definition.location.line == 3


def test_test_kfuncs_tagged(tmp_path):
    inv = scan(tmp_path, {"tools/testing/selftests/bpf/bpf_testmod/bpf_testmod.c": fx.TESTMOD,
                          "kernel/sched/ext.c": fx.ERA_6_12})
    assert inv.kfuncs["bpf_testmod_test_mod_kfunc"].test
    assert not inv.kfuncs["scx_bpf_select_cpu_dfl"].test
    assert [k.name for k in inv.selected(include_tests=False)] == ["scx_bpf_select_cpu_dfl"]


def test_bare_repository_and_revisions(tmp_path):
    b = HistoryBuilder(tmp_path / "bare.git", bare=True)
    b.commit({"kernel/sched/ext.c": fx.ERA_6_12}, "one")
    b.tag("v6.12")
    b.commit({"kernel/bpf/helpers.c": fx.ERA_6_1}, "two")
    repo = open_repo(tmp_path / "bare.git")
    s = Scanner(repo)
    assert len(s.inventory("HEAD").kfuncs) == 5
    assert list(s.inventory("HEAD~1").kfuncs) == ["scx_bpf_select_cpu_dfl"]
    assert list(s.inventory("v6.12").kfuncs) == ["scx_bpf_select_cpu_dfl"]
    assert len(s.inventory(str(b.head)[:10]).kfuncs) == 5


def test_cache_reads_only_changed_blobs(tmp_path):
    state = Cache(tmp_path / "state")
    b = HistoryBuilder(tmp_path / "repo")
    filler = {f"drivers/d{i}/f{j}.c": f"int f{i}_{j}(void) {{ return {j}; }}\n" for i in range(20) for j in range(10)}
    b.commit({"kernel/sched/ext.c": fx.ERA_6_12, "kernel/bpf/helpers.c": fx.ERA_6_1, **filler}, "one")
    b.commit({"kernel/sched/ext.c": fx.ERA_6_12.replace("KF_RCU", "KF_RCU | KF_SLEEPABLE"),
              "drivers/d3/f1.c": "int changed(void) { return 0; }\n"}, "two")
    cold = Scanner(b.repo, state)
    first = cold.inventory("HEAD~1")
    assert cold.stats["blobs_read"] >= 202
    warm = Scanner(b.repo, state)
    second = warm.inventory("HEAD")
    # only the two changed .c blobs are read; unchanged directories are not walked
    assert warm.stats["blobs_read"] == 2
    assert warm.stats["trees_walked"] < 8
    assert second.kfuncs["scx_bpf_select_cpu_dfl"].flags == ("KF_RCU", "KF_SLEEPABLE")
    assert first.kfuncs["scx_bpf_select_cpu_dfl"].flags == ("KF_RCU",)
    again = Scanner(b.repo, state)
    assert again.inventory("HEAD~1").to_json() == first.to_json()
    assert again.stats["blobs_read"] == 0


def test_bad_input(tmp_path):
    with pytest.raises(InputError, match="not a git repository"):
        open_repo(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        open_repo(tmp_path / "missing")
    pygit2.init_repository(str(tmp_path / "empty"))
    with pytest.raises(InputError, match="has no commits"):
        Scanner(open_repo(tmp_path / "empty")).inventory("HEAD")
    b = HistoryBuilder(tmp_path / "r")
    b.commit({"README": "x"}, "one")
    with pytest.raises(InputError, match="unknown revision 'v9.9'"):
        Scanner(b.repo).inventory("v9.9")
    assert Scanner(b.repo).inventory("HEAD").kfuncs == {}


def test_json_schema(tmp_path):
    inv = scan(tmp_path, {"kernel/bpf/helpers.c": fx.ERA_6_1})
    doc = json.loads(json.dumps(inv.to_json()))
    assert doc["schema"] == 1 and doc["count"] == 4
    acq = next(k for k in doc["kfuncs"] if k["name"] == "bpf_task_acquire")
    assert acq["definition"]["signature"] == "struct task_struct *bpf_task_acquire(struct task_struct *p)"
    assert acq["definition"]["doc"]["stability"] == "stable"
    assert acq["sets"][0]["location"] == "kernel/bpf/helpers.c:44"


def test_cold_scan_through_git_grep_reads_what_reading_every_blob_reads(tmp_path, monkeypatch):
    """A cold scan lets git grep name the candidates; symlinks (which it skips), binary files and a
    missing git give the inventory of the scan that reads every blob itself (jobs=1)."""
    from policybot.kernel import grep, scanner
    monkeypatch.setattr(scanner, "COLD_THRESHOLD", 1)  # this small tree is read by git grep too
    b = HistoryBuilder(tmp_path / "repo")
    filler = {f"drivers/d{i}/f{j}.c": f"int f{i}_{j}(void) {{ return {j}; }}\n" for i in range(5) for j in range(10)}
    b.commit({"include/linux/bpf_types.h": fx.BPF_TYPES_H, "include/linux/btf.h": fx.BTF_H,
              "kernel/bpf/helpers.c": b"\0binary\0" + fx.ERA_6_1.encode(),  # a NUL: git calls it binary
              "drivers/d1/mentions.c": "/* no kfunc here */\n", **filler}, "tree")
    # a symlink whose blob holds a whole kfunc file: git grep never reads it, the scanner must
    root = b.repo[b.head].tree
    link = b.repo.create_blob(fx.ERA_6_12.encode())
    sched = b.repo.TreeBuilder(root["kernel"].peel(pygit2.Tree)["bpf"].peel(pygit2.Tree))
    sched.insert("linked.c", link, pygit2.enums.FileMode.LINK)
    kernel = b.repo.TreeBuilder(root["kernel"].peel(pygit2.Tree))
    kernel.insert("bpf", sched.write(), pygit2.enums.FileMode.TREE)
    top = b.repo.TreeBuilder(root)
    top.insert("kernel", kernel.write(), pygit2.enums.FileMode.TREE)
    tree = b.repo[top.write()]

    listed = []
    real_listed = grep.GrepCandidates.listed

    def spy(self):
        for path in real_listed(self):
            listed.append(path)
            yield path

    monkeypatch.setattr(grep.GrepCandidates, "listed", spy)
    every_blob = Scanner(b.repo, jobs=1).inventory_of_tree(tree, "", "t").to_json(True)
    grepped = Scanner(b.repo, jobs=2).inventory_of_tree(tree, "", "t").to_json(True)
    assert sorted(listed) == ["drivers/d1/mentions.c", "kernel/bpf/helpers.c"]
    assert grepped == every_blob
    assert {"bpf_task_acquire", "scx_bpf_select_cpu_dfl"} <= {k["name"] for k in grepped["kfuncs"]}
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    assert Scanner(b.repo, jobs=2).inventory_of_tree(tree, "", "t").to_json(True) == every_blob


def test_a_cold_inventory_greps_the_tree_before_its_imports(tmp_path, capsys, monkeypatch):
    """`inventory --rev TAG` starts git grep on TAG's tree before pygit2 loads, and the scanner
    takes it; a revision that looks like an option starts nothing and fails in the scanner's words."""
    from policybot.cli import main
    from policybot.kernel import grep, scanner
    b = HistoryBuilder(tmp_path / "repo")
    b.commit({"include/linux/btf.h": fx.BTF_H, "kernel/bpf/helpers.c": fx.ERA_6_1}, "Linux 6.1")
    b.tag("v6.1")
    taken = []

    def take(tree_id, words):
        found = grep.take_prefetched(tree_id, words)
        taken.append((str(tree_id), found is not None))
        return found

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(scanner, "take_prefetched", take)
    argv = ["inventory", "--repo", str(tmp_path / "repo"), "--format", "json"]
    assert main([*argv, "--rev", "v6.1", "--state-dir", str(tmp_path / "cold")]) == 0
    assert taken == [(str(b.repo[b.head].tree.id), True)]
    assert json.loads(capsys.readouterr().out)["count"] > 0
    assert main([*argv, "--rev=--output=x", "--state-dir", str(tmp_path / "opt")]) == 2
    assert not grep._prefetched and not (Path.cwd() / "x").exists()
    assert "--output=x" in capsys.readouterr().err


def test_blobs_new_to_the_cache_are_read_by_git_grep_of_them_alone(tmp_path, monkeypatch):
    """The next release's new blobs go to git grep in a tree of their own, written beside the
    repository (never into it) and removed after; the inventory is the one a scan reading every
    blob itself gives, with git or without it."""
    import tempfile
    from policybot.kernel import grep, scanner
    monkeypatch.setattr(scanner, "BLOB_GREP_MIN", 1)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    b = HistoryBuilder(tmp_path / "repo")
    filler = {f"drivers/d{i}/f{j}.c": f"int f{i}_{j}(void) {{ return {j}; }}\n" for i in range(3) for j in range(5)}
    b.commit({"include/linux/bpf_types.h": fx.BPF_TYPES_H, "include/linux/btf.h": fx.BTF_H,
              "kernel/bpf/helpers.c": fx.ERA_6_1, **filler}, "Linux 6.1")
    first = b.repo[b.head].tree
    b.commit({"kernel/bpf/helpers.c": b"\0binary\0" + fx.ERA_6_12.encode(),  # changed, and binary to git
              "drivers/d1/f1.c": "/* a kfunc word, no set */\n", "drivers/d2/new.c": "int n;\n"}, "Linux 6.12")
    second = b.repo[b.head].tree
    objects = sorted(p.name for p in (tmp_path / "repo" / ".git" / "objects").rglob("*"))

    greps = []
    real_listed = grep.BlobGrep.listed

    def spy(self):
        got = list(real_listed(self))
        greps.append((sorted(got), self.complete))
        yield from got

    monkeypatch.setattr(grep.BlobGrep, "listed", spy)
    state = Cache(tmp_path / "state")
    Scanner(b.repo, state, jobs=2).inventory_of_tree(first, "", "v6.1")
    assert greps == []  # a cold cache: the whole tree's grep
    grepped = Scanner(b.repo, state, jobs=2).inventory_of_tree(second, "", "v6.12").to_json(True)
    changed = {str(second["kernel/bpf/helpers.c"].id), str(second["drivers/d1/f1.c"].id)}
    assert greps == [(sorted(changed), True)]  # the 3 new blobs read, the 2 holding a word listed
    every_blob = Scanner(b.repo, jobs=1).inventory_of_tree(second, "", "v6.12").to_json(True)
    assert grepped == every_blob and "scx_bpf_select_cpu_dfl" in {k["name"] for k in grepped["kfuncs"]}
    assert not list((tmp_path / "tmp").iterdir())  # the scratch tree is gone
    assert sorted(p.name for p in (tmp_path / "repo" / ".git" / "objects").rglob("*")) == objects

    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    greps.clear()
    fresh = Cache(tmp_path / "state2")
    Scanner(b.repo, fresh, jobs=1).inventory_of_tree(first, "", "v6.1")
    assert Scanner(b.repo, fresh, jobs=2).inventory_of_tree(second, "", "v6.12").to_json(True) == every_blob
    assert greps == [([], False)]  # no git: nothing listed, every new blob read here
