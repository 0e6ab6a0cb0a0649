"""`policybot propose` on a tree made here (issue 24): two out-of-tree programs (a census of their
sources) call bpf_foo, unchanged since v6.1, so it is proposed stable; bpf_baz has bpf_baz_v2, so
it is proposed deprecating; bpf_bar has two users too but changed its prototype in v6.7, so it is not.
The mbox applies with git am, and a second propose on the result finds them declared."""

from __future__ import annotations

import json
import subprocess

from policybot.cli import main
from policybot.gitbuild import HistoryBuilder
from kit.trees import BTF_H, FOO, kernel

MAINTAINERS = ("BPF [CORE]\nM:\tAlexei Starovoitov <ast@kernel.org>\nL:\tbpf@vger.kernel.org\nS:\tSupported\n"
               "F:\tkernel/bpf/\n")
WIDER = "int|struct task_struct *p, u32 flags, u64 more"


def tree(tmp_path):
    b = HistoryBuilder(tmp_path / "linux")
    kfuncs = {"bpf_foo": FOO, "bpf_bar": FOO, "bpf_baz": FOO, "bpf_baz_v2": FOO}
    b.commit({"include/linux/btf.h": BTF_H, "MAINTAINERS": MAINTAINERS, "kernel/bpf/helpers.c": kernel(kfuncs)},
             "Linux 6.1", "2022-12-11T12:00:00")
    b.tag("v6.1")
    for minor in range(2, 9):
        if minor == 7:
            kfuncs = dict(kfuncs, bpf_bar=WIDER)
        b.commit({"kernel/bpf/helpers.c": kernel(kfuncs), "README": f"{minor}"}, f"Linux 6.{minor}",
                 f"2023-{minor:02d}-01T12:00:00")
        b.tag(f"v6.{minor}")
    return b


def users(tmp_path, capsys):
    src = tmp_path / "tools-out-there"
    src.mkdir()
    for name, calls in (("alpha", ("bpf_foo",)), ("beta", ("bpf_foo", "bpf_bar")), ("gamma", ("bpf_bar",))):
        (src / f"{name}.bpf.c").write_text("".join(f"int {k}(struct task_struct *p, u32 flags) __ksym;\n" for k in calls)
                                           + "int f(void) { return " + " + ".join(f"{k}(0, 0)" for k in calls)
                                           + "; }\n")
    # alpha also asks for a flavor of bpf_foo, weak: still one program, one user
    (src / "alpha.bpf.c").write_text((src / "alpha.bpf.c").read_text().replace(
        "int f(void)", "int bpf_foo___v2(struct task_struct *p, u32 flags) __ksym __weak;\n"
                       "int g(void) { return bpf_foo___v2(0, 0); }\nint f(void)"))
    capsys.readouterr()
    assert main(["census", str(src), "--name", "out-there", "--version", "1.0", "--today", "2024-01-01"]) == 0


def propose(capsys, repo, *args) -> str:
    capsys.readouterr()
    assert main(["propose", "--repo", str(repo), "--today", "2024-01-01", *args]) == 0
    return capsys.readouterr().out


