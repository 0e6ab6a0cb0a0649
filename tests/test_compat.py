"""policybot compat on a tree the tests build: the header it writes, compiled with clang and
checked with `policybot check` against each release.

The tree (tags v6.8, v6.9) is written here, so each expectation comes from how it was written:
v6.9 renames bpf_old_name to bpf_new_name (same prototype, same set: the history's rename),
widens bpf_width's parameter and result (u32 -> u64, int -> long: bridged by casts), adds a
third parameter to bpf_foo (no neutral value: no wrapper) and to bpf_bar (the same, but the
policy file gives a fallback), makes bpf_result return an int where it returned nothing and
bpf_kind take a pointer where it took a u64 (no wrapper either), and leaves bpf_keep alone.
"""

import dataclasses
import json
import re
from pathlib import Path

import pytest

from policybot.cli import main
from policybot.gitbuild import HistoryBuilder
from policybot.model.check import Target, TargetKfunc
from policybot.model.compat import CompatHeader, CParam, Entry, EntryKind, Promise, Variant
from policybot.policy.compat import self_check
from policybot.render.compat import dead_lines
from kit.bpf import build_deb, compile_bpf, flavorless, undefined_symbols
from kit.trees import BTF_H, kernel

BASE = {"bpf_old_name": "int|struct task_struct *p", "bpf_width": "int|u32 x",
        "bpf_foo": "int|struct task_struct *p, u32 flags", "bpf_bar": "int|struct task_struct *p, u32 flags",
        "bpf_keep": "void|u64 x", "bpf_result": "void|u64 x", "bpf_kind": "int|u64 x"}
HEAD = {"bpf_new_name": "int|struct task_struct *p", "bpf_width": "long|u64 x",
        "bpf_foo": "int|struct task_struct *p, u32 flags, u64 extra",
        "bpf_bar": "int|struct task_struct *p, u32 flags, u64 extra", "bpf_keep": "void|u64 x",
        "bpf_result": "int|u64 x", "bpf_kind": "int|struct task_struct *x"}
FALLBACK = "return bpf_bar___v1(p, flags);"
POLICY = f'[compat."bpf_bar"]\nfallback = "{FALLBACK}"\n'

# what a program against this tree needs of vmlinux.h (the tree has no BTF to dump one from)
VMLINUX = "#include <linux/bpf.h>\ntypedef __u32 u32;\ntypedef __u64 u64;\nstruct task_struct { int pid; };\n"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    b = HistoryBuilder(tmp_path_factory.mktemp("tree") / "repo")
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": kernel(BASE)}, "base", "2024-01-07T12:00:00")
    b.tag("v6.8")
    b.commit({"kernel/bpf/helpers.c": kernel(HEAD)}, "change", "2024-03-10T12:00:00")
    b.tag("v6.9")
    return b.repo.workdir


def compat(capsys, tree, tmp_path, *extra):
    rc = main(["compat", "--repo", tree, "--releases", "v6.8..v6.9", "--state-dir", str(tmp_path / "state"), *extra])
    out = capsys.readouterr()
    return rc, out.out, out.err


def block(header: str, name: str) -> str:
    """The header's text about ``name``: from its comment to the next kfunc's."""
    m = re.search(rf"^/\*\n \* {name}: .*?(?=^/\*\n \* \w+: |^#endif)", header, re.M | re.S)
    assert m, f"no entry for {name} in\n{header}"
    return m[0]


