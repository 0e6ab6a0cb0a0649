"""policybot check on the 7.2 tree's own sched_ext schedulers, against v6.12 and v7.2.

The schedulers (tools/sched_ext/*.bpf.c, conftest's schedulers) are compiled in the run against a
vmlinux.h that bpftool dumps from Debian's 7.2 kernel, with the tree's own
libbpf headers. Expectations, derived without policybot: libbpf's flavor
rule (written again here, as a regular expression), which names each
release's source registers (``git grep BTF_ID_FLAGS(func, NAME``), which
the 7.2 kernel's BTF tags (bpftool), and the ELF symbol table (readelf) for
weak and strong.
"""

import json
import re
import subprocess
from pathlib import Path

import pytest

from policybot.cli import main
from kit.bpf import flavorless, undefined_symbols
from kit.btf import dump, tagged_kfuncs
from kit.realtree import jit_returns_by_grep

pytestmark = pytest.mark.realtree



def registered(kernel_repo: str, rev: str) -> set[str]:
    text = subprocess.run(["git", "-C", kernel_repo, "grep", "-h", "-o", "-E",
                           r"BTF_ID_FLAGS\(func, *[A-Za-z0-9_]+", rev, "--", "*.c", "*.h"],
                          capture_output=True, text=True, check=True).stdout
    return {line.split(",")[-1].strip() for line in text.splitlines()}


def check(args, capsys):
    rc = main(["check", *args, "--format", "json", "--fail-on", "never"])
    assert rc == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_schedulers_against_both_source_releases(schedulers, kernel_repo, kernel_state, capsys):
    names = {rev: registered(kernel_repo, rev) for rev in ("v6.12", "v7.2")}
    docs = check([*map(str, schedulers.values()), "--repo", kernel_repo, "--rev", "v6.12", "--rev", "v7.2",
                  "--state-dir", str(kernel_state.state_dir)], capsys)
    assert len(docs) == 2 * len(schedulers)
    flavors = set()
    for d in docs:
        syms = {n: bind for n, (bind, _) in undefined_symbols(Path(d["object"])).items()}
        have = names[d["target"]]
        for e in d["externs"]:
            assert e["kfunc"] == flavorless(e["name"]), e["name"]
            assert e["weak"] == (syms[e["name"]] == "WEAK"), e["name"]
            assert (e["status"] == "missing") == (e["kfunc"] not in have), (d["target"], e["name"])
            if e["name"] != e["kfunc"]:
                flavors.add(e["name"].split("___", 1)[1])
        # where its kfunc calls can run at all: the JITs of that release's arch/
        assert d["jit_arches"] == sorted(jit_returns_by_grep(kernel_repo, d["target"]))
        strong_ok = all(e["status"] == "ok" for e in d["externs"] if not e["weak"])
        assert d["loads"] == (strong_ok and not d["without_btf"]), (d["object"], d["target"])
    # the flavors compat.bpf.h uses are all there
    assert {"v1", "v2___compat", "compat"} <= flavors
    simple = {(d["target"], e["name"]): e["status"] for d in docs if d["object"].endswith("scx_simple.bpf.o")
              for e in d["externs"]}
    # scx_bpf_dsq_insert___v2 is a 6.19 kfunc: the ___v2___compat extern asks for it by that name
    assert simple[("v7.2", "scx_bpf_dsq_insert___v2___compat")] == "ok"
    assert simple[("v6.12", "scx_bpf_dsq_insert___v2___compat")] == "missing"


def test_schedulers_against_the_7_2_kernels_btf(schedulers, binaries, dumps_72, capsys, tmp_path):
    tagged = set(tagged_kfuncs(dumps_72))
    docs = check([*map(str, schedulers.values()), "--btf", str(binaries["7.2"]["vmlinuz"]),
                  "--state-dir", str(tmp_path)], capsys)
    for d in docs:
        for e in d["externs"]:
            # built against this kernel's own vmlinux.h: what is there is compatible
            assert e["status"] == ("ok" if e["kfunc"] in tagged else "missing"), e["name"]
        assert d["loads"] == (not d["without_btf"]), d["object"]


@pytest.fixture(scope="module")
def dumps_72(extracted):
    return dump(extracted["7.2"])


def test_btf_target_takes_flags_and_levels_from_the_tree(schedulers, binaries, kernel_repo, kernel_state, capsys):
    docs = check([str(schedulers["simple"]), "--btf", str(binaries["7.2"]["vmlinuz"]), "--repo", kernel_repo,
                  "--rev", "v7.2", "--state-dir", str(kernel_state.state_dir)], capsys)
    (d,) = docs
    assert d["target_kind"] == "btf"
    text = subprocess.run(["git", "-C", kernel_repo, "grep", "-h", "-E", r"BTF_ID_FLAGS\(func, *scx_bpf_create_dsq\b",
                           "v7.2", "--", "kernel/"], capture_output=True, text=True, check=True).stdout
    want = sorted(re.findall(r"KF_\w+", text))
    e = {x["name"]: x for x in d["externs"]}["scx_bpf_create_dsq"]
    assert e["status"] == "ok" and e["level"] == "unstable" and e["flags"] == want


def test_clang_14_objects_lacking_extern_btf_do_not_load(kernel_repo, extracted, schedulers, tmp_path, capsys):
    """Debian bookworm's clang 14 emits no BTF for some called externs: libbpf cannot open the object."""
    import shutil
    cc = shutil.which("clang-14")
    if cc is None:
        pytest.skip("no clang-14 (bookworm's default clang)")
    src = schedulers["simple"].parents[1]
    obj = tmp_path / "scx_simple14.bpf.o"
    r = subprocess.run([cc, "-g", "-O2", "-target", "bpf", "-mcpu=v3", "-D__TARGET_ARCH_x86", "-I", "include",
                        "-I", "include/bpf-compat", "-I", str(schedulers["simple"].parents[3] / "gen"), "-I", "../lib",
                        "-I", "../include/uapi", "-c", "scx_simple.bpf.c", "-o", str(obj)],
                       cwd=src, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # independently: undefined symbols that a call relocation uses, and that the object's BTF does not name
    relocs = subprocess.run(["readelf", "-rW", str(obj)], capture_output=True, text=True, check=True).stdout
    # type 10, a call: R_BPF_64_32 in llvm, R_BPF_INSN_DISP32 in binutils
    called = {line.split()[-1] for line in relocs.splitlines() if re.search(r"R_BPF_64_32\b|R_BPF_INSN_DISP32", line)}
    named = set(re.findall(r"^\[\d+\] (?:FUNC|VAR) '([^']+)'", dump(obj), re.M))
    want = sorted((called & set(undefined_symbols(obj))) - named)
    (d,) = check([str(obj), "--repo", kernel_repo, "--rev", "v7.2"], capsys)
    assert d["without_btf"] == want
    assert d["loads"] is (not want)
