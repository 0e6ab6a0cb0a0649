"""Guards from the build (policybot/kernel/kbuild.py) and the JITs that can call kfuncs
(policybot/kernel/jit.py), on trees built here. The real trees are in
test_realtree_inventory.py and test_history.py."""

import json

import pytest

from policybot.gitbuild import HistoryBuilder
from policybot.kernel.jit import arch_condition, kfunc_call_arches, kfunc_call_support
from policybot.kernel.kbuild import BASELINE, BuildReader, parse_kbuild, parse_kconfig_types
from policybot.kernel.scanner import Scanner
from policybot.app.history import kfunc_history
from policybot.render.history import json_text as history_json, table as history_table
from policybot.policy.diff import diff
from policybot.cache import Cache
from kit.trees import kernel
from kit import eras as fx

TASK = "int|struct task_struct *p"

ROOT_KBUILD = """\
# SPDX-License-Identifier: GPL-2.0
obj-y			+= kernel/
obj-y			+= arch/$(SRCARCH)/
obj-$(CONFIG_NET)	+= net/
"""
KERNEL_MAKEFILE = "obj-y += sched/\nobj-$(CONFIG_BPF) += bpf/\n"
BPF_MAKEFILE = """\
obj-y := core.o
obj-$(CONFIG_BPF_SYSCALL) += helpers.o \\
	plain_iter.o
ifeq ($(CONFIG_CGROUPS),y)
	obj-$(CONFIG_BPF_SYSCALL) += cgroup_iter.o
endif
ifneq ($(CONFIG_CRYPTO),)
obj-$(CONFIG_BPF_SYSCALL) += crypto.o
endif
ifeq ($(CONFIG_MMU)$(CONFIG_64BIT),yy)
obj-$(CONFIG_BPF_SYSCALL) += arena.o
endif
$(obj)/gen.h: $(src)/gen.sh
	obj-y += not_an_object.o
"""
SCHED_MAKEFILE = "obj-y += core.o\nobj-y += build_policy.o\n"
BUILD_POLICY = """\
#include "sched.h"
#include "idle.c"

#ifdef CONFIG_SCHED_CLASS_EXT
# include "ext/types.h"
# include "ext/ext.c"
#endif
"""
NET_MAKEFILE = "obj-$(CONFIG_INET) += ipv4/\nobj-$(CONFIG_NETFILTER) += netfilter/\n"
IPV4_MAKEFILE = """\
obj-y := tcp.o tcp_cong.o
obj-$(CONFIG_TCP_CONG_BBR) += tcp_bbr.o
obj-$(CONFIG_TCP_CONG_FLAT) += tcp_flat.o
"""
IPV4_KCONFIG = """\
config TCP_CONG_BBR
	tristate "BBR TCP"
	default n

menuconfig TCP_CONG_FLAT
	bool "a congestion control that is never a module"
"""
NETFILTER_MAKEFILE = """\
nf_conntrack-y := nf_conntrack_core.o nf_conntrack_proto.o
ifeq ($(CONFIG_NF_CONNTRACK),m)
nf_conntrack-$(CONFIG_DEBUG_INFO_BTF_MODULES) += nf_conntrack_bpf.o
else ifeq ($(CONFIG_NF_CONNTRACK),y)
nf_conntrack-$(CONFIG_DEBUG_INFO_BTF) += nf_conntrack_bpf.o
endif

obj-$(CONFIG_NETFILTER) = netfilter.o
obj-$(CONFIG_NF_CONNTRACK) += nf_conntrack.o
"""
NETFILTER_KCONFIG = 'config NF_CONNTRACK\n\ttristate "Netfilter connection tracking support"\n'

JIT_TRUE = "bool bpf_jit_supports_kfunc_call(void)\n{\n\treturn true;\n}\n"


def jit_file(body="\treturn true;\n", extra=""):
    return f"{extra}int bpf_int_jit_compile(void)\n{{\n\treturn 0;\n}}\n\n" \
           f"bool bpf_jit_supports_kfunc_call(void)\n{{\n{body}}}\n"


