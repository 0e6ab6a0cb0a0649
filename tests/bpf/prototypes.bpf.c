// SPDX-License-Identifier: GPL-2.0
/* Return types as libbpf's rule judges them (tools/lib/bpf/relo_core.c,
 * __bpf_core_types_are_compat): an int where the kernel returns a pointer is
 * incompatible, an int of another width is not; const and volatile are kept
 * in the printed prototypes. bpf_v610 exists only from v6.10 of the test's tree.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef bpf_ksym_exists /* libbpf 1.1's bpf_helpers.h lacks it */
#define bpf_ksym_exists(sym) (!!&(sym))
#endif

struct task_struct {
	int pid;
};

extern int bpf_ret_ptr(__u32 id) __ksym __weak;
extern struct task_struct *bpf_ret_ok(__u32 id) __ksym __weak;
extern int bpf_ret_wide(__u32 id) __ksym __weak;
extern const struct task_struct *bpf_cv(const struct task_struct *p, volatile __u64 *counter) __ksym __weak;
extern int bpf_v610(__u32 x) __ksym __weak;

__u64 counter;

SEC("tp_btf/sched_switch")
int prototypes(void *ctx)
{
	int r = 0;

	if (bpf_ksym_exists(bpf_ret_ptr))
		r += bpf_ret_ptr(1);
	if (bpf_ksym_exists(bpf_ret_ok) && bpf_ret_ok(2))
		r++;
	if (bpf_ksym_exists(bpf_ret_wide))
		r += bpf_ret_wide(3);
	if (bpf_ksym_exists(bpf_cv) && bpf_cv(ctx, &counter))
		r++;
	if (bpf_ksym_exists(bpf_v610))
		r += bpf_v610(4);
	return r;
}

char LICENSE[] SEC("license") = "GPL";
