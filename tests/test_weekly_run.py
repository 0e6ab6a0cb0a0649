"""policybot run, week after week (issue 5): a bare upstream repository the
test advances, a tracked mirror fetched from it by path, a policybot.toml
written here, and `policybot run --today` each "week". The outbox Maildir is
read back with ``mailbox.Maildir``: the right mails, each exactly once.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pygit2
import sqlalchemy as sa

from policybot.cli import main
from policybot.app.config import load_config
from policybot.app.weekly import Runner
from policybot.state import State, runs
from kit.mail import BOT, body, counts, flat, free_port
from kit.trees import FOO
from kit.weekly import (ACKER, BASE_KFUNCS, EXP_SINCE, LIST, TREE, W02, W03, W04, W05, W06, W07, WIDER, Bot,
                        report_subject)

NOT_A_MAINTAINER = "Random Person <random@example.org>"


def section(text: str, heading: str) -> list[str]:
    """The indented lines under a heading line containing ``heading`` (up to the next blank-line gap
    followed by unindented text)."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if heading in line and not line.startswith(" "):
            out = []
            for ln in lines[i + 1:]:
                if ln and not ln.startswith(" "):
                    break
                if ln.strip():
                    out.append(ln.strip())
            return out
    return []


def check_bot_mail(msg) -> None:
    assert msg["From"] == BOT
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "text/plain"
    assert [a.addr_spec for a in msg["To"].addresses] == [LIST]


# -- the simulation ----------------------------------------------------------------------------