def tree_files() -> dict:
    one = {"bpf_one": TASK}
    return {
        "include/linux/bpf_types.h": fx.BPF_TYPES_H, "include/linux/btf.h": fx.BTF_H,
        "Kbuild": ROOT_KBUILD, "Makefile": "core-y := \nVERSION = 6\n",
        "kernel/Makefile": KERNEL_MAKEFILE,
        "kernel/bpf/Makefile": BPF_MAKEFILE,
        "kernel/bpf/helpers.c": kernel({"bpf_helper": TASK}),
        "kernel/bpf/core.c": kernel({"bpf_core_thing": TASK}),
        "kernel/bpf/cgroup_iter.c": kernel({"bpf_cgroup_iter": TASK}),
        "kernel/bpf/crypto.c": kernel({"bpf_crypto_thing": TASK}),
        "kernel/bpf/arena.c": kernel({"bpf_arena_thing": TASK}),
        "kernel/sched/Makefile": SCHED_MAKEFILE,
        "kernel/sched/build_policy.c": BUILD_POLICY,
        "kernel/sched/idle.c": "int idle;\n",
        "kernel/sched/core.c": "int core;\n",
        "kernel/sched/ext/ext.c": kernel({"scx_bpf_thing": TASK}),
        "kernel/sched/ext/types.h": "struct x;\n",
        "kernel/Kconfig.preempt": "config SCHED_CLASS_EXT\n\tbool \"extensible scheduler\"\n",
        "net/Makefile": NET_MAKEFILE,
        "net/Kconfig": "menuconfig NET\n\tbool \"Networking support\"\n",
        "net/ipv4/Makefile": IPV4_MAKEFILE,
        "net/ipv4/Kconfig": IPV4_KCONFIG,
        "net/ipv4/tcp_bbr.c": kernel({"bbr_main": TASK}),
        "net/ipv4/tcp_flat.c": kernel({"flat_main": TASK}),
        "net/ipv4/tcp_orphan.c": kernel({"orphan_main": TASK}),  # in no Makefile, included nowhere
        "net/netfilter/Makefile": NETFILTER_MAKEFILE,
        "net/netfilter/Kconfig": NETFILTER_KCONFIG,
        "net/netfilter/nf_conntrack_bpf.c": kernel({"bpf_ct_thing": TASK}),
        "tools/testing/selftests/bpf/mod.c": kernel(one),
        # JITs: x86 has one file per word size, powerpc answers a condition, sparc says no,
        # mips has no such function (the weak default: no)
        "arch/x86/Kbuild": "obj-y += kernel/\nobj-y += net/\n",
        "arch/x86/net/Makefile": "ifeq ($(CONFIG_X86_32),y)\n        obj-$(CONFIG_BPF_JIT) += bpf_jit_comp32.o\n"
                                 "else\n        obj-$(CONFIG_BPF_JIT) += bpf_jit_comp.o\nendif\n",
        "arch/x86/net/bpf_jit_comp.c": jit_file(),
        "arch/x86/net/bpf_jit_comp32.c": jit_file(),
        "arch/powerpc/Kbuild": "obj-y += net/\n",
        "arch/powerpc/net/Makefile": "obj-$(CONFIG_BPF_JIT) += bpf_jit_comp.o bpf_jit_comp$(BITS).o\n",
        "arch/powerpc/net/bpf_jit_comp.c": jit_file("\treturn IS_ENABLED(CONFIG_PPC64);\n",
                                                    "/* bpf_jit_supports_kfunc_call() is below */\n"),
        "arch/sparc/Kbuild": "obj-y += net/\n",
        "arch/sparc/net/Makefile": "obj-$(CONFIG_BPF_JIT) += bpf_jit_comp_64.o\n",
        "arch/sparc/net/bpf_jit_comp_64.c": jit_file("\treturn false;\n"),
        "arch/mips/Kbuild": "obj-y += net/\n",
        "arch/mips/net/Makefile": "obj-$(CONFIG_BPF_JIT) += bpf_jit_comp.o\n",
        "arch/mips/net/bpf_jit_comp.c": "int bpf_int_jit_compile(void) { return 0; }\n",
    }


