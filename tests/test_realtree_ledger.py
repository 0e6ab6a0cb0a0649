"""The ledger of dated promises on sched_ext as 7.2 and 7.3 ship it (issue 24): the notes policybot
finds are those git grep finds with a pattern written here, "v6.22" is 7.2 and "v6.23" is 7.3,
and on 7.3 the first are overdue and the second due; a note of 7.2 that 7.3 dropped while the code
under it stayed is withdrawn. Nothing here is a list typed from today's trees."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from policybot.cli import main

pytestmark = pytest.mark.realtree

PATHS = ("kernel/sched/ext", "tools/sched_ext")
# a removal word and a version in one sentence, either order
GREP = (r"(remov|drop|deprecat)[a-z]*[^.]{0,80}\b(in|after|by|until|before) v[0-9]+\.[0-9]+"
        r"|\b(in|after|by|until|before) v[0-9]+\.[0-9]+[^.]{0,60}(remov|drop|deprecat)")


def grepped(repo: str, rev: str) -> dict[tuple[str, int], str]:
    """(path, line) -> the version named, from git grep."""
    out = subprocess.run(["git", "-C", repo, "grep", "-n", "-i", "-E", GREP, rev, "--", *PATHS],
                         capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        _, path, number, text = line.split(":", 3)
        found[(path, int(number))] = re.search(r"v[0-9]+\.[0-9]+", text[text.lower().find("v"):])[0] \
            if re.search(r"v[0-9]+\.[0-9]+", text) else ""
    return found


def release(named: str) -> tuple[int, int]:
    """After 6.19 came 7.0 (the issue; kernel.org's release history)."""
    major, minor = map(int, named[1:].split("."))
    return (7, minor - 20) if major == 6 and minor > 19 else (major, minor)


def audit_json(capsys, *args) -> dict:
    capsys.readouterr()
    main(["audit", *args, "--format", "json", "--fail-on", "never"])
    return json.loads(capsys.readouterr().out)


def in_paths(entry: dict) -> bool:
    return entry["path"].startswith(PATHS)


def test_the_ledger_of_7_3(sched_ext_7_3, capsys):
    repo = str(sched_ext_7_3)
    want = grepped(repo, "v7.3")
    assert want, "git grep found no dated note: the test would prove nothing"
    doc = audit_json(capsys, "--repo", repo, "--rev", "v7.3", "--today", "2026-11-01")
    dated = [e for e in doc["ledger"] if in_paths(e) and e["named"]]
    assert {(e["path"], e["line"]): e["named"] for e in dated} == want
    for e in dated:
        rel = release(e["named"])
        assert e["release"] == f"v{rel[0]}.{rel[1]}"
        assert e["status"] == ("overdue" if rel < (7, 3) else "due" if rel == (7, 3) else "future"), e
    assert {"v6.22", "v6.23"} <= {e["named"] for e in dated}
    rules = {(f["rule"], f["location"]) for f in doc["findings"]}
    for e in dated:
        status = e["status"].upper()
        assert (f"LEDGER_{status}", f"{e['path']}:{e['line']}") in rules


def test_a_note_7_3_dropped_while_its_code_stayed_is_withdrawn(sched_ext_7_3, capsys):
    repo = str(sched_ext_7_3)
    old, new = grepped(repo, "v7.2"), grepped(repo, "v7.3")

    def note_and_code(rev: str, path: str, line: int) -> tuple[str, str]:
        lines = subprocess.run(["git", "-C", repo, "show", f"{rev}:{path}"], capture_output=True, text=True,
                               check=True).stdout.split("\n")
        end = next(i for i in range(line - 1, len(lines)) if "*/" in lines[i])
        code = next(s.strip() for s in lines[end + 1:] if s.strip())
        return lines[line - 1].strip(), code

    # a note is its file, its words and the code under it ("Will be removed in v6.23" is above
    # several things in ext.c)
    now = {(p, *note_and_code("v7.3", p, n)) for p, n in new}
    expected = set()
    for path, line in old:
        text, code = note_and_code("v7.2", path, line)
        shown = subprocess.run(["git", "-C", repo, "show", f"v7.3:{path}"], capture_output=True, text=True).stdout
        if (path, text, code) not in now and code in shown:
            expected.add(f"{path}:{line}")
    assert expected, "7.3 dropped no dated note of 7.2 whose code stayed: the test would prove nothing"
    doc = audit_json(capsys, "--repo", repo, "--base", "v7.2", "--rev", "v7.3", "--today", "2026-11-01")
    withdrawn = {f["location"] for f in doc["findings"] if f["rule"] == "LEDGER_WITHDRAWN"}
    assert withdrawn == expected


def test_the_ledger_of_7_2(kernel_repo, capsys):
    """On 7.2 itself (the tests' repository): "v6.22" is the release audited, "v6.23" is to come."""
    want = grepped(kernel_repo, "v7.2")
    doc = audit_json(capsys, "--repo", kernel_repo, "--rev", "v7.2", "--today", "2026-09-01")
    dated = {(e["path"], e["line"]): e for e in doc["ledger"] if in_paths(e) and e["named"]}
    assert {k: e["named"] for k, e in dated.items()} == want
    assert {e["status"] for e in dated.values() if e["named"] == "v6.22"} == {"due"}
    assert {e["status"] for e in dated.values() if e["named"] == "v6.23"} == {"future"}
