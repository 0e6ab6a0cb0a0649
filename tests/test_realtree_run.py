"""policybot run on the real trees: v6.1 is last week's baseline, v6.12 this week's head.

The trees are whatever point release Debian serves the day the cache is
built, so nothing here pins downloaded bytes: commit ids come from the
repository (the tags), the list of new kfuncs from the independent reading
of test_realtree_inventory.py, and the findings are the hand-verified ones
of test_realtree_audit.py (a change between the two major releases).
"""

import mailbox
import re

import pygit2
import pytest

from policybot.cli import main
from policybot.kernel.gitrepo import open_repo
from policybot.kernel.scanner import Scanner
from kit.realtree import independent_count, source_tree

pytestmark = pytest.mark.realtree


def write_config(tmp_path, kernel_repo, branch):
    path = tmp_path / f"policybot-{branch}.toml"
    path.write_text(f'[state]\ndir = "state"\n[mail]\nfrom = "policybot <bot@example.org>"\n'
                    f'[[trees]]\nname = "linux"\nrepo = "{kernel_repo}"\nbranch = "{branch}"\n'
                    f'policy = "policy.toml"\n')
    return str(path)


def short_id(kernel_repo, rev):
    """git rev-parse --short=12 REV^{commit}."""
    return str(pygit2.Repository(kernel_repo).revparse_single(rev).peel(pygit2.Commit).id)[:12]


def test_weekly_run_reads_right(tmp_path, kernel_repo, kernel_state, capsys):
    v61, v612 = short_id(kernel_repo, "v6.1"), short_id(kernel_repo, "v6.12")
    inv61 = Scanner(open_repo(kernel_repo), kernel_state).inventory("v6.1")
    (tmp_path / "overlay.yaml").write_text(
        "kfuncs:\n" + "".join(f"  {k.name}:\n    stability: stable\n" for k in inv61.selected(False)))
    (tmp_path / "policy.toml").write_text('[declarations]\noverlay = "overlay.yaml"\n')
    assert main(["run", "--config", write_config(tmp_path, kernel_repo, "v6.1"), "--today", "2024-11-18"]) == 0
    assert f"linux: baseline {v61}" in capsys.readouterr().out
    assert main(["run", "--config", write_config(tmp_path, kernel_repo, "v6.12"), "--today", "2024-11-25"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"linux: ok {v61}\.\.{v612}: 1 info, 2 violation", out), out
    box = mailbox.Maildir(str(tmp_path / "state" / "outbox"), create=False)
    mails = [m for _, m in box.items()]
    assert [m["Subject"] for m in mails] == ["[REPORT] kfunc promises in linux, week 2024-W48"]
    body = mails[0].get_payload(decode=True).decode()
    # the two violations and the info verified against the sources in test_realtree_audit.py (bbr_main's
    # new parameter list is one finding)
    assert f"Audited {v61}..{v612}: 2 violations, 0 warnings,\n0 notices, 1 info." in body
    findings = re.findall(r"^  (violation|warning|notice) (\w+) for (\w+)$", body, re.M)
    assert sorted(findings) == [("violation", "KFUNC_CONFIG_GUARD_ADDED", "crash_kexec"),
                                ("violation", "KFUNC_PARAM_ADDED", "bbr_main")]
    assert "KFUNC_MOVED" not in body  # info stays out of the mail
    # the non-test kfuncs 6.12 adds, read independently of the scanner: the overlay declares
    # none of them; the report counts them and lists the first 20 by name
    old, new = (independent_count(source_tree(kernel_repo, rev)) for rev in ("v6.1", "v6.12"))
    added = sorted(n for n, v in new.items() if not v["test"] and n not in old)
    assert len(added) > 20
    assert f"\n{len(added)} new kfuncs without a stability declaration:\n" in body
    listed = body.split("without a stability declaration:\n", 1)[1].split("\n  ... and ", 1)
    assert [ln.strip() for ln in listed[0].split("\n") if ln.strip()] == added[:20]
    assert listed[1].startswith(f"{len(added) - 20} more (policybot inventory lists them all)\n")
    assert all(len(line) <= 72 for line in body.split("\n"))
    # run again the same week: nothing new is drafted
    assert main(["run", "--config", write_config(tmp_path, kernel_repo, "v6.12"), "--today", "2024-11-25"]) == 0
    assert "drafted 0 mails" in capsys.readouterr().out
    assert len(list(mailbox.Maildir(str(tmp_path / "state" / "outbox"), create=False).keys())) == 1
