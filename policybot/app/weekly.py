"""The bot's weekly life: fetch, audit what landed, review the inbox, notices, the report.

``policybot run`` and the scheduler call the same functions. Every step is
safe to repeat after a crash: mails are keyed (outbox.is_mailed) and queued
before the tree's last audited commit moves, so a killed run audits the same
range again and mails nothing twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
from dataclasses import dataclass, field

import pygit2

from .config import Config, Tree
from ..errors import ConfigError, InputError, describe, processing
from ..addresses import dedupe
from ..kernel.gitrepo import describe as git_describe, missing_branch, open_repo, remote_branches, resolve
from ..kernel.scanner import Scanner
from ..mail.drafts import MailDraft, key_part, render, subject, template_env
from ..mail.outbox import Outbox, SendFailure
from ..model.findings import Finding
from ..policy.audit import Auditor
from ..progress import Progress
from ..state import DatabaseError, State
from ..model.vocabulary import RunStatus
from .census import known_users
from .patchwork import FAILURE_KIND as CHECK_FAILURE
from .review import queue

JOBS = ("audit", "review", "notices", "report")
# Failures of the machine or the operator's setup, not of one tree or message: they stop the run.
ENVIRONMENT = (OSError, DatabaseError, ConfigError, MemoryError)


@dataclass
class TreeOutcome:
    tree: str
    base: str | None = None
    head: str | None = None
    status: RunStatus = RunStatus.OK
    detail: str = ""
    findings: list[Finding] = field(default_factory=list)
    expiring: list[Finding] = field(default_factory=list)
    undeclared_new: list[str] = field(default_factory=list)


INBOX_QUERY = "query"  # the key of the inbox query's failure: one, whichever the server
SKIPPED = "skipped"  # the failures' kind of an inbox series no configured tree is for


@dataclass(frozen=True)
class SeriesReviewed:
    """An inbox series judged on one tree: how it was routed there, its counts, replies drafted."""
    tree: str
    subject: str
    how: str  # routing.BY_BASE, BY_TAG, BY_APPLYING
    counts: dict[str, int]  # verdict -> findings that count
    replies: int


def _counts(findings: list[Finding]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in findings:
        if f.counts:
            out[f.verdict] = out.get(f.verdict, 0) + 1
    return out


@dataclass(frozen=True)
class RunFailure:
    """Something a run could not process (a tree, a thread, a reply), and why."""
    what: str
    reason: str
    private: bool = False  # the operator's to fix (a tree, a credential, SMTP): mailed to them alone


@dataclass
class RunSummary:
    day: dt.date
    trees: list[TreeOutcome] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)  # Message-IDs drafted this run
    sent: list[str] = field(default_factory=list)
    send_failed: list[SendFailure] = field(default_factory=list)
    reviewed: list[SeriesReviewed] = field(default_factory=list)  # an entry per series and tree
    skipped: list[RunFailure] = field(default_factory=list)  # inbox series no configured tree is for
    unrelated: int = 0  # inbox series for no configured tree that cannot touch a kfunc either
    failures: list[RunFailure] = field(default_factory=list)  # what failed this run
    census: int | None = None  # uses the census found, when the config has census sources
    checked: list[str] = field(default_factory=list)  # patches given a patchwork check this run


class Runner:
    def __init__(self, cfg: Config, state: State, today: dt.date | None = None,
                 progress: Progress | None = None):
        self.cfg = cfg
        self.state = state
        self.today = today or dt.datetime.now(dt.timezone.utc).date()
        self.progress = progress or Progress(enabled=False)
        self.outbox = Outbox(state, state.state_dir / "outbox")
        self.env = template_env(cfg.templates or None)
        self.checks_down = ""  # why the patchwork server failed this run: asked no more

    # -- the pass ------------------------------------------------------------------

    def run(self, tree_names: list[str] | None = None, jobs: tuple[str, ...] = JOBS,
            send: bool | None = None, retry_failed: bool = False, lock_wait: float = 0.0) -> RunSummary:
        """One pass; ``lock_wait``: seconds to wait for another run that holds the lock (the
        scheduler's jobs wait, so that two due in one minute both run). The trees are audited,
        then the inbox reviewed against them, then each tree's week reported (the report names
        the series the inbox skipped) and its audited commit moved."""
        from ..scratch import remove_orphans
        summary = RunSummary(self.today)
        remove_orphans(self.state.state_dir / "scratch")  # what a killed run left
        trees = [self.cfg.tree(n) for n in tree_names] if tree_names else list(self.cfg.trees)
        with self.state.lock(wait=lock_wait):
            if self.cfg.census_sources and ("audit" in jobs or "review" in jobs):
                self.refresh_census(summary)
            summary.trees = [self._audit_phase(tree, jobs, summary, retry_failed) for tree in trees]
            if "review" in jobs:
                self.review_inbox(summary, retry_failed)
            for tree, outcome in zip(trees, summary.trees):
                self._finish_tree(tree, outcome, jobs, summary)
            sending = send if send is not None else self.cfg.mail.send
            if sending:
                self._send(summary, retry_failed)
            # after the send: one mail per run names every fault, SMTP's too
            if self.operator_mail(summary) and sending and not summary.send_failed:
                self._send(summary, False)
        return summary

    def _send(self, summary: RunSummary, retry_failed: bool) -> None:
        """The outbox sent; SMTP down or refusing us is the operator's fault (its mail then waits
        for the next send)."""
        report = self.outbox.send(self.cfg.mail, retry_failed=retry_failed)
        summary.sent += report.sent
        summary.send_failed += report.failed
        if report.failed:
            server = f"sending mail through {self.cfg.mail.smtp_host}:{self.cfg.mail.smtp_port}"
            summary.failures += [RunFailure(server, error, private=True)
                                 for error in dict.fromkeys(f.error for f in report.failed)]

    def _audit_phase(self, tree: Tree, jobs: tuple[str, ...], summary: RunSummary, retry_failed: bool) -> TreeOutcome:
        """One tree fetched and audited (its notices queued). A tree that fails is recorded with its
        reason and does not stop the others; while its head stays the commit it failed on, later
        runs skip it unless asked."""
        outcome = TreeOutcome(tree.name)
        failed = self.state.failure("tree", tree.name)
        if failed and not retry_failed and failed.head and \
                failed.head == self._current_head(tree, ask_remote=True):
            outcome.status, outcome.head = RunStatus.ERROR, None
            outcome.detail = (f"skipped: failed on {failed.head[:12]} ({failed.reason}); "
                              f"tried again when {tree.branch} moves, or with --retry-failed")
            # said in the run's output, mailed to the operator when it first failed
            summary.failures.append(RunFailure(f"tree {tree.name}", outcome.detail))
            return outcome
        if not ("audit" in jobs or "notices" in jobs or "report" in jobs):
            return outcome
        with processing(f"tree {tree.name}"), self._poison(tree, outcome, summary):
            outcome = self.audit_tree(tree, summary, record="audit" in jobs, notices="notices" in jobs)
            if outcome.status == RunStatus.FETCH_FAILED:  # tried again on every run
                self.state.record_failure("tree", tree.name, outcome.detail, self.today)
                summary.failures.append(RunFailure(f"tree {tree.name}", outcome.detail, private=True))
        return outcome

    def _finish_tree(self, tree: Tree, outcome: TreeOutcome, jobs: tuple[str, ...], summary: RunSummary) -> None:
        """The tree's week reported (never a failure of the operator's: that is mailed to them) and,
        last, its audited commit moved: a crash before this repeats the range, its mails once-only."""
        if outcome.status == RunStatus.ERROR and outcome.head is None:
            return  # skipped, or failed in its audit: recorded, and in the operator's mail
        with processing(f"tree {tree.name}"), self._poison(tree, outcome, summary):
            if "report" in jobs and outcome.status != RunStatus.FETCH_FAILED:
                self.weekly_report(tree, outcome, summary)
                if tree.report_html and outcome.head:
                    self.write_page(tree, outcome)
            if "audit" in jobs and outcome.head and outcome.status != RunStatus.FETCH_FAILED:
                self._set_last_audited(tree.name, outcome.head)
            if outcome.head and outcome.status != RunStatus.FETCH_FAILED and self.state.failure("tree", tree.name):
                self.state.clear_failure("tree", tree.name)  # read this run: an inbox job alone reads no tree

    @contextlib.contextmanager
    def _poison(self, tree: Tree, outcome: TreeOutcome, summary: RunSummary):
        """A tree that fails: recorded with its reason, for the operator; the run goes on."""
        try:
            yield
        except ENVIRONMENT:
            raise  # the machine, not the tree: stop the run (one line, exit 2)
        except Exception as e:  # noqa: BLE001 - poison: record it, carry on with the next tree
            reason = describe(e)
            outcome.status, outcome.detail, outcome.head = RunStatus.ERROR, reason, None
            head = self._current_head(tree)
            self.state.record_failure("tree", tree.name, reason, self.today, head)
            self._record_run(tree, "audit", None, head, RunStatus.ERROR, reason, [])
            summary.failures.append(RunFailure(f"tree {tree.name}", reason, private=True))

    def refresh_census(self, summary: RunSummary) -> None:
        """The config's census sources read again, before the week's findings name their users.
        A source that cannot be read keeps its last census and is a failure of the run."""
        from .census import take_census
        run = take_census(self.state, self.cfg.census_sources, self.today)
        summary.census = sum(len(c.uses) for c in run.censuses)
        summary.failures += [RunFailure("census", problem, private=True) for problem in run.problems]

    # -- failures ---------------------------------------------------------------------

    def _current_head(self, tree: Tree, ask_remote: bool = False) -> str | None:
        """The commit the tree's ref names (the one a failed audit read); with ``ask_remote``,
        for a tree with a remote, the remote's branch as the remote says now: the mirror's ref
        moves only on a fetch, which a skipped tree never reaches. None: none can be named."""
        try:
            repo = open_repo(tree.repo)
            if tree.remote and ask_remote:
                head = remote_branches(repo, tree.remote).get(tree.branch)
                if head:
                    return head
            return str(resolve(repo, self.head_ref(tree)).id)
        except Exception:  # noqa: BLE001 - no head to name is an answer here
            return None

    def failures(self) -> list:
        return self.state.failures()

    # -- audit -----------------------------------------------------------------------

    def fetch(self, repo: pygit2.Repository, tree: Tree) -> None:
        """Fetch tree.branch (and tags) from tree.remote into refs/remotes/policybot/."""
        try:
            remote = repo.remotes.create_anonymous(tree.remote)
            remote.fetch([f"+refs/heads/{tree.branch}:refs/remotes/policybot/{tree.branch}",
                          "+refs/tags/*:refs/tags/*"])
        except (pygit2.GitError, KeyError, ValueError) as e:
            raise InputError(f"fetching {tree.branch} from {tree.remote} failed ({str(e).strip()})") from None
        # a branch the remote lacks fetches nothing, silently: said as `doctor` says it
        if missing := missing_branch(tree.remote, tree.branch, remote_branches(repo, tree.remote)):
            raise InputError(missing)

    def head_ref(self, tree: Tree) -> str:
        return f"refs/remotes/policybot/{tree.branch}" if tree.remote else tree.branch

    def audit_tree(self, tree: Tree, summary: RunSummary, record: bool = True,
                   notices: bool = True) -> TreeOutcome:
        out = TreeOutcome(tree.name)
        repo = open_repo(tree.repo)
        if tree.remote:
            try:
                self.fetch(repo, tree)
            except InputError as e:
                # nothing stale is audited as new: the last audited commit stays
                out.status, out.detail = RunStatus.FETCH_FAILED, str(e)
                self._record_run(tree, "audit", None, None, out.status, out.detail, [])
                return out
        head = resolve(repo, self.head_ref(tree))
        out.head = str(head.id)
        auditor = self.auditor(tree, repo)
        last = self._last_audited(tree.name)
        if last and last not in repo:
            out.detail = f"last audited commit {last[:12]} is gone (history rewritten?): auditing from scratch"
            last = None
        if last is None:
            out.status = RunStatus.BASELINE
        elif last == out.head:
            out.status = RunStatus.UNCHANGED
        else:
            out.base = last
            result = auditor.audit(out.head, last)
            out.findings = result.findings
            head_decls, _ = auditor.declarations(result.head, head.tree)
            out.undeclared_new = sorted(n for n, k in result.head.kfuncs.items()
                                        if n not in result.base.kfuncs and not k.test and n not in head_decls)
            if record:
                self._deprecation_notices(repo, auditor, tree, head, summary,
                                          [f.kfunc for f in result.findings if f.rule == "DEPRECATION_STARTED"])
        current = auditor.audit(out.head)
        out.expiring = [f for f in current.findings if f.rule == "PROMISE_EXPIRING"]
        if notices:
            self._expiring_notices(tree, repo, head, out.expiring, summary)
        if record:
            self._record_run(tree, "audit", out.base, out.head, out.status, out.detail, out.findings)
        return out

    def auditor(self, tree: Tree, repo: pygit2.Repository) -> Auditor:
        """The tree's auditor: its repository read through the state's cache, under its policy."""
        return Auditor(repo, Scanner(repo, self.state.cache, self.progress), self.policy_for(tree), self.today,
                       known_users(self.state))

    def policy_for(self, tree: Tree):
        """The tree's policy, with the configuration's expiry horizon when it sets one."""
        if self.cfg.expiring_horizon_days is None:
            return tree.policy
        return dataclasses.replace(tree.policy, expiring_horizon_days=self.cfg.expiring_horizon_days)

    # -- notices ----------------------------------------------------------------------

    def deprecation_notice(self, repo, scanner: Scanner, auditor: Auditor, tree: Tree, commit: pygit2.Commit,
                           kfunc: str, summary: RunSummary | None = None, replacement: str | None = None,
                           removal_not_before: dt.date | None = None, key_suffix: str = "") -> MailDraft:
        from .notice import notice_draft
        draft = notice_draft(repo, scanner, auditor, tree, commit, kfunc, self.cfg, self.env,
                             replacement, removal_not_before, self.today)
        draft.keys = [f"notice:{tree.name}:{kfunc}:{draft.keys[0]}{key_suffix}"]
        self._queue(draft, summary, tree.name)
        return draft

    def _deprecation_notices(self, repo, auditor: Auditor, tree: Tree, commit: pygit2.Commit, summary: RunSummary,
                             kfuncs: list[str]) -> None:
        """The deprecations the week started, one [ANN] per MAINTAINERS section listing its kfuncs
        not announced before, Cc the section's maintainers and lists."""
        from .notice import announcement, grouped_draft
        groups: dict[str, list] = {}
        for kfunc in kfuncs:
            a = announcement(repo, auditor.scanner, auditor, tree, commit, kfunc, self.cfg, None, None, self.today)
            key = f"notice:{tree.name}:{kfunc}:{a.ident}"
            if not self.outbox.is_mailed(key):
                groups.setdefault(a.section, []).append((a, key))
        for group in groups.values():
            draft = grouped_draft([a for a, _ in group], [k for _, k in group], tree, self.week(), self.cfg, self.env)
            self._queue(draft, summary, tree.name)

    def _expiring_notices(self, tree: Tree, repo, commit, expiring: list[Finding], summary: RunSummary) -> None:
        """The promises ending within the horizon, one mail per MAINTAINERS section and week
        listing its kfuncs not mailed before, Cc the section's maintainers and lists."""
        todo = [(f, f"expiring:{tree.name}:{f.kfunc}:{f.promise.ends.date}") for f in expiring]
        todo = [(f, k) for f, k in todo if not self.outbox.is_mailed(k)]
        for section, group in _by_section(repo, commit, todo).items():
            entries = [{"kfunc": f.kfunc, "level": f.promise.declaration.level, "ends": str(f.promise.ends.date),
                        "declaration": str(f.promise.declaration.location), "days": (f.promise.ends.date - self.today).days}
                       for f, _ in group.items]
            body = render(self.env, "expiring.txt.j2", tree=tree.name, section=section, kfuncs=entries,
                          head=git_describe(repo, str(commit.id)))
            first = entries[0]
            title = subject(self.env, "expiring", first["kfunc"], first["level"], first["ends"]) if len(entries) == 1 \
                else subject(self.env, "expiring_group", len(entries), section or tree.name, tree.name)
            keys = [k for _, k in group.items]
            to = [self.cfg.mail.list_addr]
            draft = MailDraft("notice", to, dedupe(group.cc, exclude=to), title, body,
                              f"expiring:{tree.name}:{section}:{self.week()}:{','.join(sorted(keys))}", keys)
            self._queue(draft, summary, tree.name)

    # -- the weekly report ------------------------------------------------------------------

    def week(self) -> str:
        year, week, _ = self.today.isocalendar()
        return f"{year}-W{week:02d}"

    def public_failures(self) -> list:
        """What the weekly report says could not be processed: the list's mail (a message that
        failed; a series no configured tree is for, skipped in the last 7 days), never the
        operator's own faults (a tree, the inbox server, SMTP: those are mailed to the operator)."""
        since = self.today - dt.timedelta(days=7)
        return [f for f in self.failures()
                if f.kind == "message" or (f.kind == SKIPPED and f.day >= since)]

    def weekly_report(self, tree: Tree, out: TreeOutcome, summary: RunSummary) -> None:
        week = self.week()
        key = f"report:{tree.name}:{week}"
        failures = self.public_failures()
        quiet = out.status in (RunStatus.UNCHANGED, RunStatus.BASELINE) and not out.findings and not out.expiring \
            and not failures
        if quiet and not tree.quiet_weeks:
            return
        counts = {v: sum(1 for f in out.findings if f.verdict == v and f.counts)
                  for v in ("violation", "warning", "notice", "info")}
        body = render(self.env, "report.txt.j2",
            tree=tree.name, week=week, out=out, counts=counts,
            acknowledged=[f for f in out.findings if f.ack],
            important=[f for f in out.findings if f.counts and f.verdict in ("violation", "warning", "notice")],
            horizon=self.policy_for(tree).expiring_horizon_days,
            failures=[f for f in failures if f.kind != SKIPPED], skipped=[f for f in failures if f.kind == SKIPPED])
        to = tree.report_to or [self.cfg.mail.list_addr]
        draft = MailDraft("report", to, [], subject(self.env, "report", tree.name, week), body, key, [key])
        self._queue(draft, summary, tree.name)

    def write_page(self, tree: Tree, out: TreeOutcome) -> None:
        """The stability page (policybot report --html) of the tree's new head, titled with the
        tree's name and `git describe` of its head, its findings the week's (those of its report)."""
        from .page import Week, build_dashboard, write_page
        repo = open_repo(tree.repo)
        week = Week(tree.name, git_describe(repo, out.head), self.week(), out.base, out.findings)
        data = build_dashboard(self.auditor(tree, repo), out.head, week=week)
        os.makedirs(os.path.dirname(os.path.abspath(tree.report_html)), exist_ok=True)
        write_page(data, tree.report_html)

    # -- the operator ----------------------------------------------------------------------

    def operator_mail(self, summary: RunSummary) -> bool:
        """The run's faults of the operator's (a tree that cannot be fetched or read, the inbox
        server, a census source, SMTP) in one mail to the operator alone, each once a week.
        Whether a mail was drafted."""
        todo = [(f, _fault_key(self.week(), f)) for f in dict.fromkeys(summary.failures) if f.private]
        todo = [(f, k) for f, k in todo if not self.outbox.is_mailed(k)]
        if not todo:
            return False
        problems = [f for f, _ in todo]
        body = render(self.env, "operator.txt.j2", day=str(self.today), problems=problems,
                      config=self.cfg.path, state_dir=str(self.state.state_dir))
        keys = [k for _, k in todo]
        draft = MailDraft("operator", [self.cfg.mail.operator_addr], [],
                          subject(self.env, "operator", str(self.today), len(problems)), body,
                          f"operator:{self.today}:{','.join(keys)}", keys)
        try:
            self._queue(draft, summary, None)
        except ENVIRONMENT:
            raise
        except Exception as e:  # noqa: BLE001 - the faults are in the run's output and recorded
            summary.failures.append(RunFailure("mail to the operator", describe(e)))
            return False
        return True

    # -- the inbox ------------------------------------------------------------------------

    def review_inbox(self, summary: RunSummary, retry_failed: bool = False) -> None:
        if not (self.cfg.inbox_maildir or self.cfg.inbox_query) or not self.cfg.trees:
            return
        msgs = self._inbox_messages(summary)
        seen = self.state.seen_messages()
        if retry_failed:
            seen -= {f.key for f in self.failures() if f.kind in ("message", SKIPPED, CHECK_FAILURE)}
        msgs = self._without_msgid(msgs, seen, summary)
        new = [m for m in msgs if _msgid(m) and key_part(_msgid(m)) not in seen]
        if not new:
            return
        msgs = self._refuse_hostile(msgs, new, summary)
        new_ids = {_msgid(m) for m in new}
        heads = self._inbox_heads()
        checks = self._check_target(summary)
        for root, thread in _threads(msgs).items():
            if not any(_msgid(m) in new_ids for m in thread):
                continue
            with processing(f"thread <{root[:200]}>"):
                try:
                    self._review_thread(thread, heads, summary, checks)
                except ENVIRONMENT:
                    raise
                except Exception as e:  # noqa: BLE001 - poison: record it, review the other threads
                    reason = describe(e)
                    for m in thread:
                        if _msgid(m) in new_ids:
                            self.state.record_failure("message", key_part(_msgid(m)), reason, self.today)
                    summary.failures.append(RunFailure(f"thread <{root[:200]}>", reason))
        self.state.mark_seen([key_part(_msgid(m)) for m in new])

    def _without_msgid(self, msgs: list, seen: set, summary: RunSummary) -> list:
        """``msgs``, a patch mail without a Message-ID (plain ``git format-patch`` output) given
        the stand-in id ``review`` gives it; any other message without one is left out, a
        recorded failure said once (under its stand-in key), never a silent loss."""
        from ..mail.b4wrap import header_text, local_key, stand_in_msgid
        keep = []
        for m in msgs:
            if stand_in_msgid(m):
                keep.append(m)
                continue
            key = key_part(local_key(m))
            if key in seen:
                continue
            why = "no Message-ID and no patch: not reviewed"
            self.state.record_failure("message", key, why, self.today)
            summary.failures.append(RunFailure(f"message {header_text(m, 'Subject')[:80] or '(no subject)'!r}", why))
            self.state.mark_seen([key])
        return keep

    def _refuse_hostile(self, msgs: list, new: list, summary: RunSummary) -> list:
        """``msgs`` without those b4 must not read (b4wrap.hostile_line); each new one of them
        is a recorded failure, said in the run, and the others are still reviewed."""
        from ..mail.b4wrap import hostile_line
        keep = []
        for m in msgs:
            why = hostile_line(m)
            if not why:
                keep.append(m)
            elif any(m is n for n in new):
                self.state.record_failure("message", key_part(_msgid(m)), why, self.today)
                summary.failures.append(RunFailure(f"message <{_msgid(m)[:200]}>", why))
        return keep

    def _inbox_messages(self, summary: RunSummary) -> list:
        """The inbox's messages: the Maildir's and the query's (a server that fails is the operator's)."""
        from ..mail import b4wrap
        msgs, skipped = [], []
        if self.cfg.inbox_maildir:
            msgs += b4wrap.read_messages(self.cfg.inbox_maildir, state_dir=self.state.state_dir, skipped=skipped)
            summary.failures += [RunFailure("inbox message", why) for why in skipped]
        if self.cfg.inbox_query:
            inbox = self.cfg.limits.inbox(self.cfg.inbox_url)
            try:
                msgs += b4wrap.search(self.cfg.inbox_query, inbox, self.state.state_dir)
                self.state.clear_failure("inbox", INBOX_QUERY)
            except InputError as e:  # the server failed us: recorded and said, never a quiet week
                self.state.record_failure("inbox", INBOX_QUERY, describe(e), self.today)
                summary.failures.append(RunFailure(f"inbox {inbox.url}", describe(e), private=True))
        return msgs

    def _inbox_heads(self) -> list:
        """Each configured tree's head as the inbox sees it; a tree that cannot be read is left
        out (its audit says why)."""
        from .routing import Head
        heads = []
        for tree in self.cfg.trees:
            try:
                repo = open_repo(tree.repo)
                heads.append(Head(tree, repo, resolve(repo, self.head_ref(tree))))
            except InputError:
                continue
        return heads

    def _review_thread(self, thread: list, heads: list, summary: RunSummary, checks=None) -> None:
        """One thread: its series routed to the trees it is for and judged on each with that tree's
        policy; a series for no tree is a skip, recorded and said (the run, the weekly report).
        The patchwork checks (``checks``, when configured) are those of the first tree it went to."""
        from .review import ReplySettings, review
        from .routing import route, series_subject
        from .series import cannot_matter
        from ..mail import b4wrap
        limits = self.cfg.limits
        try:
            series = b4wrap.series_from_messages(thread, self.state.state_dir, f"thread <{_msgid(thread[0])}>",
                                                 limits.max_message_bytes)
        except InputError:
            return  # a discussion, not a series
        title = series_subject(series)
        found = route(series, heads, self.state.state_dir / "scratch")
        if not found.heads:
            if heads and cannot_matter(Scanner(heads[0].repo, self.state.cache), heads[0].commit.tree, series.patches):
                summary.unrelated += 1  # list traffic no kfunc promise can be about: not worth a skip
                return
            self.state.record_failure(SKIPPED, key_part(_msgid(thread[0])), f"{title}: {found.why}", self.today)
            summary.skipped.append(RunFailure(title, found.why))
            return
        for i, head in enumerate(found.heads):
            tree = head.tree
            replies = ReplySettings(self.outbox, self.cfg.mail, tree.name, self.cfg.mail.list_addr,
                                    self.cfg.review_min_verdict, self.env, limits)
            reviewed = review(self.auditor(tree, head.repo), series, replies, None, self.head_ref(tree),
                              skip_unrelated=True)
            summary.queued += reviewed.queued
            # one unusable address must not hide the others
            summary.failures += [RunFailure(f"reply {r.subject!r}", r.reason) for r in reviewed.refused]
            summary.reviewed.append(SeriesReviewed(tree.name, title, found.how, _counts(reviewed.result.findings()),
                                                   len(reviewed.queued)))
            if checks is not None and i == 0:
                self._post_checks(checks, reviewed.result, summary)
        for m in thread:
            self.state.clear_failure("message", key_part(_msgid(m)))
            self.state.clear_failure(SKIPPED, key_part(_msgid(m)))

    def _check_target(self, summary: RunSummary):
        """The [patchwork] checks' target, None when not configured or its token cannot be
        read (a recorded failure: the run reviews and mails without checks)."""
        from .review import check_target
        try:
            return check_target(self.cfg, self.env)
        except (ConfigError, InputError) as e:
            self.state.record_failure(CHECK_FAILURE, "token", describe(e), self.today)
            summary.failures.append(RunFailure("patchwork", describe(e), private=True))
            return None

    def _post_checks(self, checks, result, summary: RunSummary) -> None:
        """The series' checks; a failure is recorded per patch and said once per run."""
        from .patchwork import post_checks
        report = post_checks(checks, result, self.outbox, self.state, self.today, self.checks_down)
        if report.failure and not self.checks_down:
            self.checks_down = report.failure
            summary.failures.append(RunFailure(f"patchwork {checks.client.url}", report.failure, private=True))
        elif not report.failure:
            self.state.clear_failure(CHECK_FAILURE, "token")
        summary.checked += report.posted

    # -- state -----------------------------------------------------------------------------

    def _queue(self, draft: MailDraft, summary: RunSummary | None, tree: str) -> None:
        queued = queue(self.outbox, self.cfg.mail, draft, tree)
        if summary is not None:
            summary.queued += queued

    def _last_audited(self, tree: str) -> str | None:
        return self.state.last_audited(tree)

    def _set_last_audited(self, tree: str, commit: str) -> None:
        self.state.set_last_audited(tree, commit)

    def _record_run(self, tree: Tree, job: str, base, head, status: str, detail: str,
                    findings: list[Finding]) -> None:
        self.state.record_run(tree.name, job, self.today, base, head, status, detail, [{
            "rule": f.rule, "kfunc": f.kfunc, "verdict": f.verdict,
            "location": str(f.location) if f.location else None, "message": f.message,
            "acknowledged": f.acknowledged or None} for f in findings])


