"""The review use case: a series -> per-patch findings -> one reply per patch in the outbox.

`policybot review` and the inbox job (`policybot run --job review`, the scheduler)
both call ``review``, so they draft the same mail for the same series.
"""

from __future__ import annotations

import dataclasses
import email.utils
import datetime as dt
import functools
import hashlib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Limits
from .. import bounded
from ..cache import Cache
from ..records import revive
from ..errors import InputError
from ..kernel.maintainers import maintainers_at
from ..mail import b4wrap
from ..mail.b4wrap import Series
from ..mail.drafts import MailDraft, draft_message, render, review_mails
from ..mail.message import MailConfig
from ..mail.outbox import Outbox, SendReport
from ..model.findings import Finding
from ..policy.audit import Auditor
from ..policy.calendar import ReleaseCalendar
from ..policy.config import Policy
from .patchwork import CheckReport, CheckTarget, post_checks
from .series import ReviewResult, review_series
from ..model.vocabulary import Verdict

if TYPE_CHECKING:
    import jinja2

    from .context import Context


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
    outbox: Path | None = None  # the Maildir they were drafted to
    sent: SendReport | None = None  # what --send delivered, None when nothing was sent
    checks: CheckReport | None = None  # the patchwork checks, None when [patchwork] is not set


@dataclass(frozen=True)
class SeriesSource:
    """Where a series comes from: exactly one of these."""
    msgid: str | None = None  # a thread on the public-inbox server
    inbox_url: str | None = None  # that server (default: the config's [inbox] url)
    data: bytes | None = None  # an mbox read from standard input
    path: str | None = None  # an mbox file or a Maildir
    patchwork_series: int | None = None  # a series on the config's [patchwork] server


_BASE_COMMIT = re.compile(rb"^base-commit:[ \t]*([0-9a-f]{7,40})[ \t]*\r?$", re.M)


def base_guess(source: SeriesSource, base: str | None, branch: str) -> str | None:
    """The base review_series will choose (``base``, else an mbox file's base-commit, else
    ``branch``), read without b4: the first 1 MiB of an mbox holds its cover letter's
    base-commit line. None for a thread not yet read (stdin, a Maildir, a Message-ID): a
    wrong guess would cost cores."""
    if base:
        return base
    if not source.path or not Path(source.path).is_file():
        return None
    try:
        with bounded.open_input(source.path) as f:
            m = _BASE_COMMIT.search(f.read(1 << 20))
    except (InputError, OSError):
        return None  # read_series says why, in its words
    return m.group(1).decode() if m else branch


def review_command(ctx: Context, source: SeriesSource, base: str | None, branch: str, list_addr: str | None,
                   tree_name: str | None, send: bool) -> Reviewed:
    """``policybot review``: read the series, judge it, draft the replies, send if asked."""
    from ..cache import CACHE_FILE
    from ..kernel.gitrepo import repo_name
    from ..mail.drafts import template_env
    from .inventory import prefetch_cold
    cfg = ctx.config
    env = template_env(cfg.templates or None)
    checks = check_target(cfg, env)
    if source.patchwork_series is not None:
        source = SeriesSource(data=patchwork_mbox(cfg, source.patchwork_series),
                              path=f"patchwork series {source.patchwork_series}")
    prefetch_cold(ctx, base_guess(source, base, branch), str(ctx.state_dir / CACHE_FILE))
    scanner, state = ctx.scanner, ctx.state
    series = read_series(state.state_dir, cfg.limits, msgid=source.msgid, inbox_url=source.inbox_url or cfg.inbox_url,
                         data=source.data, path=source.path, cache=scanner.cache)
    mail = ctx.mail
    replies = ReplySettings(ctx.outbox, mail, tree_name or repo_name(scanner.repo), list_addr or mail.list_addr,
                            cfg.review_min_verdict, env, cfg.limits)
    reviewed = review(ctx.auditor, series, replies, base, branch)
    reviewed.outbox = ctx.outbox.maildir
    if send or mail.send:
        reviewed.sent = ctx.outbox.send(mail)
    if checks is not None:  # after the mail is drafted: a server that fails costs no mail
        reviewed.checks = post_checks(checks, reviewed.result, ctx.outbox, state, ctx.auditor.today)
    return reviewed


