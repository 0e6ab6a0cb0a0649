"""Mail building (mail.md's rules, header by header) and the outbox, sent to a
real SMTP server on 127.0.0.1 (aiosmtpd), never a mock."""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import mailbox
import os
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

import policybot
from kit.mail import authenticator, free_port
from policybot.errors import ConfigError, InputError
from policybot.mail.message import (
    MailConfig, build_message, check_no_trailers, message_id,
)
from policybot.mail.outbox import Outbox
from policybot.state import State, mailed_keys, mails

ROOT = Path(__file__).resolve().parent.parent
DATE = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
PATCH_ID = "<20250301101010.1234567-3-jane.developer.with.a.long.name@some-long-domain.example.com>"
COVER_ID = "<20250301101010.1234567-0-jane.developer.with.a.long.name@some-long-domain.example.com>"
BODY = "Hi Jane,\n\npolicybot checked this patch against bpf-next at 0123456789ab.\n"


def config(**kw) -> MailConfig:
    kw.setdefault("from_addr", "policybot <policybot@example.org>")
    kw.setdefault("operator_contact", "kfunc-bot-admin@example.org")
    return MailConfig(**kw)


def build(**kw):
    cfg = kw.pop("cfg", None) or config()
    args = dict(to=["Jane Developer <jane@example.com>"], cc=["bpf@vger.kernel.org"],
                subject="Re: [PATCH bpf-next v2 3/7] bpf: drop bpf_foo", body=BODY,
                msgid_seed="review|" + PATCH_ID + "|KFUNC_REMOVED|bpf_foo", date=DATE)
    args.update(kw)
    return build_message(cfg, **args)


def reparse(msg) -> email.message.EmailMessage:
    """What a MUA sees: the serialised bytes parsed again."""
    return email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)


def raw_headers(msg) -> str:
    head = msg.as_bytes().split(b"\n\n", 1)[0]
    assert head.isascii(), "header bytes must be 7-bit (RFC 2047 for anything else)"
    return head.decode()


# -- headers, one by one ---------------------------------------------------------


def test_message_id_is_deterministic_and_stable_across_runs():
    seed = "review|<p@x>|KFUNC_REMOVED|bpf_foo"
    expected = f"<policybot-{hashlib.sha256(seed.encode()).hexdigest()[:32]}@example.org>"
    assert build(msgid_seed=seed)["Message-ID"] == expected
    assert build(msgid_seed=seed, date=datetime.now(timezone.utc))["Message-ID"] == expected
    # a constant, so a change of the derivation shows up here (it would re-mail everything)
    assert message_id(config(), "abc") == "<policybot-ba7816bf8f01cfea414140de5dae2223@example.org>"
    assert build(msgid_seed=seed + "x")["Message-ID"] != expected
    assert message_id(config(msgid_domain="bots.example.net"), "abc").endswith("@bots.example.net>")


def test_bot_headers():
    msg = reparse(build())
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Mailer"] == f"policybot {policybot.__version__}"
    assert msg["From"] == "policybot <policybot@example.org>"
    assert msg["Date"] == "Tue, 04 Mar 2025 05:06:07 +0000"
    assert msg["Subject"] == "Re: [PATCH bpf-next v2 3/7] bpf: drop bpf_foo"
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert msg["Content-Type"].params == {"charset": "utf-8"}  # no format=flowed
    assert msg["Content-Transfer-Encoding"] == "7bit"


def test_threading_headers_are_plain_ids_folded_at_spaces():
    msg = build(in_reply_to=PATCH_ID, references=[COVER_ID])
    head = raw_headers(msg)
    assert f"In-Reply-To: {PATCH_ID}\n" in head
    assert f"References: {COVER_ID}\n {PATCH_ID}\n" in head
    assert "=?" not in head  # the stock folder would encode long ids and break threading
    back = reparse(msg)
    assert back["In-Reply-To"] == PATCH_ID
    assert back["References"].split() == [COVER_ID, PATCH_ID]
    # the parent is not repeated when the chain already ends with it; brackets are added
    again = reparse(build(in_reply_to=PATCH_ID.strip("<>"), references=[COVER_ID, PATCH_ID]))
    assert again["References"].split() == [COVER_ID, PATCH_ID]
    assert again["In-Reply-To"] == PATCH_ID


