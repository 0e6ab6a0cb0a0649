"""Hostile input and faults (issue 11): everything from a list is hostile, and the
machine fails. Each case gives one line on stderr and exit status 2, or a finding,
and leaves the state as it was; `run` isolates what fails and carries on.
"""

from __future__ import annotations

import email
import email.policy
import errno
import gc
import os
import re
import socket
import threading
from pathlib import Path

import pygit2
import pytest
import sqlalchemy as sa

from policybot.cli import main
from policybot.gitbuild import HistoryBuilder
from policybot.state import State, mails
from kit.mail import BOT, outbox_files, parse_mail
from kit.series import (DROP_FOO, MAINTAINERS, TODAY, build_tree, clone, format_patch, git_env, msgid_of, run_one,
                        single_patch)
from kit.trees import BTF_H, FOO, MANIFEST, kernel, manifest


def call(capsys, *argv) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def one_line(rc, out, err, *expect) -> None:
    assert rc == 2, (rc, out, err)
    assert err.count("\n") == 1 and err.startswith("policybot: "), err
    assert "Traceback" not in out + err
    for e in expect:
        assert e in err, err


def tree_with(tmp_path: Path, files: dict, name="linux") -> Path:
    b = HistoryBuilder(tmp_path / name)
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": kernel({"bpf_foo": FOO, "bpf_bar": FOO}),
              "MAINTAINERS": MAINTAINERS, **files}, "Linux 6.1", "2022-12-11T12:00:00")
    b.tag("v6.1")
    return tmp_path / name


def audit_json(capsys, repo: Path, *more) -> tuple[int, dict, str]:
    import json
    rc, out, err = call(capsys, "audit", "--repo", str(repo), "--format", "json", "--today", TODAY, *more)
    assert "Traceback" not in out + err
    return rc, json.loads(out) if out.strip() else {}, err


# -- manifests of the wrong shape: a DECLARATION_INVALID finding, never a traceback ------------------

BAD_MANIFESTS = {
    "version-list": "kfuncs:\n  bpf_foo:\n    stability: stable\n    version: [1, 2]\n",
    "mapping-as-key": "kfuncs:\n  ? {a: 1}\n  : stability: stable\n",
    "mapping-as-field": "kfuncs:\n  bpf_foo:\n    ? [x]\n    : stable\n",
    "stability-list": "kfuncs:\n  bpf_foo:\n    stability: [stable]\n",
    "deep-nesting": "kfuncs:\n  bpf_foo: " + "[" * 1000 + "]" * 1000 + "\n",
    "deep-mapping": "kfuncs:\n  bpf_foo:\n    note: " + "{a: " * 1000 + "1" + "}" * 1000 + "\n",
    "alias-bomb": ("a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                   "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                   "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                   "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
                   "kfuncs: *h\n"),
    "alias-in-declaration": "x: &s stable\nkfuncs:\n  bpf_foo:\n    stability: *s\n",
    "binary": "\x00\x01\x02kfuncs\xff\n",
    "not-utf8-bytes": b"kfuncs:\n  bpf_foo:\n    stability: st\xe9ble\n",
    "tab-indented": "kfuncs:\n\tbpf_foo: 1\n",
    "huge-number": "kfuncs:\n  bpf_foo:\n    stability: stable\n    version: " + "9" * 5000 + "\n",
}


@pytest.mark.parametrize("text", BAD_MANIFESTS.values(), ids=BAD_MANIFESTS.keys())
def test_wrong_shaped_manifest_is_a_declaration_invalid_finding(tmp_path, capsys, text):
    repo = tree_with(tmp_path, {MANIFEST: text})
    rc, data, err = audit_json(capsys, repo, "--fail-on", "never")
    assert rc == 0, err
    rules = [f["rule"] for f in data["findings"]]
    assert "DECLARATION_INVALID" in rules, data["findings"]
    assert all(f["location"].startswith(MANIFEST + ":") for f in data["findings"]
               if f["rule"] == "DECLARATION_INVALID")


def test_wrong_shaped_overlay_is_the_operators_error(tmp_path, capsys):
    repo = tree_with(tmp_path, {MANIFEST: manifest(bpf_foo="stable")})
    overlay = tmp_path / "overlay.yaml"
    policy = tmp_path / "policy.toml"
    policy.write_text(f'[declarations]\noverlay = "{overlay}"\n')
    for text in (BAD_MANIFESTS["deep-nesting"], BAD_MANIFESTS["alias-bomb"], BAD_MANIFESTS["version-list"]):
        overlay.write_text(text)
        one_line(*call(capsys, "audit", "--repo", str(repo), "--policy", str(policy)), str(overlay))


# -- review: patches that touch the manifest, hostile headers --------------------------------------

def test_patch_editing_the_manifest_is_reviewed(tmp_path, capsys):
    mail = single_patch(tmp_path, {MANIFEST: manifest(bpf_foo="unstable", bpf_bar="stable")},
                        "bpf: demote bpf_foo")
    rc, out, err = run_one(capsys, tmp_path, mail)
    assert "Traceback" not in out + err and rc in (0, 1), out + err
    assert "STABILITY_DEMOTED" in out, out


