"""One finding per cause (design.md; issue 25): one change of one kind that reaches many kfuncs, or
many parameters of one, is one finding listing them; one edit of a prototype is one finding.

Each test states the exact findings (rule, kfuncs, verdict, location, message), as tests/test_rules.py
does. The group takes the verdict of its worst member (each judged by its own promise), and the
known users of each member stay attached.
"""

from __future__ import annotations

from policybot.kernel.scanner import Scanner
from policybot.model.census import KnownUser
from policybot.policy.audit import Auditor
from policybot.policy.config import Policy
from policybot.render.findings import finding_line, users_text
from kit.trees import FOO, HELPERS, MANIFEST, kernel, manifest, pair


def line_of(text: str, needle: str) -> int:
    (hit,) = [i for i, ln in enumerate(text.split("\n"), 1) if needle in ln]
    return hit


def audit(b, users=None):
    auditor = Auditor(b.repo, Scanner(b.repo), Policy(), None)
    if users:
        auditor.judge.users = users
    return auditor.audit("v6.9", "v6.8")


def rows(result) -> list[tuple]:
    return sorted((f.rule, f.members, f.verdict, str(f.location), f.message) for f in result.findings)


def run(tmp_path, base: dict, head: dict, declared: dict, users=None):
    head_src = kernel(head)
    b = pair(tmp_path, {HELPERS: kernel(base), MANIFEST: manifest(**declared)}, {HELPERS: head_src})
    return audit(b, users), head_src


def test_a_parameter_added_and_retyped_is_one_finding(tmp_path):
    # one edit of the prototype: u32 flags became u64 flags and a parameter came after it. The
    # parameter list is the one change; comparing by position would call flags retyped as well
    result, head = run(tmp_path, {"bpf_foo": FOO}, {"bpf_foo": "int|struct task_struct *p, u64 flags, u32 more"},
                       {"bpf_foo": "stable"})
    assert rows(result) == [("KFUNC_PARAM_ADDED", ("bpf_foo",), "violation", f"{HELPERS}:{line_of(head, ' bpf_foo(')}",
                             "takes 3 parameters instead of 2: (struct task_struct *p, u32 flags) became "
                             "(struct task_struct *p, u64 flags, u32 more)")]


def test_one_widening_of_two_parameters_is_one_finding(tmp_path):
    result, head = run(tmp_path, {"bpf_foo": "int|u32 start, u32 end"}, {"bpf_foo": "int|u64 start, u64 end"},
                       {"bpf_foo": "stable"})
    assert rows(result) == [("KFUNC_NEEDS_REVIEW", ("bpf_foo",), "notice", f"{HELPERS}:{line_of(head, ' bpf_foo(')}",
                             "parameter 1 (start) changed from 'u32' to 'u64' (integer width), "
                             "parameter 2 (end) changed from 'u32' to 'u64' (integer width)")]
    (f,) = result.findings
    assert not f.grouped and f.kfunc == "bpf_foo"
    assert finding_line(f).startswith(f"{HELPERS}:{line_of(head, ' bpf_foo(')}: notice[KFUNC_NEEDS_REVIEW]: "
                                      "bpf_foo parameter 1 (start)")


