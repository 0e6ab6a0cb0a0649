"""The weekly run with two trees and one inbox (issue 26): each series goes to the tree it was
written for (its base-commit, else its subject tag, else the trees it applies to), judged with
that tree's policy; a series for no tree is a visible skip; the operator's faults are mailed to
the operator alone.

The world: a bare upstream repository (kit.weekly.Upstream) with two branches, ``master`` (the
tree "stable", tag ``bpf``) and ``next`` (the tree "bpf-next", tag ``bpf-next``), which adds
bpf_next1, declared stable; one mirror fetched from it; an inbox Maildir.
"""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest

from policybot.app.config import load_config
from policybot.gitbuild import HistoryBuilder
from policybot.state import State
from kit.mail import body, flat
from kit.trees import FOO, HELPERS, kernel
from kit.weekly import BASE_KFUNCS, LIST, W02, WIDER, Upstream, report_subject, run_config

NEXT_KFUNCS = {**BASE_KFUNCS, "bpf_next1": FOO}
# a hunk of kernel/bpf/helpers.c whose lines no tree has (it applies nowhere)
WIDGET = ("diff --git a/kernel/bpf/helpers.c b/kernel/bpf/helpers.c\n--- a/kernel/bpf/helpers.c\n"
          "+++ b/kernel/bpf/helpers.c\n@@ -1,3 +1,3 @@\n /* the widget */\n-__bpf_kfunc int bpf_widget(void)\n"
          "+__bpf_kfunc long bpf_widget(void)\n {\n")


class TwoTrees:
    """Upstream with master and next, a mirror, an inbox and a config naming both trees."""

    def __init__(self, tmp_path: Path, stable_branch: str = "master"):
        self.tmp = tmp_path
        self.up = Upstream(tmp_path / "upstream.git")
        self.stable_head = self.up.head
        self.up.b.branch = "next"  # the next branch: one commit on top of master
        self.next_head = self.up.land("bpf: add bpf_next1", "2024-01-03", kfuncs=NEXT_KFUNCS,
                                      decls=dict(self.up.decls, bpf_next1="stable"))
        self.inbox = tmp_path / "inbox"
        mailbox.Maildir(self.inbox, create=True)
        # bpf-next's own policy: a parameter added is a warning there, not a violation
        (tmp_path / "next-policy.toml").write_text('[verdicts]\nKFUNC_PARAM_ADDED = "warning"\n')
        self.config, self.state_dir = run_config(tmp_path, self.up.path, [
            {"name": "stable", "branch": stable_branch, "tags": ["bpf"]},
            {"name": "bpf-next", "branch": "next", "tags": ["bpf-next"], "policy": "next-policy.toml"}],
            extra=f'[inbox]\nmaildir = "{self.inbox}"\n')

    def post(self, subject: str, msgid: str, before: dict, after: dict, base: str | None = None) -> None:
        """A patch mail changing kernel/bpf/helpers.c from ``before``'s kfuncs to ``after``'s."""
        scratch = HistoryBuilder(self.tmp / f"scratch-{msgid}.git", bare=True)
        first = scratch.commit({HELPERS: kernel(before)}, "before")
        second = scratch.commit({HELPERS: kernel(after)}, "after")
        self.post_diff(subject, msgid, scratch.repo.diff(first, second).patch, base)

    def post_diff(self, subject: str, msgid: str, diff: str, base: str | None = None) -> None:
        trailer = f"\nbase-commit: {base}\n" if base else ""
        mailbox.Maildir(self.inbox).add(
            (f"From: Jane Developer <jane@example.com>\nTo: {LIST}\nSubject: {subject}\n"
             f"Date: Mon, 08 Jan 2024 10:00:00 +0000\nMessage-ID: <{msgid}@example.com>\n\n"
             f"The change.\n\nSigned-off-by: Jane Developer <jane@example.com>\n---\n{diff}{trailer}-- \n2.43.0\n"
             ).encode())


def run(capsys, config: Path, day: str, *more: str) -> tuple[int, str, str]:
    from policybot.cli import main
    capsys.readouterr()
    rc = main(["run", "--config", str(config), "--today", day, *more])
    out, err = capsys.readouterr()
    return rc, out, err


