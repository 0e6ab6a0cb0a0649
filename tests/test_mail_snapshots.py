"""The whole text of every kind of mail policybot writes, compared byte for byte with tests/snapshots/.

Kinds: the review reply (`policybot review`, and the weekly runner's inbox
review), the weekly report (baseline, a week with findings, acknowledged
breaks, promises ending and new kfuncs, a quiet week, a failed fetch), the
[ANN] deprecation notice (`policybot notice` and the runner's), and the
promise-ending notice (stable and deprecated). Each snapshot holds the
headers that do not depend on the clock (all but Date) and the decoded body,
from fixture trees with fixed dates, so the bytes are the same on every
machine. Paths of the test's scratch directory are written as <tmp>.

A person reads a snapshot once; from then on any change to a mail's text
fails here. After a reviewed change of the mail text, regenerate them with

    POLICYBOT_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest -q tests/test_mail_snapshots.py

and review the diff of tests/snapshots/ (`git diff tests/snapshots/`) before committing.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
from pathlib import Path

from policybot.cli import main
from policybot.gitbuild import HistoryBuilder
from kit import snapshots
from kit.mail import BOT, free_port
from kit.trees import BTF_H, FOO, MANIFEST, kernel, manifest
from kit.weekly import ACKER, LIST, WIDER, Bot, W02, W03, W04, W06, report_subject

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


def mail_text(raw: bytes, tmp_path: Path) -> str:
    """Headers but Date, as written (folded, encoded), then the decoded body."""
    head = raw.split(b"\n\n", 1)[0].decode("ascii")
    lines, skip = [], False
    for ln in head.split("\n"):
        if ln[:1] in (" ", "\t"):
            if not skip:
                lines.append(ln)
            continue
        skip = ln.startswith("Date:")
        if not skip:
            lines.append(re.sub(r"^(X-Mailer: policybot) \S+$", r"\1 <version>", ln))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    text = "\n".join(lines) + "\n\n" + msg.get_content()
    return text.replace(str(tmp_path), "<tmp>")


def check_snapshot(name: str, text: str) -> None:
    snapshots.check(SNAPSHOTS, name, text)


def outbox(maildir: Path) -> dict[str, bytes]:
    """Subject -> raw bytes of every drafted mail (a subject twice fails)."""
    out = {}
    if not maildir.exists():
        return out
    box = mailbox.Maildir(maildir, factory=None, create=False)
    for key in box.keys():
        raw = box.get_bytes(key)
        subject = email.message_from_bytes(raw, policy=email.policy.default)["Subject"]
        assert subject not in out, subject
        out[subject] = raw
    return out


# -- the review reply ----------------------------------------------------------------------------

MAINTAINERS = ("BPF\nM:\tAlexei Starovoitov <ast@kernel.org>\nR:\tSong Liu <song@kernel.org>\n"
               "L:\tbpf@vger.kernel.org\nS:\tSupported\nF:\tkernel/bpf/\n")
REVIEW_BASE = {"include/linux/btf.h": BTF_H, "MAINTAINERS": MAINTAINERS,
               "kernel/bpf/helpers.c": kernel({"bpf_foo": FOO, "bpf_bar": FOO, "bpf_baz": FOO}),
               MANIFEST: manifest(bpf_foo="stable", bpf_bar="stable", bpf_baz="stable")}


def patch_mail(tmp_path: Path, head_files: dict, subject: str, msgid: str, diff_edit=None, base=None,
               author: str = "") -> bytes:
    """A `git format-patch`-shaped mail of the change from REVIEW_BASE (or ``base``) to ``head_files``,
    sent by Jane; ``author``, another's patch, is its in-body From line."""
    scratch = HistoryBuilder(tmp_path / f"scratch-{msgid}", bare=True)
    first = scratch.commit(base or REVIEW_BASE, "base", "2024-11-17T12:00:00")
    second = scratch.commit(head_files, "change", "2025-02-27T12:00:00")
    patch = scratch.repo.diff(first, second).patch
    if diff_edit:
        patch = diff_edit(patch)
    return (f"From: Jane Developer <jane@example.com>\nTo: {LIST}\nCc: Song Liu <song@kernel.org>\n"
            f"Subject: {subject}\nDate: Thu, 27 Feb 2025 10:00:00 +0000\n"
            f"Message-ID: <{msgid}>\n\n{f'From: {author}' + chr(10) + chr(10) if author else ''}Rework the kfuncs.\n\n"
            f"Signed-off-by: Jane Developer <jane@example.com>\n---\n{patch}-- \n2.43.0\n").encode()