def test_propose_ranks_by_evidence_and_its_series_applies(tmp_path, capsys):
    b = tree(tmp_path)
    users(tmp_path, capsys)
    doc = json.loads(propose(capsys, b.repo.workdir, "--rev", "v6.8", "--format", "json"))
    assert [(c["kfunc"], c["proposed"]) for c in doc["candidates"]] == [("bpf_foo", "stable"),
                                                                       ("bpf_baz", "deprecating")]
    foo = {e["kfunc"]: e for e in doc["evidence"]}["bpf_foo"]
    assert foo["first_release"] == "v6.1" and foo["unchanged_releases"] == 7
    assert foo["users_out_of_tree"] == ["alpha 1.0 (strong)", "beta 1.0 (strong)"]
    bar = {e["kfunc"]: e for e in doc["evidence"]}["bpf_bar"]
    assert bar["last_change"] == "v6.7" and bar["unchanged_releases"] == 1
    text = propose(capsys, b.repo.workdir, "--rev", "v6.8")
    assert text.startswith("bpf_foo: propose stable: 2 out-of-tree users, unchanged for 7 releases (since v6.1)\n")
    assert "bpf_baz: propose deprecating: bpf_baz_v2 replaces it\n" in text

    mbox = propose(capsys, b.repo.workdir, "--rev", "v6.8", "--format", "mbox", "--from", "Jane <jane@example.org>")
    assert "Subject: [PATCH 0/1] bpf: declare the stability of 2 kfuncs" in mbox
    assert "Subject: [PATCH 1/1] bpf: declare the stability of 2 kfuncs (BPF [CORE])" in mbox
    assert "To: bpf@vger.kernel.org" in mbox and "Cc: Alexei Starovoitov <ast@kernel.org>" in mbox
    assert f"base-commit: {b.repo.revparse_single('v6.8').peel(1).id}" in mbox
    (tmp_path / "series.mbox").write_text(mbox)
    git = ["git", "-C", b.repo.workdir, "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(git + ["checkout", "-q", "v6.8"], check=True)
    # the cover letter has no diff: git am drops it (as b4 am leaves it out)
    am = subprocess.run(git + ["am", "--empty=drop", str(tmp_path / "series.mbox")], capture_output=True, text=True)
    assert am.returncode == 0, am.stdout + am.stderr
    doc = json.loads(propose(capsys, b.repo.workdir, "--rev", "HEAD", "--format", "json"))
    assert doc["candidates"] == [] and sorted(doc["declared"]) == ["bpf_baz", "bpf_foo"]
    levels = {e["kfunc"]: e["level"] for e in doc["evidence"]}
    assert levels["bpf_foo"] == "stable" and levels["bpf_baz"] == "deprecating"


def test_a_series_that_writes_kernel_doc_stability_lines(tmp_path, capsys):
    """[propose] write = "kernel-doc": a kfunc with a kernel-doc comment gets a "Stability:" line
    in it (and "Deprecated:" naming its successor); one without stays in the manifest."""
    b = tree(tmp_path)
    helpers = b.repo.revparse_single("v6.8").peel(1).tree["kernel/bpf/helpers.c"]
    text = b.repo[helpers.id].data.decode()
    documented = text.replace("__bpf_kfunc int bpf_foo(", "/**\n * bpf_foo() - find a task\n */\n"
                                                          "__bpf_kfunc int bpf_foo(", 1)
    b.commit({"kernel/bpf/helpers.c": documented}, "bpf: document bpf_foo", "2023-09-01T12:00:00")
    users(tmp_path, capsys)
    policy = tmp_path / "policy.toml"
    policy.write_text('[propose]\nwrite = "kernel-doc"\n')
    mbox = propose(capsys, b.repo.workdir, "--rev", "HEAD", "--policy", str(policy), "--format", "mbox",
                   "--from", "Jane <jane@example.org>")
    assert "+ * Stability: stable\n" in mbox and "diff --git a/kernel/bpf/helpers.c b/kernel/bpf/helpers.c" in mbox
    assert "+  bpf_baz:\n+    stability: deprecating\n" in mbox  # no kernel-doc: the manifest
    (tmp_path / "series.mbox").write_text(mbox)
    git = ["git", "-C", b.repo.workdir, "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(git + ["checkout", "-q", "-f", "HEAD"], check=True)
    am = subprocess.run(git + ["am", "--empty=drop", str(tmp_path / "series.mbox")], capture_output=True, text=True)
    assert am.returncode == 0, am.stdout + am.stderr
    doc = json.loads(propose(capsys, b.repo.workdir, "--rev", "HEAD", "--policy", str(policy), "--format", "json"))
    assert sorted(doc["declared"]) == ["bpf_baz", "bpf_foo"] and doc["candidates"] == []