def outbox(state_dir: Path) -> dict:
    from kit.mail import outbox_mails
    return {m["Subject"]: m for m in outbox_mails(state_dir / "outbox").values()}


@pytest.mark.realtree
def test_routing_beside_the_real_7_2_tree(tmp_path, capsys, kernel_repo):
    """The real v7.2 tree (tag bpf) beside a small bpf-next whose head is a series' base: the
    base-commit and the tag send their series to bpf-next, never to 7.2; a series for neither
    (a hunk 7.2's kernel/bpf/helpers.c does not have) is a skip. The inbox job alone: no tree is audited."""
    w = TwoTrees(tmp_path)
    config, state_dir = run_config(tmp_path, w.up.path, [
        {"name": "linux-7.2", "repo": kernel_repo, "branch": "v7.2", "tags": ["bpf"]},
        {"name": "bpf-next", "branch": "next"}], extra=f'[inbox]\nmaildir = "{w.inbox}"\n')
    text = config.read_text()
    config.write_text(text[:text.index("remote = ")] + text[text.index("branch = "):])  # 7.2: no remote
    assert run(capsys, config, W02, "--job", "audit", "--tree", "bpf-next")[0] == 0  # fetches next
    w.post("[PATCH] bpf: drop bpf_next1", "r1", NEXT_KFUNCS,
           {k: v for k, v in NEXT_KFUNCS.items() if k != "bpf_next1"}, base=w.next_head)
    w.post("[PATCH bpf-next] bpf: drop bpf_foo", "r2", BASE_KFUNCS,
           {k: v for k, v in BASE_KFUNCS.items() if k != "bpf_foo"})
    w.post_diff("[PATCH net-next] net: tune the widget", "r3", WIDGET)
    rc, out, err = run(capsys, config, W02, "--job", "review")
    assert rc == 0, (out, err)
    lines = sorted(ln for ln in out.splitlines() if ln.startswith(("reviewed: ", "skipped: ")))
    assert lines == [  # sorted: the Maildir's order is the directory's
        "reviewed: bpf-next: [PATCH bpf-next] bpf: drop bpf_foo (by tag): 1 violation; 1 reply",
        "reviewed: bpf-next: [PATCH] bpf: drop bpf_next1 (by base-commit): 1 violation; 1 reply",
        "skipped: [PATCH net-next] net: tune the widget: its subject tag net-next names no tree; "
        "it applies to no tree's head"], out
    assert State(state_dir=state_dir).failure("skipped", "r3@example.com") is not None


def test_subject_tags():
    from policybot.app.routing import subject_tags
    assert subject_tags("[PATCH bpf-next v2 1/3] bpf: x") == ["bpf-next"]
    assert subject_tags("[RFC PATCH net-next] x") == ["net-next"]
    assert subject_tags("[PATCH v3 0/7] x") == [] and subject_tags("bpf: x") == []
    assert subject_tags("[PATCH BPF] x") == ["bpf"]