def review_tree(tmp_path: Path, base=None) -> str:
    b = HistoryBuilder(tmp_path / "linux")
    b.commit(base or REVIEW_BASE, "Linux 6.12", "2024-11-17T12:00:00")
    b.tag("v6.12")
    return str(tmp_path / "linux")


# bpf_foo removed, bpf_bar takes a parameter more, bpf_baz gains KF_SLEEPABLE
BREAKING = {"kernel/bpf/helpers.c": kernel({"bpf_bar": WIDER, "bpf_baz": (FOO, "KF_SLEEPABLE")})}


def test_review_reply_from_the_cli(tmp_path, capsys):
    repo = review_tree(tmp_path)
    mbox = tmp_path / "in.mbox"
    mbox.write_bytes(patch_mail(tmp_path, BREAKING, "[PATCH bpf-next] bpf: rework kfuncs",
                                "20250227100000.1-1-jane@example.com"))
    assert main(["review", "--repo", repo, "--mbox", str(mbox), "--base", "v6.12", "--today", "2025-03-01",
                 "--from", BOT, "--tree-name", "bpf-next"]) == 1
    (raw,) = outbox(tmp_path / "state" / "outbox").values()
    check_snapshot("review-cli", mail_text(raw, tmp_path))


def test_review_reply_to_a_patch_that_does_not_apply(tmp_path, capsys):
    repo = review_tree(tmp_path)
    mbox = tmp_path / "in.mbox"
    # a context line the tree does not have: judged from the diff text
    mbox.write_bytes(patch_mail(tmp_path, {"kernel/bpf/helpers.c": kernel({"bpf_bar": FOO, "bpf_baz": FOO})},
                                "[PATCH bpf-next] bpf: drop bpf_foo", "20250227100000.2-1-jane@example.com",
                                lambda p: p.replace(" BTF_KFUNCS_START(generic_btf_ids)\n",
                                                    " BTF_KFUNCS_START(other_btf_ids)\n")))
    assert main(["review", "--repo", repo, "--mbox", str(mbox), "--base", "v6.12", "--today", "2025-03-01",
                 "--from", BOT, "--tree-name", "bpf-next"]) == 2  # no patch applied; the reply is drafted
    (raw,) = outbox(tmp_path / "state" / "outbox").values()
    check_snapshot("review-cli-unapplied", mail_text(raw, tmp_path))


# every way forward but the tightening's and the signature's (review-cli has those): bpf_foo renamed,
# bpf_bar (whose declaration names bpf_baz instead, and which a selftest and a sample call) removed,
# a flag policybot does not know given to bpf_baz, with the verifier hunk that acts on it, and a
# suffix it does not know on a new kfunc's parameter;
# the patch is Bob's, sent by Jane
VERIFIER_C = "".join(f"int verifier_line{i};\n" for i in range(30))
FAMILIES_BASE = {**REVIEW_BASE, "kernel/bpf/verifier.c": VERIFIER_C, "kernel/bpf/btf.c": "int btf_line;\n",
                 "kernel/bpf/helpers.c": kernel({"bpf_foo": FOO, "bpf_bar": WIDER, "bpf_baz": FOO,
                                                 "bpf_qux": "int|struct bpf_map *map"}),
                 "tools/testing/selftests/bpf/progs/bar.c": "int x(void) { return bpf_bar(0, 0); }\n",
                 "samples/bpf/bar_user.c": "/* calls bpf_bar */\n",
                 "tools/other.c": "int bpf_barn;\n",  # another name: not a user
                 MANIFEST: "kfuncs:\n  bpf_foo:\n    stability: stable\n  bpf_bar:\n    stability: stable\n"
                           "    replacement: bpf_baz\n  bpf_baz:\n    stability: stable\n"
                           "  bpf_qux:\n    stability: stable\n"}