def test_no_threading_headers_for_a_new_thread():
    msg = build()
    assert msg["In-Reply-To"] is None and msg["References"] is None


def test_recipients_deduplicated_case_insensitively_keeping_everyone():
    msg = reparse(build(to=["Jane <Jane@Example.com>"],
                        cc=["jane@example.com", "BPF@vger.kernel.org", "bpf@vger.kernel.org",
                            "Alexei <ast@kernel.org>, daniel@iogearbox.net"]))
    assert [a.addr_spec for a in msg["To"].addresses] == ["Jane@Example.com"]
    assert [a.addr_spec for a in msg["Cc"].addresses] == [
        "BPF@vger.kernel.org", "ast@kernel.org", "daniel@iogearbox.net"]


# -- hostile input ----------------------------------------------------------------


def test_subject_injection_and_non_ascii():
    msg = build(subject="Re: [PATCH] bpf: f\u00efx kfunc\r\nBcc: victim@example.net\n\nbody",
                extra_headers={"X-Patchwork-Hint": "ignore\r\nX-Evil: 1"})
    head = raw_headers(msg)
    lines = head.split("\n")
    assert not any(line.startswith(("Bcc", "X-Evil", "body")) for line in lines)
    assert "=?utf-8?" in head
    back = reparse(msg)
    assert back["Subject"] == "Re: [PATCH] bpf: f\u00efx kfunc Bcc: victim@example.net body"
    assert back["Bcc"] is None and back["X-Evil"] is None
    assert back["X-Patchwork-Hint"] == "ignore X-Evil: 1"


def test_long_subject_is_folded():
    subject = "Re: [PATCH bpf-next v12 13/17] " + " ".join(["selftests/bpf: kfunc"] * 8)
    head = raw_headers(build(subject=subject))
    assert all(len(line) <= 78 for line in head.split("\n") if line.startswith(("Subject", " ")))
    assert reparse(build(subject=subject))["Subject"] == subject


def test_quoted_comma_stays_one_address():
    cfg = config(from_addr='"Bot, Policy" <policybot@example.org>')
    msg = reparse(build(cfg=cfg, to=['"Doe, John" <john@example.org>'], cc=[]))
    (to,) = msg["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Doe, John", "john@example.org")
    (sender,) = msg["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Bot, Policy", "policybot@example.org")


def test_non_ascii_display_names_are_encoded():
    msg = build(to=["J\u00f6rg R\u00f6del <joro@8bytes.org>"],
                cc=["=?utf-8?q?Bj=C3=B6rn_T=C3=B6pel?= <bjorn@kernel.org>"])  # as parsed from a list mail
    head = raw_headers(msg)
    assert "=?utf-8?q?J=C3=B6rg_R=C3=B6del?= <joro@8bytes.org>" in head
    back = reparse(msg)
    assert back["To"].addresses[0].display_name == "J\u00f6rg R\u00f6del"
    assert back["Cc"].addresses[0].display_name == "Bj\u00f6rn T\u00f6pel"


def test_unusable_addresses_and_headers_are_refused():
    with pytest.raises(InputError):
        build(to=["not an address"])
    with pytest.raises(InputError):
        build(to=[], cc=[])
    with pytest.raises(ValueError):
        build(extra_headers={"From": "someone@example.net"})
    with pytest.raises(ValueError):
        build(extra_headers={"Bad Name": "x"})
    with pytest.raises(ConfigError):
        MailConfig(from_addr="policybot")
    with pytest.raises(ConfigError):
        MailConfig(smtp_security="ssl")


# -- body -------------------------------------------------------------------------


