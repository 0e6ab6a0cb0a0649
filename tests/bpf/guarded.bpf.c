// SPDX-License-Identifier: GPL-2.0
/* Calls bpf_gone only through a weak extern guarded by bpf_ksym_exists(). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym) (!!&(sym))
#endif

struct task_struct {
	int pid;
};

extern int bpf_foo(struct task_struct *p, __u32 flags) __ksym;
extern void bpf_gone___compat(void) __ksym __weak;

SEC("tp_btf/sched_switch")
int guarded(void *ctx)
{
	if (bpf_ksym_exists(bpf_gone___compat))
		bpf_gone___compat();
	return bpf_foo(ctx, 2);
}

char LICENSE[] SEC("license") = "GPL";
