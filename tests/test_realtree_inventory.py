"""The scanner against the real trees (Debian linux-source 6.1 and 6.12; 7.2 for build guards).

Every expected value below was checked by reading the kernel source (grep,
sed) by hand, not copied from the scanner's output; the comments give the
file and line. The counts are re-derived by an independent helper
(``independent_count``, tests/kit/realtree.py) that follows registration in
the sources itself.
Line numbers in comments are those of linux-source-6.1 6.1.192-3 and
linux-source-6.12 6.12.117-1~deb12u1. The assertions find each line by its
text (tests/kit/realtree.py): another point release moves the comments' numbers, not the
expectations.

Tests marked ``xfail(strict=True)`` document scanner bugs: they pass once
the bug is fixed (and then the marker must go).
"""

from __future__ import annotations

import difflib
import re

import pygit2
import pytest

from kit.realtree import at, independent_count, line_of, listed, source_tree

pytestmark = pytest.mark.realtree

REVS = ("v6.1", "v6.12")
TCP_CA_FILES = ("net/ipv4/tcp_bbr.c", "net/ipv4/tcp_cubic.c", "net/ipv4/tcp_dctcp.c")


# -- independent derivation of the kfunc list: independent_count (tests/kit/realtree.py says how) --

@pytest.fixture(scope="module")
def independent(kernel_repo):
    return {rev: independent_count(source_tree(kernel_repo, rev)) for rev in REVS}


# -- counts ----------------------------------------------------------------------------

# (total, without test kfuncs, files holding kfunc sets): derived as described above
EXPECTED_COUNTS = {"v6.1": (68, 43, 11), "v6.12": (260, 201, 27)}


@pytest.mark.parametrize("rev", REVS)
def test_independent_count_gives_verified_numbers(independent, rev):
    k = independent[rev]
    set_files = {p for v in k.values() for p in v["sets"]}
    non_test = [n for n, v in k.items() if not v["test"]]
    total, without_tests, nfiles = EXPECTED_COUNTS[rev]
    assert len(k) == total
    assert len(non_test) == without_tests
    assert len(set_files) == nfiles


@pytest.mark.parametrize("rev", REVS)
def test_counts_match_independent_derivation(real_inventories, independent, rev):
    inv = real_inventories[rev]
    k = independent[rev]
    assert set(inv.kfuncs) == set(k)
    assert {n for n, kf in inv.kfuncs.items() if kf.test} == {n for n, v in k.items() if v["test"]}
    for name, kf in inv.kfuncs.items():
        assert {m.location.path for m in kf.memberships} == k[name]["sets"], name
    total, without_tests = len(k), len([n for n, v in k.items() if not v["test"]])
    nfiles = len({p for v in k.values() for p in v["sets"]})
    assert len(inv.kfuncs) == total
    assert len(inv.selected(include_tests=False)) == without_tests
    assert inv.to_json(include_tests=True)["count"] == total
    assert len({m.location.path for kf in inv.kfuncs.values() for m in kf.memberships}) == nfiles


def test_kfuncs_md_count_is_naive(real_inventories, kernel_repo):
    """kfuncs.md's 258 for 6.12 = a line grep that counts the X-macro parameter 'name'."""
    tree = source_tree(kernel_repo, "v6.12")
    naive = set()
    for path, text in tree.c_files(b"register_btf_kfunc_id_set"):
        inside = False
        for ln in text.split("\n"):
            if re.search(r"BTF_(KFUNCS|SET8)_START", ln):
                inside = True
            m = re.search(r"BTF_ID_FLAGS\(func,\s*(\w+)", ln)
            if inside and m:
                naive.add(m.group(1))
            if re.search(r"BTF_(KFUNCS|SET8)_END", ln):
                inside = False
    # fmod_ret-only names (net/mptcp/bpf.c:24, net/bpf/test_run.c:641,642,644)
    naive -= {"update_socket_protocol", "bpf_modify_return_test", "bpf_modify_return_test2",
              "bpf_fentry_test1"}
    assert len(naive) == 258 and "name" in naive
    kfuncs = real_inventories["v6.12"].kfuncs
    xdp = {"bpf_xdp_metadata_rx_timestamp", "bpf_xdp_metadata_rx_hash", "bpf_xdp_metadata_rx_vlan_tag"}
    assert (naive - {"name"}) | xdp == set(kfuncs)
    assert "name" not in kfuncs


# -- flags and program types ----------------------------------------------------------

def test_bpf_task_acquire_6_12(real_inventories, kernel_repo):
    k = real_inventories["v6.12"].kfuncs["bpf_task_acquire"]
    # kernel/bpf/helpers.c:3100 BTF_ID_FLAGS(func, bpf_task_acquire, KF_ACQUIRE | KF_RCU | KF_RET_NULL)
    # in generic_btf_ids, registered at helpers.c:3194-3199
    assert k.flags == ("KF_ACQUIRE", "KF_RCU", "KF_RET_NULL")
    assert set(k.prog_types) == {"TRACING", "SCHED_CLS", "XDP", "STRUCT_OPS", "SYSCALL", "CGROUP_SKB"}
    (m,) = k.memberships
    helpers = "kernel/bpf/helpers.c"
    assert (m.set_name, m.set_macro, str(m.location)) == (
        "generic_btf_ids", "BTF_KFUNCS", at(kernel_repo, "v6.12", helpers, "BTF_ID_FLAGS(func, bpf_task_acquire,"))
    assert str(k.definition.location) == at(kernel_repo, "v6.12", helpers,
                                            "__bpf_kfunc struct task_struct *bpf_task_acquire(")
    assert k.definition.signature.render("bpf_task_acquire") == \
        "struct task_struct *bpf_task_acquire(struct task_struct *p)"
    assert not k.test and k.guards == ()


def test_flags_6_1(real_inventories):
    ks = real_inventories["v6.1"].kfuncs
    # net/bpf/test_run.c:751 ... KF_ACQUIRE | KF_RET_NULL | KF_KPTR_GET
    assert ks["bpf_kfunc_call_test_kptr_get"].flags == ("KF_ACQUIRE", "KF_KPTR_GET", "KF_RET_NULL")
    # kernel/trace/bpf_trace.c:1385 KF_ACQUIRE | KF_RET_NULL | KF_SLEEPABLE
    assert ks["bpf_lookup_user_key"].flags == ("KF_ACQUIRE", "KF_RET_NULL", "KF_SLEEPABLE")
    # net/netfilter/nf_conntrack_bpf.c:479 KF_ACQUIRE | KF_RET_NULL | KF_RELEASE
    assert ks["bpf_ct_insert_entry"].flags == ("KF_ACQUIRE", "KF_RELEASE", "KF_RET_NULL")
    # kernel/bpf/helpers.c:1820 crash_kexec KF_DESTRUCTIVE, TRACING only (helpers.c:1831)
    assert ks["crash_kexec"].flags == ("KF_DESTRUCTIVE",)
    assert ks["crash_kexec"].prog_types == ("TRACING",)
    # nf_conntrack: XDP and SCHED_CLS (nf_conntrack_bpf.c:496-497)
    assert set(ks["bpf_xdp_ct_lookup"].prog_types) == {"XDP", "SCHED_CLS"}
    # test_run.c:1740-1742: SCHED_CLS, TRACING, SYSCALL
    assert set(ks["bpf_kfunc_call_test1"].prog_types) == {"SCHED_CLS", "TRACING", "SYSCALL"}
    assert ks["bpf_kfunc_call_test1"].flags == ()


