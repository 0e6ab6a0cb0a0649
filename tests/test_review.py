"""policybot review end to end (issue 4): a real git tree, a series written by
``git format-patch``, the replies drafted into the Maildir outbox checked
header by header, delivered to a real SMTP server on 127.0.0.1 (aiosmtpd),
read back with b4, fetched with ``--msgid`` from a local public-inbox-like
HTTP server, and hostile input that must give one line or a clean review.
"""

from __future__ import annotations

import email
import email.utils
import email.policy
import gzip
import http.server
import json
import mailbox
import os
import re
import socket
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import pygit2
import pytest

import policybot
from policybot.gitbuild import HistoryBuilder
from policybot.mail.message import MailConfig
from policybot.mail.outbox import Outbox
from policybot.state import State
from kit.mail import BOT, check_body, free_port, outbox_files, parse_mail
from kit.series import (BASE_KFUNCS, DROP_FOO, MAINTAINERS, PROXY_VARS, TODAY, VERIFIER, build_tree, clone,
                        format_patch, git_env, msgid_of, review, review_args, run_one, single_patch)
from kit.trees import BTF_H, FOO, MANIFEST, kernel, manifest

ROOT = Path(__file__).resolve().parent.parent
# who MAINTAINERS (kit.series) assigns to kernel/bpf/helpers.c (and nobody from NETWORKING)
HELPERS_PEOPLE = {"keeper@example.net", "ast@kernel.org", "song@kernel.org", "bpf@vger.kernel.org"}


def subject_of(mail_text: str) -> str:
    return re.search(r"^Subject: (.*)$", mail_text, re.M).group(1)


def addrs(msg, header) -> list[str]:
    h = msg[header]
    return [a.addr_spec for a in h.addresses] if h is not None else []


def no_traceback(out: str, err: str) -> None:
    assert "Traceback" not in out + err
    assert "Error:" not in err or err.startswith("policybot: ")


# -- end to end ----------------------------------------------------------------------------------


