"""Acknowledged breaks, adversarially (issue 21): an acknowledgement accepts exactly the findings
it names and no more. One acknowledged or allowlisted member of a grouped cause does not accept
the group; an allowlist entry counts for its kfunc and rule until its expiry day; a
Kfunc-Break-Acked-by tag counts only from a maintainer of the kfunc's own files, on a commit in
base..head that touches them; a reply on the list acks only in its sender's own name.

Each test here fails under a one-line wrong implementation of that guard: the list is
tests/mutations/guards-acks.txt.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from policybot.gitbuild import HistoryBuilder
from policybot.kernel.scanner import Scanner
from policybot.policy.audit import Auditor
from policybot.policy.config import Policy, load_policy
from kit.series import MAINTAINERS, msgid_of, run_one, single_patch
from kit.trees import BTF_H, FOO, HELPERS, MANIFEST, kernel, manifest

# kit.series.MAINTAINERS: kernel/bpf/ is Alexei's (M:), kernel/bpf/helpers.c also Helper Keeper's,
# net/ is Net Person's
ALEXEI = "Alexei Starovoitov <ast@kernel.org>"
KEEPER = "Helper Keeper <keeper@example.net>"
NET = "Net Person <net@example.com>"
SONG = "Song Liu <song@kernel.org>"  # R: of kernel/bpf/, not M:
NET_FILE = "net/core/sock_kfuncs.c"
SLEEPABLE = (FOO, "KF_SLEEPABLE")


def net_kernel(kfuncs: dict) -> str:
    """A second kfunc set, in net/: kit.trees.kernel's file with its own names."""
    return (kernel(kfuncs).replace("generic_btf_ids", "sock_btf_ids").replace("generic_kfunc_set", "sock_kfunc_set")
            .replace("kfunc_init", "sock_kfunc_init"))


def tree(tmp_path, base_files: dict, maintainers: str | None = MAINTAINERS) -> HistoryBuilder:
    """v6.1 with ``base_files`` (and MAINTAINERS unless None); the test commits v6.2's changes."""
    files = {"include/linux/btf.h": BTF_H, **base_files}
    if maintainers is not None:
        files["MAINTAINERS"] = maintainers
    b = HistoryBuilder(tmp_path / "repo")
    b.commit(files, "Linux 6.1", "2022-12-11T12:00:00")
    b.tag("v6.1")
    return b


def acked_by(*ackers: str) -> str:
    return "".join(f"Kfunc-Break-Acked-by: {a}\n" for a in ackers) + "Signed-off-by: Dev <dev@example.org>\n"


def audit(b: HistoryBuilder, policy: Policy | None = None, today: dt.date | None = None):
    return Auditor(b.repo, Scanner(b.repo), policy or Policy(), today).audit("HEAD", "v6.1")


def verdicts(result, rule: str) -> set[tuple[tuple[str, ...], bool]]:
    """(the kfuncs of each finding of ``rule``, whether it is acknowledged)."""
    return {(f.members, bool(f.acknowledged)) for f in result.findings if f.rule == rule}


def allowlist(tmp_path, *entries: tuple[str, str, str]) -> Policy:
    """A policy whose allowlist has (kfunc, rule, expires) entries."""
    text = "".join(f'[[allow]]\nkfunc = "{k}"\nrule = "{r}"\nreason = "agreed on the list"\nexpires = {e}\n\n'
                   for k, r, e in entries)
    (tmp_path / "policy.toml").write_text(text)
    return load_policy(tmp_path / "policy.toml")


# -- one cause, some members accepted --------------------------------------------------------------


def test_an_allowlisted_member_does_not_acknowledge_its_group(tmp_path):
    """One commit makes three stable kfuncs sleepable: one cause, one grouped finding. The
    allowlist accepts bpf_foo's change only: bpf_bar's and bpf_baz's still count."""
    three = {"bpf_foo": FOO, "bpf_bar": FOO, "bpf_baz": FOO}
    b = tree(tmp_path, {HELPERS: kernel(three), MANIFEST: manifest(bpf_foo="stable", bpf_bar="stable",
                                                                   bpf_baz="stable")})
    b.commit({HELPERS: kernel({k: SLEEPABLE for k in three})}, "bpf: the generic kfuncs may sleep",
             "2023-02-19T12:00:00")
    policy = allowlist(tmp_path, ("bpf_foo", "KFUNC_FLAGS_TIGHTENED", "2099-01-01"))
    result = audit(b, policy, today=dt.date(2024, 1, 1))
    assert verdicts(result, "KFUNC_FLAGS_TIGHTENED") == {(("bpf_foo",), True), (("bpf_bar", "bpf_baz"), False)}
    assert result.worst() == "violation"
    assert result.counts()["violation"] == 1  # the two unaccepted members, one finding