@pytest.fixture
def built(tmp_path):
    b = HistoryBuilder(tmp_path / "linux")
    b.commit(tree_files(), "v6.1 tree", "2022-12-11T12:00:00")
    b.tag("v6.1")
    return b


def guards(inv, name):
    return inv.kfuncs[name].guards


# -- guards on kfuncs ------------------------------------------------------------------------

def test_nested_descent_and_object_lines(built):
    inv = Scanner(built.repo).inventory("v6.1")
    # net/ipv4/Makefile:2 obj-$(CONFIG_TCP_CONG_BBR), net/Makefile:1 obj-$(CONFIG_INET) += ipv4/,
    # Kbuild:4 obj-$(CONFIG_NET) += net/
    assert guards(inv, "bbr_main") == ("CONFIG_INET", "CONFIG_NET", "CONFIG_TCP_CONG_BBR")
    where = {b.condition: (str(b.location), b.what) for b in inv.kfuncs["bbr_main"].build}
    assert where == {"CONFIG_TCP_CONG_BBR": ("net/ipv4/Makefile:2", "object"),
                     "CONFIG_INET": ("net/Makefile:1", "directory"),
                     "CONFIG_NET": ("Kbuild:4", "directory")}
    # the definition's file and the set's file are one here: both carry the same build guards
    k = inv.kfuncs["bbr_main"]
    assert {b.condition for b in k.memberships[0].build} == {b.condition for b in k.definition.build}
    # the source-level guards stay as they were: none
    assert k.memberships[0].guards == () and k.definition.guards == ()


def test_obj_y_and_baseline_options_give_no_guard(built):
    inv = Scanner(built.repo).inventory("v6.1")
    # kernel/bpf/Makefile: obj-y core.o; obj-$(CONFIG_BPF_SYSCALL) (a continued line) under
    # kernel/Makefile obj-$(CONFIG_BPF) += bpf/: baseline options only
    assert guards(inv, "bpf_core_thing") == ()
    assert guards(inv, "bpf_helper") == ()
    assert inv.build_baseline == BASELINE
    assert inv.to_json()["build_baseline"] == list(BASELINE)


def test_ifeq_conditions(built):
    inv = Scanner(built.repo).inventory("v6.1")
    # a tab-indented assignment inside ifeq is an assignment, not a recipe
    assert guards(inv, "bpf_cgroup_iter") == ("CONFIG_CGROUPS",)
    (b,) = inv.kfuncs["bpf_cgroup_iter"].build
    assert (str(b.location), b.what) == ("kernel/bpf/Makefile:5", "ifeq")
    assert guards(inv, "bpf_crypto_thing") == ("CONFIG_CRYPTO",)  # ifneq ($(CONFIG_CRYPTO),)
    assert guards(inv, "bpf_arena_thing") == ("CONFIG_64BIT", "CONFIG_MMU")  # ifeq (..)(..),yy


def test_composite_object_under_both_branches(built):
    inv = Scanner(built.repo).inventory("v6.1")
    # nf_conntrack_bpf.o is part of nf_conntrack.o under =m and under =y: only what both branches
    # share counts, obj-$(CONFIG_NF_CONNTRACK) += nf_conntrack.o and the descent into netfilter/
    k = inv.kfuncs["bpf_ct_thing"]
    assert k.guards == ("CONFIG_NET", "CONFIG_NETFILTER", "CONFIG_NF_CONNTRACK")
    b = next(b for b in k.build if b.condition == "CONFIG_NF_CONNTRACK")
    assert (str(b.location), b.what, b.tristate, b.module) == ("net/netfilter/Makefile:9", "object",
                                                                True, True)


