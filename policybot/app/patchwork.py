"""Patchwork checks: each reviewed patch's verdict posted where the bpf list looks.

As Kernel Patches Daemon does: the patch is found by its Message-ID, the newest check of
our context read first, and a check posted only when its state or URL would change; a
pending check never replaces a conclusive one (we post none). The state is the patch's
most severe finding that counts: a violation fails, a warning warns, anything less (or
nothing) is a success; a patch that does not apply is a warning. The check points at our
reply in the list's archive (``[inbox] url``/MSGID): a review, or a reply that only asks
about a flag (found by its In-Reply-To), or nowhere when there is no reply. The newest check
is read and the new one posted under the state's send lock: two runs on one state never
post a check twice.

A refused token, a 4xx or a server down is a failure recorded in the state (kind
``patchwork``, the patch's Message-ID) for each patch left without its check, and said in
one line; the mail is drafted before any check is posted, so none is lost.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import PolicybotError
from ..mail.drafts import key_part, render
from ..mail.outbox import SEND_LOCK_WAIT
from ..mail.patchwork import CheckPost, Patchwork, PatchworkError
from ..model.vocabulary import Verdict

if TYPE_CHECKING:
    import jinja2

    from ..mail.outbox import Outbox
    from ..state import State
    from .series import PatchReview, ReviewResult

FAILURE_KIND = "patchwork"  # the failures table's kind for a check not posted
MAX_URL = 200  # patchwork's target_url is a URLField of 200 characters
STATE_OF = {Verdict.VIOLATION: "fail", Verdict.WARNING: "warning"}  # anything less: success


@dataclass
class CheckReport:
    """What the checks of one series came to."""
    posted: list[str] = field(default_factory=list)  # Message-IDs of patches given a check
    unchanged: list[str] = field(default_factory=list)  # their newest check says the same already
    unknown: list[str] = field(default_factory=list)  # patches the project does not have
    failure: str = ""  # why the others got none (one line); "" when nothing failed


@dataclass(frozen=True)
class CheckTarget:
    """Where the checks go and what they say."""
    client: Patchwork
    context: str
    archive_url: str  # the list's public-inbox archive, where our replies will be
    env: jinja2.Environment


def raise_if_failed(report: CheckReport | None) -> None:
    """The checks' failure as the error of the command (one line, exit 2), once its output
    is written and its replies are in the outbox."""
    if report is not None and report.failure:
        raise PatchworkError(f"patchwork checks not posted: {report.failure}")


def patch_state(review: PatchReview) -> str:
    """The check state of one judged patch."""
    if not review.applied:
        return "warning"
    worst = max((f.verdict for f in review.findings if f.counts), key=_severity, default=Verdict.NONE)
    return STATE_OF.get(worst, "success")


def _severity(v: str) -> int:
    return list(Verdict).index(Verdict(v))


def patch_check(review: PatchReview, base: str, target: CheckTarget, reply_msgid: str | None) -> CheckPost:
    """The check of one patch: its state, a one-line description, our reply's URL."""
    counting = [f for f in review.findings if f.counts]
    order = sorted({f.verdict for f in counting}, key=_severity, reverse=True)
    counts = {str(v): sum(1 for f in counting if f.verdict == v) for v in order}
    rules = [(f.rule, f.kfunc) for f in counting if f.verdict in STATE_OF]
    text = render(target.env, "patchwork-check.txt.j2", applied=review.applied, base=base,
                  counts=counts, rules=rules)
    url = f"{target.archive_url.rstrip('/')}/{reply_msgid.strip('<>')}/" if reply_msgid else ""
    return CheckPost(patch_state(review), target.context, " ".join(text.split()),
                     url if len(url) <= MAX_URL else "")


def _synced(client: Patchwork, patch: int, check: CheckPost, state: State) -> bool:
    """``sync_check`` under the state's send lock: two runs on one state (a review and the
    weekly run, or two reviews) read the newest check and post one in turn, never both."""
    with state.lock("send", wait=SEND_LOCK_WAIT):
        return client.sync_check(patch, check)


def post_checks(target: CheckTarget, result: ReviewResult, outbox: Outbox, state: State,
                today: dt.date, down: str = "") -> CheckReport:
    """One check per patch of ``result`` (the replies drafted already). The first error
    stops the series' checks: each patch left without one is recorded as a failure.
    ``down``: why the server failed earlier in this run; nothing is asked of it then, the
    patches are recorded with that reason."""
    report = CheckReport(failure=down)
    todo = list(result.reviews)
    while todo and not down:
        review = todo[0]
        msgid = review.patch.msgid
        reply = outbox.reply_to(msgid, f"review:{key_part(msgid)}:")
        check = patch_check(review, result.base_rev, target, reply)
        try:
            patch = target.client.patch_by_msgid(msgid)
            if patch is None:
                report.unknown.append(msgid)
            elif _synced(target.client, patch, check, state):
                report.posted.append(msgid)
            else:
                report.unchanged.append(msgid)
        except PolicybotError as e:  # the server's answer, or the lock not had in time
            report.failure = str(e)
            break
        state.clear_failure(FAILURE_KIND, key_part(msgid))
        todo.pop(0)
    for left in todo:  # retried when the thread is reviewed again (`policybot run --retry-failed`)
        state.record_failure(FAILURE_KIND, key_part(left.patch.msgid), report.failure, today)
    return report
