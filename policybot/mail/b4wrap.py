"""The only module that touches b4 (pinned to 0.16.0: b4 has no stable Python API).

b4 keeps its configuration in module globals and some of its paths call
``sys.exit``; everything here configures it explicitly (no user git config,
no network: mail/inbox.py fetches threads, bounded), points its cache at policybot's
state directory, and turns its failures into ``InputError``.

What leaves this module is plain data (``Series``, ``Patch``), never b4 objects.
"""

from __future__ import annotations

import email.errors
import email.header
import email.headerregistry
import email.message
import email.parser
import email.policy
import email.utils
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import bounded
from ..errors import InputError
from .inbox import Inbox

B4_VERSION = "0.16.0"
DEFAULT_INBOX = "https://lore.kernel.org/all"
_DIFF_START = re.compile(r"^diff --git ", re.M)
_SIG = re.compile(r"^-- ?$", re.M)
# RFC 5322 caps a line at 998 characters. b4 reads every line of a message's text part (the diff's
# too) for "Name: value" trailers, with regular expressions whose time grows with the cube of a
# long line's length: a longer line shaped like a trailer is hostile input, refused before b4 sees it
MAX_TRAILER_LINE = 998
_TRAILER_SHAPED = re.compile(r"\s*\w\S+:\s+\S")  # b4's find_trailers test, anchored: linear time
# "Name-Like: value" lines of a commit message (b4 reads a patch's own trailers only for replies)
_TRAILER = re.compile(r"^([A-Za-z][\w-]*-by|Fixes|Link|Cc):[ \t]*(\S.*?)[ \t]*$", re.M)


@dataclass(frozen=True)
class Trailer:
    """A ``Name: value`` trailer; ``sender`` is the From address of the reply that gave it."""
    name: str
    value: str
    sender: str = ""  # "" for a trailer of the patch itself


@dataclass(frozen=True)
class Patch:
    msgid: str
    subject: str  # the full subject, "[PATCH v2 3/7] bpf: ..."
    counter: int
    expected: int
    revision: int
    author_name: str
    author_email: str
    reply_to: str  # "" when the mail has none
    to: tuple[str, ...]
    cc: tuple[str, ...]
    references: tuple[str, ...]  # msgids this patch replies to, oldest first
    diff: str  # the unified diff of the patch, "" if it carries none
    commit_message: str
    trailers: tuple[Trailer, ...]  # from the patch and its follow-ups
    date: str
    reply_trailers: tuple[Trailer, ...] = ()  # each trailer a reply gave the patch, with its sender
    automated: str = ""  # why this is mail from a machine (RFC 3834, a DSN), "" when it is not
    # who sent the mail (its From header): the author above, unless the body starts with the
    # author's own "From:" line, as git format-patch writes it for a patch by someone else
    sender_name: str = ""
    sender_email: str = ""
    preamble: str = ""  # the body before the diff: commit message, "---", notes and diffstat

    def as_patch_file(self) -> str:
        """The patch as ``git format-patch`` wrote it, as far as the mail tells (get_maintainer.pl
        reads the headers' and the commit message's words too)."""
        sender = format_address(self.sender_name or self.author_name, self.sender_email or self.author_email)
        return f"From: {sender}\nSubject: {self.subject}\n\n{self.preamble}{self.diff}"


@dataclass
class Series:
    revision: int
    subject: str
    author: str
    cover: Patch | None
    patches: list[Patch]
    base_commit: str | None
    missing: list[int] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # messages that are not part of the series


def _b4(state_dir: str | os.PathLike | None):
    """Import and configure b4 for one call: no network (mail/inbox.py fetches)."""
    if state_dir:
        cache = Path(state_dir) / "b4"
        cache.mkdir(parents=True, exist_ok=True)
        os.environ["XDG_CACHE_HOME"] = str(cache / "cache")
        os.environ["XDG_DATA_HOME"] = str(cache / "data")
    import b4

    if b4.__VERSION__ != B4_VERSION:
        raise InputError(f"b4 {b4.__VERSION__} is installed; policybot is tested with b4 {B4_VERSION}")
    logging.getLogger("b4").setLevel(logging.CRITICAL)
    config = dict(b4.DEFAULT_CONFIG)
    config["midmask"] = DEFAULT_INBOX + "/%s"
    b4.MAIN_CONFIG = config
    b4.can_network = False
    b4.LORENODE = None  # rebuilt from midmask on next use
    return b4