def test_review_series_end_to_end(series, capsys, tmp_path):
    s = series
    state = tmp_path / "state"  # POLICYBOT_STATE_DIR (conftest)
    rc, out, err = review(capsys, *review_args(s))
    assert rc == 1, out + err
    assert err == ""
    base12 = s.base_commit[:12]
    lines = out.splitlines()
    # the latest revision only, in patch order
    assert lines[0] == "[PATCH v2 1/4] bpf: add bpf_new: applied"
    assert lines[1].startswith(f"[PATCH v2 2/4] bpf: tweak the verifier: could not apply 2/4 on {base12}: ")
    assert lines[2] == "[PATCH v2 3/4] bpf: drop bpf_foo: applied"
    assert re.fullmatch(r"  kernel/bpf/helpers\.c:\d+: violation\[KFUNC_REMOVED\]: bpf_foo .*", lines[3])
    assert lines[4] == "[PATCH v2 4/4] README: point to the docs: applied"
    assert lines[5] == (f"review of 'bpf: kfunc work' (v2, 4 patches) on {base12}: 1 finding; "
                        f"drafted 1 mail to {state / 'outbox'}")
    assert len(lines) == 6
    assert "v1" not in out and "sleepable" not in out

    files = outbox_files(state / "outbox")
    assert len(files) == 1  # the breaking patch only; none for 1/4, 2/4, 4/4
    msg = parse_mail(files[0])
    patch = s.v2[3]
    assert msg["From"] == BOT
    assert [(a.display_name, a.addr_spec) for a in msg["To"].addresses] == [("Jane Developer", "jane@example.com")]
    cc = addrs(msg, "Cc")
    lowered = [a.lower() for a in cc]
    assert len(lowered) == len(set(lowered)), cc  # deduplicated case-insensitively
    # the patch's To and Cc, the MAINTAINERS people and lists of helpers.c, the BPF list
    assert set(lowered) == {"bpf@vger.kernel.org", "ast@kernel.org", "rev@example.org"} | HELPERS_PEOPLE
    assert "AST@kernel.org" in cc  # the patch's spelling came first and was kept
    assert "jane@example.com" not in lowered
    assert msg["Subject"] == "Re: [PATCH v2 3/4] bpf: drop bpf_foo" == "Re: " + subject_of(patch)
    assert msg["In-Reply-To"] == msgid_of(patch)
    assert msg["References"].split() == [msgid_of(s.v2[0]), msgid_of(patch)]
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Mailer"] == f"policybot {policybot.__version__}"
    assert re.fullmatch(r"<policybot-[0-9a-f]{32}@example\.org>", msg["Message-ID"])
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    assert "format=flowed" not in str(msg["Content-Type"])
    assert msg["Bcc"] is None
    body = msg.get_content()
    check_body(body)
    assert body.startswith("Hi Jane,\n")
    assert f"at {base12}" in body
    assert "> -BTF_ID_FLAGS(func, bpf_foo)" in body
    assert re.search(r"^> @@ -\d+,\d+ \+\d+,\d+ @@", body, re.M)  # the hunk header is kept
    prose = " ".join(ln for ln in body.split("\n") if not ln.startswith("> "))
    prose = " ".join(prose.split())  # the layout of the prose is the template's business
    assert "KFUNC_REMOVED" in prose and "bpf_foo" in prose
    assert "declared stable in Documentation/bpf/kfunc-stability.yaml:2" in prose
    assert "v6.1 (2022-12-11)" in prose
    assert "2027-12-11" in prose  # the 5-year promise ends
    assert "\n-- \n" in body

    # a second run, as `python -m policybot review`: same findings, nothing drafted twice
    proc = subprocess.run([sys.executable, "-m", "policybot", "review", *review_args(s)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1, proc.stderr
    assert "1 finding; drafted 0 mails" in proc.stdout
    assert outbox_files(state / "outbox") == files

    # a fresh state and outbox derive the same Message-ID; --base names the base in the output
    rc, out2, _ = review(capsys, *review_args(s, "--base", "v6.1", "--state-dir", str(tmp_path / "s2")))
    assert rc == 1
    assert "[PATCH v2 2/4] bpf: tweak the verifier: could not apply 2/4 on v6.1: " in out2
    (again,) = outbox_files(tmp_path / "s2" / "outbox")
    assert parse_mail(again)["Message-ID"] == msg["Message-ID"]


def test_review_json_names_base_and_each_patch(series, capsys):
    import json
    rc, out, _ = review(capsys, *review_args(series, "--format", "json"))
    assert rc == 1
    data = json.loads(out)
    assert data["series"]["revision"] == 2
    assert data["base"] == {"rev": series.base_commit[:12], "commit": series.base_commit, "how": "base-commit"}
    assert [p["msgid"] for p in data["patches"]] == [m.strip("<>") for m in series.v2_ids[1:]]
    assert [p["applied"] for p in data["patches"]] == [True, False, True, True]
    assert [len(p["findings"]) for p in data["patches"]] == [0, 0, 1, 0]
    assert data["patches"][1]["problem"]
    assert len(data["drafted"]) == 1


def test_patch_that_does_not_apply_is_judged_from_its_diff_text(tmp_path, capsys):
    """A patch that fails to apply and removes a stable kfunc's set entry still gets a reply."""
    build_tree(tmp_path / "linux")
    g = clone(tmp_path / "linux", tmp_path / "work", git_env(), "x")
    g.commit({"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO})}, "bpf: drop bpf_bar")
    (mail,) = format_patch(g, tmp_path / "p", "--no-cover-letter") or [None]
    assert "\n BTF_ID_FLAGS(func, bpf_foo)\n-BTF_ID_FLAGS(func, bpf_bar)\n" in mail
    mail = mail.replace("\n BTF_ID_FLAGS(func, bpf_foo)\n", "\n BTF_ID_FLAGS(func, bpf_foo) /* drifted */\n", 1)
    (tmp_path / "one.mbox").write_text(mail)
    rc, out, err = review(capsys, "--repo", str(tmp_path / "linux"), "--mbox", str(tmp_path / "one.mbox"),
                          "--today", TODAY, "--from", BOT)
    # no patch applied: exit 2 (the series was not judged), said in one line after the output
    assert rc == 2, out + err
    assert re.fullmatch(r"policybot: review: no patch of the series applied on [0-9a-f]{12}\n", err), err
    assert "[PATCH] bpf: drop bpf_bar: could not apply 1/1 on " in out
    assert "violation[KFUNC_REMOVED]: bpf_bar" in out
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    body = parse_mail(f).get_content()
    check_body(body)
    assert "could not be applied" in body


# -- SMTP ------------------------------------------------------------------------------------------


def smtp_config(port: int) -> MailConfig:
    return MailConfig(from_addr=BOT, smtp_host="127.0.0.1", smtp_port=port, smtp_security="none")


def test_send_refused_then_delivered_exactly_once(series, capsys, tmp_path, smtp_server):
    s = series
    state_dir = tmp_path / "state"
    assert review(capsys, *review_args(s))[0] == 1  # v2 3/4
    assert review(capsys, *review_args(s, src=["--mbox", str(s.v1_mbox)]))[0] == 1  # v1 2/2
    maildir = state_dir / "outbox"
    drafts = {parse_mail(p)["Message-ID"]: parse_mail(p) for p in outbox_files(maildir)}
    assert len(drafts) == 2
    assert {m["In-Reply-To"] for m in drafts.values()} == {msgid_of(s.v2[3]), msgid_of(s.v1[2])}

    # The CLI has no option for the SMTP host, port or security (and does not read
    # POLICYBOT_CONFIG): deliver through the library, as `--send` does.
    outbox = Outbox(State(state_dir=state_dir), maildir)
    assert len(outbox.pending()) == 2

    closed = free_port()  # nothing listens there: the connection is refused
    report = outbox.send(smtp_config(closed))
    assert report.sent == [] and sorted(f.msgid for f in report.failed) == sorted(drafts)
    assert all("ConnectionRefused" in f.error or "refused" in f.error.lower() for f in report.failed)
    assert len(outbox.pending()) == 2 and len(outbox_files(maildir)) == 2

    handler, port = smtp_server()
    report = outbox.send(smtp_config(port))
    assert sorted(report.sent) == sorted(drafts) and report.failed == []
    assert len(handler.envelopes) == 2
    for mail_from, rcpt, raw in handler.envelopes:
        got = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
        draft = drafts[got["Message-ID"]]
        assert mail_from == "policybot@example.org"
        assert sorted(r.lower() for r in rcpt) == sorted(a.lower() for a in addrs(draft, "To") + addrs(draft, "Cc"))
        for header in ("From", "To", "Cc", "Subject", "In-Reply-To", "References", "Auto-Submitted",
                       "X-Mailer", "Message-ID"):
            assert got[header] == draft[header], header
        assert got.get_content() == draft.get_content()
    assert sorted(email.message_from_bytes(raw)["Message-ID"] for _, _, raw in handler.envelopes) == sorted(drafts)

    # nothing pending: a second send sends nothing
    assert outbox.send(smtp_config(port)).sent == []
    assert outbox.pending() == []
    assert len(handler.envelopes) == 2
    # a later review of the same series drafts nothing, and so sends nothing
    assert "drafted 0 mails" in review(capsys, *review_args(s))[1]
    assert outbox.send(smtp_config(port)).sent == [] and len(handler.envelopes) == 2


def test_cli_send_uses_the_configured_smtp_server(series, capsys, tmp_path, smtp_server, monkeypatch):
    handler, port = smtp_server()
    # any other server (localhost:587, the default) is refused here: never a real MTA from a test
    connect, tried = socket.create_connection, []

    def only_the_test_server(address, *args, **kwargs):
        tried.append(tuple(address[:2]))
        if tuple(address[:2]) != ("127.0.0.1", port):
            raise ConnectionRefusedError(f"the test allows only 127.0.0.1:{port}, not {address}")
        return connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", only_the_test_server)
    cfg = tmp_path / "policybot.toml"
    cfg.write_text(f'[mail]\nfrom = "{BOT}"\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
                   f'smtp_security = "none"\n')
    monkeypatch.setenv("POLICYBOT_CONFIG", str(cfg))
    rc, out, err = review(capsys, *review_args(series, "--send"))
    assert rc == 1, err
    assert "sent 1, failed 0" in out
    assert len(handler.envelopes) == 1 and tried == [("127.0.0.1", port)]


# -- b4 reads the replies as follow-ups of the right patch ------------------------------------------


def test_b4_threads_each_reply_under_its_patch(series, capsys, tmp_path):
    import b4

    s = series
    review(capsys, *review_args(s))
    review(capsys, *review_args(s, src=["--mbox", str(s.v1_mbox)]))
    replies = outbox_files(tmp_path / "state" / "outbox")
    assert len(replies) == 2

    # one Maildir with both revisions of the series and the drafted replies
    md = mailbox.Maildir(tmp_path / "thread", create=True)
    for m in s.v2 + s.v1:
        md.add(m.encode())
    for p in replies:
        md.add(p.read_bytes())

    b4.can_network = False
    msgs = b4.get_msgs_from_mailbox_or_maildir(str(tmp_path / "thread"))
    assert len(msgs) == len(s.v2) + len(s.v1) + 2
    mbx = b4.LoreMailbox()
    for msg in msgs:
        mbx.add_message(msg)
    assert len(mbx.followups) == 2
    by_parent = {f.in_reply_to: f for f in mbx.followups}
    v2_patch, v1_patch = msgid_of(s.v2[3]).strip("<>"), msgid_of(s.v1[2]).strip("<>")
    assert set(by_parent) == {v2_patch, v1_patch}
    for parent, cover in ((v2_patch, msgid_of(s.v2[0]).strip("<>")), (v1_patch, msgid_of(s.v1[0]).strip("<>"))):
        f = by_parent[parent]
        assert f.reply and not f.has_diff
        assert f.references == [cover, parent]
        assert f.full_subject == "Re: " + mbx.msgid_map[parent].full_subject
        assert f.trailers == []  # nothing b4 would apply to the patch

    lser = mbx.get_series(codereview_trailers=False)
    assert lser.revision == 2
    assert [p.msgid for p in lser.patches[1:]] == [m.strip("<>") for m in s.v2_ids[1:]]
    assert all(p.followup_trailers == [] for p in lser.patches[1:])  # no trailer picked from the bot
    v1 = mbx.get_series(revision=1, codereview_trailers=False)
    assert all(p.followup_trailers == [] for p in v1.patches[1:])


# -- --msgid from a local public-inbox ---------------------------------------------------------------


class Inbox(http.server.BaseHTTPRequestHandler):
    threads: dict[str, bytes] = {}  # msgid -> the thread's mbox
    search: bytes = b""  # what any search query finds (an mbox of whole threads)
    requests: list[tuple[str, str]] = []

    def do_POST(self):
        # /all/?x=m&t=1&q=<query>: public-inbox's search, answered as a gzipped mbox
        self.requests.append((self.command, self.path))
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/all/?") and "x=m" in self.path and self.search:
            data = gzip.compress(self.search)
            self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _answer(self, body: bool):
        self.requests.append((self.command, self.path))
        parts = self.path.split("/")
        # /all/<msgid, url-quoted>/t.mbox.gz, as public-inbox serves it
        if len(parts) == 4 and parts[1] == "all" and parts[3] == "t.mbox.gz":
            mbox = self.threads.get(urllib.parse.unquote_plus(parts[2]))
            if mbox is not None:
                data = gzip.compress(mbox)
                self.send_response(200)
                self.send_header("Content-Type", "application/gzip")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)
                return
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        self._answer(True)

    def do_HEAD(self):
        self._answer(False)

    def log_message(self, *args):
        pass


@pytest.fixture
def inbox(monkeypatch):
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    Inbox.threads, Inbox.requests, Inbox.search = {}, [], b""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Inbox)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Inbox, f"http://127.0.0.1:{server.server_address[1]}/all"
    server.shutdown()
    server.server_close()


def test_review_by_msgid_from_public_inbox(series, capsys, tmp_path, inbox):
    s = series
    handler, url = inbox
    thread = "\n".join(s.v2).encode()
    for m in s.v2:
        handler.threads[msgid_of(m).strip("<>")] = thread
    cover = msgid_of(s.v2[0]).strip("<>")
    rc, out, err = review(capsys, *review_args(s, "--inbox-url", url, src=["--msgid", cover]))
    assert rc == 1, err
    assert ("GET", f"/all/{cover}/t.mbox.gz") in handler.requests  # as lore links it, "@" unquoted
    assert "could not apply 2/4" in out and "violation[KFUNC_REMOVED]: bpf_foo" in out
    assert "(v2, 4 patches)" in out and "drafted 1 mail" in out
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    assert parse_mail(f)["In-Reply-To"] == msgid_of(s.v2[3])

    # any message of the thread finds it; <brackets> are accepted
    rc, out, _ = review(capsys, *review_args(s, "--inbox-url", url, src=["--msgid", msgid_of(s.v2[2])]))
    assert rc == 1 and "drafted 0 mails" in out

    # an unknown Message-ID: one line, exit 2
    rc, out, err = review(capsys, *review_args(s, "--inbox-url", url, src=["--msgid", "nope@example.org"]))
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("policybot: ") and "nope@example.org" in err

    # a server that is down: one line, exit 2
    dead = f"http://127.0.0.1:{free_port()}/all"
    rc, out, err = review(capsys, *review_args(s, "--inbox-url", dead, src=["--msgid", cover]))
    assert rc == 2 and err.count("\n") == 1 and err.startswith("policybot: ")
    # the thread by its Message-ID, as public-inbox serves it (and lore links it, "@" as is);
    # nothing else was asked
    assert handler.requests == [
        ("GET", f"/all/{cover}/t.mbox.gz"), ("GET", f"/all/{msgid_of(s.v2[2]).strip('<>')}/t.mbox.gz"),
        ("GET", "/all/nope@example.org/t.mbox.gz")]


# -- hostile input -------------------------------------------------------------------------------------


def one_line_error(rc: int, out: str, err: str, *expect: str) -> None:
    assert rc == 2, out + err
    assert err.count("\n") == 1 and err.startswith("policybot: "), err
    assert "Traceback" not in out + err
    for e in expect:
        assert e in err, err


def test_hostile_subject_with_crlf_and_non_ascii(tmp_path, capsys, smtp_server):
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    # an encoded word carrying CR LF and a Bcc header, plus non-ASCII text
    evil = "=?utf-8?q?bpf=3A_dr=C3=B6p_bpf=5Ffoo=0D=0ABcc=3A_victim=40example=2Enet=0D=0A=0D=0Abody?="
    mail = re.sub(r"^Subject: .*$", f"Subject: [PATCH] {evil}", mail, count=1, flags=re.M)
    # and a bare CR in the raw header, which mail parsers take as a line end
    raw_cr = re.sub(r"^Subject: .*$", "Subject: [PATCH] bpf: drop bpf_foo\rBcc: victim@example.net",
                    mail, count=1, flags=re.M)
    rc, out, err = run_one(capsys, tmp_path, raw_cr, "--state-dir", str(tmp_path / "state-cr"))
    assert rc == 1, out + err
    assert "victim" not in out
    (f,) = outbox_files(tmp_path / "state-cr" / "outbox")
    assert b"victim" not in f.read_bytes()

    rc, out, err = run_one(capsys, tmp_path, mail)
    assert rc == 1, out + err
    no_traceback(out, err)
    assert not any(ln.startswith(("Bcc", "body")) for ln in out.splitlines())
    assert "dröp" in out
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    raw = f.read_bytes()
    head = raw.split(b"\n\n", 1)[0]
    assert head.isascii()
    assert not re.search(rb"^(Bcc|body)", head, re.M | re.I)
    msg = parse_mail(f)
    assert msg["Bcc"] is None
    assert "\r" not in msg["Subject"] and "\n" not in msg["Subject"]
    assert msg["Subject"].startswith("Re: [PATCH] bpf: dröp bpf_foo")
    assert "victim@example.net" not in addrs(msg, "To") + addrs(msg, "Cc")
    check_body(msg.get_content())
    # and nothing goes to the injected address on the wire
    handler, port = smtp_server()
    report = Outbox(State(state_dir=tmp_path / "state"), tmp_path / "state" / "outbox").send(smtp_config(port))
    assert len(report.sent) == 1
    ((_, rcpt, _),) = handler.envelopes
    assert "victim@example.net" not in [r.lower() for r in rcpt]


def test_hostile_from_with_quoted_comma(tmp_path, capsys):
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo", name="Doe, John", addr="john@example.org")
    assert 'From: "Doe, John" <john@example.org>' in mail
    rc, out, err = run_one(capsys, tmp_path, mail)
    assert rc == 1, out + err
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    msg = parse_mail(f)
    assert [(a.display_name, a.addr_spec) for a in msg["To"].addresses] == [("Doe, John", "john@example.org")]
    assert "john@example.org" not in [a.lower() for a in addrs(msg, "Cc")]
    assert msg.get_content().startswith("Hi John,\n")


def test_hostile_from_with_quoted_comma_and_non_ascii(tmp_path, capsys):
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo", name="Müller, Jürgen", addr="jm@example.org")
    assert "From: =?UTF-8?q?M=C3=BCller=2C=20J=C3=BCrgen?= <jm@example.org>" in mail
    rc, out, err = run_one(capsys, tmp_path, mail)
    assert rc == 1, out + err
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    msg = parse_mail(f)
    assert [(a.display_name, a.addr_spec) for a in msg["To"].addresses] == [("Müller, Jürgen", "jm@example.org")]
    assert msg.get_content().startswith("Hi Jürgen,\n")


def test_hostile_cc_with_quoted_comma_and_non_ascii(tmp_path, capsys):
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    # as MUAs and git send-email write it: an RFC 2047 encoded word holding the comma
    mail = mail.replace("\nTo: bpf@vger.kernel.org\n",
                        "\nTo: bpf@vger.kernel.org\nCc: =?UTF-8?q?M=C3=BCller=2C=20J=C3=BCrgen?= <jm@example.org>\n", 1)
    assert "=?UTF-8?q?M=C3=BCller" in mail
    rc, out, err = run_one(capsys, tmp_path, mail)
    assert rc == 1, out + err
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    cc = [(a.display_name, a.addr_spec) for a in parse_mail(f)["Cc"].addresses]
    assert ("Müller, Jürgen", "jm@example.org") in cc


def test_hostile_author_address_without_domain(tmp_path, capsys):
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    mail = mail.replace("From: Jane Developer <jane@example.com>", "From: Jane Developer <jane>", 1)
    rc, out, err = run_one(capsys, tmp_path, mail)
    no_traceback(out, err)
    if rc == 2:  # nobody to reply to: said in one line (the findings are not printed)
        one_line_error(rc, out, err, "jane")
    else:
        assert rc == 1 and "violation[KFUNC_REMOVED]: bpf_foo" in out
    outbox = tmp_path / "state" / "outbox"
    assert not outbox.exists() or outbox_files(outbox) == []


def test_hostile_non_ascii_message_id(tmp_path, capsys):
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    mail = re.sub(r"^Message-Id: <", "Message-Id: <päch-", mail, count=1, flags=re.M)
    path = tmp_path / "in.mbox"
    path.write_bytes(mail.encode("utf-8"))  # raw UTF-8 in the header, as some MUAs send it
    try:
        rc, out, err = review(capsys, "--repo", str(tmp_path / "linux"), "--mbox", str(path), "--today", TODAY,
                              "--from", BOT)
    except Exception as e:  # what the user would see as a traceback
        pytest.fail(f"traceback: {type(e).__name__}: {e}")
    no_traceback(out, err)
    if rc == 2:
        one_line_error(rc, out, err)
    else:
        assert rc == 1 and "violation[KFUNC_REMOVED]: bpf_foo" in out


def test_hostile_five_megabyte_patch(tmp_path, capsys):
    big = "".join(f"line {i:07d} " + "x" * 80 + "\n" for i in range(5 * 1024 * 1024 // 94 + 1))
    mail = single_patch(tmp_path, {"Documentation/big.txt": big}, "docs: a very big file")
    assert len(mail) > 5 * 1024 * 1024
    rc, out, err = run_one(capsys, tmp_path, mail)
    assert rc == 0, out + err
    no_traceback(out, err)
    assert "[PATCH] docs: a very big file: applied" in out
    assert outbox_files(tmp_path / "state" / "outbox") == []


def test_plain_format_patch_output_without_message_ids(tmp_path, capsys):
    """`git format-patch` as a maintainer runs it (no --thread: no Message-ID): reviewed, with ids
    made from each patch that stay the same from run to run and name no list message; the reply
    goes to the author only and claims no thread."""
    build_tree(tmp_path / "linux")
    g = clone(tmp_path / "linux", tmp_path / "work", git_env(), "x")
    g.commit({"kernel/bpf/helpers.c": kernel({**BASE_KFUNCS, "bpf_new": FOO})}, "bpf: add bpf_new")
    g.commit({"kernel/bpf/helpers.c": kernel({"bpf_bar": FOO, "bpf_new": FOO})}, "bpf: drop bpf_foo")
    names = g("format-patch", "--cover-letter", "--base=v6.1", "-o", str(tmp_path / "out"), "v6.1..HEAD").split()
    mails = [Path(n).read_text() for n in names]
    assert len(mails) == 3 and not any(re.search(r"^Message-I[dD]:", m, re.M | re.I) for m in mails)
    assert all(re.match(r"From [0-9a-f]{40} Mon Sep 17 00:00:00 2001\n", m) for m in mails)
    (tmp_path / "series.mbox").write_text("".join(mails))
    args = ("--repo", str(tmp_path / "linux"), "--mbox", str(tmp_path / "series.mbox"), "--today", TODAY,
            "--from", BOT)
    rc, out, err = review(capsys, *args, "--format", "json")
    assert rc == 1, out + err
    data = json.loads(out)
    ids = [p["msgid"] for p in data["patches"]]
    assert [p["applied"] for p in data["patches"]] == [True, True]
    assert len(set(ids)) == 2 and all(re.fullmatch(r"format-patch\.[0-9a-f]{32}@policybot\.invalid", i) for i in ids)
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    msg = parse_mail(f)
    assert addrs(msg, "To") == ["jane@example.com"] and msg["Cc"] is None  # nobody else saw the patch
    assert msg["In-Reply-To"] is None and msg["References"] is None  # no list thread to claim
    assert subject_of(f.read_text()) == "Re: [PATCH 2/2] bpf: drop bpf_foo"
    assert any(n.startswith("reply to patch 2/2: to its author only") for n in data["notes"]), data["notes"]
    # the same ids on the next run: what was drafted is not drafted again
    rc2, out2, _ = review(capsys, *args, "--format", "json")
    assert rc2 == 1 and [p["msgid"] for p in json.loads(out2)["patches"]] == ids
    assert json.loads(out2)["drafted"] == [] and len(outbox_files(tmp_path / "state" / "outbox")) == 1


def test_a_patch_mail_from_the_list_keeps_its_thread(tmp_path, capsys):
    """The same patch with its Message-ID (format-patch --thread): the reply joins the list thread."""
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    rc, out, err = run_one(capsys, tmp_path, mail)
    assert rc == 1, out + err
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    msg = parse_mail(f)
    assert msg["In-Reply-To"] == msgid_of(mail) and "bpf@vger.kernel.org" in addrs(msg, "Cc")


def test_hostile_binary_patch(tmp_path, capsys):
    blob = bytes(range(256)) * 64
    mail = single_patch(tmp_path, {"firmware/blob.bin": blob, **DROP_FOO}, "bpf: drop bpf_foo, add a blob",
                        extra=("--binary",))
    assert "GIT binary patch" in mail
    rc, out, err = run_one(capsys, tmp_path, mail)
    no_traceback(out, err)
    assert "violation[KFUNC_REMOVED]: bpf_foo" in out  # judged whether or not the blob applies
    how = re.search(r"^\[PATCH\] bpf: drop bpf_foo, add a blob: (applied|could not apply 1/1 on )", out, re.M)
    assert rc == (1 if how.group(1) == "applied" else 2), out + err
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    check_body(parse_mail(f).get_content())


def test_hostile_mbox_with_garbage_between_messages(series, capsys, tmp_path):
    junk = [b"\x00\xff\xfe garbage \x1b[31m\n", b"From nobody\n\n", b"Subject: not a header here\n",
            b"\n\n\n", bytes(range(1, 256)) + b"\n"]
    parts = [m.encode() for m in series.v2]
    data = b""
    for i, p in enumerate(parts):
        data += p + b"\n" + junk[i % len(junk)] + b"\n"
    series.mbox.write_bytes(data)
    rc, out, err = review(capsys, *review_args(series))
    no_traceback(out, err)
    assert rc == 1, out + err
    assert "violation[KFUNC_REMOVED]: bpf_foo" in out and "(v2, 4 patches)" in out
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    check_body(parse_mail(f).get_content())


def test_hostile_html_only_mail(tmp_path, capsys):
    build_tree(tmp_path / "linux")
    html = ("From mboxrd@z Thu Jan  1 00:00:00 1970\n"
            "From: Jane Developer <jane@example.com>\nTo: bpf@vger.kernel.org\n"
            "Subject: [PATCH] bpf: drop bpf_foo\nMessage-ID: <html-1@example.com>\n"
            "Date: Sat, 1 Mar 2025 10:00:00 +0000\nMIME-Version: 1.0\n"
            "Content-Type: text/html; charset=utf-8\n\n"
            "<html><body><p>Drop it.</p><pre>diff --git a/kernel/bpf/helpers.c b/kernel/bpf/helpers.c\n"
            "--- a/kernel/bpf/helpers.c\n+++ b/kernel/bpf/helpers.c\n@@ -1,3 +1,0 @@\n"
            "-BTF_ID_FLAGS(func, bpf_foo)\n</pre></body></html>\n")
    rc, out, err = run_one(capsys, tmp_path, html)
    one_line_error(rc, out, err, "no patch series found")
    outbox = tmp_path / "state" / "outbox"
    assert not outbox.exists() or outbox_files(outbox) == []


def test_hostile_paths_climbing_out_of_the_tree(tmp_path, capsys):
    mail = single_patch(tmp_path, {"README": "Linux kernel\nmore\n"}, "docs: escape")
    mail = mail.replace("a/README", "a/../../x").replace("b/README", "b/../../x")
    assert "diff --git a/../../x b/../../x" in mail
    rc, out, err = run_one(capsys, tmp_path, mail)
    no_traceback(out, err)
    assert rc == 2, out + err  # its one patch did not apply
    assert "[PATCH] docs: escape: could not apply 1/1 on " in out
    assert "outside the tree" in out and "../../x" in out
    assert not (tmp_path / "x").exists() and not (tmp_path.parent / "x").exists()
    assert outbox_files(tmp_path / "state" / "outbox") == []


def test_hostile_empty_missing_and_not_a_maildir(tmp_path, capsys):
    build_tree(tmp_path / "linux")
    repo = ["--repo", str(tmp_path / "linux"), "--today", TODAY]
    (tmp_path / "empty.mbox").write_bytes(b"")
    one_line_error(*review(capsys, *repo, "--mbox", str(tmp_path / "empty.mbox")), "no patch series found")
    one_line_error(*review(capsys, *repo, "--mbox", str(tmp_path / "missing.mbox")),
                   "missing.mbox", "no such file")
    one_line_error(*review(capsys, *repo, "--maildir", str(tmp_path / "missing")), "no such file")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "note.txt").write_text("hello\n")
    one_line_error(*review(capsys, *repo, "--maildir", str(tmp_path / "plain")), "not a Maildir")
    one_line_error(*review(capsys, *repo, "--mbox", str(tmp_path / "plain")), "not a Maildir")
    # an empty, valid Maildir holds no series
    mailbox.Maildir(tmp_path / "md", create=True)
    one_line_error(*review(capsys, *repo, "--maildir", str(tmp_path / "md")), "no patch series found")
    outbox = tmp_path / "state" / "outbox"
    assert not outbox.exists() or outbox_files(outbox) == []


def test_series_from_a_maildir_and_stdin(series, capsys, tmp_path, monkeypatch):
    md = mailbox.Maildir(tmp_path / "in", create=True)
    for m in series.v2 + series.v1:
        md.add(m.encode())
    rc, out, _ = review(capsys, *review_args(series, src=["--maildir", str(tmp_path / "in")]))
    assert rc == 1 and "(v2, 4 patches)" in out and "drafted 1 mail" in out
    proc = subprocess.run([sys.executable, "-m", "policybot", "review", *review_args(series, src=["-"])],
                          input=series.mbox.read_bytes(), capture_output=True, cwd=ROOT)
    assert proc.returncode == 1, proc.stderr
    assert b"(v2, 4 patches)" in proc.stdout and b"drafted 0 mails" in proc.stdout


# -- acknowledgements and Reply-To ------------------------------------------------------------------


ACK_KEEPER = "Kfunc-Break-Acked-by: Helper Keeper <keeper@example.net>"


def test_ack_in_the_patch_itself_does_not_silence_the_reply(tmp_path, capsys):
    # issue 11: the author writes the commit message; only a maintainer's reply acknowledges
    build_tree(tmp_path / "linux")
    g = clone(tmp_path / "linux", tmp_path / "work", git_env(), "x")
    (g.work / "kernel/bpf/helpers.c").write_text(kernel({"bpf_bar": FOO}))
    g("commit", "-qam", f"bpf: drop bpf_foo\n\nAgreed on the list.\n\n{ACK_KEEPER}\n"
                        "Signed-off-by: Jane Developer <jane@example.com>")
    (mail,) = format_patch(g, tmp_path / "p", "--no-cover-letter")
    rc, out, err = run_one(capsys, tmp_path, mail)
    assert "KFUNC_REMOVED" in out
    assert "drafted 1 mail" in out and "does not count" in out
    assert rc == 1, out + err


def test_ack_by_a_maintainer_in_a_reply_silences_the_reply(tmp_path, capsys):
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    patch_id = msgid_of(mail)
    reply = ("From keeper Mon Sep 17 00:00:00 2001\nFrom: Helper Keeper <keeper@example.net>\n"
             f"To: Jane Developer <jane@example.com>\nSubject: Re: [PATCH] bpf: drop bpf_foo\n"
             f"Message-Id: <ack-1@example.net>\nIn-Reply-To: {patch_id}\nReferences: {patch_id}\n"
             "Date: Sun, 2 Mar 2025 10:00:00 +0000\n\n> bpf: drop bpf_foo\n\nFine with me.\n\n"
             f"{ACK_KEEPER}\n")
    rc, out, err = run_one(capsys, tmp_path, mail + "\n" + reply)
    assert rc == 0, out + err
    assert "KFUNC_REMOVED" in out and "drafted 0 mails" in out
    # the same tag from someone who does not maintain helpers.c does not count
    other = reply.replace("From: Helper Keeper <keeper@example.net>", "From: Some One <one@example.com>") \
                 .replace(ACK_KEEPER, "Kfunc-Break-Acked-by: Some One <one@example.com>")
    rc, out, err = run_one(capsys, tmp_path, mail + "\n" + other, "--state-dir", str(tmp_path / "s2"))
    assert rc == 1, out + err
    assert "drafted 1 mail" in out


def test_reply_never_goes_to_reply_to(tmp_path, capsys):
    """The reply goes to the patch's author: a Reply-To is the sender's choice of where the bot's
    mail goes, and must not steer it elsewhere."""
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    mail = mail.replace("\nTo: bpf@vger.kernel.org\n", "\nReply-To: Jane at Work <jane@work.example.com>\n"
                        "To: bpf@vger.kernel.org\n", 1)
    rc, out, err = run_one(capsys, tmp_path, mail, "--list", "kfunc-list@example.org")
    assert rc == 1, out + err
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    msg = parse_mail(f)
    assert addrs(msg, "To") == ["jane@example.com"]
    cc = [a.lower() for a in addrs(msg, "Cc")]
    assert "kfunc-list@example.org" in cc and "bpf@vger.kernel.org" in cc
    assert "jane@work.example.com" not in cc


def test_a_reply_copies_at_most_a_few_of_the_addresses_the_sender_chose(tmp_path, capsys):
    """45 addresses in the patch's own Cc: the reply copies the maintainers, the lists and at
    most limits.max_thread_cc (5) of those, and the run says how many were left out."""
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    chosen = [f"victim{i}@example.net" for i in range(45)]
    mail = mail.replace("\nTo: bpf@vger.kernel.org\n", "\nTo: bpf@vger.kernel.org\nCc: " + ", ".join(chosen) + "\n", 1)
    rc, out, err = run_one(capsys, tmp_path, mail)
    assert rc == 1, out + err
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    msg = parse_mail(f)
    cc = [a.lower() for a in addrs(msg, "Cc")]
    assert [a for a in cc if a.startswith("victim")] == chosen[:5]
    assert "bpf@vger.kernel.org" in cc and "ast@kernel.org" in cc  # the maintainers and the list stay
    assert "40 recipients of the patch left out" in out and "limits.max_thread_cc = 5" in out


def test_a_long_series_gets_at_most_a_few_replies(tmp_path, capsys):
    """A series whose two patches each break a stable kfunc, with limits.max_replies_per_series
    = 1: one reply is drafted, the other is named in a note; both findings are in the output."""
    config = tmp_path / "policybot.toml"
    config.write_text("[limits]\nmax_replies_per_series = 1\n")
    build_tree(tmp_path / "linux")
    g = clone(tmp_path / "linux", tmp_path / "work", git_env(), "drops")
    g.commit({"kernel/bpf/helpers.c": kernel({"bpf_bar": FOO})}, "bpf: drop bpf_foo")
    g.commit({"kernel/bpf/helpers.c": kernel({})}, "bpf: drop bpf_bar")
    mails = format_patch(g, tmp_path / "p")
    rc, out, err = run_one(capsys, tmp_path, "\n".join(mails), "--config", str(config))
    assert rc == 1, out + err
    assert out.count("violation[KFUNC_REMOVED]") == 2
    assert len(outbox_files(tmp_path / "state" / "outbox")) == 1
    assert "1 more replies not drafted (limits.max_replies_per_series = 1): 'Re: [PATCH 2/2] bpf: drop bpf_bar'" \
        in out, out
def test_one_author_gets_at_most_a_few_replies_a_day_over_all_series(tmp_path, capsys):
    """limits.max_replies_per_sender_per_day = 2, and three single-patch series from one author,
    each breaking a stable kfunc: two replies are drafted that day, the third is named in a note;
    another author's patch the same day still gets its reply."""
    config = tmp_path / "policybot.toml"
    config.write_text("[limits]\nmax_replies_per_sender_per_day = 2\n")
    drops = [(DROP_FOO, "bpf: drop bpf_foo"), ({"kernel/bpf/helpers.c": kernel({"bpf_foo": FOO})}, "bpf: drop bpf_bar"),
             ({"kernel/bpf/helpers.c": kernel({})}, "bpf: drop both")]
    outs = []
    for i, (files, subject) in enumerate(drops):
        mail = single_patch(tmp_path, files, subject)
        rc, out, err = run_one(capsys, tmp_path, mail, "--config", str(config))
        assert rc == 1 and "violation[KFUNC_REMOVED]" in out, out + err
        outs.append(out)
    assert len(outbox_files(tmp_path / "state" / "outbox")) == 2
    assert "not drafted" not in outs[0] + outs[1]
    assert ("1 more replies not drafted: jane@example.com had limits.max_replies_per_sender_per_day (2) today: "
            "'Re: [PATCH] bpf: drop both'") in outs[2], outs[2]
    other = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo again", name="Joe Other", addr="joe@example.com")
    rc, out, err = run_one(capsys, tmp_path, other, "--config", str(config))
    assert rc == 1 and "not drafted" not in out, out
    assert len(outbox_files(tmp_path / "state" / "outbox")) == 3


# -- once-only: a re-review that adds a finding to answered ones (issue 21) ----------------------------


def prose(msg) -> str:
    """A reply's own words: the quoted hunks (which show every line the patch changes) left out."""
    return " ".join(" ".join(ln for ln in msg.get_content().split("\n") if not ln.startswith("> ")).split())


def rereview(tmp_path, capsys, files: dict, allowed: str, rule: str) -> tuple[str, list]:
    """The same patch reviewed on the day ``allowed``'s allowlist entry for ``rule`` ends (the
    patch's other findings are mailed) and on the next (its finding is new): the patch, and the
    reply mails each day drafted."""
    mail = single_patch(tmp_path, files, "bpf: rework the generic kfuncs")
    (tmp_path / "policy.toml").write_text(f'[[allow]]\nkfunc = "{allowed}"\nrule = "{rule}"\n'
                                          f'reason = "agreed on the list"\nexpires = {TODAY}\n')
    days = []
    for day in (TODAY, "2025-03-02"):
        before = set(outbox_files(tmp_path / "state" / "outbox")) if days else set()
        rc, out, err = run_one(capsys, tmp_path, mail, "--policy", str(tmp_path / "policy.toml"), "--today", day)
        assert rc == 1, out + err
        days.append([parse_mail(p) for p in outbox_files(tmp_path / "state" / "outbox") if p not in before])
    return mail, days


WIDER = "int|struct task_struct *p, u32 flags, u64 more"


@pytest.mark.parametrize("files, allowed, rule, first, second", [
    # two removals from one set: the new finding has the rule of the answered one; once the entry
    # expired both are one cause, one finding of 2 kfuncs, new for bpf_bar
    ({"kernel/bpf/helpers.c": kernel({})}, "bpf_bar", "KFUNC_REMOVED",
     ("KFUNC_REMOVED", "bpf_foo"), ("KFUNC_REMOVED", "2 kfuncs")),
    # bpf_foo gains a parameter and a flag: the new finding is about the answered kfunc
    ({"kernel/bpf/helpers.c": kernel({"bpf_foo": (WIDER, "KF_SLEEPABLE"), "bpf_bar": FOO})}, "bpf_foo",
     "KFUNC_FLAGS_TIGHTENED", ("KFUNC_PARAM_ADDED", "bpf_foo"), ("KFUNC_FLAGS_TIGHTENED", "bpf_foo")),
], ids=["same-rule", "same-kfunc"])
def test_a_re_review_mails_the_new_finding_and_not_the_answered_one(tmp_path, capsys, files, allowed, rule,
                                                                     first, second):
    """The patch has two breaking findings. On the first day the allowlist accepts one of them:
    the reply is about the other. The entry has expired the next day: the same patch, reviewed
    again, gets one more reply, about the newly unaccepted finding only."""
    mail, (day1, day2) = rereview(tmp_path, capsys, files, allowed, rule)
    assert len(day1) == 1, "the first review drafted no reply"
    (msg1,) = day1
    said = prose(msg1)
    assert "{} for {}".format(*first) in said and "{} for {}".format(*second) not in said, said
    assert len(day2) == 1, "the finding that is new on the second day was not mailed"
    (msg2,) = day2
    said = prose(msg2)
    assert "{} for {}".format(*second) in said and "{} for {}".format(*first) not in said, said
    assert msg2["In-Reply-To"] == msg1["In-Reply-To"]  # the same patch
    # a third review mails nothing
    rc, out, err = run_one(capsys, tmp_path, mail, "--policy", str(tmp_path / "policy.toml"), "--today", "2025-03-03")
    assert rc == 1 and "drafted 0 mails" in out, out + err


def test_a_re_review_mails_a_member_that_joins_an_answered_group(tmp_path, capsys):
    """One change makes bpf_foo and bpf_bar sleepable: one cause, one grouped finding. On the
    first day the allowlist accepts bpf_foo's change: the reply is about bpf_bar. The next day
    the entry has expired, the group is {bpf_bar, bpf_foo}: bpf_foo's break is new and must be
    mailed."""
    sleepable = (FOO, "KF_SLEEPABLE")
    _, (first, second) = rereview(tmp_path, capsys, {"kernel/bpf/helpers.c": kernel({"bpf_foo": sleepable,
                                                                                     "bpf_bar": sleepable})},
                                  "bpf_foo", "KFUNC_FLAGS_TIGHTENED")
    (msg1,) = first
    assert "KFUNC_FLAGS_TIGHTENED for bpf_bar" in prose(msg1) and "bpf_foo" not in prose(msg1)
    assert len(second) == 1, "bpf_foo's break, no longer acknowledged, was not mailed"
    assert "bpf_foo" in prose(second[0])


def test_inbox_job_reviews_what_a_public_inbox_search_finds(series, capsys, tmp_path, inbox):
    handler, url = inbox
    handler.search = "\n".join(series.v2).encode()
    config = tmp_path / "policybot.toml"
    state_dir, repo = tmp_path / "bot", tmp_path / "linux"
    config.write_text(f'[state]\ndir = "{state_dir}"\n[mail]\nfrom = "{BOT}"\n'
                      f'[inbox]\nurl = "{url}"\nquery = "s:PATCH AND dfn:kernel/bpf/"\n'
                      f'[[trees]]\nname = "linux"\nrepo = "{repo}"\nbranch = "v6.1"\n')
    from policybot.cli import main
    assert main(["run", "--config", str(config), "--job", "review", "--today", "2025-03-01"]) == 0
    out = capsys.readouterr().out
    assert "reviewed: " in out and "drafted 1 mail" in out
    assert any(cmd == "POST" and "q=s%3APATCH+AND+dfn%3Akernel%2Fbpf%2F" in path for cmd, path in handler.requests)
    (f,) = outbox_files(tmp_path / "bot" / "outbox")
    assert parse_mail(f)["In-Reply-To"] == msgid_of(series.v2[3])  # the patch that removes bpf_foo
    # the next hour: the same threads come back, nothing is reviewed or mailed again
    assert main(["run", "--config", str(config), "--job", "review", "--today", "2025-03-01"]) == 0
    out = capsys.readouterr().out
    assert "reviewed: " not in out and "drafted 0 mails" in out


def _spy_prefetch(monkeypatch) -> list[tuple[str, bool]]:
    """(tree id, whether a prefetched git grep was there to take) of each cold scan."""
    from policybot.kernel import grep, scanner
    taken = []

    def take(tree_id, words):
        found = grep.take_prefetched(tree_id, words)
        taken.append((str(tree_id), found is not None))
        return found

    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # the prefetch needs a second core
    monkeypatch.setattr(scanner, "take_prefetched", take)
    return taken


def test_a_cold_review_greps_its_base_before_reading_the_series(tmp_path, capsys, monkeypatch):
    """The base-commit line of the mbox names the tree git grep starts on before b4 is imported;
    --base wins over it; a warm cache starts nothing."""
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    assert "\nbase-commit: " in mail
    repo = pygit2.Repository(str(tmp_path / "linux"))
    v61 = str(repo.revparse_single("v6.1").peel(pygit2.Tree).id)
    taken = _spy_prefetch(monkeypatch)
    assert run_one(capsys, tmp_path, mail, "--state-dir", str(tmp_path / "s1"))[0] == 1
    assert taken == [(v61, True)]

    b = HistoryBuilder(tmp_path / "linux")
    b.commit({"kernel/bpf/other.c": "int x;\n"}, "later")
    head = str(b.repo[b.head].tree.id)
    taken.clear()
    run_one(capsys, tmp_path, mail, "--state-dir", str(tmp_path / "s2"), "--base", "HEAD")
    assert taken == [(head, True)]  # the base, scanned cold (the patched trees are not: a cache by then)
    taken.clear()
    run_one(capsys, tmp_path, mail, "--state-dir", str(tmp_path / "s2"), "--base", "HEAD")
    assert taken == []  # a cache: the scanner reads only what it lacks


# -- a long series: its second half judged in a forked child ---------------------------------


def _long_series(tmp_path: Path) -> Path:
    """8 patches on v6.1: 2/8 makes the stable bpf_bar sleepable, 5/8 does not apply (its
    context drifted), 7/8 removes the stable bpf_foo; the rest change no promise. Judged in
    two processes, the child's part starts at 4/8 and links the tree 3/8 left itself."""
    build_tree(tmp_path / "linux")
    g = clone(tmp_path / "linux", tmp_path / "work", git_env(), "long")
    k = dict(BASE_KFUNCS)
    g.commit({"kernel/bpf/helpers.c": kernel({**k, "bpf_a": FOO})}, "bpf: add bpf_a")
    g.commit({"kernel/bpf/helpers.c": kernel({**k, "bpf_a": FOO, "bpf_bar": (FOO, "KF_SLEEPABLE")})},
             "bpf: make bpf_bar sleepable")
    g.commit({"README": "Linux kernel\n\nRead the docs.\n"}, "README: point to the docs")
    g.commit({"kernel/bpf/helpers.c": kernel({**k, "bpf_a": FOO, "bpf_bar": (FOO, "KF_SLEEPABLE"),
                                              "bpf_b": FOO})}, "bpf: add bpf_b")
    g.commit({"kernel/bpf/verifier.c": VERIFIER.replace("verifier_line20;", "verifier_changed;")},
             "bpf: tweak the verifier")
    last = {"bpf_foo": FOO, "bpf_a": FOO, "bpf_bar": (FOO, "KF_SLEEPABLE"), "bpf_b": FOO, "bpf_c": FOO}
    g.commit({"kernel/bpf/helpers.c": kernel(last)}, "bpf: add bpf_c")
    g.commit({"kernel/bpf/helpers.c": kernel({n: v for n, v in last.items() if n != "bpf_foo"})}, "bpf: drop bpf_foo")
    g.commit({"README": "Linux kernel\n\nRead the docs, twice.\n"}, "README: insist")
    mails = format_patch(g, tmp_path / "long")
    assert len(mails) == 9 and " int verifier_line19;\n-int verifier_line20;" in mails[5]
    mails[5] = mails[5].replace(" int verifier_line19;\n", " int verifier_line19 = 19;\n", 1)
    mbox = tmp_path / "long.mbox"
    mbox.write_text("\n".join(mails))
    return mbox


def _review_json(capsys, tmp_path, mbox, state: str, expect_rc: int = 1) -> dict:
    import json
    rc, out, err = review(capsys, "--repo", str(tmp_path / "linux"), "--mbox", str(mbox), "--today", TODAY,
                          "--from", BOT, "--state-dir", str(tmp_path / state), "--format", "json")
    assert rc == expect_rc, out + err
    data = json.loads(out)
    data.pop("outbox")
    return data


def test_a_long_series_is_judged_in_two_processes_as_in_one(tmp_path, capsys, monkeypatch):
    from policybot import forked
    mbox = _long_series(tmp_path)
    monkeypatch.setattr(forked, "available", lambda: False)
    alone = _review_json(capsys, tmp_path, mbox, "state1")
    assert [p["applied"] for p in alone["patches"]] == [True] * 4 + [False] + [True] * 3
    rules = [[f["rule"] for f in p["findings"]] for p in alone["patches"]]
    assert rules == [[], ["KFUNC_FLAGS_TIGHTENED"], [], [], [], [], ["KFUNC_REMOVED"], []]
    children = []
    real = forked.Forked.result

    def result(self):
        pid, value = self.pid, real(self)
        children.append(pid)  # only a child that succeeded: no redoing here hides a failing one
        return value

    from policybot.app import review as review_module
    drafted_for, real_mails = [], review_module.review_mails

    def review_mails(judged, **kw):
        drafted_for.append([r.patch.counter for r in judged.reviews])
        return real_mails(judged, **kw)

    monkeypatch.setattr(review_module, "review_mails", review_mails)
    monkeypatch.setattr(forked, "available", lambda: True)
    monkeypatch.setattr(forked.Forked, "result", result)
    assert _review_json(capsys, tmp_path, mbox, "state2") == alone
    assert len(children) == 1 and children[0] != os.getpid()
    # the first part's replies are drafted while the child judges the rest (three fifths)
    assert drafted_for == [[1, 2, 3], [4, 5, 6, 7, 8]]


def test_a_child_that_fails_has_its_half_judged_here(tmp_path, capsys, monkeypatch):
    from policybot import forked
    from policybot.app import series as series_module
    mbox = _long_series(tmp_path)
    monkeypatch.setattr(forked, "available", lambda: False)
    alone = _review_json(capsys, tmp_path, mbox, "state1")
    parent, real = os.getpid(), series_module._Judge.reviews

    def reviews(self, steps, inv):
        if os.getpid() != parent:
            raise MemoryError("the child ran out")
        return real(self, steps, inv)

    monkeypatch.setattr(forked, "available", lambda: True)
    monkeypatch.setattr(series_module._Judge, "reviews", reviews)
    assert _review_json(capsys, tmp_path, mbox, "state2") == alone


def test_a_long_series_whose_first_part_comes_back_to_the_base_is_judged_as_in_one_process(tmp_path, capsys,
                                                                                          monkeypatch):
    """1/6 edits README and 2/6 reverts it: the tree 2/6 leaves is the base's again, but the
    later part starts from the inventory named after 2/6 (messages quote that name)."""
    from policybot import forked
    b = HistoryBuilder(tmp_path / "linux")
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": kernel({"bpf_foo": FOO, "bpf_bar": (FOO, "KF_RCU")}),
              "kernel/bpf/verifier.c": VERIFIER, "MAINTAINERS": MAINTAINERS, "README": "Linux kernel\n",
              MANIFEST: manifest(bpf_foo="stable", bpf_bar="stable")}, "Linux 6.1", "2022-12-11T12:00:00")
    b.tag("v6.1")
    g = clone(tmp_path / "linux", tmp_path / "work", git_env(), "back")
    g.commit({"README": "Linux kernel\nmore\n"}, "README: more")
    g.commit({"README": "Linux kernel\n"}, "README: less")
    g.commit({"include/linux/btf.h": "".join(ln + "\n" for ln in BTF_H.splitlines() if " KF_RCU " not in ln)},
             "bpf: retire KF_RCU")
    for i in range(3):
        g.commit({f"Documentation/n{i}.txt": f"{i}\n"}, f"doc: note {i}")
    mbox = tmp_path / "back.mbox"
    mbox.write_text("\n".join(format_patch(g, tmp_path / "back")))
    monkeypatch.setattr(forked, "available", lambda: False)
    alone = _review_json(capsys, tmp_path, mbox, "state1", expect_rc=0)  # a warning only
    messages = [f["message"] for f in alone["patches"][2]["findings"]]
    assert messages and all("+2)" in m for m in messages if "btf.h" in m), messages
    monkeypatch.setattr(forked, "available", lambda: True)
    assert _review_json(capsys, tmp_path, mbox, "state2", expect_rc=0) == alone


def test_a_review_that_fails_while_its_child_works_leaves_no_scratch_repository(tmp_path, capsys, monkeypatch):
    from policybot import forked
    from policybot.app import review as review_module
    mbox = _long_series(tmp_path)
    monkeypatch.setattr(forked, "available", lambda: True)

    def review_mails(judged, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(review_module, "review_mails", review_mails)
    rc, out, err = review(capsys, "--repo", str(tmp_path / "linux"), "--mbox", str(mbox), "--today", TODAY,
                          "--from", BOT, "--state-dir", str(tmp_path / "state"))
    assert rc == 2 and "No space left on device" in err and "Traceback" not in err
    assert list((tmp_path / "state" / "scratch").iterdir()) == []


def test_review_copies_the_list_of_its_configuration(tmp_path, capsys):
    """review --config: the reply copies the configuration's [mail] list, as the weekly inbox job's
    does (the command line's --list default used to win over it); --list still overrides it."""
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    mail = mail.replace("\nTo: bpf@vger.kernel.org\n", "\nTo: Jane's Team <team@example.com>\n", 1)
    config = tmp_path / "policybot.toml"
    config.write_text('[mail]\nlist = "kfunc-list@example.org"\n')
    rc, out, err = run_one(capsys, tmp_path, mail, "--config", str(config))
    assert rc == 1, out + err
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    cc = [a.lower() for a in addrs(parse_mail(f), "Cc")]
    assert "kfunc-list@example.org" in cc
    rc, out, err = run_one(capsys, tmp_path, mail, "--config", str(config), "--list", "other@example.org",
                           "--state-dir", str(tmp_path / "s2"))
    (f,) = outbox_files(tmp_path / "s2" / "outbox")
    cc = [a.lower() for a in addrs(parse_mail(f), "Cc")]
    assert "other@example.org" in cc and "kfunc-list@example.org" not in cc


def test_each_reply_greets_and_addresses_its_own_patch_author(tmp_path, capsys):
    """issue 25: a series Jane sends holds a patch Bob wrote (git format-patch writes his in-body
    From line): its reply greets Bob and goes to him, Jane, the series' author, in Cc; Jane's own
    patch's reply greets her."""
    build_tree(tmp_path / "linux")
    g = clone(tmp_path / "linux", tmp_path / "work", git_env(), "x")
    g.commit({"kernel/bpf/helpers.c": kernel({"bpf_bar": FOO})}, "bpf: drop bpf_foo")
    (g.work / "kernel/bpf/helpers.c").write_text(kernel({}))
    g("commit", "-qam", "bpf: drop bpf_bar\n\nSigned-off-by: Bob Other <bob@example.org>",
      "--author", "Bob Other <bob@example.org>")
    mails = format_patch(g, tmp_path / "p", "--from=Jane Developer <jane@example.com>")
    assert "\nFrom: Bob Other <bob@example.org>\n" in mails[-1]  # the in-body From line
    rc, out, err = run_one(capsys, tmp_path, "\n".join(mails))
    assert rc == 1, out + err
    replies = {subject_of(f.read_text()): parse_mail(f) for f in outbox_files(tmp_path / "state" / "outbox")}
    jane = next(m for s, m in replies.items() if "drop bpf_foo" in s)
    bob = next(m for s, m in replies.items() if "drop bpf_bar" in s)
    assert addrs(jane, "To") == ["jane@example.com"] and prose(jane).startswith("Hi Jane,")
    assert addrs(bob, "To") == ["bob@example.org"] and prose(bob).startswith("Hi Bob,")
    assert "jane@example.com" in [a.lower() for a in addrs(bob, "Cc")]
    assert "jane@example.com" not in [a.lower() for a in addrs(jane, "Cc")]  # she is its To


def test_the_sender_of_a_lone_forwarded_patch_is_in_cc(tmp_path, capsys):
    """Jane sends, alone (no cover letter), a patch Bob Other wrote (its in-body From line): the
    reply goes to Bob and greets him, Jane, who sent it, in Cc."""
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo", name="Bob Other", addr="bob@example.org",
                        extra=("--from=Jane Developer <jane@example.com>",))
    assert mail.startswith("From ") and "\nFrom: Jane Developer <jane@example.com>\n" in mail
    assert "\nFrom: Bob Other <bob@example.org>\n" in mail
    rc, out, err = run_one(capsys, tmp_path, mail)
    assert rc == 1, out + err
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    reply = parse_mail(f)
    assert addrs(reply, "To") == ["bob@example.org"] and prose(reply).startswith("Hi Bob,")
    assert "jane@example.com" in [a.lower() for a in addrs(reply, "Cc")]


FLAG_VERIFIER = VERIFIER.replace("int verifier_line20;\n", "int verifier_line20;\n"
                                 "\tif ((meta->kfunc_flags & KF_TEST_NEW) && !perfmon_capable())\n"
                                 "\t\treturn -EPERM;\n")


def _new_flag_patch(tmp_path: Path, version: int, run: str = "") -> str:
    """A patch that defines KF_TEST_NEW in btf.h, gives it to the stable bpf_foo, and checks it in
    verifier.c: v1 and v2 of the same series (other Message-IDs)."""
    g = clone(tmp_path / "linux", tmp_path / f"work{version}{run}", git_env(), f"v{version}")
    g.commit({"include/linux/btf.h": BTF_H + "#define KF_TEST_NEW (1 << 20) /* for tests */\n",
              "kernel/bpf/verifier.c": FLAG_VERIFIER,
              "kernel/bpf/helpers.c": kernel({"bpf_foo": (FOO, "KF_TEST_NEW"), "bpf_bar": FOO})},
             "bpf: add KF_TEST_NEW")
    (mail,) = format_patch(g, tmp_path / f"p{version}{run}", "--no-cover-letter", f"-v{version}")
    return mail


def test_an_unknown_flag_is_asked_once_as_a_notice_question(tmp_path, capsys):
    """issue 25: a flag policybot does not know is one notice question, quoting the patch's
    definition and its verifier hunk (what the flag makes the verifier do), each hunk once; v2 of
    the series does not ask again; the operator's [semantics] answer turns it into a judgement."""
    build_tree(tmp_path / "linux")
    rc, out, err = run_one(capsys, tmp_path, _new_flag_patch(tmp_path, 1))
    assert "notice[KFUNC_NEEDS_REVIEW]" in out and "drafted 1 mail" in out, out + err
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    body = parse_mail(f).get_content()
    assert "NOTICE KFUNC_NEEDS_REVIEW" in body and "WARNING" not in body
    assert body.count("> +#define KF_TEST_NEW (1 << 20) /* for tests */\n") == 1
    assert body.count("> +\t\treturn -EPERM;\n") == 1
    headers = [ln for ln in body.split("\n") if ln.startswith("> @@")]
    assert len(headers) == len(set(headers)) == 2  # btf.h (the finding's and the definition), verifier.c: once each
    text = prose(parse_mail(f))
    assert "kernel/bpf/verifier.c makes the verifier refuse a call of a kfunc with KF_TEST_NEW (-EPERM) " \
           "unless perfmon_capable()" in text
    assert "does it make the verifier reject programs it accepted (tightening)" in text
    assert 'KF_TEST_NEW = "tightening"' in body
    # v2 of the series: the question was asked
    rc, out, err = run_one(capsys, tmp_path, _new_flag_patch(tmp_path, 2))
    assert "notice[KFUNC_NEEDS_REVIEW]" in out and "drafted 0 mails" in out, out + err
    # the operator's answer: relaxing is info, and no mail
    policy = tmp_path / "policy.toml"
    policy.write_text('[semantics]\nKF_TEST_NEW = "relaxing"\n')
    rc, out, err = run_one(capsys, tmp_path, _new_flag_patch(tmp_path, 1, "r"), "--policy", str(policy),
                           "--state-dir", str(tmp_path / "s2"))
    assert "KFUNC_NEEDS_REVIEW" not in out and "info[KFUNC_FLAGS_RELAXED]" in out and "drafted 0 mails" in out, out
    # tightening: judged as a tightening of a stable kfunc, with the tightening's way forward
    policy.write_text('[semantics]\nKF_TEST_NEW = "tightening"\n')
    rc, out, err = run_one(capsys, tmp_path, _new_flag_patch(tmp_path, 1, "t"), "--policy", str(policy),
                           "--state-dir", str(tmp_path / "s3"))
    assert "violation[KFUNC_FLAGS_TIGHTENED]" in out and "drafted 1 mail" in out, out
    (f,) = outbox_files(tmp_path / "s3" / "outbox")
    assert "Programs that load today must keep loading" in prose(parse_mail(f))


REAL_FLAG_EDITS = {
    "include/linux/btf.h": ("#define KF_IMPLICIT_ARGS", "#define KF_IMPLICIT_ARGS (1 << 16) /* kfunc has implicit "
                            "arguments supplied by the verifier */\n#define KF_TEST_NEW (1 << 17) /* for tests */"),
    "kernel/bpf/helpers.c": ("BTF_ID_FLAGS(func, bpf_task_acquire, KF_ACQUIRE | KF_RCU | KF_RET_NULL)",
                             "BTF_ID_FLAGS(func, bpf_task_acquire, KF_ACQUIRE | KF_RCU | KF_RET_NULL | KF_TEST_NEW)"),
    "kernel/bpf/verifier.c": ("return meta->kfunc_flags & KF_RCU_PROTECTED;",
                              "\treturn meta->kfunc_flags & (KF_RCU_PROTECTED | KF_TEST_NEW);"),
}


@pytest.mark.realtree
def test_an_unknown_flag_on_the_real_tree_is_a_notice_question_until_answered(kernel_repo, tmp_path, capsys):
    """issue 25 on the real 7.2 tree: a patch defining KF_TEST_NEW and giving it to the stable
    bpf_task_acquire is one notice question quoting the definition; after the operator's
    ``[semantics] KF_TEST_NEW = "relaxing"`` it is info, and nothing is mailed."""
    from kit.realtree import get_maintainer, maintainers_checkout, patch_mail
    mbox = tmp_path / "flag.mbox"
    mbox.write_text(patch_mail(kernel_repo, "v7.2", REAL_FLAG_EDITS, "bpf: add KF_TEST_NEW"))
    (tmp_path / "overlay.yaml").write_text("kfuncs:\n  bpf_task_acquire:\n    stability: stable\n")
    policy = tmp_path / "policy.toml"
    policy.write_text(f'[declarations]\noverlay = "{tmp_path / "overlay.yaml"}"\n')
    args = ["--repo", kernel_repo, "--mbox", str(mbox), "--base", "v7.2", "--today", TODAY, "--from", BOT,
            "--policy", str(policy)]
    rc, out, err = review(capsys, *args, "--state-dir", str(tmp_path / "s1"))
    asked = [ln for ln in out.split("\n") if "KFUNC_NEEDS_REVIEW" in ln]
    assert len(asked) == 1 and "notice[KFUNC_NEEDS_REVIEW]" in asked[0] and "KF_TEST_NEW" in asked[0], out + err
    (f,) = outbox_files(tmp_path / "s1" / "outbox")
    body = parse_mail(f).get_content()
    assert body.count("> +#define KF_TEST_NEW (1 << 17) /* for tests */\n") == 1
    assert body.count("> +\treturn meta->kfunc_flags & (KF_RCU_PROTECTED | KF_TEST_NEW);\n") == 1
    # copied to exactly what the tree's get_maintainer.pl lists for the patch, and the list it went to
    repo = pygit2.Repository(kernel_repo)
    maintainers_checkout(repo, repo.revparse_single("v7.2").peel(pygit2.Tree), tmp_path / "linux", [])
    listed = get_maintainer(tmp_path / "linux", "--no-tree", "--nogit", "--nogit-fallback", "--norolestats",
                            str(mbox))
    assert len(listed) > 5
    want = {email.utils.parseaddr(a)[1].lower() for a in listed} | {"bpf@vger.kernel.org"}
    assert sorted(a.lower() for a in addrs(parse_mail(f), "Cc")) == sorted(want - {"jane@example.com"})
    assert "NOTICE KFUNC_NEEDS_REVIEW" in body and "WARNING" not in body
    assert 'KF_TEST_NEW = "tightening"' in body
    policy.write_text(policy.read_text() + '\n[semantics]\nKF_TEST_NEW = "relaxing"\n')
    rc, out, err = review(capsys, *args, "--state-dir", str(tmp_path / "s2"))
    assert "KFUNC_NEEDS_REVIEW" not in out and "info[KFUNC_FLAGS_RELAXED]" in out, out + err
    assert "drafted 0 mails" in out


def test_a_removal_names_the_replacement_a_deprecation_warning_names(tmp_path, capsys):
    """issue 25: the kfunc's own body warns "bpf_foo is deprecated, use bpf_bar() instead": the
    reply to its removal names bpf_bar, and lists the files under tools/ that still call bpf_foo."""
    b = build_tree(tmp_path / "linux")
    warned = kernel(BASE_KFUNCS).replace(
        "__bpf_kfunc int bpf_foo(struct task_struct *p, u32 flags)\n{\n",
        "__bpf_kfunc int bpf_foo(struct task_struct *p, u32 flags)\n{\n"
        '\tpr_warn_once("bpf_foo is deprecated, use bpf_bar() instead\\n");\n', 1)
    assert "pr_warn_once" in warned
    b.commit({"kernel/bpf/helpers.c": warned, "tools/testing/selftests/bpf/progs/foo.c": "int f(void) "
              "{ return bpf_foo(0, 0); }\n", "tools/lib/other.c": "int bpf_foo_like;\n"},
             "bpf: warn about bpf_foo", "2023-01-02T12:00:00")
    b.tag("v6.1.1")
    g = clone(tmp_path / "linux", tmp_path / "work", git_env(), "x")
    g("reset", "-q", "--hard", "v6.1.1")
    (g.work / "kernel/bpf/helpers.c").write_text(kernel({"bpf_bar": FOO}))
    g("commit", "-qam", "bpf: drop bpf_foo\n\nSigned-off-by: Jane Developer <jane@example.com>")
    mail = g("format-patch", "--stdout", "--thread", "-1", "HEAD")
    rc, out, err = run_one(capsys, tmp_path, mail, "--base", "v6.1.1")
    assert rc == 1, out + err
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    text = prose(parse_mail(f))
    assert "Its callers can move to bpf_bar meanwhile." in text
    assert "These files of v6.1.1 name bpf_foo and would have to change with it: " \
           "tools/testing/selftests/bpf/progs/foo.c Thanks," in text


def test_a_known_to_the_tree_unknown_to_policybot_flag_is_asked_quoting_its_define(tmp_path, capsys):
    """A flag the base's btf.h already defines, new on a stable kfunc: the question quotes the
    base's #define line (the patch has no hunk defining it)."""
    b = build_tree(tmp_path / "linux")
    btf_h = BTF_H + "#define KF_MYSTERY (1 << 25) /* a mystery */\n"
    b.commit({"include/linux/btf.h": btf_h}, "btf: KF_MYSTERY", "2023-01-02T12:00:00")
    b.tag("v6.1.1")
    line = btf_h.count("\n")
    g = clone(tmp_path / "linux", tmp_path / "work", git_env(), "x")
    g("reset", "-q", "--hard", "v6.1.1")
    g.commit({"kernel/bpf/helpers.c": kernel({"bpf_foo": (FOO, "KF_MYSTERY"), "bpf_bar": FOO})}, "bpf: mystery")
    mail = g("format-patch", "--stdout", "--thread", "-1", "HEAD")
    rc, out, err = run_one(capsys, tmp_path, mail, "--base", "v6.1.1")
    assert "notice[KFUNC_NEEDS_REVIEW]" in out and "drafted 1 mail" in out, out + err
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    body = parse_mail(f).get_content()
    assert f"include/linux/btf.h:{line} defines it:\n> #define KF_MYSTERY (1 << 25) /* a mystery */\n" in body
    assert 'KF_MYSTERY = "tightening"' in body


# -- a day of list traffic: a series that touches no kfunc code is skipped (the inbox job) ---------

def _series_of(tmp_path, mail: str):
    from policybot.mail import b4wrap
    msgs = b4wrap.read_messages(data=mail.encode(), state_dir=tmp_path / "state")
    return b4wrap.series_from_messages(msgs, tmp_path / "state")


@pytest.mark.parametrize("files, skipped", [
    ({"kernel/bpf/verifier.c": VERIFIER.replace("verifier_line3;", "verifier_three;")}, True),  # no kfunc code
    ({"kernel/bpf/new.c": "int plain(void) { return 0; }\n"}, True),  # a new .c file without kfunc code
    ({"kernel/bpf/helpers.c": kernel({**BASE_KFUNCS, "bpf_new": FOO})}, False),  # a file the inventory reads
    ({"kernel/bpf/new.c": "__bpf_kfunc int bpf_x(void) { return 0; }\n"}, False),  # says kfunc: may add one
    ({"kernel/bpf/verifier.c": VERIFIER + "/* see the kfunc docs */\n"}, False),  # ... in any .c file
    ({"README": "Linux kernel\nmore\n"}, False),  # not a .c file: a header, Kbuild, the manifest may matter
])
def test_a_series_that_cannot_matter_is_skipped(tmp_path, files, skipped):
    from policybot.app.series import review_series
    from policybot.kernel.scanner import Scanner
    from policybot.policy.audit import Auditor
    from policybot.policy.config import Policy
    import datetime as dt
    series = _series_of(tmp_path, single_patch(tmp_path, files, "bpf: a change"))
    repo = pygit2.Repository(str(tmp_path / "linux"))
    auditor = Auditor(repo, Scanner(repo), Policy(), dt.date(2025, 3, 1))
    (r,) = review_series(auditor, series, "v6.1", skip_unrelated=True).reviews
    assert (r.skipped, r.applied) == (skipped, not skipped)
    (full,) = review_series(auditor, series, "v6.1").reviews  # `policybot review` applies every patch
    assert (full.skipped, full.applied) == (False, True)


@pytest.mark.parametrize("sender, to, hi", [
    ("Dr. Bob Baker <bob@example.org>", '"Dr. Bob Baker" <bob@example.org>', "Hi Bob,"),
    ("Prof Mrs Ann Lee <bob@example.org>", "Prof Mrs Ann Lee <bob@example.org>", "Hi Ann,"),
    ("bob@example.org", "bob@example.org", "Hi,"),
    ('"bob@example.org" <bob@example.org>', "bob@example.org", "Hi,"),
])
def test_a_reply_greets_no_honorific_and_names_no_bare_address(tmp_path, capsys, sender, to, hi):
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    mail = mail.replace("\nFrom: Jane Developer <jane@example.com>\n", f"\nFrom: {sender}\n", 1)
    rc, out, err = run_one(capsys, tmp_path, mail)
    assert rc == 1, out + err
    (f,) = outbox_files(tmp_path / "state" / "outbox")
    reply = parse_mail(f)
    assert reply["To"] == to
    assert prose(reply).startswith(hi), prose(reply)[:80]


def test_review_from_a_linked_worktree(tmp_path, capsys, monkeypatch):
    """A linked worktree's git directory (.git/worktrees/NAME) holds no objects: the patch is
    applied on the objects of the repository it belongs to, with --repo and without."""
    mail = single_patch(tmp_path, DROP_FOO, "bpf: drop bpf_foo")
    linked = tmp_path / "linked"
    subprocess.run(["git", "-C", str(tmp_path / "linux"), "worktree", "add", "-q", "--detach", str(linked), "v6.1"],
                   check=True, env=git_env(), capture_output=True)
    (tmp_path / "in.mbox").write_text(mail)
    args = ["--mbox", str(tmp_path / "in.mbox"), "--today", TODAY, "--from", BOT]
    rc, out, err = review(capsys, "--repo", str(linked), *args)
    assert rc == 1 and "[PATCH] bpf: drop bpf_foo: applied" in out, out + err
    monkeypatch.chdir(linked / "kernel")
    rc, out, err = review(capsys, *args)
    assert rc == 1 and "[PATCH] bpf: drop bpf_foo: applied" in out, out + err
