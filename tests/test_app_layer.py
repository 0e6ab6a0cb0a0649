"""The application layer (policybot/app/): each use case is one call, whoever asks.

`policybot review` and the inbox job (`policybot run --job review`, and so the
scheduler) draft the same reply, byte for byte, for the same series.
"""

from __future__ import annotations

import mailbox
import re
from pathlib import Path

from policybot.cli import main
from kit.weekly import LIST, TREE, W03, Bot, patch_mail

DATE = re.compile(rb"^Date: .*$", re.M)


def outbox(maildir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for sub in ("new", "cur") if (maildir / sub).is_dir()
            for p in sorted((maildir / sub).iterdir())}


def test_cli_review_and_inbox_job_draft_identical_mail(tmp_path, capsys):
    inbox = tmp_path / "inbox"
    mailbox.Maildir(inbox, create=True).add(patch_mail(tmp_path))
    bot = Bot(tmp_path, extra=f'[inbox]\nmaildir = "{inbox}"\n')
    assert main(["run", "--config", str(bot.config), "--job", "audit", "--today", W03]) == 0  # fetches upstream
    before = outbox(bot.outbox)
    assert main(["run", "--config", str(bot.config), "--job", "review", "--today", W03]) == 0
    by_job = {k: v for k, v in outbox(bot.outbox).items() if k not in before}
    cli_state = tmp_path / "cli-state"
    rc = main(["review", "--repo", str(bot.mirror), "--maildir", str(inbox), "--config", str(bot.config),
               "--state-dir", str(cli_state), "--branch", "refs/remotes/policybot/master",
               "--tree-name", TREE, "--list", LIST, "--today", W03])
    assert rc == 1, capsys.readouterr()  # KFUNC_REMOVED is a violation
    by_cli = outbox(cli_state / "outbox")
    assert len(by_job) == 1 and by_job.keys() == by_cli.keys()
    (name,) = by_job
    assert DATE.sub(b"Date: -", by_job[name]) == DATE.sub(b"Date: -", by_cli[name])
    # the way forward, not the rule's bare hint: the CLI's text is the one both mail
    text = " ".join(by_job[name].decode().split())  # unwrapped
    assert "Please do not remove bpf_foo yet: deprecate it first" in text


def judged_from_diff_text(tmp_path, flags_after: str) -> list[tuple[str, str]]:
    """(rule, message) of a patch that does not apply and re-flags bpf_foo (declared stable)."""
    import datetime as dt
    from types import SimpleNamespace

    from policybot.kernel.scanner import Scanner
    from policybot.policy.audit import Auditor
    from policybot.policy.config import Policy
    from policybot.app.series import judge_diff_text
    from kit.trees import FOO, HEAD_DAY, HELPERS, kernel, pair

    b = pair(tmp_path, {HELPERS: kernel({"bpf_foo": FOO})}, {HELPERS: kernel({"bpf_foo": FOO})}, "stable")
    today = dt.date.fromisoformat(HEAD_DAY)
    auditor = Auditor(b.repo, Scanner(b.repo), Policy(), today)
    commit = b.repo.revparse_single("v6.8").peel(None)
    inv = auditor.scanner.inventory_of_commit(commit, "v6.8")
    patch = SimpleNamespace(diff=f"--- a/{HELPERS}\n+++ b/{HELPERS}\n@@ -99,3 +99,3 @@\n"
                                 f"-BTF_ID_FLAGS(func, bpf_foo)\n+BTF_ID_FLAGS(func, bpf_foo, {flags_after})\n")
    return [(f.rule, f.message) for f in judge_diff_text(auditor, patch, inv, auditor.promises_at(inv, commit, today))]


def test_unappliable_patch_classifies_flags_as_the_audit_does(tmp_path):
    # one classifier (kernel.flags.flag_effect): a flag policybot does not know needs review,
    # as in the audit of an applied change (it used to count as tightening here)
    note = " (judged from the diff text: the patch does not apply)"
    assert judged_from_diff_text(tmp_path / "a", "KF_SLEEPABLE | KF_NEW_THING") == [
        ("KFUNC_FLAGS_TIGHTENED", "flags +KF_SLEEPABLE" + note),
        ("KFUNC_NEEDS_REVIEW", "flags +KF_NEW_THING: policybot does not know what the verifier does "
                               "with this flag" + note)]
    assert judged_from_diff_text(tmp_path / "b", "KF_FASTCALL") == []  # compatible