def test_one_widening_of_many_kfuncs_is_one_finding_at_the_worst_verdict(tmp_path):
    # as 6.12 -> 7.2 widened the dynptr kfuncs' u32 offsets and sizes (tests/test_realtree_audit_7x.py):
    # parameters and return values alike, __u32 and u32 alike. bpf_b is stable (notice: a question), the
    # others undeclared (info): the group is a notice, with bpf_b's promise
    base = {"bpf_a": "int|u32 off", "bpf_b": "__u32|void *p", "bpf_c": "int|void *p, u32 off, u32 len",
            "bpf_other": "int|u16 x"}
    head = {"bpf_a": "int|u64 off", "bpf_b": "u64|void *p", "bpf_c": "int|void *p, u64 off, u64 len",
            "bpf_other": "int|u32 x"}
    result, src = run(tmp_path, base, head, {"bpf_b": "stable"})
    assert rows(result) == [
        ("KFUNC_NEEDS_REVIEW", ("bpf_a", "bpf_b", "bpf_c"), "notice", f"{HELPERS}:{line_of(src, ' bpf_a(')}",
         "bpf_a: parameter 1 (off) changed from 'u32' to 'u64' (integer width); "
         "bpf_b: return type '__u32' became 'u64' (integer width); "
         "bpf_c: parameter 2 (off) changed from 'u32' to 'u64' (integer width), "
         "parameter 3 (len) changed from 'u32' to 'u64' (integer width)"),
        # another change of width is another cause
        ("KFUNC_NEEDS_REVIEW", ("bpf_other",), "info", f"{HELPERS}:{line_of(src, ' bpf_other(')}",
         "parameter 1 (x) changed from 'u16' to 'u32' (integer width)")]
    grouped = next(f for f in result.findings if f.grouped)
    assert grouped.kfunc == "bpf_b" and grouped.promise.declaration.level == "stable"
    assert grouped.cause == "width:u32->u64"
    assert finding_line(grouped).startswith(f"{HELPERS}:{line_of(src, ' bpf_a(')}: notice[KFUNC_NEEDS_REVIEW]: "
                                            "3 kfuncs: bpf_a: ")


def test_the_same_parameter_added_to_two_kfuncs_is_one_finding(tmp_path):
    # 6.12 -> 7.2: bpf_session_is_return(void) and bpf_session_cookie(void) both took (void *ctx)
    result, src = run(tmp_path, {"bpf_x": "int|void", "bpf_y": "int|void", "bpf_z": "int|u32 a"},
                      {"bpf_x": "int|void *ctx", "bpf_y": "int|void *ctx", "bpf_z": "int|u32 a, void *ctx"},
                      {"bpf_x": "stable", "bpf_y": "stable", "bpf_z": "stable"})
    assert rows(result) == [
        ("KFUNC_PARAM_ADDED", ("bpf_x", "bpf_y"), "violation", f"{HELPERS}:{line_of(src, ' bpf_x(')}",
         "takes 1 parameter instead of 0: (void) became (void *ctx)"),
        # another parameter list: another change
        ("KFUNC_PARAM_ADDED", ("bpf_z",), "violation", f"{HELPERS}:{line_of(src, ' bpf_z(')}",
         "takes 2 parameters instead of 1: (u32 a) became (u32 a, void *ctx)")]


def test_a_group_keeps_the_users_of_each_kfunc(tmp_path):
    user = KnownUser("scx_tool", "1.0", False, False)
    result, _ = run(tmp_path, {"bpf_a": "int|u32 off", "bpf_b": "int|u32 off"},
                    {"bpf_a": "int|u64 off", "bpf_b": "int|u64 off"}, {"bpf_a": "stable"},
                    users={"bpf_b": (user,)})
    (f,) = result.findings
    assert f.members == ("bpf_a", "bpf_b") and f.kfunc == "bpf_a"  # the worst: bpf_a is stable
    assert f.users == (user,) and f.called == ("bpf_b",)
    assert users_text(f) == "Known users of bpf_b: scx_tool 1.0 (strong)."


# -- removals, renames and flag edits: one finding per set, file or delta -----------------------------

def other_set(kfuncs: dict) -> str:
    """kernel/bpf/helpers.c's text with another set (other_btf_ids), to append to the first."""
    return kernel(kfuncs).replace("generic_", "other_")


def test_three_kfuncs_removed_from_one_set_in_one_patch_are_one_finding(tmp_path):
    # one patch deleting the BTF_ID_FLAGS lines of three stable bpf_cgroup_* kfuncs in one hunk
    base = {"bpf_cgroup_a": "int|void", "bpf_cgroup_b": "int|void", "bpf_cgroup_c": "int|void", "bpf_keep": "int|void"}
    result, src = run(tmp_path, base, {"bpf_keep": "int|void"},
                      {"bpf_cgroup_a": "stable", "bpf_cgroup_b": "stable", "bpf_cgroup_c": "stable"})
    base_src = kernel(base)
    assert rows(result) == [("KFUNC_REMOVED", ("bpf_cgroup_a", "bpf_cgroup_b", "bpf_cgroup_c"), "violation",
                             f"{HELPERS}:{line_of(base_src, 'BTF_ID_FLAGS(func, bpf_cgroup_a)')}",
                             "is no longer in any registered kfunc set")]
    (f,) = result.findings
    assert f.cause == f"removed:{HELPERS}:generic_btf_ids"
    assert f.grouped and f.kfunc == "bpf_cgroup_a"


