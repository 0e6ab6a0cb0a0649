// SPDX-License-Identifier: GPL-2.0
/* Calls bpf_gone through inline assembly: a call relocation to an undefined
 * symbol that the object's BTF does not describe (as clang 14 leaves some
 * __ksym externs), so libbpf cannot open the object.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tp_btf/sched_switch")
int undescribed(void *ctx)
{
	asm volatile("call bpf_gone" ::: "r0", "r1", "r2", "r3", "r4", "r5");
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
