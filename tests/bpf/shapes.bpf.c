// SPDX-License-Identifier: GPL-2.0
/* Prototype shapes libbpf's rule judges (tools/lib/bpf/relo_core.c):
 * integers of any width match, a forward declaration is not a struct,
 * and an enum is not an integer.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef bpf_ksym_exists /* libbpf 1.1's bpf_helpers.h lacks it */
#define bpf_ksym_exists(sym) (!!&(sym))
#endif

struct cgroup; /* declared only: BTF_KIND_FWD */

enum mode { MODE_A, MODE_B };

extern int bpf_widths(__u64 wide, __s8 narrow) __ksym __weak;
extern int bpf_fwd(struct cgroup *cgrp) __ksym __weak;
extern int bpf_enum(enum mode m) __ksym __weak;

SEC("tp_btf/sched_switch")
int shapes(void *ctx)
{
	int r = 0;

	if (bpf_ksym_exists(bpf_widths))
		r += bpf_widths(1, 2);
	if (bpf_ksym_exists(bpf_fwd))
		r += bpf_fwd(ctx);
	if (bpf_ksym_exists(bpf_enum))
		r += bpf_enum(MODE_B);
	return r;
}

char LICENSE[] SEC("license") = "GPL";
