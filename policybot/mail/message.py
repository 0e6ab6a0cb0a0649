"""Every mail policybot writes is built here, the way maintainers accept bot mail
(docs/operators.md: Limits and etiquette): text/plain utf-8, 72 columns, a deterministic
Message-ID, RFC 3834 ``Auto-Submitted``, a bot signature, no trailer-shaped
line, and header values that input cannot break.

Nothing here depends on process-wide email state: ``import b4`` re-registers
the utf-8 charset (8-bit bodies, unencoded headers), so the transfer encoding
is chosen explicitly and headers go through the ``email.policy`` folder, which
does not consult that registry.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
import textwrap
from dataclasses import dataclass
from datetime import datetime, timezone
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy

from .. import __version__
from ..addresses import dedupe
from ..templating import environment
from ..errors import ConfigError, InputError

WIDTH = 72
SECURITY = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}

# b4's own trailer pattern (LoreMessage.find_trailers, 0.16.0): any line of
# this shape in a reply is picked up and applied to the patch.
TRAILER = re.compile(r"^\s*(\w\S+):\s+(\S.*)")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S", re.I)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")
# Set by build_message itself; extra_headers may not replace them.
_OWN_HEADERS = {"from", "to", "cc", "subject", "date", "message-id", "in-reply-to",
                "references", "auto-submitted", "x-mailer", "mime-version",
                "content-type", "content-transfer-encoding"}
_ID_HEADERS = {"in-reply-to", "references"}
_SMTP_LINE = 998  # RFC 5321 limit on a line, in octets, without CRLF


@dataclass
class MailConfig:
    from_addr: str = "policybot <policybot@localhost>"
    operator_contact: str = ""  # address or URL for the signature; "" = the From address
    msgid_domain: str = ""  # "" = the From address's domain
    list_addr: str = "bpf@vger.kernel.org"
    smtp_host: str = "localhost"
    smtp_port: int = 0  # 0 = the usual port for smtp_security
    smtp_security: str = "starttls"
    smtp_auth_file: str | None = None
    send: bool = False  # drafts only unless the operator asks
    smtp_timeout: float = 60.0

    def __post_init__(self):
        if self.smtp_security not in SECURITY:
            raise ConfigError(f"mail.smtp_security must be one of {', '.join(SECURITY)}, "
                              f"not {self.smtp_security!r}")
        if not self.smtp_port:
            self.smtp_port = DEFAULT_PORTS[self.smtp_security]
        sender = self.sender  # raises ConfigError when unusable
        if not self.msgid_domain:
            self.msgid_domain = sender.domain
        if not re.fullmatch(r"[A-Za-z0-9.-]+", self.msgid_domain):
            raise ConfigError(f"mail.msgid_domain {self.msgid_domain!r} is not a domain name")

    @property
    def operator_addr(self) -> str:
        """Where the operator's own mail goes (a run's faults): mail.operator when it is an address,
        else the bot's From address."""
        contact = self.operator_contact.strip()
        return contact if "@" in contact and "://" not in contact else self.from_addr

    @property
    def sender(self) -> Address:
        try:
            found = _addresses([self.from_addr], "mail.from")
        except InputError as e:
            raise ConfigError(str(e)) from None
        if len(found) != 1:
            raise ConfigError(f"mail.from must be exactly one address, not {self.from_addr!r}")
        return found[0]


def message_id(config: MailConfig, seed: str) -> str:
    """The same seed gives the same Message-ID on every run: a resent mail is one message."""
    digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()[:32]
    return f"<policybot-{digest}@{config.msgid_domain}>"


