// SPDX-License-Identifier: GPL-2.0
/* Calls bpf_gone, removed in the tests' v6.2, through a strong extern. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern void bpf_gone(void) __ksym;

SEC("tp_btf/sched_switch")
int needs_gone(void *ctx)
{
	bpf_gone();
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