def test_an_allowlist_entry_counts_for_its_own_rule_and_until_its_expiry_day(tmp_path):
    """Three members of one cause, three entries that each look close to accepting one: an entry
    for another rule (bpf_foo), one that expired yesterday (bpf_bar: a note, not an ack), one that
    expires today (bpf_baz: still accepted)."""
    three = {"bpf_foo": FOO, "bpf_bar": FOO, "bpf_baz": FOO}
    b = tree(tmp_path, {HELPERS: kernel(three), MANIFEST: manifest(bpf_foo="stable", bpf_bar="stable",
                                                                   bpf_baz="stable")})
    b.commit({HELPERS: kernel({k: SLEEPABLE for k in three})}, "bpf: the generic kfuncs may sleep",
             "2023-02-19T12:00:00")
    policy = allowlist(tmp_path, ("bpf_foo", "KFUNC_REMOVED", "2099-01-01"),
                       ("bpf_bar", "KFUNC_FLAGS_TIGHTENED", "2023-12-31"),
                       ("bpf_baz", "KFUNC_FLAGS_TIGHTENED", "2024-01-01"))
    result = audit(b, policy, today=dt.date(2024, 1, 1))
    assert verdicts(result, "KFUNC_FLAGS_TIGHTENED") == {(("bpf_bar", "bpf_foo"), False), (("bpf_baz",), True)}
    (counted,) = [f for f in result.findings if f.rule == "KFUNC_FLAGS_TIGHTENED" and f.counts]
    assert counted.verdict == "violation"
    assert [n for n in counted.notes if "allowlist" in n] == [
        f"allowlist entry {tmp_path / 'policy.toml'}:7 expired on 2023-12-31"]
    (accepted,) = [f for f in result.findings if f.rule == "KFUNC_FLAGS_TIGHTENED" and f.ack]
    assert (accepted.ack.kind, accepted.ack.until) == ("allowlist", dt.date(2024, 1, 1))


# -- a tag: from whom, on which commit ------------------------------------------------------------


@pytest.mark.parametrize("acker, accepted", [
    (NET, "bpf_sock"),  # maintains net/, which the commit also touches: not bpf_foo's file
    (ALEXEI, "bpf_foo"),  # maintains kernel/bpf/: not bpf_sock's file
], ids=["net-maintainer", "bpf-maintainer"])
def test_a_tag_counts_only_for_the_kfuncs_whose_files_its_giver_maintains(tmp_path, acker, accepted):
    """One commit makes bpf_foo (kernel/bpf/helpers.c) and bpf_sock (net/) sleepable: one cause
    across two files, acked by a maintainer of one of them. The tag accepts that file's kfunc
    only; the other still counts, and says whose tag did not count."""
    b = tree(tmp_path, {HELPERS: kernel({"bpf_foo": FOO}), NET_FILE: net_kernel({"bpf_sock": FOO}),
                        MANIFEST: manifest(bpf_foo="stable", bpf_sock="stable")})
    b.commit({HELPERS: kernel({"bpf_foo": SLEEPABLE}), NET_FILE: net_kernel({"bpf_sock": SLEEPABLE})},
             "bpf, net: the kfuncs may sleep\n\n" + acked_by(acker), "2023-02-19T12:00:00")
    result = audit(b)
    other = ({"bpf_foo", "bpf_sock"} - {accepted}).pop()
    assert verdicts(result, "KFUNC_FLAGS_TIGHTENED") == {((accepted,), True), ((other,), False)}
    (counted,) = [f for f in result.findings if f.rule == "KFUNC_FLAGS_TIGHTENED" and f.counts]
    assert counted.verdict == "violation"
    assert any(f"tag of {acker}" in n and "not a maintainer of the kfunc's files" in n for n in counted.notes)
    (ack,) = [f.ack for f in result.findings if f.ack]
    assert f"{ack.name} <{ack.address}>" == acker