def build_message(config: MailConfig, *, to: list[str], cc: list[str], subject: str, body: str,
                  msgid_seed: str, in_reply_to: str | None = None, references: list[str] = (),
                  extra_headers: dict | None = None, date: datetime | None = None) -> EmailMessage:
    text = wrap_body(_clean_body(body)) + signature(config)
    bad = check_no_trailers(text)
    if bad:
        raise ValueError(f"mail body has lines b4 would apply as trailers: {bad!r}")
    if sum(1 for line in text.split("\n") if line == "-- ") != 1:
        raise ValueError("mail body has its own signature separator ('-- ')")

    msg = EmailMessage(policy=POLICY)
    msg["From"] = config.sender
    recipients = _dedupe(_addresses(to, "To"), _addresses(cc, "Cc"))
    if recipients[0]:
        msg["To"] = recipients[0]
    if recipients[1]:
        msg["Cc"] = recipients[1]
    if not recipients[0] and not recipients[1]:
        raise InputError("a mail needs at least one recipient")
    msg["Subject"] = clean_header(subject) or "(no subject)"
    msg["Date"] = email.utils.format_datetime(date or datetime.now(timezone.utc))
    msg["Message-ID"] = message_id(config, msgid_seed)
    chain = [m for m in (_msgid(r) for r in references) if m]
    parent = _msgid(in_reply_to) if in_reply_to else ""
    if parent:
        msg["In-Reply-To"] = parent
        if parent not in chain:
            chain.append(parent)
    if chain:
        msg["References"] = " ".join(dict.fromkeys(chain))
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Mailer"] = f"policybot {__version__}"
    for name, value in (extra_headers or {}).items():
        if not _HEADER_NAME.match(name) or name.lower() in _OWN_HEADERS:
            raise ValueError(f"extra header {name!r} is not allowed")
        msg[name] = clean_header(str(value))
    msg.set_content(text, subtype="plain", charset="utf-8", cte=_transfer_encoding(text))
    return msg


def signature(config: MailConfig) -> str:
    contact = clean_header(config.operator_contact) or config.sender.addr_spec
    return wrap_body(environment().get_template("signature.txt.j2").render(contact=contact))


def check_no_trailers(body: str) -> list[str]:
    """Lines of ``body`` that b4 (or patchwork's ``pw-bot:``) would read as a trailer.

    Quoted (``> ``) and suggested-tag (``| ``) lines never match: their first
    character is not a word character.
    """
    return [line for line in body.split("\n") if TRAILER.match(line)]


def wrap_body(body: str, width: int = WIDTH) -> str:
    """Wrap prose at ``width``, paragraph by paragraph.

    A paragraph (consecutive plain lines) is reflowed only when one of its
    lines is too long, so short lines written on purpose stay as they are.
    Quoted lines, ``| `` tags, indented lines (code, lists of names) and lines
    with URLs are kept whole.
    """
    out: list[str] = []
    para: list[str] = []

    def flush() -> None:
        if para and any(len(ln) > width for ln in para):
            bullet = re.match(r"(?:[-*]|\d+\.)\s+", para[0])
            out.extend(_wrap_no_trailers(" ".join(ln.strip() for ln in para), width,
                                         " " * bullet.end() if bullet else ""))
        else:
            out.extend(para)
        para.clear()

    for line in body.split("\n"):
        bullet = re.match(r"\s*(?:[-*]|\d+\.)\s+", line)
        if bullet and len(line) > width and not _URL.search(line):
            flush()  # a list item wraps on its own, under its text
            indent = line[:len(line) - len(line.lstrip())]
            out.extend(textwrap.wrap(line.strip(), width=width, initial_indent=indent,
                                     subsequent_indent=" " * bullet.end(),
                                     break_long_words=False, break_on_hyphens=False))
            continue
        keep = (not line.strip() or line.startswith((">", "| ", " ", "\t")) or line == "-- "
                or _URL.search(line))
        if keep:
            flush()
            out.append(line)
        else:
            para.append(line)
    flush()
    return "\n".join(out)


