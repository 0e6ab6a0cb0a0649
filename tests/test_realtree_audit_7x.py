"""The audit on real trees in the 7.x era: every non-test kfunc of v6.12 declared stable, then v6.12..v7.2.

Each break below was found by hand in Debian's linux-source-6.12 and
linux-source-7.2 (git grep / git show on the kernel_repo tags); the comments
give file:line in both trees. Everything else the audit reports must be a
warning or info: a default the tree changed, integer widths, moves, and
names policybot does not know.

Line numbers in comments are those of linux-source-6.1 6.1.192-3, linux-source-6.12
6.12.117-1~deb12u1 and linux-source-7.2 7.2.13-1. The assertions find each line by its
text (tests/kit/realtree.py): another point release moves the comments' numbers, not the
expectations.
"""

import json
import re
import subprocess
import sys

import pytest

from kit.realtree import at

pytestmark = pytest.mark.realtree

# (rule, kfunc): why it breaks a program built against 6.12
REAL_BREAKS = {
    # 6.12 kernel/bpf/helpers.c:2870 bpf_wq_set_callback_impl(wq, callback_fn, flags, void *aux__ign),
    # listed at :3163. 7.2 has only kernel/bpf/helpers.c:3447 bpf_wq_set_callback(wq, callback_fn, flags,
    # struct bpf_prog_aux *aux) with KF_IMPLICIT_ARGS (:4918): programs passed 4 arguments, the new name
    # takes 3 (aux__ign was the program's, aux is the verifier's), and the old name is in no set.
    ("KFUNC_REMOVED", "bpf_wq_set_callback_impl"),
    # 6.12 kernel/cgroup/rstat.c:137 cgroup_rstat_updated(struct cgroup *, int), :360
    # cgroup_rstat_flush(struct cgroup *), listed at :657-658. 7.2 rstat.c:129/:409 css_rstat_updated/
    # css_rstat_flush take struct cgroup_subsys_state * (listed :757-758): another struct, so not a rename.
    ("KFUNC_REMOVED", "cgroup_rstat_updated"),
    ("KFUNC_REMOVED", "cgroup_rstat_flush"),
    # 6.12 net/ipv4/tcp_bbr.c:332 bbr_cwnd_event(sk, enum tcp_ca_event), listed :1163; 7.2 lists
    # bbr_cwnd_event_tx_start(sk) (tcp_bbr.c:333, :1164): one parameter fewer, so not a rename.
    ("KFUNC_REMOVED", "bbr_cwnd_event"),
    # 6.12 net/ipv4/tcp_cubic.c:142 cubictcp_cwnd_event(sk, event), listed :495; 7.2 tcp_cubic.c:142
    # cubictcp_cwnd_event_tx_start(sk), listed :492.
    ("KFUNC_REMOVED", "cubictcp_cwnd_event"),
    # 6.12 kernel/trace/bpf_trace.c:3475 bool bpf_session_is_return(void), :3483 __u64
    # *bpf_session_cookie(void); 7.2 bpf_trace.c:3419/:3427 take (void *ctx), no KF_IMPLICIT_ARGS
    # (:3438-3439): libbpf's extern check counts arguments, so a 6.12 program's prototype no longer matches.
    ("KFUNC_PARAM_ADDED", "bpf_session_is_return"),
    ("KFUNC_PARAM_ADDED", "bpf_session_cookie"),
}
# Upstream renames (old name gone, new name in the same set with the same BPF-visible signature).
RENAMES = {
    # 6.12 kernel/sched/ext.c:6342 scx_bpf_dispatch(p, dsq_id, slice, enq_flags), :6392 KF_RCU;
    # 7.2 kernel/sched/ext/ext.c:8973 scx_bpf_dsq_insert(p, dsq_id, slice, enq_flags,
    # const struct bpf_prog_aux *aux), :9092 KF_IMPLICIT_ARGS | KF_RCU: aux is the verifier's.
    "scx_bpf_dispatch": "scx_bpf_dsq_insert",
    # 6.12 ext.c:6537 bool scx_bpf_consume(u64 dsq_id), :6668; 7.2 ext/ext.c:9320
    # bool scx_bpf_dsq_move_to_local(u64 dsq_id, const struct bpf_prog_aux *aux), :9464 KF_IMPLICIT_ARGS.
    "scx_bpf_consume": "scx_bpf_dsq_move_to_local",
    # 6.12 ext.c:6373 / :6393 -> 7.2 ext/ext.c:9057 / :9095
    "scx_bpf_dispatch_vtime": "scx_bpf_dsq_insert_vtime",
    # 6.12 ext.c:6576, :6595, :6629, :6655 (listed :6669-6672) -> 7.2 ext/ext.c:9334, :9353, :9387,
    # :9412 (listed :9467-9470), same parameters
    "scx_bpf_dispatch_from_dsq_set_slice": "scx_bpf_dsq_move_set_slice",
    "scx_bpf_dispatch_from_dsq_set_vtime": "scx_bpf_dsq_move_set_vtime",
    "scx_bpf_dispatch_from_dsq": "scx_bpf_dsq_move",
    "scx_bpf_dispatch_vtime_from_dsq": "scx_bpf_dsq_move_vtime",
}


