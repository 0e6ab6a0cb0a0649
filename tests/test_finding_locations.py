"""Locations that say which tree (issue 25): a finding located only in the base (a removed kfunc)
is never shown as a line of the head the user has checked out.

Text, JSON and SARIF point at the head's line where the removed entry was (where a diff shows the
hunk that removed it) and say where it was in the base; without such a line the text line reads
``path:line (in BASE):``, which editors do not take for a place of their checkout, and SARIF
claims no head line (the file without a region, and the kfunc as a logical location). Expected lines are read from the fixture's
own text.
"""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

from policybot.app.series import judge_diff_text
from policybot.kernel.scanner import Scanner
from policybot.policy.audit import Auditor
from policybot.policy.config import Policy
from policybot.render import sarif
from policybot.render.audit import markdown
from policybot.render.findings import finding_json, finding_line
from kit.trees import FOO, HEAD_DAY, HELPERS, kernel, pair


def line_of(text: str, needle: str) -> int:
    (hit,) = [i for i, ln in enumerate(text.split("\n"), 1) if needle in ln]
    return hit


def audit(b):
    return Auditor(b.repo, Scanner(b.repo), Policy(), None).audit("v6.9", "v6.8")


def removed(tmp_path, base_kfuncs: dict, head_kfuncs: dict):
    base, head = kernel(base_kfuncs), kernel(head_kfuncs)
    result = audit(pair(tmp_path, {HELPERS: base}, {HELPERS: head}, "stable"))
    (f,) = [f for f in result.findings if f.rule == "KFUNC_REMOVED"]
    return result, f, base, head


def sarif_results(result) -> list[dict]:
    return json.loads(sarif.audit(result))["runs"][0]["results"]


def test_a_removed_entry_points_at_its_place_in_the_head(tmp_path):
    # bpf_foo was listed between bpf_a and bpf_b; the head lists bpf_a, bpf_b: the removal's
    # hunk is at the head's line after bpf_a, which is bpf_b's now
    result, f, base, head = removed(tmp_path, {"bpf_a": FOO, "bpf_foo": FOO, "bpf_b": FOO},
                                    {"bpf_a": FOO, "bpf_b": FOO})
    was = line_of(base, "BTF_ID_FLAGS(func, bpf_foo)")
    now = line_of(head, "BTF_ID_FLAGS(func, bpf_b)")
    assert was != now  # the definition removed above moves the set up: the base's line is another
    assert (f.tree, f.base_rev, f.head_rev) == ("base", "v6.8", "v6.9")
    assert finding_line(f) == (f"{HELPERS}:{now}: violation[KFUNC_REMOVED]: bpf_foo is no longer in any "
                               f"registered kfunc set (was {HELPERS}:{was} in v6.8)")
    j = finding_json(f)
    assert (j["location"], j["tree"], j["revision"], j["hunk"], j["head_location"]) == (
        f"{HELPERS}:{was}", "base", "v6.8", f"{HELPERS}:{now}", None)
    (r,) = sarif_results(result)
    assert r["locations"] == [{"physicalLocation": {"artifactLocation": {"uri": HELPERS},
                                                    "region": {"startLine": now}}}]
    assert r["message"]["text"] == (f"bpf_foo is no longer in any registered kfunc set (was {HELPERS}:{was} "
                                    f"in v6.8)")
    assert f"`{HELPERS}:{now}` (was `{HELPERS}:{was} in v6.8`)" in markdown(result)


def test_the_last_entry_removed_points_after_the_one_before_it(tmp_path):
    result, f, base, head = removed(tmp_path, {"bpf_a": FOO, "bpf_foo": FOO}, {"bpf_a": FOO})
    end = line_of(head, "BTF_KFUNCS_END(generic_btf_ids)")
    assert end == line_of(head, "BTF_ID_FLAGS(func, bpf_a)") + 1
    assert f.hunk is not None and str(f.hunk) == f"{HELPERS}:{end}"


def test_an_entry_replaced_by_another_points_at_its_replacement(tmp_path):
    # no entry of the base survives: the head's entries of that set replaced it (a new name with
    # another signature, so not a rename)
    result, f, base, head = removed(tmp_path, {"bpf_foo": FOO}, {"bpf_new": "int|struct cgroup *c"})
    assert str(f.hunk) == f"{HELPERS}:{line_of(head, 'BTF_ID_FLAGS(func, bpf_new)')}"


