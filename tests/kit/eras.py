"""Small kernel-like source files, one per era and trap of kfuncs.md, for tests."""

BPF_TYPES_H = """\
BPF_PROG_TYPE(BPF_PROG_TYPE_SCHED_CLS, tc_cls_act, struct __sk_buff, struct sk_buff)
BPF_PROG_TYPE(BPF_PROG_TYPE_SCHED_ACT, tc_cls_act, struct __sk_buff, struct sk_buff)
BPF_PROG_TYPE(BPF_PROG_TYPE_XDP, xdp, struct xdp_md, struct xdp_buff)
BPF_PROG_TYPE(BPF_PROG_TYPE_TRACING, tracing, void *, void *)
"""

BTF_H = """\
#define KF_ACQUIRE	(1 << 0)
#define KF_RELEASE	(1 << 1)
#define KF_RET_NULL	(1 << 2)
#define KF_TRUSTED_ARGS	(1 << 4)
#define KF_SLEEPABLE	(1 << 5)
#define KF_RCU		(1 << 7)
"""

# 5.13-5.15: a BTF_SET reached from a verifier_ops .check_kfunc_call callback
ERA_5_13 = """\
#include <linux/btf_ids.h>

noinline void bpf_kfunc_call_test1(struct sock *sk, __u32 a, __u64 b)
{
}

BTF_SET_START(test_sk_kfunc_ids)
BTF_ID(func, bpf_kfunc_call_test1)
BTF_ID(func, tcp_legacy_helper)
BTF_SET_END(test_sk_kfunc_ids)

bool bpf_prog_test_check_kfunc_call(u32 kfunc_id)
{
	return btf_id_set_contains(&test_sk_kfunc_ids, kfunc_id);
}

const struct bpf_verifier_ops tc_cls_act_verifier_ops = {
	.get_func_proto		= tc_cls_act_func_proto,
	.check_kfunc_call	= bpf_prog_test_check_kfunc_call,
};
"""

# A legacy struct_ops user (bpf_tcp_ca in 5.13): verifier ops of a bpf_struct_ops
ERA_5_13_TCP_CA = """\
BTF_SET_START(bpf_tcp_ca_kfunc_ids)
BTF_ID(func, tcp_reno_ssthresh)
BTF_SET_END(bpf_tcp_ca_kfunc_ids)

static bool bpf_tcp_ca_check_kfunc_call(u32 kfunc_btf_id)
{
	return btf_id_set_contains(&bpf_tcp_ca_kfunc_ids, kfunc_btf_id);
}

static const struct bpf_verifier_ops bpf_tcp_ca_verifier_ops = {
	.check_kfunc_call	= bpf_tcp_ca_check_kfunc_call,
};

struct bpf_struct_ops bpf_tcp_congestion_ops = {
	.verifier_ops = &bpf_tcp_ca_verifier_ops,
	.name = "tcp_congestion_ops",
};
"""

TCP_CONG = """\
/* defined here, listed in bpf_tcp_ca.c */
u32 tcp_reno_ssthresh(struct sock *sk)
{
	return 2;
}
"""

# 5.18/5.19: check_set plus acquire/release/ret_null sets
ERA_5_18 = """\
BTF_SET_START(nf_ct_check_kfunc_ids)
BTF_ID(func, bpf_xdp_ct_lookup)
BTF_ID(func, bpf_ct_release)
BTF_SET_END(nf_ct_check_kfunc_ids)

BTF_SET_START(nf_ct_acquire_kfunc_ids)
BTF_ID(func, bpf_xdp_ct_lookup)
BTF_SET_END(nf_ct_acquire_kfunc_ids)

BTF_SET_START(nf_ct_release_kfunc_ids)
BTF_ID(func, bpf_ct_release)
BTF_SET_END(nf_ct_release_kfunc_ids)

BTF_SET_START(nf_conntrack_ret_null_kfunc_ids)
BTF_ID(func, bpf_xdp_ct_lookup)
BTF_SET_END(nf_conntrack_ret_null_kfunc_ids)

static const struct btf_kfunc_id_set nf_conntrack_xdp_kfunc_set = {
	.owner        = THIS_MODULE,
	.check_set    = &nf_ct_check_kfunc_ids,
	.acquire_set  = &nf_ct_acquire_kfunc_ids,
	.release_set  = &nf_ct_release_kfunc_ids,
	.ret_null_set = &nf_conntrack_ret_null_kfunc_ids,
};

__diag_push();
__diag_ignore_all("-Wmissing-prototypes",
		  "Global functions as their definitions will be in nf_conntrack BTF");

struct nf_conn *
bpf_xdp_ct_lookup(struct xdp_md *xdp_ctx, struct bpf_sock_tuple *bpf_tuple,
		  u32 tuple__sz, struct bpf_ct_opts *opts, u32 opts__sz)
{
	return NULL;
}

void bpf_ct_release(struct nf_conn *nfct)
{
}

__diag_pop()

int register_nf_conntrack_bpf(void)
{
	return register_btf_kfunc_id_set(BPF_PROG_TYPE_XDP, &nf_conntrack_xdp_kfunc_set);
}
"""

