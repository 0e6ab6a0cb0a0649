"""policybot schedule (issue 5) without waiting for a Monday: the triggers'
next fire times computed for chosen instants, the job store kept in sync with
the config across restarts, ``schedule --list``, the job functions called
directly, and a real ``python -m policybot schedule`` child stopped by SIGTERM.
"""

from __future__ import annotations

import datetime as dt
import mailbox
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import STATE_PAUSED, STATE_STOPPED
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from policybot.cli import main
from policybot.app.config import Config, load_config
from policybot.scheduler import build_scheduler, inbox_job, job_definitions, next_runs, weekly_job
from policybot.state import State, runs
from kit.mail import body
from kit.weekly import BASE_KFUNCS, Bot, patch_mail, report_subject

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def at(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).replace(tzinfo=UTC) if "+" not in s else dt.datetime.fromisoformat(s)


def config_file(tmp_path: Path, schedule: str = "", inbox: str = "") -> Path:
    p = tmp_path / "sched.toml"
    p.write_text(f'[state]\ndir = "{tmp_path / "st"}"\n[mail]\nfrom = "policybot <policybot@example.org>"\n'
                 f"[schedule]\n{schedule}\n[inbox]\n{inbox}\n")
    return p


def weekly_trigger(cfg: Config):
    func, trigger, kwargs = job_definitions(cfg, "/etc/policybot.toml")["weekly"]
    assert func == "policybot.scheduler:weekly_job" and kwargs == {"config_path": "/etc/policybot.toml"}
    return trigger


# -- triggers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("now, expected", [
    ("2024-01-07T12:00:00", "2024-01-08T06:00:00"),  # Sunday -> the Monday after
    ("2024-01-08T00:00:00", "2024-01-08T06:00:00"),  # Monday early -> that Monday
    ("2024-01-08T05:59:59", "2024-01-08T06:00:00"),
    ("2024-01-08T06:00:01", "2024-01-15T06:00:00"),  # just missed -> next Monday, not Tuesday
    ("2024-01-08T07:30:00+02:00", "2024-01-08T06:00:00"),  # 05:30 UTC: the time is UTC
    ("2024-01-09T06:00:00", "2024-01-15T06:00:00"),  # Tuesday
])
def test_default_weekly_is_monday_0600_utc(now, expected):
    trigger = weekly_trigger(Config())  # no config file: the defaults
    fire = trigger.get_next_fire_time(None, at(now))
    assert fire == at(expected)
    assert fire.weekday() == 0 and fire.utcoffset() == dt.timedelta(0)
    # the trap this avoids: crontab day 1 is Tuesday in APScheduler 3.x
    assert CronTrigger.from_crontab("0 6 * * 1", timezone=UTC).get_next_fire_time(None, at(now)).weekday() == 1


def test_configured_weekly_day_and_time(tmp_path):
    cfg = load_config(config_file(tmp_path, 'weekly = "fri 18:30"'))
    trigger = weekly_trigger(cfg)
    assert trigger.get_next_fire_time(None, at("2024-01-08T06:00:00")) == at("2024-01-12T18:30:00")
    assert trigger.get_next_fire_time(None, at("2024-01-12T18:30:01")) == at("2024-01-19T18:30:00")
    daily = weekly_trigger(load_config(config_file(tmp_path, 'weekly = "daily 03:15"')))
    assert daily.get_next_fire_time(None, at("2024-01-08T06:00:00")) == at("2024-01-09T03:15:00")
    assert daily.get_next_fire_time(None, at("2024-01-09T03:00:00")) == at("2024-01-09T03:15:00")


def test_inbox_job_only_with_an_inbox(tmp_path):
    assert set(job_definitions(load_config(config_file(tmp_path, "inbox_minutes = 15")), None)) == {"weekly"}
    cfg = load_config(config_file(tmp_path, "inbox_minutes = 15", f'maildir = "{tmp_path / "in"}"'))
    jobs = job_definitions(cfg, "c.toml")
    func, trigger, kwargs = jobs["inbox"]
    assert func == "policybot.scheduler:inbox_job" and kwargs == {"config_path": "c.toml"}
    assert isinstance(trigger, IntervalTrigger) and trigger.interval == dt.timedelta(minutes=15)
    off = load_config(config_file(tmp_path, "inbox_minutes = 0", f'maildir = "{tmp_path / "in"}"'))
    assert set(job_definitions(off, None)) == {"weekly"}