def test_flags_and_prog_types_6_12(real_inventories):
    ks = real_inventories["v6.12"].kfuncs
    # fs/bpf_fs_kfuncs.c:158-159, an entry over two lines; LSM only with a filter (:174-182)
    k = ks["bpf_get_task_exe_file"]
    assert k.flags == ("KF_ACQUIRE", "KF_RET_NULL", "KF_TRUSTED_ARGS")
    assert k.prog_types == ("LSM",)
    assert k.memberships[0].filter == "bpf_fs_kfuncs_filter"
    # net/core/filter.c:12184 + registrations :12223-12233 (11 program types)
    assert set(ks["bpf_dynptr_from_skb"].prog_types) == {
        "SCHED_CLS", "SCHED_ACT", "SK_SKB", "SOCKET_FILTER", "CGROUP_SKB", "LWT_OUT", "LWT_IN",
        "LWT_XMIT", "LWT_SEG6LOCAL", "NETFILTER", "TRACING"}
    assert ks["bpf_dynptr_from_xdp"].prog_types == ("XDP",)
    assert ks["bpf_sock_addr_set_sun_path"].prog_types == ("CGROUP_SOCK_ADDR",)
    # kernel/trace/bpf_trace.c:3494-3495, KPROBE with bpf_kprobe_multi_filter
    assert ks["bpf_session_cookie"].prog_types == ("KPROBE",)
    assert ks["bpf_session_cookie"].memberships[0].filter == "bpf_kprobe_multi_filter"
    # net/core/filter.c:12283 bpf_sock_destroy KF_TRUSTED_ARGS, TRACING, tracing_iter_filter
    assert ks["bpf_sock_destroy"].memberships[0].filter == "tracing_iter_filter"
    # kernel/bpf/crypto.c:356 KF_ACQUIRE | KF_RET_NULL | KF_SLEEPABLE, SYSCALL only (:393)
    assert ks["bpf_crypto_ctx_create"].flags == ("KF_ACQUIRE", "KF_RET_NULL", "KF_SLEEPABLE")
    assert ks["bpf_crypto_ctx_create"].prog_types == ("SYSCALL",)
    assert set(ks["bpf_crypto_decrypt"].prog_types) == {"SCHED_CLS", "SCHED_ACT", "XDP"}
    # kernel/bpf/helpers.c:3149 KF_ITER_NEW | KF_TRUSTED_ARGS | KF_RCU_PROTECTED
    assert ks["bpf_iter_css_new"].flags == ("KF_ITER_NEW", "KF_RCU_PROTECTED", "KF_TRUSTED_ARGS")
    # kernel/bpf/cpumask.c:427-452, registered TRACING/STRUCT_OPS/SYSCALL (:475-477)
    assert set(ks["bpf_cpumask_create"].prog_types) == {"TRACING", "STRUCT_OPS", "SYSCALL"}
    # hid: two sets (drivers/hid/bpf/hid_bpf_dispatch.c:591,606), STRUCT_OPS (:681) and SYSCALL (:687)
    k = ks["hid_bpf_allocate_context"]
    assert [m.set_name for m in k.memberships] == ["hid_bpf_kfunc_ids", "hid_bpf_syscall_kfunc_ids"]
    assert set(k.prog_types) == {"STRUCT_OPS", "SYSCALL"}
    assert k.flags == ("KF_ACQUIRE", "KF_RET_NULL", "KF_SLEEPABLE")
    assert ks["hid_bpf_get_data"].prog_types == ("STRUCT_OPS",)


def test_unspec_registration_6_12(real_inventories):
    ks = real_inventories["v6.12"].kfuncs
    # kernel/bpf/map_iter.c:217, :227 register_btf_kfunc_id_set(BPF_PROG_TYPE_UNSPEC, ...)
    assert ks["bpf_map_sum_elem_count"].prog_types == ("UNSPEC",)
    assert ks["bpf_map_sum_elem_count"].flags == ("KF_TRUSTED_ARGS",)
    # kernel/bpf/arena.c:587-588, :598 (UNSPEC, its own static common_kfunc_set)
    for name in ("bpf_arena_alloc_pages", "bpf_arena_free_pages"):
        assert ks[name].prog_types == ("UNSPEC",)
        assert ks[name].flags == ("KF_SLEEPABLE", "KF_TRUSTED_ARGS")
        assert ks[name].memberships[0].set_name == "arena_kfuncs"
    # kernel/bpf/helpers.c:3132-3171 common_btf_ids, :3203 UNSPEC
    assert ks["bpf_rcu_read_lock"].prog_types == ("UNSPEC",)
    assert ks["bpf_dynptr_slice"].prog_types == ("UNSPEC",)
    # bpf_testmod.c:1329 UNSPEC
    assert ks["bpf_kfunc_common_test"].prog_types == ("UNSPEC",)


def test_sched_ext_6_12(real_inventories, kernel_repo):
    ks = real_inventories["v6.12"].kfuncs
    scx = {n: k for n, k in ks.items() if n.startswith(("scx_", "bpf_iter_scx_"))}
    # kernel/sched/ext.c sets at 6251, 6391, 6665, 6738, 6767, 7469 hold 38 distinct kfuncs
    assert set(scx) == listed(kernel_repo, "v6.12", "kernel/sched/ext.c")
    assert {n for n, k in ks.items() if any(m.location.path == "kernel/sched/ext.c"
                                            for m in k.memberships)} == set(scx)
    for k in scx.values():
        assert k.definition.location.path == "kernel/sched/ext.c"
        assert "STRUCT_OPS" in k.prog_types
        assert set(k.prog_types) <= {"STRUCT_OPS", "SYSCALL", "TRACING"}
    # ext.c:6392 scx_kfunc_ids_enqueue_dispatch, STRUCT_OPS only (:7522)
    assert ks["scx_bpf_dispatch"].prog_types == ("STRUCT_OPS",)
    assert ks["scx_bpf_dispatch"].flags == ("KF_RCU",)
    # ext.c:6768 scx_kfunc_ids_unlocked, STRUCT_OPS (:7528) and SYSCALL (:7530)
    assert set(ks["scx_bpf_create_dsq"].prog_types) == {"STRUCT_OPS", "SYSCALL"}
    assert ks["scx_bpf_create_dsq"].flags == ("KF_SLEEPABLE",)
    # ext.c:6671 (dispatch) and :6771 (unlocked)
    k = ks["scx_bpf_dispatch_from_dsq"]
    assert [m.set_name for m in k.memberships] == ["scx_kfunc_ids_dispatch", "scx_kfunc_ids_unlocked"]
    assert set(k.prog_types) == {"STRUCT_OPS", "SYSCALL"}
    assert k.definition.signature.params[0].suffix == "__iter"
    # ext.c:7470 scx_kfunc_ids_any: STRUCT_OPS, TRACING, SYSCALL (:7532-7536)
    assert set(ks["scx_bpf_kick_cpu"].prog_types) == {"STRUCT_OPS", "TRACING", "SYSCALL"}
    assert ks["bpf_iter_scx_dsq_new"].flags == ("KF_ITER_NEW", "KF_RCU_PROTECTED")
    # ext.c:6739 and 6252: STRUCT_OPS only
    assert ks["scx_bpf_reenqueue_local"].prog_types == ("STRUCT_OPS",)
    assert ks["scx_bpf_select_cpu_dfl"].prog_types == ("STRUCT_OPS",)