def _audit(kernel_repo, kernel_state, policy, head, base):
    from policybot.kernel.gitrepo import open_repo
    from policybot.kernel.scanner import Scanner
    from policybot.policy.audit import Auditor
    from policybot.policy.config import load_policy
    repo = open_repo(kernel_repo)
    return Auditor(repo, Scanner(repo, kernel_state), load_policy(policy)).audit(head, base)


@pytest.fixture(scope="module")
def v612_stable(kernel_repo, kernel_state, tmp_path_factory):
    from policybot.kernel.gitrepo import open_repo
    from policybot.kernel.scanner import Scanner
    inv = Scanner(open_repo(kernel_repo), kernel_state).inventory("v6.12")
    names = sorted(k.name for k in inv.selected(False))
    d = tmp_path_factory.mktemp("policy7x")
    (d / "overlay.yaml").write_text("kfuncs:\n" + "".join(f"  {n}:\n    stability: stable\n" for n in names))
    (d / "policy.toml").write_text(f'[declarations]\noverlay = "{d / "overlay.yaml"}"\n')
    return str(d / "policy.toml")


@pytest.fixture(scope="module")
def result(kernel_repo, kernel_state, v612_stable):
    return _audit(kernel_repo, kernel_state, v612_stable, "v7.2", "v6.12")


def test_every_real_break_and_nothing_else_is_a_violation(result):
    violations = {(f.rule, k) for f in result.findings if f.verdict == "violation" for k in f.members}
    expected = REAL_BREAKS | {("KFUNC_RENAMED", old) for old in RENAMES}
    assert violations == expected, violations ^ expected
    for f in result.findings:
        if f.verdict == "violation":
            assert f.promise.declaration.level == "stable" and f.promise.level_key == "stable", f


def test_the_upstream_renames_are_one_finding_naming_each_target(result):
    # the 7 scx renames (scx_bpf_dispatch* -> scx_bpf_dsq_insert*, scx_bpf_consume and the
    # dispatch_from_dsq family -> scx_bpf_dsq_move*), all registered in 6.12 kernel/sched/ext.c: one cause
    (renamed,) = [f for f in result.findings if f.rule == "KFUNC_RENAMED"]
    assert renamed.members == tuple(sorted(RENAMES))
    said = renamed.message.split("; ")
    for old, new in RENAMES.items():
        assert f"{old}: renamed to {new} (same BPF-visible signature, same set)" in said
    # the new names are nowhere else (but in the tree's own dated notes about them, the ledger's)
    named = {n for f in result.findings if not f.rule.startswith("LEDGER_") for n in f.members}
    assert not named & set(RENAMES.values())
    assert not {f.kfunc for f in result.findings if f.rule == "KFUNC_REMOVED"} & set(RENAMES)


def test_implicit_const_aux_is_not_a_new_parameter(result):
    # 6.12 kernel/sched/ext.c:6792 scx_bpf_kick_cpu(s32 cpu, u64 flags); 7.2 ext/ext.c:9709
    # scx_bpf_kick_cpu(s32 cpu, u64 flags, const struct bpf_prog_aux *aux) with KF_IMPLICIT_ARGS
    assert not [f for f in result.findings if f.rule in ("KFUNC_PARAM_ADDED", "KFUNC_PARAM_TYPE_CHANGED")
                and f.kfunc.startswith("scx_")]
    (implicit,) = [f for f in result.findings if f.rule == "KFUNC_FLAGS_RELAXED"
                   and "+KF_IMPLICIT_ARGS" in f.message]
    assert "scx_bpf_kick_cpu" in implicit.members and len(implicit.members) > 10