def test_each_series_goes_to_the_tree_it_was_written_for(tmp_path, capsys):
    w = TwoTrees(tmp_path)
    without_next1 = {k: v for k, v in NEXT_KFUNCS.items() if k != "bpf_next1"}
    # 1: no tag, its base-commit is next's head: judged on bpf-next alone (on master the patch does
    # not even apply, and bpf_next1 is no kfunc there)
    w.post("[PATCH] bpf: drop bpf_next1", "s1", NEXT_KFUNCS, without_next1, base=w.next_head)
    # 2: tagged bpf-next, no base-commit; it applies to both heads: the tag decides
    w.post("[PATCH bpf-next] bpf: drop bpf_foo", "s2", BASE_KFUNCS,
           {k: v for k, v in BASE_KFUNCS.items() if k != "bpf_foo"})
    # 3: no base, no tag: the trees whose head it applies to, each with its own findings
    w.post("[PATCH] bpf: widen bpf_bar", "s3", BASE_KFUNCS, {**BASE_KFUNCS, "bpf_bar": WIDER})
    # 4: a tag no tree has, a kfunc's lines no tree has: a skip
    w.post_diff("[PATCH net-next] net: tune the widget", "s4", WIDGET)
    # 5: the same, but touching no kfunc (a driver's .c file): list traffic, not worth a skip
    w.post_diff("[PATCH net-next] net: fix a driver", "s5",
                "diff --git a/drivers/net/dummy.c b/drivers/net/dummy.c\n--- a/drivers/net/dummy.c\n"
                "+++ b/drivers/net/dummy.c\n@@ -1,3 +1,3 @@\n int a;\n-int b;\n+long b;\n int c;\n")
    rc, out, err = run(capsys, w.config, W02)
    assert rc == 0, (out, err)
    lines = out.splitlines()
    assert "reviewed: bpf-next: [PATCH] bpf: drop bpf_next1 (by base-commit): 1 violation; 1 reply" in lines, out
    assert "reviewed: bpf-next: [PATCH bpf-next] bpf: drop bpf_foo (by tag): 1 violation; 1 reply" in lines, out
    assert "reviewed: stable: [PATCH] bpf: widen bpf_bar (by applies): 1 violation; 1 reply" in lines, out
    # judged on bpf-next with its own policy; the finding is not mailed twice (one reply per finding
    # of a patch)
    assert "reviewed: bpf-next: [PATCH] bpf: widen bpf_bar (by applies): 1 warning; 0 replies" in lines, out
    assert not any(ln.startswith("reviewed: stable: [PATCH] bpf: drop bpf_next1") for ln in lines)
    assert not any(ln.startswith("reviewed: stable: [PATCH bpf-next]") for ln in lines)
    assert ("skipped: [PATCH net-next] net: tune the widget: its subject tag net-next names no tree; "
            "it applies to no tree's head") in lines, out
    assert "inbox: 3 series reviewed (bpf-next: 3, stable: 1), 1 skipped, 1 for no tree and touching no kfunc" \
        in lines, out
    assert not any("fix a driver" in ln for ln in lines if not ln.startswith("inbox: "))
    # the reply to 1 is bpf-next's, judged at next's head
    mails = outbox(w.state_dir)
    reply = body(mails["Re: [PATCH] bpf: drop bpf_next1"])
    assert f"bpf-next at {w.next_head[:12]}" in flat(reply) and "bpf_next1" in reply
    assert "stable at" not in flat(reply)
    # the skip is recorded, and each tree's weekly report says it
    skipped = State(state_dir=w.state_dir).failure("skipped", "s4@example.com")
    assert skipped and skipped.reason.startswith("[PATCH net-next] net: tune the widget: ")
    for tree in ("stable", "bpf-next"):
        rep = flat(body(mails[report_subject("2024-W02", tree)]))
        assert "1 series on the list matched no tree this bot follows and was not reviewed:" in rep, rep
        assert "[PATCH net-next] net: tune the widget: its subject tag net-next names no tree" in rep
    # seen: a second run reviews nothing again, skips nothing again
    rc, out, err = run(capsys, w.config, W02)
    assert rc == 0 and "reviewed: " not in out and "skipped: " not in out, out
    # the operator maps net-next to stable: --retry-failed routes the skipped series again
    w.config.write_text(w.config.read_text().replace('tags = ["bpf"]', 'tags = ["bpf", "net-next"]'))
    rc, out, err = run(capsys, w.config, W02, "--job", "review", "--retry-failed")
    assert rc == 0, (out, err)
    assert [ln for ln in out.splitlines() if ln.startswith(("reviewed: ", "skipped: "))] == [
        "reviewed: stable: [PATCH net-next] net: tune the widget (by tag): no findings; 0 replies"], out
    assert State(state_dir=w.state_dir).failure("skipped", "s4@example.com") is None


