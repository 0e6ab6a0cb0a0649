"""policybot compat on the real trees: the header for v6.12..v7.2, compiled with clang-19 against
the vmlinux.h bpftool dumps from Debian's compiled 7.2 kernel, in a program that calls each
sched_ext kfunc renamed between 6.12 and 7.2 through it; then `policybot check` on that object
against both releases.

The renames are written here as the kernel's own tools/sched_ext/include/scx/compat.bpf.h
(7.2) bridges them, and held to what each release registers (``git grep BTF_ID_FLAGS``), not to
policybot's reading; weak and strong come from the object's symbol table (readelf), and the
essential names from libbpf's flavor rule written again (kit.bpf.flavorless). The header for
v6.1..v7.2 (v6.1 has no sched_ext) gives no wrapper to what v6.1 lacks, and compiles with
-Wall -Werror.
"""

import json
import re
import subprocess
import sys

import pytest

from policybot.cli import main
from kit.bpf import compile_bpf, flavorless, undefined_symbols
from kit.btf import bpftool

pytestmark = pytest.mark.realtree

# old name (6.12) -> new name (7.2), and how the program calls the new one
RENAMES = {
    "scx_bpf_consume": ("scx_bpf_dsq_move_to_local", "n += scx_bpf_dsq_move_to_local(1);"),
    "scx_bpf_dispatch": ("scx_bpf_dsq_insert", "scx_bpf_dsq_insert(p, 1, 2, 0);"),
    "scx_bpf_dispatch_vtime": ("scx_bpf_dsq_insert_vtime", "scx_bpf_dsq_insert_vtime(p, 1, 2, 3, 0);"),
    "scx_bpf_dispatch_from_dsq": ("scx_bpf_dsq_move", "n += scx_bpf_dsq_move(&it, p, 1, 0);"),
    "scx_bpf_dispatch_vtime_from_dsq": ("scx_bpf_dsq_move_vtime", "n += scx_bpf_dsq_move_vtime(&it, p, 1, 0);"),
    "scx_bpf_dispatch_from_dsq_set_slice": ("scx_bpf_dsq_move_set_slice", "scx_bpf_dsq_move_set_slice(&it, 5);"),
    "scx_bpf_dispatch_from_dsq_set_vtime": ("scx_bpf_dsq_move_set_vtime", "scx_bpf_dsq_move_set_vtime(&it, 6);"),
}


def registered(kernel_repo: str, rev: str) -> set[str]:
    text = subprocess.run(["git", "-C", kernel_repo, "grep", "-h", "-o", "-E", r"BTF_ID_FLAGS\(func, *[A-Za-z0-9_]+",
                           rev, "--", "*.c", "*.h"], capture_output=True, text=True, check=True).stdout
    return {line.split(",")[-1].strip() for line in text.splitlines()}