# 7.2 kernel/bpf/verifier.c:10981-10990 kf_arg_btf_ids: structs with an argument kind of their own
OWN_KIND = {"bpf_dynptr", "bpf_list_head", "bpf_list_node", "bpf_rb_root", "bpf_rb_node", "bpf_wq",
            "bpf_res_spin_lock", "bpf_task_work", "bpf_prog_aux", "bpf_timer"}
# 7.2 verifier.c:10903-10945 suffixes of arguments with a kind of their own (or skipped, __ign); __map
# (:10908) is trust-checked but a program can only pass its own map, trusted by construction
OWN_KIND_SUFFIXES = ("__ign", "__str", "__refcounted_kptr", "__irq_flag", "__iter", "__uninit", "__map")


def _contexts(kernel_repo, prog_types) -> set[str]:
    """Struct names include/linux/bpf_types.h gives as the program types' context (prog or kernel side)."""
    text = _show(kernel_repo, "v7.2", "include/linux/bpf_types.h")
    out = set()
    for m in re.finditer(r"BPF_PROG_TYPE\(BPF_PROG_TYPE_(\w+),\s*\w+,\s*([^,]+),\s*([^)]+)\)", text):
        if m.group(1) in prog_types or "UNSPEC" in prog_types:
            out |= set(re.findall(r"struct (\w+)", m.group(2) + " " + m.group(3)))
    return out


def _struct_of_scalars(kernel_repo, path: str, name: str) -> bool:
    """``struct name`` is defined in ``path`` (6.12) with scalar members only: programs pass it as memory."""
    m = re.search(rf"^struct {name} {{(.*?)^}};", _show(kernel_repo, "v6.12", path), re.S | re.M)
    return bool(m) and "*" not in m.group(1) and "struct " not in m.group(1)


def _trusted_reading(k, kernel_repo) -> bool:
    """A 6.12 kfunc takes an argument 7.2's verifier holds to trusted (KF_ARG_PTR_TO_BTF_ID): read here
    from the C parameter text, as get_kfunc_ptr_arg_type (7.2 verifier.c:11421) classifies it."""
    params = k.definition.signature.params
    ctx = _contexts(kernel_repo, k.prog_types)
    for i, p in enumerate(params):
        m = re.fullmatch(r"(?:const )?struct (\w+) \*", p.type.strip())
        if not m or m.group(1) in OWN_KIND | ctx or m.group(1).startswith("bpf_iter_"):
            continue  # not a struct pointer (memory, scalar, callback), its own kind, the context, an iterator
        if p.name.endswith(OWN_KIND_SUFFIXES) or _struct_of_scalars(kernel_repo, k.definition.location.path,
                                                                    m.group(1)):
            continue
        if i + 1 < len(params) and params[i + 1].name.endswith(("__sz", "__szk")):
            continue  # memory and its size (KF_ARG_PTR_TO_MEM_SIZE)
        return True
    return False


# 6.12 net/ipv4/fou_bpf.c:15 struct bpf_fou_encap { __be16 sport; __be16 dport; } and
# net/xfrm/xfrm_interface_bpf.c:25 struct bpf_xfrm_info { u32 if_id; int link; }: structs of scalars that
# programs fill on their stack, which the verifier takes as memory (KF_ARG_PTR_TO_MEM), so the default
# does not reach them. policybot reads those bodies (facts._scalar_structs) and leaves the four out.
SCALAR_STRUCT_KFUNCS = {"bpf_skb_get_fou_encap", "bpf_skb_set_fou_encap", "bpf_skb_get_xfrm_info",
                        "bpf_skb_set_xfrm_info"}


