// SPDX-License-Identifier: GPL-2.0
/* A stand-in for a compiled kernel built from the bundled sample tree's v6.1
 * (samples/make_sample.py): its BTF tags the four kfuncs of v6.1 with
 * bpf_kfunc, as pahole does, and has one function that is not a kfunc.
 * Compiled with clang -target bpf -g, the object's .BTF section, dumped raw
 * (llvm-objcopy), is what `policybot inventory --btf` and `check --btf` read
 * as a vmlinux (a BPF object itself is refused as a kernel).
 */
#define __bpf_kfunc __attribute__((btf_decl_tag("bpf_kfunc"))) __attribute__((noinline))

struct task_struct {
	int pid;
};

struct cgroup {
	int id;
};

struct bpf_iter_num {
	unsigned long long __opaque[1];
};

__bpf_kfunc struct task_struct *bpf_task_acquire(struct task_struct *p)
{
	return p;
}

__bpf_kfunc struct cgroup *bpf_cgroup_acquire(struct cgroup *cgrp)
{
	return cgrp;
}

__bpf_kfunc void bpf_obj_drop(void *p__alloc)
{
}

__bpf_kfunc int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end)
{
	return start < end ? 0 : -22;
}

/* not a kfunc: no tag */
__attribute__((noinline)) int bpf_not_a_kfunc(int x)
{
	return x + 1;
}