def test_body_wrapped_at_72_with_quotes_urls_and_tags_kept():
    quoted = "> @@ -100,7 +100,7 @@ __bpf_kfunc struct task_struct *bpf_task_acquire(struct task_struct *p, int flags)"
    url = "Declared in https://git.kernel.org/pub/scm/linux/kernel/git/bpf/bpf-next.git/tree/kernel/bpf/helpers.c#n2310"
    tag = "| Kfunc-Break-Acked-by: A Maintainer With A Long Name <maintainer.with.long.name@kernel.org>"
    prose = "This kfunc was declared stable in v6.9 and its promise runs until 2027-06-01, " * 3
    bullet = "  - " + "add bpf_foo2() with the new signature and deprecate bpf_foo() " * 2
    msg = build(body="\n".join([quoted, url, tag, prose, bullet]) + "\n")
    body = reparse(msg).get_content()
    lines = body.split("\n")
    assert quoted in lines and url in lines and tag in lines
    long_lines = [line for line in lines if len(line) > 72]
    assert sorted(long_lines) == sorted([quoted, url, tag])
    assert "  - add bpf_foo2() with the new signature and deprecate bpf_foo() add" in lines
    assert "    bpf_foo2() with the new signature and deprecate bpf_foo()" in lines
    assert " ".join(prose.split()) in " ".join(body.split())


def test_signature_says_bot_contact_and_how_to_ack():
    body = reparse(build(cfg=config(operator_contact="https://example.org/policybot"))).get_content()
    text, sig = body.split("\n-- \n")
    assert text + "\n" == BODY + "\n"  # one blank line before the separator
    assert body.startswith(BODY + "\n-- \n")
    assert "policybot, a bot" in sig
    assert "  https://example.org/policybot\n" in sig
    assert "\n| Kfunc-Break-Acked-by: Name <address>\n" in sig
    assert "allowlist entry" in sig
    assert check_no_trailers(body) == []
    assert all(len(line) <= 72 for line in body.split("\n"))


@pytest.mark.parametrize("line", [
    "Acked-by: Someone <someone@example.org>",
    "    Reviewed-by: Someone <someone@example.org>",
    "\tKfunc-Break-Acked-by: Someone <someone@example.org>",
    "pw-bot: changes-requested",
    "Rule: KFUNC_REMOVED",
    "bpf_foo(): removed while its promise is live",
])
def test_trailer_shaped_lines_are_rejected(line):
    assert check_no_trailers(f"Hi,\n{line}\nbye\n") == [line]
    with pytest.raises(ValueError, match="trailers"):
        build(body=f"Hi,\n\n{line}\n")


def test_quoted_and_tag_lines_may_look_like_trailers():
    body = "> Signed-off-by: Jane <jane@example.com>\n| Reported-by: policybot <policybot@example.org>\n"
    assert check_no_trailers(body) == []
    build(body=body)
    assert check_no_trailers("Note that: this is prose\nsee https://x.org/a: b\n") == []


def test_a_second_signature_separator_is_refused():
    with pytest.raises(ValueError, match="signature"):
        build(body="text\n-- \nmy sig\n")


def test_control_characters_and_crlf_in_body():
    body = reparse(build(body="line one\r\nline\x00 two\x1b[31m\n")).get_content()
    assert body.startswith("line one\nline two[31m\n")


SCRIPT = textwrap.dedent("""
    import sys
    from datetime import datetime, timezone
    if sys.argv[1] == "b4":
        import b4, email.charset
        assert email.charset.Charset("utf-8").body_encoding is None  # b4 changed the registry
    from policybot.mail.message import MailConfig, build_message
    cfg = MailConfig(from_addr="Pol\\u00eccybot <policybot@example.org>", operator_contact="ops@example.org")
    msg = build_message(cfg, to=["J\\u00f6rg R\\u00f6del <joro@8bytes.org>"], cc=["bpf@vger.kernel.org"],
                        subject="Re: [PATCH] bpf: f\\u00efx", body="Gr\\u00fc\\u00dfe, J\\u00f6rg\\n> \\u00e9t\\u00e9\\n",
                        msgid_seed="s", in_reply_to="<p@x>", date=datetime(2025, 1, 1, tzinfo=timezone.utc))
    sys.stdout.buffer.write(msg.as_bytes())
""")