def test_tristate_and_bool(built):
    inv = Scanner(built.repo).inventory("v6.1")
    bbr, flat = inv.kfuncs["bbr_main"], inv.kfuncs["flat_main"]
    assert [b.tristate for b in bbr.build if b.condition == "CONFIG_TCP_CONG_BBR"] == [True]
    assert [b.tristate for b in flat.build if b.condition == "CONFIG_TCP_CONG_FLAT"] == [False]
    assert bbr.module and not flat.module
    doc = {k["name"]: k for k in inv.to_json()["kfuncs"]}
    assert doc["bbr_main"]["module"] is True and doc["flat_main"]["module"] is False
    assert {"condition": "CONFIG_TCP_CONG_BBR", "location": "net/ipv4/Makefile:2", "what": "object",
            "tristate": True} in doc["bbr_main"]["build"]


def test_included_under_ifdef_from_a_parent_file(built):
    inv = Scanner(built.repo).inventory("v6.1")
    # kernel/sched/ext/ext.c is in no Makefile; kernel/sched/build_policy.c:6 includes it
    # under #ifdef CONFIG_SCHED_CLASS_EXT, and build_policy.o is obj-y
    k = inv.kfuncs["scx_bpf_thing"]
    assert k.guards == ("CONFIG_SCHED_CLASS_EXT",)
    (b,) = k.build
    assert (str(b.location), b.what, b.tristate) == ("kernel/sched/build_policy.c:6", "include", False)


def test_files_kbuild_never_reaches_have_no_build_guard(built):
    inv = Scanner(built.repo).inventory("v6.1")
    assert guards(inv, "orphan_main") == ()  # named by no Makefile, included by no file
    assert guards(inv, "bpf_one") == ()  # tools/ is outside the kernel build


def test_parse_kbuild_conditions():
    text = ("ifeq ($(CONFIG_A),m)\nx-y += a.o\nelse ifeq ($(CONFIG_A),y)\nx-y += b.o\nelse\nx-y += c.o\nendif\n"
            "ifdef CONFIG_B\nobj-y += d.o\nendif\nifndef CONFIG_C\nobj-y += e.o\nendif\n"
            "ifneq ($(KBUILD_EXTMOD),)\nobj-y += f.o\nendif\n"
            "obj-$(subst m,y,$(CONFIG_IPV6)) += g.o\nobj-$(BITS) += h.o\n")
    got = {t: p.conditions for p in parse_kbuild(text) for t in p.tokens}
    assert got == {"a.o": ("CONFIG_A=m",), "b.o": ("CONFIG_A!=m", "CONFIG_A=y"),
                   "c.o": ("CONFIG_A!=m", "CONFIG_A!=y"), "d.o": ("CONFIG_B",), "e.o": ("!CONFIG_C",),
                   "f.o": (), "g.o": ("CONFIG_IPV6",)}  # $(BITS) names no option: not followed


def test_parse_kconfig_types():
    text = ('config A\n\ttristate "a"\nconfig B\n\tbool "b"\n\tdepends on A\n'
            'menuconfig C\n\tdef_tristate m\nconfig D\n\tint "d"\nconfig E\n\tdef_bool y\n')
    assert parse_kconfig_types(text) == {"CONFIG_A": "tristate", "CONFIG_B": "bool",
                                         "CONFIG_C": "tristate", "CONFIG_D": "int", "CONFIG_E": "bool"}


def test_parses_are_cached_by_blob_id(built, monkeypatch):
    cache: dict = {}
    tree = built.repo.revparse_single("v6.1").peel(__import__("pygit2").Commit).tree
    assert BuildReader(built.repo, tree, cache).guards_of("net/ipv4/tcp_bbr.c")
    calls = []
    import policybot.kernel.kbuild as kbuild
    real = kbuild.parse_kbuild
    monkeypatch.setattr(kbuild, "parse_kbuild", lambda text: calls.append(text) or real(text))
    # a second tree sharing the blobs parses nothing again
    again = BuildReader(built.repo, tree, cache).guards_of("net/ipv4/tcp_bbr.c")
    assert calls == [] and [b.condition for b in again] == ["CONFIG_TCP_CONG_BBR", "CONFIG_INET", "CONFIG_NET"]


# -- guard changes between releases ----------------------------------------------------------

