"""The review use case: a series -> per-patch findings -> one reply per patch in the outbox.

`policybot review` and the inbox job (`policybot run --job review`, the scheduler)
both call ``review``, so they draft the same mail for the same series.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pygit2

from .config import Limits
from ..cache import Cache
from ..records import revive
from ..errors import InputError
from ..kernel.maintainers import maintainers_at
from ..kernel.scanner import Scanner
from ..mail import b4wrap
from ..mail.b4wrap import Series
from ..mail.drafts import MailDraft, draft_message, render, review_mails
from ..mail.message import MailConfig
from ..mail.outbox import Outbox
from ..policy.audit import Finding, earliest_removal
from ..policy.config import Policy
from ..policy.history import History
from .series import ReviewResult, review_series
from ..vocabulary import Verdict

if TYPE_CHECKING:
    import jinja2


@dataclass(frozen=True)
class ReplySettings:
    """Where a review's replies go and what they look like."""
    outbox: Outbox
    mail: MailConfig
    tree: str  # the tree's name in the mail
    list_addr: str  # copied on every reply
    min_verdict: str
    env: jinja2.Environment
    limits: Limits


@dataclass(frozen=True)
class Refused:
    """A reply that could not be drafted (an unusable address), and why."""
    subject: str
    reason: str


@dataclass
class Reviewed:
    result: ReviewResult
    queued: list[str] = field(default_factory=list)  # Message-IDs drafted
    refused: list[Refused] = field(default_factory=list)


def read_series(state_dir: Path, limits: Limits, msgid: str | None = None, inbox_url: str = "",
                data: bytes | None = None, path: str | None = None, cache: Cache | None = None) -> Series:
    """The series to review: a thread fetched by Message-ID, an mbox read from ``data``, or
    the mbox or Maildir at ``path``.

    With a ``cache``, the series b4 found in an mbox is kept by the mbox's content (and
    b4's version, b4wrap's code and the size limit): reading it again loads neither b4
    nor the messages.
    """
    if msgid:
        msgs, source = b4wrap.fetch_thread(msgid, inbox_url, state_dir), f"<{msgid}>"
        return b4wrap.series_from_messages(msgs, state_dir, source, limits.max_message_bytes)
    raw = data if data is not None else _mbox_bytes(path)
    key = _series_key(raw, limits) if raw is not None and cache is not None else None
    if key and (hit := cache.get_cached(SERIES_CACHE, key)) is not None:
        return revive(Series, hit)
    if data is not None:
        msgs, source = b4wrap.read_messages(data=data, state_dir=state_dir), "<stdin>"
    else:
        msgs, source = b4wrap.read_messages(path, state_dir=state_dir), path
    series = b4wrap.series_from_messages(msgs, state_dir, source, limits.max_message_bytes)
    if key:
        cache.put_cached(SERIES_CACHE, key, dataclasses.asdict(series))
    return series


SERIES_CACHE = "series"  # the cache's namespace for series by mbox content


def _mbox_bytes(path: str | None) -> bytes | None:
    """The bytes of an mbox file (None for a Maildir or anything unreadable: b4wrap says why)."""
    try:
        p = Path(path) if path else None
        return p.read_bytes() if p is not None and p.is_file() else None
    except OSError:
        return None


def _series_key(raw: bytes, limits: Limits) -> str:
    h = hashlib.sha256()
    h.update(f"{b4wrap.B4_VERSION}\0{limits.max_message_bytes}\0".encode())
    h.update(Path(b4wrap.__file__).read_bytes())  # the code that turns messages into a Series
    h.update(raw)
    return h.hexdigest()


def review(repo: pygit2.Repository, scanner: Scanner, policy: Policy, series: Series, replies: ReplySettings,
           base: str | None, branch: str, today: dt.date | None) -> Reviewed:
    """The series judged patch by patch, and a reply drafted for each patch with findings. The
    replies of the patches judged first are drafted while a long series' second half is judged
    (series.review_series' ``on_judged``)."""
    queued: list[str] = []
    refused: list[Refused] = []
    # MAINTAINERS is read only when a reply is drafted (0.1 s on a real tree)
    maint = functools.cache(lambda commit: maintainers_at(repo, repo[commit].tree))
    history = History(repo, scanner.cache)

    def draft(judged: ReviewResult) -> None:
        drafts = review_mails(judged, tree=replies.tree, list_addr=replies.list_addr,
                              recipients_for=lambda files: (maint(judged.base_commit).for_files(files).all()
                                                            if files and maint(judged.base_commit) else []),
                              is_mailed=replies.outbox.is_mailed,
                              forward_for=lambda f: way_forward(replies.env, f, history, policy,
                                                                today or dt.date.today()),
                              min_verdict=replies.min_verdict, env=replies.env,
                              own_addr=replies.mail.sender.addr_spec, own_msgid_domain=replies.mail.msgid_domain,
                              max_recipients=replies.limits.max_recipients,
                              max_quote_lines=replies.limits.max_quote_lines)
        for d in drafts:
            try:
                queued.extend(queue(replies.outbox, replies.mail, d, replies.tree))
            except InputError as e:  # one unusable address must not hide the other findings
                refused.append(Refused(d.subject, str(e)))

    result = review_series(repo, scanner, policy, series, base, branch, today,
                           scratch_dir=scanner.cache.state_dir / "scratch",
                           max_patch_bytes=replies.limits.max_patch_bytes, on_judged=draft)
    return Reviewed(result, queued, refused)


def queue(outbox: Outbox, mail: MailConfig, draft: MailDraft, tree: str | None) -> list[str]:
    """Draft ``draft`` into the outbox unless all it is about went out already: its Message-ID, or []."""
    if all(outbox.is_mailed(k) for k in draft.keys):
        return []
    msg = draft_message(mail, draft)
    return [str(msg["Message-ID"])] if outbox.queue(msg, draft.keys, draft.kind, tree) else []


def way_forward(env: jinja2.Environment, f: Finding, history: History, policy: Policy, today: dt.date) -> str:
    """What the patch's author can do instead: the rule's hint, or for a broken kfunc promise
    how to keep it (and when the old kfunc may go)."""
    if not f.rule.startswith("KFUNC_") or f.verdict not in (Verdict.VIOLATION, Verdict.WARNING):
        return f.hint
    return render(env, "way-forward.txt.j2", rule=f.rule, kfunc=f.kfunc,
                  removal=str(earliest_removal(history, policy, today, f.promise))).strip()
