"""The outbox: a Maildir of drafts plus the ``mails``/``mailed_keys`` rows.

SQLAlchemy is imported by the methods that write or list rows: asking whether a
key went out already (``is_mailed``) goes through State, which reads an SQLite
state with the standard library.

A mail is a file in ``new/`` named after its Message-ID, so a message queued
again after a crash (file written, rows not committed) finds its file and
never becomes two. The rows are the once-only record: a key in
``mailed_keys`` is never mailed about again. Sending is separate and explicit;
a mail is marked sent only once the SMTP server accepted it.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import ipaddress
import json
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

from .. import bounded
from ..errors import ConfigError, InputError
from ..state import State
from .message import MailConfig, clean_header

if TYPE_CHECKING:
    import smtplib

log = logging.getLogger(__name__)

PENDING = ("queued", "failed")
SEND_LOCK_WAIT = 300.0  # seconds a sender waits for another one to finish
BACKOFF_FIRST = 300  # seconds after the first temporary refusal of a mail
BACKOFF_MAX = 24 * 3600


@dataclass(frozen=True)
class SendFailure:
    """A mail the server did not take this time."""
    msgid: str
    error: str


@dataclass
class SendReport:
    sent: list[str] = field(default_factory=list)  # Message-IDs
    failed: list[SendFailure] = field(default_factory=list)


class Outbox:
    def __init__(self, state: State, maildir: str | os.PathLike):
        self.state = state
        self.maildir = Path(maildir)
        for sub in ("tmp", "new", "cur"):
            (self.maildir / sub).mkdir(mode=0o700, parents=True, exist_ok=True)

    def is_mailed(self, key: str) -> bool:
        return self.state.is_mailed(key)

    def reply_about(self, key_prefix: str) -> str | None:
        """The Message-ID of the newest mail drafted about a key starting with ``key_prefix``
        (a patch's replies are keyed ``review:MSGID:...``), None when there is none."""
        import sqlalchemy as sa
        from ..schema import mailed_keys, mails
        q = (sa.select(mails.c.msgid).join(mailed_keys, mailed_keys.c.msgid == mails.c.msgid)
             .where(mailed_keys.c.key.startswith(key_prefix, autoescape=True))
             .order_by(mails.c.created.desc(), mails.c.msgid.desc()).limit(1))
        with self.state.engine.connect() as conn:
            return conn.execute(q).scalar()

    def reply_to(self, patch_msgid: str, key_prefix: str) -> str | None:
        """Our newest reply to the patch ``patch_msgid``, whatever it is about: one with a key
        starting with ``key_prefix`` (a review: ``review:MSGID:``), else one whose keys are
        only questions (``question:TREE:NAME``: once per tree, the patch not in the key) and
        whose In-Reply-To is the patch. None when there is none."""
        found = self.reply_about(key_prefix)
        if found is not None:
            return found
        import email.parser
        import email.policy
        import sqlalchemy as sa
        from ..schema import mailed_keys, mails
        q = (sa.select(mails.c.msgid, mails.c.path, mails.c.created).distinct()
             .join(mailed_keys, mailed_keys.c.msgid == mails.c.msgid)
             .where(mailed_keys.c.key.startswith("question:", autoescape=True))
             .order_by(mails.c.created.desc(), mails.c.msgid.desc()))
        want = f"<{patch_msgid.strip().strip('<>')}>"
        with self.state.engine.connect() as conn:
            rows = list(conn.execute(q))
        for row in rows:
            try:
                head = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(self._read(row))
            except OSError:
                continue  # a draft gone from the outbox: it can be pointed at no more
            if str(head.get("In-Reply-To", "")).strip() == want:
                return row.msgid
        return None

    def pending(self) -> list:
        import sqlalchemy as sa
        from ..schema import mails
        q = sa.select(mails).where(mails.c.status.in_(PENDING)).order_by(mails.c.created, mails.c.msgid)
        with self.state.engine.connect() as conn:
            return list(conn.execute(q))

    def replies_today(self, addr: str) -> int:
        """Reviews drafted since midnight (UTC) with ``addr`` among their recipients."""
        import sqlalchemy as sa
        from ..schema import mails
        midnight = _now().replace(hour=0, minute=0, second=0, microsecond=0)
        q = sa.select(sa.func.count()).select_from(mails).where(
            mails.c.kind == "review", mails.c.created >= midnight,
            sa.func.lower(mails.c.recipients).contains(json.dumps(addr.lower()), autoescape=True))
        with self.state.engine.connect() as conn:
            return conn.execute(q).scalar_one()

    def queue(self, msg: EmailMessage, keys: list[str], kind: str, tree: str | None = None) -> bool:
        """Draft ``msg`` about ``keys``; False when this Message-ID was queued before
        (or a concurrent run recorded it or one of the keys first)."""
        import sqlalchemy as sa
        from ..schema import mailed_keys, mails
        msgid = str(msg.get("Message-ID", "")).strip()
        if not msgid:
            raise InputError("a mail without Message-ID cannot be queued")
        if not 0 < len(kind) <= mails.c.kind.type.length:
            raise InputError(f"mail kind {kind!r} must be 1 to {mails.c.kind.type.length} characters")
        name = _file_name(msgid)
        data = msg.as_bytes()
        recipients = envelope_recipients(msg)
        created = False
        with self.state.engine.connect() as conn:
            txn = conn.begin()
            try:
                if conn.execute(sa.select(mails.c.msgid).where(mails.c.msgid == msgid)).first():
                    txn.rollback()
                    return False
                existing = self._find(name)  # left by a run that died before its commit
                path = existing or self.maildir / "new" / name
                conn.execute(mails.insert().values(
                    msgid=msgid, kind=kind, status="queued", path=str(path), tree=tree,
                    subject=str(msg.get("Subject", "")), recipients=json.dumps(recipients),
                    created=_now(), attempts=0))
                rows = [{"key": k, "msgid": msgid} for k in dict.fromkeys(keys)]
                if rows:
                    conn.execute(mailed_keys.insert(), rows)
                if existing is None:
                    created = self._deliver(name, data)
                txn.commit()
            except BaseException as e:
                txn.rollback()
                if created:  # never leave a draft the database does not know
                    path.unlink(missing_ok=True)
                if isinstance(e, sa.exc.IntegrityError):
                    return False
                raise
        return True

    def send(self, config: MailConfig, smtp_password: str | None = None, retry_failed: bool = False,
             lock_wait: float = SEND_LOCK_WAIT) -> SendReport:
        """Deliver every mail that is due over one SMTP connection.

        One sender at a time per state (the ``send`` lock, whoever sends: run,
        outbox --send, review --send, the scheduler), and the rows are read
        inside it: two senders never deliver one mail twice. A permanent
        refusal (5xx) fails the mail for good; a temporary one (4xx) backs off.
        """
        with self.state.lock("send", wait=lock_wait):
            if retry_failed:
                self.retry_failed()
            return self._send(config, smtp_password)

    def retry_failed(self) -> int:
        """Queue again every mail that failed for good (after the operator fixed the cause)."""
        from ..schema import mails
        with self.state.engine.begin() as conn:
            return conn.execute(mails.update().where(mails.c.status == "failed").values(
                status="queued", next_attempt=None)).rowcount

    def due(self) -> list:
        import sqlalchemy as sa
        from ..schema import mails
        now = _now()
        q = sa.select(mails).where(mails.c.status == "queued",
                                   sa.or_(mails.c.next_attempt.is_(None), mails.c.next_attempt <= now)) \
            .order_by(mails.c.created, mails.c.msgid)
        with self.state.engine.connect() as conn:
            return list(conn.execute(q))

    def _send(self, config: MailConfig, smtp_password: str | None) -> SendReport:
        import smtplib  # only sending needs it
        report = SendReport()
        rows = self.due()
        if not rows:
            return report
        user, password = smtp_credentials(config, smtp_password)
        secrets = _secrets(user, password)
        try:
            smtp = _connect(config, user, password)
        except (OSError, smtplib.SMTPException) as e:
            error = _describe(e, secrets)  # the server or the login, not the mails: next run
            for row in rows:
                self._failed(row, error, report, permanent=False, backoff=False)
            return report
        try:
            for i, row in enumerate(rows):
                try:
                    data = _crlf(self._read(row))
                except OSError as e:
                    self._failed(row, f"cannot read the draft: {e}", report, permanent=True)
                    continue
                try:
                    refused = smtp.sendmail(config.sender.addr_spec, json.loads(row.recipients), data)
                except smtplib.SMTPException as e:
                    if isinstance(e, smtplib.SMTPServerDisconnected):
                        self._fail_rest(rows[i:], _describe(e, secrets), report)
                        break
                    self._failed(row, _describe(e, secrets), report, permanent=_permanent(e))  # this mail only
                    continue
                except OSError as e:  # (SMTPException is an OSError too: it goes first)
                    self._fail_rest(rows[i:], _describe(e, secrets), report)
                    break
                self._sent(row.msgid, refused)
                report.sent.append(row.msgid)
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
        return report

    # -- internals -------------------------------------------------------------

    def _find(self, name: str) -> Path | None:
        """The draft's file, in new/ or, once a MUA has seen it, in cur/ with flags."""
        for candidate in (self.maildir / "new" / name, self.maildir / "cur" / name):
            if candidate.exists():
                return candidate
        found = sorted((self.maildir / "cur").glob(name + ":*"))
        return found[0] if found else None

    def _deliver(self, name: str, data: bytes) -> bool:
        """Maildir delivery: write and sync in tmp/, then link into new/."""
        tmp = self.maildir / "tmp" / f"{name}.{os.getpid()}.{os.urandom(4).hex()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, self.maildir / "new" / name)
            except FileExistsError:
                return False  # a concurrent run delivered the same message
            except OSError:  # a file system without hard links
                os.rename(tmp, self.maildir / "new" / name)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(self.maildir / "new")
        return True

    def _read(self, row) -> bytes:
        path = Path(row.path)
        if not path.exists():
            path = self._find(path.name.split(":")[0])
            if path is None:
                raise FileNotFoundError(f"the draft of {row.msgid} is no longer in the outbox {self.maildir}")
        return path.read_bytes()

    def _sent(self, msgid: str, refused: dict) -> None:
        from ..schema import mails
        note = None
        if refused:  # accepted for the others: it is sent, but say who did not get it
            note = "refused recipients: " + ", ".join(
                f"{addr} ({code})" for addr, (code, _msg) in sorted(refused.items()))
        with self.state.engine.begin() as conn:
            conn.execute(mails.update().where(mails.c.msgid == msgid).values(
                status="sent", sent=_now(), attempts=mails.c.attempts + 1, last_error=note))

    def _fail_rest(self, rows, error: str, report: SendReport) -> None:
        """The connection is gone: these mails wait for the next run."""
        for row in rows:
            self._failed(row, error, report, permanent=False, backoff=False)

    def _failed(self, row, error: str, report: SendReport, permanent: bool, backoff: bool = True) -> None:
        """A permanent refusal fails the mail for good; a temporary one keeps it queued,
        refused mails waiting BACKOFF_FIRST, doubling per attempt, up to BACKOFF_MAX."""
        from ..schema import mails
        values = {"attempts": mails.c.attempts + 1, "last_error": error}
        if permanent:
            values["status"] = "failed"
        elif backoff:
            delay = min(BACKOFF_FIRST * 2 ** min(row.attempts, 16), BACKOFF_MAX)
            values["next_attempt"] = _now() + timedelta(seconds=delay)
        with self.state.engine.begin() as conn:
            conn.execute(mails.update().where(mails.c.msgid == row.msgid).values(**values))
        report.failed.append(SendFailure(row.msgid, error))
        log.warning("mail %s not sent: %s", row.msgid, error)


def envelope_recipients(msg: EmailMessage) -> list[str]:
    """To and Cc addresses, each once (case-insensitively)."""
    values = [str(v) for h in ("To", "Cc") for v in msg.get_all(h, [])]
    seen: dict[str, str] = {}
    for _name, addr in email.utils.getaddresses(values):
        if "@" in addr:
            seen.setdefault(addr.lower(), addr)
    return list(seen.values())


def smtp_credentials(config: MailConfig, password: str | None = None) -> tuple[str | None, str | None]:
    """(user, password) from the arguments, the environment, then ``smtp_auth_file``.

    The file holds the user on its first line and the password on its second,
    and must be readable by its owner only.
    """
    user = os.environ.get("POLICYBOT_SMTP_USER") or None
    password = password or os.environ.get("POLICYBOT_SMTP_PASSWORD") or None
    if config.smtp_auth_file:
        file_user, file_password = _read_auth_file(Path(config.smtp_auth_file))
        user = user or file_user
        password = password or file_password
    if bool(user) != bool(password):
        raise ConfigError("SMTP authentication needs both a user and a password "
                          "(POLICYBOT_SMTP_USER/POLICYBOT_SMTP_PASSWORD or mail.smtp_auth_file)")
    if password and config.smtp_security == "none" and not _is_loopback(config.smtp_host):
        raise ConfigError(f"refusing to send SMTP credentials to {config.smtp_host} without TLS "
                          "(mail.smtp_security = none)")
    return user, password


def probe_smtp(config: MailConfig) -> str:
    """Connect to the SMTP server as a send would (EHLO, STARTTLS or TLS, AUTH when credentials
    are set) and leave without sending: what was done, in one line. Raises InputError naming
    the server and what failed (never a credential)."""
    import smtplib
    user, password = smtp_credentials(config)
    where = f"{config.smtp_host}:{config.smtp_port}"
    try:
        smtp = _connect(config, user, password)
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            pass
    except (OSError, smtplib.SMTPException) as e:
        raise InputError(f"SMTP server {where}: {_describe(e, _secrets(user, password))}") from None
    steps = ["EHLO", {"starttls": "STARTTLS", "tls": "TLS", "none": "no TLS"}[config.smtp_security]]
    steps.append(f"AUTH as {user}" if user else "no AUTH")
    return f"SMTP server {where}: connected, {', '.join(steps)}; nothing sent"


def _read_auth_file(path: Path) -> tuple[str | None, str | None]:
    lines = bounded.read_secret(path, "SMTP credentials")
    if len(lines) < 2 or not lines[0].strip() or not lines[1]:
        raise ConfigError(f"{path}: expected the SMTP user on line 1 and the password on line 2")
    return lines[0].strip(), lines[1]


def _connect(config: MailConfig, user: str | None, password: str | None) -> smtplib.SMTP:
    import smtplib
    import ssl
    context = ssl.create_default_context()
    if config.smtp_security == "tls":
        smtp = smtplib.SMTP_SSL(config.smtp_host, config.smtp_port, timeout=config.smtp_timeout,
                                context=context)
    else:
        smtp = smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.smtp_timeout)
    try:
        smtp.ehlo()
        if config.smtp_security == "starttls":
            smtp.starttls(context=context)  # fails when not offered: never falls back to plain text
            smtp.ehlo()
        if user:
            smtp.login(user, password)
    except BaseException:
        smtp.close()
        raise
    return smtp