def test_patch_creating_the_manifest_is_reviewed(tmp_path, capsys):
    b = HistoryBuilder(tmp_path / "linux")
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": kernel({"bpf_foo": FOO}),
              "MAINTAINERS": MAINTAINERS}, "Linux 6.1", "2022-12-11T12:00:00")
    b.tag("v6.1")
    g = clone(tmp_path / "linux", tmp_path / "work", git_env(), "x")
    g.commit({MANIFEST: "kfuncs:\n  bpf_foo:\n    stability: [1, 2]\n"}, "bpf: declare kfuncs")
    (mail,) = format_patch(g, tmp_path / "p", "--no-cover-letter")
    rc, out, err = run_one(capsys, tmp_path, mail, "--fail-on", "never")
    assert rc == 0 and "Traceback" not in out + err, out + err
    assert "DECLARATION_INVALID" in out, out


@pytest.mark.parametrize("header", ["Cc", "Reply-To", "To"])
def test_encoded_crlf_in_a_display_name(tmp_path, capsys, header):
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    evil = "=?utf-8?q?Evil=0D=0ABcc=3A_victim=40example=2Enet=0D=0A?= <evil@example.com>"
    mail = mail.replace("\nTo: bpf@vger.kernel.org\n", f"\nTo: bpf@vger.kernel.org\n{header}: {evil}\n", 1)
    rc, out, err = run_one(capsys, tmp_path, mail)
    assert rc == 1 and "Traceback" not in out + err, out + err
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    head = f.read_bytes().split(b"\n\n", 1)[0]
    assert not any(line.lower().startswith(b"bcc:") for line in head.split(b"\n"))
    msg = parse_mail(f)
    assert msg["Bcc"] is None
    assert all("\r" not in v and "\n" not in v for v in msg.values())
    addresses = [a.addr_spec for h in ("To", "Cc") for a in (msg[h].addresses if msg[h] else ())]
    assert "victim@example.net" not in addresses
    # a Reply-To never steers the reply: the author gets it, the Reply-To address nothing
    assert ("evil@example.com" in addresses) == (header != "Reply-To")


def test_patch_path_with_terminal_escapes_never_reaches_the_terminal(tmp_path, capsys):
    evil = "kernel/bpf/\x1b]0;pwned\x07\x1b[2J.c"
    mail = single_patch(tmp_path, {**DROP_FOO, evil: "int x;\n"}, "bpf: drop bpf_foo \x1b[31mred")
    rc, out, err = run_one(capsys, tmp_path, mail)
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert "Traceback" not in out + err


# -- bounds -------------------------------------------------------------------------------------------

def test_recipients_per_mail_are_capped(tmp_path, capsys):
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    ccs = ", ".join(f"person{i}@example.com" for i in range(5000))
    mail = mail.replace("\nTo: bpf@vger.kernel.org\n", f"\nTo: bpf@vger.kernel.org\nCc: {ccs}\n", 1)
    rc, out, err = run_one(capsys, tmp_path, mail)
    assert rc == 1, out + err
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    msg = parse_mail(f)
    to_cc = [a.addr_spec for h in ("To", "Cc") for a in (msg[h].addresses if msg[h] else ())]
    assert len(to_cc) <= 50  # the default cap (config/policybot.toml: mail.max_recipients)
    # the people who must hear of it come first: the author, the maintainers, the list
    assert "jane@example.com" in to_cc and "keeper@example.net" in to_cc and "bpf@vger.kernel.org" in to_cc
    assert "recipients" in out  # said, not silently dropped


def test_a_megabyte_line_is_not_quoted_whole(tmp_path, capsys):
    big = kernel({"bpf_bar": FOO}) + "int x = " + "1+" * 500_000 + "1;\n"
    mail = single_patch(tmp_path, {"kernel/bpf/helpers.c": big}, "bpf: drop bpf_foo")
    rc, out, err = run_one(capsys, tmp_path, mail)
    assert rc == 1 and "Traceback" not in out + err, out + err
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    assert f.stat().st_size < 64 * 1024
    assert all(len(line) <= 998 for line in f.read_bytes().split(b"\n"))


def test_an_oversized_message_is_not_reviewed(tmp_path, capsys):
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    config = tmp_path / "policybot.toml"
    config.write_text(f'[mail]\nfrom = "{BOT}"\n[limits]\nmax_patch_bytes = 100\n')
    rc, out, err = run_one(capsys, tmp_path, mail, "--config", str(config))
    assert "Traceback" not in out + err
    assert rc == 2 and "max_patch_bytes" in err, out + err
    assert not outbox_files(tmp_path / "state" / "outbox") if (tmp_path / "state" / "outbox").exists() else True


def test_absurd_message_id_is_dropped_from_references(tmp_path, capsys, smtp_server):
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    long_id = "<" + "x" * 10_000 + "@example.com>"
    mail = re.sub(r"^Message-I[dD]: .*$", f"Message-ID: {long_id}", mail, count=1, flags=re.M)
    handler, port = smtp_server()
    config = tmp_path / "policybot.toml"
    config.write_text(f'[mail]\nfrom = "{BOT}"\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
                      'smtp_security = "none"\n')
    rc, out, err = run_one(capsys, tmp_path, mail, "--config", str(config), "--send")
    assert rc == 1 and "Traceback" not in out + err, out + err
    ((_, _, raw),) = handler.envelopes
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert "x" * 1000 not in str(msg["References"] or "") + str(msg["In-Reply-To"] or "")


