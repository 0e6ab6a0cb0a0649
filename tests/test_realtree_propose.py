"""`policybot propose` on Debian's 7.2 tree (issue 24). Two programs made here call a kfunc that
git grep shows registered and defined identically in 6.1 and 7.2: with their census it is ranked
for stable, 21 releases unchanged (6.2 .. 6.19, 7.0 .. 7.2). Every kfunc 7.2 registers next to a
NAME___v2 is proposed deprecating. The series applies with git am to a sparse checkout of v7.2,
and a second propose there finds them declared."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from policybot.cli import main

pytestmark = pytest.mark.realtree


def grep(repo: str, rev: str, pattern: str) -> list[str]:
    out = subprocess.run(["git", "-C", repo, "grep", "-h", "-E", pattern, rev, "--", "*.c"], capture_output=True,
                         text=True).stdout
    return out.splitlines()


def registrations(repo: str, rev: str) -> dict[str, set[str]]:
    """kfunc -> its BTF_ID_FLAGS lines (whitespace squeezed)."""
    out: dict[str, set[str]] = {}
    for line in grep(repo, rev, r"^\s*BTF_ID_FLAGS\(func, *[A-Za-z0-9_]+"):
        name = re.match(r"\s*BTF_ID_FLAGS\(func, *([A-Za-z0-9_]+)", line)[1]
        out.setdefault(name, set()).add(" ".join(line.split()))
    return out


def definitions(repo: str, rev: str, names: set[str]) -> dict[str, set[str]]:
    """kfunc -> the lines that define it: "TYPE NAME(" at the start of a line, __bpf_kfunc left out."""
    out: dict[str, set[str]] = {}
    for line in grep(repo, rev, r"^(__bpf_kfunc )?[a-z].*\b(bpf|scx)_[a-z0-9_]+\("):
        m = re.match(r"^(?:__bpf_kfunc )?([^(=;]*?\b([A-Za-z0-9_]+))\((.*)$", line)
        if m and m[2] in names and not line.rstrip().endswith(";"):
            out.setdefault(m[2], set()).add(" ".join(line.replace("__bpf_kfunc ", "").split()))
    return out


def propose(capsys, *args) -> dict:
    capsys.readouterr()
    assert main(["propose", *args, "--format", "json", "--today", "2026-09-01"]) == 0
    return json.loads(capsys.readouterr().out)


def test_propose_on_7_2(kernel_repo, tmp_path, capsys):
    old, new = registrations(kernel_repo, "v6.1"), registrations(kernel_repo, "v7.2")
    same = {n for n in old.keys() & new.keys() if old[n] == new[n] and len(new[n]) == 1}
    old_def, new_def = definitions(kernel_repo, "v6.1", same), definitions(kernel_repo, "v7.2", same)
    steady = sorted(n for n in same if n.startswith("bpf_") and old_def.get(n) and old_def.get(n) == new_def.get(n))
    assert steady, "no kfunc the same in 6.1 and 7.2: the test would prove nothing"
    kfunc = steady[0]
    superseded = {n for n in new if f"{n}___v2" in new}
    assert superseded, "7.2 registers no NAME___v2: the test would prove nothing"

    programs = tmp_path / "programs"
    programs.mkdir()
    for name in ("one", "two"):
        (programs / f"{name}.bpf.c").write_text(f"void *{kfunc}(void) __ksym;\nint f(void) {{ {kfunc}(); return 0; }}\n")
    capsys.readouterr()
    assert main(["census", str(programs), "--name", "programs", "--version", "1", "--today", "2026-09-01"]) == 0

    doc = propose(capsys, "--repo", kernel_repo, "--rev", "v7.2")
    proposed = {c["kfunc"]: c["proposed"] for c in doc["candidates"]}
    assert proposed.get(kfunc) == "stable", (kfunc, proposed)
    evidence = {e["kfunc"]: e for e in doc["evidence"]}
    assert evidence[kfunc]["first_release"] == "v6.1" and evidence[kfunc]["unchanged_releases"] == 21
    assert {n for n, p in proposed.items() if p == "deprecating"} >= superseded

    capsys.readouterr()
    assert main(["propose", "--repo", kernel_repo, "--rev", "v7.2", "--format", "mbox", "--from",
                 "Jane Maintainer <jane@example.org>", "--today", "2026-09-01"]) == 0
    (tmp_path / "series.mbox").write_text(capsys.readouterr().out)
    work = tmp_path / "work"
    git = ["git", "-C", str(work), "-c", "user.name=Jane", "-c", "user.email=jane@example.org"]
    subprocess.run(["git", "clone", "-q", "--shared", "--no-checkout", kernel_repo, str(work)], check=True)
    subprocess.run(git + ["sparse-checkout", "set", "--no-cone", "/Documentation/bpf/", "/MAINTAINERS"], check=True)
    subprocess.run(git + ["checkout", "-q", "v7.2"], check=True)
    am = subprocess.run(git + ["am", "--empty=drop", str(tmp_path / "series.mbox")], capture_output=True, text=True)
    assert am.returncode == 0, am.stdout + am.stderr
    again = propose(capsys, "--repo", str(work), "--rev", "HEAD", "--tags", "v*")
    assert {kfunc} | superseded <= set(again["declared"])
    assert not {c["kfunc"] for c in again["candidates"]} & ({kfunc} | superseded)
