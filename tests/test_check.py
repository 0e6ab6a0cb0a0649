"""policybot check on BPF programs compiled in the test run, against a tree the tests build.

The tree (tags v6.1, v6.2) and the programs (tests/bpf/*.bpf.c) are written
here, so every expected status comes from how they were written: v6.2
deprecates bpf_old for bpf_new, removes bpf_gone and changes bpf_changed's
parameter from u64 to a pointer.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from policybot.cli import main
from policybot.gitbuild import HistoryBuilder
from kit.bpf import SOURCES, build_deb, compile_bpf, line_of
from kit.sarif import validate
from kit.trees import BTF_H, MANIFEST, kernel

SHAPES = {"bpf_widths": "int|u8 a, long b", "bpf_fwd": "int|struct cgroup *cgrp", "bpf_enum": "int|u32 mode"}
BASE = {"bpf_foo": "int|struct task_struct *p, u32 flags", "bpf_old": "int|struct task_struct *p",
        "bpf_gone": "void|void", "bpf_changed": "int|u64 x", **SHAPES}
HEAD = {"bpf_foo": "int|struct task_struct *p, u32 flags", "bpf_old": "int|struct task_struct *p",
        "bpf_new": "int|struct task_struct *p", "bpf_changed": "int|struct task_struct *p", **SHAPES}
HEAD_MANIFEST = ("kfuncs:\n  bpf_foo:\n    stability: stable\n"
                 "  bpf_old:\n    stability: deprecated\n    replacement: bpf_new\n")


# a function of the tree that is no kfunc, whose address tests/bpf/func_address.bpf.c loads
TEST_RUN = "net/bpf/test_run.c"
FENTRY_TEST1 = "noinline int bpf_fentry_test1(int a)\n{\n\treturn a + 1;\n}\n"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    path = tmp_path_factory.mktemp("tree") / "repo"
    b = HistoryBuilder(path)
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": kernel(BASE),
              MANIFEST: "kfuncs:\n  bpf_foo:\n    stability: stable\n  bpf_old:\n    stability: stable\n",
              TEST_RUN: FENTRY_TEST1},
             "base", "2022-12-11T12:00:00")
    b.tag("v6.1")
    b.commit({"kernel/bpf/helpers.c": kernel(HEAD), MANIFEST: HEAD_MANIFEST}, "deprecate bpf_old",
             "2023-02-19T12:00:00")
    b.tag("v6.2")
    return str(path)


@pytest.fixture(scope="module")
def objs(tmp_path_factory):
    out = tmp_path_factory.mktemp("objs")
    return {n: compile_bpf(SOURCES / f"{n}.bpf.c", out / f"{n}.bpf.o")
            for n in ("kfunc_user", "needs_gone", "guarded", "shapes", "dead_fallback", "func_address")}


def run(capsys, *argv):
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def check_json(capsys, tree, obj, *revs, extra=()):
    args = ["check", str(obj), "--repo", tree, "--today", "2023-03-01", "--format", "json", *extra]
    for r in revs:
        args += ["--rev", r]
    rc, out, err = run(capsys, *args)
    docs = [json.loads(line) for line in out.splitlines()]
    return rc, {d["target"]: d for d in docs}


def by_name(doc):
    return {e["name"]: e for e in doc["externs"]}


def test_statuses_on_both_revisions(capsys, tree, objs):
    rc, docs = check_json(capsys, tree, objs["kfunc_user"], "v6.1", "v6.2", extra=["--fail-on", "never"])
    assert rc == 0
    old, new = by_name(docs["v6.1"]), by_name(docs["v6.2"])
    assert set(old) == {"bpf_foo", "bpf_foo___v2", "bpf_old", "bpf_gone", "bpf_changed"}
    assert {n: e["status"] for n, e in old.items()} == dict.fromkeys(old, "ok")
    assert docs["v6.1"]["loads"] is True
    assert {n: e["status"] for n, e in new.items()} == {
        "bpf_foo": "ok", "bpf_foo___v2": "ok", "bpf_old": "ok", "bpf_gone": "missing", "bpf_changed": "incompatible"}
    # the strong bpf_changed does not resolve: libbpf refuses the object
    assert docs["v6.2"]["loads"] is False
    assert new["bpf_foo___v2"]["kfunc"] == "bpf_foo" and new["bpf_foo___v2"]["weak"] is True
    assert new["bpf_foo"]["weak"] is False and new["bpf_gone"]["weak"] is True
    assert "parameter 1" in new["bpf_changed"]["reason"]


def test_prototype_shapes_as_libbpf_judges_them(capsys, tree, objs):
    _, docs = check_json(capsys, tree, objs["shapes"], "v6.2")
    e = by_name(docs["v6.2"])
    assert e["bpf_widths"]["status"] == "ok"  # integers match whatever their width
    assert e["bpf_fwd"]["status"] == "incompatible"  # a forward declaration is not a struct
    assert "declared only" in e["bpf_fwd"]["reason"]
    assert e["bpf_enum"]["status"] == "incompatible"  # an enum is not an integer
    assert docs["v6.2"]["loads"] is True  # all three are weak


def test_policy_of_each_extern(capsys, tree, objs):
    _, docs = check_json(capsys, tree, objs["kfunc_user"], "v6.2", extra=["--fail-on", "never"])
    e = by_name(docs["v6.2"])
    assert e["bpf_old"]["deprecated"] is True and e["bpf_old"]["replacement"] == "bpf_new"
    assert e["bpf_old"]["level"] == "deprecated" and e["bpf_old"]["earliest_removal"] > "2023-02-19"
    assert e["bpf_foo"]["level"] == "stable" and e["bpf_foo"]["promise_ends"] > "2023-03-01"
    assert e["bpf_foo"]["deprecated"] is False
    assert e["bpf_foo"]["first_release"] == "v6.1"
    assert e["bpf_changed"]["target_prototype"] == "int bpf_changed(struct task_struct *p)"


def test_call_sites_come_from_line_info(capsys, tree, objs):
    src = SOURCES / "kfunc_user.bpf.c"
    rc, out, _ = run(capsys, "check", str(objs["kfunc_user"]), "--repo", tree, "--rev", "v6.2", "--today", "2023-03-01")
    assert rc == 1  # a violation: the object does not load
    old_line = line_of(src, "r += bpf_old(t);")
    changed_line = line_of(src, "r += bpf_changed(7);")
    assert f"kfunc_user.bpf.c:{old_line}: warning[EXTERN_DEPRECATED]: bpf_old is deprecated on v6.2; use bpf_new" in out
    assert f"kfunc_user.bpf.c:{changed_line}: violation[EXTERN_INCOMPATIBLE]: bpf_changed:" in out
    assert f"kfunc_user.bpf.c:{line_of(src, 'bpf_gone();')}: info[EXTERN_UNRESOLVED]: bpf_gone:" in out
    assert "does not load: bpf_changed" in out


def test_strong_missing_fails_weak_missing_does_not(capsys, tree, objs):
    _, docs = check_json(capsys, tree, objs["needs_gone"], "v6.1", "v6.2", extra=["--fail-on", "never"])
    assert docs["v6.1"]["loads"] is True and docs["v6.2"]["loads"] is False
    assert docs["v6.2"]["findings"][0]["rule"] == "EXTERN_MISSING"
    rc, docs = check_json(capsys, tree, objs["guarded"], "v6.2")
    assert rc == 0 and docs["v6.2"]["loads"] is True
    assert by_name(docs["v6.2"])["bpf_gone___compat"] == {**by_name(docs["v6.2"])["bpf_gone___compat"],
                                                         "kfunc": "bpf_gone", "status": "missing", "weak": True}


def test_fail_on_levels(capsys, tree, objs):
    # guarded: only an info (weak, unresolved) on v6.2
    assert check_json(capsys, tree, objs["guarded"], "v6.2", extra=["--fail-on", "info"])[0] == 1
    assert check_json(capsys, tree, objs["guarded"], "v6.2", extra=["--fail-on", "warning"])[0] == 0
    # kfunc_user on v6.1: nothing at all
    assert check_json(capsys, tree, objs["kfunc_user"], "v6.1", extra=["--fail-on", "info"])[0] == 0


def test_matrix_over_releases(capsys, tree, objs):
    rc, out, _ = run(capsys, "check", str(objs["needs_gone"]), "--repo", tree, "--releases", "v6.*",
                     "--fail-on", "never")
    assert rc == 0
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith(("bpf_gone", "loads"))}
    assert rows == {"bpf_gone": ["ok", "missing"], "loads": ["yes", "NO"]}
    assert "first target it loads on: v6.1" in out


def test_sarif(capsys, tree, objs):
    rc, out, _ = run(capsys, "check", str(objs["kfunc_user"]), "--repo", tree, "--rev", "v6.2",
                     "--today", "2023-03-01", "--format", "sarif")
    assert rc == 1
    doc = validate(out)
    assert doc["version"] == "2.1.0"
    run0 = doc["runs"][0]
    results = {(r["ruleId"], r["level"], r["locations"][0]["physicalLocation"]["region"]["startLine"])
               for r in run0["results"]}
    src = SOURCES / "kfunc_user.bpf.c"
    assert ("EXTERN_DEPRECATED", "warning", line_of(src, "r += bpf_old(t);")) in results
    assert ("EXTERN_INCOMPATIBLE", "error", line_of(src, "r += bpf_changed(7);")) in results
    assert {r["id"] for r in run0["tool"]["driver"]["rules"]} == {r[0] for r in results}
    # paths under the working directory are relative: code scanning maps them to the checkout
    for r in run0["results"]:
        uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        if str(SOURCES).startswith(str(Path.cwd())):
            assert not uri.startswith("/") and (Path.cwd() / uri).exists(), uri


def test_audit_sarif_matches_its_json(capsys, tree):
    rc_json, out_json, _ = run(capsys, "audit", "--repo", tree, "--base", "v6.1", "--rev", "v6.2", "--format", "json")
    rc_sarif, out_sarif, _ = run(capsys, "audit", "--repo", tree, "--base", "v6.1", "--rev", "v6.2", "--format", "sarif")
    assert rc_json == rc_sarif
    findings = json.loads(out_json)["findings"]
    results = validate(out_sarif)["runs"][0]["results"]
    assert findings, "the tree removes a kfunc: audit must find it"
    want = sorted((f["rule"], f["location"]) for f in findings)
    got = sorted((r["ruleId"], "{}:{}".format(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                                              r["locations"][0]["physicalLocation"]["region"]["startLine"]))
                 for r in results)
    assert got == want


def test_bad_input_is_one_line_and_exit_2(capsys, tree, objs, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not an object\n")
    rc, out, err = run(capsys, "check", str(text), "--repo", tree, "--rev", "v6.2")
    assert rc == 2 and out == "" and len(err.splitlines()) == 1 and str(text) in err
    nobtf = compile_bpf(SOURCES / "guarded.bpf.c", tmp_path / "nobtf.bpf.o", debug=False)
    rc, out, err = run(capsys, "check", str(nobtf), "--repo", tree, "--rev", "v6.2")
    assert rc == 2 and len(err.splitlines()) == 1 and "no .BTF section" in err and str(nobtf) in err
    # a corrupt .BTF: the type section's length in the header made larger than the data
    data = bytearray(objs["guarded"].read_bytes())
    at = data.find(b"\x9f\xeb\x01\x00")
    data[at + 12:at + 16] = (0x7FFFFFF0).to_bytes(4, "little")
    broken = tmp_path / "broken.bpf.o"
    broken.write_bytes(bytes(data))
    rc, out, err = run(capsys, "check", str(broken), "--repo", tree, "--rev", "v6.2")
    assert rc == 2 and len(err.splitlines()) == 1 and str(broken) in err
    rc, _, err = run(capsys, "check", str(objs["guarded"]))
    assert rc == 2 and "give a target" in err


def test_without_line_info_the_object_is_named(capsys, tree, objs, tmp_path):
    objcopy = shutil.which("llvm-objcopy") or pytest.fail("no llvm-objcopy (Debian: llvm)")
    obj = tmp_path / "stripped.bpf.o"
    subprocess.run([objcopy, "--remove-section=.BTF.ext", str(objs["needs_gone"]), str(obj)], check=True)
    rc, out, _ = run(capsys, "check", str(obj), "--repo", tree, "--rev", "v6.2")
    assert rc == 1
    assert f"{obj}: violation[EXTERN_MISSING]: bpf_gone: bpf_gone is not a kfunc of v6.2" in out


def test_unknown_release_glob_and_revision_are_bad_input(capsys, tree, objs):
    rc, out, err = run(capsys, "check", str(objs["guarded"]), "--repo", tree, "--releases", "v9.*")
    assert rc == 2 and out == "" and len(err.splitlines()) == 1 and "v9.*" in err
    rc, out, err = run(capsys, "check", str(objs["guarded"]), "--repo", tree, "--rev", "v9.9")
    assert rc == 2 and len(err.splitlines()) == 1 and "v9.9" in err


def test_warm_check_reads_the_cached_target(capsys, tree, objs, tmp_path):
    """The second check of a revision comes from STATE_DIR/check; a new day is a new key."""
    args = ["check", str(objs["kfunc_user"]), "--repo", tree, "--rev", "v6.2", "--format", "json",
            "--state-dir", str(tmp_path), "--fail-on", "never"]
    first = run(capsys, *args, "--today", "2023-03-01")[1]
    assert len(list((tmp_path / "check").glob("*.json"))) == 1
    assert run(capsys, *args, "--today", "2023-03-01")[1] == first
    run(capsys, *args, "--today", "2023-03-02")
    assert len(list((tmp_path / "check").glob("*.json"))) == 2


def test_the_source_diff_and_the_btf_check_agree_on_what_an_integer_is():
    # one list (kernel/ctype) for both: each had names the other took for a typedef
    from policybot.btf.compat import text_shape
    from policybot.kernel.ctype import type_shape
    for name in ("sector_t", "ptrdiff_t", "le32", "__wsum", "off_t", "ssize_t", "uintptr_t", "__u64"):
        assert type_shape(name) == ("int",), name
        assert text_shape(f"const {name}").kind == "int", name
    for name in ("foo_t", "u33", "bpf_key"):
        assert type_shape(name)[0] == "typedef" and text_shape(name).kind == "unknown", name
    assert type_shape("__bitwise u32") == ("int",) and text_shape("__bitwise u32").kind == "int"


def test_the_policy_verdicts_table_decides_checks_verdicts_as_it_does_audits(capsys, tree, objs, tmp_path):
    """check asks the one judge: a [verdicts] override in the policy changes its verdict, as it
    does audit's (it used to read rules.toml's verdict itself and report a violation)."""
    policy = tmp_path / "policy.toml"
    policy.write_text('[verdicts]\nEXTERN_MISSING = "info"\n')
    args = ["check", str(objs["needs_gone"]), "--repo", tree, "--rev", "v6.2", "--today", "2023-03-01"]
    rc, out, _ = run(capsys, *args, "--format", "json")
    assert rc == 1 and [(f["extern"], f["verdict"]) for f in json.loads(out)["findings"]] == \
        [("bpf_gone", "violation")]
    rc, out, _ = run(capsys, *args, "--format", "json", "--policy", str(policy))
    assert rc == 0 and [(f["extern"], f["verdict"]) for f in json.loads(out)["findings"]] == [("bpf_gone", "info")]
    rc, out, _ = run(capsys, *args, "--policy", str(policy))
    assert rc == 0 and f"needs_gone.bpf.c:{line_of(SOURCES / 'needs_gone.bpf.c', 'bpf_gone();')}: info[EXTERN_MISSING]: bpf_gone" in out
    # the override names one rule: the incompatible extern of another object stays a violation
    rc, out, _ = run(capsys, "check", str(objs["kfunc_user"]), "--repo", tree, "--rev", "v6.2",
                     "--today", "2023-03-01", "--policy", str(policy))
    assert rc == 1 and "violation[EXTERN_INCOMPATIBLE]: bpf_changed" in out


# -- issue 21: flavored externs, return types, qualifiers, release order ---------------------------
# A tree of its own with releases past v6.9, where text order and version order differ:
# v6.2 declares bpf_foo and bpf_old stable, v6.9 deprecates bpf_old for bpf_new, v6.10 adds bpf_v610.
# The programs are tests/bpf/flavored.bpf.c and tests/bpf/prototypes.bpf.c.

PROTOTYPES = {"bpf_ret_ptr": "struct task_struct *|u32 id", "bpf_ret_ok": "struct task_struct *|u32 id",
              "bpf_ret_wide": "u64|u32 id",
              "bpf_cv": "const struct task_struct *|const struct task_struct *p, volatile u64 *counter"}
V62 = {"bpf_foo": "int|struct task_struct *p, u32 flags", "bpf_old": "int|struct task_struct *p", **PROTOTYPES}
V69 = {**V62, "bpf_new": "int|struct task_struct *p"}
V610 = {**V69, "bpf_v610": "int|u32 x"}
RELEASES_TODAY = "2024-08-01"


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    path = tmp_path_factory.mktemp("releases") / "repo"
    b = HistoryBuilder(path)
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": kernel(V62),
              MANIFEST: "kfuncs:\n  bpf_foo:\n    stability: stable\n  bpf_old:\n    stability: stable\n"},
             "v6.2", "2023-02-19T12:00:00")
    b.tag("v6.2")
    b.commit({"kernel/bpf/helpers.c": kernel(V69), MANIFEST: HEAD_MANIFEST}, "v6.9: deprecate bpf_old",
             "2024-03-10T12:00:00")
    b.tag("v6.9")
    b.commit({"kernel/bpf/helpers.c": kernel(V610)}, "v6.10: bpf_v610", "2024-07-14T12:00:00")
    b.tag("v6.10")
    return str(path)


@pytest.fixture(scope="module")
def new_objs(tmp_path_factory):
    out = tmp_path_factory.mktemp("objs")
    return {n: compile_bpf(SOURCES / f"{n}.bpf.c", out / f"{n}.bpf.o") for n in ("flavored", "prototypes")}


def check_lines(capsys, tree, obj, *target_args):
    """The JSON lines of one check, in the order check prints them."""
    rc, out, _ = run(capsys, "check", str(obj), "--repo", tree, "--today", RELEASES_TODAY, "--format", "json",
                     "--fail-on", "never", *target_args)
    assert rc == 0
    return [json.loads(line) for line in out.splitlines()]


def test_releases_are_checked_in_version_order_past_v6_9(capsys, releases, new_objs):
    docs = check_lines(capsys, releases, new_objs["prototypes"], "--releases", "v6.*")
    # text order would be v6.10, v6.2, v6.9
    assert [d["target"] for d in docs] == ["v6.2", "v6.9", "v6.10"]
    assert [by_name(d)["bpf_v610"]["status"] for d in docs] == ["missing", "missing", "ok"]
    assert [by_name(d)["bpf_v610"]["first_release"] for d in docs] == [None, None, "v6.10"]
    # a --rev given too comes first, and a release is not checked twice
    docs = check_lines(capsys, releases, new_objs["prototypes"], "--rev", "v6.9", "--releases", "v6.*")
    assert [d["target"] for d in docs] == ["v6.9", "v6.2", "v6.10"]


def test_matrix_columns_in_version_order(capsys, releases, new_objs):
    rc, out, _ = run(capsys, "check", str(new_objs["prototypes"]), "--repo", releases, "--releases", "v6.*",
                     "--today", RELEASES_TODAY, "--fail-on", "never")
    assert rc == 0
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("bpf_v610")}
    assert rows == {"bpf_v610": ["(weak)", "missing", "missing", "ok"]}  # the columns: v6.2, v6.9, v6.10
    assert "first target it loads on: v6.2" in out


def test_a_changed_return_type_is_incompatible_and_an_int_width_is_not(capsys, releases, new_objs):
    (doc,) = check_lines(capsys, releases, new_objs["prototypes"], "--rev", "v6.10")
    e = by_name(doc)
    # int in the program, struct task_struct * in the kernel: libbpf refuses the extern
    assert (e["bpf_ret_ptr"]["status"], e["bpf_ret_ptr"]["reason"]) == (
        "incompatible", "return type: int in the program, pointer to struct task_struct in the kernel")
    assert e["bpf_ret_ok"]["status"] == "ok"  # the same pointer on both sides
    # int in the program, u64 in the kernel: integers match whatever their width
    assert (e["bpf_ret_wide"]["status"], e["bpf_ret_wide"]["reason"]) == ("ok", None)
    assert [f["extern"] for f in doc["findings"] if f["rule"] == "EXTERN_UNRESOLVED"] == ["bpf_ret_ptr"]


def test_const_and_volatile_are_kept_in_printed_prototypes(capsys, releases, new_objs):
    (doc,) = check_lines(capsys, releases, new_objs["prototypes"], "--rev", "v6.10")
    cv = by_name(doc)["bpf_cv"]
    assert cv["status"] == "ok"
    # the tree's definition, as the source writes it
    assert cv["target_prototype"] == \
        "const struct task_struct *bpf_cv(const struct task_struct *p, volatile u64 *counter)"
    # the program's extern, as its BTF says (clang names no parameter of an extern)
    assert cv["prototype"] == "const struct task_struct *bpf_cv(const struct task_struct *, volatile __u64 *)"


def test_a_flavored_extern_is_judged_as_its_kfunc(capsys, releases, new_objs):
    old, new = check_lines(capsys, releases, new_objs["flavored"], "--rev", "v6.2", "--rev", "v6.10")
    for doc in (old, new):
        e = by_name(doc)
        assert e["bpf_foo___v2"]["kfunc"] == "bpf_foo" and e["bpf_foo___v2"]["status"] == "ok"
        # bpf_foo's level and promise, not those of a kfunc named bpf_foo___v2 (there is none)
        assert e["bpf_foo___v2"]["level"] == e["bpf_foo"]["level"] == "stable"
        assert e["bpf_foo___v2"]["promise_ends"] == e["bpf_foo"]["promise_ends"] == "2028-02-19"
        assert e["bpf_foo___v2"]["first_release"] == "v6.2"
        assert e["bpf_old___compat"]["kfunc"] == "bpf_old" and e["bpf_old___compat"]["status"] == "ok"
    assert by_name(old)["bpf_old___compat"]["level"] == "stable" and old["findings"] == []
    compat = by_name(new)["bpf_old___compat"]
    assert (compat["level"], compat["deprecated"], compat["replacement"]) == ("deprecated", True, "bpf_new")
    assert [(f["rule"], f["extern"], f["message"]) for f in new["findings"]] == [
        ("EXTERN_DEPRECATED", "bpf_old___compat", "bpf_old___compat (kfunc bpf_old) is deprecated on v6.10; "
                                                  "use bpf_new; removal not before 2028-02-19")]
    assert compat["earliest_removal"] == "2028-02-19"  # bpf_old's stable promise from v6.2 runs until then


# -- issue 27: dead fallbacks, address uses, SARIF for code scanning ---------------------------------

def test_a_weak_flavor_that_resolves_on_no_target_is_a_dead_fallback(capsys, tree, objs):
    """dead_fallback.bpf.c: bpf_foo___v2 asks libbpf for bpf_foo with a third parameter that no
    target has; bpf_new___v2 asks for a kfunc v6.2 has."""
    obj, src = objs["dead_fallback"], SOURCES / "dead_fallback.bpf.c"
    rc, docs = check_json(capsys, tree, obj, "v6.1", "v6.2", extra=["--fail-on", "warning"])
    assert rc == 1  # the warning
    for d in docs.values():
        e = by_name(d)
        assert e["bpf_foo___v2"]["status"] == "incompatible" and e["bpf_foo___v2"]["dead_fallback"] is True
        assert e["bpf_new___v2"]["dead_fallback"] is False
    assert by_name(docs["v6.2"])["bpf_new___v2"]["status"] == "ok"
    decl = line_of(src, "bpf_foo___v2(struct task_struct *p")
    for d in docs.values():  # the finding itself, with the declaration's line, in each line of the object
        (f,) = [f for f in d["findings"] if f["rule"] == "EXTERN_DEAD_FALLBACK"]
        assert (f["extern"], f["verdict"], f["location"]) == ("bpf_foo___v2", "warning", f"{src}:{decl}")
    rc, out, _ = run(capsys, "check", str(obj), "--repo", tree, "--rev", "v6.1", "--rev", "v6.2", "--fail-on", "never")
    # at the declaration (the object's DWARF), not at the call
    assert decl != line_of(src, "return bpf_foo___v2(")
    dead = [line for line in out.splitlines() if "warning[EXTERN_DEAD_FALLBACK]" in line]
    assert dead == [f"{src}:{decl}: warning[EXTERN_DEAD_FALLBACK]: bpf_foo___v2 (kfunc bpf_foo): weak, and resolves "
                    "on none of the 2 targets (incompatible on v6.1, v6.2): the code it guards never runs there "
                    "[v6.1, v6.2]"]
    assert "hint[EXTERN_DEAD_FALLBACK]: " in out
    # one target says nothing of the others: no dead fallback
    rc, out, _ = run(capsys, "check", str(obj), "--repo", tree, "--rev", "v6.1", "--fail-on", "never")
    assert "EXTERN_DEAD_FALLBACK" not in out.split("hint[")[0]


def test_an_address_use_resolves_against_any_function_of_the_tree(capsys, tree, objs):
    """func_address.bpf.c loads bpf_fentry_test1's address and never calls it (get_func_ip_test):
    libbpf resolves it against any kernel function of that name, and the tree defines one, no
    kfunc, in net/bpf/test_run.c."""
    rc, docs = check_json(capsys, tree, objs["func_address"], "v6.1", "v6.2")
    src = SOURCES / "func_address.bpf.c"
    assert rc == 0
    for d in docs.values():
        (e,) = d["externs"]
        assert (e["name"], e["status"], e["uses"], e["calls"]) == ("bpf_fentry_test1", "ok", "address", [])
        assert e["address_uses"] == [f"{src}:{line_of(src, '== &bpf_fentry_test1')}"]
        assert d["loads"] is True
    # the same name called (needs_gone calls bpf_gone, a kfunc v6.2 lacks) stays missing
    _, docs = check_json(capsys, tree, objs["needs_gone"], "v6.2", extra=["--fail-on", "never"])
    assert by_name(docs["v6.2"])["bpf_gone"]["uses"] == "call"


def test_sarif_runs_per_target_with_stable_fingerprints(capsys, tree, objs):
    args = ["check", str(objs["kfunc_user"]), str(objs["dead_fallback"]), "--repo", tree, "--rev", "v6.1",
            "--rev", "v6.2", "--today", "2023-03-01", "--format", "sarif"]
    first = validate(run(capsys, *args)[1])
    second = validate(run(capsys, *args, "--today", "2023-03-02")[1])
    assert [r["automationDetails"]["id"] for r in first["runs"]] == [
        "policybot/check/v6.1/", "policybot/check/v6.2/", "policybot/check/all-targets/"]

    def prints(doc):
        return [[(r["ruleId"], r["partialFingerprints"]["policybotFinding/v1"]) for r in x["results"]]
                for x in doc["runs"]]
    assert prints(first) == prints(second)
    fps = [fp for x in prints(first) for _, fp in x]
    assert len(set(fps)) == len(fps)  # one per finding
    # notes (EXTERN_UNRESOLVED is info) only when --fail-on asks for them
    levels = {r["level"] for x in first["runs"] for r in x["results"]}
    assert "note" not in levels and {"error", "warning"} <= levels
    noted = validate(run(capsys, *args, "--fail-on", "info")[1])
    assert "EXTERN_UNRESOLVED" in {r["ruleId"] for x in noted["runs"] for r in x["results"] if r["level"] == "note"}


def test_a_fingerprint_survives_moved_lines(capsys, tree, tmp_path):
    """The same program with its lines moved down, built to the same object path: same fingerprints,
    other lines."""
    src = (SOURCES / "kfunc_user.bpf.c").read_text()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "prog.bpf.c").write_text(src)
    (tmp_path / "b" / "prog.bpf.c").write_text(src.replace("\n", "\n\n\n", 1))
    obj = tmp_path / "prog.bpf.o"
    args = ["check", str(obj), "--repo", tree, "--rev", "v6.1", "--rev", "v6.2", "--today", "2023-03-01",
            "--format", "sarif", "--fail-on", "info"]
    seen = []
    for d in ("a", "b"):
        compile_bpf(tmp_path / d / "prog.bpf.c", obj)
        doc = validate(run(capsys, *args)[1])
        seen.append([(r["partialFingerprints"]["policybotFinding/v1"],
                      r["locations"][0]["physicalLocation"]["region"]["startLine"])
                     for x in doc["runs"] for r in x["results"]])
    (a, b) = seen
    assert a and [fp for fp, _ in a] == [fp for fp, _ in b]
    assert [line + 2 for _, line in a] == [line for _, line in b]


def test_objects_inside_a_program_and_a_package(capsys, tree, objs, tmp_path):
    """A program that carries BPF objects (here /bin/true with two objects appended, found by their
    ELF headers as a skeleton's are) and a Debian package holding it (dpkg-deb --build): each
    embedded object is checked as if given alone."""
    host_bytes = Path("/bin/true").read_bytes()
    gone, guarded = objs["needs_gone"].read_bytes(), objs["guarded"].read_bytes()
    pad = b"\0" * (-len(host_bytes) % 8)
    program = tmp_path / "prog"
    program.write_bytes(host_bytes + pad + gone + guarded)
    at_gone, at_guarded = len(host_bytes) + len(pad), len(host_bytes) + len(pad) + len(gone)
    rc, out, _ = run(capsys, "check", str(program), "--repo", tree, "--rev", "v6.2", "--format", "json",
                     "--fail-on", "never")
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(d["object"], d["loads"]) for d in lines] == [(f"{program}@{at_gone:#x}", False),
                                                          (f"{program}@{at_guarded:#x}", True)]
    assert by_name(lines[0])["bpf_gone"]["status"] == "missing"
    deb = build_deb(tmp_path, "prog", "1.0", {"usr/sbin/prog": program.read_bytes()})
    rc, out, _ = run(capsys, "check", str(deb), "--repo", tree, "--rev", "v6.2", "--format", "json",
                     "--fail-on", "never")
    assert [json.loads(line)["object"] for line in out.splitlines()] == [
        f"{deb.name}:usr/sbin/prog@{at_gone:#x}", f"{deb.name}:usr/sbin/prog@{at_guarded:#x}"]
    # SARIF names the object and the package that holds it
    rc, out, _ = run(capsys, "check", str(deb), "--repo", tree, "--rev", "v6.2", "--format", "sarif")
    doc = validate(out)
    (result,) = [r for run_ in doc["runs"] for r in run_["results"] if r["ruleId"] == "EXTERN_MISSING"]
    assert {"name": f"{deb.name}:usr/sbin/prog@{at_gone:#x}", "kind": "module"} in \
        result["locations"][0]["logicalLocations"]
    assert result["properties"]["container"] == str(deb)
    # a program that carries none is bad input, said in one line
    rc, out, err = run(capsys, "check", "/bin/true", "--repo", tree, "--rev", "v6.2")
    assert rc == 2 and out == "" and err.strip() == "policybot: /bin/true: no BPF object in it"


def test_an_address_use_of_a_function_the_tree_lacks_is_missing(capsys, tmp_path, objs):
    b = HistoryBuilder(tmp_path / "repo")
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": kernel(BASE)}, "base", "2022-12-11T12:00:00")
    b.tag("v6.1")
    rc, docs = check_json(capsys, str(tmp_path / "repo"), objs["func_address"], "v6.1", extra=["--fail-on", "never"])
    (e,) = docs["v6.1"]["externs"]
    assert (e["status"], e["uses"], e["reason"]) == ("missing", "address",
                                                     "bpf_fentry_test1 is no kernel function of v6.1")
    assert docs["v6.1"]["loads"] is False


def test_an_input_without_objects_does_not_stop_the_others(capsys, tree, objs, tmp_path):
    """/bin/true carries no BPF object: it is said in one line, the object given after it is still
    checked and its findings rendered, and the run exits 2 (it could not do all it was asked)."""
    text = tmp_path / "notes.txt"
    text.write_text("not an object\n")
    rc, out, err = run(capsys, "check", "/bin/true", str(objs["needs_gone"]), str(text), "--repo", tree,
                       "--rev", "v6.2")
    assert rc == 2
    assert "violation[EXTERN_MISSING]: bpf_gone" in out
    lines = err.splitlines()
    assert lines[0] == "policybot: /bin/true: no BPF object in it"
    assert len(lines) == 2 and str(text) in lines[1]


def test_a_bpf_object_is_no_kernel(capsys, objs):
    """A BPF object (ET_REL, no .modinfo) given as --btf is refused in one line, not read as a kernel."""
    rc, out, err = run(capsys, "check", str(objs["kfunc_user"]), "--btf", str(objs["guarded"]))
    assert rc == 2 and out == "" and len(err.splitlines()) == 1
    assert f"{objs['guarded']}: a BPF object, not a kernel" in err