def test_sched_ext_guard_6_12(real_inventories, kernel_repo):
    # kernel/sched/ext.c is compiled only through kernel/sched/build_policy.c:62-64
    # '#ifdef CONFIG_SCHED_CLASS_EXT / # include "ext.c"' (kernel/sched/Makefile: obj-y += build_policy.o)
    scx = [k for k in real_inventories["v6.12"].kfuncs.values()
           if k.location.path == "kernel/sched/ext.c"]
    assert {k.name for k in scx} == listed(kernel_repo, "v6.12", "kernel/sched/ext.c")  # 38
    include = at(kernel_repo, "v6.12", "kernel/sched/build_policy.c", '# include "ext.c"')
    for k in scx:
        assert "CONFIG_SCHED_CLASS_EXT" in k.guards, k.name
        b = next(b for b in k.build if b.condition == "CONFIG_SCHED_CLASS_EXT")
        assert (str(b.location), b.what, b.tristate) == (include, "include", False)


# -- look-alikes that are not kfuncs -------------------------------------------------

NOT_KFUNCS = {
    "v6.1": (
        "security_file_permission", "vfs_truncate", "dentry_open",  # btf_allowlist_d_path, bpf_trace.c:939
        "bpf_lsm_vm_enough_memory", "bpf_lsm_sock_graft",  # kernel/bpf/bpf_lsm.c:40, :74
        "migrate_disable",  # verifier.c:15400 btf_id_deny
        "bpf_modify_return_test",  # test_run.c: ALLOW_ERROR_INJECTION, no kfunc set
    ),
    "v6.12": (
        "update_socket_protocol",  # net/mptcp/bpf.c:24, register_btf_fmodret_id_set (:34)
        "bpf_modify_return_test", "bpf_modify_return_test2", "bpf_fentry_test1",  # test_run.c:641-644, :1795
        "security_file_permission", "vfs_truncate", "dentry_open",  # bpf_trace.c:915 btf_allowlist_d_path
        "bpf_lsm_vm_enough_memory", "bpf_lsm_bpf",  # kernel/bpf/bpf_lsm.c:39, :290
        "migrate_disable", "__filemap_add_folio",  # verifier.c:22864 btf_id_deny, :22507
        "name", "XDP_METADATA_KFUNC",  # the #define at net/core/xdp.c:828
        # dtors (register_btf_id_dtor_kfuncs): cpumask.c:462, crypto.c:378, helpers.c:3126/3129,
        # test_run.c:1777/1779
        "bpf_cpumask_release_dtor", "bpf_crypto_ctx_release_dtor", "bpf_task_release_dtor",
        "bpf_cgroup_release_dtor", "bpf_kfunc_call_test_release_dtor", "bpf_kfunc_call_memb_release_dtor",
    ),
}


@pytest.mark.parametrize("rev", REVS)
def test_look_alikes_are_not_kfuncs(real_inventories, rev):
    kfuncs = real_inventories[rev].kfuncs
    assert [n for n in NOT_KFUNCS[rev] if n in kfuncs] == []


def test_fmodret_set_member_that_is_also_a_kfunc_6_12(real_inventories, kernel_repo):
    # bpf_modify_return_test_tp is in the fmod_ret set (test_run.c:643) and also in
    # common_btf_ids (kernel/bpf/helpers.c:3161, UNSPEC); defined at net/bpf/test_run.c:589
    k = real_inventories["v6.12"].kfuncs["bpf_modify_return_test_tp"]
    assert [(m.set_name, str(m.location)) for m in k.memberships] == \
        [("common_btf_ids", at(kernel_repo, "v6.12", "kernel/bpf/helpers.c",
                               "BTF_ID_FLAGS(func, bpf_modify_return_test_tp)"))]
    assert k.prog_types == ("UNSPEC",)
    assert str(k.definition.location) == at(kernel_repo, "v6.12", "net/bpf/test_run.c",
                                            "__bpf_kfunc int bpf_modify_return_test_tp(")
    # defined in net/bpf/test_run.c: a test kfunc by the documented rule (that is why
    # 6.12 has 201, not 202, kfuncs without test kfuncs)
    assert k.test


# -- definitions ---------------------------------------------------------------------

def test_definitions_in_other_files(real_inventories, kernel_repo):
    v1, v12 = real_inventories["v6.1"].kfuncs, real_inventories["v6.12"].kfuncs
    # listed in net/ipv4/bpf_tcp_ca.c:202 (6.1) / :193 (6.12), defined in tcp_cong.c
    assert str(v1["tcp_reno_cong_avoid"].location) == at(kernel_repo, "v6.1", "net/ipv4/bpf_tcp_ca.c",
                                                         "BTF_ID_FLAGS(func, tcp_reno_cong_avoid)")
    assert str(v1["tcp_reno_cong_avoid"].definition.location) == at(
        kernel_repo, "v6.1", "net/ipv4/tcp_cong.c", "void tcp_reno_cong_avoid(struct sock *sk,")
    assert not v1["tcp_reno_cong_avoid"].definition.marked  # 6.1 has no __bpf_kfunc
    assert str(v12["tcp_reno_cong_avoid"].location) == at(kernel_repo, "v6.12", "net/ipv4/bpf_tcp_ca.c",
                                                          "BTF_ID_FLAGS(func, tcp_reno_cong_avoid)")
    assert str(v12["tcp_reno_cong_avoid"].definition.location) == at(
        kernel_repo, "v6.12", "net/ipv4/tcp_cong.c", "__bpf_kfunc void tcp_reno_cong_avoid(")
    assert v12["tcp_reno_cong_avoid"].definition.marked
    assert not v12["tcp_reno_cong_avoid"].definition.static
    # crash_kexec: listed in kernel/bpf/helpers.c, defined in kexec_core.c:984 (6.1) and
    # crash_core.c:129 (6.12)
    assert str(v1["crash_kexec"].definition.location) == at(kernel_repo, "v6.1", "kernel/kexec_core.c",
                                                            "void crash_kexec(struct pt_regs *regs)")
    assert str(v12["crash_kexec"].definition.location) == at(kernel_repo, "v6.12", "kernel/crash_core.c",
                                                             "__bpf_kfunc void crash_kexec(")
    # listed in helpers.c:3139, defined in kernel/bpf/bpf_iter.c:786
    assert str(v12["bpf_iter_num_new"].definition.location) == at(kernel_repo, "v6.12", "kernel/bpf/bpf_iter.c",
                                                                  "__bpf_kfunc int bpf_iter_num_new(")
    # listed in helpers.c:3142 and :3149, defined in kernel/bpf/task_iter.c:867 and
    # kernel/bpf/cgroup_iter.c:310
    assert str(v12["bpf_iter_task_vma_new"].definition.location) == at(
        kernel_repo, "v6.12", "kernel/bpf/task_iter.c", "__bpf_kfunc int bpf_iter_task_vma_new(")
    assert str(v12["bpf_iter_css_new"].definition.location) == at(
        kernel_repo, "v6.12", "kernel/bpf/cgroup_iter.c", "__bpf_kfunc int bpf_iter_css_new(")