# 6.0-6.8: BTF_SET8 with BTF_ID_FLAGS; guards; a .filter; a dtor list; UNSPEC
ERA_6_1 = """\
#include <linux/btf.h>

__diag_push();

/**
 * bpf_task_acquire - Acquire a reference to a task.
 * @p: The task on which a reference is being acquired.
 *
 * Stability: stable
 */
__bpf_kfunc struct task_struct *bpf_task_acquire(struct task_struct *p)
{
	return p;
}

/**
 * bpf_task_release - Release the reference acquired on a task.
 * @p: The task on which a reference is being released.
 *
 * Stability: deprecated
 * Deprecated: use bpf_put_task() instead
 */
__bpf_kfunc void bpf_task_release(struct task_struct *p)
{
}

static noinline int bpf_local_helper(const void *data__sz, u32 size__szk, char **out__str)
{
	return 0;
}

#ifdef CONFIG_KEXEC_CORE
__bpf_kfunc void bpf_crash(void)
{
}
#endif

__diag_pop();

BTF_SET8_START(generic_btf_ids)
#ifdef CONFIG_KEXEC_CORE
BTF_ID_FLAGS(func, bpf_crash, KF_DESTRUCTIVE)
#endif
BTF_ID_FLAGS(func, bpf_task_acquire, KF_ACQUIRE | KF_TRUSTED_ARGS)
BTF_ID_FLAGS(func, bpf_task_release, KF_RELEASE)
BTF_ID_FLAGS(func, bpf_local_helper)
BTF_SET8_END(generic_btf_ids)

static const struct btf_kfunc_id_set generic_kfunc_set = {
	.owner = THIS_MODULE,
	.set   = &generic_btf_ids,
	.filter = generic_filter,
};

BTF_ID_LIST(generic_dtor_ids)
BTF_ID(struct, task_struct)
BTF_ID(func, bpf_task_release)

static int __init kfunc_init(void)
{
	int ret;
	const struct btf_id_dtor_kfunc generic_dtors[] = {
		{ .btf_id = generic_dtor_ids[0], .kfunc_btf_id = generic_dtor_ids[1] },
	};

	ret = register_btf_kfunc_id_set(BPF_PROG_TYPE_TRACING, &generic_kfunc_set);
	ret = ret ?: register_btf_kfunc_id_set(BPF_PROG_TYPE_SCHED_CLS, &generic_kfunc_set);
	return ret ?: register_btf_id_dtor_kfuncs(generic_dtors, ARRAY_SIZE(generic_dtors), THIS_MODULE);
}
"""

# 6.9+: BTF_KFUNCS, registration through a variable, a struct_ops registration
ERA_6_12 = """\
__bpf_kfunc_start_defs();

__bpf_kfunc s32 scx_bpf_select_cpu_dfl(struct task_struct *p, s32 prev_cpu, u64 wake_flags,
				       bool *is_idle)
{
	return 0;
}

__bpf_kfunc_end_defs();

BTF_KFUNCS_START(scx_kfunc_ids_select_cpu)
BTF_ID_FLAGS(func, scx_bpf_select_cpu_dfl, KF_RCU)
BTF_KFUNCS_END(scx_kfunc_ids_select_cpu)

static const struct btf_kfunc_id_set scx_kfunc_set_select_cpu = {
	.owner			= THIS_MODULE,
	.set			= &scx_kfunc_ids_select_cpu,
};

static int __init scx_init(void)
{
	int ret;

	if ((ret = register_btf_kfunc_id_set(BPF_PROG_TYPE_STRUCT_OPS,
					     &scx_kfunc_set_select_cpu)))
		return ret;
	return 0;
}
"""

