"""The usage census on real users of kfuncs (issue 23): sid's bpfilter, libbpf-tools, bpftune and
libbpftune0, downloaded in the run through scripts/debian-apt, read as .deb files and as the
directories dpkg-deb unpacks them to; and the 7.2 tree's sched_ext schedulers, as sources at v7.2
and as objects compiled in the run (conftest's schedulers).

The expectation is an independent reading, made here without policybot's code: dpkg-deb unpacks
and names each package; each ELF file's embedded BPF objects are found by their ELF header
(EM_BPF, 247) and cut at the end of their section header table by kit.bpf.cut_objects's own struct
reading; then `bpftool btf dump` names the extern functions of each object's BTF and `readelf -s`
says which are undefined and whether weak. No count is written down from today's packages."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from kit.bpf import cut_objects, extern_symbols, flavorless
from kit.btf import dump
from kit.realtree import debian_packages
from policybot.cli import main

pytestmark = pytest.mark.realtree

PACKAGES = ("bpfilter", "libbpf-tools", "bpftune", "libbpftune0")
TODAY = "2026-12-03"


@pytest.fixture(scope="module")
def debs(tmp_path_factory) -> dict[str, Path]:
    return debian_packages(tmp_path_factory.mktemp("debs"), *PACKAGES)


def extern_functions(obj: Path) -> set[tuple[str, bool]]:
    """(name, weak): FUNCs of extern linkage in the BTF (bpftool) that are undefined symbols (readelf)."""
    funcs = set(re.findall(r"^\[\d+\] FUNC '([^']+)' type_id=\d+ linkage=extern$", dump(obj), re.M))
    undefined = extern_symbols(obj)
    return {(name, undefined[name]) for name in funcs if name in undefined}


@pytest.fixture(scope="module")
def independent(debs, tmp_path_factory) -> dict[str, set[tuple[str, str, bool]]]:
    """package -> {(program, kfunc, weak)}, read without policybot; and the unpacked directories."""
    work = tmp_path_factory.mktemp("unpacked")
    out = {}
    for name, deb in debs.items():
        unpacked = work / name
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
        uses = set()
        n = 0
        for path in sorted(p for p in unpacked.rglob("*") if p.is_file() and not p.is_symlink()):
            data = path.read_bytes()
            if not data.startswith(b"\x7fELF"):
                continue
            for obj_bytes in cut_objects(data):
                obj = work / f"obj{n}.o"
                n += 1
                obj.write_bytes(obj_bytes)
                uses |= {(path.name, flavorless(f), weak) for f, weak in extern_functions(obj)}
        out[name] = uses
    return out


def listed(capsys, state: Path) -> list[dict]:
    capsys.readouterr()
    assert main(["census", "--list", "--format", "json", "--state-dir", str(state)]) == 0
    data = json.loads(capsys.readouterr().out)["kfuncs"]
    return [u for k in data.values() for u in k["uses"]]


def test_packages_as_debs_and_as_directories(debs, independent, tmp_path, capsys):
    # a kfunc is among the independent reading, or this test proves little
    assert any(uses for uses in independent.values()), independent
    versions = {name: subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True,
                                     check=True).stdout.strip() for name, deb in debs.items()}
    state = tmp_path / "debs"
    capsys.readouterr()
    assert main(["census", *map(str, debs.values()), "--today", TODAY, "--state-dir", str(state)]) == 0, \
        capsys.readouterr().err
    rows = listed(capsys, state)
    for name in PACKAGES:
        mine = {(u["user"], u["kfunc"], u["strength"] == "weak") for u in rows if u["source"] == f"deb:{name}"}
        assert mine == independent[name], name
        assert {(u["project"], u["version"]) for u in rows if u["source"] == f"deb:{name}"} <= \
            {(name, versions[name])}
        assert not any(u["in_tree"] for u in rows)

    # the same packages unpacked: the same programs and kfuncs, one source per directory
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    for name, deb in debs.items():
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked / name)], check=True)
    state = tmp_path / "dirs"
    assert main(["census", *(str(unpacked / n) for n in PACKAGES), "--today", TODAY, "--state-dir", str(state)]) == 0
    rows = listed(capsys, state)
    for name in PACKAGES:
        mine = {(u["user"], u["kfunc"], u["strength"] == "weak") for u in rows
                if u["source"] == f"path:{unpacked / name}"}
        assert mine == independent[name], name


def test_sched_ext_sources_and_built_schedulers_are_in_tree(kernel_repo, schedulers, debs, independent, tmp_path,
                                                            capsys):
    state = tmp_path / "state"
    build = next(iter(schedulers.values())).parent
    capsys.readouterr()
    assert main(["census", f"{kernel_repo}@v7.2:tools/sched_ext", str(build), *map(str, debs.values()),
                 "--today", TODAY, "--state-dir", str(state)]) == 0, capsys.readouterr().err
    rows = listed(capsys, state)
    tree_rows = [u for u in rows if u["source"].startswith(("git:", "path:"))]
    assert tree_rows and all(u["in_tree"] and u["user"].startswith("tools/sched_ext/") for u in tree_rows)
    # the built objects: what bpftool and readelf read from each
    for name, obj in schedulers.items():
        want = {(flavorless(f), weak) for f, weak in extern_functions(obj)}
        got = {(u["kfunc"], u["strength"] == "weak") for u in rows
               if u["user"] == f"tools/sched_ext/build/scx_{name}" and u["source"] == f"path:{build}"}
        assert got == want, name
    # the sources: every scheduler that was built uses, by its source, each kfunc its object calls strong
    for name, obj in schedulers.items():
        strong = {flavorless(f) for f, weak in extern_functions(obj) if not weak}
        from_source = {u["kfunc"] for u in rows if u["user"] == f"tools/sched_ext/scx_{name}"}
        assert strong <= from_source, (name, strong - from_source)

    # propose-style counts: per kfunc, distinct in-tree and out-of-tree programs
    capsys.readouterr()
    assert main(["census", "--list", "--format", "json", "--state-dir", str(state)]) == 0
    counts = {k: (v["in_tree"], v["out_of_tree"]) for k, v in json.loads(capsys.readouterr().out)["kfuncs"].items()}
    outside: dict[str, set[str]] = {}
    for uses in independent.values():
        for program, kfunc, _ in uses:
            outside.setdefault(kfunc, set()).add(program)
    inside: dict[str, set[str]] = {}
    for u in tree_rows:
        inside.setdefault(u["kfunc"], set()).add(u["user"])
    assert counts == {k: (len(inside.get(k, ())), len(outside.get(k, ()))) for k in set(inside) | set(outside)}
