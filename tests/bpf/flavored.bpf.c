// SPDX-License-Identifier: GPL-2.0
/* Flavored externs: libbpf resolves bpf_foo___v2 and bpf_old___compat as the
 * kfuncs bpf_foo and bpf_old (everything from the last ___ is the flavor), so
 * check must judge them by those kfuncs' levels and promises.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef bpf_ksym_exists /* libbpf 1.1's bpf_helpers.h lacks it */
#define bpf_ksym_exists(sym) (!!&(sym))
#endif

struct task_struct {
	int pid;
};

extern int bpf_foo(struct task_struct *p, __u32 flags) __ksym;
extern int bpf_foo___v2(struct task_struct *p, __u32 flags) __ksym __weak;
extern int bpf_old___compat(struct task_struct *p) __ksym __weak;

SEC("tp_btf/sched_switch")
int flavored(void *ctx)
{
	struct task_struct *t = ctx;
	int r = bpf_foo(t, 0);

	if (bpf_ksym_exists(bpf_foo___v2))
		r += bpf_foo___v2(t, 1);
	if (bpf_ksym_exists(bpf_old___compat))
		r += bpf_old___compat(t);
	return r;
}

char LICENSE[] SEC("license") = "GPL";
