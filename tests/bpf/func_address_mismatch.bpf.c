// SPDX-License-Identifier: GPL-2.0
/* Takes bpf_fentry_test2's address under a prototype the kernel's does not have (four
 * parameters; net/bpf/test_run.c's has two): libbpf compares the prototypes of every function
 * extern, called or not (bpf_object__resolve_ksym_func_btf_id), and refuses this one. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int bpf_fentry_test2(int a, __u64 b, __u64 c, __u64 d) __ksym;

__u64 test2_result = 0;

SEC("fentry/bpf_fentry_test2")
int func_address_mismatch(void *ctx)
{
	__u64 addr = bpf_get_func_ip(ctx);

	test2_result = (const void *) addr == &bpf_fentry_test2;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