def test_a_tree_with_a_mistyped_branch_mails_the_operator_alone(tmp_path, capsys):
    """A branch that is not there: the other tree runs; nothing is drafted to the list about the
    fault (its report is not written); one mail to mail.operator, recorded, once that week."""
    w = TwoTrees(tmp_path, stable_branch="mastr")
    rc, out, err = run(capsys, w.config, W02)
    assert rc == 2, (out, err)
    # said as `doctor` says it, and never "no findings" for a tree that could not be read
    said = f"{w.up.path} has no branch 'mastr' (fix [[trees]] branch; it has: master, next)"
    lines = out.splitlines()
    assert f"stable: fetch-failed -: could not be read ({said})" in lines, out
    assert f"failed: tree stable: {said}" in lines, out
    assert "no findings" not in out.split("bpf-next:")[0], out
    assert "bpf-next: baseline " in out, out
    mails = outbox(w.state_dir)
    assert set(mails) == {report_subject("2024-W02", "bpf-next"), "[policybot] 1 problem in the run of 2024-01-08"}
    rep = mails[report_subject("2024-W02", "bpf-next")]
    assert "mastr" not in body(rep) and "could not" not in body(rep).lower()
    op = mails["[policybot] 1 problem in the run of 2024-01-08"]
    assert [a.addr_spec for a in op["To"].addresses] == ["ops@example.org"] and op["Cc"] is None
    assert "tree stable" in body(op) and "has no branch 'mastr' (fix [[trees]] branch; it has: master, next)" in flat(body(op).replace("| ", ""))
    assert State(state_dir=w.state_dir).failure("tree", "stable") is not None
    # to the list: every mail drafted is a report of the tree that ran
    assert all(LIST not in (m["To"] or "") or m["Subject"].startswith("[REPORT]") for m in mails.values())
    rc, out, err = run(capsys, w.config, "2024-01-09")
    assert rc == 2 and len(outbox(w.state_dir)) == 2, out  # the same fault, the same week: not again


def test_a_tree_that_cannot_be_read_without_a_remote_mails_the_operator_alone(tmp_path, capsys):
    """A tree read from a local repository (no remote) whose branch does not resolve ends in
    error before any audit: no report of it to the list (an empty week would say nothing of the
    fault, a report of it would make it public), one mail to mail.operator."""
    up = Upstream(tmp_path / "upstream.git")
    config, state_dir = run_config(tmp_path, up.path, [{"name": "local", "repo": str(up.path), "branch": "mastr"},
                                                       {"name": "bpf-next"}])
    head, *trees = config.read_text().split("[[trees]]\n")
    trees = ["".join(ln for ln in t.splitlines(True) if not ln.startswith("remote = ")) if 'name = "local"' in t
             else t for t in trees]  # the local tree reads its repository as it is
    config.write_text("[[trees]]\n".join([head, *trees]))
    rc, out, err = run(capsys, config, W02)
    assert rc == 2, (out, err)
    mails = outbox(state_dir)
    assert set(mails) == {report_subject("2024-W02", "bpf-next"), "[policybot] 1 problem in the run of 2024-01-08"}, out
    assert "tree local" in body(mails["[policybot] 1 problem in the run of 2024-01-08"])


def test_inbox_mail_without_a_message_id(tmp_path, capsys):
    """Plain `git format-patch` output saved into the inbox (no Message-ID): reviewed under the
    stand-in id review gives it, the reply to its author only. Binary junk without one: a failure
    said and recorded, once."""
    w = TwoTrees(tmp_path)
    scratch = HistoryBuilder(tmp_path / "scratch.git", bare=True)
    first = scratch.commit({HELPERS: kernel(BASE_KFUNCS)}, "before")
    second = scratch.commit({HELPERS: kernel({k: v for k, v in BASE_KFUNCS.items() if k != "bpf_foo"})}, "after")
    inbox = mailbox.Maildir(w.inbox)
    inbox.add(("From 0123456789abcdef0123456789abcdef01234567 Mon Sep 17 00:00:00 2001\n"
               "From: Jane Developer <jane@example.com>\nDate: Mon, 08 Jan 2024 10:00:00 +0000\n"
               "Subject: [PATCH bpf-next] bpf: drop bpf_foo\n\nThe change.\n\n"
               "Signed-off-by: Jane Developer <jane@example.com>\n---\n"
               f"{scratch.repo.diff(first, second).patch}-- \n2.43.0\n").encode())
    inbox.add(b"\x00\x01\xff\xfe binary junk \x89PNG\r\n\x1a\n" * 40)
    rc, out, err = run(capsys, w.config, W02)
    lines = out.splitlines()
    assert "reviewed: bpf-next: [PATCH bpf-next] bpf: drop bpf_foo (by tag): 1 violation; 1 reply" in lines, out
    assert "failed: message '(no subject)': no Message-ID and no patch: not reviewed" in lines, out
    (reply,) = [m for s, m in outbox(w.state_dir).items() if s.startswith("Re: ")]
    assert reply["Subject"] == "Re: [PATCH bpf-next] bpf: drop bpf_foo"
    assert [a.addr_spec for a in reply["To"].addresses] == ["jane@example.com"] and reply["Cc"] is None
    assert reply["In-Reply-To"] is None
    from policybot.state import failures
    import sqlalchemy as sa
    with State(state_dir=w.state_dir).engine.connect() as conn:
        rows = [(r.kind, r.reason) for r in conn.execute(sa.select(failures))]
    assert rows == [("message", "no Message-ID and no patch: not reviewed")], rows
    # the same inbox next run: nothing reviewed or said again
    rc, out, err = run(capsys, w.config, W02, "--job", "review")
    assert "reviewed: " not in out and "failed: " not in out, out


