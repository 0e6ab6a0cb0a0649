"""One settings resolver (policybot/app/settings.py) for every entry point: `run`,
`schedule`, the jobs the scheduler starts, and the other commands resolve the
state database the same way ($POLICYBOT_DB, --db, the config's [state])."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from policybot.app import settings
from policybot.cli import main
from policybot.scheduler import inbox_job, job_definitions, weekly_job
from kit.weekly import TREE, Bot


def tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def run_rows(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT tree, job FROM runs ORDER BY id"))


def test_run_uses_policybot_db(tmp_path, monkeypatch, capsys):
    bot = Bot(tmp_path)
    db = tmp_path / "env.sqlite"
    monkeypatch.setenv("POLICYBOT_DB", f"sqlite:///{db}")
    assert main(["run", "--config", str(bot.config), "--job", "audit", "--today", "2024-01-15"]) == 0
    assert run_rows(db) == [(TREE, "audit")]
    # the config's state directory holds the outbox, not a second database
    assert not (bot.state_dir / "policybot.sqlite").exists()


def test_schedule_and_its_jobs_use_policybot_db(tmp_path, monkeypatch, capsys):
    bot = Bot(tmp_path)
    db = tmp_path / "env.sqlite"
    monkeypatch.setenv("POLICYBOT_DB", f"sqlite:///{db}")
    assert main(["schedule", "--config", str(bot.config), "--list"]) == 0
    assert "apscheduler_jobs" in tables(db)  # the job store
    weekly_job(str(bot.config))  # what the scheduler starts: the same database
    assert [job for _, job in run_rows(db)] == ["audit"]
    assert not (bot.state_dir / "policybot.sqlite").exists()


def test_a_schedulers_db_option_reaches_its_jobs(tmp_path, monkeypatch, capsys):
    bot = Bot(tmp_path)
    monkeypatch.delenv("POLICYBOT_DB", raising=False)
    db = tmp_path / "given.sqlite"
    url = f"sqlite:///{db}"
    overrides = settings.Overrides(config=str(bot.config), db=url)
    (_, _, kwargs), = [job_definitions(settings.load(overrides), str(bot.config), overrides.job_state())["weekly"]]
    assert kwargs == {"config_path": str(bot.config), "db": url}
    weekly_job(**kwargs)
    assert [job for _, job in run_rows(db)] == ["audit"]
    inbox_job(**kwargs)  # no inbox configured: nothing reviewed, nothing recorded elsewhere
    assert not (bot.state_dir / "policybot.sqlite").exists()


def test_precedence(tmp_path, monkeypatch):
    cfg_file = tmp_path / "p.toml"
    cfg_file.write_text(f'[state]\ndir = "{tmp_path / "cfgdir"}"\nurl = "sqlite:///{tmp_path / "cfg.sqlite"}"\n')
    monkeypatch.setenv("POLICYBOT_DB", "sqlite:///env.sqlite")
    monkeypatch.setenv("POLICYBOT_STATE_DIR", str(tmp_path / "envdir"))
    bare = settings.Overrides()
    assert settings.db_url(bare, None) == "sqlite:///env.sqlite"
    assert settings.state_dir(bare, None) == tmp_path / "envdir"
    cfg = settings.load(settings.Overrides(config=str(cfg_file)))
    assert settings.db_url(bare, cfg) == f"sqlite:///{tmp_path / 'cfg.sqlite'}"
    assert settings.state_dir(bare, cfg) == tmp_path / "cfgdir"
    given = settings.Overrides(db="sqlite:///given.sqlite", state_dir=str(tmp_path / "given"))
    assert settings.db_url(given, cfg) == "sqlite:///given.sqlite"
    assert settings.state_dir(given, cfg) == tmp_path / "given"
    monkeypatch.setenv("POLICYBOT_CONFIG", str(cfg_file))
    assert settings.load(bare).path == str(cfg_file)


def test_policy_precedence(tmp_path, monkeypatch):
    env_policy = tmp_path / "env.toml"
    env_policy.write_text("[windows]\nstable = \"2y\"\n")
    given = tmp_path / "given.toml"
    given.write_text("[windows]\nstable = \"3y\"\n")
    monkeypatch.setenv("POLICYBOT_POLICY", str(env_policy))
    assert settings.policy(None).path == str(env_policy)
    assert settings.policy(str(given)).path == str(given)
    monkeypatch.delenv("POLICYBOT_POLICY")
    from policybot.policy.config import Policy
    assert settings.policy(None).path == Policy().path  # the built-in defaults
