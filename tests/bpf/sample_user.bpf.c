// SPDX-License-Identifier: GPL-2.0
/* A BPF program for the bundled sample tree (samples/make_sample.py), whose
 * kfunc externs resolve differently on its v6.1 and v6.2:
 *   bpf_task_acquire      stable on both
 *   bpf_cgroup_acquire    strong; removed in v6.2: the object does not load there
 *   bpf_obj_drop          gains KF_SLEEPABLE in v6.2
 *   bpf_iter_num_new      declared deprecated in v6.2
 *   bpf_task_from_pid     weak, with a ___flavor; added in v6.2
 *   bpf_task_acquire___ptr  weak, with a prototype no release has (an integer
 *                         where the kernel takes a pointer): never resolved
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef bpf_ksym_exists /* libbpf 1.1's bpf_helpers.h lacks it */
#define bpf_ksym_exists(sym) (!!&(sym))
#endif

struct task_struct {
	int pid;
};

struct cgroup {
	int id;
};

struct bpf_iter_num {
	__u64 __opaque[1];
};

extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern struct task_struct *bpf_task_acquire___ptr(__u64 p) __ksym __weak;
extern struct cgroup *bpf_cgroup_acquire(struct cgroup *cgrp) __ksym;
extern void bpf_obj_drop(void *p__alloc) __ksym;
extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __ksym;
extern struct task_struct *bpf_task_from_pid___v2(__s32 pid) __ksym __weak;

SEC("tp_btf/sched_switch")
int sample_user(void *ctx)
{
	struct bpf_iter_num it;
	struct task_struct *t = bpf_task_acquire(ctx);
	struct cgroup *c = bpf_cgroup_acquire(ctx);

	if (bpf_ksym_exists(bpf_task_acquire___ptr))
		t = bpf_task_acquire___ptr((__u64)ctx);
	if (bpf_ksym_exists(bpf_task_from_pid___v2))
		t = bpf_task_from_pid___v2(1);
	bpf_iter_num_new(&it, 0, 10);
	bpf_obj_drop(t);
	bpf_obj_drop(c);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