# -- the job store across restarts -------------------------------------------------------------------------


def persist(scheduler) -> None:
    """Start a built scheduler paused (it writes its jobs to the store, runs none) and stop it."""
    t = threading.Thread(target=scheduler.start, kwargs={"paused": True}, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while scheduler.state != STATE_PAUSED:
        assert time.monotonic() < deadline and t.is_alive(), "scheduler did not start"
        time.sleep(0.01)
    scheduler.shutdown(wait=False)
    t.join(10)
    assert scheduler.state == STATE_STOPPED and not t.is_alive()


def stored(state: State, job_id: str = "weekly"):
    store = SQLAlchemyJobStore(engine=state.engine, tablename="apscheduler_jobs")
    from apscheduler.schedulers.blocking import BlockingScheduler
    store.start(BlockingScheduler(timezone=UTC), "default")
    return store, store.lookup_job(job_id)


def set_next_run(state: State, when: dt.datetime, job_id: str = "weekly") -> None:
    store, job = stored(state, job_id)
    job._modify(next_run_time=when)
    store.update_job(job)


def next_monday_0600(after: dt.datetime) -> dt.datetime:
    d = after.astimezone(UTC)
    cand = d.replace(hour=6, minute=0, second=0, microsecond=0) + dt.timedelta(days=(7 - d.weekday()) % 7)
    return cand if cand > d else cand + dt.timedelta(days=7)


def test_restart_keeps_the_stored_next_run_unless_the_definition_changed(tmp_path):
    path = str(config_file(tmp_path))
    cfg = load_config(path)
    state = State(state_dir=cfg.state_dir)
    before = dt.datetime.now(UTC)
    persist(build_scheduler(cfg, state, path))
    _, job = stored(state)
    assert job.next_run_time == next_monday_0600(before)
    assert job.misfire_grace_time == 7 * 24 * 3600 and job.coalesce
    assert job.func_ref == "policybot.scheduler:weekly_job" and job.kwargs == {"config_path": path}

    # down over a Monday: the stored run is in the past; a restart with the same config keeps it,
    # so the missed run still happens (recomputing from now would skip it)
    missed = at("2024-01-08T06:00:00")
    set_next_run(state, missed)
    again = build_scheduler(cfg, state, path)
    assert stored(state)[1].next_run_time == missed
    assert [j.id for j in again.get_jobs()] == []  # nothing re-added
    assert next_runs(cfg, state, path)[0][1] == missed

    # the definition changed: replaced, next run from the new trigger
    path2 = str(config_file(tmp_path, 'weekly = "fri 18:30"'))
    assert path2 == path
    cfg2 = load_config(path2)
    before = dt.datetime.now(UTC)
    persist(build_scheduler(cfg2, state, path2))
    _, job = stored(state)
    assert job.next_run_time.weekday() == 4 and (job.next_run_time.hour, job.next_run_time.minute) == (18, 30)
    assert before < job.next_run_time <= before + dt.timedelta(days=7)
    assert "fri" in str(job.trigger)
    # a job no longer configured is removed: the inbox job comes and goes with [inbox] maildir
    cfg3 = load_config(config_file(tmp_path, 'weekly = "fri 18:30"\ninbox_minutes = 5',
                                   f'maildir = "{tmp_path / "in"}"'))
    persist(build_scheduler(cfg3, state, path))
    assert stored(state, "inbox")[1] is not None
    assert stored(state)[1].next_run_time == job.next_run_time  # the weekly job was not touched
    persist(build_scheduler(cfg2, state, path))
    assert stored(state, "inbox")[1] is None


def test_changed_definition_survives_a_restart_before_the_scheduler_started(tmp_path):
    path = str(config_file(tmp_path))
    state = State(state_dir=load_config(path).state_dir)
    persist(build_scheduler(load_config(path), state, path))  # Monday 06:00 stored
    config_file(tmp_path, 'weekly = "fri 18:30"')
    build_scheduler(load_config(path), state, path)  # ... and the process ends here
    persist(build_scheduler(load_config(path), state, path))
    assert "fri" in str(stored(state)[1].trigger)


def test_schedule_list(tmp_path, capsys):
    path = config_file(tmp_path, 'weekly = "wed 07:45"\ninbox_minutes = 30', f'maildir = "{tmp_path / "in"}"')
    before = dt.datetime.now(UTC)
    assert main(["schedule", "--config", str(path), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == ["weekly", "inbox"]
    weekly = dt.datetime.fromisoformat(lines[0].split()[1])
    assert weekly.weekday() == 2 and (weekly.hour, weekly.minute, weekly.utcoffset()) == (7, 45, dt.timedelta(0))
    assert before < weekly <= before + dt.timedelta(days=7)
    assert "cron[day_of_week='wed', hour='7', minute='45']" in lines[0]
    inbox = dt.datetime.fromisoformat(lines[1].split()[1])
    assert dt.timedelta(0) < inbox - before <= dt.timedelta(minutes=30, seconds=5)
    assert "interval[0:30:00]" in lines[1]
    # once a scheduler stored its jobs, --list shows the stored times (a missed run included)
    cfg = load_config(path)
    state = State(state_dir=cfg.state_dir)
    persist(build_scheduler(cfg, state, str(path)))
    set_next_run(state, at("2024-01-10T07:45:00"))
    assert main(["schedule", "--config", str(path), "--list"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[1] == "2024-01-10T07:45:00+00:00"


# -- the job functions, called directly -------------------------------------------------------------------


def this_week() -> set[str]:
    """The ISO week now (both, if the test runs across a week boundary)."""
    out = set()
    for _ in range(2):
        y, w, _d = dt.datetime.now(UTC).date().isocalendar()
        out.add(f"{y}-W{w:02d}")
    return out


def test_weekly_job_drafts_the_report_and_notices(tmp_path):
    bot = Bot(tmp_path)
    weekly_job(str(bot.config))
    weeks = this_week()
    got = bot.mails()
    assert len(got) == 1
    (rep,) = got.values()
    assert rep["Subject"] in {report_subject(w) for w in weeks}
    assert "baseline" in body(rep) and bot.upstream.head[:12] in body(rep)
    assert bot.last_audited() == bot.upstream.head
    # a deprecation lands: the next weekly job announces it (today's date: removal a year on)
    up = bot.upstream
    up.land("bpf: deprecate bpf_old", "2024-01-17", decls=dict(up.decls, bpf_old="deprecated"))
    weekly_job(str(bot.config))
    new = {m["Subject"] for k, m in bot.mails().items() if k not in got}
    assert len(new) == 1 and next(iter(new)).startswith("[ANN] kfunc deprecation: bpf_old (removal not before ")
    assert bot.last_audited() == up.head
    weekly_job(str(bot.config))  # again: nothing new
    assert len(bot.mails()) == 2


def test_inbox_job_reviews_a_new_patch_once(tmp_path):
    inbox = tmp_path / "inbox"
    mailbox.Maildir(inbox, create=True).add(patch_mail(tmp_path))
    bot = Bot(tmp_path, extra=f'[inbox]\nmaildir = "{inbox}"\n')
    weekly_job(str(bot.config))  # fetches upstream into the mirror the review applies the patch to
    before = set(bot.mails())
    inbox_job(str(bot.config))
    new = [m for k, m in bot.mails().items() if k not in before]
    assert [m["Subject"] for m in new] == ["Re: [PATCH bpf-next] bpf: drop bpf_foo"]
    reply = new[0]
    assert reply["In-Reply-To"] == "<20240205100000.1-1-jane@example.com>"
    assert [a.addr_spec for a in reply["To"].addresses] == ["jane@example.com"]
    assert "ast@kernel.org" in [a.addr_spec for a in reply["Cc"].addresses]
    assert "KFUNC_REMOVED" in body(reply) and "bpf_foo" in body(reply)
    inbox_job(str(bot.config))  # the message was seen: nothing again
    assert len(bot.mails()) == len(before) + 1


# -- a real scheduler process ----------------------------------------------------------------------------------


def wait_for(cond, timeout: float, what: str, proc: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"scheduler exited ({proc.returncode}) before {what}: {out}\n{err}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def stored_job_row(db: Path):
    if not db.exists():
        return None
    con = sqlite3.connect(db, timeout=5)
    try:
        return con.execute("SELECT id, next_run_time FROM apscheduler_jobs WHERE id = 'weekly'").fetchone()
    except sqlite3.OperationalError:  # no table yet
        return None
    finally:
        con.close()


def start_scheduler(config: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "policybot", "schedule", "--config", str(config)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def far_day() -> str:
    """A weekday three days from now: the weekly job is not due during the test."""
    return DAYS[(dt.datetime.now(UTC).weekday() + 3) % 7]


def stop(proc: subprocess.Popen) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("scheduler did not stop within 10 s of SIGTERM")
    return proc.returncode, out, err


def test_sigterm_stops_the_scheduler_cleanly(tmp_path):
    bot = Bot(tmp_path, extra=f'weekly = "{far_day()} 06:00"\n')
    proc = start_scheduler(bot.config)
    try:
        row = wait_for(lambda: stored_job_row(bot.state_dir / "policybot.sqlite"), 30, "the stored job", proc)
        # the row is written inside scheduler.start(), a moment before it runs (see the next test)
        time.sleep(0.3)
    finally:
        if proc.poll() is None:
            rc, out, err = stop(proc)
    assert rc == 0, err
    assert "Traceback" not in err
    # nothing ran, the job stays stored with its next run for the next start
    assert bot.mails() == {} and bot.last_audited() is None
    assert stored_job_row(bot.state_dir / "policybot.sqlite") == row
    when = dt.datetime.fromtimestamp(row[1], UTC)
    assert when > dt.datetime.now(UTC) and DAYS[when.weekday()] == far_day() and when.hour == 6


def test_run_missed_while_down_happens_once_at_start(tmp_path):
    bot = Bot(tmp_path, extra=f'weekly = "{far_day()} 06:00"\n')
    path = str(bot.config)
    cfg = load_config(path)
    state = State(state_dir=cfg.state_dir)
    persist(build_scheduler(cfg, state, path))
    set_next_run(state, dt.datetime.now(UTC) - dt.timedelta(days=2))  # missed two days ago
    proc = start_scheduler(bot.config)
    try:
        wait_for(lambda: bot.last_audited() == bot.upstream.head and bot.mails(), 30, "the missed run", proc)
        time.sleep(0.5)  # a second (duplicate) run would have started by now
    finally:
        if proc.poll() is None:
            rc, out, err = stop(proc)
    assert rc == 0, err
    got = bot.mails()
    assert [m["Subject"] for m in got.values()] in ([report_subject(w)] for w in this_week())
    with state.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar() == 1  # once (coalesced)
    when = stored(state)[1].next_run_time
    assert when > dt.datetime.now(UTC) and DAYS[when.weekday()] == far_day()


class Lines:
    """A child's stderr read line by line as it comes (the journal's view of it)."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def rest(self) -> list[str]:
        self._thread.join(10)
        return self.lines


def test_the_journal_gets_the_start_each_job_result_and_the_stop(tmp_path):
    """issue 26: a scheduler that ran a job printed nothing; now its stderr (the journal under
    systemd) says it started and when each job is next, each job's start and result (the tree,
    what happened, the counts, the mail), and that it stopped."""
    bot = Bot(tmp_path, extra=f'weekly = "{far_day()} 06:00"\n')
    weekly_job(str(bot.config))  # the baseline
    base = bot.upstream.head
    head = bot.upstream.land("bpf: drop bpf_foo", "2024-02-01",
                             kfuncs={k: v for k, v in BASE_KFUNCS.items() if k != "bpf_foo"})
    path = str(bot.config)
    state = State(state_dir=load_config(path).state_dir)
    persist(build_scheduler(load_config(path), state, path))
    set_next_run(state, dt.datetime.now(UTC) - dt.timedelta(days=2))  # due at once
    proc = start_scheduler(bot.config)
    err = Lines(proc.stderr)
    try:
        wait_for(lambda: any(" job: drafted " in line for line in err.lines), 60, "the job's result", proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
    lines = err.rest()
    assert proc.returncode == 0, lines
    assert lines[0].startswith(f"policybot schedule: started on sqlite:///{bot.state_dir}/policybot.sqlite: "
                               f"weekly next at "), lines
    job = [line for line in lines if line.startswith("policybot weekly job: ")]
    assert job[0] == "policybot weekly job: started"
    (tree,) = [line for line in job if line.startswith("policybot weekly job: bpf-next: ")]
    assert f"{base[:12]}..{head[:12]}" in tree and "1 violation" in tree, tree
    # this week's report went out with the baseline: the job drafted nothing new
    assert f"policybot weekly job: drafted 0 mails to {bot.outbox}" in job, job
    assert lines[-1] == "policybot schedule: stopped"
    assert "Traceback" not in "\n".join(lines)


SIGTERM_AT = r"""
import os, signal, sys
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
orig = SQLAlchemyJobStore.add_job

def add_job(self, job):
    orig(self, job)
    os.kill(os.getpid(), signal.SIGTERM)  # systemd stops the service while it is starting

SQLAlchemyJobStore.add_job = add_job
from policybot.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_while_the_scheduler_is_starting(tmp_path):
    bot = Bot(tmp_path, extra=f'weekly = "{far_day()} 06:00"\n')
    done = subprocess.run([sys.executable, "-c", SIGTERM_AT, "schedule", "--config", str(bot.config)],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert bot.mails() == {}


def test_a_failing_job_is_one_log_line_and_the_scheduler_goes_on(tmp_path, caplog):
    """issue 11: a tree that cannot be read, or a run that cannot start, never raises into
    APScheduler (which would log a traceback): one line in the log, the failure recorded."""
    import logging
    bot = Bot(tmp_path, extra="lock_wait_seconds = 1\n")  # the held lock below: given up after a second
    (tmp_path / "notarepo").write_text("x\n")
    with open(bot.config, "a") as f:
        f.write(f'\n[[trees]]\nname = "broken"\nrepo = "{tmp_path / "notarepo"}"\n')
    caplog.set_level(logging.WARNING, logger="policybot")
    weekly_job(str(bot.config))  # does not raise
    lines = [r for r in caplog.records if r.name == "policybot.scheduler"]
    assert len(lines) == 1 and "tree broken failed" in lines[0].getMessage() and lines[0].exc_info is None
    assert bot.last_audited() is not None  # the healthy tree was audited
    caplog.clear()
    with bot.state().lock():  # another run holds the lock
        inbox_job(str(bot.config))
    (line,) = [r for r in caplog.records if r.name == "policybot.scheduler"]
    assert "another policybot run holds the lock" in line.getMessage() and line.exc_info is None


def test_a_job_due_while_another_runs_waits_for_the_lock_and_runs(tmp_path, caplog):
    """issue 22: the inbox and weekly jobs due in one minute both run: a job that finds the lock
    held waits for it (up to [schedule] lock_wait_seconds) instead of failing."""
    import logging
    import threading
    bot = Bot(tmp_path, extra="lock_wait_seconds = 30\n")
    caplog.set_level(logging.WARNING, logger="policybot")
    held, release = threading.Event(), threading.Event()

    def other_run():
        with bot.state().lock():
            held.set()
            release.wait(10)

    t = threading.Thread(target=other_run)
    t.start()
    held.wait(10)
    threading.Timer(1.0, release.set).start()
    weekly_job(str(bot.config))
    t.join()
    assert [r for r in caplog.records if r.name == "policybot.scheduler"] == []
    assert bot.last_audited() is not None  # it ran, after the other run let go
