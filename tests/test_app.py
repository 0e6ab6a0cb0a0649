"""The application layer (policybot/app/): each use case is one call, whoever asks.

`policybot review` and the inbox job (`policybot run --job review`, and so the
scheduler) draft the same reply, byte for byte, for the same series.
"""

from __future__ import annotations

import mailbox
import re
from pathlib import Path

from policybot.cli import main
from test_jobs import LIST, TREE, W03, Bot
from test_scheduler import patch_mail

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
    assert "Please keep bpf_foo as it is and add the new behaviour as a new kfunc" in text