def test_trusted_args_default_is_one_finding_for_pointer_kfuncs(result, kernel_repo):
    (f,) = [f for f in result.findings if f.rule == "KFUNC_DEFAULT_CHANGED"]
    assert f.verdict == "warning"
    # the definition it quotes: 6.12 include/linux/btf.h:69
    assert str(f.location) == at(kernel_repo, "v6.12", "include/linux/btf.h", "#define KF_TRUSTED_ARGS")
    assert '"kfunc only takes trusted pointer arguments"' in f.message
    base = result.base
    kept = {k.name for k in base.selected(False)} & {k.name for k in result.head.selected(False)}
    # 6.12 verifier.c:11410 is_kfunc_trusted_args(): KF_TRUSTED_ARGS or KF_RELEASE already were; KF_RCU opts out
    want = {n for n in kept if not {"KF_TRUSTED_ARGS", "KF_RELEASE", "KF_RCU"} & set(base.kfuncs[n].flags)
            and _trusted_reading(base.kfuncs[n], kernel_repo)}
    assert set(f.members) == want, set(f.members) ^ want
    assert not SCALAR_STRUCT_KFUNCS & want
    # each of the four points to its file's struct of scalars, and the inventory says which
    for name, struct in (("bpf_skb_get_fou_encap", "bpf_fou_encap"), ("bpf_skb_set_xfrm_info", "bpf_xfrm_info")):
        assert result.head.kfuncs[name].definition.scalar_structs == (struct,)
    # a struct with a pointer is not one (7.2 kernel/bpf/helpers.c bpf_task_acquire(struct task_struct *))
    assert result.head.kfuncs["bpf_task_acquire"].definition.scalar_structs == ()
    # the reviewer's count: 23 TCP congestion-control kfuncs (struct sock * / struct tcp_sock *),
    # 5 hid_bpf_* (struct hid_bpf_ctx *), bpf_verify_pkcs7_signature (struct bpf_key *), crash_kexec
    # (struct pt_regs *)
    tcp = {n for n in want if n.startswith(("bbr_", "cubictcp_", "dctcp_", "tcp_"))}
    hid = {n for n in want if n.startswith("hid_bpf_")}
    assert (len(tcp), len(hid), len(want)) == (23, 5, 30)
    assert want - tcp - hid == {"bpf_verify_pkcs7_signature", "crash_kexec"}
    # 6.12 helpers.c:2743 bpf_dynptr_size(const struct bpf_dynptr *): its own kind; helpers.c:3133
    # bpf_cast_to_kern_ctx(void *obj), ext.c:7470 scx_bpf_kick_cpu(s32, u64); KF_RCU opts out
    # (helpers.c:3100 bpf_task_acquire); filter.c bpf_dynptr_from_xdp(struct xdp_md *): XDP's context
    assert not {"bpf_dynptr_size", "bpf_cast_to_kern_ctx", "scx_bpf_kick_cpu", "bpf_task_acquire",
                "bpf_dynptr_from_xdp", "bpf_iter_num_new", "bpf_rbtree_add_impl"} & set(f.members)
    assert not [g for g in result.findings if "+KF_TRUSTED_ARGS" in g.message]


def test_opt_renamed_to_nullable_is_one_info(result, kernel_repo):
    # 6.12 kernel/bpf/verifier.c:11461 matches "__opt"; 7.2 verifier.c matches "__nullable" (:10930) and no
    # "__opt"; 6.12 helpers.c:2590 void *buffer__opt became 7.2 helpers.c:3052 void *buffer__nullable
    (f,) = [f for f in result.findings if f.rule == "KFUNC_SUFFIX_RENAMED"]
    assert f.verdict == "info" and f.members == ("bpf_dynptr_slice", "bpf_dynptr_slice_rdwr")
    opt = at(kernel_repo, "v6.12", "kernel/bpf/verifier.c", 'btf_param_match_suffix(btf, arg, "__opt")')
    assert f"{opt} (v6.12)" in f.message


def test_unknown_suffix_of_72_is_reported_once(result, kernel_repo):
    # 7.2 kernel/bpf/verifier.c:10935 btf_param_match_suffix(btf, arg, "__nonown_allowed")
    (f,) = [f for f in result.findings if "__nonown_allowed" in f.message]
    assert f.rule == "KFUNC_NEEDS_REVIEW" and str(f.location) == at(
        kernel_repo, "v7.2", "kernel/bpf/verifier.c", 'btf_param_match_suffix(btf, arg, "__nonown_allowed")')


