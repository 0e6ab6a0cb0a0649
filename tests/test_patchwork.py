"""Patchwork checks against a REAL patchwork server (issue 25): patchwork 3.2.1 from the vendored
source, run on 127.0.0.1 with sqlite (conftest's patchwork_server, kit.patchwork), a 4-patch
series loaded with ``manage.py parsemail``, `policybot review` run with [patchwork] set, and the
checks read back through the server's REST API. Nothing is mocked."""

from __future__ import annotations

import json
import mailbox
import re
import urllib.request
from pathlib import Path

import pytest

from kit.mail import BOT, outbox_files, parse_mail
from kit.patchwork import BOT_USER, PROJECT, STATES, checks, four_patch_series
from kit.series import TODAY, msgid_of, review

CONTEXT = "policybot-kfuncs"
ARCHIVE = "https://lore.example.org/bpf"


def setup(tmp_path: Path, pw, who: str, token: str | None = None, url: str | None = None) -> tuple[list[str], Path]:
    """The series' mails (cover first) loaded into patchwork, and a config whose [patchwork]
    is the server with ``token`` (default: the maintainer's)."""
    mails = four_patch_series(tmp_path, who)
    paths = []
    for i, m in enumerate(mails):
        paths.append(tmp_path / f"mail-{i}.eml")
        paths[-1].write_text(m)
    pw.parsemail(*paths)
    (tmp_path / "series.mbox").write_text("\n".join(mails))
    return mails, write_config(tmp_path, pw.token if token is None else token, url or pw.url)


def write_config(tmp_path: Path, token: str, url: str) -> Path:
    tok = tmp_path / "patchwork-token"
    tok.write_text(token + "\n")
    tok.chmod(0o600)
    cfg = tmp_path / "policybot.toml"
    cfg.write_text(f'[mail]\nfrom = "{BOT}"\n\n[inbox]\nurl = "{ARCHIVE}"\n\n'
                   f'[patchwork]\nurl = "{url}"\nproject = "{PROJECT}"\ntoken_file = "{tok.name}"\n'
                   f'context = "{CONTEXT}"\n')
    return cfg


def run_review(capsys, tmp_path: Path, cfg: Path, *src: str) -> tuple[int, str, str]:
    return review(capsys, "--repo", str(tmp_path / "linux"), *(src or ("--mbox", str(tmp_path / "series.mbox"))),
                  "--config", str(cfg), "--today", TODAY)


def replies_by_patch(tmp_path: Path) -> dict[str, str]:
    """The patch's Message-ID -> our reply's, read from the outbox files."""
    out = {}
    for f in outbox_files(tmp_path / "state" / "outbox"):
        m = parse_mail(f)
        out[m["In-Reply-To"].strip()] = m["Message-ID"].strip()
    return out


def test_review_posts_one_check_per_patch_with_the_verdicts_state(patchwork_server, tmp_path, capsys):
    pw = patchwork_server
    mails, cfg = setup(tmp_path, pw, "one@example.com")
    rc, out, err = run_review(capsys, tmp_path, cfg)
    assert rc == 1 and err == "", err  # a violation
    assert "patchwork: 4 checks posted, 0 unchanged" in out
    replies = replies_by_patch(tmp_path)
    patches = [msgid_of(m) for m in mails[1:]]
    assert set(replies) == {patches[1], patches[2]}  # the warning and the violation are mailed
    for patch, state in zip(patches, STATES):
        (check,) = checks(pw, patch)
        assert (check["context"], check["state"], check["user"]["username"]) == (CONTEXT, state, "policybot")
        want_url = f"{ARCHIVE}/{replies[patch].strip('<>')}/" if patch in replies else None
        assert check["target_url"] == want_url
        assert check["description"] and "\n" not in check["description"]
    assert "bpf_foo" in checks(pw, patches[2])[0]["description"]
    assert checks(pw, patches[0])[0]["description"].startswith("kfunc promises kept")

    # a second run posts nothing: every newest check says the same
    rc, out, err = run_review(capsys, tmp_path, cfg)
    assert rc == 1 and "patchwork: 0 checks posted, 4 unchanged" in out, err
    assert [len(checks(pw, p)) for p in patches] == [1, 1, 1, 1]


