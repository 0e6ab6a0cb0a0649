"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd), and what it accepted."""

import email
import email.policy
import socket


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


def free_port() -> int:
    """aiosmtpd 1.4.6 cannot bind port 0: pick a free port on loopback first."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