# -- etiquette --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [
    "Auto-Submitted: auto-generated",
    "Auto-Submitted: auto-replied; owner-email=x@example.com",
    "From: policybot <policybot@example.org>",
    "Content-Type: multipart/report; report-type=delivery-status; boundary=x",
], ids=["auto-generated", "auto-replied", "own-from", "dsn"])
def test_no_reply_to_bots_reports_or_itself(tmp_path, capsys, extra):
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    name = extra.split(":")[0]
    if name == "From":
        mail = re.sub(r"^From: .*$", extra, mail, count=1, flags=re.M)
    else:
        mail = mail.replace("\nTo: bpf@vger.kernel.org\n", f"\nTo: bpf@vger.kernel.org\n{extra}\n", 1)
    rc, out, err = run_one(capsys, tmp_path, mail)
    assert "Traceback" not in out + err
    if name == "Content-Type":  # a delivery report carries no series (b4 finds no patch in it)
        one_line(rc, out, err, "no patch series")
        return
    assert "drafted 0 mails" in out, out
    assert "not replying" in out, out


def test_auto_submitted_no_is_replied_to(tmp_path, capsys):
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    mail = mail.replace("\nTo: bpf@vger.kernel.org\n", "\nTo: bpf@vger.kernel.org\nAuto-Submitted: no\n", 1)
    rc, out, err = run_one(capsys, tmp_path, mail)
    assert rc == 1 and "drafted 1 mail" in out, out + err


def test_no_reply_to_its_own_message_id(tmp_path, capsys):
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    mail = re.sub(r"^Message-I[dD]: .*$", "Message-ID: <policybot-0123456789abcdef@example.org>",
                  mail, count=1, flags=re.M)
    rc, out, err = run_one(capsys, tmp_path, mail)
    assert "drafted 0 mails" in out and "not replying" in out, out + err


# -- acknowledgements -------------------------------------------------------------------------------------

def test_authors_own_ack_trailer_does_not_count(tmp_path, capsys):
    build_tree(tmp_path / "linux")
    g = clone(tmp_path / "linux", tmp_path / "work", git_env(), "x")
    (g.work / "kernel/bpf/helpers.c").write_text(kernel({"bpf_bar": FOO}))
    g("commit", "-qam", "bpf: drop bpf_foo\n\nKfunc-Break-Acked-by: Helper Keeper <keeper@example.net>\n"
                        "Signed-off-by: Jane Developer <jane@example.com>")
    (mail,) = format_patch(g, tmp_path / "p", "--no-cover-letter")
    rc, out, err = run_one(capsys, tmp_path, mail)
    assert rc == 1 and "drafted 1 mail" in out, out + err
    assert "written by the patch's author" in out, out


def reply_to(patch_mail: str, sender: str, text: str) -> str:
    """An mbox entry: ``sender`` replying ``text`` to the patch."""
    pid = msgid_of(patch_mail)
    local = sender.split("<")[1].split("@")[0]
    headers = {"From": sender, "Subject": "Re: [PATCH] bpf: drop bpf_foo", "Message-Id": f"<reply-{local}@x>",
               "In-Reply-To": pid, "References": pid, "Date": "Sun, 2 Mar 2025 10:00:00 +0000"}
    return "From reply Mon Sep 17 00:00:00 2001\n" + "".join(f"{k}: {v}\n" for k, v in headers.items()) + f"\n{text}\n"


def test_ack_reply_must_come_from_the_maintainer_it_names(tmp_path, capsys):
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    ack = "Kfunc-Break-Acked-by: Helper Keeper <keeper@example.net>"
    # the author replies to their own patch with the maintainer's tag: not the maintainer's word
    forged = reply_to(mail, "Jane Developer <jane@example.com>", ack)
    rc, out, err = run_one(capsys, tmp_path, mail + "\n" + forged)
    assert rc == 1 and "drafted 1 mail" in out, out + err
    real = reply_to(mail, "Helper Keeper <keeper@example.net>", ack)
    rc, out, err = run_one(capsys, tmp_path, mail + "\n" + real, "--state-dir", str(tmp_path / "s2"))
    assert rc == 0 and "drafted 0 mails" in out, out + err
    assert "in a reply from keeper@example.net" in out, out


# -- files and state that are not what they should be -------------------------------------------------------

def test_corrupted_state_database(tmp_path, capsys):
    repo = tree_with(tmp_path, {}, name="plain")
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")  # a violation: the review records a reply
    state = tmp_path / "st"
    state.mkdir()
    for garbage in (b"SQLite format 3\x00" + os.urandom(4096), b"not a database at all" * 100):
        (state / "policybot.sqlite").write_bytes(garbage)
        one_line(*call(capsys, "outbox", "--state-dir", str(state)), "policybot.sqlite")
        one_line(*run_one(capsys, tmp_path, mail, "--state-dir", str(state)), "policybot.sqlite")
        assert (state / "policybot.sqlite").read_bytes() == garbage  # left as it was, for the operator
        assert not list((state / "outbox" / "new").glob("*"))  # nothing drafted beside a broken record
        # reading trees needs only the cache (cache.sqlite): the broken state is not theirs to report
        assert call(capsys, "inventory", "--repo", str(repo), "--state-dir", str(state))[0] == 0
    (state / "policybot.sqlite").unlink()
    # An earlier command's cache connection, still open in this process until the collector
    # frees it, would checkpoint its write-ahead log over the garbage when closed: close it now.
    gc.collect()
    for wal in state.glob("cache.sqlite-*"):  # SQLite would read the pages still in its write-ahead log
        wal.unlink()
    for garbage in (b"SQLite format 3\x00" + os.urandom(4096), b"not a database at all" * 100):
        (state / "cache.sqlite").write_bytes(garbage)
        for argv in (["inventory", "--repo", str(repo)], ["audit", "--repo", str(repo)]):
            one_line(*call(capsys, *argv, "--state-dir", str(state)), "cache.sqlite")
        assert (state / "cache.sqlite").read_bytes() == garbage