def test_encoding_does_not_depend_on_b4_being_imported():
    def run(mode: str) -> bytes:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        return subprocess.run([sys.executable, "-c", SCRIPT, mode], check=True, capture_output=True,
                              cwd=ROOT, env=env).stdout
    without, with_b4 = run("plain"), run("b4")
    assert without == with_b4
    head, body = without.split(b"\n\n", 1)
    assert b"Content-Transfer-Encoding: 8bit" in head and b"base64" not in without
    assert "Grüße, Jörg\n> été\n".encode() in body
    assert head.isascii()


# -- outbox -----------------------------------------------------------------------


@pytest.fixture
def state(tmp_path):
    """SQLite; PostgreSQL when POLICYBOT_TEST_DATABASE_URL names a scratch database."""
    st = State(os.environ.get("POLICYBOT_TEST_DATABASE_URL"), state_dir=tmp_path / "state")
    with st.engine.begin() as conn:
        conn.execute(mailed_keys.delete())
        conn.execute(mails.delete())
    return st


@pytest.fixture
def outbox(state, tmp_path):
    return Outbox(state, tmp_path / "outbox")


def files(outbox) -> list[Path]:
    return sorted(p for sub in ("new", "cur", "tmp") for p in (outbox.maildir / sub).iterdir())


def review(n: int = 1, **kw):
    return build(msgid_seed=f"review-{n}", subject=f"Re: [PATCH {n}/2] bpf: change {n}",
                 in_reply_to=f"<patch-{n}@example.com>",
                 cc=["Alexei <ast@kernel.org>", "bpf@vger.kernel.org", "jane@example.com"], **kw)


def test_queue_writes_one_maildir_file(outbox):
    msg = review()
    assert outbox.queue(msg, ["k1", "k2"], "review") is True
    (path,) = files(outbox)
    assert path.parent.name == "new"
    box = mailbox.Maildir(outbox.maildir, factory=None, create=False)
    (got,) = list(box)
    assert got["Message-ID"] == msg["Message-ID"]
    assert got.get_payload(decode=True) == msg.get_payload(decode=True)
    assert path.read_bytes() == msg.as_bytes()
    assert outbox.is_mailed("k1") and outbox.is_mailed("k2") and not outbox.is_mailed("k3")
    (row,) = outbox.pending()
    assert (row.msgid, row.status, row.kind, row.attempts, row.path) == (
        msg["Message-ID"], "queued", "review", 0, str(path))
    assert row.subject == "Re: [PATCH 1/2] bpf: change 1"
    assert json.loads(row.recipients) == [
        "jane@example.com", "ast@kernel.org", "bpf@vger.kernel.org"]


def test_queue_twice_is_one_mail(outbox, state):
    assert outbox.queue(review(), ["k1"], "review")
    # built again later (another Date), as a restarted run would
    assert outbox.queue(review(date=datetime.now(timezone.utc)), ["k1"], "review") is False
    assert len(files(outbox)) == 1
    with state.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(mails)).scalar() == 1


def test_file_left_by_a_crash_is_reused(outbox):
    # the run died after delivering the file, before its database commit
    msg = review()
    from policybot.mail.outbox import _file_name
    outbox._deliver(_file_name(msg["Message-ID"]), msg.as_bytes())
    assert outbox.queue(review(date=datetime.now(timezone.utc)), ["k1"], "review") is True
    (path,) = files(outbox)
    assert outbox.pending()[0].path == str(path)
    assert path.read_bytes() == msg.as_bytes()