def test_a_file_moved_under_a_makefile_option_is_a_guard_added(tmp_path):
    b = HistoryBuilder(tmp_path / "r")
    files = tree_files()
    b.commit(files, "v6.1 tree", "2022-12-11T12:00:00")
    b.tag("v6.1")
    b.commit({"kernel/bpf/Makefile": BPF_MAKEFILE.replace(
        "obj-$(CONFIG_BPF_SYSCALL) += helpers.o", "obj-$(CONFIG_BPF_SYSCALL) += plain.o\n"
        "obj-$(CONFIG_BPF_HELPERS) += helpers.o")}, "helpers.c only with CONFIG_BPF_HELPERS",
        "2023-02-19T12:00:00")
    b.tag("v6.2")
    scanner = Scanner(b.repo)
    old, new = scanner.inventory("v6.1"), scanner.inventory("v6.2")
    changes = [c for c in diff(old, new) if c.rule == "KFUNC_CONFIG_GUARD_ADDED"]
    assert [(c.kfunc, c.message) for c in changes] == [
        ("bpf_helper", "now exists only with CONFIG_BPF_HELPERS")]
    # what a grouping by cause needs: the new guard and the line that sets it
    (g,) = new.kfuncs["bpf_helper"].build
    assert (g.condition, str(g.location)) == ("CONFIG_BPF_HELPERS", "kernel/bpf/Makefile:3")
    # and history says so too
    hs = kfunc_history(b.repo, scanner)
    h = next(h for h in hs if h.name == "bpf_helper")
    ev = next(e for e in h.events if e.kind == "guards")
    assert (ev.release, ev.detail) == ("v6.2", "none -> CONFIG_BPF_HELPERS")


def test_an_include_parent_that_gains_an_ifdef_is_a_guard_added(tmp_path):
    b = HistoryBuilder(tmp_path / "r")
    b.commit(tree_files(), "one", "2022-12-11T12:00:00")
    b.tag("v6.1")
    b.commit({"kernel/sched/build_policy.c": BUILD_POLICY.replace(
        "#ifdef CONFIG_SCHED_CLASS_EXT", "#if defined(CONFIG_SCHED_CLASS_EXT) && defined(CONFIG_SMP)")},
        "two", "2023-02-19T12:00:00")
    b.tag("v6.2")
    scanner = Scanner(b.repo)
    changes = [c for c in diff(scanner.inventory("v6.1"), scanner.inventory("v6.2"))
               if c.rule == "KFUNC_CONFIG_GUARD_ADDED"]
    assert [(c.kfunc, c.message) for c in changes] == [
        ("scx_bpf_thing", "now exists only with CONFIG_SCHED_CLASS_EXT && CONFIG_SMP")]


# -- JITs ------------------------------------------------------------------------------------

def test_jit_support_of_a_tree(built):
    support = kfunc_call_support(built.repo, "v6.1")
    got = [(s.arch, str(s.location), s.conditions) for s in support]
    assert got == [
        # powerpc returns a condition; its file's comment naming the function is not a definition
        ("powerpc", "arch/powerpc/net/bpf_jit_comp.c:7", ("IS_ENABLED(CONFIG_PPC64)",)),
        # x86: one file per word size (arch/x86/net/Makefile's ifeq)
        ("x86", "arch/x86/net/bpf_jit_comp.c:6", ("!CONFIG_X86_32",)),
        ("x86", "arch/x86/net/bpf_jit_comp32.c:6", ("CONFIG_X86_32",)),
    ]
    # sparc returns false, mips has only the weak default
    assert kfunc_call_arches(built.repo, "v6.1") == ["powerpc", "x86"]
    assert arch_condition(support, "x86") == ""  # both word sizes: every x86 kernel
    assert arch_condition(support, "powerpc") == "IS_ENABLED(CONFIG_PPC64)"


