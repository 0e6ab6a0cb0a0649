"""Mail in tests: a real SMTP server on 127.0.0.1 (aiosmtpd) and what it accepted (SmtpStore,
free_port, authenticator; conftest's smtp_server fixture starts it), and the Maildir outbox read
back: its files (outbox_files, parse_mail, outbox_mails) and the text of a mail (body, flat,
counts, check_body)."""

from __future__ import annotations

import email
import email.message
import email.policy
import mailbox
import re
import socket
from pathlib import Path

from policybot.mail.message import check_no_trailers

BOT = "policybot <policybot@example.org>"  # the From of every test configuration


class SmtpStore:
    """aiosmtpd handler: every accepted envelope, in order; refuses mail containing REJECT."""

    def __init__(self):
        self.envelopes: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        if b"REJECT" in envelope.original_content:
            return "554 5.6.0 rejected by policy"
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 OK"

    @property
    def messages(self) -> list[tuple[str, list[str], bytes]]:
        return self.envelopes

    def msgids(self) -> list[str]:
        return [email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"]
                for _, _, raw in self.envelopes]


def authenticator(user: bytes, password: bytes):
    """aiosmtpd's authenticator= that takes ``user`` with ``password`` only (others get 535)."""
    from aiosmtpd.smtp import AuthResult

    def check(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == user and auth_data.password == password
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535
    return check


def free_port() -> int:
    """aiosmtpd 1.4.6 cannot bind port 0: pick a free port on loopback first."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the outbox, read back -----------------------------------------------------------------------


def outbox_files(maildir: Path) -> list[Path]:
    return sorted((maildir / "new").iterdir()) + sorted((maildir / "cur").iterdir())


def parse_mail(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def outbox_mails(maildir: Path) -> dict[str, email.message.EmailMessage]:
    """Message-ID -> message, for every file in the Maildir; a Message-ID twice fails."""
    out: dict[str, email.message.EmailMessage] = {}
    if not maildir.exists():  # nothing ever drafted
        return out
    box = mailbox.Maildir(maildir, factory=None, create=False)
    for key in box.keys():
        msg = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        msgid = msg["Message-ID"]
        assert msgid and msgid not in out, f"{msgid} is in the outbox twice"
        out[msgid] = msg
    return out


# -- the text of a mail ----------------------------------------------------------------------------


def body(msg) -> str:
    return msg.get_content()


def flat(text: str) -> str:
    """Text with every run of white space (line wraps) made one space."""
    return " ".join(text.split())


def counts(text: str) -> dict[str, int]:
    """'N violations, N warnings, N notices, N info' of a report (wrapped anywhere)."""
    found = dict((w, int(n)) for n, w in re.findall(r"(\d+)\s+(violation|warning|notice|info)s?\b", text))
    assert set(found) == {"violation", "warning", "notice", "info"}, text
    return found


def check_body(body: str) -> None:
    """Lines of at most 72 characters (quoted lines aside), and none that b4 would read as a trailer."""
    for line in body.split("\n"):
        if not line.startswith("> "):
            assert len(line) <= 72, line
    assert check_no_trailers(body) == []
