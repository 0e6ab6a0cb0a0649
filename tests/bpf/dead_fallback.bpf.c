// SPDX-License-Identifier: GPL-2.0
/* Two weak ___v2 flavors, as sched_ext's compat.bpf.h writes them. bpf_foo___v2's essential
 * name is the old kfunc, bpf_foo, with a third parameter no kernel has: libbpf rejects it on
 * every target and silently takes the old path (a dead fallback). bpf_new___v2 asks for a
 * kfunc that v6.2 has: alive. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym) (!!&(sym))
#endif

struct task_struct {
	int pid;
};

extern int bpf_foo(struct task_struct *p, __u32 flags) __ksym;
extern int bpf_foo___v2(struct task_struct *p, __u32 flags, __u64 extra) __ksym __weak;
extern int bpf_new___v2(struct task_struct *p) __ksym __weak;

SEC("tp_btf/sched_switch")
int dead_fallback(void *ctx)
{
	if (bpf_ksym_exists(bpf_foo___v2))
		return bpf_foo___v2(ctx, 1, 2);
	if (bpf_ksym_exists(bpf_new___v2))
		return bpf_new___v2(ctx);
	return bpf_foo(ctx, 0);
}

char LICENSE[] SEC("license") = "GPL";