def test_arena_flags_the_verifier_never_reads_are_compatible(result):
    # 7.2 kernel/bpf/arena.c:1116-1117 add KF_ARENA_RET/KF_ARENA_ARG2; 7.2 kernel/bpf/verifier.c and
    # btf.c never mention KF_ARENA_* (only include/linux/btf.h:78-80 does)
    arena = [f for f in result.findings if "KF_ARENA" in f.message]
    assert arena and all(f.rule == "KFUNC_FLAGS_RELAXED" and f.verdict == "info" for f in arena)


def test_a_few_dozen_findings_with_one_per_cause(result):
    # the change's findings; the tree's dated notes that became due or new in the range are the
    # ledger's (tests/test_realtree_ledger.py)
    changes = [f for f in result.findings if not f.rule.startswith("LEDGER_")]
    assert len(changes) <= 40, len(changes)
    causes = [(f.rule, f.cause) for f in result.findings if f.cause]
    assert len(causes) == len(set(causes))
    moved = [f for f in result.findings if f.rule == "KFUNC_MOVED"
             and "instead of kernel/sched/ext.c" in f.message and len(f.members) > 1]
    # kernel/sched/ext.c was split into kernel/sched/ext/ext.c and idle.c: one finding per new file
    assert sorted(re.search(r"registered in (\S+) instead", f.message).group(1) for f in moved) == \
        ["kernel/sched/ext/ext.c", "kernel/sched/ext/idle.c"]


def test_semantics_read_from_each_tree(kernel_repo, kernel_state):
    from policybot.kernel.gitrepo import open_repo
    from policybot.kernel.scanner import Scanner
    scanner = Scanner(open_repo(kernel_repo), kernel_state)
    s61, s612, s72 = (scanner.inventory(r).semantics for r in ("v6.1", "v6.12", "v7.2"))
    # 6.1 include/linux/btf.h:19 KF_KPTR_GET (1 << 3); 6.1 checks only "__sz", kernel/bpf/btf.c:6230
    btf_h = "include/linux/btf.h"
    assert (s61.flag("KF_KPTR_GET").bit, str(s61.flag("KF_KPTR_GET").location)) == (
        3, at(kernel_repo, "v6.1", btf_h, "#define KF_KPTR_GET"))
    assert s61.suffix_names == ("__sz",) and str(s61.suffix("__sz").location) == at(
        kernel_repo, "v6.1", "kernel/bpf/btf.c", 'strncmp(param_name, "__sz", sfx_len)')
    assert str(s612.flag("KF_TRUSTED_ARGS").location) == at(kernel_repo, "v6.12", btf_h, "#define KF_TRUSTED_ARGS")
    assert s72.flag("KF_TRUSTED_ARGS") is None
    assert (s72.flag("KF_IMPLICIT_ARGS").bit, str(s72.flag("KF_IMPLICIT_ARGS").location)) == \
        (16, at(kernel_repo, "v7.2", btf_h, "#define KF_IMPLICIT_ARGS"))
    assert "__opt" in s612.suffix_names and "__opt" not in s72.suffix_names
    # 7.2 tools/bpf/resolve_btfids/main.c:1066 kf_implicit_arg_types[] = { "bpf_prog_aux", "btf_struct_meta" }
    assert s72.implicit_structs == ("bpf_prog_aux", "btf_struct_meta")
    assert str(s72.implicit_location) == at(kernel_repo, "v7.2", "tools/bpf/resolve_btfids/main.c",
                                            "kf_implicit_arg_types[] = {")
    assert s72.enforced("KF_ARENA_RET") is False and s72.enforced("KF_IMPLICIT_ARGS") is True