@pytest.fixture(scope="module")
def header(kernel_repo, kernel_state, tmp_path_factory):
    d = tmp_path_factory.mktemp("compat")
    r = subprocess.run([sys.executable, "-m", "policybot", "compat", "--repo", kernel_repo, "--releases", "v6.12..v7.2",
                        "--state-dir", str(kernel_state.state_dir)], capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr  # the self-check found no dead extern
    (d / "compat.h").write_text(r.stdout)
    return d / "compat.h"


def test_the_renames_are_what_the_releases_register(kernel_repo):
    old, new = registered(kernel_repo, "v6.12"), registered(kernel_repo, "v7.2")
    for was, (now, _) in RENAMES.items():
        assert was in old and was not in new and now in new and now not in old, (was, now)


def test_the_renamed_kfuncs_called_through_the_header_load_on_both_releases(
        header, kernel_repo, kernel_state, extracted, tmp_path, capsys):
    (tmp_path / "vmlinux.h").write_text(subprocess.run([bpftool(), "btf", "dump", "file", str(extracted["7.2"]),
                                                        "format", "c"], check=True, capture_output=True,
                                                       text=True).stdout)
    calls = "\n".join(f"\t{call}" for _, call in RENAMES.values())
    src = tmp_path / "renamed.bpf.c"
    src.write_text(f'#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include "{header}"\n'
                   'char LICENSE[] SEC("license") = "GPL";\n\nSEC("struct_ops/dispatch")\n'
                   "int dispatch(unsigned long long *ctx)\n{\n\tstruct task_struct *p = (void *)ctx[0];\n"
                   "\tstruct bpf_iter_scx_dsq it = {};\n\tint n = 0;\n\n"
                   f"{calls}\n\tn += scx_bpf_consume(2); /* the old name reaches the same wrapper */\n"
                   "\treturn n;\n}\n")
    obj = compile_bpf(src, tmp_path / "renamed.bpf.o")
    syms = undefined_symbols(obj)
    # each call reached both names through flavored externs: every one weak
    assert {flavorless(s) for s in syms} == set(RENAMES) | {now for now, _ in RENAMES.values()}
    assert all(name != flavorless(name) for name in syms)
    assert {bind for bind, _ in syms.values()} == {"WEAK"}

    assert main(["check", str(obj), "--repo", kernel_repo, "--rev", "v6.12", "--rev", "v7.2", "--format", "json",
                 "--fail-on", "never", "--state-dir", str(kernel_state.state_dir)]) == 0
    docs = {d["target"]: d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    assert sorted(docs) == ["v6.12", "v7.2"]
    have = {rev: registered(kernel_repo, rev) for rev in docs}
    resolved: dict[str, list[str]] = {name: [] for name in syms}
    for rev, d in docs.items():
        for e in d["externs"]:
            if e["status"] == "ok":
                resolved[e["name"]].append(rev)
            if not e["weak"]:
                assert e["status"] == "ok", (rev, e)  # every strong extern resolves on each release
            assert (e["status"] == "ok") == (e["kfunc"] in have[rev]), (rev, e["name"])
        assert d["loads"], rev
    # every weak extern resolves on at least one release: the old names on 6.12, the new on 7.2
    assert {n: r for n, r in resolved.items()} == {
        n: ["v6.12"] if flavorless(n) in RENAMES else ["v7.2"] for n in syms}


def test_the_header_says_why_a_successor_has_no_wrapper(header):
    text = header.read_text()
    # 7.2 adds scx_bpf_dsq_move_to_local___v2(dsq_id, enq_flags) beside the 1-argument kfunc:
    # its extern needs a flavor of its own, and 6.12 has nothing that takes enq_flags
    entry = text[text.index(" * scx_bpf_dsq_move_to_local___v2: "):]
    entry = entry[:re.search(r"\n/\*\n \* \w+: ", entry).start()]
    assert "added beside scx_bpf_dsq_move_to_local, which it replaces." in entry
    assert re.search(r"extern bool scx_bpf_dsq_move_to_local___v2___v1\(u64 dsq_id, u64 enq_flags\) "
                     r"__ksym __weak;", entry), entry
    assert "No wrapper for scx_bpf_dsq_move_to_local___v2: scx_bpf_dsq_move_to_local___v2 takes u64 enq_flags" in entry



@pytest.fixture(scope="module")
def header_from_6_1(kernel_repo, kernel_state):
    r = subprocess.run([sys.executable, "-m", "policybot", "compat", "--repo", kernel_repo, "--releases", "v6.1..v7.2",
                        "--state-dir", str(kernel_state.state_dir)], capture_output=True, text=True)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr  # the self-check found no dead extern or untested call
    return r.stdout


def test_kfuncs_v6_1_lacks_get_no_wrapper_over_v6_1_to_v7_2(kernel_repo, header_from_6_1):
    # v6.1 registers neither bpf_dynptr_size (6.12 has it as __u32, 7.2 as u64) nor any scx_bpf_*:
    # a wrapper's untested call to the oldest variant would be refused on v6.1
    old = registered(kernel_repo, "v6.1")
    assert "bpf_dynptr_size" not in old and "bpf_dynptr_size" in registered(kernel_repo, "v6.12")
    assert not {name for name in old if name.startswith("scx_bpf_")}
    for name in ("bpf_dynptr_size", "scx_bpf_dsq_move_to_local"):
        entry = header_from_6_1[header_from_6_1.index(f" * {name}: "):]
        entry = entry[:re.search(r"\n/\*\n \* \w+: ", entry).start()]
        assert "\n * Not in v6.1: no variant of it is there." in entry, entry
        assert f"__compat_{name}" not in entry and f"No wrapper for {name}: " in entry, entry
    assert "#define scx_bpf_consume(" not in header_from_6_1


def test_the_header_compiles_with_werror_against_7_2s_vmlinux_h(header_from_6_1, extracted, tmp_path):
    # struct bpf_fou_encap is defined by a module (fou), not in vmlinux.h: without a file-scope
    # declaration clang scopes it to the prototype naming it (-Wvisibility)
    vmlinux = subprocess.run([bpftool(), "btf", "dump", "file", str(extracted["7.2"]), "format", "c"], check=True,
                             capture_output=True, text=True).stdout
    assert "struct bpf_fou_encap {" not in vmlinux and "struct bpf_fou_encap *" in header_from_6_1
    (tmp_path / "sys").mkdir()
    (tmp_path / "sys" / "vmlinux.h").write_text(vmlinux)  # a system header: its own warnings are not ours
    (tmp_path / "compat.h").write_text(header_from_6_1)
    src = tmp_path / "strict.bpf.c"
    src.write_text('#include <vmlinux.h>\n#include <bpf/bpf_helpers.h>\n#include "compat.h"\n'
                   'char LICENSE[] SEC("license") = "GPL";\n')
    compile_bpf(src, tmp_path / "strict.bpf.o", "-isystem", str(tmp_path / "sys"), "-Werror", "-Wall")