def test_history_gives_the_arches_of_each_release(built, tmp_path):
    built.commit({"arch/sparc/net/bpf_jit_comp_64.c": jit_file()}, "sparc learns kfunc calls",
                 "2023-02-19T12:00:00")
    built.tag("v6.2")
    hs = kfunc_history(built.repo, Scanner(built.repo, Cache(tmp_path / "s")))
    doc = json.loads(history_json(hs))
    assert doc["arches"] == {"v6.1": ["powerpc", "x86"], "v6.2": ["powerpc", "sparc", "x86"]}
    assert doc["arch_since"] == {"powerpc": "v6.1", "x86": "v6.1", "sparc": "v6.2"}
    assert doc["arch_conditions"]["v6.2"] == {"powerpc": "IS_ENABLED(CONFIG_PPC64)", "sparc": None,
                                              "x86": None}
    assert doc["jit_support"]["v6.2"][1] == {"arch": "sparc", "location": "arch/sparc/net/bpf_jit_comp_64.c:6",
                                             "conditions": []}
    lines = history_table(hs).splitlines()
    assert lines[-3:-1] == ["kfunc calls at v6.1: powerpc (IS_ENABLED(CONFIG_PPC64)), x86",
                            "kfunc calls at v6.2: powerpc (IS_ENABLED(CONFIG_PPC64)), sparc, x86"]


def test_parses_persist_in_the_state(built, tmp_path, monkeypatch):
    import policybot.kernel.kbuild as kbuild
    state = Cache(tmp_path / "state")
    first = Scanner(built.repo, state).inventory("v6.1")
    calls = []
    for name in ("parse_kbuild", "parse_kconfig_types", "_c_includes_of"):
        real = getattr(kbuild, name)
        monkeypatch.setattr(kbuild, name, lambda data, real=real, name=name: calls.append(name) or real(data))
    again = Scanner(built.repo, state).inventory("v6.1")  # a new process would see the same
    assert calls == []
    assert {n: k.build for n, k in again.kfuncs.items()} == {n: k.build for n, k in first.kfuncs.items()}
    assert again.kfuncs["scx_bpf_thing"].guards == ("CONFIG_SCHED_CLASS_EXT",)


# -- the guard each way of writing a build condition gives (issue 21) -------------------------
# Each kfunc below is the only one of its file; each file is placed by one branch of one
# conditional, so the guard the kfunc gets is exactly what that branch means.

BRANCHES_MAKEFILE = """\
obj-y := core.o
ifeq ($(CONFIG_LEGACY_X),)
obj-y += without_legacy.o
else
obj-y += with_legacy.o
endif
ifneq ($(CONFIG_FLAT_B),y)
obj-y += not_flat.o
else
obj-y += flat.o
endif
ifneq ($(CONFIG_TRI_T),y)
obj-y += tri_not_y.o
else
obj-y += tri_y.o
endif
ifneq ($(CONFIG_MOD_M),m)
obj-y += not_module.o
else
obj-y += as_module.o
endif
"""
BRANCHES_KCONFIG = """\
config FLAT_B
	bool "a bool: never m, so !=y is off and =y is on"
config TRI_T
	tristate "a tristate: !=y is n or m"
config MOD_M
	tristate "a tristate compared with m"
"""
BRANCH_FILES = {  # file -> (kfunc, exact guard, Makefile line, tristate)
    "without_legacy": ("bpf_without_legacy", "!CONFIG_LEGACY_X", 3, False),
    "with_legacy": ("bpf_with_legacy", "CONFIG_LEGACY_X", 5, False),
    "not_flat": ("bpf_not_flat", "!CONFIG_FLAT_B", 8, False),
    "flat": ("bpf_flat", "CONFIG_FLAT_B", 10, False),
    "tri_not_y": ("bpf_tri_not_y", "CONFIG_TRI_T!=y", 13, True),
    "tri_y": ("bpf_tri_y", "CONFIG_TRI_T=y", 15, True),
    "not_module": ("bpf_not_module", "CONFIG_MOD_M!=m", 18, True),
    "as_module": ("bpf_as_module", "CONFIG_MOD_M=m", 20, True),
}
ARCH_FILES = {  # arch/<name>/net/<name>.c, reached only through the root's arch/$(SRCARCH)/
    "x86": ("bpf_on_x86", ("CONFIG_X86",)),
    "powerpc": ("bpf_on_powerpc", ("CONFIG_PPC",)),  # the option is not CONFIG_POWERPC
    "um": ("bpf_on_um", ("CONFIG_UML",)),
    "s390": ("bpf_on_s390", ("CONFIG_NET", "CONFIG_S390")),  # its Kbuild descends under CONFIG_NET
}