def test_a_maintainer_of_another_file_of_the_same_commit_does_not_ack_a_removal(tmp_path):
    """The commit that removes bpf_foo also touches net/: Net Person's tag on it is no ack of
    the removal; Helper Keeper's (kernel/bpf/helpers.c) on the same commit is."""
    for acker, acked in ((NET, False), (KEEPER, True)):
        b = tree(tmp_path / acker[:3], {HELPERS: kernel({"bpf_foo": FOO, "bpf_bar": FOO}),
                                        MANIFEST: manifest(bpf_foo="stable"), "net/core/dev.c": "int dev;\n"})
        b.commit({HELPERS: kernel({"bpf_bar": FOO}), "net/core/dev.c": "int dev_changed;\n"},
                 "bpf, net: drop bpf_foo\n\n" + acked_by(acker), "2023-02-19T12:00:00")
        assert verdicts(audit(b), "KFUNC_REMOVED") == {(("bpf_foo",), acked)}, acker


@pytest.mark.parametrize("maintainers", [MAINTAINERS, None], ids=["MAINTAINERS", "no-MAINTAINERS"])
def test_a_tag_on_a_commit_that_does_not_touch_the_kfuncs_files_does_not_ack(tmp_path, maintainers):
    """base..head: the commit that removes bpf_foo carries no tag; the next one, by a maintainer
    of all of kernel/bpf/, touches only kernel/bpf/verifier.c. Its tag is about that change. A
    tree without MAINTAINERS accepts any acker: there the files are the only guard."""
    b = tree(tmp_path, {HELPERS: kernel({"bpf_foo": FOO, "bpf_bar": FOO}), MANIFEST: manifest(bpf_foo="stable"),
                        "kernel/bpf/verifier.c": "int verifier;\n"}, maintainers)
    b.commit({HELPERS: kernel({"bpf_bar": FOO})}, "bpf: drop bpf_foo", "2023-02-19T12:00:00")
    b.commit({"kernel/bpf/verifier.c": "int verifier_changed;\n"}, "bpf: verifier change\n\n" + acked_by(ALEXEI),
             "2023-02-20T12:00:00")
    result = audit(b)
    assert verdicts(result, "KFUNC_REMOVED") == {(("bpf_foo",), False)}
    assert result.worst() == "violation"


def test_a_tag_before_the_base_does_not_ack_a_later_break(tmp_path):
    """A maintainer acked an earlier change to helpers.c (before v6.1): that says nothing of
    the removal in v6.1..HEAD."""
    b = HistoryBuilder(tmp_path / "repo")
    b.commit({"include/linux/btf.h": BTF_H, "MAINTAINERS": MAINTAINERS, HELPERS: kernel({"bpf_foo": FOO}),
              MANIFEST: manifest(bpf_foo="stable")}, "Linux 6.0", "2022-10-02T12:00:00")
    b.commit({HELPERS: kernel({"bpf_foo": FOO, "bpf_bar": FOO})}, "bpf: add bpf_bar\n\n" + acked_by(KEEPER),
             "2022-11-01T12:00:00")
    b.tag("v6.1")
    b.commit({HELPERS: kernel({"bpf_bar": FOO})}, "bpf: drop bpf_foo", "2023-02-19T12:00:00")
    assert verdicts(audit(b), "KFUNC_REMOVED") == {(("bpf_foo",), False)}


# -- a reply on the list: in whose name ----------------------------------------------------------


def reply(patch_mail: str, sender: str, trailer: str, n: int = 1) -> str:
    """A reply to ``patch_mail`` From ``sender`` whose body gives ``trailer``."""
    patch_id = msgid_of(patch_mail)
    return (f"From reply{n} Mon Sep 17 00:00:00 2001\nFrom: {sender}\nTo: Jane Developer <jane@example.com>\n"
            f"Subject: Re: [PATCH] bpf: drop bpf_foo\nMessage-Id: <reply-{n}@example.net>\n"
            f"In-Reply-To: {patch_id}\nReferences: {patch_id}\nDate: Sun, 2 Mar 2025 10:00:00 +0000\n\n"
            f"> bpf: drop bpf_foo\n\nFine with me.\n\nKfunc-Break-Acked-by: {trailer}\n")


DROP_FOO = {HELPERS: kernel({"bpf_bar": FOO})}


def review_with(tmp_path, capsys, *replies: tuple[str, str], files=DROP_FOO) -> tuple[int, dict, list[dict]]:
    """policybot review (JSON) of one patch dropping bpf_foo, with replies (sender, trailer), in a
    state of its own: (exit status, the patch's KFUNC_REMOVED finding, the mails drafted)."""
    mail = single_patch(tmp_path, files, "bpf: drop bpf_foo")
    mbox = "\n".join([mail] + [reply(mail, s, t, i) for i, (s, t) in enumerate(replies)])
    state = tmp_path / f"state-{len(list(tmp_path.glob('state-*')))}"
    rc, out, err = run_one(capsys, tmp_path, mbox, "--state-dir", str(state), "--format", "json")
    assert "Traceback" not in out + err
    doc = json.loads(out)
    (patch,) = doc["patches"]
    (removed,) = [f for f in patch["findings"] if f["rule"] == "KFUNC_REMOVED"]
    return rc, removed, doc["drafted"]


