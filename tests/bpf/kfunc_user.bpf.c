// SPDX-License-Identifier: GPL-2.0
/* A BPF program whose kfunc externs the tests hold against a tree they build:
 * v6.1 has bpf_foo, bpf_old, bpf_gone and bpf_changed(u64); v6.2 deprecates
 * bpf_old for bpf_new, removes bpf_gone and makes bpf_changed take a pointer.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef bpf_ksym_exists /* libbpf 1.1's bpf_helpers.h lacks it */
#define bpf_ksym_exists(sym) (!!&(sym))
#endif

/* complete, and not the kernel's layout: struct types match by kind, not by name or members */
struct task_struct {
	int pid;
};

extern int bpf_foo(struct task_struct *p, __u32 flags) __ksym;
extern int bpf_foo___v2(struct task_struct *p, __u32 flags) __ksym __weak;
extern int bpf_old(struct task_struct *p) __ksym;
extern void bpf_gone(void) __ksym __weak;
extern int bpf_changed(__u64 x) __ksym;

SEC("tp_btf/sched_switch")
int kfunc_user(void *ctx)
{
	struct task_struct *t = ctx;
	int r = bpf_foo(t, 0);

	if (bpf_ksym_exists(bpf_foo___v2))
		r += bpf_foo___v2(t, 1);
	r += bpf_old(t);
	if (bpf_ksym_exists(bpf_gone))
		bpf_gone();
	r += bpf_changed(7);
	return r;
}

char LICENSE[] SEC("license") = "GPL";