FAMILIES = {"kernel/bpf/helpers.c": kernel({"bpf_foo_new": FOO, "bpf_baz": (FOO, "KF_TEST_NEW"),
                                            "bpf_qux": "int|struct bpf_map *map__const_map"}),
            "include/linux/btf.h": BTF_H + "#define KF_TEST_NEW (1 << 20) /* for tests */\n",
            "kernel/bpf/verifier.c": VERIFIER_C.replace("int verifier_line6;\n", "int verifier_line6;\n"
                                                      "\tif ((meta->kfunc_flags & KF_TEST_NEW) && !perfmon_capable())\n"
                                                      "\t\treturn -EPERM;\n")
                                      .replace("int verifier_line25;\n", "int verifier_line25;\n"
                                               "\tif (btf_param_match_suffix(btf, arg, \"__const_map\"))\n"
                                               "\t\treturn KF_ARG_CONST_MAP;\n")}


def test_review_reply_of_every_way_forward(tmp_path, capsys):
    repo = review_tree(tmp_path, FAMILIES_BASE)
    mbox = tmp_path / "in.mbox"
    mbox.write_bytes(patch_mail(tmp_path, {**FAMILIES_BASE, **FAMILIES}, "[PATCH bpf-next] bpf: rework kfuncs",
                                "20250227100000.3-1-jane@example.com", base=FAMILIES_BASE,
                                author="Bob Other <bob@example.org>"))
    assert main(["review", "--repo", repo, "--mbox", str(mbox), "--base", "v6.12", "--today", "2025-03-01",
                 "--from", BOT, "--tree-name", "bpf-next"]) == 1
    (raw,) = outbox(tmp_path / "state" / "outbox").values()
    check_snapshot("review-cli-families", mail_text(raw, tmp_path))


def test_review_reply_from_the_weekly_runner(tmp_path, capsys):
    inbox = tmp_path / "inbox"
    bot = Bot(tmp_path, extra=f'[inbox]\nmaildir = "{inbox}"\n')
    bot.upstream.land("bpf: maintainers", "2024-01-03", files={"MAINTAINERS": MAINTAINERS})
    scratch = HistoryBuilder(tmp_path / "scratch.git", bare=True)
    first = scratch.commit({"kernel/bpf/helpers.c": kernel(bot.upstream.kfuncs)}, "x", "2024-01-03T12:00:00")
    second = scratch.commit({"kernel/bpf/helpers.c": kernel({**bot.upstream.kfuncs, "bpf_bar": WIDER})},
                            "y", "2024-01-04T12:00:00")
    patch = scratch.repo.diff(first, second).patch
    mailbox.Maildir(inbox, create=True).add(
        (f"From: Jane Developer <jane@example.com>\nTo: {LIST}\n"
         "Subject: [PATCH bpf-next] bpf: widen bpf_bar\nDate: Mon, 08 Jan 2024 10:00:00 +0000\n"
         "Message-ID: <20240108100000.1-1-jane@example.com>\n\nbpf_bar needs a third argument.\n\n"
         f"Signed-off-by: Jane Developer <jane@example.com>\n---\n{patch}-- \n2.43.0\n").encode())
    assert bot.run(capsys, W02)[0] == 0
    mails = outbox(bot.outbox)
    check_snapshot("review-runner", mail_text(mails["Re: [PATCH bpf-next] bpf: widen bpf_bar"], tmp_path))


# -- the weekly run: reports, announcements, promise-ending notices ------------------------------------