def check_target(cfg, env: jinja2.Environment) -> CheckTarget | None:
    """Where the checks go ([patchwork], its token read now: a bad file is said before the
    review), None when the config sets no [patchwork]."""
    client = cfg.patchwork_client()
    return CheckTarget(client, cfg.patchwork.context, cfg.inbox_url, env) if client else None


def patchwork_mbox(cfg, series_id: int) -> bytes:
    """The mbox of series ``series_id`` on the config's [patchwork] server."""
    from ..errors import ConfigError
    client = cfg.patchwork_client(with_token=False)
    if client is None:
        raise ConfigError(f"{cfg.path}: --patchwork-series needs the server: [patchwork] url and project")
    return client.series_mbox(series_id)


def read_series(state_dir: Path, limits: Limits, msgid: str | None = None, inbox_url: str = "",
                data: bytes | None = None, path: str | None = None, cache: Cache | None = None) -> Series:
    """The series to review: a thread fetched by Message-ID, an mbox read from ``data``, or
    the mbox or Maildir at ``path`` (with ``data``: the name of where it came from).

    With a ``cache``, the series b4 found in an mbox is kept by the mbox's content (and
    b4's version, b4wrap's code and the size limit): reading it again loads neither b4
    nor the messages.
    """
    if msgid:
        msgs, source = b4wrap.fetch_thread(msgid, limits.inbox(inbox_url), state_dir), f"<{msgid}>"
        return b4wrap.series_from_messages(msgs, state_dir, source, limits.max_message_bytes)
    raw = data if data is not None else _mbox_bytes(path)
    key = _series_key(raw, limits) if raw is not None and cache is not None else None
    if key and (hit := cache.get_cached(SERIES_CACHE, key)) is not None:
        return revive(Series, hit)
    skipped: list[str] = []
    if raw is not None:
        msgs = b4wrap.read_messages(data=raw, state_dir=state_dir)
        source = path or "<stdin>"
    else:
        msgs, source = b4wrap.read_messages(path, state_dir=state_dir, skipped=skipped), path
    series = b4wrap.series_from_messages(msgs, state_dir, source, limits.max_message_bytes)
    series.ignored += skipped
    if key:
        cache.put_cached(SERIES_CACHE, key, dataclasses.asdict(series))
    return series


def read_stdin() -> bytes:
    """Standard input (an mbox piped in), within limits.max_input_bytes."""
    return bounded.read_stream(sys.stdin.buffer, "<stdin>")


SERIES_CACHE = "series"  # the cache's namespace for series by mbox content


def _mbox_bytes(path: str | None) -> bytes | None:
    """The bytes of an mbox file (None for a Maildir or anything unreadable: b4wrap says why)."""
    p = Path(path) if path else None
    if p is None or p.is_dir() or not p.exists():
        return None  # b4wrap reads a Maildir and says what is missing
    return bounded.read_input(p)


def _series_key(raw: bytes, limits: Limits) -> str:
    h = hashlib.sha256()
    h.update(f"{b4wrap.B4_VERSION}\0{limits.max_message_bytes}\0".encode())
    h.update(Path(b4wrap.__file__).read_bytes())  # the code that turns messages into a Series
    h.update(raw)
    return h.hexdigest()


