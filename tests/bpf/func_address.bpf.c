// SPDX-License-Identifier: GPL-2.0
/* Takes a kernel function's address and never calls it, as the kernel's get_func_ip_test
 * selftest does with bpf_fentry_test1: libbpf resolves it against any kernel function of
 * that name (a BPF_PSEUDO_BTF_ID load), kfunc or not, and the verifier accepts the load. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int bpf_fentry_test1(int a) __ksym;

__u64 test1_result = 0;

SEC("fentry/bpf_fentry_test1")
int func_address(void *ctx)
{
	__u64 addr = bpf_get_func_ip(ctx);

	test1_result = (const void *) addr == &bpf_fentry_test1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