@pytest.fixture
def branches(tmp_path):
    files = {"include/linux/bpf_types.h": fx.BPF_TYPES_H, "include/linux/btf.h": fx.BTF_H,
             "Kbuild": ROOT_KBUILD, "Makefile": "VERSION = 6\n", "kernel/Makefile": "obj-y += bpf/\n",
             "kernel/bpf/Makefile": BRANCHES_MAKEFILE, "kernel/bpf/Kconfig": BRANCHES_KCONFIG,
             "kernel/bpf/core.c": kernel({"bpf_core_thing": TASK})}
    for stem, (name, *_) in BRANCH_FILES.items():
        files[f"kernel/bpf/{stem}.c"] = kernel({name: TASK})
    for arch, (name, _) in ARCH_FILES.items():
        files[f"arch/{arch}/Kbuild"] = ("obj-$(CONFIG_NET) += net/\n" if arch == "s390" else "obj-y += net/\n")
        files[f"arch/{arch}/net/Makefile"] = f"obj-y += {arch}.o\n"
        files[f"arch/{arch}/net/{arch}.c"] = kernel({name: TASK})
    b = HistoryBuilder(tmp_path / "linux")
    b.commit(files, "one tree", "2022-12-11T12:00:00")
    b.tag("v6.1")
    return Scanner(b.repo).inventory("v6.1")


def test_each_branch_of_a_conditional_gives_its_exact_guard(branches):
    got = {stem: (branches.kfuncs[name].guards,
                  [(b.condition, str(b.location), b.what, b.tristate) for b in branches.kfuncs[name].build])
           for stem, (name, *_) in BRANCH_FILES.items()}
    assert got == {stem: ((guard,), [(guard, f"kernel/bpf/Makefile:{line}", "ifeq", tristate)])
                   for stem, (_, guard, line, tristate) in BRANCH_FILES.items()}


def test_ifeq_empty_is_built_when_the_option_is_unset(branches):
    # ifeq ($(CONFIG_LEGACY_X),) holds when the option is not set: the opposite of ifneq (..,)
    assert branches.kfuncs["bpf_without_legacy"].guards == ("!CONFIG_LEGACY_X",)
    assert branches.kfuncs["bpf_with_legacy"].guards == ("CONFIG_LEGACY_X",)  # its else


def test_ifneq_y_with_an_else_on_a_bool_and_on_a_tristate(branches):
    # a bool is never m: "not y" is "off", and the else is "on"
    assert branches.kfuncs["bpf_not_flat"].guards == ("!CONFIG_FLAT_B",)
    assert branches.kfuncs["bpf_flat"].guards == ("CONFIG_FLAT_B",)
    # a tristate that is not y may still be m: the comparison is kept as written
    assert branches.kfuncs["bpf_tri_not_y"].guards == ("CONFIG_TRI_T!=y",)
    assert branches.kfuncs["bpf_tri_y"].guards == ("CONFIG_TRI_T=y",)


def test_ifneq_m_and_its_else(branches):
    # ifneq ($(CONFIG_MOD_M),m): built when MOD_M is y or n; its else is the negation, =m
    assert branches.kfuncs["bpf_not_module"].guards == ("CONFIG_MOD_M!=m",)
    assert branches.kfuncs["bpf_as_module"].guards == ("CONFIG_MOD_M=m",)


def test_objects_under_arch_srcarch_get_their_arch_option(branches):
    got = {arch: branches.kfuncs[name].guards for arch, (name, _) in ARCH_FILES.items()}
    assert got == {arch: guards for arch, (_, guards) in ARCH_FILES.items()}
    (b,) = branches.kfuncs["bpf_on_powerpc"].build
    assert (b.condition, str(b.location), b.what) == ("CONFIG_PPC", "Kbuild:3", "directory")
    # the build conditions of the tree itself stay as they were
    assert branches.kfuncs["bpf_core_thing"].guards == ()