def review(auditor: Auditor, series: Series, replies: ReplySettings, base: str | None, branch: str,
           skip_unrelated: bool = False) -> Reviewed:
    """The series judged patch by patch, and a reply drafted for each patch with findings. The
    replies of the patches judged first are drafted while a long series' second half is judged
    (series.review_series' ``on_judged``)."""
    queued: list[str] = []
    refused: list[Refused] = []
    # MAINTAINERS is read only when a reply is drafted (0.1 s on a real tree)
    repo = auditor.repo
    maint = functools.cache(lambda commit: maintainers_at(repo, repo[commit].tree))

    drafted = [0]  # replies this series has had, across its parts
    sender = email.utils.parseaddr(series.author)[1]  # whose patches: replies to them are capped per day

    def draft(judged: ReviewResult) -> None:
        where = Forward(auditor, judged.base_commit, judged.base_rev)
        drafts = review_mails(judged, tree=replies.tree, list_addr=replies.list_addr,
                              recipients_for=lambda patch: (maint(judged.base_commit).for_patch(patch.as_patch_file())
                                                            .all() if maint(judged.base_commit) else []),
                              is_mailed=replies.outbox.is_mailed,
                              forward_for=lambda f: way_forward(replies.env, f, auditor.calendar, auditor.policy,
                                                                auditor.today, where),
                              min_verdict=replies.min_verdict, env=replies.env,
                              own_addr=replies.mail.sender.addr_spec, own_msgid_domain=replies.mail.msgid_domain,
                              max_recipients=replies.limits.max_recipients,
                              max_quote_lines=replies.limits.max_quote_lines,
                              max_thread_cc=replies.limits.max_thread_cc)
        cap = replies.limits.max_replies_per_series
        if drafted[0] + len(drafts) > cap:
            skipped = drafts[max(cap - drafted[0], 0):]
            drafts = drafts[:max(cap - drafted[0], 0)]
            judged.notes.append(f"{len(skipped)} more replies not drafted (limits.max_replies_per_series = "
                                f"{cap}): {', '.join(repr(d.subject) for d in skipped)}")
        per_day = replies.limits.max_replies_per_sender_per_day
        if sender and drafts and (room := max(per_day - replies.outbox.replies_today(sender), 0)) < len(drafts):
            skipped, drafts = drafts[room:], drafts[:room]
            judged.notes.append(f"{len(skipped)} more replies not drafted: {sender} had "
                                f"limits.max_replies_per_sender_per_day ({per_day}) today: "
                                f"{', '.join(repr(d.subject) for d in skipped)}")
        drafted[0] += len(drafts)
        for d in drafts:
            try:
                queued.extend(queue(replies.outbox, replies.mail, d, replies.tree))
            except InputError as e:  # one unusable address must not hide the other findings
                refused.append(Refused(d.subject, str(e)))

    result = review_series(auditor, series, base, branch, scratch_dir=auditor.scanner.cache.state_dir / "scratch",
                           max_patch_bytes=replies.limits.max_patch_bytes, on_judged=draft,
                           skip_unrelated=skip_unrelated)
    return Reviewed(result, queued, refused)


def queue(outbox: Outbox, mail: MailConfig, draft: MailDraft, tree: str | None) -> list[str]:
    """Draft ``draft`` into the outbox unless all it is about went out already: its Message-ID, or []."""
    if all(outbox.is_mailed(k) for k in draft.keys):
        return []
    msg = draft_message(mail, draft)
    return [str(msg["Message-ID"])] if outbox.queue(msg, draft.keys, draft.kind, tree) else []


