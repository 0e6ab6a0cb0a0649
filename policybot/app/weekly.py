"""The bot's weekly life: fetch, audit what landed, review the inbox, notices, the report.

``policybot run`` and the scheduler call the same functions. Every step is
safe to repeat after a crash: mails are keyed (outbox.is_mailed) and queued
before the tree's last audited commit moves, so a killed run audits the same
range again and mails nothing twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from dataclasses import dataclass, field

import pygit2

from .config import Config, Tree
from ..errors import ConfigError, InputError, describe, processing
from ..kernel.gitrepo import open_repo, resolve
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


@dataclass(frozen=True)
class RunFailure:
    """Something a run could not process (a tree, a thread, a reply), and why."""
    what: str
    reason: str


@dataclass
class RunSummary:
    day: dt.date
    trees: list[TreeOutcome] = field(default_factory=list)
    queued: list[str] = field(default_factory=list)  # Message-IDs drafted this run
    sent: list[str] = field(default_factory=list)
    send_failed: list[SendFailure] = field(default_factory=list)
    reviewed: list[str] = field(default_factory=list)  # series subjects
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
        scheduler's jobs wait, so that two due in one minute both run)."""
        from ..scratch import remove_orphans
        summary = RunSummary(self.today)
        remove_orphans(self.state.state_dir / "scratch")  # what a killed run left
        trees = [self.cfg.tree(n) for n in tree_names] if tree_names else list(self.cfg.trees)
        with self.state.lock(wait=lock_wait):
            if self.cfg.census_sources and ("audit" in jobs or "review" in jobs):
                self.refresh_census(summary)
            for tree in trees:
                summary.trees.append(self._one_tree(tree, jobs, summary, retry_failed))
            if "review" in jobs:
                self.review_inbox(summary, retry_failed)
            if send if send is not None else self.cfg.mail.send:
                report = self.outbox.send(self.cfg.mail, retry_failed=retry_failed)
                summary.sent, summary.send_failed = report.sent, report.failed
        return summary

    def _one_tree(self, tree: Tree, jobs: tuple[str, ...], summary: RunSummary, retry_failed: bool) -> TreeOutcome:
        """One tree's pass. A tree that fails is recorded with its reason and does not stop the
        others; while its head stays the commit it failed on, later runs skip it unless asked."""
        outcome = TreeOutcome(tree.name)
        failed = self.state.failure("tree", tree.name)
        with processing(f"tree {tree.name}"):
            try:
                if failed and not retry_failed and failed.head and \
                        failed.head == self._current_head(tree, ask_remote=True):
                    outcome.status, outcome.head = RunStatus.ERROR, None
                    outcome.detail = (f"skipped: failed on {failed.head[:12]} ({failed.reason}); "
                                      f"tried again when {tree.branch} moves, or with --retry-failed")
                    summary.failures.append(RunFailure(f"tree {tree.name}", outcome.detail))
                    return outcome
                if "audit" in jobs or "notices" in jobs or "report" in jobs:
                    outcome = self.audit_tree(tree, summary, record="audit" in jobs,
                                              notices="notices" in jobs)
                if "report" in jobs:
                    self.weekly_report(tree, outcome, summary)
                    if tree.report_html and outcome.head:
                        self.write_page(tree, outcome.head)
                if "audit" in jobs and outcome.head and outcome.status != RunStatus.FETCH_FAILED:
                    # last: a crash before this repeats the range, and its mails are once-only
                    self._set_last_audited(tree.name, outcome.head)
                if failed:
                    self.state.clear_failure("tree", tree.name)
            except ENVIRONMENT:
                raise  # the machine, not the tree: stop the run (one line, exit 2)
            except Exception as e:  # noqa: BLE001 - poison: record it, carry on with the next tree
                reason = describe(e)
                outcome.status, outcome.detail = RunStatus.ERROR, reason
                head = self._current_head(tree)
                self.state.record_failure("tree", tree.name, reason, self.today, head)
                self._record_run(tree, "audit", None, head, RunStatus.ERROR, reason, [])
                summary.failures.append(RunFailure(f"tree {tree.name}", reason))
                if "report" in jobs:  # the week's report says the tree failed
                    try:
                        self.weekly_report(tree, outcome, summary)
                    except ENVIRONMENT:
                        raise
                    except Exception:  # noqa: BLE001 - the failure is recorded already
                        pass
        return outcome

    def refresh_census(self, summary: RunSummary) -> None:
        """The config's census sources read again, before the week's findings name their users.
        A source that cannot be read keeps its last census and is a failure of the run."""
        from .census import take_census
        run = take_census(self.state, self.cfg.census_sources, self.today)
        summary.census = sum(len(c.uses) for c in run.censuses)
        summary.failures += [RunFailure("census", problem) for problem in run.problems]

    # -- failures ---------------------------------------------------------------------

    def _current_head(self, tree: Tree, ask_remote: bool = False) -> str | None:
        """The commit the tree's ref names (the one a failed audit read); with ``ask_remote``,
        for a tree with a remote, the remote's branch as the remote says now: the mirror's ref
        moves only on a fetch, which a skipped tree never reaches. None: none can be named."""
        try:
            repo = open_repo(tree.repo)
            if tree.remote and ask_remote:
                heads = repo.remotes.create_anonymous(tree.remote).list_heads()
                found = [str(h.oid) for h in heads if h.name == f"refs/heads/{tree.branch}"]
                if found:
                    return found[0]
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
        scanner = auditor.scanner
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
                for f in result.findings:
                    if f.rule == "DEPRECATION_STARTED":
                        self.deprecation_notice(repo, scanner, auditor, tree, head, f.kfunc, summary)
        current = auditor.audit(out.head)
        out.expiring = [f for f in current.findings if f.rule == "PROMISE_EXPIRING"]
        if notices:
            for f in out.expiring:
                self._expiring_notice(tree, head, f, summary)
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

    def _expiring_notice(self, tree: Tree, commit, f: Finding, summary: RunSummary) -> None:
        p = f.promise
        key = f"expiring:{tree.name}:{f.kfunc}:{p.ends.date}"
        body = render(self.env, "expiring.txt.j2", 
            tree=tree.name, kfunc=f.kfunc, finding=f, level=p.declaration.level,
            declaration=str(p.declaration.location), ends=str(p.ends.date),
            days=(p.ends.date - self.today).days, head=str(commit.id)[:12])
        draft = MailDraft("notice", [self.cfg.mail.list_addr], [],
                          subject(self.env, "expiring", f.kfunc, p.declaration.level, str(p.ends.date)),
                          body, key, [key])
        self._queue(draft, summary, tree.name)

    # -- the weekly report ------------------------------------------------------------------

    def weekly_report(self, tree: Tree, out: TreeOutcome, summary: RunSummary) -> None:
        year, week, _ = self.today.isocalendar()
        key = f"report:{tree.name}:{year}-W{week:02d}"
        quiet = out.status in (RunStatus.UNCHANGED, RunStatus.BASELINE) and not out.findings and not out.expiring \
            and not self.failures()
        if quiet and not tree.quiet_weeks:
            return
        counts = {v: sum(1 for f in out.findings if f.verdict == v and f.counts)
                  for v in ("violation", "warning", "notice", "info")}
        body = render(self.env, "report.txt.j2", 
            tree=tree.name, week=f"{year}-W{week:02d}", out=out, counts=counts,
            acknowledged=[f for f in out.findings if f.ack],
            important=[f for f in out.findings if f.counts and f.verdict in ("violation", "warning", "notice")],
            horizon=self.policy_for(tree).expiring_horizon_days, failures=self.failures())
        to = tree.report_to or [self.cfg.mail.list_addr]
        draft = MailDraft("report", to, [], subject(self.env, "report", tree.name, f"{year}-W{week:02d}"),
                          body, key, [key])
        self._queue(draft, summary, tree.name)

    def write_page(self, tree: Tree, head: str) -> None:
        """The stability page (policybot report --html) of the tree's new head."""
        from .page import build_dashboard, write_page
        data = build_dashboard(self.auditor(tree, open_repo(tree.repo)), head)
        os.makedirs(os.path.dirname(os.path.abspath(tree.report_html)), exist_ok=True)
        write_page(data, tree.report_html)

    # -- the inbox ------------------------------------------------------------------------

    def review_inbox(self, summary: RunSummary, retry_failed: bool = False) -> None:
        if not (self.cfg.inbox_maildir or self.cfg.inbox_query) or not self.cfg.trees:
            return
        from .review import ReplySettings, review
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
                summary.failures.append(RunFailure(f"inbox {inbox.url}", describe(e)))
        seen = self.state.seen_messages()
        if retry_failed:
            seen -= {f.key for f in self.failures() if f.kind in ("message", CHECK_FAILURE)}
        new = [m for m in msgs if _msgid(m) and key_part(_msgid(m)) not in seen]
        if not new:
            return
        new_ids = {_msgid(m) for m in new}
        threads = _threads(msgs)
        tree = self.cfg.trees[0]  # the inbox belongs to the first tree (its list)
        auditor = self.auditor(tree, open_repo(tree.repo))
        limits = self.cfg.limits
        replies = ReplySettings(self.outbox, self.cfg.mail, tree.name, self.cfg.mail.list_addr,
                                self.cfg.review_min_verdict, self.env, limits)
        checks = self._check_target(summary)
        for root, thread in threads.items():
            if not any(_msgid(m) in new_ids for m in thread):
                continue
            with processing(f"thread <{root[:200]}>"):
                try:
                    try:
                        series = b4wrap.series_from_messages(thread, self.state.state_dir, f"thread <{root}>",
                                                             limits.max_message_bytes)
                    except InputError:
                        continue  # a discussion, not a series
                    reviewed = review(auditor, series, replies, None, self.head_ref(tree), skip_unrelated=True)
                    summary.queued += reviewed.queued
                    # one unusable address must not hide the others
                    summary.failures += [RunFailure(f"reply {r.subject!r}", r.reason) for r in reviewed.refused]
                    summary.reviewed.append(series.subject)
                    for m in thread:
                        self.state.clear_failure("message", key_part(_msgid(m)))
                    if checks is not None:
                        self._post_checks(checks, reviewed.result, summary)
                except ENVIRONMENT:
                    raise
                except Exception as e:  # noqa: BLE001 - poison: record it, review the other threads
                    reason = describe(e)
                    for m in thread:
                        if _msgid(m) in new_ids:
                            self.state.record_failure("message", key_part(_msgid(m)), reason, self.today)
                    summary.failures.append(RunFailure(f"thread <{root[:200]}>", reason))
        self.state.mark_seen([key_part(_msgid(m)) for m in new])

    def _check_target(self, summary: RunSummary):
        """The [patchwork] checks' target, None when not configured or its token cannot be
        read (a recorded failure: the run reviews and mails without checks)."""
        from .review import check_target
        try:
            return check_target(self.cfg, self.env)
        except (ConfigError, InputError) as e:
            self.state.record_failure(CHECK_FAILURE, "token", describe(e), self.today)
            summary.failures.append(RunFailure("patchwork", describe(e)))
            return None

    def _post_checks(self, checks, result, summary: RunSummary) -> None:
        """The series' checks; a failure is recorded per patch and said once per run."""
        from .patchwork import post_checks
        report = post_checks(checks, result, self.outbox, self.state, self.today, self.checks_down)
        if report.failure and not self.checks_down:
            self.checks_down = report.failure
            summary.failures.append(RunFailure(f"patchwork {checks.client.url}", report.failure))
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
