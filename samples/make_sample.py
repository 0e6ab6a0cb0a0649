#!/usr/bin/env python3
"""Build the bundled sample: a small kernel-like git tree with real findings.

    python samples/make_sample.py DIR

v6.1 (2022-12-11) declares three kfuncs stable in the in-tree manifest;
v6.2 (2023-02-19) then
  - removes bpf_cgroup_acquire, stable since v6.1        -> violation
  - adds KF_SLEEPABLE to bpf_obj_drop, whose stable window
    (declared since 2017-06-01, 5 years) is over         -> warning
  - declares bpf_iter_num_new deprecated (kernel-doc)    -> notice
  - adds bpf_task_from_pid, with no declaration          -> nothing to check yet
"""

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from policybot.gitbuild import HistoryBuilder  # noqa: E402

HELPERS_V1 = """\
// SPDX-License-Identifier: GPL-2.0-only
#include <linux/btf.h>
#include <linux/btf_ids.h>

__bpf_kfunc_start_defs();

/**
 * bpf_task_acquire - Acquire a reference to a task.
 * @p: The task on which a reference is being acquired.
 */
__bpf_kfunc struct task_struct *bpf_task_acquire(struct task_struct *p)
{
	return p;
}

/**
 * bpf_cgroup_acquire - Acquire a reference to a cgroup.
 * @cgrp: The cgroup on which a reference is being acquired.
 */
__bpf_kfunc struct cgroup *bpf_cgroup_acquire(struct cgroup *cgrp)
{
	return cgrp;
}

/**
 * bpf_obj_drop - Drop an object allocated with bpf_obj_new.
 * @p__alloc: The object.
 */
__bpf_kfunc void bpf_obj_drop(void *p__alloc)
{
}

/**
 * bpf_iter_num_new - Start a numbers iterator.
 */
__bpf_kfunc int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end)
{
	return 0;
}
%(extra_defs)s
__bpf_kfunc_end_defs();

BTF_KFUNCS_START(generic_btf_ids)
BTF_ID_FLAGS(func, bpf_task_acquire, KF_ACQUIRE | KF_RCU | KF_RET_NULL)
%(cgroup_entry)sBTF_ID_FLAGS(func, bpf_obj_drop, KF_RELEASE%(drop_flags)s)
BTF_ID_FLAGS(func, bpf_iter_num_new, KF_ITER_NEW)
%(extra_entries)sBTF_KFUNCS_END(generic_btf_ids)

static const struct btf_kfunc_id_set generic_kfunc_set = {
	.owner = THIS_MODULE,
	.set   = &generic_btf_ids,
};

static int __init kfunc_init(void)
{
	int ret;

	ret = register_btf_kfunc_id_set(BPF_PROG_TYPE_TRACING, &generic_kfunc_set);
	ret = ret ?: register_btf_kfunc_id_set(BPF_PROG_TYPE_SCHED_CLS, &generic_kfunc_set);
	return ret ?: register_btf_kfunc_id_set(BPF_PROG_TYPE_XDP, &generic_kfunc_set);
}
late_initcall(kfunc_init);
"""

MANIFEST = """\
# Stability declarations for kfuncs (read by policybot).
kfuncs:
  bpf_task_acquire:
    stability: stable
  bpf_cgroup_acquire:
    stability: stable
  bpf_obj_drop:
    stability: stable
    since: 2017-06-01
"""

MAINTAINERS = """\
BPF [GENERAL] (Safe Dynamic Programs and Tools)
M:	Alexei Starovoitov <ast@kernel.org>
M:	Daniel Borkmann <daniel@iogearbox.net>
R:	Song Liu <song@kernel.org>
L:	bpf@vger.kernel.org
S:	Supported
F:	Documentation/bpf/
F:	kernel/bpf/
"""

BTF_H = """\
#define KF_ACQUIRE	(1 << 0)
#define KF_RELEASE	(1 << 1)
#define KF_RET_NULL	(1 << 2)
#define KF_TRUSTED_ARGS	(1 << 4)
#define KF_SLEEPABLE	(1 << 5)
#define KF_RCU		(1 << 7)
#define KF_ITER_NEW	(1 << 8)
"""


def build(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    b = HistoryBuilder(path)
    v1 = HELPERS_V1 % {"extra_defs": "", "cgroup_entry": "BTF_ID_FLAGS(func, bpf_cgroup_acquire, KF_ACQUIRE | KF_RCU)\n",
                       "drop_flags": "", "extra_entries": ""}
    b.commit({"MAINTAINERS": MAINTAINERS, "include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": v1,
              "Documentation/bpf/kfunc-stability.yaml": MANIFEST, "Makefile": "VERSION = 6\nPATCHLEVEL = 1\n"},
             "Linux 6.1", "2022-12-11T20:00:00")
    b.tag("v6.1")
    v2 = HELPERS_V1 % {
        "extra_defs": "\n/**\n * bpf_task_from_pid - Find a task by its pid.\n * @pid: The pid.\n */\n"
                      "__bpf_kfunc struct task_struct *bpf_task_from_pid(s32 pid)\n{\n\treturn NULL;\n}\n",
        "cgroup_entry": "", "drop_flags": " | KF_SLEEPABLE",
        "extra_entries": "BTF_ID_FLAGS(func, bpf_task_from_pid, KF_ACQUIRE | KF_RET_NULL)\n"}
    v2 = v2.replace(" * bpf_iter_num_new - Start a numbers iterator.\n",
                    " * bpf_iter_num_new - Start a numbers iterator.\n *\n * Stability: deprecated\n"
                    " * Deprecated: use bpf_iter_num_new2() instead\n")
    b.commit({"kernel/bpf/helpers.c": v2}, "bpf: rework generic kfuncs\n\nSigned-off-by: A Developer <dev@example.org>\n",
             "2023-01-20T10:00:00")
    b.commit({"Makefile": "VERSION = 6\nPATCHLEVEL = 2\n"}, "Linux 6.2", "2023-02-19T20:00:00")
    b.tag("v6.2")
    b.checkout()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_sample.py DIR")
    build(Path(sys.argv[1]))
    print(sys.argv[1])