def test_weekly_mails(tmp_path, capsys):
    bot = Bot(tmp_path)
    up = bot.upstream
    # before the first run: a deprecated kfunc whose notice period ends 2024-03-01
    up.land("bpf: add bpf_dep", "2024-01-03", kfuncs=dict(up.kfuncs, bpf_dep=FOO),
            decls=dict(up.decls, bpf_dep={"stability": "deprecated", "since": "2023-03-01"}))
    seen: set[str] = set()

    def week(day):
        assert bot.run(capsys, day)[0] == 0
        mails = outbox(bot.outbox)
        new = {s: m for s, m in mails.items() if s not in seen}
        seen.update(mails)
        return new

    new = week(W02)
    assert set(new) == {report_subject("2024-W02"),
                        "[NOTICE] kfunc promise ending: bpf_dep (deprecated until 2024-03-01)"}
    check_snapshot("report-baseline", mail_text(new[report_subject("2024-W02")], tmp_path))
    check_snapshot("expiring-deprecated", mail_text(
        new["[NOTICE] kfunc promise ending: bpf_dep (deprecated until 2024-03-01)"], tmp_path))

    # week 3: stable bpf_foo removed (a violation), bpf_old (unstable) gains KF_SLEEPABLE (info),
    # and 22 new kfuncs without a declaration
    kf = {k: v for k, v in up.kfuncs.items() if k != "bpf_foo"}
    kf.update(bpf_old=(FOO, "KF_SLEEPABLE"), **{f"bpf_new{i:02d}": "int|struct sock *sk" for i in range(22)})
    up.land("bpf: rework kfuncs\n\nSigned-off-by: Dev <dev@example.org>\n", "2024-01-10", kfuncs=kf)
    new = week(W03)
    assert set(new) == {report_subject("2024-W03")}
    check_snapshot("report-findings", mail_text(new[report_subject("2024-W03")], tmp_path))

    # week 4: stable bpf_bar widened with a maintainer's ack (an acknowledged break); bpf_old
    # deprecated for bpf_new00; the stable bpf_bar starts deprecating, with no replacement
    up.land(f"bpf: widen bpf_bar\n\nKfunc-Break-Acked-by: {ACKER}\nSigned-off-by: Dev <dev@example.org>\n",
            "2024-01-16", kfuncs=dict(up.kfuncs, bpf_bar=WIDER))
    decls = dict(up.decls, bpf_old={"stability": "deprecated", "replacement": "bpf_new00"}, bpf_bar="deprecating")
    up.land("bpf: deprecate bpf_old and bpf_bar", "2024-01-17", decls=decls)
    new = week(W04)
    # both of kernel/bpf/ (the section BPF), the same week: one announcement lists them (issue 26)
    ann = "[ANN] kfunc deprecation: 2 kfuncs of BPF in bpf-next (removal not before 2025-01-17)"
    assert set(new) == {report_subject("2024-W04"), ann}
    check_snapshot("report-deprecation", mail_text(new[report_subject("2024-W04")], tmp_path))
    check_snapshot("notice-grouped", mail_text(new[ann], tmp_path))

    # week 6: nothing landed; bpf_exp's stable window ends 2024-05-01, 86 days away
    new = week(W06)
    ending = "[NOTICE] kfunc promise ending: bpf_exp (stable until 2024-05-01)"
    assert set(new) == {report_subject("2024-W06"), ending}
    check_snapshot("report-unchanged-expiring", mail_text(new[report_subject("2024-W06")], tmp_path))
    check_snapshot("expiring-stable", mail_text(new[ending], tmp_path))


def test_operator_mail_of_a_failed_fetch(tmp_path, capsys):
    """The operator's fault goes to mail.operator alone, not into the list's report (issue 26)."""
    port = free_port()
    bot = Bot(tmp_path, remote=f"http://127.0.0.1:{port}/upstream.git")  # loopback, nothing listens
    assert bot.run(capsys, W02)[0] == 2
    (raw,) = outbox(bot.outbox).values()
    text = mail_text(raw, tmp_path).replace(f":{port}/", ":<port>/")
    # its Message-ID is seeded by the faults, whose text names the port
    check_snapshot("operator-fetch-failed", re.sub(r"(?m)^Message-ID: .*$", "Message-ID: <seeded>", text))