def _permanent(e: smtplib.SMTPException) -> bool:
    """A 5xx reply refuses this mail for good (RFC 5321 4.2.1); 4xx and the rest may pass later."""
    import smtplib  # only sending needs it
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        return bool(e.recipients) and all(code >= 500 for code, _ in e.recipients.values())
    return isinstance(e, smtplib.SMTPResponseException) and 500 <= e.smtp_code < 600


def _secrets(user: str | None, password: str | None) -> list[str]:
    """What must never be shown: the password, and the AUTH blobs a server may echo back."""
    if not password:
        return []
    out = [password]
    for blob in (f"\0{user}\0{password}", f"{user}\0{user}\0{password}", user or "", password):
        if blob:
            out.append(base64.b64encode(blob.encode("utf-8")).decode("ascii"))
    return sorted(set(out), key=len, reverse=True)


_BASE64_TOKEN = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def _describe(e: BaseException, secrets: list[str] | str | None) -> str:
    """One line about a failure, without credentials even if a server echoed them."""
    import smtplib  # only sending needs it
    if isinstance(secrets, str):
        secrets = [secrets]
    if isinstance(e, smtplib.SMTPAuthenticationError):
        # the reply to AUTH may quote the blob we sent (base64 of user and password)
        return f"{type(e).__name__}: {e.smtp_code} authentication failed (the server's reply is not shown)"
    if isinstance(e, smtplib.SMTPResponseException):
        reply = e.smtp_error
        text = f"{e.smtp_code} {reply.decode('utf-8', 'replace') if isinstance(reply, bytes) else reply}"
    elif isinstance(e, smtplib.SMTPRecipientsRefused):
        text = "all recipients refused: " + ", ".join(sorted(e.recipients))
    elif isinstance(e, OSError) and e.strerror:
        text = e.strerror
    else:
        text = str(e) or type(e).__name__
    text = " ".join(text.split())
    for secret in secrets or ():
        text = text.replace(secret, "***")
    if secrets:
        text = _BASE64_TOKEN.sub("***", text)
    # the exception's name is policybot's words, not the server's: never masked
    return clean_header(f"{type(e).__name__}: {text}")[:500]


def _file_name(msgid: str) -> str:
    # Unique per message as Maildir wants, and the same for the same message: crash safety.
    return "policybot-" + hashlib.sha256(msgid.encode("utf-8")).hexdigest()[:40]


def _crlf(data: bytes) -> bytes:
    # smtplib does not fix line ends of bytes; bare LF is refused by strict servers
    return re.sub(rb"\r?\n", b"\r\n", data)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
