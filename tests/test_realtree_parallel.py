"""The read-ahead and the second process on the real trees, 7.2 included: a history of every
release and a review of a long series on v7.2 say what one process, one release or patch
at a time, says (Debian linux-source 6.1.192-3, 6.12.117-1~deb12u1, 7.2.13-1)."""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import subprocess

import pytest

from policybot import forked
from policybot.app.history import kfunc_history
from policybot.render.history import json_text as history_json
from policybot.cache import Cache
from policybot.cli import main
from policybot.kernel.gitrepo import open_repo
from policybot.kernel.scanner import Scanner

pytestmark = pytest.mark.realtree

_ENTRY = re.compile(r"^BTF_ID_FLAGS\(func, (\w+)(?:, ([^)]*))?\)$")


def _git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", repo, *args], check=True, capture_output=True,
                          text=True, errors="surrogateescape").stdout


def _succeeded(monkeypatch) -> list[int]:
    """The pids of the forked children whose results were used (not redone here)."""
    pids, real = [], forked.Forked.result

    def result(self):
        pid, value = self.pid, real(self)
        pids.append(pid)
        return value

    monkeypatch.setattr(forked.Forked, "result", result)
    return pids


def test_a_history_of_every_release_read_ahead_and_in_two_processes(kernel_repo, tmp_path, monkeypatch):
    repo = open_repo(kernel_repo)
    tags = [t for t in _git(kernel_repo, "tag", "--list", "v*").split() if re.fullmatch(r"v\d+\.\d+", t)]
    assert {"v6.1", "v6.12", "v7.2"} <= set(tags)
    monkeypatch.setattr(forked, "available", lambda: False)
    monkeypatch.setattr(Scanner, "read_ahead", lambda self, trees, label: None)
    alone = history_json(kfunc_history(repo, Scanner(repo, Cache(tmp_path / "one"), jobs=2)))
    monkeypatch.undo()
    children = _succeeded(monkeypatch)
    monkeypatch.setattr(forked, "available", lambda: True)
    scanner = Scanner(repo, Cache(tmp_path / "ahead"), jobs=2)
    ahead = history_json(kfunc_history(repo, scanner))
    assert ahead == alone and len(children) == 1
    doc = json.loads(ahead)
    assert [r["name"] for r in doc["releases"]] == sorted(tags, key=lambda t: tuple(map(int, t[1:].split("."))))
    assert len(doc["kfuncs"]) > 300  # hundreds of kfuncs by 7.2: the comparison is not of empty histories


def _series(repo: str, base: str, path: str, n: int) -> tuple[str, list[str]]:
    """An mbox of ``n`` patches to ``path`` at ``base``, the i-th adding KF_SLEEPABLE to the i-th
    entry without it, each diffed against the file the ones before it left."""
    commit = _git(repo, "rev-parse", f"{base}^{{commit}}").strip()
    text = _git(repo, "show", f"{commit}:{path}")
    lines = text.split("\n")
    targets = [i for i, ln in enumerate(lines) if (m := _ENTRY.match(ln)) and "KF_SLEEPABLE" not in (m.group(2) or "")]
    assert len(targets) >= n
    mails, changed = [], []
    header = ("From: Jane Developer <jane@example.com>\nDate: Mon, 2 Dec 2024 10:00:{s:02d} +0000\n"
              "Message-Id: <series-{i}@example.com>\n{thread}To: bpf@vger.kernel.org\n"
              "MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nSubject: {subject}\n\n")
    mails.append("From series-0 Mon Sep 17 00:00:00 2001\n"
                 + header.format(s=0, i=0, thread="", subject=f"[PATCH bpf-next 0/{n}] bpf: sleepable kfuncs")
                 + f"Sleepable kfuncs.\n\n---\nbase-commit: {commit}\n-- \n2.39.5\n")
    for k, at in enumerate(targets[:n], 1):
        old = "\n".join(lines)
        m = _ENTRY.match(lines[at])
        flags = m.group(2)
        lines[at] = f"BTF_ID_FLAGS(func, {m.group(1)}, {flags + ' | ' if flags else ''}KF_SLEEPABLE)"
        new = "\n".join(lines)
        changed.append(m.group(1))
        body = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), f"a/{path}", f"b/{path}"))
        ids = [hashlib.sha1(b"blob %d\0" % len(t.encode()) + t.encode()).hexdigest()[:12] for t in (old, new)]
        thread = "In-Reply-To: <series-0@example.com>\nReferences: <series-0@example.com>\n"
        mails.append(f"From series-{k} Mon Sep 17 00:00:00 2001\n"
                     + header.format(s=k, i=k, thread=thread,
                                     subject=f"[PATCH bpf-next {k}/{n}] bpf: make {m.group(1)} sleepable")
                     + "Make it sleepable.\n\nSigned-off-by: Jane Developer <jane@example.com>\n---\n"
                     + f"diff --git a/{path} b/{path}\nindex {ids[0]}..{ids[1]} 100644\n{body}-- \n2.39.5\n")
    return "\n".join(mails), changed


def test_a_long_series_on_v7_2_judged_in_two_processes_as_in_one(kernel_repo, tmp_path, capsys, monkeypatch):
    mbox_text, changed = _series(kernel_repo, "v7.2", "kernel/bpf/helpers.c", 8)
    (tmp_path / "series.mbox").write_text(mbox_text, encoding="utf-8", errors="surrogateescape")
    (tmp_path / "overlay.yaml").write_text("kfuncs:\n" + "".join(f"  {k}:\n    stability: stable\n    since: v6.1\n"
                                                                  for k in changed))
    (tmp_path / "policy.toml").write_text('[declarations]\noverlay = "overlay.yaml"\n')

    def review(state: str) -> dict:
        capsys.readouterr()
        rc = main(["review", "--repo", kernel_repo, "--mbox", str(tmp_path / "series.mbox"), "--today", "2026-12-01",
                   "--from", "policybot <policybot@example.org>", "--policy", str(tmp_path / "policy.toml"),
                   "--state-dir", str(tmp_path / state), "--format", "json"])
        out, err = capsys.readouterr()
        assert rc == 1, out + err
        data = json.loads(out)
        data.pop("outbox")
        return data

    monkeypatch.setattr(forked, "available", lambda: False)
    alone = review("one")
    children = _succeeded(monkeypatch)
    monkeypatch.setattr(forked, "available", lambda: True)
    assert review("two") == alone and len(children) == 1
    # each patch: the stable kfunc it made sleepable, and nothing else
    assert [p["applied"] for p in alone["patches"]] == [True] * 8
    assert [[(f["rule"], f["kfunc"], f["verdict"]) for f in p["findings"]] for p in alone["patches"]] == \
        [[("KFUNC_FLAGS_TIGHTENED", k, "violation")] for k in changed]
    assert len(alone["drafted"]) == 8