def test_static_definitions(real_inventories, kernel_repo):
    v1, v12 = real_inventories["v6.1"].kfuncs, real_inventories["v6.12"].kfuncs
    # 6.1: the 20 tcp_bbr/tcp_cubic/tcp_dctcp kfuncs are "static void|u32 ..."
    assert sorted(n for n, k in v1.items() if k.definition.static) == sorted(
        n for n in v1 if n.startswith(("bbr_", "cubictcp_", "dctcp_")))
    assert {n for n, k in v1.items() if k.definition.static} == listed(kernel_repo, "v6.1", *TCP_CA_FILES)  # 20
    # 6.12: the same 20, plus bpf_testmod.c:734 "__bpf_kfunc static u32
    # bpf_kfunc_call_test_static_unused_arg(u32 arg, u32 unused)"
    static12 = {n for n, k in v12.items() if k.definition.static}
    assert static12 == listed(kernel_repo, "v6.12", *TCP_CA_FILES) | {"bpf_kfunc_call_test_static_unused_arg"}  # 21
    # net/ipv4/tcp_bbr.c:1027 "__bpf_kfunc static void bbr_main(struct sock *sk, u32 ack, int flag,
    # const struct rate_sample *rs)"; 6.1 tcp_bbr.c:1026 had two parameters
    assert v12["bbr_main"].definition.signature.render("bbr_main") == \
        "void bbr_main(struct sock *sk, u32 ack, int flag, const struct rate_sample *rs)"
    assert v1["bbr_main"].definition.signature.render("bbr_main") == \
        "void bbr_main(struct sock *sk, const struct rate_sample *rs)"
    assert str(v12["bbr_main"].definition.location) == at(kernel_repo, "v6.12", "net/ipv4/tcp_bbr.c",
                                                          "__bpf_kfunc static void bbr_main(")


def _sig(k):
    s = k.definition.signature
    return s.return_type, [(p.type, p.name, p.suffix) for p in s.params]


def test_signatures_6_1(real_inventories):
    ks = real_inventories["v6.1"].kfuncs
    # net/bpf/test_run.c:641-642 "noinline struct prog_test_ref_kfunc *\n
    # bpf_kfunc_call_test_kptr_get(struct prog_test_ref_kfunc **pp, int a, int b)"
    assert _sig(ks["bpf_kfunc_call_test_kptr_get"]) == (
        "struct prog_test_ref_kfunc *",
        [("struct prog_test_ref_kfunc **", "pp", ""), ("int", "a", ""), ("int", "b", "")])
    # test_run.c:579 (unsigned long *scalar_ptr)
    assert _sig(ks["bpf_kfunc_call_test_acquire"])[1] == [("unsigned long *", "scalar_ptr", "")]
    # test_run.c:622 (struct prog_test_ref_kfunc *p, const int rdonly_buf_size)
    assert _sig(ks["bpf_kfunc_call_test_get_rdonly_mem"]) == (
        "int *", [("struct prog_test_ref_kfunc *", "p", ""), ("const int", "rdonly_buf_size", "")])
    # net/netfilter/nf_conntrack_bpf.c:452 (const struct nf_conn___init *nfct, u32 status)
    assert _sig(ks["bpf_ct_set_status"]) == (
        "int", [("const struct nf_conn___init *", "nfct", ""), ("u32", "status", "")])
    # nf_conntrack_bpf.c:331 ... u32 tuple__sz ... u32 opts__sz
    assert [p[2] for p in _sig(ks["bpf_skb_ct_alloc"])[1]] == ["", "", "__sz", "", "__sz"]
    # test_run.c:714 (void *mem, int mem__sz)
    assert _sig(ks["bpf_kfunc_call_test_mem_len_pass1"])[1] == [("void *", "mem", ""),
                                                                  ("int", "mem__sz", "__sz")]


def test_signatures_6_12(real_inventories):
    ks = real_inventories["v6.12"].kfuncs
    # kernel/bpf/helpers.c:2589-2590
    assert _sig(ks["bpf_dynptr_slice"]) == ("void *", [
        ("const struct bpf_dynptr *", "p", ""), ("u32", "offset", ""),
        ("void *", "buffer__opt", "__opt"), ("u32", "buffer__szk", "__szk")])
    assert ks["bpf_dynptr_slice"].flags == ("KF_RET_NULL",)
    # helpers.c:3059 (void *dst, u32 dst__sz, const void __user *unsafe_ptr__ign, u64 flags)
    assert _sig(ks["bpf_copy_from_user_str"]) == ("int", [
        ("void *", "dst", ""), ("u32", "dst__sz", "__sz"),
        ("const void __user *", "unsafe_ptr__ign", "__ign"), ("u64", "flags", "")])
    # helpers.c:2947-2948, return type on its own line
    assert _sig(ks["bpf_iter_bits_new"]) == ("int", [
        ("struct bpf_iter_bits *", "it", ""), ("const u64 *", "unsafe_ptr__ign", "__ign"),
        ("u32", "nr_words", "")])
    # drivers/hid/bpf/hid_bpf_dispatch.c:293-294 "__bpf_kfunc __u8 *\nhid_bpf_get_data(...)"
    assert _sig(ks["hid_bpf_get_data"]) == ("__u8 *", [
        ("struct hid_bpf_ctx *", "ctx", ""), ("unsigned int", "offset", ""),
        ("const size_t", "rdwr_buf_size", "")])
    # kernel/bpf/crypto.c:145-147
    assert _sig(ks["bpf_crypto_ctx_create"]) == ("struct bpf_crypto_ctx *", [
        ("const struct bpf_crypto_params *", "params", ""), ("u32", "params__sz", "__sz"),
        ("int *", "err", "")])
    # crypto.c:320-323 ... const struct bpf_dynptr *siv__nullable
    assert _sig(ks["bpf_crypto_decrypt"])[1][-1] == ("const struct bpf_dynptr *", "siv__nullable",
                                                      "__nullable")
    # net/netfilter/nf_flow_table_bpf.c:58-60
    assert _sig(ks["bpf_xdp_flow_lookup"]) == ("struct flow_offload_tuple_rhash *", [
        ("struct xdp_md *", "ctx", ""), ("struct bpf_fib_lookup *", "fib_tuple", ""),
        ("struct bpf_flowtable_opts *", "opts", ""), ("u32", "opts_len", "")])
    # bpf_testmod.c:615 "__bpf_kfunc long noinline bpf_kfunc_call_test4(signed char a, short b, int c, long d)"
    assert _sig(ks["bpf_kfunc_call_test4"]) == ("long", [
        ("signed char", "a", ""), ("short", "b", ""), ("int", "c", ""), ("long", "d", "")])
    # kernel/trace/bpf_trace.c:3483 "__bpf_kfunc __u64 *bpf_session_cookie(void)"
    assert _sig(ks["bpf_session_cookie"]) == ("__u64 *", [])
    # helpers.c:2743 "__bpf_kfunc __u32 bpf_dynptr_size(const struct bpf_dynptr *p)"
    assert _sig(ks["bpf_dynptr_size"]) == ("__u32", [("const struct bpf_dynptr *", "p", "")])
    # suffixes: helpers.c:2153, 2198, 2212, 2753; arena.c:563; fs/bpf_fs_kfuncs.c:108;
    # kernel/bpf/task_iter.c:1124; ext.c:6629
    assert [p.suffix for p in ks["bpf_obj_new_impl"].definition.signature.params] == ["__k", "__ign"]
    assert [p.suffix for p in ks["bpf_obj_drop_impl"].definition.signature.params] == ["__alloc", "__ign"]
    assert ks["bpf_refcount_acquire_impl"].definition.signature.params[0].suffix == "__refcounted_kptr"
    assert ks["bpf_dynptr_clone"].definition.signature.params[1].suffix == "__uninit"
    assert [p.suffix for p in ks["bpf_arena_alloc_pages"].definition.signature.params] == \
        ["__map", "__ign", "", "", ""]
    assert ks["bpf_get_dentry_xattr"].definition.signature.params[1] == \
        type(ks["bpf_get_dentry_xattr"].definition.signature.params[1])("const char *", "name__str", "__str")
    assert ks["bpf_iter_task_new"].definition.signature.params[1].suffix == "__nullable"
    # scx_bpf_exit_bstr (ext.c:7064-7065): char *fmt, unsigned long long *data, u32 data__sz
    assert _sig(ks["scx_bpf_exit_bstr"])[1] == [("s64", "exit_code", ""), ("char *", "fmt", ""),
                                                 ("unsigned long long *", "data", ""),
                                                 ("u32", "data__sz", "__sz")]