def test_a_failed_transaction_leaves_no_file(outbox):
    assert outbox.queue(review(1), ["shared-key"], "review")
    # another mail about a key already mailed (a concurrent run won): nothing is kept
    assert outbox.queue(review(2), ["shared-key", "other"], "review") is False
    assert len(files(outbox)) == 1
    assert not outbox.is_mailed("other")


def test_a_failed_commit_leaves_no_file(outbox, monkeypatch):
    def broken(self):
        raise sa.exc.OperationalError("COMMIT", {}, Exception("disk I/O error"))
    monkeypatch.setattr(sa.engine.RootTransaction, "commit", broken)
    with pytest.raises(sa.exc.OperationalError):
        outbox.queue(review(), ["k1"], "review")
    monkeypatch.undo()
    assert files(outbox) == [] and not outbox.is_mailed("k1")
    assert outbox.queue(review(), ["k1"], "review") and len(files(outbox)) == 1


# -- sending over a real SMTP server on 127.0.0.1 ---------------------------------

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


def smtp_config(port: int, **kw) -> MailConfig:
    return config(smtp_host="127.0.0.1", smtp_port=port, smtp_security="none", send=True,
                  smtp_timeout=10, **kw)


@pytest.fixture(autouse=True)
def _no_smtp_env(monkeypatch):
    monkeypatch.delenv("POLICYBOT_SMTP_USER", raising=False)
    monkeypatch.delenv("POLICYBOT_SMTP_PASSWORD", raising=False)


def test_send_delivers_and_marks_sent(outbox, smtp_server):
    handler, port = smtp_server()
    msgs = [review(1), review(2, body=BODY + "Gr\u00fc\u00dfe\n")]
    for i, msg in enumerate(msgs):
        outbox.queue(msg, [f"k{i}"], "review")
    report = outbox.send(smtp_config(port))
    assert sorted(report.sent) == sorted(m["Message-ID"] for m in msgs) and report.failed == []
    assert len(handler.messages) == 2
    by_id = {email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"]: (frm, rcpt, raw)
             for frm, rcpt, raw in handler.messages}
    for msg in msgs:
        frm, rcpt, raw = by_id[msg["Message-ID"]]
        assert raw.count(b"\n") == raw.count(b"\r\n")  # no bare LF on the wire
        got = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
        assert frm == "policybot@example.org"
        assert rcpt == ["jane@example.com", "ast@kernel.org", "bpf@vger.kernel.org"]
        for header in ("From", "To", "Cc", "Subject", "Date", "In-Reply-To", "References",
                       "Auto-Submitted", "X-Mailer", "Content-Type", "Content-Transfer-Encoding"):
            assert got[header] == msg[header], header
        assert got.get_content() == msg.get_content()
    assert outbox.pending() == []
    # nothing new to send: the server sees nothing
    assert outbox.send(smtp_config(port)).sent == []
    assert len(handler.messages) == 2


def test_refusing_server_keeps_mails_queued_then_delivers_once(outbox, smtp_server, state):
    for n in (1, 2):
        outbox.queue(review(n), [f"k{n}"], "review")
    port = free_port()  # nothing listens there yet
    report = outbox.send(smtp_config(port))
    assert report.sent == [] and len(report.failed) == 2
    rows = outbox.pending()
    assert [r.status for r in rows] == ["queued", "queued"]  # the server is down, not the mails refused
    assert all(r.attempts == 1 and "refused" in r.last_error.lower() for r in rows)
    assert outbox.send(smtp_config(port)).failed  # still down
    assert [r.attempts for r in outbox.pending()] == [2, 2]

    handler, port = smtp_server(port)
    assert len(outbox.send(smtp_config(port)).sent) == 2
    assert outbox.send(smtp_config(port)).sent == []
    ids = sorted(email.message_from_bytes(raw)["Message-ID"] for _f, _r, raw in handler.messages)
    assert ids == sorted(r.msgid for r in rows)
    with state.engine.connect() as conn:
        done = list(conn.execute(sa.select(mails)))
    assert all(r.status == "sent" and r.sent is not None and r.attempts == 3 for r in done)