def _wrap_no_trailers(text: str, width: int, indent: str) -> list[str]:
    """textwrap, except that no line after the first starts like a trailer ("Note: x"):
    text from a tree or a patch may hold "Word: ", and b4 would apply such a line."""
    lines = textwrap.wrap(text, width=width, subsequent_indent=indent,
                          break_long_words=False, break_on_hyphens=False)
    for _ in range(len(lines) * 2):
        bad = next((i for i in range(1, len(lines)) if TRAILER.match(lines[i])), None)
        if bad is None:
            break
        head, _, last = lines[bad - 1].rpartition(" ")
        if not head.strip():
            break  # a one-word line: nothing to pull down
        rest = last + " " + " ".join(ln.strip() for ln in lines[bad:])
        lines = lines[:bad - 1] + [head] + textwrap.wrap(
            rest, width=width, initial_indent=indent, subsequent_indent=indent,
            break_long_words=False, break_on_hyphens=False)
    return lines


def clean_header(value: str) -> str:
    """A header value from input: no control characters (no CR/LF injection), one line."""
    return " ".join(_CONTROL.sub(" ", value or "").split())


# -- internals ---------------------------------------------------------------


class _Policy(EmailPolicy):
    """The default policy, except that message-id lists fold at spaces only.

    The stock folder turns a long In-Reply-To/References into RFC 2047 encoded
    words, which breaks threading in every MUA and on lore.
    """

    def fold(self, name, value):
        if name.lower() in _ID_HEADERS or _plain_subject(name, value):
            return _fold_ids(name, str(value), self.linesep)
        return super().fold(name, value)

    def fold_binary(self, name, value):
        if name.lower() in _ID_HEADERS or _plain_subject(name, value):
            return _fold_ids(name, str(value), self.linesep).encode("ascii")
        return super().fold_binary(name, value)


def _plain_subject(name: str, value) -> bool:
    """An ASCII subject folds at its spaces ("Subject: [ANN] ..." not "Subject:" + newline)."""
    return name.lower() == "subject" and str(value).isascii() and "=?" not in str(value)


POLICY = _Policy(max_line_length=78, linesep="\n", cte_type="8bit", utf8=False)


def _fold_ids(name: str, value: str, linesep: str) -> str:
    lines = [f"{name}:"]
    for token in value.split():
        if len(lines[-1]) + 1 + len(token) > 78 and lines[-1] != f"{name}:":
            lines.append("")
        lines[-1] += " " + token
    return linesep.join(lines) + linesep


MAX_MSGID = 250  # longer ids are no real mailer's: such a one cannot be folded under 998 octets


def _msgid(value: str | None) -> str:
    """``<id>`` from input, or "" when it cannot be a valid header value (then it is dropped)."""
    core = re.sub(r"[\s<>]", "", _CONTROL.sub("", value or ""))
    if core and not core.isascii():
        raise InputError(f"Message-ID {value!r} is not ASCII")
    if len(core) > MAX_MSGID:
        return ""
    return f"<{core}>" if core else ""


def _addresses(values, what: str) -> list[Address]:
    if isinstance(values, str):
        values = [values]
    out = []
    for name, addr in email.utils.getaddresses([clean_header(v) for v in values]):
        if not addr and not name:
            continue
        if "=?" in name:  # an RFC 2047 name from a parsed header: store it decoded
            name = str(make_header(decode_header(name)))
        addr = clean_header(addr)
        if "@" not in addr or not addr.isascii():
            raise InputError(f"{what}: {addr or name!r} is not a usable mail address")
        try:
            out.append(Address(display_name=clean_header(name), addr_spec=addr))
        except (ValueError, IndexError) as e:
            raise InputError(f"{what}: {addr!r} is not a usable mail address ({e})") from None
    return out


def _dedupe(to: list[Address], cc: list[Address]) -> tuple[list[Address], list[Address]]:
    """Everyone once, at their first place (To before Cc)."""
    to = dedupe(to)
    return to, dedupe(cc, exclude=to)


def _clean_body(body: str) -> str:
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    body = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", body)
    return body.rstrip("\n") + "\n\n"


def _transfer_encoding(text: str) -> str:
    """7bit for ASCII, 8bit otherwise (as git send-email and b4 send); quoted-printable
    only when a line would be too long for SMTP. Never base64, never the charset registry."""
    if any(len(line.encode("utf-8")) > _SMTP_LINE for line in text.split("\n")):
        return "quoted-printable"
    return "7bit" if text.isascii() else "8bit"