def test_function_typed_parameters_6_12(real_inventories):
    ks = real_inventories["v6.12"].kfuncs
    less = ks["bpf_rbtree_add_impl"].definition.signature.params[2]
    cb = ks["bpf_wq_set_callback_impl"].definition.signature.params[1]
    assert (less.name, cb.name) == ("less", "callback_fn")
    assert less.type.startswith("bool (*)(") and "less" not in less.type
    assert cb.type.startswith("int (*)(") and "callback_fn" not in cb.type


# -- config guards ---------------------------------------------------------------------

# Build guards (kbuild.py) come on top of the #if guards. Every one below was read in the
# Makefiles: net/ipv4/Makefile:49/52/53 (6.1) and :47/50/51 (6.12) obj-$(CONFIG_TCP_CONG_BBR/
# CUBIC/DCTCP) += tcp_*.o; net/Makefile:17 obj-$(CONFIG_INET) += ipv4/, :16 obj-$(CONFIG_NETFILTER)
# += netfilter/; Kbuild:97 obj-$(CONFIG_NET) += net/; kernel/trace/Makefile:91
# obj-$(CONFIG_BPF_EVENTS) += bpf_trace.o; kernel/Makefile:77 (6.1) / :80 (6.12)
# obj-$(CONFIG_CGROUPS) += cgroup/; 6.1 kernel/Makefile:71 obj-$(CONFIG_KEXEC_CORE) += kexec_core.o,
# 6.12 :74 obj-$(CONFIG_CRASH_DUMP) += crash_core.o; net/netfilter/Makefile (6.1) :33
# obj-$(CONFIG_NF_CONNTRACK) += nf_conntrack.o, :59 obj-$(CONFIG_NF_NAT) += nf_nat.o, the _bpf.o
# files being part of those composites under both ifeq branches (:17-21, :63-67). kernel/bpf/ files
# under obj-$(CONFIG_BPF_SYSCALL) and kernel/Makefile obj-$(CONFIG_BPF) += bpf/ are baseline.

def _source_guards(k):
    """The #if guards alone (what the scanner recorded before it read Makefiles)."""
    sets = [set(m.guards) for m in k.memberships]
    common = set.intersection(*sets) if sets else set()
    return tuple(sorted(common | set(k.definition.guards if k.definition else ())))


def test_guards_6_1(real_inventories, kernel_repo):
    ks = real_inventories["v6.1"].kfuncs
    # net/ipv4/tcp_bbr.c:1158-1159, tcp_cubic.c:491-492, tcp_dctcp.c:254-255:
    # #ifdef CONFIG_X86 / #ifdef CONFIG_DYNAMIC_FTRACE around the entries
    tcp = {"bbr_": "CONFIG_TCP_CONG_BBR", "cubictcp_": "CONFIG_TCP_CONG_CUBIC",
           "dctcp_": "CONFIG_TCP_CONG_DCTCP"}
    names = [n for n in ks if n.startswith(tuple(tcp))]
    assert set(names) == listed(kernel_repo, "v6.1", *TCP_CA_FILES)  # 20
    for n in names:
        option = next(o for p, o in tcp.items() if n.startswith(p))
        assert _source_guards(ks[n]) == ("CONFIG_DYNAMIC_FTRACE", "CONFIG_X86")
        assert ks[n].guards == tuple(sorted(("CONFIG_DYNAMIC_FTRACE", "CONFIG_X86", "CONFIG_INET",
                                             "CONFIG_NET", option)))
        assert ks[n].module  # net/ipv4/Kconfig: tristate "BBR TCP" (and CUBIC, DCTCP)
    # kernel/bpf/helpers.c:1819 #ifdef CONFIG_KEXEC_CORE; definition in kernel/kexec_core.c
    assert ks["crash_kexec"].guards == ("CONFIG_KEXEC_CORE",)
    assert [b.condition for b in ks["crash_kexec"].definition.build] == ["CONFIG_KEXEC_CORE"]
    # kernel/trace/bpf_trace.c:1229 #ifdef CONFIG_KEYS ... :1388 CONFIG_SYSTEM_DATA_VERIFICATION
    assert ks["bpf_key_put"].guards == ("CONFIG_BPF_EVENTS", "CONFIG_KEYS")
    assert ks["bpf_verify_pkcs7_signature"].guards == ("CONFIG_BPF_EVENTS", "CONFIG_KEYS",
                                                       "CONFIG_SYSTEM_DATA_VERIFICATION")
    assert ks["bpf_verify_pkcs7_signature"].definition.guards == \
        ("CONFIG_KEYS", "CONFIG_SYSTEM_DATA_VERIFICATION")  # bpf_trace.c:1340
    # net/netfilter/nf_conntrack_bpf.c: its only #if (CONFIG_NF_CONNTRACK_MARK, :235) is inside
    # a function body, so the netfilter kfuncs have build guards only
    for n in ("bpf_ct_set_timeout", "bpf_xdp_ct_lookup"):
        assert _source_guards(ks[n]) == ()
        assert ks[n].guards == ("CONFIG_NET", "CONFIG_NETFILTER", "CONFIG_NF_CONNTRACK")
    assert ks["bpf_ct_set_nat_info"].guards == ("CONFIG_NET", "CONFIG_NETFILTER", "CONFIG_NF_NAT")
    # kernel/cgroup/rstat.c: kernel/Makefile:77; tcp_reno_*: bpf_tcp_ca.c and tcp_cong.c in net/ipv4
    assert ks["cgroup_rstat_flush"].guards == ("CONFIG_CGROUPS",)
    assert ks["tcp_reno_cong_avoid"].guards == ("CONFIG_INET", "CONFIG_NET")
    # the 25 kfuncs with #if guards before ...
    assert len([k for k in ks.values() if _source_guards(k)]) == 25
    # ... and with build guards all but the one in tools/testing/ (outside kbuild): net/bpf/test_run.c
    # is under Kbuild:97 obj-$(CONFIG_NET) += net/
    assert [n for n, k in ks.items() if not k.guards] == ["bpf_testmod_test_mod_kfunc"]
    assert {k.guards for n, k in ks.items() if n.startswith("bpf_kfunc_call_test")} == {("CONFIG_NET",)}