def test_each_kind_of_change(capsys, tree, tmp_path):
    rc, header, err = compat(capsys, tree, tmp_path)
    assert (rc, err) == (0, "")
    # one entry per kfunc that differs; bpf_keep did not
    entries = sorted(set(re.findall(r"^/\*\n \* (\w+): ", header, re.M)))
    assert entries == ["bpf_bar", "bpf_foo", "bpf_kind", "bpf_new_name", "bpf_result", "bpf_width"]

    rename = block(header, "bpf_new_name")
    assert "renamed within the range (earlier names: bpf_old_name)" in rename
    assert "extern int bpf_new_name___v1(struct task_struct *p) __ksym __weak;" in rename
    assert "extern int bpf_old_name___v1(struct task_struct *p) __ksym __weak;" in rename
    assert "bpf_old_name___v1: bpf_old_name as v6.8 has it, unstable, with no promise; gone in v6.9." in rename
    assert "#define bpf_new_name(...) __compat_bpf_new_name(__VA_ARGS__)" in rename
    assert "#define bpf_old_name(...) __compat_bpf_new_name(__VA_ARGS__)" in rename  # old name -> new

    width = block(header, "bpf_width")
    assert "extern long bpf_width___v2(u64 x) __ksym __weak;" in width
    assert "extern int bpf_width___v1(u32 x) __ksym __weak;" in width
    assert "bpf_width___v1: bpf_width as v6.8 has it, unstable, with no promise; changed in v6.9." in width
    assert "return (long)bpf_width___v1((u32)x);" in width

    foo = block(header, "bpf_foo")
    assert "__compat_bpf_foo" not in foo and "#define bpf_foo(" not in foo
    assert ("No wrapper for bpf_foo: bpf_foo takes u64 extra beyond the 2 parameters of bpf_foo (v6.8): "
            "an added argument has no neutral value to drop.") in foo
    assert "extern int bpf_foo___v1(struct task_struct *p, u32 flags) __ksym __weak;" in foo
    assert "extern int bpf_foo___v2(struct task_struct *p, u32 flags, u64 extra) __ksym __weak;" in foo

    result = block(header, "bpf_result")
    assert "__compat_bpf_result" not in result
    assert ("No wrapper for bpf_result: bpf_result (v6.8) returns nothing and bpf_result returns int: "
            "no value can be made up.") in result
    kind = block(header, "bpf_kind")
    assert "__compat_bpf_kind" not in kind
    assert ("No wrapper for bpf_kind: parameter 1 is u64 in bpf_kind (v6.8) and struct task_struct * in "
            "bpf_kind: a cast would change its meaning.") in kind