def test_two_operator_faults_in_one_run_make_one_mail(tmp_path, capsys):
    """A mistyped branch and SMTP down (a closed port) in one run with --send: one mail to the
    operator naming both (it waits in the outbox for the next send)."""
    from kit.mail import free_port
    w = TwoTrees(tmp_path, stable_branch="mastr")
    port = free_port()  # nothing listens there
    w.config.write_text(w.config.read_text().replace(
        'operator = "ops@example.org"\n',
        f'operator = "ops@example.org"\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\nsmtp_security = "none"\n', 1))
    rc, out, err = run(capsys, w.config, W02, "--send")
    assert rc == 2 and "failed: tree stable: " in out and f"127.0.0.1:{port}" in out, (out, err)
    from kit.mail import outbox_mails
    to_operator = [m for m in outbox_mails(w.state_dir / "outbox").values() if m["Subject"].startswith("[policybot]")]
    assert [m["Subject"] for m in to_operator] == ["[policybot] 2 problems in the run of 2024-01-08"]
    text = flat(body(to_operator[0]))
    assert "tree stable" in text and "mastr" in text, text
    assert f"sending mail through 127.0.0.1:{port}" in text, text


def test_skip_lines_of_a_mail_without_subject_and_of_a_symbolic_base(tmp_path, capsys):
    """A skipped mail without a Subject is named "(no subject)"; ``base-commit: HEAD~1`` names no
    commit (no hex-looking piece of it, "EAD", is taken for one)."""
    w = TwoTrees(tmp_path)
    w.post_diff("[PATCH net-next] net: tune the widget", "s1", WIDGET, base="HEAD~1")
    mailbox.Maildir(w.inbox).add(
        (f"From: Jane Developer <jane@example.com>\nTo: {LIST}\nDate: Mon, 08 Jan 2024 10:00:00 +0000\n"
         f"Message-ID: <s2@example.com>\n\nThe change.\n---\n{WIDGET}-- \n2.43.0\n").encode())
    rc, out, err = run(capsys, w.config, W02)
    skips = sorted(ln for ln in out.splitlines() if ln.startswith("skipped: "))
    assert skips == ["skipped: (no subject): its subject has no tree tag; it applies to no tree's head",
                     "skipped: [PATCH net-next] net: tune the widget: its subject tag net-next names no tree; "
                     "it applies to no tree's head"], out


def test_tags_must_be_a_list_of_strings(tmp_path):
    from policybot.errors import ConfigError
    config, _ = run_config(tmp_path, tmp_path, [{"name": "bpf-next"}])
    config.write_text(config.read_text() + 'tags = "bpf-next"\n')
    with pytest.raises(ConfigError, match=r"policybot.toml:\d+: trees\[0\].tags: must be a list of strings"):
        load_config(config)


def test_tags_default_to_the_trees_name(tmp_path):
    config, _ = run_config(tmp_path, tmp_path, [{"name": "bpf-next"}, {"name": "net", "tags": ["net", "NET-next"]}])
    cfg = load_config(config)
    assert [t.subject_tags() for t in cfg.trees] == [["bpf-next"], ["net", "net-next"]]