def test_guards_6_12(real_inventories):
    ks = real_inventories["v6.12"].kfuncs
    # kernel/bpf/helpers.c:3088 #ifdef CONFIG_CRASH_DUMP; definition in crash_core.c:36-479,
    # a file kernel/Makefile:74 builds only with CONFIG_CRASH_DUMP
    assert ks["crash_kexec"].memberships[0].guards == ("CONFIG_CRASH_DUMP",)
    assert ks["crash_kexec"].definition.guards == ("CONFIG_CRASH_DUMP",)
    assert ks["crash_kexec"].guards == ("CONFIG_CRASH_DUMP",)
    # helpers.c:3106-3113 and :3145-3152 #ifdef CONFIG_CGROUPS (12 entries), plus cgroup_iter.c's
    # bpf_iter_css_* (kernel/bpf/Makefile:32-33 ifeq ($(CONFIG_CGROUPS),y)) and rstat.c's two
    cg = {"bpf_cgroup_acquire", "bpf_cgroup_release", "bpf_cgroup_ancestor", "bpf_cgroup_from_id",
          "bpf_task_under_cgroup", "bpf_task_get_cgroup1", "bpf_iter_css_task_new",
          "bpf_iter_css_task_next", "bpf_iter_css_task_destroy", "bpf_iter_css_new",
          "bpf_iter_css_next", "bpf_iter_css_destroy"}
    assert {n for n, k in ks.items() if "CONFIG_CGROUPS" in _source_guards(k)} == cg
    assert {n for n, k in ks.items() if "CONFIG_CGROUPS" in k.guards} == \
        cg | {"cgroup_rstat_updated", "cgroup_rstat_flush"}
    # the entry's guard counts even when the definition file (kernel/bpf/cgroup_iter.c) has none
    assert ks["bpf_iter_css_new"].definition.guards == ()
    assert ks["bpf_iter_css_new"].guards == ("CONFIG_CGROUPS",)
    # fs/verity/measure.c:106 #ifdef CONFIG_BPF_SYSCALL (kept: it is written in the file);
    # fs/Makefile:33 obj-$(CONFIG_FS_VERITY) += verity/
    assert ks["bpf_get_fsverity_digest"].guards == ("CONFIG_BPF_SYSCALL", "CONFIG_FS_VERITY")
    # kernel/sched/ext.c:7495 #ifdef CONFIG_CGROUP_SCHED, built through build_policy.c:62-64
    assert ks["scx_bpf_task_cgroup"].guards == ("CONFIG_CGROUP_SCHED", "CONFIG_SCHED_CLASS_EXT")
    # kernel/trace/bpf_trace.c:1240 CONFIG_KEYS, :1403 CONFIG_SYSTEM_DATA_VERIFICATION
    assert ks["bpf_lookup_system_key"].guards == ("CONFIG_BPF_EVENTS", "CONFIG_KEYS")
    assert ks["bpf_verify_pkcs7_signature"].guards == ("CONFIG_BPF_EVENTS", "CONFIG_KEYS",
                                                       "CONFIG_SYSTEM_DATA_VERIFICATION")
    # 6.12 dropped the CONFIG_X86/CONFIG_DYNAMIC_FTRACE guards (net/ipv4/tcp_bbr.c:1158-1167)
    assert _source_guards(ks["bbr_main"]) == ()
    assert ks["bbr_main"].guards == ("CONFIG_INET", "CONFIG_NET", "CONFIG_TCP_CONG_BBR")
    # netfilter: nf_conntrack_bpf.c:288 #if is inside a function body; nf_nat_bpf.c and
    # nf_flow_table_bpf.c have no #if at all; net/netfilter/Makefile:35, :61, :143
    for n, option in (("bpf_ct_set_timeout", "CONFIG_NF_CONNTRACK"), ("bpf_ct_set_nat_info", "CONFIG_NF_NAT"),
                      ("bpf_xdp_flow_lookup", "CONFIG_NF_FLOW_TABLE")):
        assert _source_guards(ks[n]) == ()
        assert ks[n].guards == ("CONFIG_NET", "CONFIG_NETFILTER", option)
    # kernel/bpf/helpers.c, cpumask.c, map_iter.c, task_iter.c, bpf_iter.c: obj-$(CONFIG_BPF_SYSCALL)
    # (kernel/bpf/Makefile), baseline
    for n in ("bpf_task_acquire", "bpf_cpumask_create", "bpf_map_sum_elem_count", "bpf_iter_num_new"):
        assert ks[n].guards == (), n
    # 12 + crash_kexec + bpf_get_fsverity_digest + scx_bpf_task_cgroup + 4 key kfuncs
    assert len([k for k in ks.values() if _source_guards(k)]) == 19


# -- kernel-doc ------------------------------------------------------------------------

def test_kernel_doc_summaries(real_inventories, kernel_repo):
    v1, v12 = real_inventories["v6.1"].kfuncs, real_inventories["v6.12"].kfuncs
    # kernel/trace/bpf_trace.c (6.1) "bpf_lookup_user_key - lookup a key by its serial"
    assert v1["bpf_lookup_user_key"].definition.doc.summary == "lookup a key by its serial"
    # kernel/bpf/helpers.c:2561 "bpf_dynptr_slice() - Obtain a read-only pointer to the dynptr data."
    doc = v12["bpf_dynptr_slice"].definition.doc
    # (the line of the comment's "/**")
    opening = line_of(kernel_repo, "v6.12", "kernel/bpf/helpers.c", "/**", before=" * bpf_dynptr_slice() - ")
    assert (doc.line, doc.summary) == (opening, "Obtain a read-only pointer to the dynptr data.")
    # kernel/bpf/cpumask.c:40 "bpf_cpumask_create() - Create a mutable BPF cpumask."
    assert v12["bpf_cpumask_create"].definition.doc.summary == "Create a mutable BPF cpumask."
    # net/core/xdp.c:769 "bpf_xdp_metadata_rx_hash - Read XDP frame RX hash."
    assert v12["bpf_xdp_metadata_rx_hash"].definition.doc.summary == "Read XDP frame RX hash."
    # plain /* comments are not kernel-doc: nf_nat_bpf.c:17, nf_conntrack_bpf.c:310, filter.c:12243
    for n in ("bpf_ct_set_nat_info", "bpf_xdp_ct_alloc", "bpf_sock_destroy", "crash_kexec"):
        assert v12[n].definition.doc is None


def test_kernel_doc_multiline_brief_6_12(real_inventories):
    ks = real_inventories["v6.12"].kfuncs
    assert ks["bpf_cpumask_first_zero"].definition.doc.summary == \
        "Get the index of the first unset bit in the cpumask."
    assert ks["bpf_task_acquire"].definition.doc.summary == (
        "Acquire a reference to a task. A task acquired by this kfunc which is not stored in a "
        "map as a kptr, must be released by calling bpf_task_release().")


def test_kernel_doc_colon_separator_6_12(real_inventories):
    doc = real_inventories["v6.12"].kfuncs["bpf_get_fsverity_digest"].definition.doc
    assert doc.summary == "read fsverity digest of file"


# -- X-macro XDP metadata kfuncs ---------------------------------------------------------

