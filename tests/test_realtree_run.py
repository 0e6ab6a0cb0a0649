"""policybot run on the real trees: v6.1 is last week's baseline, v6.12 this week's head."""

import mailbox
import re

import pytest

from policybot.cli import main
from policybot.kernel.gitrepo import open_repo
from policybot.kernel.scanner import Scanner

pytestmark = pytest.mark.realtree


def write_config(tmp_path, kernel_repo, branch):
    path = tmp_path / f"policybot-{branch}.toml"
    path.write_text(f'[state]\ndir = "state"\n[mail]\nfrom = "policybot <bot@example.org>"\n'
                    f'[[trees]]\nname = "linux"\nrepo = "{kernel_repo}"\nbranch = "{branch}"\n'
                    f'policy = "policy.toml"\n')
    return str(path)


def test_weekly_run_reads_right(tmp_path, kernel_repo, kernel_state, capsys):
    v61 = Scanner(open_repo(kernel_repo), kernel_state).inventory("v6.1")
    (tmp_path / "overlay.yaml").write_text(
        "kfuncs:\n" + "".join(f"  {k.name}:\n    stability: stable\n" for k in v61.selected(False)))
    (tmp_path / "policy.toml").write_text('[declarations]\noverlay = "overlay.yaml"\n')
    assert main(["run", "--config", write_config(tmp_path, kernel_repo, "v6.1"), "--today", "2024-11-18"]) == 0
    assert "linux: baseline 4de254bf9c5f" in capsys.readouterr().out
    assert main(["run", "--config", write_config(tmp_path, kernel_repo, "v6.12"), "--today", "2024-11-25"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"linux: ok 4de254bf9c5f\.\.cf9162c3a41f: 1 info, 3 violation", out), out
    box = mailbox.Maildir(str(tmp_path / "state" / "outbox"), create=False)
    mails = [m for _, m in box.items()]
    assert [m["Subject"] for m in mails] == ["[REPORT] kfunc promises in linux, week 2024-W48"]
    body = mails[0].get_payload(decode=True).decode()
    # the three violations verified against the sources in test_realtree_audit.py
    assert "Audited 4de254bf9c5f..cf9162c3a41f: 3 violations, 0 warnings,\n0 notices, 1 info." in body
    assert "violation KFUNC_CONFIG_GUARD_ADDED for crash_kexec" in body
    assert "violation KFUNC_PARAM_ADDED for bbr_main" in body
    assert "violation KFUNC_PARAM_TYPE_CHANGED for bbr_main" in body
    assert "KFUNC_MOVED" not in body  # info stays out of the mail
    # 6.12 adds 158 non-test kfuncs the overlay does not declare: counted, 20 listed
    new = sorted(set(k.name for k in Scanner(open_repo(kernel_repo), kernel_state).inventory("v6.12")
                     .selected(False)) - set(k.name for k in v61.selected(False)))
    assert f"{len(new)} new kfuncs without a stability declaration:" in body
    assert f"  ... and {len(new) - 20} more" in body
    assert all(len(line) <= 72 for line in body.split("\n"))
    # run again the same week: nothing new is drafted
    assert main(["run", "--config", write_config(tmp_path, kernel_repo, "v6.12"), "--today", "2024-11-25"]) == 0
    assert "drafted 0 mails" in capsys.readouterr().out
    assert len(list(mailbox.Maildir(str(tmp_path / "state" / "outbox"), create=False).keys())) == 1