# Look-alikes that are not kfuncs (kfuncs.md §2)
TRAPS = """\
/* an allowlist of ordinary functions */
BTF_SET_START(btf_allowlist_d_path)
BTF_ID(func, vfs_truncate)
BTF_SET_END(btf_allowlist_d_path)

/* an fmod_ret allowlist: the registration decides, not the macro */
BTF_KFUNCS_START(bpf_mptcp_fmodret_ids)
BTF_ID_FLAGS(func, update_socket_protocol)
BTF_KFUNCS_END(bpf_mptcp_fmodret_ids)

static const struct btf_kfunc_id_set bpf_mptcp_fmodret_set = {
	.owner = THIS_MODULE,
	.set   = &bpf_mptcp_fmodret_ids,
};

/* a lookup table naming kfuncs */
BTF_ID_LIST(special_kfunc_list)
BTF_ID(func, bpf_obj_new_impl)

/* a macro body: not a kfunc by itself */
#define DECLARE_KFUNC(name) \\
	BTF_ID_FLAGS(func, name, KF_TRUSTED_ARGS)

static int __init bpf_mptcp_kfunc_init(void)
{
	return register_btf_fmodret_id_set(&bpf_mptcp_fmodret_set);
}
"""

# X-macro: the entry list lives in a macro, as in net/core/xdp.c (6.3+)
XMACRO_H = """\
#define XDP_METADATA_KFUNC_xxx	\\
	XDP_METADATA_KFUNC(XDP_METADATA_KFUNC_RX_TIMESTAMP, \\
			   bpf_xdp_metadata_rx_timestamp) \\
	XDP_METADATA_KFUNC(XDP_METADATA_KFUNC_RX_HASH, \\
			   bpf_xdp_metadata_rx_hash)
"""
XMACRO_C = """\
#include <net/xdp.h>

__bpf_kfunc int bpf_xdp_metadata_rx_timestamp(const struct xdp_md *ctx, u64 *timestamp)
{
	return -EOPNOTSUPP;
}

__bpf_kfunc int bpf_xdp_metadata_rx_hash(const struct xdp_md *ctx, u32 *hash,
					 enum xdp_rss_hash_type *rss_type)
{
	return -EOPNOTSUPP;
}

BTF_KFUNCS_START(xdp_metadata_kfunc_ids)
#define XDP_METADATA_KFUNC(_, name) BTF_ID_FLAGS(func, name, KF_TRUSTED_ARGS)
XDP_METADATA_KFUNC_xxx
#undef XDP_METADATA_KFUNC
BTF_KFUNCS_END(xdp_metadata_kfunc_ids)

static const struct btf_kfunc_id_set xdp_metadata_kfunc_set = {
	.owner = THIS_MODULE,
	.set   = &xdp_metadata_kfunc_ids,
};

static int __init xdp_metadata_init(void)
{
	return register_btf_kfunc_id_set(BPF_PROG_TYPE_XDP, &xdp_metadata_kfunc_set);
}
"""

# Odd formatting: entries split over lines, comments inside the macro, #if 0
ODD = """\
__bpf_kfunc int /* odd */ bpf_odd_one(struct sk_buff *skb,
		const char *name__str)
{
	return 0;
}

__bpf_kfunc void bpf_odd_two(void)
{
}

BTF_KFUNCS_START(odd_ids)
BTF_ID_FLAGS(func,
	     bpf_odd_one, /* flags follow */
	     KF_SLEEPABLE)
// BTF_ID_FLAGS(func, bpf_commented_out)
#if 0
BTF_ID_FLAGS(func, bpf_dead_code)
#endif
BTF_ID_FLAGS(func, bpf_odd_two, KF_FUTURE_FLAG)
BTF_KFUNCS_END(odd_ids)

static const struct btf_kfunc_id_set odd_set = {
	.owner = THIS_MODULE,
	.set   = &odd_ids,
};

static int __init odd_init(void)
{
	const char *s = "register_btf_kfunc_id_set(BPF_PROG_TYPE_XDP, &odd_set)";
	return register_btf_kfunc_id_set(BPF_PROG_TYPE_UNSPEC, &odd_set);
}
"""

# a selftest module with test kfuncs
TESTMOD = """\
__bpf_kfunc void bpf_testmod_test_mod_kfunc(int i)
{
}

BTF_KFUNCS_START(bpf_testmod_check_kfunc_ids)
BTF_ID_FLAGS(func, bpf_testmod_test_mod_kfunc)
BTF_KFUNCS_END(bpf_testmod_check_kfunc_ids)

static const struct btf_kfunc_id_set bpf_testmod_kfunc_set = {
	.owner = THIS_MODULE,
	.set   = &bpf_testmod_check_kfunc_ids,
};

static int bpf_testmod_init(void)
{
	return register_btf_kfunc_id_set(BPF_PROG_TYPE_SCHED_CLS, &bpf_testmod_kfunc_set);
}
"""