def test_xdp_metadata_x_macro_6_12(real_inventories, kernel_repo):
    ks = real_inventories["v6.12"].kfuncs
    # net/core/xdp.c:827-831: BTF_KFUNCS_START(xdp_metadata_kfunc_ids) / #define
    # XDP_METADATA_KFUNC(_, __, name, ___) BTF_ID_FLAGS(func, name, KF_TRUSTED_ARGS) /
    # XDP_METADATA_KFUNC_xxx (include/net/xdp.h:445-457); registered for XDP at xdp.c:856
    xdp = "net/core/xdp.c"
    defs = {n: at(kernel_repo, "v6.12", xdp, f"__bpf_kfunc int {n}(")
            for n in ("bpf_xdp_metadata_rx_timestamp", "bpf_xdp_metadata_rx_hash", "bpf_xdp_metadata_rx_vlan_tag")}
    # the set's X-macro line (xdp.c expands XDP_METADATA_KFUNC_xxx again in BTF_ID_LIST(..._unsorted))
    listed = at(kernel_repo, "v6.12", xdp, "XDP_METADATA_KFUNC_xxx", after="BTF_KFUNCS_START(xdp_metadata_kfunc_ids)")
    via = {n for n, k in ks.items() if any(m.via_macro for m in k.memberships)}
    assert via == set(defs)
    for name, defined in defs.items():
        k = ks[name]
        (m,) = k.memberships
        assert (m.set_name, str(m.location), m.via_macro) == (
            "xdp_metadata_kfunc_ids", listed, "XDP_METADATA_KFUNC_xxx")
        assert k.flags == ("KF_TRUSTED_ARGS",)
        assert k.prog_types == ("XDP",)
        assert str(k.definition.location) == defined
        assert not k.test
    assert _sig(ks["bpf_xdp_metadata_rx_vlan_tag"]) == ("int", [
        ("const struct xdp_md *", "ctx", ""), ("__be16 *", "vlan_proto", ""), ("u16 *", "vlan_tci", "")])
    # the metadata kfuncs arrived after 6.1
    assert not any(n.startswith("bpf_xdp_metadata_") for n in real_inventories["v6.1"].kfuncs)


# -- destructors -------------------------------------------------------------------------

def test_dtors(real_inventories, kernel_repo):
    def listed(rev, path, name):  # the BTF_ID(func, NAME) line of the dtor list
        return name, at(kernel_repo, rev, path, f"BTF_ID(func, {name})")

    # 6.1 net/bpf/test_run.c:1720-1724 BTF_ID_LIST(bpf_prog_test_dtor_kfunc_ids), registered :1743
    inv1 = real_inventories["v6.1"]
    assert [(n, str(loc)) for n, loc in inv1.dtors] == [
        listed("v6.1", "net/bpf/test_run.c", "bpf_kfunc_call_test_release"),
        listed("v6.1", "net/bpf/test_run.c", "bpf_kfunc_call_memb_release")]
    inv12 = real_inventories["v6.12"]
    assert sorted((n, str(loc)) for n, loc in inv12.dtors) == sorted([
        listed("v6.12", "kernel/bpf/cpumask.c", "bpf_cpumask_release_dtor"),
        listed("v6.12", "kernel/bpf/crypto.c", "bpf_crypto_ctx_release_dtor"),
        listed("v6.12", "kernel/bpf/helpers.c", "bpf_task_release_dtor"),
        listed("v6.12", "kernel/bpf/helpers.c", "bpf_cgroup_release_dtor"),
        listed("v6.12", "net/bpf/test_run.c", "bpf_kfunc_call_test_release_dtor"),
        listed("v6.12", "net/bpf/test_run.c", "bpf_kfunc_call_memb_release_dtor"),
        listed("v6.12", "tools/testing/selftests/bpf/bpf_testmod/bpf_testmod.c", "bpf_testmod_ctx_release"),
    ])
    # dtors are not new kfuncs; the ones that are kfuncs are so through their own sets
    # (6.1 test_run.c:744/745, 6.12 bpf_testmod.c:588)
    for n, _ in inv12.dtors:
        assert n not in inv12.kfuncs or n == "bpf_testmod_ctx_release"
    assert inv12.kfuncs["bpf_testmod_ctx_release"].flags == ("KF_RELEASE",)


# -- test kfuncs ---------------------------------------------------------------------------

def test_test_tagging_6_1(real_inventories, kernel_repo):
    ks = real_inventories["v6.1"].kfuncs
    # net/bpf/test_run.c:738-763 test_sk_check_kfunc_ids (24 entries) +
    # tools/testing/selftests/bpf/bpf_testmod/bpf_testmod.c:200 (1 entry)
    test = {n for n, k in ks.items() if k.test}
    assert test == listed(kernel_repo, "v6.1", "net/bpf/test_run.c", "tools/testing")  # 25
    assert {n for n in test if ks[n].location.path == "net/bpf/test_run.c"} == \
        {n for n in test if n != "bpf_testmod_test_mod_kfunc"}
    assert ks["bpf_testmod_test_mod_kfunc"].test
    assert ks["bpf_testmod_test_mod_kfunc"].prog_types == ("SCHED_CLS",)  # bpf_testmod.c:214
    assert not ks["crash_kexec"].test and not ks["tcp_reno_cong_avoid"].test


def test_test_tagging_6_12(real_inventories, independent, kernel_repo):
    ks = real_inventories["v6.12"].kfuncs
    for n, k in ks.items():
        in_tools = any(m.location.path.startswith("tools/testing/") for m in k.memberships)
        if in_tools:
            assert k.test, n
    # bpf_test_modorder_x.c:17 / _y.c:17, SCHED_CLS (:27)
    for n in ("bpf_test_modorder_retx", "bpf_test_modorder_rety"):
        assert ks[n].test and ks[n].prog_types == ("SCHED_CLS",)
    # net/bpf/test_run.c:652-655 test_sk_check_kfunc_ids (registered :1796-1798 through
    # bpf_prog_test_kfunc_set) keeps two kfuncs in 6.12
    for n in ("bpf_kfunc_call_test_release", "bpf_kfunc_call_memb_release"):
        assert ks[n].test and str(ks[n].location) == at(kernel_repo, "v6.12", "net/bpf/test_run.c",
                                                        f"BTF_ID_FLAGS(func, {n},")
        assert set(ks[n].prog_types) == {"SCHED_CLS", "TRACING", "SYSCALL"}
    # 59 test kfuncs: 54 from bpf_testmod.c (:573-589 and :1019-1059), 2 from test_run.c,
    # 2 modorder, bpf_modify_return_test_tp
    assert len([k for k in ks.values() if k.test]) == len([v for v in independent["v6.12"].values() if v["test"]])
    assert not ks["bpf_task_acquire"].test and not ks["scx_bpf_dispatch"].test


# -- 7.2: what the build says, read from the Makefiles independently --------------------------
#
# The independent reading (no policybot code): `git grep -w` finds the Makefile lines naming an
# object; a line `obj-$(CONFIG_X) += f.o` gives X; a line `comp-... += f.o` makes comp.o the
# object to look for next (where f.o sits on several lines, the options of all of them count
# only if every line has them: netfilter's =m/=y branches); `obj-$(CONFIG_D) += dir/` in the
# parent directory's Makefile (Kbuild at the top) gives D. Kconfig says tristate or not.

BUILD_FAMILIES = {  # set file -> the option its own obj- line names (checked by the reading)
    "net/ipv4/tcp_bbr.c": "CONFIG_TCP_CONG_BBR",
    "net/ipv4/tcp_dctcp.c": "CONFIG_TCP_CONG_DCTCP",
    "net/netfilter/nf_conntrack_bpf.c": "CONFIG_NF_CONNTRACK",
    "net/netfilter/nf_nat_bpf.c": "CONFIG_NF_NAT",
    "net/netfilter/nf_flow_table_bpf.c": "CONFIG_NF_FLOW_TABLE",
    "net/ipv4/fou_bpf.c": "CONFIG_NET_FOU",
    "net/xfrm/xfrm_interface_bpf.c": "CONFIG_XFRM_INTERFACE",
}
_MK_LINE = re.compile(r"^\s*([\w.-]+?)-(y|objs|\$\((CONFIG_\w+)\))\s*(?:\+=|:=|=)")