def test_a_reply_with_a_maintainers_display_name_and_another_address_does_not_ack(tmp_path, capsys):
    """The reply is From the address its tag names, so the tag is its sender's own; but the
    name it copies from MAINTAINERS does not make that address a maintainer's."""
    lookalike = "Helper Keeper <keeper@evil.example>"
    rc, removed, drafted = review_with(tmp_path, capsys, (lookalike, lookalike))
    assert (rc, removed["acknowledged"], len(drafted)) == (1, None, 1)
    assert any(f"tag of {lookalike}" in n and "does not count" in n for n in removed["notes"]), removed["notes"]
    # the maintainer's own reply does
    rc, removed, drafted = review_with(tmp_path, capsys, (KEEPER, KEEPER))
    assert (rc, (removed["ack"] or {}).get("address"), drafted) == (0, "keeper@example.net", [])


@pytest.mark.parametrize("sender", ["Mallory <mallory@evil.example>",
                                    "Helper Keeper <mallory@evil.example>"],  # the name copied too
                         ids=["another-name", "the-maintainers-name"])
def test_a_reply_tag_in_a_maintainers_name_from_another_address_does_not_ack(tmp_path, capsys, sender):
    """A tag naming the maintainer, address and all, in a reply From someone else: only the
    reply's sender acks, and the tag is not the sender's."""
    rc, removed, drafted = review_with(tmp_path, capsys, (sender, KEEPER))
    assert (rc, removed["acknowledged"], len(drafted)) == (1, None, 1)


@pytest.mark.parametrize("acker, acked", [(NET, False), (SONG, False), (KEEPER, True)],
                         ids=["net-maintainer", "helpers-reviewer", "helpers-maintainer"])
def test_a_reply_ack_counts_only_from_a_maintainer_of_the_kfuncs_file(tmp_path, capsys, acker, acked):
    """The patch that drops bpf_foo also touches net/: a reply from net/'s maintainer is no ack
    of the removal, nor one from a reviewer (R:) of helpers.c; one from its maintainer is."""
    rc, removed, drafted = review_with(tmp_path, capsys, (acker, acker),
                                       files={**DROP_FOO, "net/core/dev.c": "int dev;\n"})
    assert (rc, bool(removed["acknowledged"]), len(drafted)) == ((0, True, 0) if acked else (1, False, 1))


def test_a_commit_cannot_make_its_own_acker_a_maintainer(tmp_path):
    """Who may acknowledge is read from the base's MAINTAINERS, as a review reads it: a commit
    that adds Mallory as a maintainer of helpers.c and removes a stable kfunc with her tag does
    not accept its own break; the base's maintainer's tag on the same commit does."""
    b = tree(tmp_path, {HELPERS: kernel({"bpf_foo": FOO, "bpf_bar": FOO}), MANIFEST: manifest(bpf_foo="stable")})
    mallory = MAINTAINERS + ("\nBPF KFUNC CLEANUP\nM:\tMallory <mallory@evil.example>\nS:\tMaintained\n"
                             "F:\tkernel/bpf/helpers.c\n")
    b.commit({HELPERS: kernel({"bpf_bar": FOO}), "MAINTAINERS": mallory},
             "bpf: drop bpf_foo\n\n" + acked_by("Mallory <mallory@evil.example>"), "2023-02-19T12:00:00")
    (f,) = [f for f in audit(b).findings if f.rule == "KFUNC_REMOVED"]
    assert f.verdict == "violation" and not f.acknowledged and "not a maintainer" in " ".join(f.notes)
    b2 = tree(tmp_path / "b2", {HELPERS: kernel({"bpf_foo": FOO, "bpf_bar": FOO}), MANIFEST: manifest(bpf_foo="stable")})
    b2.commit({HELPERS: kernel({"bpf_bar": FOO}), "MAINTAINERS": mallory},
              "bpf: drop bpf_foo\n\n" + acked_by(KEEPER), "2023-02-19T12:00:00")
    (f,) = [f for f in audit(b2).findings if f.rule == "KFUNC_REMOVED"]
    assert f.acknowledged and "keeper@example.net" in f.acknowledged