def test_the_operators_fallback_is_the_wrappers_last_resort(capsys, tree, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    rc, header, err = compat(capsys, tree, tmp_path, "--policy", str(policy))
    assert (rc, err) == (0, "")
    bar = block(header, "bpf_bar")
    body = bar[bar.index("__compat_bpf_bar("):]
    assert re.search(r"if \(bpf_ksym_exists\(bpf_bar___v2\)\) \{\s*return bpf_bar___v2\(p, flags, extra\);\s*\}"
                     r"\s*/\* The operator's fallback \(the policy file's \[compat.\"bpf_bar\"\]\)\. \*/\s*"
                     + re.escape(FALLBACK) + r"\s*\}", body), body
    assert "#define bpf_bar(...) __compat_bpf_bar(__VA_ARGS__)" in bar
    # without the note, the same change leaves bpf_foo without a wrapper
    assert "No wrapper for bpf_foo" in header


def test_the_header_compiles_and_each_wrapper_resolves_on_both_releases(capsys, tree, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    rc, header, _ = compat(capsys, tree, tmp_path, "--policy", str(policy))
    assert rc == 0
    (tmp_path / "compat.h").write_text(header)
    (tmp_path / "vmlinux.h").write_text(VMLINUX)
    src = tmp_path / "user.bpf.c"
    src.write_text('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include "compat.h"\n'
                   'char LICENSE[] SEC("license") = "GPL";\n'
                   'SEC("tp_btf/task_newtask")\nint prog(unsigned long long *ctx)\n{\n'
                   '\tstruct task_struct *p = (void *)ctx[0];\n'
                   '\treturn bpf_old_name(p) + bpf_new_name(p) + bpf_width(ctx[1]) + bpf_bar(p, 1, 2);\n}\n')
    obj = compile_bpf(src, tmp_path / "user.bpf.o")
    syms = undefined_symbols(obj)
    # every call went through a wrapper to weak flavored externs, one per era
    assert sorted(syms) == ["bpf_bar___v1", "bpf_bar___v2", "bpf_new_name___v1", "bpf_old_name___v1",
                            "bpf_width___v1", "bpf_width___v2"]
    assert {bind for bind, _ in syms.values()} == {"WEAK"}
    assert main(["check", str(obj), "--repo", tree, "--rev", "v6.8", "--rev", "v6.9", "--format", "json",
                 "--fail-on", "never", "--state-dir", str(tmp_path / "state")]) == 0
    docs = {d["target"]: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    ok = {rev: {e["name"] for e in d["externs"] if e["status"] == "ok"} for rev, d in docs.items()}
    # each era's extern resolves on the release that has that prototype, and the object loads on both
    assert ok["v6.8"] == {"bpf_old_name___v1", "bpf_width___v1", "bpf_width___v2", "bpf_bar___v1"}
    assert ok["v6.9"] == {"bpf_new_name___v1", "bpf_width___v1", "bpf_width___v2", "bpf_bar___v2"}
    assert docs["v6.8"]["loads"] and docs["v6.9"]["loads"]
    for e in docs["v6.9"]["externs"]:
        assert e["kfunc"] == flavorless(e["name"])
    # the object itself narrows a header to the kfuncs it calls
    rc, narrowed, _ = compat(capsys, tree, tmp_path, "--kfuncs", str(obj))
    assert rc == 0
    assert sorted(set(re.findall(r"^/\*\n \* (\w+): ", narrowed, re.M))) == ["bpf_bar", "bpf_new_name", "bpf_width"]


def test_kfuncs_narrows_the_header_to_what_a_source_names(capsys, tree, tmp_path):
    src = tmp_path / "mine.bpf.c"
    src.write_text("int f(struct task_struct *p) { return bpf_old_name(p); }\n")
    rc, header, _ = compat(capsys, tree, tmp_path, "--kfuncs", str(src))
    assert rc == 0
    assert sorted(set(re.findall(r"^/\*\n \* (\w+): ", header, re.M))) == ["bpf_new_name"]
    assert f"Only the kfuncs that {src} name are here." in header


def test_a_range_that_is_not_two_release_tags_is_refused(capsys, tree, tmp_path):
    for bad, said in (("v6.8", "expected two release tags as A..B"), ("v6.9..v6.8", "v6.9 is not older than v6.8"),
                      ("v6.8..v6.12", "no release tag v6.12")):
        rc, out, err = _run(capsys, tree, tmp_path, bad)
        assert (rc, out) == (2, ""), bad
        assert said in err, err


def _run(capsys, tree, tmp_path, releases):
    rc = main(["compat", "--repo", tree, "--releases", releases, "--state-dir", str(tmp_path / "state")])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_self_check_reports_a_weak_extern_that_resolves_on_no_release():
    # the dead fallback: a ___v2 extern whose essential name is the 1-argument kfunc,
    # declared with 2 arguments; and a ___compat extern of a kfunc no release has
    one = TargetKfunc("scx_bpf_dsq_move_to_local", "bool scx_bpf_dsq_move_to_local(u64 dsq_id)", None, "bool", ("u64",))
    targets = [Target(rel, "source", {"scx_bpf_dsq_move_to_local": one}) for rel in ("v6.12", "v7.2")]
    two = Variant("scx_bpf_dsq_move_to_local", "scx_bpf_dsq_move_to_local___v2", "bool",
                  (CParam("u64", "dsq_id"), CParam("u64", "enq_flags")), ("v7.2",), Promise("unstable"))
    fits = Variant("scx_bpf_dsq_move_to_local", "scx_bpf_dsq_move_to_local___v1", "bool",
                   (CParam("u64", "dsq_id"),), ("v7.2",), Promise("unstable"))
    nowhere = Variant("scx_bpf_gone", "scx_bpf_gone___compat", "void", (), ("v6.12",), Promise("unstable"))
    dead = self_check([two, fits, nowhere], targets)
    assert [(d.extern, d.kfunc, d.weak) for d in dead] == [
        ("scx_bpf_dsq_move_to_local___v2", "scx_bpf_dsq_move_to_local", True),
        ("scx_bpf_gone___compat", "scx_bpf_gone", True)]
    assert dead[0].reasons == ("v6.12: 2 parameters in the program, 1 in the kernel",
                               "v7.2: 2 parameters in the program, 1 in the kernel")
    assert dead[1].reasons[0] == "v6.12: scx_bpf_gone is not a kfunc of v6.12"
    # a strong extern must resolve on every release: one that resolves on one is reported
    strong = self_check([dataclasses.replace(fits, weak=False)], targets[:1] + [Target("v6.1", "source", {})])
    assert [(d.extern, d.weak, d.reasons) for d in strong] == [
        ("scx_bpf_dsq_move_to_local___v1", False, ("v6.1: scx_bpf_dsq_move_to_local is not a kfunc of v6.1",))]


def test_a_bad_fallback_note_or_kfuncs_file_is_one_line_and_nothing_written(capsys, tree, tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text('[windows]\nstable = "5y"\n\n[compat."bpf_bar"]\nfallbak = "return 0;"\n')
    rc, out, err = compat(capsys, tree, tmp_path, "--policy", str(policy))
    assert (rc, out) == (2, "")
    assert err.strip() == f"policybot: {policy}:5: compat.bpf_bar.fallbak: unknown key (known: fallback)"
    rc, out, err = compat(capsys, tree, tmp_path, "--kfuncs", str(tmp_path / "nowhere.bpf.c"))
    assert (rc, out) == (2, "")
    assert str(tmp_path / "nowhere.bpf.c") in err and len(err.strip().splitlines()) == 1


# a kfunc the range's first release lacks, changed later (added in v6.9, widened in v6.10), and a
# lineage renamed after it was added (bpf_late_old in v6.9, bpf_late_new in v6.10): v6.8 has none
# of their variants, so a wrapper's untested last resort would be refused there
# v6.10 also adds an argument in the middle of bpf_mid, and bpf_succ___v2 beside bpf_succ (which stays)
MID, MID2 = "int|struct task_struct *p, u64 flags", "int|struct task_struct *p, u32 ack, u64 flags"
LATE = {"v6.8": {"bpf_keep": "void|u64 x", "bpf_mid": MID, "bpf_succ": "int|u64 x"},
        "v6.9": {"bpf_keep": "void|u64 x", "bpf_late": "int|u32 x", "bpf_late_old": "int|struct task_struct *p",
                 "bpf_mid": MID, "bpf_succ": "int|u64 x"},
        "v6.10": {"bpf_keep": "void|u64 x", "bpf_late": "long|u64 x", "bpf_late_new": "int|struct task_struct *p",
                  "bpf_mid": MID2, "bpf_succ": "int|u64 x", "bpf_succ___v2": "int|u64 x"}}


@pytest.fixture(scope="module")
def late_tree(tmp_path_factory):
    b = HistoryBuilder(tmp_path_factory.mktemp("late") / "repo")
    for i, (tag, kfuncs) in enumerate(LATE.items()):
        b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": kernel(kfuncs)}, tag,
                 f"2024-0{2 * i + 1}-07T12:00:00")
        b.tag(tag)
    return b.repo.workdir


def test_a_kfunc_the_first_release_lacks_gets_no_untested_last_resort(capsys, late_tree, tmp_path):
    rc = main(["compat", "--repo", late_tree, "--releases", "v6.8..v6.10", "--state-dir", str(tmp_path / "state")])
    out = capsys.readouterr()
    assert (rc, out.err) == (0, "")
    late = block(out.out, "bpf_late")
    assert "bpf_late: its prototype changed within the range.\n * Not in v6.8: no variant of it is there." in late
    assert "__compat_bpf_late" not in late and "#define bpf_late(" not in late
    assert "No wrapper for bpf_late: bpf_late is not in v6.8: nothing else does its work." in late
    assert "extern int bpf_late___v1(u32 x) __ksym __weak;" in late
    renamed = block(out.out, "bpf_late_new")
    assert "renamed within the range (earlier names: bpf_late_old).\n * Not in v6.8: no variant of it is there." in renamed
    assert "__compat_bpf_late_new" not in renamed
    assert ("No wrapper for bpf_late_new: none of bpf_late_old, bpf_late_new is in v6.8: "
            "nothing else does its work.") in renamed
    # with the operator's fallback, the wrapper tests every variant before it
    policy = tmp_path / "policy.toml"
    policy.write_text('[compat."bpf_late"]\nfallback = "return -1;"\n')
    assert main(["compat", "--repo", late_tree, "--releases", "v6.8..v6.10", "--state-dir", str(tmp_path / "state"),
                 "--policy", str(policy)]) == 0
    late = block(capsys.readouterr().out, "bpf_late")
    body = late[late.index("__compat_bpf_late("):]
    assert re.search(r"if \(bpf_ksym_exists\(bpf_late___v2\)\) \{\s*return bpf_late___v2\(x\);\s*\}\s*"
                     r"if \(bpf_ksym_exists\(bpf_late___v1\)\) \{\s*return \(long\)bpf_late___v1\(\(u32\)x\);\s*\}"
                     r"\s*/\*[^*]*\*/\s*return -1;\s*\}", body), body


def test_self_check_reports_an_untested_call_that_resolves_on_no_variant_of_a_release():
    one = TargetKfunc("bpf_late", "int bpf_late(u32 x)", None, "int", ("u32",))
    targets = [Target("v6.8", "source", {}), Target("v6.9", "source", {"bpf_late": one})]
    v1 = Variant("bpf_late", "bpf_late___v1", "int", (CParam("u32", "x"),), ("v6.9",), Promise("unstable"),
                 call="bpf_late___v1(x)")
    untested = Entry("bpf_late", EntryKind.PROTOTYPE, (v1,), wrapper=True, checked_last=False)
    dead = self_check([v1], targets, [untested])
    assert [(d.extern, d.untested, d.reasons) for d in dead] == [
        ("bpf_late___v1", "__compat_bpf_late", ("v6.8: none of bpf_late___v1 resolves",))]
    header = CompatHeader("linux.git", "v6.8", "v6.9", ("v6.8", "v6.9"), [untested], dead=dead)
    assert dead_lines(header) == ("compat: bpf_late___v1: called untested by __compat_bpf_late, yet some release "
                                  "has none of its variants (v6.8: none of bpf_late___v1 resolves)\n")
    # tested before its call (a fallback follows), or every release has a variant: nothing to say
    assert self_check([v1], targets, [dataclasses.replace(untested, checked_last=True)]) == []
    assert self_check([v1], targets[1:], [untested]) == []


def test_kfuncs_reads_objects_as_check_does_inside_a_program_and_a_package(capsys, tree, tmp_path):
    (tmp_path / "vmlinux.h").write_text(VMLINUX)
    src = tmp_path / "old.bpf.c"
    src.write_text('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n'
                   "extern int bpf_old_name(struct task_struct *p) __ksym;\n"
                   'char LICENSE[] SEC("license") = "GPL";\n'
                   'SEC("tp_btf/task_newtask")\nint prog(unsigned long long *ctx)\n{\n'
                   "\treturn bpf_old_name((void *)ctx[0]);\n}\n")
    obj = compile_bpf(src, tmp_path / "old.bpf.o").read_bytes()
    host = Path("/bin/true").read_bytes()
    program = tmp_path / "prog"
    program.write_bytes(host + b"\0" * (-len(host) % 8) + obj)  # a skeleton's object, after the host's bytes
    deb = build_deb(tmp_path, "prog", "1.0", {"usr/sbin/prog": program.read_bytes()})
    for given in (program, deb):
        rc, header, err = compat(capsys, tree, tmp_path, "--kfuncs", str(given))
        assert (rc, err) == (0, ""), given
        assert sorted(set(re.findall(r"^/\*\n \* (\w+): ", header, re.M))) == ["bpf_new_name"], given
    # a program without BPF objects, and a file that is neither C source nor has objects: one line
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)
    for given, said in (("/bin/true", "policybot: /bin/true: no BPF object in it"),
                        (str(junk), f"policybot: {junk}: neither a BPF C source nor a file with BPF objects in it "
                                    "(a BPF object, an executable or shared library, a Debian package)")):
        rc, out, err = compat(capsys, tree, tmp_path, "--kfuncs", given)
        assert (rc, out, err.strip()) == (2, "", said)


def test_the_header_names_added_parameters_and_changes_as_they_are(capsys, late_tree, tmp_path):
    rc = main(["compat", "--repo", late_tree, "--releases", "v6.8..v6.10", "--state-dir", str(tmp_path / "state")])
    header = capsys.readouterr().out
    assert rc == 0
    # the argument added between the two kept is the one said, not the trailing ones
    assert ("No wrapper for bpf_mid: bpf_mid takes u32 ack beyond the 2 parameters of bpf_mid (v6.8..v6.9): "
            "an added argument has no neutral value to drop.") in block(header, "bpf_mid")
    # bpf_succ keeps its prototype in v6.10, where the successor takes over: no change to say
    succ = block(header, "bpf_succ___v2")
    assert "added beside bpf_succ, which it replaces." in succ
    assert " * bpf_succ___v1: bpf_succ as v6.8..v6.9 have it, unstable, with no promise.\n" in succ
    # every struct a prototype names is declared at file scope, once
    assert header.count("\nstruct task_struct;\n") == 1