def test_kfuncs_removed_from_two_sets_are_two_findings(tmp_path):
    # two sets of one file (generic_btf_ids, other_btf_ids), two kfuncs removed from each
    base_a = {"bpf_a1": "int|void", "bpf_a2": "int|void", "bpf_keep": "int|void"}
    base_b = {"bpf_b1": "int|void", "bpf_b2": "int|void", "bpf_keep_b": "int|void"}
    base_src = kernel(base_a) + other_set(base_b)
    b = pair(tmp_path, {HELPERS: base_src, MANIFEST: manifest(bpf_a1="stable")},
             {HELPERS: kernel({"bpf_keep": "int|void"}) + other_set({"bpf_keep_b": "int|void"})})
    result = audit(b)
    assert rows(result) == [
        ("KFUNC_REMOVED", ("bpf_a1", "bpf_a2"), "violation",
         f"{HELPERS}:{line_of(base_src, 'BTF_ID_FLAGS(func, bpf_a1)')}", "is no longer in any registered kfunc set"),
        ("KFUNC_REMOVED", ("bpf_b1", "bpf_b2"), "info",
         f"{HELPERS}:{line_of(base_src, 'BTF_ID_FLAGS(func, bpf_b1)')}", "is no longer in any registered kfunc set")]


def test_renames_in_one_set_are_one_finding(tmp_path):
    # as 6.12 -> 7.2 renamed scx_bpf_dispatch* to scx_bpf_dsq_insert* (tests/test_realtree_audit_7x.py)
    result, src = run(tmp_path, {"bpf_dispatch": "int|u32 x", "bpf_dispatch_vtime": "int|void *p"},
                      {"bpf_dsq_insert": "int|u32 x", "bpf_dsq_insert_vtime": "int|void *p"},
                      {"bpf_dispatch": "stable"})
    base_src = kernel({"bpf_dispatch": "int|u32 x", "bpf_dispatch_vtime": "int|void *p"})
    assert rows(result) == [("KFUNC_RENAMED", ("bpf_dispatch", "bpf_dispatch_vtime"), "violation",
                             f"{HELPERS}:{line_of(base_src, 'BTF_ID_FLAGS(func, bpf_dispatch)')}",
                             "bpf_dispatch: renamed to bpf_dsq_insert (same BPF-visible signature, same set); "
                             "bpf_dispatch_vtime: renamed to bpf_dsq_insert_vtime (same BPF-visible signature, "
                             "same set)")]


def test_two_flag_edits_with_the_same_delta_are_one_finding(tmp_path):
    base = {"bpf_a": ("int|void", "KF_SLEEPABLE"), "bpf_b": ("int|void", "KF_SLEEPABLE")}
    result, src = run(tmp_path, base, {"bpf_a": "int|void", "bpf_b": "int|void"}, {"bpf_a": "stable"})
    assert rows(result) == [("KFUNC_FLAGS_RELAXED", ("bpf_a", "bpf_b"), "info",
                             f"{HELPERS}:{line_of(src, 'BTF_ID_FLAGS(func, bpf_a)')}",
                             "flags -KF_SLEEPABLE: compatible")]


def test_flag_edits_with_different_deltas_are_two_findings(tmp_path):
    base = {"bpf_a": ("int|void", "KF_SLEEPABLE"), "bpf_b": ("int|void", "KF_SLEEPABLE | KF_FASTCALL")}
    result, src = run(tmp_path, base, {"bpf_a": "int|void", "bpf_b": "int|void"}, {})
    assert rows(result) == [
        ("KFUNC_FLAGS_RELAXED", ("bpf_a",), "info", f"{HELPERS}:{line_of(src, 'BTF_ID_FLAGS(func, bpf_a)')}",
         "flags -KF_SLEEPABLE: compatible"),
        ("KFUNC_FLAGS_RELAXED", ("bpf_b",), "info", f"{HELPERS}:{line_of(src, 'BTF_ID_FLAGS(func, bpf_b)')}",
         "flags -KF_FASTCALL -KF_SLEEPABLE: compatible")]
