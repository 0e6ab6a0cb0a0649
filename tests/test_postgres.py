"""The state on PostgreSQL (a shared deployment), through the same code as SQLite.

Runs when POLICYBOT_TEST_DATABASE_URL names a scratch database
(scripts/with-postgres provides one; `make test` uses it). With
POLICYBOT_REQUIRE_POSTGRES=1 a missing database is a failure, not a skip.
"""

import datetime as dt
import os
import sqlite3

import pytest
import sqlalchemy as sa

from policybot.app.config import Config, Tree
from policybot.errors import PolicybotError
from policybot.gitbuild import HistoryBuilder
from policybot.app.weekly import Runner
from policybot.kernel.scanner import Scanner
from policybot.mail.message import MailConfig
from policybot.policy.audit import Auditor
from policybot.policy.config import Policy
from policybot.state import SCHEMA_VERSION, State, metadata
from kit.trees import BTF_H, FOO, MANIFEST, kernel, manifest

URL = os.environ.get("POLICYBOT_TEST_DATABASE_URL")
if not URL:
    if os.environ.get("POLICYBOT_REQUIRE_POSTGRES") == "1":
        raise RuntimeError("POLICYBOT_REQUIRE_POSTGRES=1 but no POLICYBOT_TEST_DATABASE_URL (scripts/with-postgres)")
    pytest.skip("no PostgreSQL (run under scripts/with-postgres)", allow_module_level=True)


@pytest.fixture
def pg(tmp_path):
    """A fresh schema in the scratch database."""
    engine = sa.create_engine(URL)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS apscheduler_jobs"))
    metadata.drop_all(engine)
    engine.dispose()
    return State(URL, state_dir=tmp_path / "state")


def tree(tmp_path):
    b = HistoryBuilder(tmp_path / "repo")
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": kernel({"bpf_foo": FOO, "bpf_bar": FOO}),
              MANIFEST: manifest(bpf_foo="stable")}, "one", "2024-01-01T00:00:00")
    b.tag("v6.8")
    b.commit({"kernel/bpf/helpers.c": kernel({"bpf_bar": FOO})}, "drop bpf_foo", "2024-03-01T00:00:00")
    b.tag("v6.9")
    return b


def test_schema_and_dialect(pg):
    assert pg.dialect == "postgresql" and pg.schema_version == SCHEMA_VERSION == 5


def test_parse_cache_beside_a_postgres_state(pg, tmp_path):
    b = tree(tmp_path)
    cold = Scanner(b.repo, pg.cache)
    first = cold.inventory("v6.8")
    assert cold.stats["blobs_read"] >= 1 and cold.stats["trees_walked"] >= 1
    warm = Scanner(b.repo, pg.cache)
    assert warm.inventory("v6.8").to_json() == first.to_json()
    # nothing walked, parsed or read again: btf.h's flags are part of the semantics cached by blob id
    assert (warm.stats["trees_walked"], warm.stats["files_parsed"], warm.stats["blobs_read"]) == (0, 0, 0)
    # the cache is a local file in the state directory; the database holds only state
    assert pg.cache.path == tmp_path / "state" / "cache.sqlite" and pg.cache.path.exists()
    with pg.engine.connect() as conn:
        assert not set(sa.inspect(conn).get_table_names()) & {"facts_cache", "commit_dates"}


def test_audit_and_date_cache_with_postgres(pg, tmp_path):
    b = tree(tmp_path)
    auditor = Auditor(b.repo, Scanner(b.repo, pg.cache), Policy())
    result = auditor.audit("v6.9", "v6.8")
    [f] = result.findings
    assert (f.rule, f.kfunc, f.verdict) == ("KFUNC_REMOVED", "bpf_foo", "violation")
    assert f.promise.since.release == "v6.8"
    with sqlite3.connect(pg.cache.path) as conn:
        cached = conn.execute("SELECT count(*) FROM commits").fetchone()[0]
    assert cached >= 2  # the introducing commit and its release
    again = Auditor(b.repo, Scanner(b.repo, pg.cache), Policy()).audit("v6.9", "v6.8")
    assert [(x.rule, x.kfunc, x.promise.since.date) for x in again.findings] == [
        ("KFUNC_REMOVED", "bpf_foo", dt.date(2024, 1, 1))]


def test_weekly_run_and_lock_on_postgres(pg, tmp_path):
    b = tree(tmp_path)
    cfg = Config(path="test", db_url=URL, mail=MailConfig(from_addr="policybot <bot@example.org>"),
                 trees=[Tree("t", str(tmp_path / "repo"), branch="v6.8")])
    runner = Runner(cfg, pg, dt.date(2024, 1, 8))
    assert runner.run().trees[0].status == "baseline"
    cfg.trees[0].branch = "v6.9"
    summary = Runner(cfg, pg, dt.date(2024, 3, 4)).run()
    assert summary.trees[0].status == "ok" and len(summary.queued) == 1  # the week's report
    with pg.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT kind, tree FROM mails")).all()
        last = conn.execute(sa.text("SELECT last_audited FROM tree_state")).scalar()
    assert rows == [("report", "t")] and last == str(b.repo.revparse_single("v6.9").peel(1).id)
    assert Runner(cfg, pg, dt.date(2024, 3, 4)).run().queued == []  # once only
    # the advisory lock: a second holder on the same database is refused
    other = State(URL, state_dir=tmp_path / "other")
    with pg.lock():
        with pytest.raises(PolicybotError, match="another policybot run holds the lock"):
            with other.lock():
                pass


def test_scheduler_store_on_postgres(pg, tmp_path):
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    from policybot.scheduler import job_definitions, next_runs
    cfg = Config(path="test", trees=[Tree("t", str(tmp_path))])
    func, trigger, kwargs = job_definitions(cfg, None)["weekly"]
    # store the job the way the running scheduler does, in the PostgreSQL job store
    bg = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(engine=pg.engine, tablename="apscheduler_jobs")},
                             timezone=dt.timezone.utc)
    bg.start(paused=True)
    bg.add_job(func, trigger, id="weekly", kwargs=kwargs)
    stored = bg.get_job("weekly").next_run_time
    bg.shutdown(wait=False)
    [(job_id, when, _)] = next_runs(cfg, pg, None)
    assert job_id == "weekly" and when == stored and when.weekday() == 0 and when.hour == 6


def test_census_kept_on_postgres(pg):
    """The census table on PostgreSQL: a source's uses replaced, read back as SQLite reads them."""
    from policybot.app.census import known_users
    from policybot.model.census import Use
    day = dt.date(2026, 12, 3)
    pg.replace_census("deb:bpfilter", [Use("bpf_dynptr_slice", "bpfilter", "bpfilter", "0.6.0-2", False, False,
                                           "bpfilter_0.6.0-2_amd64.deb:usr/sbin/bpfilter@0x2a0a0")], day)
    pg.replace_census("deb:bpfilter", [Use("bpf_dynptr_slice", "bpfilter", "bpfilter", "0.7.0-1", False, True,
                                           "bpfilter_0.7.0-1_amd64.deb:usr/sbin/bpfilter@0x100")], day)
    (row,) = pg.census_rows()
    assert (row.kfunc, row.program, row.version, row.weak, row.seen) == \
        ("bpf_dynptr_slice", "bpfilter", "0.7.0-1", True, day)
    (user,) = known_users(pg)["bpf_dynptr_slice"]
    assert user.text() == "bpfilter 0.7.0-1 (weak)"
