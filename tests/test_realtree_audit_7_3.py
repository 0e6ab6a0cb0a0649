"""The audit of sched_ext from 7.2 to 7.3 (Debian's linux-source-7.3, conftest ``sched_ext_7_3``):
one edit of a prototype is one finding, and a removed kfunc is shown at its place in 7.3.

Lines are found by their text (tests/kit/realtree.py); the comments give them in linux-source-7.2
7.2.13-1 and linux-source-7.3 7.3.4-1~bpo13+1.
"""

import json

import pytest

from kit.realtree import at, line_of

pytestmark = pytest.mark.realtree


@pytest.fixture(scope="module")
def result(sched_ext_7_3, kernel_state):
    from policybot.kernel.gitrepo import open_repo
    from policybot.kernel.scanner import Scanner
    from policybot.policy.audit import Auditor
    from policybot.policy.config import Policy
    repo = open_repo(str(sched_ext_7_3))
    return Auditor(repo, Scanner(repo, kernel_state), Policy()).audit("v7.3", "v7.2")


def test_a_parameter_list_rewritten_is_one_finding(result, sched_ext_7_3):
    # 7.2 kernel/sched/ext/cid.c scx_bpf_cid_override(const s32 *cpu_to_cid, u32 cpu_to_cid__sz);
    # 7.3 cid.c: (const s32 *cpu_to_cid__arena, u32 cpu_to_cid_cnt, const s32 *shard_start__arena,
    # u32 shard_start_cnt): two parameters added, and the first two renamed (their suffixes changed).
    # By position the old pair would read as retyped/re-annotated too: it is one edit, one finding
    (f,) = [f for f in result.findings if "scx_bpf_cid_override" in f.members]
    assert f.rule == "KFUNC_PARAM_ADDED"
    assert f.message.startswith("takes 4 parameters instead of 2: (const s32 *cpu_to_cid, u32 cpu_to_cid__sz) "
                                "became (const s32 *cpu_to_cid__arena, u32 cpu_to_cid_cnt, ")


def test_a_removed_kfunc_is_shown_where_its_entry_was_in_7_3(result, sched_ext_7_3):
    # 7.2 kernel/sched/ext/ext.c:10783 BTF_ID_FLAGS(func, scx_bpf_cpu_rq, KF_IMPLICIT_ARGS), after
    # scx_bpf_task_cid; 7.3 lists scx_bpf_task_cid (ext.c:10966) then scx_bpf_locked_rq (:10967)
    from policybot.render import sarif
    from policybot.render.findings import finding_json, finding_line
    repo = str(sched_ext_7_3 / ".git")  # kit.realtree reads a git directory
    (f,) = [f for f in result.findings if f.rule == "KFUNC_REMOVED" and f.kfunc == "scx_bpf_cpu_rq"]
    # 7.2 lists it in scx_kfunc_ids_any (:10783) and scx_kfunc_ids_cpu_only (:10818): located at the first
    was = at(repo, "v7.2", "kernel/sched/ext/ext.c", "BTF_ID_FLAGS(func, scx_bpf_cpu_rq,", nth=1, of=2)
    there = at(repo, "v7.3", "kernel/sched/ext/ext.c", "BTF_ID_FLAGS(func, scx_bpf_locked_rq,")
    assert line_of(repo, "v7.3", "kernel/sched/ext/ext.c", "BTF_ID_FLAGS(func, scx_bpf_locked_rq,") == \
        line_of(repo, "v7.3", "kernel/sched/ext/ext.c", "BTF_ID_FLAGS(func, scx_bpf_task_cid,") + 1
    assert finding_line(f) == (f"{there}: info[KFUNC_REMOVED]: scx_bpf_cpu_rq is no longer in any registered "
                               f"kfunc set (was {was} in v7.2)")
    j = finding_json(f)
    assert (j["location"], j["tree"], j["revision"], j["hunk"]) == (was, "base", "v7.2", there)
    (r,) = [r for r in json.loads(sarif.audit(result))["runs"][0]["results"]
            if r["ruleId"] == "KFUNC_REMOVED" and r["message"]["text"].startswith("scx_bpf_cpu_rq ")]
    path, line = there.rsplit(":", 1)
    assert r["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": path},
                                                     "region": {"startLine": int(line)}}