def test_state_dir_is_a_regular_file(tmp_path, capsys):
    repo = tree_with(tmp_path, {})
    (tmp_path / "st").write_text("x")
    one_line(*call(capsys, "inventory", "--repo", str(repo), "--state-dir", str(tmp_path / "st")), "st")
    one_line(*call(capsys, "outbox", "--state-dir", str(tmp_path / "st")), "st")


def test_corrupted_pack_objects(tmp_path, capsys):
    repo = tree_with(tmp_path, {})
    import subprocess
    subprocess.run(["git", "-C", str(repo), "gc", "-q"], check=True)
    (pack,) = (repo / ".git" / "objects" / "pack").glob("*.pack")
    data = bytearray(pack.read_bytes())
    for i in range(40, len(data) - 40, 7):
        data[i] ^= 0x55
    pack.chmod(0o644)
    pack.write_bytes(bytes(data))
    one_line(*call(capsys, "inventory", "--repo", str(repo), "--state-dir", str(tmp_path / "st")))


@pytest.mark.parametrize("content", [b"\xff\xfe[mail]\n", b"\x00\x01\x02\x03", b"[mail]\nfrom = \"\xe9\"\n"],
                         ids=["bom-utf16", "binary", "latin1"])
def test_non_utf8_config_and_policy(tmp_path, capsys, content):
    repo = tree_with(tmp_path, {})
    bad = tmp_path / "bad.toml"
    bad.write_bytes(content)
    one_line(*call(capsys, "outbox", "--config", str(bad), "--state-dir", str(tmp_path / "st")), "bad.toml")
    one_line(*call(capsys, "audit", "--repo", str(repo), "--policy", str(bad)), "bad.toml")


def test_broken_operator_template(tmp_path, capsys):
    templates = tmp_path / "tpl"
    templates.mkdir()
    (templates / "review.txt.j2").write_text("{% if %}broken\n")
    config = tmp_path / "policybot.toml"
    config.write_text(f'[mail]\nfrom = "{BOT}"\ntemplates = "{templates}"\n')
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    one_line(*run_one(capsys, tmp_path, mail, "--config", str(config)), "review.txt.j2")
    (templates / "review.txt.j2").write_text("{{ no_such_variable }}\n")
    one_line(*run_one(capsys, tmp_path, mail, "--config", str(config)), "review.txt.j2")


def test_today_at_the_end_of_time(tmp_path, capsys):
    repo = tree_with(tmp_path, {MANIFEST: manifest(bpf_foo="stable")})
    rc, out, err = call(capsys, "audit", "--repo", str(repo), "--today", "9999-12-31")
    assert "Traceback" not in out + err
    assert rc in (0, 2), out + err
    if rc == 2:
        one_line(rc, out, err, "9999-12-31")


def test_history_on_an_empty_repository(tmp_path, capsys):
    pygit2.init_repository(str(tmp_path / "empty"), bare=True)
    one_line(*call(capsys, "history", "--repo", str(tmp_path / "empty")), "no commits")


def test_read_only_outbox(tmp_path, capsys, monkeypatch):
    from policybot.mail import outbox
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")

    def read_only(self, name, data):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self.maildir / "tmp"))
    monkeypatch.setattr(outbox.Outbox, "_deliver", read_only)
    one_line(*run_one(capsys, tmp_path, mail), "outbox", "Read-only")
    with State(state_dir=tmp_path / "state").engine.connect() as conn:
        assert list(conn.execute(sa.select(mails))) == []  # nothing half-written


# -- SMTP ---------------------------------------------------------------------------------------------------