def test_without_a_head_line_nothing_claims_one(tmp_path):
    # the head has no entry of the set in that file: no line of the head to point at
    result, f, base, head = removed(tmp_path, {"bpf_foo": FOO}, {})
    was = line_of(base, "BTF_ID_FLAGS(func, bpf_foo)")
    assert f.hunk is None and f.tree == "base"
    line = finding_line(f)
    assert line == (f"{HELPERS}:{was} (in v6.8): violation[KFUNC_REMOVED]: bpf_foo is no longer in any "
                    "registered kfunc set")
    assert not line.startswith(f"{HELPERS}:{was}:")  # compiler-style parsers see no place of the head here
    j = finding_json(f)
    assert (j["tree"], j["revision"], j["hunk"], j["location"]) == ("base", "v6.8", None, f"{HELPERS}:{was}")
    (r,) = sarif_results(result)
    # the file, no line of it (GitHub rejects a whole upload for a result without an artifact)
    assert r["locations"] == [{"physicalLocation": {"artifactLocation": {"uri": HELPERS}},
                               "logicalLocations": [{"name": "bpf_foo", "kind": "function"}]}]
    assert r["message"]["text"] == (f"bpf_foo is no longer in any registered kfunc set (at {HELPERS}:{was} "
                                    "(in v6.8))")


def test_a_head_finding_says_its_tree_and_points_at_the_head(tmp_path):
    head = kernel({"bpf_foo": (FOO, "KF_SLEEPABLE")})
    result = audit(pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO})}, {HELPERS: head}, "stable"))
    (f,) = result.findings
    now = line_of(head, "BTF_ID_FLAGS(func, bpf_foo")
    assert (f.tree, f.where, f.was) == ("head", f"{HELPERS}:{now}", "")
    j = finding_json(f)
    assert (j["tree"], j["revision"], j["hunk"]) == ("head", "v6.9", None)
    (r,) = sarif_results(result)
    assert r["locations"][0]["physicalLocation"]["region"] == {"startLine": now}


def test_a_patch_that_does_not_apply_points_at_its_own_hunk(tmp_path):
    # judged from the diff text: the removal is located at the patched file's line where the
    # hunk removed it (the hunk's new side), the re-flagged entry at its "+" line
    src = kernel({"bpf_a": FOO, "bpf_foo": FOO, "bpf_bar": FOO})
    b = pair(tmp_path, {HELPERS: src}, {HELPERS: src}, "stable")
    auditor = Auditor(b.repo, Scanner(b.repo), Policy(), dt.date.fromisoformat(HEAD_DAY))
    commit = b.repo.revparse_single("v6.8").peel(None)
    inv = auditor.scanner.inventory_of_commit(commit, "v6.8")
    promises = auditor.promises_at(inv, commit, dt.date.fromisoformat(HEAD_DAY))
    start = line_of(src, "BTF_KFUNCS_START(generic_btf_ids)")
    diff = (f"diff --git a/{HELPERS} b/{HELPERS}\n--- a/{HELPERS}\n+++ b/{HELPERS}\n"
            f"@@ -{start},4 +{start + 10},3 @@\n BTF_KFUNCS_START(generic_btf_ids)\n BTF_ID_FLAGS(func, bpf_a)\n"
            "-BTF_ID_FLAGS(func, bpf_foo)\n-BTF_ID_FLAGS(func, bpf_bar)\n+BTF_ID_FLAGS(func, bpf_bar, KF_SLEEPABLE)\n")
    got = {f.rule: f for f in judge_diff_text(auditor, SimpleNamespace(diff=diff), inv, promises)}
    gone, flags = got["KFUNC_REMOVED"], got["KFUNC_FLAGS_TIGHTENED"]
    # new side: START is start+10, bpf_a +11, then the "+" line at +12, where bpf_foo was
    assert (str(gone.hunk), gone.tree, gone.base_rev) == (f"{HELPERS}:{start + 12}", "base", "v6.8")
    assert finding_line(gone).startswith(f"{HELPERS}:{start + 12}: violation[KFUNC_REMOVED]: bpf_foo ")
    assert finding_line(gone).endswith(f"(was {HELPERS}:{line_of(src, 'BTF_ID_FLAGS(func, bpf_foo)')} in v6.8)")
    assert (str(flags.head_location), flags.tree) == (f"{HELPERS}:{start + 12}", "head")