def test_rules_toml_is_written_in_the_shared_vocabulary():
    """Every verdict table of rules.toml has one column per promise state and only verdicts."""
    import tomllib
    from importlib import resources

    from policybot.model.vocabulary import PromiseState, Verdict
    rules = tomllib.loads(resources.files("policybot.policy").joinpath("rules.toml").read_text())
    assert rules
    for rid, rule in rules.items():
        assert set(rule["verdict"]) == {"unstable", "stable", "expired", "deprecating", "deprecated",
                                        "deprecated_due"} == set(PromiseState), rid
        assert {Verdict(v) for v in rule["verdict"].values()} <= set(Verdict), rid


def test_addresses_are_deduplicated_one_way():
    from email.headerregistry import Address

    from policybot.addresses import dedupe
    from policybot.mail.message import _dedupe
    got = dedupe(["Jane <Jane@Example.com>", "jane@example.com", "", "Bob <bob@example.org>"],
                 exclude=["BOB@example.org"])
    assert got == ["Jane <Jane@Example.com>"]
    to, cc = _dedupe([Address("Jane", addr_spec="jane@example.com")],
                     [Address("J", addr_spec="JANE@example.com"), Address("Ann", addr_spec="ann@example.com")])
    assert [a.addr_spec for a in to] == ["jane@example.com"] and [a.addr_spec for a in cc] == ["ann@example.com"]


def test_review_keeps_verify_objects_on(tmp_path, capsys, monkeypatch):
    """--verify-objects is a process-wide libgit2 setting: the scanner of the patched scratch
    repository a review makes must not turn it off half-way."""
    import pygit2

    calls = []
    settings = pygit2.settings

    class Recording:  # pygit2.settings' attributes are read-only: wrap the object instead
        def enable_strict_hash_verification(self, on):
            calls.append(on)
            settings.enable_strict_hash_verification(on)

        def __getattr__(self, name):
            return getattr(settings, name)

    monkeypatch.setattr(pygit2, "settings", Recording())
    try:
        inbox = tmp_path / "inbox"
        mailbox.Maildir(inbox, create=True).add(patch_mail(tmp_path))
        bot = Bot(tmp_path)
        assert main(["run", "--config", str(bot.config), "--job", "audit", "--today", W03]) == 0
        calls.clear()
        main(["review", "--repo", str(bot.mirror), "--maildir", str(inbox), "--state-dir", str(tmp_path / "s"),
              "--branch", "refs/remotes/policybot/master", "--today", W03, "--verify-objects"])
        assert "applied" in capsys.readouterr().out  # the patch was applied on a scratch repository
        assert calls and all(calls), calls
    finally:
        settings.enable_strict_hash_verification(False)


def test_a_reply_that_cannot_be_drafted_is_reported_by_both(tmp_path, capsys):
    inbox = tmp_path / "inbox"
    mail = patch_mail(tmp_path).replace(b"\nSubject:", "\nCc: B\u00e4d <b\u00e4d@example.com>\nSubject:".encode(), 1)
    mailbox.Maildir(inbox, create=True).add(mail)
    bot = Bot(tmp_path, extra=f'[inbox]\nmaildir = "{inbox}"\n')
    assert main(["run", "--config", str(bot.config), "--job", "audit", "--today", W03]) == 0
    capsys.readouterr()
    main(["run", "--config", str(bot.config), "--job", "review", "--today", W03])
    out = capsys.readouterr().out
    assert "failed: reply 'Re: [PATCH bpf-next] bpf: drop bpf_foo': " in out and "is not a usable mail address" in out
    main(["review", "--repo", str(bot.mirror), "--maildir", str(inbox), "--config", str(bot.config),
          "--state-dir", str(tmp_path / "cli"), "--branch", "refs/remotes/policybot/master", "--today", W03])
    out = capsys.readouterr().out
    assert "policybot: note: no reply drafted to 'Re: [PATCH bpf-next] bpf: drop bpf_foo': " in out
    assert "drafted 0 mails" in out
