"""``policybot schedule``: the jobs of ``policybot run`` under APScheduler 3.x.

Facts that shaped this (APScheduler 3.x's documentation): the default misfire grace
is one second, so a weekly run missed while down would only be logged; jobs in
a persistent store are referenced as 'module:function'; re-adding a job with
replace_existing at every start recomputes its next run from now and skips a
missed run, so a job is (re)added only when its definition changed; crontab
day numbers are off by one in 3.x, so days are given by name.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import signal
import sys

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN, EVENT_SCHEDULER_START
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from .app.config import Config
from .state import State

UTC = dt.timezone.utc
MISFIRE_GRACE = 7 * 24 * 3600  # a run missed by up to a week still happens (once: coalesce)
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE}

log = logging.getLogger(__name__)


def job_definitions(cfg: Config, config_path: str | None,
                    state: dict | None = None) -> dict[str, tuple[str, object, dict]]:
    """id -> ('module:function', trigger, kwargs); ``state``: the scheduler's own --db and
    --state-dir (only those given), so that its jobs resolve the state it does."""
    kwargs = {"config_path": config_path, **(state or {})}
    s = cfg.schedule
    day = "*" if s.weekly_day == "daily" else s.weekly_day
    jobs = {"weekly": ("policybot.scheduler:weekly_job",
                       CronTrigger(day_of_week=day, hour=s.weekly_hour, minute=s.weekly_minute, timezone=UTC),
                       kwargs)}
    if s.inbox_minutes and (cfg.inbox_maildir or cfg.inbox_query):
        jobs["inbox"] = ("policybot.scheduler:inbox_job", IntervalTrigger(minutes=s.inbox_minutes, timezone=UTC),
                         kwargs)
    return jobs


def _same(job, func: str, trigger, kwargs: dict) -> bool:
    """The stored job is this definition (compared on the job itself, not a side record)."""
    return job is not None and job.func_ref == func and str(job.trigger) == str(trigger) \
        and dict(job.kwargs) == kwargs


def build_scheduler(cfg: Config, state: State, config_path: str | None,
                    overrides: dict | None = None) -> BlockingScheduler:
    """A scheduler on the state database, its jobs in sync with the config."""
    store = SQLAlchemyJobStore(engine=state.engine, tablename="apscheduler_jobs")
    scheduler = BlockingScheduler(jobstores={"default": store}, job_defaults=JOB_DEFAULTS, timezone=UTC)
    store.start(scheduler, "default")  # lets us look jobs up before the scheduler runs
    wanted = job_definitions(cfg, config_path, overrides)
    for job in store.get_all_jobs():
        if job.id not in wanted:
            store.remove_job(job.id)
    for job_id, (func, trigger, kwargs) in wanted.items():
        if _same(store.lookup_job(job_id), func, trigger, kwargs):
            continue  # unchanged: keep its next run time (and a run missed while down)
        scheduler.add_job(func, trigger, id=job_id, kwargs=kwargs, replace_existing=True,
                          name=f"policybot {job_id}")
    return scheduler


def next_runs(cfg: Config, state: State, config_path: str | None,
              now: dt.datetime | None = None, overrides: dict | None = None) -> list[tuple[str, dt.datetime | None, str]]:
    """(job id, next run time, trigger) as the running scheduler would see them."""
    now = now or dt.datetime.now(UTC)
    store = SQLAlchemyJobStore(engine=state.engine, tablename="apscheduler_jobs")
    probe = BlockingScheduler(jobstores={"default": store}, timezone=UTC)
    store.start(probe, "default")
    out = []
    for job_id, (func, trigger, kwargs) in job_definitions(cfg, config_path, overrides).items():
        job = store.lookup_job(job_id)
        if _same(job, func, trigger, kwargs):
            out.append((job_id, job.next_run_time, str(trigger)))
        else:
            out.append((job_id, trigger.get_next_fire_time(None, now), str(trigger)))
    return out


def log_to_stderr() -> None:
    """policybot's log lines (INFO and up) on stderr, one line each, which systemd puts in the
    journal: the scheduler's start, each job's start and result, its stop (once per process)."""
    logger = logging.getLogger("policybot")
    if not any(getattr(h, "policybot_stderr", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.policybot_stderr = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _log_start_and_stop(scheduler: BlockingScheduler, state: State) -> None:
    from .schema import redact

    def started(event) -> None:
        jobs = "; ".join(f"{job.id} next at {job.next_run_time.isoformat() if job.next_run_time else 'never'}"
                         for job in scheduler.get_jobs())
        log.info("policybot schedule: started on %s: %s", redact(state.url), jobs or "no jobs")

    def stopped(event) -> None:
        log.info("policybot schedule: stopped")

    scheduler.add_listener(started, EVENT_SCHEDULER_START)
    scheduler.add_listener(stopped, EVENT_SCHEDULER_SHUTDOWN)


def run_forever(cfg: Config, state: State, config_path: str | None, overrides: dict | None = None) -> None:
    log_to_stderr()
    scheduler = build_scheduler(cfg, state, config_path, overrides)
    _log_start_and_stop(scheduler, state)

    def stop(signum, frame):
        if scheduler.running:
            scheduler.shutdown(wait=True)  # the running job finishes; the next start resumes
        else:
            log.info("policybot schedule: stopped while starting")
            raise SystemExit(0)  # stopped while starting: nothing ran, nothing to finish

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    scheduler.start()


# -- job functions: referenced by 'module:function' from the job store ------------------------

def _run(jobs: tuple[str, ...], config_path: str | None, db: str | None, state_dir: str | None):
    from .app import settings
    from .app.weekly import weekly_run
    overrides = settings.Overrides(config=config_path, db=db, state_dir=state_dir)
    cfg = settings.load(overrides)
    return weekly_run(cfg, settings.open_state(overrides, cfg), jobs=jobs,
                      lock_wait=cfg.schedule.lock_wait_seconds)


def _guarded(name: str, jobs: tuple[str, ...], config_path: str | None, db: str | None,
             state_dir: str | None) -> None:
    """One job run, its start and its result in the log: the lines `policybot run` prints
    (a line per tree with what happened and its counts, the series reviewed, the mail), each
    failure a warning. Whatever fails is one log line (never a traceback in the scheduler's
    log), and the next run time stays: a failed tree or message is recorded by the run itself."""
    from .errors import describe
    from .render import render
    log.info("policybot %s job: started", name)
    try:
        runner, summary = _run(jobs, config_path, db, state_dir)
    except Exception as e:  # noqa: BLE001 - the scheduler must keep running
        log.error("policybot %s job failed: %s", name, describe(e))
        return
    for line in render("run", "text", (runner, dataclasses.replace(summary, failures=[]))).splitlines():
        log.info("policybot %s job: %s", name, line)
    for failure in summary.failures:
        log.warning("policybot %s job: %s failed: %s", name, failure.what, failure.reason)


def weekly_job(config_path: str | None = None, db: str | None = None, state_dir: str | None = None) -> None:
    _guarded("weekly", ("audit", "notices", "report"), config_path, db, state_dir)


def inbox_job(config_path: str | None = None, db: str | None = None, state_dir: str | None = None) -> None:
    _guarded("inbox", ("review",), config_path, db, state_dir)
