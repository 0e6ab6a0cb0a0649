// SPDX-License-Identifier: GPL-2.0
/* Calls bpf_modify_return_test: pahole tags it bpf_kfunc (its set is a BTF_KFUNCS set), but
 * net/bpf/test_run.c registers that set only with register_btf_fmodret_id_set, so the verifier
 * refuses the call ("calling kernel function ... is not allowed"). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int bpf_modify_return_test(int a, int *b) __ksym;

SEC("tc")
int fmodret_call(struct __sk_buff *skb)
{
	int b = 0;

	return bpf_modify_return_test(1, &b);
}

char LICENSE[] SEC("license") = "GPL";