def test_cli_json_keeps_the_list_and_text_shows_the_cause_once(kernel_repo, kernel_state, v612_stable, monkeypatch):
    monkeypatch.setenv("POLICYBOT_STATE_DIR", str(kernel_state.state_dir))
    args = [sys.executable, "-m", "policybot", "audit", "--repo", kernel_repo, "--base", "v6.12",
            "--rev", "v7.2", "--policy", v612_stable]
    js = subprocess.run(args + ["--format", "json"], capture_output=True, text=True)
    assert js.returncode == 1, js.stderr
    doc = json.loads(js.stdout)
    # bpf_session_is_return and bpf_session_cookie took the same (void *ctx): one cause, one finding;
    # cgroup_rstat_updated and cgroup_rstat_flush left one set: one; the 7 renames of one file: one
    assert doc["counts"]["violation"] == len(REAL_BREAKS) - 1 - 1 + 1
    (default,) = [f for f in doc["findings"] if f["rule"] == "KFUNC_DEFAULT_CHANGED"]
    assert "bbr_init" in default["kfuncs"] and len(default["kfuncs"]) > 20
    text = subprocess.run(args, capture_output=True, text=True)
    assert text.stdout.count("[KFUNC_DEFAULT_CHANGED]") == 1
    line = next(ln for ln in text.stdout.splitlines() if "[KFUNC_DEFAULT_CHANGED]" in ln)
    # located in 6.12 (7.2 has no KF_TRUSTED_ARGS): the line is 7.2's where the definition was, the
    # line of the next flag (the comment above it stayed), and it says where 6.12 defined it
    defined = at(kernel_repo, "v6.12", "include/linux/btf.h", "#define KF_TRUSTED_ARGS")
    there = at(kernel_repo, "v7.2", "include/linux/btf.h", "#define KF_SLEEPABLE")
    assert line.startswith(f"{there}: warning[KFUNC_DEFAULT_CHANGED]: {len(default['kfuncs'])} kfuncs: ")
    assert line.endswith(f" (was {defined} in v6.12)")
    assert (default["tree"], default["revision"], default["location"], default["hunk"]) == (
        "base", "v6.12", defined, there)


def _show(kernel_repo, rev: str, path: str) -> str:
    return subprocess.run(["git", "-C", kernel_repo, "show", f"{rev}:{path}"], capture_output=True, text=True,
                          check=True).stdout


def _entries_of_filtered_sets(text: str, callback: str) -> set[str]:
    """Entries of the sets whose btf_kfunc_id_set names ``.filter = callback``, read from the C text."""
    sets = {m.group(1): re.findall(r"BTF_ID_FLAGS\(func, (\w+)", m.group(2))
            for m in re.finditer(r"BTF_KFUNCS_START\((\w+)\)(.*?)BTF_KFUNCS_END\(\1\)", text, re.S)}
    out = set()
    for m in re.finditer(r"struct btf_kfunc_id_set \w+ = \{(.*?)\};", text, re.S):
        if re.search(rf"\.filter\s*=\s*{callback}\b", m.group(1)):
            out |= set(sets[re.search(r"\.set\s*=\s*&(\w+)", m.group(1)).group(1)])
    return out


def test_sched_ext_filter_added_is_one_warning_per_file(result, kernel_repo):
    # 7.2 kernel/sched/ext/ext.c:9101, 9479, 9517, 9595, 10798 and idle.c:1518, 1541 register every
    # sched_ext set with .filter = scx_kfunc_context_filter (ext.c:10895); 6.12 kernel/sched/ext.c has no .filter
    assert ".filter" not in _show(kernel_repo, "v6.12", "kernel/sched/ext.c")
    kept = set(re.findall(r"BTF_ID_FLAGS\(func, (\w+)", _show(kernel_repo, "v6.12", "kernel/sched/ext.c")))
    got = {str(f.head_location.path): f for f in result.findings if f.rule == "KFUNC_FILTER_ADDED"
           and "scx_kfunc_context_filter" in f.message}
    assert sorted(got) == ["kernel/sched/ext/ext.c", "kernel/sched/ext/idle.c"]
    for path, f in got.items():
        want = _entries_of_filtered_sets(_show(kernel_repo, "v7.2", path), "scx_kfunc_context_filter") & kept
        assert f.members == tuple(sorted(want)) and f.verdict == "warning", (path, set(f.members) ^ want)
        assert f".filter = scx_kfunc_context_filter ({path})" in f.message
    assert len(got["kernel/sched/ext/ext.c"].members) == 25 and len(got["kernel/sched/ext/idle.c"].members) == 7
    # 6.12 kernel/trace/bpf_trace.c:3512 .filter = bpf_kprobe_multi_filter; 7.2 :3456 bpf_session_filter
    (session,) = [f for f in result.findings if f.rule == "KFUNC_FILTER_ADDED" and f not in got.values()]
    assert session.members == ("bpf_session_cookie", "bpf_session_is_return")
    assert "bpf_session_filter (kernel/trace/bpf_trace.c) instead of bpf_kprobe_multi_filter" in session.message
    # 7.2 net/sched/bpf_qdisc.c:350 filters its set, registered only for STRUCT_OPS (:470), where
    # bpf_dynptr_from_skb was never registered in 6.12: it refuses nothing a 6.12 program did
    assert not [f for f in result.findings if f.rule == "KFUNC_FILTER_ADDED" and "bpf_qdisc" in f.message]