@dataclass
class _Section:
    """A MAINTAINERS section's share of a week's notices: (finding, key) pairs, and whom to Cc."""
    items: list = field(default_factory=list)
    cc: list[str] = field(default_factory=list)


def _by_section(repo, commit, todo: list) -> dict[str, _Section]:
    """(finding, key) pairs grouped by the MAINTAINERS section of each kfunc's file ("" when the
    tree has no MAINTAINERS or no section covers it), each with its section's M:, R: and L:."""
    from ..kernel.maintainers import maintainers_at
    maint = maintainers_at(repo, commit.tree) if todo else None
    out: dict[str, _Section] = {}
    for f, key in todo:
        path = f.location.path if f.location else ""
        section = maint.subsystem_of(path) if maint and path else ""
        group = out.setdefault(section, _Section())
        group.items.append((f, key))
        if maint and path:
            group.cc = dedupe(group.cc + maint.for_files([path]).all())
    return out


def _fault_key(week: str, fault: RunFailure) -> str:
    """The once-a-week key of an operator's fault (its reason hashed: it may be long)."""
    import hashlib
    return f"operator:{week}:" + hashlib.sha256(f"{fault.what}\n{fault.reason}".encode()).hexdigest()[:24]


def _msgid(msg) -> str:
    from ..mail.b4wrap import header_text
    return header_text(msg, "Message-ID").strip().strip("<>")


def _threads(msgs) -> dict[str, list]:
    """Messages grouped by the first Message-ID of their References (the thread root)."""
    from ..mail.b4wrap import header_text
    by_id = {_msgid(m): m for m in msgs if _msgid(m)}
    out: dict[str, list] = {}
    for mid, m in by_id.items():
        refs = header_text(m, "References").split() + header_text(m, "In-Reply-To").split()
        refs = [r.strip("<>") for r in refs if r.strip("<>")]
        root = refs[0] if refs else mid
        out.setdefault(root, []).append(m)
    return out


def weekly_run(cfg: Config, state: State, trees: list[str] | None = None, jobs: tuple[str, ...] = JOBS,
               send: bool | None = None, retry_failed: bool = False, today: dt.date | None = None,
               progress: Progress | None = None, lock_wait: float = 0.0) -> tuple[Runner, RunSummary]:
    """One pass of the weekly run (`policybot run`, and each job the scheduler starts)."""
    runner = Runner(cfg, state, today, progress)
    return runner, runner.run(trees, jobs, send=send, retry_failed=retry_failed, lock_wait=lock_wait)