def test_a_check_is_posted_again_only_where_the_newest_one_differs(patchwork_server, tmp_path, capsys):
    """Someone (an earlier policybot with another verdict) posted our context on 1/4 with another
    state, and on 4/4 the same state: 1/4 gets a new check, 4/4 none."""
    pw = patchwork_server
    mails, cfg = setup(tmp_path, pw, "two@example.com")
    patches = [msgid_of(m) for m in mails[1:]]
    for patch, state in ((patches[0], "fail"), (patches[3], "success")):
        (found,) = pw.api(f"patches/?project={PROJECT}&msgid={patch.strip('<>')}")
        req = urllib.request.Request(f"{pw.url}/api/1.3/patches/{found['id']}/checks/", method="POST",
                                     data=json.dumps({"state": state, "context": CONTEXT}).encode(),
                                     headers={"Authorization": f"Token {pw.token}",
                                              "Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=30).close()
    rc, out, err = run_review(capsys, tmp_path, cfg)
    assert "patchwork: 3 checks posted, 1 unchanged" in out, err
    assert [c["state"] for c in checks(pw, patches[0])] == ["fail", "success"]  # the newest wins
    assert [c["state"] for c in checks(pw, patches[3])] == ["success"]

    # a pending check never replaces a conclusive one (Kernel Patches Daemon's rule)
    from policybot.mail.patchwork import CheckPost, Patchwork
    client = Patchwork(pw.url, PROJECT, pw.token)
    pid = client.patch_by_msgid(patches[2])
    assert client.sync_check(pid, CheckPost("pending", CONTEXT, "judging")) is False
    assert [c["state"] for c in checks(pw, patches[2])] == ["fail"]


def test_verify_accepts_a_maintainers_token_and_names_what_it_refuses(patchwork_server):
    """What `policybot doctor` can ask: the token and the project, nothing posted."""
    from policybot.mail.patchwork import Patchwork, PatchworkError
    pw = patchwork_server
    assert Patchwork(pw.url, PROJECT, pw.token).verify() == (f"{pw.url}: token accepted, project 'bpf', which "
                                                            f"its user {BOT_USER!r} maintains")
    # a token the server accepts, of a user who maintains nothing: every check it posts would be refused
    with pytest.raises(PatchworkError, match="the token's user maintains no part of project 'bpf'") as e:
        Patchwork(pw.url, PROJECT, pw.stranger_token).verify()
    assert e.value.refused
    with pytest.raises(PatchworkError, match=r"HTTP 403 \(Invalid token.\): refused") as e:
        Patchwork(pw.url, PROJECT, "0" * 40).verify()
    assert e.value.refused
    with pytest.raises(PatchworkError, match=r"projects/nosuch/: HTTP 404"):
        Patchwork(pw.url, "nosuch", pw.token).verify()


@pytest.mark.parametrize("which", ["wrong", "stranger"])
def test_a_refused_token_is_one_line_exit_2_and_the_mail_is_kept(patchwork_server, tmp_path, capsys, which):
    """A token the server does not know, and a user's who maintains nothing: one line, exit 2, the replies in
    the outbox, a failure recorded per patch, no check posted."""
    from policybot.state import State
    pw = patchwork_server
    token = "0" * 40 if which == "wrong" else pw.stranger_token
    mails, cfg = setup(tmp_path, pw, f"three-{which}@example.com", token=token)
    rc, out, err = run_review(capsys, tmp_path, cfg)
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("policybot: patchwork checks not posted: "), err
    # DRF answers 403, not 401, to a token it does not know: session authentication comes first
    assert "HTTP 403" in err and "Traceback" not in err
    assert ("Invalid token" if which == "wrong" else "permission") in err
    assert len(outbox_files(tmp_path / "state" / "outbox")) == 2  # no mail lost
    patches = [msgid_of(m) for m in mails[1:]]
    assert [len(checks(pw, p)) for p in patches] == [0, 0, 0, 0]
    failed = {(f.kind, f.key) for f in State(state_dir=tmp_path / "state").failures()}
    assert failed == {("patchwork", p.strip("<>")) for p in patches}


def test_a_server_that_is_down_is_one_line_and_the_mail_is_kept(patchwork_server, tmp_path, capsys):
    from kit.mail import free_port
    _, cfg = setup(tmp_path, patchwork_server, "four@example.com", url=f"http://127.0.0.1:{free_port()}")
    rc, out, err = run_review(capsys, tmp_path, cfg)
    assert rc == 2 and len(err.splitlines()) == 1 and "refused" in err.lower(), err
    assert len(outbox_files(tmp_path / "state" / "outbox")) == 2


def test_a_series_read_from_patchwork_is_judged_as_the_mbox_is(patchwork_server, tmp_path, capsys):
    pw = patchwork_server
    mails, cfg = setup(tmp_path, pw, "five@example.com")
    (patch,) = pw.api(f"patches/?project={PROJECT}&msgid={msgid_of(mails[1]).strip('<>')}")
    series_id = patch["series"][0]["id"]
    rc, out, err = run_review(capsys, tmp_path, cfg, "--patchwork-series", str(series_id))
    assert rc == 1, err
    lines = [line for line in out.splitlines() if line.startswith("  ")]  # the findings
    assert [line.split("[", 1)[1].split("]")[0] for line in lines] == ["DECLARATION_UNKNOWN_KFUNC", "KFUNC_REMOVED"]
    assert "patchwork: 4 checks posted" in out


def test_the_weekly_inbox_job_posts_the_checks_and_records_a_refusal(patchwork_server, tmp_path, capsys):
    from policybot.cli import main
    from policybot.state import State
    from kit.weekly import Bot, W03, patch_mail
    pw = patchwork_server
    mail = patch_mail(tmp_path)
    (tmp_path / "patch.eml").write_bytes(mail)
    pw.parsemail(tmp_path / "patch.eml")
    inbox = tmp_path / "inbox"
    mailbox.Maildir(inbox, create=True).add(mail)
    tok = tmp_path / "tok"
    tok.write_text("0" * 40 + "\n")
    tok.chmod(0o600)
    bot = Bot(tmp_path, extra=f'[inbox]\nmaildir = "{inbox}"\nurl = "{ARCHIVE}"\n[patchwork]\nurl = "{pw.url}"\n'
                              f'project = "{PROJECT}"\ntoken_file = "{tok}"\ncontext = "{CONTEXT}"\n')
    assert main(["run", "--config", str(bot.config), "--job", "audit", "--today", W03]) == 0
    capsys.readouterr()
    rc = main(["run", "--config", str(bot.config), "--job", "review", "--today", W03])
    out, err = capsys.readouterr()
    failed = [line for line in out.splitlines() if line.startswith("failed: patchwork")]
    assert len(failed) == 1 and "HTTP 403 (Invalid token.)" in failed[0], out

    def replies() -> list[str]:
        return [k for k, m in bot.mails().items() if m["Subject"].startswith("Re: ")]

    assert len(replies()) == 1  # the reply is drafted all the same
    # a refused token is the operator's to fix: one mail to them alone (issue 26)
    (op,) = [m for m in bot.mails().values() if m["Subject"].startswith("[policybot]")]
    assert op["To"] == "ops@example.org" and "HTTP 403 (Invalid token.)" in op.get_content()
    msgid = "20240205100000.1-1-jane@example.com"
    assert ("patchwork", msgid) in {(f.kind, f.key) for f in State(state_dir=bot.state_dir).failures()}
    assert checks(pw, msgid) == []

    tok.write_text(pw.token + "\n")  # the operator fixes the token, and retries
    capsys.readouterr()
    main(["run", "--config", str(bot.config), "--job", "review", "--today", W03, "--retry-failed"])
    out, err = capsys.readouterr()
    assert "patchwork: 1 check posted" in out, out + err
    (check,) = checks(pw, msgid)
    (reply,) = replies()
    assert check["state"] == "fail" and check["target_url"] == f"{ARCHIVE}/{reply.strip('<>')}/"
    assert not [f for f in State(state_dir=bot.state_dir).failures() if f.kind == "patchwork"]
    assert len(replies()) == 1 and len(bot.mails()) == 2  # and no mail twice


def test_without_the_source_the_test_fails_in_one_line_saying_how_to_get_it(tmp_path, monkeypatch):
    from kit.patchwork import tarball
    monkeypatch.setenv("POLICYBOT_PATCHWORK_TARBALL", str(tmp_path / "missing.tar.gz"))
    with pytest.raises(pytest.fail.Exception) as e:
        tarball()
    message = str(e.value)
    assert "\n" not in message and str(tmp_path / "missing.tar.gz") in message
    assert "POLICYBOT_PATCHWORK_TARBALL" in message
    assert "git archive --prefix=patchwork-3.2.1/ -o patchwork-3.2.1.tar.gz v3.2.1" in message


def test_a_server_down_is_said_once_per_run_and_recorded_for_every_patch(tmp_path, capsys):
    """Two threads in the inbox, the patchwork server down: one line in the run's output, a
    failure recorded per patch, both replies drafted."""
    from policybot.cli import main
    from policybot.state import State
    from kit.mail import free_port
    from kit.weekly import Bot, W03, patch_mail
    first = patch_mail(tmp_path)
    second = first.replace(b"<20240205100000.1-1-jane@example.com>", b"<20240205110000.1-1-jane@example.com>")
    second = second.replace(b"Subject: [PATCH bpf-next] bpf: drop bpf_foo", b"Subject: [PATCH bpf-next] bpf: bye bpf_foo")
    inbox = tmp_path / "inbox"
    for m in (first, second):
        mailbox.Maildir(inbox, create=True).add(m)
    tok = tmp_path / "tok"
    tok.write_text("0" * 40 + "\n")
    tok.chmod(0o600)
    bot = Bot(tmp_path, extra=f'[inbox]\nmaildir = "{inbox}"\n[patchwork]\nurl = "http://127.0.0.1:{free_port()}"\n'
                              f'project = "{PROJECT}"\ntoken_file = "{tok}"\n')
    assert main(["run", "--config", str(bot.config), "--job", "audit", "--today", W03]) == 0
    capsys.readouterr()
    main(["run", "--config", str(bot.config), "--job", "review", "--today", W03])
    out, err = capsys.readouterr()
    assert len([line for line in out.splitlines() if line.startswith("failed: patchwork")]) == 1, out
    mails = list(bot.mails().values())
    assert len([m for m in mails if m["Subject"].startswith("Re: ")]) == 2
    # the server down is the operator's to fix: one mail to them alone (issue 26)
    (op,) = [m for m in mails if m["Subject"].startswith("[policybot]")]
    assert op["To"] == "ops@example.org" and "patchwork http://127.0.0.1:" in op.get_content()
    failed = {f.key for f in State(state_dir=bot.state_dir).failures() if f.kind == "patchwork"}
    assert failed == {"20240205100000.1-1-jane@example.com", "20240205110000.1-1-jane@example.com"}


def test_a_series_from_patchwork_keeps_its_cover_letter_and_so_its_base(patchwork_server, tmp_path, capsys):
    """Patchwork's series mbox lacks the cover letter, and with it the base-commit line: read from
    the series' cover_letter, the series is judged on v6.1 as its mbox is, not on the tree's
    HEAD (a commit past v6.1 that 4/4 conflicts with)."""
    from kit.series import build_tree
    tree = build_tree(tmp_path / "linux")
    pw = patchwork_server
    mails, cfg = setup(tmp_path, pw, "seven@example.com")
    tree.commit({"README": "Linux kernel\n\nMoved on.\n"}, "README: move on", "2023-01-01T00:00:00")
    (patch,) = pw.api(f"patches/?project={PROJECT}&msgid={msgid_of(mails[1]).strip('<>')}")
    series_id = patch["series"][0]["id"]
    assert pw.api(f"series/{series_id}/")["cover_letter"]["msgid"] == msgid_of(mails[0])

    def judged(*src: str) -> list[str]:
        rc, out, err = run_review(capsys, tmp_path, cfg, *src)
        assert rc == 1 and err == "", err
        return [line.split("; drafted")[0] for line in out.splitlines() if not line.startswith("patchwork:")]

    from_mbox = judged("--mbox", str(tmp_path / "series.mbox"))
    v61 = str(tree.repo.revparse_single("v6.1").peel(1).id)
    assert f"base-commit: {v61}" in mails[0] and from_mbox[-1] == f"review of 'bpf: kfunc work' (v1, 4 patches) on {v61[:12]}: 2 findings", from_mbox
    assert judged("--patchwork-series", str(series_id)) == from_mbox


def test_a_patch_whose_only_reply_is_a_question_points_at_it(patchwork_server, tmp_path, capsys):
    """A lone patch that gives the stable bpf_foo a flag policybot does not know: the reply asks
    about the flag (keyed by the tree and the flag, not the patch), and the check points at it."""
    from kit.series import single_patch
    from kit.trees import BTF_H, FOO, kernel
    pw = patchwork_server
    mail = single_patch(tmp_path, {"include/linux/btf.h": BTF_H + "#define KF_TEST_NEW (1 << 20) /* for tests */\n",
                                   "kernel/bpf/helpers.c": kernel({"bpf_foo": (FOO, "KF_TEST_NEW"), "bpf_bar": FOO})},
                        "bpf: add KF_TEST_NEW", addr="eight@example.com")
    (tmp_path / "patch.eml").write_text(mail)
    pw.parsemail(tmp_path / "patch.eml")
    cfg = write_config(tmp_path, pw.token, pw.url)
    rc, out, err = run_review(capsys, tmp_path, cfg, "--mbox", str(tmp_path / "patch.eml"))
    assert "notice[KFUNC_NEEDS_REVIEW]" in out and "patchwork: 1 check posted" in out, out + err
    (reply,) = replies_by_patch(tmp_path).items()
    assert reply[0] == msgid_of(mail)
    (check,) = checks(pw, msgid_of(mail))
    assert check["state"] == "success" and check["target_url"] == f"{ARCHIVE}/{reply[1].strip('<>')}/"


def test_two_reviews_at_once_post_each_check_once(patchwork_server, tmp_path, capsys):
    """Three `policybot review` processes on one state, started together (the series judged once
    before, without [patchwork], so all reach the checks at once), three times over with a new
    context each time: each patch gets one check of each context."""
    import os
    import subprocess
    import sys
    pw = patchwork_server
    mails, cfg = setup(tmp_path, pw, "nine@example.com")
    bare = tmp_path / "bare.toml"
    bare.write_text(cfg.read_text().split("[patchwork]")[0])
    rc, out, err = run_review(capsys, tmp_path, bare)
    assert rc == 1 and "patchwork" not in out, err
    args = [sys.executable, "-m", "policybot", "review", "--repo", str(tmp_path / "linux"), "--mbox",
            str(tmp_path / "series.mbox"), "--config", str(cfg), "--today", TODAY]
    env = dict(os.environ, POLICYBOT_STATE_DIR=str(tmp_path / "state"))
    patches = [msgid_of(m) for m in mails[1:]]
    for attempt in range(3):
        cfg.write_text(cfg.read_text().replace(f'context = "{CONTEXT}{attempt or ""}"', f'context = "{CONTEXT}{attempt + 1}"'))
        runs = [subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(3)]
        outs = [r.communicate(timeout=300) for r in runs]
        assert [r.returncode for r in runs] == [1, 1, 1], outs
        said = [re.search(r"^patchwork: (\d+) checks? posted, (\d+) unchanged$", o, re.M) for o, _ in outs]
        assert all(said) and [sum(int(m[i]) for m in said) for i in (1, 2)] == [4, 8], outs
    for p in patches:
        assert sorted(c["context"] for c in checks(pw, p)) == [f"{CONTEXT}{i}" for i in (1, 2, 3)], p