def test_a_registration_gained_in_another_file_is_not_a_move(result):
    # 7.2 net/sched/bpf_qdisc.c:283 lists bpf_dynptr_from_skb in its own set; net/core/filter.c:12559
    # still registers it, as 6.12 filter.c did: nothing moved
    assert not [f for f in result.findings if f.rule == "KFUNC_MOVED" and "bpf_dynptr_from_skb" in f.members]
    # kernel/sched/ext.c is gone in 7.2: scx_bpf_select_cpu_dfl, listed in 7.2 ext/ext.c and ext/idle.c, moved
    (f,) = [f for f in result.findings if f.rule == "KFUNC_MOVED" and "scx_bpf_select_cpu_dfl" in f.members]
    assert f.message == "registered in kernel/sched/ext/ext.c, kernel/sched/ext/idle.c instead of kernel/sched/ext.c"


def test_messages_say_parameter_in_the_singular_and_what_signature_is_the_same(result):
    # 6.12 bpf_trace.c:3475 bpf_session_is_return(void) -> 7.2 :3419 bpf_session_is_return(void *ctx)
    (f,) = [f for f in result.findings if f.rule == "KFUNC_PARAM_ADDED" and "bpf_session_is_return" in f.members]
    assert f.message == "takes 1 parameter instead of 0: (void) became (void *ctx)"
    (r,) = [f for f in result.findings if f.rule == "KFUNC_RENAMED" and "scx_bpf_dispatch" in f.members]
    assert "scx_bpf_dispatch: renamed to scx_bpf_dsq_insert (same BPF-visible signature, same set)" in \
        r.message.split("; ")


def test_u32_to_s32_is_signedness_not_width(result, kernel_repo):
    # 6.12 kernel/trace/bpf_trace.c:1268 bpf_lookup_user_key(u32 serial, u64 flags);
    # 7.2 kernel/bpf/helpers.c:4226 bpf_lookup_user_key(s32 serial, u64 flags): both 32 bits
    (f,) = [f for f in result.findings if f.kfunc == "bpf_lookup_user_key"]
    assert (f.rule, f.verdict, str(f.location)) == ("KFUNC_SIGNEDNESS_CHANGED", "info", at(
        kernel_repo, "v7.2", "kernel/bpf/helpers.c", "__bpf_kfunc struct bpf_key *bpf_lookup_user_key("))
    assert f.message == ("parameter 1 (serial) changed from 'u32' to 's32' (signedness only, same width: "
                         "neither libbpf nor the verifier tells them apart)")
    # widths that do change stay a review: 6.12 helpers.c bpf_dynptr_adjust(..., u32 start, u32 end),
    # 7.2 helpers.c:3174 (..., u64 start, u64 end)
    widths = [f for f in result.findings if f.rule == "KFUNC_NEEDS_REVIEW" and "(integer width)" in f.message]
    assert {k for f in widths for k in f.members} == {"bpf_dynptr_slice", "bpf_dynptr_slice_rdwr",
                                                      "bpf_dynptr_adjust", "bpf_dynptr_size"}


