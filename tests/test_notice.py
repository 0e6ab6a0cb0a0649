"""policybot notice: the deprecation announcement and its dates."""

import mailbox

from policybot.cli import main
from policybot.gitbuild import HistoryBuilder
from kit.trees import BTF_H, FOO, MANIFEST, kernel, manifest

MAINTAINERS = "BPF\nM:\tAlexei Starovoitov <ast@kernel.org>\nL:\tbpf@vger.kernel.org\nS:\tSupported\nF:\tkernel/bpf/\n"


def repo(tmp_path, level="stable"):
    b = HistoryBuilder(tmp_path / "repo")
    b.commit({"include/linux/btf.h": BTF_H, "MAINTAINERS": MAINTAINERS,
              "kernel/bpf/helpers.c": kernel({"bpf_foo": FOO}), MANIFEST: manifest(bpf_foo=level)},
             "one", "2024-03-10T00:00:00")
    b.tag("v6.8")
    return str(tmp_path / "repo")


def mails(tmp_path):
    return [m for _, m in mailbox.Maildir(str(tmp_path / "state" / "outbox"), create=False).items()]


def test_notice_for_a_stable_kfunc_waits_for_its_window(tmp_path, capsys):
    path = repo(tmp_path)
    assert main(["notice", "bpf_foo", "--repo", path, "--replacement", "bpf_foo2", "--today", "2025-01-01"]) == 0
    [m] = mails(tmp_path)
    # stable since v6.8 (2024-03-10) for 5 years: removal not before 2029-03-10
    assert m["Subject"] == "[ANN] kfunc deprecation: bpf_foo (removal not before 2029-03-10)"
    assert m["To"] == "bpf@vger.kernel.org" and "ast@kernel.org" in m["Cc"]
    body = m.get_payload(decode=True).decode()
    assert "int bpf_foo(struct task_struct *p, u32 flags)" in body
    assert "declared stable on 2024-03-10" in body and "bpf_ksym_exists(bpf_foo2)" in body
    assert "(TRACING, XDP)" in body
    # asked again: the same announcement, not a second mail
    assert main(["notice", "bpf_foo", "--repo", path, "--replacement", "bpf_foo2", "--today", "2025-01-01"]) == 0
    assert len(mails(tmp_path)) == 1


def test_notice_refuses_a_removal_the_promise_does_not_allow(tmp_path, capsys):
    path = repo(tmp_path)
    assert main(["notice", "bpf_foo", "--repo", path, "--removal-not-before", "2026-01-01",
                 "--today", "2025-01-01"]) == 2
    err = capsys.readouterr().err
    assert "removal on 2026-01-01 is too early" in err and "runs until 2029-03-10" in err
    assert not (tmp_path / "state" / "outbox" / "new").exists() or not mails(tmp_path)


def test_notice_for_an_unstable_kfunc_uses_the_notice_period(tmp_path):
    path = repo(tmp_path, "unstable")
    assert main(["notice", "bpf_foo", "--repo", path, "--today", "2025-01-01"]) == 0
    [m] = mails(tmp_path)
    assert m["Subject"] == "[ANN] kfunc deprecation: bpf_foo (removal not before 2026-01-01)"
    assert main(["notice", "bpf_nope", "--repo", path]) == 2


def test_notice_names_the_known_users(tmp_path, capsys):
    """A census that found a program calling bpf_foo: the announcement names it; without one, no line."""
    path = repo(tmp_path)
    src = tmp_path / "tool"
    src.mkdir()
    (src / "tool.bpf.c").write_text("int bpf_foo(struct task_struct *p, u32 flags) __ksym __weak;\n"
                                    "int f(void) { return bpf_foo(0, 0); }\n")
    assert main(["census", str(src), "--name", "tool", "--version", "2.1", "--today", "2025-01-01"]) == 0
    assert main(["notice", "bpf_foo", "--repo", path, "--today", "2025-01-01"]) == 0
    [m] = mails(tmp_path)
    body = m.get_payload(decode=True).decode()
    assert "Programs known to call it today: tool 2.1 (weak)." in body