@dataclass
class Forward:
    """What the way forward of a review's replies reads in the base tree: in-tree users of a
    kfunc, the replacement its source names, the definition of a flag or suffix."""
    auditor: Auditor
    base_commit: str
    base_rev: str

    @functools.cached_property
    def tree(self):
        return self.auditor.repo[self.base_commit].tree

    def users(self, kfunc: str, own: Finding) -> list[str]:
        """Files under kernel/, tools/ and samples/ of the base naming ``kfunc``, but its own files."""
        from ..kernel.grep import IN_TREE_USERS, files_naming
        mine = {loc.path for loc in (own.base_location, own.head_location) if loc}
        named = files_naming(self.auditor.repo.path, str(self.tree.id), [kfunc], IN_TREE_USERS)[kfunc]
        return [p for p in named if p not in mine]

    def replacement(self, f: Finding) -> str:
        """The kfunc the declaration, the base's kernel-doc ("Deprecated: use bpf_x()") or a
        deprecation warning in the kfunc's body (``pr_warn_once("... deprecated, use bpf_x")``) names."""
        from ..model.inventory import KernelDoc
        if f.promise and f.promise.declaration.replacement:
            return f.promise.declaration.replacement
        k = self.auditor.scanner.inventory(self.base_commit).kfuncs.get(f.kfunc)
        if not (k and k.definition):
            return ""
        if k.definition.doc and k.definition.doc.replacement:
            return k.definition.doc.replacement
        loc = k.definition.location
        try:
            text = self.auditor.repo[self.tree[loc.path].id].data.decode("utf-8", "replace")
        except KeyError:
            return ""
        body = "\n".join(text.split("\n")[loc.line - 1:]).split("\n}\n", 1)[0]
        warnings = [w for w in re.findall(r'"((?:[^"\\\n]|\\.)*)"', body) if "deprecat" in w.lower()]
        named = (KernelDoc(0, "", deprecated=w).replacement for w in warnings)
        return next((r for r in named if r and r != f.kfunc), "")

    def definitions(self, names: list[str]) -> list[dict]:
        """Each name's definition in the base: the ``#define KF_X`` line of btf.h, or the verifier
        line that matches the suffix; a name the base does not define (the patch does) gives none."""
        from ..kernel.semantics import BTF_H, SUFFIX_FILES
        out = []
        for name in names:
            # a flag's #define, or its enum line; a suffix's string in the verifier
            pattern = re.compile(rf"#\s*define\s+{re.escape(name)}\b|^\s*{re.escape(name)}\s*(?:=|,)"
                                 if name.startswith("KF_") else rf'"{re.escape(name)}"')
            for path in (BTF_H,) if name.startswith("KF_") else SUFFIX_FILES:
                try:
                    text = self.auditor.repo[self.tree[path].id].data.decode("utf-8", "replace")
                except KeyError:
                    continue
                hit = next(((i, ln) for i, ln in enumerate(text.split("\n"), 1) if pattern.search(ln)), None)
                if hit:
                    out.append({"where": f"{path}:{hit[0]}", "text": hit[1].strip()})
                    break
        return out


_TIGHTENING = {"KFUNC_PARAM_ANNOTATION_TIGHTENED", "KFUNC_FLAGS_TIGHTENED", "KFUNC_PROG_TYPE_DROPPED",
               "KFUNC_FILTER_ADDED", "KFUNC_CONFIG_GUARD_ADDED"}


def way_of(f: Finding) -> str:
    """Which way forward a finding's reply proposes (templates/way-forward.txt.j2), "" for its hint."""
    from ..mail.drafts import question_names
    from ..policy.rules import catalogue
    if question_names(f):
        return "question"
    if f.verdict not in (Verdict.VIOLATION, Verdict.WARNING) or f.rule not in catalogue():
        return ""
    if f.rule in _TIGHTENING:
        return "tightening"
    if f.rule == "KFUNC_RENAMED":
        return "rename"
    family = catalogue()[f.rule].family
    return {"removal": "removal", "signature": "signature"}.get(str(family), "")


def way_forward(env: jinja2.Environment, f: Finding, calendar: ReleaseCalendar, policy: Policy, today: dt.date,
                where: Forward | None = None) -> str:
    """What the patch's author can do instead: for a broken kfunc promise, the way of its kind
    of change (and when the old kfunc may go); for a flag or suffix policybot does not know, the
    question; else the rule's hint."""
    from ..mail.drafts import question_names
    way = way_of(f)
    if not way:
        return f.hint
    names = question_names(f)
    users = where.users(f.kfunc, f) if where and way in ("removal", "rename") and f.kfunc else []
    replacement = where.replacement(f) if where and way == "removal" and f.kfunc else ""
    removal = str(calendar.earliest_removal(today, policy, f.promise)) if way != "question" else ""
    return render(env, "way-forward.txt.j2", way=way, rule=f.rule, kfunc=f.kfunc, removal=removal,
                  base=where.base_rev if where else "", replacement=replacement, users=users, names=names,
                  definitions=where.definitions(names) if where and names else []).strip()