def test_one_rejected_mail_does_not_stop_the_others(outbox, smtp_server):
    handler, port = smtp_server()
    outbox.queue(review(1, body=BODY + "REJECT\n"), ["k1"], "review")
    outbox.queue(review(2), ["k2"], "review")
    report = outbox.send(smtp_config(port))
    assert len(report.sent) == 1 and len(handler.messages) == 1
    (failure,) = report.failed
    msgid, error = failure.msgid, failure.error
    assert "554" in error
    (row,) = outbox.pending()
    assert row.msgid == msgid and row.status == "failed" and "554" in row.last_error


def test_starttls_is_never_skipped(outbox, smtp_server):
    handler, port = smtp_server()  # plain server: no STARTTLS offered
    outbox.queue(review(), ["k1"], "review")
    cfg = config(smtp_host="127.0.0.1", smtp_port=port, smtp_security="starttls", smtp_timeout=10)
    report = outbox.send(cfg)
    assert report.sent == [] and "STARTTLS" in report.failed[0].error
    assert handler.messages == []


def test_draft_moved_to_cur_by_a_mua_is_still_sent(outbox, smtp_server):
    handler, port = smtp_server()
    outbox.queue(review(), ["k1"], "review")
    (path,) = files(outbox)
    path.rename(outbox.maildir / "cur" / (path.name + ":2,S"))
    assert len(outbox.send(smtp_config(port)).sent) == 1
    assert len(handler.messages) == 1


# -- credentials -----------------------------------------------------------------


def auth_file(tmp_path, mode: int, password: str = "s3cret-pass") -> Path:
    path = tmp_path / "smtp-auth"
    path.write_text(f"policybot\n{password}\n")
    path.chmod(mode)
    return path


def test_auth_file_readable_by_others_is_refused(outbox, tmp_path, smtp_server):
    handler, port = smtp_server()
    outbox.queue(review(), ["k1"], "review")
    path = auth_file(tmp_path, 0o644)
    with pytest.raises(ConfigError, match="0600") as e:
        outbox.send(smtp_config(port, smtp_auth_file=str(path)))
    assert "s3cret-pass" not in str(e.value)
    assert handler.messages == [] and outbox.pending()[0].attempts == 0


def test_auth_from_file_and_environment(outbox, tmp_path, smtp_server, monkeypatch):
    handler, port = smtp_server(authenticator=authenticator(b"policybot", b"s3cret-pass"),
                                auth_require_tls=False, auth_required=True)
    outbox.queue(review(1), ["k1"], "review")
    path = auth_file(tmp_path, 0o600)
    assert len(outbox.send(smtp_config(port, smtp_auth_file=str(path))).sent) == 1

    outbox.queue(review(2), ["k2"], "review")
    monkeypatch.setenv("POLICYBOT_SMTP_USER", "policybot")
    monkeypatch.setenv("POLICYBOT_SMTP_PASSWORD", "s3cret-pass")
    assert len(outbox.send(smtp_config(port)).sent) == 1
    assert len(handler.messages) == 2


def test_wrong_password_keeps_mail_and_secret_out_of_errors(outbox, smtp_server, caplog, monkeypatch):
    handler, port = smtp_server(authenticator=authenticator(b"policybot", b"right"),
                                auth_require_tls=False, auth_required=True)
    outbox.queue(review(), ["k1"], "review")
    monkeypatch.setenv("POLICYBOT_SMTP_USER", "policybot")
    report = outbox.send(smtp_config(port), smtp_password="wrong-Pa55")
    assert report.sent == [] and len(report.failed) == 1
    (row,) = outbox.pending()
    assert "535" in row.last_error
    assert "wrong-Pa55" not in row.last_error and "wrong-Pa55" not in caplog.text
    assert handler.messages == []