class Weeks:
    """Runs a week (and repeats it), returning the mails that week drafted."""

    def __init__(self, bot: Bot, capsys):
        self.bot, self.capsys = bot, capsys
        self.seen: dict[str, email.message.EmailMessage] = {}

    def week(self, day: str, status: str) -> dict[str, email.message.EmailMessage]:
        rc, out, err = self.bot.run(self.capsys, day)
        assert rc == 0, (out, err)
        assert f"{TREE}: {status} " in out, out
        now = self.bot.mails()
        assert set(self.seen) <= set(now)
        new = {m["Subject"]: m for k, m in now.items() if k not in self.seen}
        assert len(new) == len(set(now) - set(self.seen))  # no subject twice either
        self.seen = now
        # the same week again, the same day and the next: nothing new, nothing twice
        for again in (day, (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()):
            rc, out, err = self.bot.run(self.capsys, again)
            assert rc == 0, (out, err)
            assert f"{TREE}: unchanged " in out, out
            assert set(self.bot.mails()) == set(self.seen), f"re-run on {again} drafted again"
        assert self.bot.last_audited() == self.bot.upstream.head
        return new


def test_weeks_of_a_tracked_tree(tmp_path, capsys, monkeypatch):
    bot = Bot(tmp_path)
    up = bot.upstream
    sim = Weeks(bot, capsys)

    # week 2: the first run is a baseline: nothing is judged, the report says so
    base = up.head
    new = sim.week(W02, "baseline")
    assert set(new) == {report_subject("2024-W02")}
    rep = body(new[report_subject("2024-W02")])
    assert base[:12] in rep and "baseline" in rep and "Audited" not in rep
    assert not any(k in rep for k in ("bpf_foo", "bpf_exp", "violation"))
    # fetched into the mirror, under policybot's own refs, tags included
    mirror = pygit2.Repository(str(bot.mirror))
    assert str(mirror.references["refs/remotes/policybot/master"].target) == base
    assert "refs/tags/v6.6" in mirror.references
    # the config's state dir is used, not $POLICYBOT_STATE_DIR
    assert not (tmp_path / "state" / "outbox").exists()

    # week 3: two new kfuncs land without a declaration
    w3 = up.land("bpf: add bpf_new1 and bpf_new2", "2024-01-10",
                 kfuncs=dict(up.kfuncs, bpf_new1=FOO, bpf_new2=FOO))
    new = sim.week(W03, "ok")
    assert set(new) == {report_subject("2024-W03")}
    rep = body(new[report_subject("2024-W03")])
    assert f"{base[:12]}..{w3[:12]}" in rep
    assert counts(rep) == {"violation": 0, "warning": 0, "notice": 0, "info": 0}
    assert section(rep, "without a stability declaration") == ["bpf_new1", "bpf_new2"]

    # week 4: bpf_new1 is declared stable in the manifest; bpf_old is deprecated for it
    decls = dict(up.decls, bpf_new1="stable", bpf_old={"stability": "deprecated", "replacement": "bpf_new1"})
    w4 = up.land("bpf: deprecate bpf_old in favour of bpf_new1", "2024-01-17", decls=decls)
    new = sim.week(W04, "ok")
    ann = "[ANN] kfunc deprecation: bpf_old (removal not before 2025-01-17)"  # 12 months from the commit
    assert set(new) == {report_subject("2024-W04"), ann}
    rep = body(new[report_subject("2024-W04")])
    assert f"{w3[:12]}..{w4[:12]}" in rep
    assert counts(rep) == {"violation": 0, "warning": 0, "notice": 1, "info": 0}
    assert "DEPRECATION_STARTED" in rep and "bpf_old" in rep and "earliest removal 2025-01-17" in flat(rep)
    assert "without a stability declaration" not in rep  # nothing new this week
    notice = new[ann]
    check_bot_mail(notice)
    assert "ast@kernel.org" in [a.addr_spec for a in notice["Cc"].addresses]  # M: of kernel/bpf/
    text = body(notice)
    assert "int bpf_old(struct task_struct *p, u32 flags)" in text
    assert "2024-01-17" in text and "2025-01-17" in text
    assert "bpf_ksym_exists(bpf_new1)" in flat(text)
    assert "TRACING, XDP" in flat(text)

    # week 5: nothing lands; bpf_exp's promise ends on 2024-05-01, 93 days away: outside the horizon
    new = sim.week(W05, "unchanged")
    assert set(new) == {report_subject("2024-W05")}
    rep = body(new[report_subject("2024-W05")])
    assert w4[:12] in rep and "Audited" not in rep and "bpf_exp" not in rep

    # week 6: nothing lands; 86 days left: the promise-ending notice, once
    new = sim.week(W06, "unchanged")
    ending = "[NOTICE] kfunc promise ending: bpf_exp (stable until 2024-05-01)"
    assert set(new) == {report_subject("2024-W06"), ending}
    check_bot_mail(new[ending])
    assert "in 86 days" in flat(body(new[ending]))
    rep = body(new[report_subject("2024-W06")])
    assert any("bpf_exp" in ln and "2024-05-01" in ln for ln in section(rep, "Promises ending"))

    # week 7: an unacknowledged break: stable bpf_foo removed; the only ack is from someone who
    # is not a maintainer of kernel/bpf/
    kf = {k: v for k, v in up.kfuncs.items() if k != "bpf_foo"}
    w7 = up.land(f"bpf: drop bpf_foo\n\nKfunc-Break-Acked-by: {NOT_A_MAINTAINER}\n"
                 "Signed-off-by: Dev <dev@example.org>\n", "2024-02-07", kfuncs=kf)
    new = sim.week(W07, "ok")
    assert set(new) == {report_subject("2024-W07")}  # the expiry notice is not sent again
    rep = body(new[report_subject("2024-W07")])
    assert f"{w4[:12]}..{w7[:12]}" in rep
    assert counts(rep) == {"violation": 1, "warning": 0, "notice": 0, "info": 0}
    assert "KFUNC_REMOVED" in rep and "bpf_foo" in rep
    assert "acknowledged" not in rep.lower()
    assert any("bpf_exp" in ln for ln in section(rep, "Promises ending"))

    # the whole run: 6 reports, 1 announcement, 1 notice; files == rows; every report is a report
    everything = bot.mails()
    subjects = sorted(m["Subject"] for m in everything.values())
    assert subjects == sorted([report_subject(w) for w in ("2024-W02", "2024-W03", "2024-W04", "2024-W05",
                                                           "2024-W06", "2024-W07")] + [ann, ending])
    rows = bot.mail_rows()
    assert sorted(r.msgid for r in rows) == sorted(everything)
    assert {r.msgid: r.kind for r in rows} == {
        k: ("report" if m["Subject"].startswith("[REPORT]") else "notice") for k, m in everything.items()}
    assert all(r.status == "queued" for r in rows)  # drafts only: mail.send is false
    files = [p for sub in ("new", "cur") for p in (bot.outbox / sub).iterdir()]
    assert len(files) == len(everything) and not list((bot.outbox / "tmp").iterdir())
    for m in everything.values():
        check_bot_mail(m)
    # the run history: one audit row per run, the violation recorded against week 7
    with bot.state().engine.connect() as conn:
        statuses = [r.status for r in conn.execute(sa.select(runs).order_by(runs.c.id))]
    assert statuses[0] == "baseline" and statuses.count("baseline") == 1
    assert len(statuses) == 6 * 3  # every run, re-runs included

    # policybot outbox lists the same queue
    capsys.readouterr()
    assert main(["outbox", "--config", str(bot.config)]) == 0
    listing = capsys.readouterr().out
    assert f"{len(everything)} queued" in listing
    assert all(k in listing for k in everything)


def test_quiet_weeks_off_no_report_for_baseline_or_unchanged(tmp_path, capsys):
    bot = Bot(tmp_path, quiet_weeks=False)
    cfg = load_config(bot.config)
    # Runner directly, with an injected date
    summary = Runner(cfg, State(state_dir=cfg.state_dir), dt.date(2024, 1, 8)).run()
    assert [t.status for t in summary.trees] == ["baseline"] and summary.queued == []
    summary = Runner(cfg, State(state_dir=cfg.state_dir), dt.date(2024, 1, 15)).run()
    assert [t.status for t in summary.trees] == ["unchanged"] and summary.queued == []
    assert bot.mails() == {}
    bot.upstream.land("bpf: drop bpf_foo", "2024-01-17",
                      kfuncs={k: v for k, v in BASE_KFUNCS.items() if k != "bpf_foo"})
    summary = Runner(cfg, State(state_dir=cfg.state_dir), dt.date(2024, 1, 22)).run()
    assert [t.status for t in summary.trees] == ["ok"]
    got = bot.mails()
    assert [m["Subject"] for m in got.values()] == [report_subject("2024-W04")]
    assert summary.queued == list(got)
    assert counts(body(next(iter(got.values()))))["violation"] == 1


def test_only_selected_jobs_run(tmp_path, capsys):
    """--job audit moves the audited commit but drafts no report; a report job alone does not."""
    bot = Bot(tmp_path)
    assert bot.run(capsys, W02, "--job", "audit")[0] == 0
    assert bot.mails() == {} and bot.last_audited() == bot.upstream.head
    bot.upstream.land("bpf: drop bpf_foo", "2024-01-10",
                      kfuncs={k: v for k, v in BASE_KFUNCS.items() if k != "bpf_foo"})
    before = bot.last_audited()
    rc, out, _ = bot.run(capsys, W03, "--job", "report")
    assert rc == 0
    assert bot.last_audited() == before  # a report does not consume the range
    (rep,) = bot.mails().values()
    assert rep["Subject"] == report_subject("2024-W03") and counts(body(rep))["violation"] == 1


def test_the_weekly_run_reads_the_census_sources_first(tmp_path, capsys):
    """[census] sources: read again at the start of the run, and an audit on that state names the
    program a removal breaks; an unreadable source is a failure of the run."""
    tool = tmp_path / "tool"
    tool.mkdir()
    (tool / "tool.bpf.c").write_text("int bpf_foo(struct task_struct *p, u32 flags) __ksym;\n"
                                     "int f(void) { return bpf_foo(0, 0); }\n")
    bot = Bot(tmp_path, extra=f'[census]\nsources = ["{tool}", "{tmp_path / "gone"}"]\n')
    rc, out, _ = bot.run(capsys, W02, "--job", "audit")
    assert "census: 1 use of kfuncs kept" in out, out
    assert f"failed: census: {tmp_path / 'gone'}: no such file or directory" in out, out
    bot.upstream.land("bpf: drop bpf_foo", "2024-01-10",
                      kfuncs={k: v for k, v in BASE_KFUNCS.items() if k != "bpf_foo"})
    capsys.readouterr()
    assert main(["audit", "--repo", str(bot.upstream.path), "--base", "v6.6", "--rev", "HEAD",
                 "--state-dir", str(bot.state_dir), "--today", W03]) == 1
    assert "users: This breaks tool (strong): it calls bpf_foo today." in capsys.readouterr().out


# -- bugs found while writing the simulation ------------------------------------------------------


def test_acknowledged_break_week_is_reported(tmp_path, capsys):
    bot = Bot(tmp_path)
    up = bot.upstream
    assert bot.run(capsys, W02)[0] == 0
    base = up.head
    head = up.land(f"bpf: extend bpf_bar\n\nKfunc-Break-Acked-by: {ACKER}\nSigned-off-by: Dev <dev@example.org>\n",
                   "2024-01-10", kfuncs=dict(up.kfuncs, bpf_bar=WIDER))
    rc, out, err = bot.run(capsys, W03)
    assert rc == 0, err
    reports = [m for m in bot.mails().values() if m["Subject"] == report_subject("2024-W03")]
    assert len(reports) == 1
    rep = body(reports[0])
    assert f"{base[:12]}..{head[:12]}" in rep
    assert counts(rep)["violation"] == 0  # an acknowledged break does not count
    assert "1 acknowledged" in flat(rep)
    assert "KFUNC_PARAM_ADDED" in rep and "bpf_bar" in rep and "Alexei Starovoitov" in rep


def test_new_kfunc_declared_in_the_same_week_is_not_undeclared(tmp_path, capsys):
    bot = Bot(tmp_path)
    up = bot.upstream
    assert bot.run(capsys, W02)[0] == 0
    up.land("bpf: add bpf_declared (stable) and bpf_bare", "2024-01-10",
            kfuncs=dict(up.kfuncs, bpf_declared=FOO, bpf_bare=FOO),
            decls=dict(up.decls, bpf_declared="stable"))
    assert bot.run(capsys, W03)[0] == 0
    (rep,) = [m for m in bot.mails().values() if m["Subject"] == report_subject("2024-W03")]
    assert section(body(rep), "without a stability declaration") == ["bpf_bare"]


def test_configured_expiry_horizon_decides_the_notice(tmp_path, capsys):
    bot = Bot(tmp_path, extra="[audit]\nexpiring_horizon_days = 30\n")
    assert bot.run(capsys, W02)[0] == 0
    assert bot.run(capsys, W06)[0] == 0  # bpf_exp ends 2024-05-01: 86 days, beyond 30
    subjects = {m["Subject"] for m in bot.mails().values()}
    assert not any(s.startswith("[NOTICE]") for s in subjects), subjects
    rep = body(next(m for m in bot.mails().values() if m["Subject"] == report_subject("2024-W06")))
    assert "bpf_exp" not in rep


def test_fetch_failure_of_a_url_remote_is_mailed_to_the_operator_alone(tmp_path, capsys):
    """The operator's fault stays private (issue 26): no report to the list, one mail to
    mail.operator naming the URL, recorded; the same fault again that week is not mailed again."""
    url = f"http://127.0.0.1:{free_port()}/upstream.git"  # loopback, nothing listens
    bot = Bot(tmp_path, remote=url)
    rc, out, err = bot.run(capsys, W02)
    assert rc == 2
    assert "fetch-failed" in out, (out, err)
    (mail,) = bot.mails().values()
    assert mail["Subject"] == "[policybot] 1 problem in the run of 2024-01-08"
    assert [a.addr_spec for a in mail["To"].addresses] == ["ops@example.org"] and mail["Cc"] is None
    assert url in flat(body(mail)) and f"tree {TREE}" in body(mail)
    assert bot.state().failure("tree", TREE).reason.startswith("fetching master from")
    assert bot.run(capsys, "2024-01-09")[0] == 2
    assert len(bot.mails()) == 1  # once a week


def test_a_failed_tree_is_skipped_until_its_remote_moves(tmp_path, capsys, monkeypatch):
    """A tree whose audit failed is skipped while the remote's branch is the commit it failed on,
    and tried again as soon as the remote moves, whatever the mirror's ref says: the mirror
    moves only on a fetch, which the skipped tree never reached (the report promises "tried
    again when its head moves")."""
    from policybot.policy.audit import Auditor
    bot = Bot(tmp_path)
    assert bot.run(capsys, W02)[0] == 0  # the baseline
    failed_on = bot.upstream.land("bpf: more work", "2024-01-10",
                                  kfuncs={**BASE_KFUNCS, "bpf_new": FOO})
    real_audit = Auditor.audit

    def poisoned(self, head_rev, base_rev=None):
        raise RuntimeError("poisoned tree")

    monkeypatch.setattr(Auditor, "audit", poisoned)
    rc, out, _ = bot.run(capsys, W03)
    assert rc == 2 and f"{TREE}: error" in out and "poisoned tree" in out, (out, _)
    monkeypatch.setattr(Auditor, "audit", real_audit)
    rc, out, _ = bot.run(capsys, W04)  # nothing landed: skipped, and said so
    assert rc == 2 and f"skipped: failed on {failed_on[:12]}" in out and "tried again when master moves" in out
    assert bot.last_audited() != failed_on
    moved = bot.upstream.land("bpf: the fix", "2024-01-24", kfuncs={**BASE_KFUNCS, "bpf_new": FOO, "bpf_newer": FOO})
    rc, out, _ = bot.run(capsys, W05)
    assert rc == 0 and "skipped: failed on" not in out, out
    assert bot.last_audited() == moved
    assert bot.state().failure("tree", TREE) is None


def test_drafted_mails_record_their_tree(tmp_path, capsys):
    bot = Bot(tmp_path)
    assert bot.run(capsys, W02)[0] == 0
    rows = bot.mail_rows()
    assert rows and all(r.tree == TREE for r in rows)


def test_weekly_run_writes_the_stability_page(tmp_path, capsys):
    bot = Bot(tmp_path)
    page = tmp_path / "www" / "bpf-next.html"
    bot.config.write_text(bot.config.read_text() + f'report_html = "{page}"\n')
    assert bot.run(capsys, W02)[0] == 0
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html
    for name in BASE_KFUNCS:
        assert name in html
    assert not list(page.parent.glob("*.tmp"))


def test_the_weekly_page_shows_the_weeks_findings_under_the_trees_name(tmp_path, capsys):
    """The page beside a report with 1 violation says 1 violation (the week's findings, not the
    head's state, which has none), and is titled with the tree's name and `git describe`."""
    import re
    bot = Bot(tmp_path)
    page = tmp_path / "www" / "bpf-next.html"
    bot.config.write_text(bot.config.read_text() + f'report_html = "{page}"\n')
    assert bot.run(capsys, W02)[0] == 0
    head = bot.upstream.land("bpf: drop bpf_foo", "2024-01-10",
                             kfuncs={k: v for k, v in BASE_KFUNCS.items() if k != "bpf_foo"})
    assert bot.run(capsys, W03)[0] == 0
    rep = body(next(m for m in bot.mails().values() if m["Subject"] == report_subject("2024-W03")))
    assert counts(rep)["violation"] == 1
    html = page.read_text()
    title = f"kfunc stability: {TREE} at v6.6-1-g{head[:12]}"  # one commit after the tag v6.6
    assert f"<title>{title}</title>" in html, re.findall("<title>.*?</title>", html)
    assert "findings: 1 violations, 0 warnings, 0 notices, 0 info" in html
    assert "findings of week 2024-W03" in html and "KFUNC_REMOVED" in html


def test_a_mail_already_drafted_is_not_built_again(tmp_path, capsys, monkeypatch):
    """The runner's once-only pre-check: keys recorded -> the draft is not even rendered into a
    message (a template an operator broke since cannot fail a run that mails nothing)."""
    import policybot.app.review as app_review  # the one queueing helper the runner uses

    bot = Bot(tmp_path)
    assert bot.run(capsys, W02)[0] == 0
    assert [m["Subject"] for m in bot.mails().values()] == [report_subject("2024-W02")]
    built = []

    def refuse(config, draft):
        built.append(draft.subject)
        raise AssertionError(f"built again: {draft.subject}")

    monkeypatch.setattr(app_review, "draft_message", refuse)
    rc, out, err = bot.run(capsys, W02)  # the same week: the report's key is recorded
    assert (rc, built) == (0, []), (out, err)
    assert "drafted 0 mails" in out
    # a new week's report is a new key: it is built (and here refused, which the run reports,
    # and mails to the operator: that mail is built, and refused, too)
    rc, out, err = bot.run(capsys, W03)
    assert set(built) == {report_subject("2024-W03"), "[policybot] 1 problem in the run of 2024-01-15"}
    assert rc == 2 and "failed: mail to the operator: AssertionError: built again" in out, (out, err)


# -- once-only: a week that repeats mailed findings and adds one (issue 21) --------------------------


def new_mails(bot: Bot, before: dict) -> list[str]:
    return sorted(m["Subject"] for k, m in bot.mails().items() if k not in before)


def test_a_week_that_repeats_a_mailed_ending_and_adds_one_mails_only_the_new_one(tmp_path, capsys):
    """bpf_exp's promise ends on 2024-05-01: its notice went out in week 6. In week 7 the audit
    finds it again (every week does, until the day) and one more: bpf_bar, now declared stable
    from the same day as bpf_exp, so its promise ends the same day. Only bpf_bar's notice is new."""
    bot = Bot(tmp_path)
    up = bot.upstream
    assert bot.run(capsys, W02)[0] == 0
    assert bot.run(capsys, W06)[0] == 0
    exp = "[NOTICE] kfunc promise ending: bpf_exp (stable until 2024-05-01)"
    assert exp in {m["Subject"] for m in bot.mails().values()}
    before = bot.mails()
    up.land("bpf: bpf_bar has been stable as long as bpf_exp", "2024-02-07",
            decls=dict(up.decls, bpf_bar={"stability": "stable", "since": EXP_SINCE}))
    rc, out, err = bot.run(capsys, W07)
    assert rc == 0, (out, err)
    assert new_mails(bot, before) == ["[NOTICE] kfunc promise ending: bpf_bar (stable until 2024-05-01)",
                                      report_subject("2024-W07")]
    rep = body(next(m for m in bot.mails().values() if m["Subject"] == report_subject("2024-W07")))
    ending = section(rep, "Promises ending")
    assert any("bpf_exp" in ln for ln in ending) and any("bpf_bar" in ln for ln in ending)  # both, in the report


def test_a_repeated_audit_range_mails_only_the_new_deprecation(tmp_path, capsys):
    """Week 4 announced bpf_old's deprecation, then died before it recorded its audited commit
    (as a crash would leave it). The same day bpf_new was deprecated too, for the same removal
    date. Week 5 audits the range again: both deprecations; only bpf_new's is announced."""
    bot = Bot(tmp_path)
    up = bot.upstream
    up.land("bpf: add bpf_new", "2024-01-10", kfuncs=dict(up.kfuncs, bpf_new=FOO))  # unstable, as bpf_old
    assert bot.run(capsys, W03)[0] == 0
    w3 = up.head
    up.land("bpf: deprecate bpf_old", "2024-01-17", decls=dict(up.decls, bpf_old="deprecated"))
    assert bot.run(capsys, W04)[0] == 0
    old = "[ANN] kfunc deprecation: bpf_old (removal not before 2025-01-17)"
    assert old in {m["Subject"] for m in bot.mails().values()}
    bot.state().set_last_audited(TREE, w3)  # the run's last step, undone
    before = bot.mails()
    up.land("bpf: deprecate bpf_new", "2024-01-17", decls=dict(up.decls, bpf_new="deprecated"))
    rc, out, err = bot.run(capsys, W05)
    assert rc == 0, (out, err)
    assert new_mails(bot, before) == ["[ANN] kfunc deprecation: bpf_new (removal not before 2025-01-17)",
                                      report_subject("2024-W05")]
    rep = body(next(m for m in bot.mails().values() if m["Subject"] == report_subject("2024-W05")))
    assert "bpf_old" in rep and "bpf_new" in rep  # the report of the range names both


def test_a_read_only_state_database_is_one_line_naming_it(tmp_path, capsys):
    """A state the run may not write (its owner, its permissions): one line naming the database
    and the cause, no SQL statement, exit 2. Read-only through SQLite's own mode=ro, which root
    obeys too (chmod would not stop root)."""
    bot = Bot(tmp_path)
    assert bot.run(capsys, W02)[0] == 0
    audited = bot.last_audited()
    db = bot.state_dir / "policybot.sqlite"
    url = f"sqlite:///file:{db}?mode=ro&uri=true"
    bot.upstream.land("bpf: drop bpf_foo", "2024-01-10", kfuncs={k: v for k, v in BASE_KFUNCS.items() if k != "bpf_foo"})
    rc, out, err = bot.run(capsys, W03, "--db", url)
    assert rc == 2, (out, err)
    assert err == (f"policybot: state database {db}: attempt to write a readonly database "
                   "(check the owner and permissions of the file and of its directory)\n"), err
    assert bot.last_audited() == audited != bot.upstream.head  # nothing written, the week not lost


def test_a_bug_in_the_states_sql_is_not_taken_for_the_machines_fault(tmp_path):
    """SQLite calls a syntax error and a missing table OperationalError too: those stay as they
    are (a bug, with its statement), only the machine's faults become one line."""
    import pytest
    from policybot.errors import PolicybotError
    state = State(state_dir=tmp_path)
    for sql in ("SELEC 1", "SELECT * FROM no_such_table"):
        with state.engine.connect() as conn, pytest.raises(sa.exc.OperationalError) as raised:
            conn.exec_driver_sql(sql)
        assert not isinstance(raised.value, PolicybotError) and sql in str(raised.value)
