"""`review --msgid` and the inbox job's `[inbox] query` against a REAL public-inbox
(issue 11): Debian's public-inbox package, a v2 inbox created here
(public-inbox-init -V2), the series delivered with public-inbox-mda, and
public-inbox-httpd serving it on 127.0.0.1 (a free port) for the test.
`make test` installs the package when it is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from kit.mail import BOT, free_port, outbox_files, parse_mail
from kit.series import PROXY_VARS, TODAY, msgid_of, review, review_args

INBOX_ADDR = "bpf@vger.kernel.org"

if not shutil.which("public-inbox-httpd"):  # a hard requirement: scripts/test-tools installs it
    raise RuntimeError("the tests need public-inbox (Debian: apt-get install public-inbox; `make test` installs it)")


class PublicInbox:
    def __init__(self, root: Path):
        self.root = root
        self.config = root / "pi-config"
        self.env = dict(os.environ, PI_CONFIG=str(self.config), HOME=str(root), LC_ALL="C.UTF-8")
        for var in PROXY_VARS:
            self.env.pop(var, None)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/bpf"
        subprocess.run(["public-inbox-init", "-V2", "bpf", str(root / "inbox"), self.url, INBOX_ADDR],
                       env=self.env, check=True, capture_output=True)
        # no spam filter on a test inbox (the default runs spamc)
        subprocess.run(["git", "config", "-f", str(self.config), "publicinboxmda.spamcheck", "none"],
                       env=self.env, check=True, capture_output=True)
        self.httpd = None

    def deliver(self, mail: str) -> None:
        subprocess.run(["public-inbox-mda", "--no-precheck"], input=mail.encode(), check=True,
                       env=dict(self.env, ORIGINAL_RECIPIENT=INBOX_ADDR), capture_output=True)

    def serve(self) -> None:
        self.httpd = subprocess.Popen(["public-inbox-httpd", "-l", f"http://127.0.0.1:{self.port}"], env=self.env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("public-inbox-httpd did not start")

    def stop(self) -> None:
        if self.httpd:
            self.httpd.terminate()
            self.httpd.wait(timeout=30)


@pytest.fixture
def public_inbox(tmp_path, monkeypatch):
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    pi = PublicInbox(tmp_path / "pi")
    yield pi
    pi.stop()


def test_review_by_msgid_from_a_real_public_inbox(series, capsys, tmp_path, public_inbox):
    s = series
    for mail in s.v2 + s.v1:
        public_inbox.deliver(mail)
    public_inbox.serve()
    cover = msgid_of(s.v2[0]).strip("<>")
    rc, out, err = review(capsys, *review_args(s, "--inbox-url", public_inbox.url, src=["--msgid", cover]))
    assert rc == 1, out + err
    assert "could not apply 2/4" in out and "violation[KFUNC_REMOVED]: bpf_foo" in out
    assert "(v2, 4 patches)" in out and "drafted 1 mail" in out
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    assert parse_mail(f)["In-Reply-To"] == msgid_of(s.v2[3])
    # any message of the thread finds it, and nothing is drafted twice
    rc, out, _ = review(capsys, *review_args(s, "--inbox-url", public_inbox.url, src=["--msgid", msgid_of(s.v2[2])]))
    assert rc == 1 and "drafted 0 mails" in out
    # an unknown Message-ID: one line, exit 2
    rc, out, err = review(capsys, *review_args(s, "--inbox-url", public_inbox.url, src=["--msgid", "nope@example.org"]))
    assert rc == 2 and err.count("\n") == 1 and err.startswith("policybot: ") and "nope@example.org" in err


def test_inbox_query_against_a_real_public_inbox(series, capsys, tmp_path, public_inbox):
    from policybot.cli import main
    s = series
    for mail in s.v2:
        public_inbox.deliver(mail)
    public_inbox.deliver("From: Some One <one@example.com>\nTo: bpf@vger.kernel.org\n"
                         "Subject: unrelated question\nMessage-ID: <q1@example.com>\n"
                         "Date: Sat, 1 Mar 2025 09:00:00 +0000\n\nHow do kfuncs work?\n")
    public_inbox.serve()
    config = tmp_path / "policybot.toml"
    config.write_text(f'[state]\ndir = "{tmp_path / "bot"}"\n[mail]\nfrom = "{BOT}"\n'
                      f'[inbox]\nurl = "{public_inbox.url}"\nquery = "s:PATCH AND dfn:kernel/bpf/helpers.c"\n'
                      f'[[trees]]\nname = "linux"\nrepo = "{s.repo}"\nbranch = "v6.1"\n')
    capsys.readouterr()
    assert main(["run", "--config", str(config), "--job", "review", "--today", TODAY]) == 0
    out = capsys.readouterr().out
    assert "reviewed: linux: [PATCH v2 0/4] bpf: kfunc work (by base-commit): 1 violation; 1 reply" in out, out
    assert "drafted 1 mail" in out, out
    (f,) = outbox_files(tmp_path / "bot" / "outbox")
    assert parse_mail(f)["In-Reply-To"] == msgid_of(s.v2[3])
    # the next hour: the same threads come back; nothing is reviewed or mailed again
    assert main(["run", "--config", str(config), "--job", "review", "--today", TODAY]) == 0
    out = capsys.readouterr().out
    assert "reviewed: " not in out and "drafted 0 mails" in out, out
    # a query nothing matches is a quiet run
    config.write_text(config.read_text().replace("dfn:kernel/bpf/helpers.c", "dfn:no/such/file.c"))
    assert main(["run", "--config", str(config), "--job", "review", "--today", TODAY]) == 0