def read_messages(path: str | os.PathLike | None = None, data: bytes | None = None,
                  state_dir=None, skipped: list[str] | None = None) -> list[email.message.EmailMessage]:
    """Messages from an mbox file, a Maildir, or raw mbox bytes (stdin), each file read
    within limits.max_input_bytes. A Maildir entry that cannot be read (not a regular file,
    too large) is left out and said in ``skipped``; the others are read."""
    b4 = _b4(state_dir)
    try:
        if data is None:
            p = Path(path)
            if not p.exists():
                raise InputError(f"{p}: no such file or directory")
            if p.is_dir():
                return _maildir(b4, p, skipped if skipped is not None else [])
            data = bounded.read_input(p)
        if data[:5] and data[:5] != b"From ":
            # not an mbox: a single message (as saved by a MUA) is accepted as is
            msgs = b4.mailsplit_bytes(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" + data)
            return [m for m in msgs if m.get("Message-ID")]
        msgs = b4.mailsplit_bytes(data)
    except SystemExit:
        raise InputError(f"{path or '<stdin>'}: b4 could not read the messages") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{path or '<stdin>'}: cannot read messages: {e}") from None
    return [m for m in msgs if m is not None]


def _maildir(b4, path: Path, skipped: list[str]) -> list[email.message.EmailMessage]:
    """The messages in ``path``'s new/ and cur/, oldest name first (Maildir names start with the time)."""
    if not (path / "cur").is_dir():
        raise InputError(f"{path}: not a Maildir (no cur/ new/ tmp/)")
    parser = email.parser.BytesParser(policy=b4.emlpolicy, _class=email.message.EmailMessage)
    out = []
    for entry in sorted((e for sub in ("new", "cur") if (path / sub).is_dir() for e in os.scandir(path / sub)
                         if not e.name.startswith(".")), key=lambda e: e.name):
        try:
            out.append(parser.parsebytes(bounded.read_input(entry.path)))
        except InputError as e:
            skipped.append(str(e))
    return out


def fetch_thread(msgid: str, inbox: Inbox, state_dir=None) -> list[email.message.EmailMessage]:
    """The whole thread of ``msgid`` from a public-inbox server (mail/inbox.py fetches it)."""
    msgid = msgid.strip().strip("<>")
    if not re.fullmatch(r"[!-~]{1,250}", msgid) or "@" not in msgid:
        raise InputError(f"--msgid: {_clean(msgid)[:80]!r} is not a Message-ID")
    mbox = inbox.thread(msgid)
    b4 = _b4(state_dir)
    msgs = _split(b4, mbox or b"", inbox.url)
    thread = b4.get_strict_thread(msgs, msgid) if msgs else None
    if not thread:
        raise InputError(f"{inbox.url}: no thread found for <{msgid}>")
    return thread


def search(query: str, inbox: Inbox, state_dir=None) -> list[email.message.EmailMessage]:
    """Messages (whole threads) matching a public-inbox search query, e.g.
    ``dfn:kernel/bpf/helpers.c AND rt:7.days.ago..``; [] when nothing matches."""
    mbox = inbox.search(query)
    return _split(_b4(state_dir), mbox, inbox.url) if mbox else []


def _split(b4, mbox: bytes, source: str) -> list[email.message.EmailMessage]:
    """An mbox from the server, split and deduplicated as b4 does (one copy per Message-ID)."""
    try:
        return [m for m in b4.split_and_dedupe_pi_results(mbox) if m is not None]
    except (SystemExit, Exception) as e:  # noqa: BLE001 - the server's bytes, parsed by b4
        raise InputError(f"{source}: unreadable mbox from the server ({type(e).__name__})") from None


def series_from_messages(msgs: list[email.message.EmailMessage], state_dir=None,
                         source: str = "input", max_message_bytes: int | None = None) -> Series:
    """The latest revision of the series among ``msgs``, in patch order.

    A message over ``max_message_bytes`` is left out (and said, in ``ignored``)."""
    b4 = _b4(state_dir)
    mbx = b4.LoreMailbox()
    ignored = []
    for msg in msgs:
        msgid = header_text(msg, "Message-ID") or _local_msgid(msg)
        if not msgid:
            ignored.append(f"{header_text(msg, 'Subject')[:60] or '(no subject)'}: no Message-ID")
            continue
        hostile = hostile_line(msg)
        if hostile:
            ignored.append(f"{msgid[:80]}: {hostile}")
            continue
        size = message_size(msg)
        if max_message_bytes and size > max_message_bytes:
            ignored.append(f"{msgid[:80]}: {size} bytes, over limits.max_message_bytes ({max_message_bytes})")
            continue
        try:
            mbx.add_message(msg)
        except (SystemExit, Exception) as e:  # one bad message must not sink the series
            ignored.append(f"{msgid[:80]}: {type(e).__name__}")
    try:
        lser = mbx.get_series(codereview_trailers=False)
    except SystemExit:
        lser = None
    if lser is None:
        why = f" (skipped: {'; '.join(ignored)})" if ignored else ""
        raise InputError(f"{source}: no patch series found (no message with a diff and a [PATCH] "
                         f"subject){why}")
    patches, missing = [], []
    for i, lmsg in enumerate(lser.patches[1:], 1):
        if lmsg is None:
            missing.append(i)
            continue
        patches.append(_patch(b4, lmsg))
    cover = _patch(b4, lser.patches[0]) if lser.patches and lser.patches[0] is not None else None
    author = format_address(lser.fromname or "", lser.fromemail) if lser.fromemail else ""
    return Series(lser.revision, lser.subject or "", author, cover, patches, _base_commit(lser), missing, ignored)


# a whole token of hex digits: b4's own parse takes "EAD" from "base-commit: HEAD~1"
_BASE_COMMIT = re.compile(r"^base-commit:[ \t]*([0-9a-fA-F]{7,40})[ \t\r]*$", re.M)


def _base_commit(lser) -> str | None:
    """The series' ``base-commit:`` (git format-patch --base writes it), None when no mail of it
    names one as a commit id."""
    for lmsg in lser.patches:
        m = _BASE_COMMIT.search(getattr(lmsg, "body", None) or "") if lmsg is not None else None
        if m:
            return m.group(1).lower()
    return None


def hostile_line(msg) -> str:
    """Why b4 must not read ``msg``: a line it would read as a trailer longer than
    MAX_TRAILER_LINE characters (b4 would take minutes over it); "" for a message it may read.
    Diff lines that add or remove (+, -) are no trailers to b4: those may be as long as they are."""
    import b4
    try:
        body, _charset = b4.LoreMessage.get_payload(msg)
    except Exception:  # noqa: BLE001 - the list's bytes, decoded by b4; b4 will fail on it too
        return ""
    for number, line in enumerate((body or "").split("\n-- \n", 1)[0].split("\n"), 1):
        if len(line) > MAX_TRAILER_LINE and _TRAILER_SHAPED.match(line.strip("\r")):
            return (f"line {number} has {len(line)} characters and reads as a trailer "
                    f"(over {MAX_TRAILER_LINE}, RFC 5322): refused as hostile input")
    return ""


LOCAL_MSGID_DOMAIN = "policybot.invalid"  # RFC 2606: no mail is ever delivered there
_PATCH_SUBJECT = re.compile(r"\[[^]]*PATCH", re.I)


def _local_msgid(msg) -> str:
    """A Message-ID for a patch mail that has none (plain ``git format-patch`` output), set on
    ``msg``: the same for the same mail on every run (local_key), in LOCAL_MSGID_DOMAIN so that
    it is never taken for a message of the list (is_local_msgid). "" for a message that is no
    patch mail."""
    subject = header_text(msg, "Subject")
    body = _body_bytes(msg)
    if not (_PATCH_SUBJECT.search(subject) or _DIFF_START.search(body.decode("utf-8", "replace"))):
        return ""
    msgid = local_key(msg)
    msg["Message-ID"] = f"<{msgid}>"
    return msgid


def local_key(msg) -> str:
    """The stand-in id of a message without a Message-ID, patch or not: the same for the same
    mail on every run (a hash of its From, Date, Subject and body: the commit message and diff)."""
    import hashlib
    h = hashlib.sha256()
    for part in (header_text(msg, "From"), header_text(msg, "Date"), header_text(msg, "Subject")):
        h.update(part.encode("utf-8", "replace") + b"\0")
    h.update(_body_bytes(msg))
    return f"format-patch.{h.hexdigest()[:32]}@{LOCAL_MSGID_DOMAIN}"


def stand_in_msgid(msg) -> str:
    """``msg``'s Message-ID; for a patch mail without one the stand-in ``review`` gives it (set
    on ``msg``); "" for any other message without one."""
    return header_text(msg, "Message-ID").strip().strip("<>") or _local_msgid(msg)


def _body_bytes(msg) -> bytes:
    payload = msg.get_payload(decode=True) if not msg.is_multipart() else None
    if isinstance(payload, bytes):
        return payload
    return str(msg.get_payload()).encode("utf-8", "surrogateescape")


def is_local_msgid(msgid: str) -> bool:
    """Whether ``msgid`` was made here for a mail that had none (it names no list message)."""
    return msgid.strip().strip("<>").lower().endswith("@" + LOCAL_MSGID_DOMAIN)


def message_size(msg) -> int:
    """The size of a parsed message's text (headers and body), without re-serialising it."""
    payload = msg.get_payload()
    if isinstance(payload, list):
        body = sum(message_size(p) for p in payload)
    else:
        body = len(payload or "")
    return body + sum(len(k) + len(str(v)) + 4 for k, v in msg.raw_items())


def _clean(value: str) -> str:
    """Header values from the list are untrusted: no control characters, no undecodable bytes."""
    value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return re.sub(r"[\x00-\x1f\x7f]+", " ", value).strip()


def format_address(name: str, addr: str) -> str:
    """'Name <addr>', quoted where needed ("Müller, Jürgen" stays one address).

    Not email.utils.formataddr: after `import b4` it leaves non-ASCII names
    unquoted, and a comma in one then splits the address in two.
    """
    name = _clean(name)
    if name.strip().strip('"').lower() == addr.strip().lower():  # a bare address: no display name
        name = ""
    try:
        return str(email.headerregistry.Address(display_name=name, addr_spec=addr))
    except (ValueError, IndexError, email.errors.HeaderParseError):
        return addr


def _raw_values(msg, name: str) -> list[str]:
    # raw: the email package's own header parsing raises on an encoded CR/LF
    return [_clean(str(raw)) for key, raw in msg.raw_items() if key.lower() == name.lower()]


def _decoded(text: str) -> str:
    """RFC 2047 encoded words decoded, control characters (an encoded CR/LF) blanked."""
    if "=?" not in text:
        return _clean(text)
    try:
        return _clean(str(email.header.make_header(email.header.decode_header(text))))
    except (ValueError, LookupError, email.errors.HeaderParseError, UnicodeError):
        return _clean(text)


def header_values(msg, name: str) -> list[str]:
    """Every ``name`` header of ``msg`` as one line of text, decoded, never raising."""
    return [_decoded(v) for v in _raw_values(msg, name)]


def header_text(msg, name: str) -> str:
    values = header_values(msg, name)
    return values[0] if values else ""


def automated_mail(msg) -> str:
    """Why ``msg`` was written by a machine and must get no reply, or "" (RFC 3834, RFC 3464)."""
    auto = header_text(msg, "Auto-Submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"it is marked Auto-Submitted: {auto}"
    ctype = header_text(msg, "Content-Type").lower()
    if "multipart/report" in ctype or "delivery-status" in ctype:
        return "it is a delivery status report"
    return ""


def _addresses(msg, header: str) -> tuple[str, ...]:
    out = []
    # split the raw value: a decoded name may hold the comma its quoting protected
    for name, addr in email.utils.getaddresses(_raw_values(msg, header)):
        addr = _clean(addr)
        if "@" in addr:
            out.append(format_address(_decoded(name), addr))
    return tuple(out)


_IN_BODY_FROM = re.compile(r"\A\s*From:[ \t]*(.+?)[ \t]*\n")


def _in_body_author(body: str) -> tuple[str, str] | None:
    """The author's "From:" line that opens a body (git format-patch, for another's patch), or None."""
    m = _IN_BODY_FROM.match(body)
    if not m:
        return None
    name, addr = email.utils.parseaddr(_decoded(m.group(1)))
    return (_clean(name) or _clean(addr), _clean(addr)) if "@" in addr else None


def _patch(b4, lmsg) -> Patch:
    msg = lmsg.msg
    body = lmsg.body or ""
    diff = ""
    m = _DIFF_START.search(body)
    preamble = commit_message = body[:m.start()] if m else body
    if m:
        rest = body[m.start():]
        sig = _SIG.search(rest)
        diff = rest[:sig.start()] if sig else rest
    commit_message = commit_message.split("\n---\n", 1)[0]
    trailers = [Trailer(name, value) for name, value in _TRAILER.findall(commit_message)]
    replies = []
    for t in list(lmsg.trailers) + list(lmsg.followup_trailers):
        name, value = getattr(t, "name", None), getattr(t, "value", None)
        if name is None and isinstance(t, (tuple, list)):
            name, value = t[0], t[1]
        if name:
            trailers.append(Trailer(_clean(str(name)), _clean(str(value))))
    for t in lmsg.followup_trailers:
        source = getattr(t, "lmsg", None)
        if getattr(t, "name", None) and source is not None and source is not lmsg:
            replies.append(Trailer(_clean(str(t.name)), _clean(str(t.value)), _clean(source.fromemail or "")))
    reply_to = _addresses(msg, "Reply-To")
    sender = (_clean(lmsg.fromname or ""), _clean(lmsg.fromemail or ""))
    author = _in_body_author(body) or sender
    return Patch(
        msgid=_clean(lmsg.msgid), subject=_clean(lmsg.full_subject), counter=lmsg.counter,
        expected=lmsg.expected, revision=lmsg.revision, author_name=author[0],
        author_email=author[1], sender_name=sender[0], sender_email=sender[1], preamble=preamble if m else "",
        reply_to=reply_to[0] if reply_to else "",
        to=_addresses(msg, "To"), cc=_addresses(msg, "Cc"),
        references=tuple(_clean(r) for r in lmsg.references), diff=diff,
        commit_message=commit_message, trailers=tuple(trailers), date=header_text(msg, "Date"),
        reply_trailers=tuple(replies), automated=automated_mail(msg))
