"""The review use case: a series -> per-patch findings -> one reply per patch in the outbox.

`policybot review` and the inbox job (`policybot run --job review`, the scheduler)
both call ``review``, so they draft the same mail for the same series.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import pygit2

from .config import Limits
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
                data: bytes | None = None, path: str | None = None) -> Series:
    """The series to review: a thread fetched by Message-ID, an mbox read from ``data``, or
    the mbox or Maildir at ``path``."""
    if msgid:
        msgs, source = b4wrap.fetch_thread(msgid, inbox_url, state_dir), f"<{msgid}>"
    elif data is not None:
        msgs, source = b4wrap.read_messages(data=data, state_dir=state_dir), "<stdin>"
    else:
        msgs, source = b4wrap.read_messages(path, state_dir=state_dir), path
    return b4wrap.series_from_messages(msgs, state_dir, source, limits.max_message_bytes)


def review(repo: pygit2.Repository, scanner: Scanner, policy: Policy, series: Series, replies: ReplySettings,
           base: str | None, branch: str, today: dt.date | None) -> Reviewed:
    result = review_series(repo, scanner, policy, series, base, branch, today,
                           scratch_dir=scanner.cache.state_dir / "scratch",
                           max_patch_bytes=replies.limits.max_patch_bytes)
    maint = maintainers_at(repo, repo[result.base_commit].tree)
    history = History(repo, scanner.cache)
    drafts = review_mails(result, tree=replies.tree, list_addr=replies.list_addr,
                          recipients_for=lambda files: maint.for_files(files).all() if maint and files else [],
                          is_mailed=replies.outbox.is_mailed,
                          forward_for=lambda f: way_forward(replies.env, f, history, policy, today or dt.date.today()),
                          min_verdict=replies.min_verdict, env=replies.env,
                          own_addr=replies.mail.sender.addr_spec, own_msgid_domain=replies.mail.msgid_domain,
                          max_recipients=replies.limits.max_recipients,
                          max_quote_lines=replies.limits.max_quote_lines)
    out = Reviewed(result)
    for d in drafts:
        try:
            out.queued += queue(replies.outbox, replies.mail, d, replies.tree)
        except InputError as e:  # one unusable address must not hide the other findings
            out.refused.append(Refused(d.subject, str(e)))
    return out


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