def test_the_dynptr_widening_is_one_finding(result, kernel_repo):
    # one cause, u32 -> u64, reaching 7 places of 4 kfuncs (6.12 kernel/bpf/helpers.c -> 7.2 helpers.c:3051,
    # :3141, :3174, and bpf_dynptr_size's __u32 return -> u64): one finding, not 7
    (f,) = [f for f in result.findings if f.rule == "KFUNC_NEEDS_REVIEW" and "(integer width)" in f.message]
    assert f.members == ("bpf_dynptr_adjust", "bpf_dynptr_size", "bpf_dynptr_slice", "bpf_dynptr_slice_rdwr")
    assert f.cause == "width:u32->u64"
    assert str(f.location) == at(kernel_repo, "v7.2", "kernel/bpf/helpers.c",
                                 "__bpf_kfunc void *bpf_dynptr_slice(const struct bpf_dynptr *p, u64 offset,")
    assert f.message == (
        "bpf_dynptr_adjust: parameter 2 (start) changed from 'u32' to 'u64' (integer width), parameter 3 (end) "
        "changed from 'u32' to 'u64' (integer width); bpf_dynptr_size: return type '__u32' became 'u64' "
        "(integer width); bpf_dynptr_slice: parameter 2 (offset) changed from 'u32' to 'u64' (integer width), "
        "parameter 4 (buffer__szk) changed from 'u32' to 'u64' (integer width); bpf_dynptr_slice_rdwr: "
        "parameter 2 (offset) changed from 'u32' to 'u64' (integer width), parameter 4 (buffer__szk) changed "
        "from 'u32' to 'u64' (integer width)")


def test_the_session_kfuncs_gaining_ctx_is_one_finding(result):
    # 6.12 bpf_trace.c bpf_session_is_return(void) and bpf_session_cookie(void) -> 7.2 both (void *ctx)
    (f,) = [f for f in result.findings if f.rule == "KFUNC_PARAM_ADDED"]
    assert f.members == ("bpf_session_cookie", "bpf_session_is_return") and f.verdict == "violation"


def test_a_removed_kfunc_points_at_its_place_in_72(result, kernel_repo):
    # 6.12 helpers.c:3163 listed bpf_wq_set_callback_impl after bpf_wq_init; 7.2 helpers.c:4917 lists
    # bpf_wq_init, then (:4918) bpf_wq_set_callback where the old entry was
    (f,) = [f for f in result.findings if f.rule == "KFUNC_REMOVED" and f.kfunc == "bpf_wq_set_callback_impl"]
    assert str(f.base_location) == at(kernel_repo, "v6.12", "kernel/bpf/helpers.c",
                                      "BTF_ID_FLAGS(func, bpf_wq_set_callback_impl)")
    assert f.where == at(kernel_repo, "v7.2", "kernel/bpf/helpers.c", "BTF_ID_FLAGS(func, bpf_wq_set_callback,")
    assert (f.tree, f.base_rev, f.was) == ("base", "v6.12", f"{f.base_location} in v6.12")
    # 6.12 tcp_bbr.c:1163 bbr_cwnd_event, after bbr_undo_cwnd; 7.2 :1164 bbr_cwnd_event_tx_start there
    (bbr,) = [f for f in result.findings if f.rule == "KFUNC_REMOVED" and f.kfunc == "bbr_cwnd_event"]
    assert bbr.where == at(kernel_repo, "v7.2", "net/ipv4/tcp_bbr.c", "BTF_ID_FLAGS(func, bbr_cwnd_event_tx_start)")


def test_kfuncs_removed_from_one_set_are_one_finding(result, kernel_repo):
    # 6.12 kernel/cgroup/rstat.c:657-658 list cgroup_rstat_updated and cgroup_rstat_flush in
    # bpf_rstat_kfunc_ids; 7.2 lists css_rstat_* there instead: one removal from one set
    (f,) = [f for f in result.findings if f.rule == "KFUNC_REMOVED" and "cgroup_rstat_flush" in f.members]
    assert f.members == ("cgroup_rstat_flush", "cgroup_rstat_updated")
    assert f.message == "is no longer in any registered kfunc set"
    # bbr and cubic lose their cwnd_event in two files' sets: two causes as policybot sees them
    assert len([g for g in result.findings if g.rule == "KFUNC_REMOVED"]) == 4


def test_one_flags_edit_of_one_kfunc_is_one_finding(result):
    # 7.2 kernel/bpf/arena.c:1116 bpf_arena_alloc_pages drops KF_SLEEPABLE and gains KF_ARENA_ARG2 and
    # KF_ARENA_RET (never read by the verifier): one edit, one finding with both messages
    (f,) = [f for f in result.findings if f.rule == "KFUNC_FLAGS_RELAXED" and "bpf_arena_alloc_pages" in f.members]
    assert f.members == ("bpf_arena_alloc_pages",)
    assert f.message.startswith("flags -KF_SLEEPABLE: compatible, flags +KF_ARENA_ARG2 +KF_ARENA_RET: compatible: ")