class EchoingSmtp(threading.Thread):
    """A bare SMTP server on 127.0.0.1 that answers AUTH with 535 and echoes the blob back."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]

    def run(self):
        conn, _ = self.sock.accept()
        f = conn.makefile("rwb")
        f.write(b"220 test ESMTP\r\n"); f.flush()
        for line in f:
            cmd = line.strip().upper()
            if cmd.startswith(b"EHLO"):
                f.write(b"250-test\r\n250 AUTH PLAIN\r\n")
            elif cmd.startswith(b"AUTH"):
                f.write(b"535 5.7.8 bad credentials: " + line.strip().split()[-1] + b"\r\n")
            elif cmd.startswith(b"QUIT"):
                f.write(b"221 bye\r\n"); f.flush()
                break
            else:
                f.write(b"250 ok\r\n")
            f.flush()
        conn.close()


def test_smtp_535_echoing_the_auth_blob_is_never_printed_or_stored(tmp_path, capsys, monkeypatch):
    import base64
    server = EchoingSmtp()
    server.start()
    monkeypatch.setenv("POLICYBOT_SMTP_USER", "bot")
    monkeypatch.setenv("POLICYBOT_SMTP_PASSWORD", "hunter2-secret")
    blob = base64.b64encode(b"\0bot\0hunter2-secret").decode()
    config = tmp_path / "policybot.toml"
    config.write_text(f'[mail]\nfrom = "{BOT}"\nsmtp_host = "127.0.0.1"\nsmtp_port = {server.port}\n'
                      f'smtp_security = "none"\n[state]\ndir = "{tmp_path / "state"}"\n')
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    rc, out, err = run_one(capsys, tmp_path, mail, "--config", str(config), "--send")
    assert "535" in out + err
    assert blob not in out + err and "hunter2" not in out + err
    db = (tmp_path / "state" / "policybot.sqlite").read_bytes()
    assert blob.encode() not in db and b"hunter2" not in db
    for p in (tmp_path / "state").rglob("*"):
        if p.is_file():
            assert blob.encode() not in p.read_bytes(), p


def test_permanent_refusal_fails_once_temporary_backs_off(tmp_path, capsys, smtp_server):
    from kit.mail import SmtpStore

    class Refusing(SmtpStore):
        code = "554 5.7.1 go away"

        async def handle_DATA(self, server, session, envelope):
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
            return self.code
    handler, port = smtp_server()
    refusing = Refusing()
    handler.__class__ = Refusing
    handler.envelopes = []
    config = tmp_path / "policybot.toml"
    config.write_text(f'[mail]\nfrom = "{BOT}"\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
                      f'smtp_security = "none"\n[state]\ndir = "{tmp_path / "state"}"\n')
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    run_one(capsys, tmp_path, mail, "--config", str(config))
    rc, out, err = call(capsys, "outbox", "--config", str(config), "--send")
    assert rc == 1 and "554" in out, out + err
    rc, out, err = call(capsys, "outbox", "--config", str(config), "--send")
    assert len(handler.envelopes) == 1  # a permanent refusal is tried once
    rc, out, err = call(capsys, "outbox", "--config", str(config))
    assert "failed" in out and "554" in out, out
    # a temporary refusal stays queued, and waits before the next try
    Refusing.code = "451 4.3.0 try later"
    mail2 = single_patch(tmp_path, {"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO})}, "bpf: drop bpf_bar")
    run_one(capsys, tmp_path, mail2, "--config", str(config))
    call(capsys, "outbox", "--config", str(config), "--send")
    assert len(handler.envelopes) == 2
    rc, out, err = call(capsys, "outbox", "--config", str(config), "--send")
    assert len(handler.envelopes) == 2  # backing off: not yet
    with State(state_dir=tmp_path / "state").engine.connect() as conn:
        rows = {r.subject: r for r in conn.execute(sa.select(mails))}
    assert rows["Re: [PATCH] bpf: drop bpf_foo"].status == "failed"
    assert rows["Re: [PATCH] bpf: drop bpf_bar"].status == "queued"
    assert rows["Re: [PATCH] bpf: drop bpf_bar"].next_attempt is not None


# -- a run with a poisoned message and a poisoned tree still does its work -----------------------------------

def _inbox_patch(tmp_path: Path, upstream: Path, name: str, kfuncs: dict, extra: str = "") -> str:
    import subprocess
    work = tmp_path / f"work-{name.replace(' ', '-')}"
    env = git_env()
    subprocess.run(["git", "clone", "-q", str(upstream), str(work)], check=True, env=env, capture_output=True)
    from kit.series import Git
    g = Git(work, env)
    g.commit({"kernel/bpf/helpers.c": kernel(kfuncs) + extra}, f"bpf: {name}")
    (path,) = g("format-patch", "--thread", "--to=bpf@vger.kernel.org", "-o", str(work / "out"), "HEAD~1..HEAD").split()
    return Path(path).read_text()


def test_run_with_a_poisoned_message_and_a_poisoned_tree(tmp_path, capsys, smtp_server):
    import mailbox
    from kit.weekly import BASE_KFUNCS, TREE, Bot
    handler, port = smtp_server()
    bot = Bot(tmp_path, mail=f'send = true\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\nsmtp_security = "none"\n',
              extra=f'[inbox]\nmaildir = "{tmp_path / "inbox"}"\n[limits]\nmax_patch_bytes = 20000\n')
    (tmp_path / "notarepo").write_text("this is not a repository\n")
    with open(bot.config, "a") as f:
        f.write(f'\n[[trees]]\nname = "poisoned"\nrepo = "{tmp_path / "notarepo"}"\n')
    assert bot.run(capsys, "2024-01-08", "--job", "audit")[0] == 2  # the baseline; the poisoned tree fails
    inbox = mailbox.Maildir(str(tmp_path / "inbox"))
    healthy = _inbox_patch(tmp_path, bot.upstream.path, "drop bpf_foo",
                           {k: v for k, v in BASE_KFUNCS.items() if k != "bpf_foo"})
    poison = _inbox_patch(tmp_path, bot.upstream.path, "big", BASE_KFUNCS,
                          extra="".join(f"int filler_{i};\n" for i in range(3000)))
    inbox.add(poison.encode())
    inbox.add(healthy.encode())
    rc, out, err = bot.run(capsys, "2024-01-15")
    assert rc == 2 and "Traceback" not in out + err, out + err
    assert f"{TREE}: unchanged" in out or f"{TREE}: ok" in out, out
    assert re.search(r"^poisoned: error .*not a git repository|^poisoned: error", out, re.M), out
    assert re.search(r"^failed: thread <.*max_patch_bytes", out, re.M), out
    assert "reviewed: " in out
    sent = [email.message_from_bytes(raw, policy=email.policy.default) for _, _, raw in handler.envelopes]
    assert any(m["Subject"] == "Re: [PATCH] bpf: drop bpf_foo" for m in sent), [m["Subject"] for m in sent]
    # recorded with its reason, and not tried again every run
    with bot.state().engine.connect() as conn:
        from policybot.state import failures
        rows = {(r.kind, r.reason.split(":")[0]) for r in conn.execute(sa.select(failures))}
    assert ("tree", str(tmp_path / "notarepo")) in rows or any(k == "tree" for k, _ in rows)
    assert any(k == "message" for k, _ in rows)
    # the poisoned tree: no report to the list; the operator is told what failed and why, alone
    sent_mails = [email.message_from_bytes(raw, policy=email.policy.default) for _, _, raw in handler.envelopes]
    assert not [m for m in sent_mails if m["Subject"].startswith("[REPORT]") and "poisoned" in m["Subject"]]
    to_operator = [m for m in sent_mails if m["Subject"].startswith("[policybot]")]
    assert to_operator and all(m["To"] == "ops@example.org" and m["Cc"] is None for m in to_operator)
    text = " ".join(to_operator[0].get_content().replace("\n    | ", " ").split())
    assert f"tree poisoned {tmp_path / 'notarepo'}: not a git repository" in text, text
    rc, out, err = bot.run(capsys, "2024-01-22", "--job", "report", "--tree", TREE)
    last = email.message_from_bytes(handler.envelopes[-1][2], policy=email.policy.default).get_content()
    assert "Could not be processed" in last and "max_patch_bytes" in last, last
    rc, out, err = call(capsys, "outbox", "--config", str(bot.config))
    assert re.search(r"^failed  message .*max_patch_bytes", out, re.M), out
    assert re.search(r"^failed  tree poisoned: ", out, re.M), out
    rc, out, err = bot.run(capsys, "2024-01-15", "--job", "review")
    assert "failed: thread" not in out and "reviewed: " not in out, out
    rc, out, err = bot.run(capsys, "2024-01-15", "--job", "review", "--retry-failed")
    assert re.search(r"^failed: thread <.*max_patch_bytes", out, re.M), out
    assert len([m for m in handler.msgids() if m]) == len(set(handler.msgids()))  # nothing sent twice


def test_disk_full_during_a_run_is_one_line(tmp_path, capsys, monkeypatch):
    from policybot.mail import outbox
    from kit.weekly import Bot
    bot = Bot(tmp_path)

    def full(self, name, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.maildir / "tmp" / name))
    monkeypatch.setattr(outbox.Outbox, "_deliver", full)
    rc, out, err = bot.run(capsys, "2024-01-08")
    one_line(rc, out, err, "No space left on device")
    assert bot.last_audited() is None and bot.mail_rows() == []  # nothing half-done: the run repeats


def test_unwritable_report_html_is_one_line(tmp_path, capsys):
    from kit.weekly import Bot
    bot = Bot(tmp_path)
    (tmp_path / "afile").write_text("x")
    text = bot.config.read_text().replace("quiet_weeks = true", f'quiet_weeks = true\nreport_html = "{tmp_path / "afile" / "page.html"}"')
    bot.config.write_text(text)
    rc, out, err = bot.run(capsys, "2024-01-08")
    one_line(rc, out, err, "afile")


def test_broken_template_in_a_run_is_one_line(tmp_path, capsys):
    from kit.weekly import Bot
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "report.txt.j2").write_text("{% for %}\n")
    bot = Bot(tmp_path)
    bot.config.write_text(bot.config.read_text().replace("[mail]\n", f'[mail]\ntemplates = "{tpl}"\n', 1))
    one_line(*bot.run(capsys, "2024-01-08"), "report.txt.j2")
    assert bot.mail_rows() == []


# -- concurrent senders ---------------------------------------------------------------------------------------

def queued_mails(tmp_path: Path, port: int, n: int, more_config: str = "") -> tuple[Path, Path, list[str]]:
    """A config sending to 127.0.0.1:port, and n mails queued in its outbox: (config, state dir, ids)."""
    from policybot.mail.message import MailConfig, build_message
    from policybot.mail.outbox import Outbox
    state_dir = tmp_path / "state"
    config = tmp_path / "policybot.toml"
    config.write_text(f'[state]\ndir = "{state_dir}"\n[mail]\nfrom = "{BOT}"\nsmtp_host = "127.0.0.1"\n'
                      f'smtp_port = {port}\nsmtp_security = "none"\n{more_config}')
    outbox = Outbox(State(state_dir=state_dir), state_dir / "outbox")
    ids = []
    for i in range(n):
        msg = build_message(MailConfig(from_addr=BOT), to=["a@example.com"], cc=[], subject=f"m{i}",
                            body=f"mail {i}\n", msgid_seed=f"s{i}")
        assert outbox.queue(msg, [f"k{i}"], "review")
        ids.append(msg["Message-ID"])
    return config, state_dir, ids


def test_concurrent_senders_deliver_each_mail_once(tmp_path, smtp_server):
    import collections
    import subprocess
    import sys
    handler, port = smtp_server()
    config, state_dir, ids = queued_mails(tmp_path, port, 30)
    senders = [subprocess.Popen([sys.executable, "-m", "policybot", "outbox", "--config", str(config), "--send"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in senders]
    assert all(rc == 0 for _, _, rc in results), results
    delivered = collections.Counter(handler.msgids())
    assert sorted(delivered) == sorted(ids) and set(delivered.values()) == {1}, delivered
    assert sum(out.count("sent    ") for out, _, _ in results) == 30


def test_run_review_and_outbox_sending_at_once_deliver_each_mail_once(tmp_path, smtp_server):
    import collections
    import subprocess
    import sys
    handler, port = smtp_server()
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    (tmp_path / "patch.mbox").write_text(mail)
    config, state_dir, _ = queued_mails(
        tmp_path, port, 20, f'[[trees]]\nname = "linux"\nrepo = "{tmp_path / "linux"}"\nbranch = "v6.1"\n')
    py = [sys.executable, "-m", "policybot"]
    commands = [py + ["outbox", "--config", str(config), "--send"],
                py + ["run", "--config", str(config), "--send", "--job", "notices", "--today", TODAY],
                py + ["review", "--repo", str(tmp_path / "linux"), "--config", str(config), "--mbox",
                      str(tmp_path / "patch.mbox"), "--send", "--today", TODAY],
                py + ["outbox", "--config", str(config), "--send"]]
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    results = [p.communicate(timeout=180) + (p.returncode,) for p in procs]
    assert [rc for _, _, rc in results] == [0, 0, 1, 0], results  # review: 1 = a violation found
    delivered = collections.Counter(handler.msgids())
    with State(state_dir=state_dir).engine.connect() as conn:
        rows = list(conn.execute(sa.select(mails)))
    assert len(rows) == 21 and all(r.status == "sent" for r in rows)
    assert sorted(delivered) == sorted(r.msgid for r in rows) and set(delivered.values()) == {1}, delivered


def test_hostile_msgid_arguments(tmp_path, capsys):
    build_tree(tmp_path / "linux")
    for msgid in ("a\r\nb@example.com", "x" * 10_000 + "@example.com", "\x1b[2J@example.com"):
        rc, out, err = call(capsys, "review", "--repo", str(tmp_path / "linux"), "--msgid", msgid,
                            "--inbox-url", "http://127.0.0.1:9/all", "--from", BOT)
        one_line(rc, out, err)
        assert "\x1b" not in err and "\r" not in err


def test_limits_must_be_positive_whole_numbers(tmp_path, capsys):
    config = tmp_path / "policybot.toml"
    for bad in ("max_recipients = 0", 'max_patch_bytes = "big"', "max_quote_lines = -1", "unknown = 1"):
        config.write_text(f"[limits]\n{bad}\n")
        one_line(*call(capsys, "outbox", "--config", str(config)), "policybot.toml:2", "limits.")


def test_oversized_inbox_message_is_left_out_and_said(tmp_path, capsys):
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    config = tmp_path / "policybot.toml"
    config.write_text(f'[mail]\nfrom = "{BOT}"\n[limits]\nmax_message_bytes = 500\n')
    one_line(*run_one(capsys, tmp_path, mail, "--config", str(config)), "over limits.max_message_bytes (500)")


def test_31_patch_series_with_1000_cc_each_reply_capped(tmp_path, capsys):
    """A 31-patch series with 1,000 Cc each: every reply stays within the cap."""
    build_tree(tmp_path / "linux")
    g = clone(tmp_path / "linux", tmp_path / "work", git_env(), "x")
    kf = {"bpf_foo": FOO, "bpf_bar": FOO}
    for i in range(31):
        kf = {**kf, f"bpf_k{i}": FOO} if i else {"bpf_bar": FOO}
        g.commit({"kernel/bpf/helpers.c": kernel(kf)}, f"bpf: step {i}")
    ccs = [f"--cc=p{i}@example.com" for i in range(1000)]
    mails = format_patch(g, tmp_path / "p", *ccs)
    rc, out, err = run_one(capsys, tmp_path, "\n".join(mails))
    assert rc == 1 and "Traceback" not in out + err, out + err
    for f in outbox_files(tmp_path / "state" / "outbox"):
        msg = parse_mail(f)
        assert sum(len(msg[h].addresses) for h in ("To", "Cc") if msg[h]) <= 50


# -- the C scanner on adversarial input (timings: bench/hostile_scan.py) --------------------------------------

def test_scanner_reads_adversarial_c_and_still_finds_what_is_real():
    from policybot.kernel.csource import MAX_GUARDS, parse_csource
    from policybot.kernel.facts import extract_facts
    unclosed = b"BTF_KFUNCS_START(s)\nBTF_ID_FLAGS(func, bpf_real)\n" + b"BTF_ID_FLAGS(func, " * 8000 + \
        b"\nBTF_KFUNCS_END(s)\n"
    facts = extract_facts("kernel/bpf/x.c", unclosed)
    assert [e.name for st in facts.sets for e in st.entries] == ["bpf_real"]
    nested = b"#ifdef CONFIG_OUTER\n" + b"#if X\n" * 5000 + b"int kfunc;\n" + b"#endif\n" * 5001 + b"int after;\n"
    src = parse_csource("x.c", nested)
    inner = src.guards_by_line[5002]
    assert len(inner) == MAX_GUARDS and inner[0] == "CONFIG_OUTER"  # recorded up to the bound, outermost first
    assert src.guards_by_line[10004] == ()  # every #if closed again
    chain = b"#if A\n" + b"#elif B\n" * 5000 + b"int x;\n#else\nint y;\n#endif\n"
    src = parse_csource("x.c", chain)
    assert all(len(g) <= 600 for gs in src.guards_by_line for g in gs)


def test_sender_killed_mid_send_while_another_waits(tmp_path, smtp_server):
    """The one documented window: killed between the server's 250 and the commit, that mail
    goes out again, with the same Message-ID; everything else exactly once."""
    import collections
    import signal
    import subprocess
    import sys
    import time
    from kit.crash import WRAPPER
    handler, port = smtp_server()
    config, state_dir, ids = queued_mails(tmp_path, port, 10)
    args = ["outbox", "--config", str(config), "--send"]
    killed = subprocess.Popen([sys.executable, "-c", WRAPPER, "after:smtplib.SMTP.sendmail:3", *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not handler.envelopes and killed.poll() is None:  # it holds the send lock now
        time.sleep(0.01)
    waiting = subprocess.Popen([sys.executable, "-m", "policybot", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    killed.communicate(timeout=120)
    out, err = waiting.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL and waiting.returncode == 0, (out, err)
    delivered = collections.Counter(handler.msgids())
    assert sorted(delivered) == sorted(ids)
    third = handler.msgids()[2]  # accepted by the server, then the sender was killed
    assert [m for m, n in delivered.items() if n > 1] == [third] and delivered[third] == 2


def test_inbox_message_with_an_absurd_message_id_is_reviewed_once(tmp_path, capsys, smtp_server):
    import mailbox
    from kit.weekly import BASE_KFUNCS, Bot
    bot = Bot(tmp_path, extra=f'[inbox]\nmaildir = "{tmp_path / "inbox"}"\n')
    assert bot.run(capsys, "2024-01-08", "--job", "audit")[0] == 0
    patch = _inbox_patch(tmp_path, bot.upstream.path, "drop bpf_foo",
                         {k: v for k, v in BASE_KFUNCS.items() if k != "bpf_foo"})
    patch = re.sub(r"^Message-I[dD]: .*$", "Message-ID: <" + "y" * 5000 + "@example.com>", patch,
                   count=1, flags=re.M)
    mailbox.Maildir(str(tmp_path / "inbox")).add(patch.encode())
    rc, out, err = bot.run(capsys, "2024-01-15", "--job", "review")
    assert rc == 0 and "reviewed: " in out and "drafted 1 mail" in out, out + err
    rc, out, err = bot.run(capsys, "2024-01-15", "--job", "review")
    assert rc == 0 and "reviewed: " not in out and "drafted 0 mails" in out, out + err
    (msg,) = bot.mails().values()
    assert msg["In-Reply-To"] is None and all(len(line) <= 998 for line in msg.as_string().split("\n"))


def test_a_megabyte_trailer_shaped_line_is_refused_quickly_and_the_rest_reviewed(tmp_path, capsys):
    """b4's trailer parsing takes minutes over one long "Name: value" line (its time grows with
    the cube of the line's length): such a mail is refused before b4 reads it, in seconds."""
    import mailbox
    from kit.measure import run_policybot
    from kit.weekly import BASE_KFUNCS, TREE, Bot
    bot = Bot(tmp_path, extra=f'[inbox]\nmaildir = "{tmp_path / "inbox"}"\n')
    assert bot.run(capsys, "2024-01-08", "--job", "audit")[0] == 0
    inbox = mailbox.Maildir(str(tmp_path / "inbox"))
    healthy = _inbox_patch(tmp_path, bot.upstream.path, "drop bpf_foo",
                           {k: v for k, v in BASE_KFUNCS.items() if k != "bpf_foo"})
    hostile = _inbox_patch(tmp_path, bot.upstream.path, "drop bpf_bar",
                           {k: v for k, v in BASE_KFUNCS.items() if k != "bpf_bar"})
    hostile = hostile.replace("\n---\n", "\nbase-commit: " + "a" * 5_000_000 + "\n---\n", 1)
    # a long added line of a generated file is no trailer to b4: that patch is reviewed
    long_added = _inbox_patch(tmp_path, bot.upstream.path, "generated", BASE_KFUNCS,
                              extra="/* x: " + "b" * 5000 + " */\n")
    for m in (hostile, healthy, long_added):
        inbox.add(m.encode())
    r = run_policybot("run", "--config", str(bot.config), "--today", "2024-01-15", "--job", "review", timeout=120)
    assert r.seconds < 30, (r.seconds, r.output[-2000:])
    assert r.returncode in (0, 1) and "Traceback" not in r.output, r.output[-2000:]
    assert re.search(r"^failed: message <.*>: line \d+ has 5000013 characters and reads as a trailer", r.output,
                     re.M), r.output[-2000:]
    assert re.search(r"^reviewed: .*bpf: drop bpf_foo", r.output, re.M), r.output[-2000:]
    assert re.search(r"^reviewed: .*bpf: generated", r.output, re.M), r.output[-2000:]
    assert "drop bpf_bar" not in r.output.replace("failed: message", "")
    with bot.state().engine.connect() as conn:
        from policybot.state import failures
        assert [r.kind for r in conn.execute(sa.select(failures))] == ["message"]


def test_review_refuses_a_megabyte_trailer_shaped_line_quickly(tmp_path):
    from kit.measure import run_policybot
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    (tmp_path / "in.mbox").write_text(mail.replace("\n---\n", "\nbase-commit: " + "a" * 5_000_000 + "\n---\n", 1))
    r = run_policybot("review", "--repo", str(tmp_path / "linux"), "--mbox", str(tmp_path / "in.mbox"),
                      "--today", TODAY, "--from", BOT, "--state-dir", str(tmp_path / "state"), timeout=120)
    assert r.seconds < 30, (r.seconds, r.output[-2000:])
    assert r.returncode == 2 and r.output.count("\n") == 1 and "Traceback" not in r.output, r.output
    assert "has 5000013 characters and reads as a trailer" in r.output and "refused as hostile input" in r.output