def test_a_refused_connection_with_credentials_names_the_exception(outbox, monkeypatch):
    """Masking hides the secret, not the error: with credentials set, a server that is down
    reads "ConnectionRefusedError: Connection refused", not "***: Connection refused"."""
    outbox.queue(review(), ["k1"], "review")
    monkeypatch.setenv("POLICYBOT_SMTP_USER", "policybot")
    report = outbox.send(smtp_config(free_port()), smtp_password="Pa55-word-long-enough")
    assert report.sent == [] and len(report.failed) == 1
    (row,) = outbox.pending()
    assert row.last_error.startswith("ConnectionRefusedError: "), row.last_error
    assert "Pa55" not in row.last_error


def test_credentials_without_tls_only_to_loopback(outbox, monkeypatch):
    outbox.queue(review(), ["k1"], "review")
    monkeypatch.setenv("POLICYBOT_SMTP_USER", "u")
    monkeypatch.setenv("POLICYBOT_SMTP_PASSWORD", "p")
    with pytest.raises(ConfigError, match="without TLS"):
        outbox.send(config(smtp_host="smtp.example.org", smtp_port=25, smtp_security="none"))


# -- issue 11: permanent and temporary refusals, one sender, failures on both databases -----------------


class _Refusing:
    """aiosmtpd handler answering DATA with ``code`` (a 4xx or 5xx reply)."""

    def __init__(self, code: str):
        self.code, self.tries = code, 0

    async def handle_DATA(self, server, session, envelope):
        self.tries += 1
        return self.code


def _start(handler):
    from aiosmtpd.controller import Controller
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller


def test_a_5xx_refusal_fails_the_mail_for_good_until_retried(outbox):
    handler = _Refusing("550 5.7.1 no bots here")
    controller = _start(handler)
    try:
        outbox.queue(review(1), ["k1"], "review")
        report = outbox.send(smtp_config(controller.port))
        assert [f.error for f in report.failed] == ["SMTPDataError: 550 5.7.1 no bots here"]
        (row,) = outbox.pending()
        assert (row.status, row.attempts) == ("failed", 1)
        assert outbox.send(smtp_config(controller.port)).failed == [] and handler.tries == 1
        report = outbox.send(smtp_config(controller.port), retry_failed=True)
        assert handler.tries == 2 and len(report.failed) == 1
    finally:
        controller.stop()


def test_a_4xx_refusal_backs_off_doubling_with_a_cap(outbox, monkeypatch):
    from policybot.mail import outbox as outbox_module
    handler = _Refusing("451 4.3.0 try again later")
    controller = _start(handler)
    clock = [datetime(2030, 1, 1)]
    monkeypatch.setattr(outbox_module, "_now", lambda: clock[0])
    try:
        outbox.queue(review(1), ["k1"], "review")
        waits = []
        for _ in range(12):
            outbox.send(smtp_config(controller.port))
            (row,) = outbox.pending()
            assert row.status == "queued"
            waits.append((row.next_attempt - clock[0]).total_seconds())
            tries = handler.tries
            outbox.send(smtp_config(controller.port))  # not due yet: nothing is sent
            assert handler.tries == tries
            clock[0] = row.next_attempt
        assert waits[:4] == [300, 600, 1200, 2400] and max(waits) == 24 * 3600 and handler.tries == 12
    finally:
        controller.stop()


def test_failures_are_recorded_and_cleared(state):
    import datetime as dt
    state.clear_failure("message", "m@example.com")
    state.record_failure("message", "m@example.com", "first reason", dt.date(2024, 1, 1))
    state.record_failure("message", "m@example.com", "second reason", dt.date(2024, 1, 8))
    got = state.failure("message", "m@example.com")
    assert (got.reason, got.day) == ("second reason", dt.date(2024, 1, 8))
    state.record_failure("tree", "x" * 600, "long key", dt.date(2024, 1, 8), head="a" * 40)
    assert state.failure("tree", "x" * 600).head == "a" * 40
    state.clear_failure("message", "m@example.com")
    state.clear_failure("tree", "x" * 600)
    assert state.failure("message", "m@example.com") is None and state.failures() == []