def _git(kernel_repo, *args) -> str:
    import subprocess
    out = subprocess.run(["git", "-C", kernel_repo, *args], capture_output=True, text=True)
    assert out.returncode in (0, 1), out.stderr  # 1: no match
    return out.stdout


def _grep_lines(kernel_repo, rev, word, path) -> list[str]:
    out = _git(kernel_repo, "grep", "-h", "-w", "-F", "-e", word, rev, "--", path)
    return [ln for ln in out.splitlines() if _MK_LINE.match(ln)]


def makefile_reading(kernel_repo, rev, path) -> tuple[str, set[str]]:
    """(the option of the object's own obj- line, every option on the way to the top)."""
    directory, name = path.rsplit("/", 1)
    obj, options, own = name[:-2] + ".o", set(), None
    while own is None:
        lines = _grep_lines(kernel_repo, rev, obj, f"{directory}/Makefile")
        assert lines, (path, obj)
        per_line = [_MK_LINE.match(ln) for ln in lines]
        shared = set.intersection(*({m.group(3)} - {None} for m in per_line))
        options |= shared
        base = per_line[0].group(1)
        if base == "obj":
            own = per_line[0].group(3)
        else:
            obj = base + ".o"
    while "/" in directory:
        parent, sub = directory.rsplit("/", 1)
        (m,) = [_MK_LINE.match(ln) for ln in _grep_lines(kernel_repo, rev, sub, f"{parent}/Makefile")]
        options |= {m.group(3)} - {None}
        directory = parent
    (m,) = [_MK_LINE.match(ln) for ln in _grep_lines(kernel_repo, rev, directory, "Kbuild")
            if f"{directory}/" in ln]
    options |= {m.group(3)} - {None}
    return own, options


def kconfig_is_tristate(kernel_repo, rev, option, directory) -> bool:
    out = _git(kernel_repo, "grep", "-h", "-A2", "-E", f"^(menu)?config {option[7:]}$", rev, "--",
               f"{directory}/Kconfig*")
    return "tristate" in out


@pytest.fixture(scope="module")
def inv72(kernel_repo, kernel_state):
    from policybot.kernel.gitrepo import open_repo
    from policybot.kernel.scanner import Scanner
    return Scanner(open_repo(kernel_repo), kernel_state).inventory("v7.2")


@pytest.mark.parametrize("path", sorted(BUILD_FAMILIES))
def test_build_guards_7_2_match_the_makefiles(inv72, kernel_repo, path):
    own, options = makefile_reading(kernel_repo, "v7.2", path)
    assert own == BUILD_FAMILIES[path]
    kfuncs = [k for k in inv72.kfuncs.values() if k.location.path == path]
    assert kfuncs
    tristate = kconfig_is_tristate(kernel_repo, "v7.2", own, path.rsplit("/", 1)[0])
    assert tristate  # each of these can be a module (Debian's 7.2 builds them as modules)
    for k in kfuncs:
        assert {b.condition for b in k.build} == options, k.name
        assert set(options) <= set(k.guards)
        own_guard = next(b for b in k.build if b.condition == own)
        assert own_guard.what == "object" and own_guard.tristate and k.module


def test_sched_ext_guard_7_2(inv72, kernel_repo):
    # 7.x moved sched_ext to kernel/sched/ext/; build_policy.c includes ext/ext.c, cid.c, arena.c
    # and idle.c inside one #ifdef CONFIG_SCHED_CLASS_EXT (kernel/sched/Makefile: obj-y build_policy.o)
    text = _git(kernel_repo, "show", "v7.2:kernel/sched/build_policy.c")
    included, stack = {}, []
    for i, ln in enumerate(text.splitlines(), 1):
        if re.match(r"#\s*if", ln):
            stack.append(ln.split()[-1])
        elif re.match(r"#\s*endif", ln):
            stack.pop()
        m = re.match(r'#\s*include\s+"(ext/\w+\.c)"', ln)
        if m:
            included["kernel/sched/" + m.group(1)] = (i, list(stack))
    assert set(included) == {"kernel/sched/ext/ext.c", "kernel/sched/ext/cid.c",
                             "kernel/sched/ext/arena.c", "kernel/sched/ext/idle.c"}
    assert {tuple(g) for _, g in included.values()} == {("CONFIG_SCHED_CLASS_EXT",)}
    scx = [k for k in inv72.kfuncs.values()
           if k.location.path in included or (k.definition and k.definition.location.path in included)]
    assert len(scx) >= 70  # the "~70 sched_ext kfuncs"
    for k in scx:
        assert "CONFIG_SCHED_CLASS_EXT" in k.guards, k.name
        b = next(b for b in k.build if b.condition == "CONFIG_SCHED_CLASS_EXT")
        assert b.what == "include" and b.location.path == "kernel/sched/build_policy.c"
        assert b.location.line == included[_included_from(k, included)][0]


def _included_from(k, included) -> str:
    """The included file whose #include line gave the kfunc its guard (its definition's, else its set's)."""
    if k.definition and k.definition.location.path in included:
        return k.definition.location.path
    return k.location.path


def test_relinking_a_series_on_v7_2_gives_the_inventories_a_fresh_scan_gives(kernel_repo, kernel_state):
    """A series' next tree reuses what the last link derived (set memberships, kfunc records,
    header expansions, trees by id): each patched v7.2 tree must read as a scanner that
    never saw the tree before reads it."""
    from policybot.kernel.apply import ScratchRepo
    from policybot.kernel.gitrepo import open_repo
    from policybot.kernel.scanner import Scanner
    repo = open_repo(kernel_repo)
    base = repo.revparse_single("v7.2").peel(pygit2.Tree)
    text = repo[base["kernel/bpf/helpers.c"].id].data.decode()
    flag = "BTF_ID_FLAGS(func, bpf_task_acquire, KF_ACQUIRE | KF_RCU | KF_RET_NULL)"
    proto = "__bpf_kfunc struct task_struct *bpf_task_acquire(struct task_struct *p)"
    assert flag in text and proto in text  # the lines the patches edit, read from the tree itself
    dropped = text.replace(flag, flag.replace(" | KF_RET_NULL", ""))
    steps = [(text, dropped), (dropped, dropped.replace(proto, proto[:-1] + ", u64 flags)"))]
    with ScratchRepo(repo) as scratch:
        series = Scanner(scratch.repo, kernel_state, jobs=1)
        tree, seen = base, [series.inventory_of_tree(base, "", "base").to_json(True)]
        for old, new in steps:
            diff = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                "a/kernel/bpf/helpers.c", "b/kernel/bpf/helpers.c"))
            tree = scratch.apply(tree, "diff --git a/kernel/bpf/helpers.c b/kernel/bpf/helpers.c\n" + diff)
            linked = series.inventory_of_tree(tree, "", "patched").to_json(True)
            fresh = Scanner(scratch.repo, None, jobs=1).inventory_of_tree(tree, "", "patched").to_json(True)
            assert linked == fresh
            seen.append(linked)
    acquire = [next(k for k in inv["kfuncs"] if k["name"] == "bpf_task_acquire") for inv in seen]
    assert "KF_RET_NULL" in acquire[0]["flags"] and "KF_RET_NULL" not in acquire[1]["flags"]
    assert [p["name"] for p in acquire[2]["definition"]["params"]] == ["p", "flags"]