def test_expiry_notices_grouped_per_maintainers_section(tmp_path, capsys):
    """Two promises of kernel/bpf/ ending the same day: one notice listing both, Cc the section's
    maintainer (issue 26), not a mail per kfunc."""
    bot = Bot(tmp_path)
    up = bot.upstream
    up.land("bpf: bpf_bar is as old as bpf_exp", "2024-01-03",
            decls=dict(up.decls, bpf_bar={"stability": "stable", "since": "2019-05-01"}))
    assert bot.run(capsys, W02)[0] == 0
    assert bot.run(capsys, W06)[0] == 0
    notices = {s: m for s, m in outbox(bot.outbox).items() if s.startswith("[NOTICE]")}
    assert list(notices) == ["[NOTICE] kfunc promises ending: 2 kfuncs of BPF in bpf-next"]
    check_snapshot("expiring-grouped", mail_text(notices["[NOTICE] kfunc promises ending: 2 kfuncs of BPF in "
                                                       "bpf-next"], tmp_path))


def test_deprecations_of_a_week_grouped_per_maintainers_section(tmp_path, capsys):
    """Two kfuncs of kernel/bpf/ deprecated in one week: one [ANN] listing both, Cc the section's
    maintainer (issue 26), not an announcement per kfunc."""
    bot = Bot(tmp_path)
    up = bot.upstream
    up.land("bpf: add bpf_new", "2024-01-03", kfuncs=dict(up.kfuncs, bpf_new=FOO))
    assert bot.run(capsys, W02)[0] == 0
    up.land("bpf: deprecate bpf_old and bpf_new", "2024-01-10",
            decls=dict(up.decls, bpf_old="deprecated", bpf_new={"stability": "deprecated", "replacement": "bpf_foo"}))
    assert bot.run(capsys, W03)[0] == 0
    anns = {s: m for s, m in outbox(bot.outbox).items() if s.startswith("[ANN]")}
    title = "[ANN] kfunc deprecation: 2 kfuncs of BPF in bpf-next (removal not before 2025-01-10)"
    assert list(anns) == [title]
    msg = email.message_from_bytes(anns[title], policy=email.policy.default)
    assert msg["To"] == LIST and msg["Cc"] == ACKER  # the M: of kernel/bpf/
    text = msg.get_content()
    assert text.index("  bpf_old, removal not before 2025-01-10") < text.index("  bpf_new, removal not before")
    assert "please move to bpf_foo" in text and "no replacement named yet" in text


# -- policybot notice ----------------------------------------------------------------------------------

def notice_tree(tmp_path: Path, level: str) -> str:
    b = HistoryBuilder(tmp_path / "repo")
    b.commit({**REVIEW_BASE, MANIFEST: manifest(bpf_foo=level)}, "Linux 6.8", "2024-03-10T12:00:00")
    b.tag("v6.8")
    return str(tmp_path / "repo")


def test_notice_from_the_cli_for_a_stable_kfunc(tmp_path, capsys):
    repo = notice_tree(tmp_path, "stable")
    assert main(["notice", "bpf_foo", "--repo", repo, "--replacement", "bpf_foo2", "--today", "2025-01-01"]) == 0
    (raw,) = outbox(tmp_path / "state" / "outbox").values()
    check_snapshot("notice-cli-stable", mail_text(raw, tmp_path))


def test_notice_from_the_cli_for_an_unstable_kfunc(tmp_path, capsys):
    repo = notice_tree(tmp_path, "unstable")
    assert main(["notice", "bpf_foo", "--repo", repo, "--today", "2025-01-01"]) == 0
    (raw,) = outbox(tmp_path / "state" / "outbox").values()
    check_snapshot("notice-cli-unstable-no-replacement", mail_text(raw, tmp_path))


# -- last (in file order), so that a regeneration has written every snapshot first -----------------

def test_every_snapshot_is_checked():
    snapshots.all_checked(SNAPSHOTS, ALL_SNAPSHOTS)


ALL_SNAPSHOTS = (
    "review-cli", "review-cli-unapplied", "review-runner", "review-cli-families",
    "report-baseline", "report-findings", "report-deprecation", "report-unchanged-expiring",
    "operator-fetch-failed",
    "notice-cli-stable", "notice-cli-unstable-no-replacement", "notice-grouped",
    "expiring-stable", "expiring-deprecated", "expiring-grouped",
)
