"""Crash safety of `policybot run` (issue 5): a real child process killed with
SIGKILL at each step of a pass, then a normal run: no mail lost, none queued
or sent twice, the state consistent. Also: SMTP down for two weeks, a remote
that cannot be fetched, the state lock, and the schema 1 -> 2 migration.

The child is ``python -c WRAPPER SPEC policybot-args...`` (tests/kit/crash.py):
WRAPPER wraps one method (``before``/``after`` its N-th call) with
``os.kill(getpid(), SIGKILL)`` and then runs ``policybot.cli.main``, so the
kill lands at an exact point.
"""

from __future__ import annotations

import collections
import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pygit2
import pytest
import sqlalchemy as sa

from policybot.errors import ConfigError, PolicybotError
from policybot.mail.outbox import Outbox
from policybot.state import SCHEMA_VERSION, State, mailed_keys, mails, runs
from kit.crash import WRAPPER
from kit.mail import body, counts, flat, free_port
from kit.weekly import BASE_KFUNCS, LIST, TREE, W02, W03, W04, W06, Bot, report_subject

ROOT = Path(__file__).resolve().parent.parent


def child(spec: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WRAPPER, spec, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def smtp_settings(port: int, send: bool) -> str:
    return (f'send = {"true" if send else "false"}\nsmtp_host = "127.0.0.1"\nsmtp_port = {port}\n'
            'smtp_security = "none"\n')


def mail_rows(bot: Bot) -> list:
    return bot.mail_rows()


# -- one pass, killed at every step ----------------------------------------------------------------

ANN = "[ANN] kfunc deprecation: bpf_old (removal not before 2025-01-31)"
ENDING = "[NOTICE] kfunc promise ending: bpf_exp (stable until 2024-05-01)"
EXPECTED = {report_subject("2024-W02"), report_subject("2024-W06"), ANN, ENDING}

OUTBOX = "policybot.mail.outbox.Outbox"
RUNNER = "policybot.app.weekly.Runner"
# (kill point; then, as the kill leaves it: files in the outbox, mail rows, rows marked sent,
# whether upstream was fetched into the mirror and whether last_audited moved to its head)
KILL_POINTS = [
    pytest.param(f"before:{RUNNER}.audit_tree:1", 1, 1, 0, False, False, id="before-audit"),
    pytest.param(f"before:{RUNNER}.fetch:1", 1, 1, 0, False, False, id="before-fetch"),
    pytest.param(f"after:{RUNNER}.fetch:1", 1, 1, 0, True, False, id="after-fetch"),
    pytest.param("after:policybot.policy.audit.Auditor.audit:1", 1, 1, 0, True, False, id="after-range-audit"),
    pytest.param(f"after:{OUTBOX}._deliver:1", 2, 1, 0, True, False, id="notice-file-written-not-committed"),
    pytest.param(f"after:{OUTBOX}.queue:1", 2, 2, 0, True, False, id="after-1st-queue"),
    pytest.param(f"after:{OUTBOX}.queue:2", 3, 3, 0, True, False, id="after-2nd-queue"),
    pytest.param(f"before:{RUNNER}._record_run:1", 3, 3, 0, True, False, id="before-record-run"),
    # the week's report is queued before the tree's last audited commit moves
    pytest.param(f"after:{OUTBOX}._deliver:3", 4, 3, 0, True, False, id="report-file-written-not-committed"),
    pytest.param(f"after:{OUTBOX}.queue:3", 4, 4, 0, True, False, id="after-report-queued"),
    pytest.param(f"before:{RUNNER}._set_last_audited:1", 4, 4, 0, True, False, id="before-set-last-audited"),
    pytest.param(f"after:{RUNNER}._set_last_audited:1", 4, 4, 0, True, True, id="after-set-last-audited"),
    pytest.param(f"before:{OUTBOX}.send:1", 4, 4, 0, True, True, id="before-send"),
    pytest.param("after:smtplib.SMTP.sendmail:1", 4, 4, 0, True, True, id="1st-accepted-not-marked"),
    pytest.param("after:smtplib.SMTP.sendmail:3", 4, 4, 2, True, True, id="3rd-accepted-not-marked"),
    pytest.param(f"after:{OUTBOX}._sent:2", 4, 4, 2, True, True, id="after-2nd-marked-sent"),
]


@pytest.fixture
def week6(tmp_path, capsys, smtp_server):
    """Baseline on W02 (report queued, not sent); then a deprecation and a removal land, and on
    W06 bpf_exp's promise is 86 days from its end."""
    handler, port = smtp_server()
    bot = Bot(tmp_path, mail=smtp_settings(port, send=False))
    up = bot.upstream
    assert bot.run(capsys, W02)[0] == 0
    base = up.head
    decls = dict(up.decls, bpf_old="deprecated")
    up.land("bpf: deprecate bpf_old", "2024-01-31", decls=decls)
    up.land("bpf: drop bpf_foo", "2024-02-01",
            kfuncs={k: v for k, v in BASE_KFUNCS.items() if k != "bpf_foo"})
    return bot, handler, base


def outbox_files(bot: Bot) -> list[Path]:
    return [p for sub in ("new", "cur") for p in (bot.outbox / sub).iterdir()]


@pytest.mark.parametrize("spec, files, rows, sent, fetched, audited", KILL_POINTS)
def test_killed_at_each_step_then_run_again(week6, capsys, spec, files, rows, sent, fetched, audited):
    bot, handler, base = week6
    args = ("run", "--config", str(bot.config), "--today", W06, "--send")
    killed = child(spec, *args)
    assert killed.returncode == -signal.SIGKILL, (spec, killed.stdout, killed.stderr)
    # where the kill left things (so each case is the step it claims to be)
    assert len(outbox_files(bot)) == files
    assert (len(mail_rows(bot)), sum(r.status == "sent" for r in mail_rows(bot))) == (rows, sent)
    mirror = pygit2.Repository(str(bot.mirror))
    assert str(mirror.references["refs/remotes/policybot/master"].target) == (
        bot.upstream.head if fetched else base)
    assert bot.last_audited() == (bot.upstream.head if audited else base)
    first = list(handler.msgids())
    if ".sendmail:" in spec:
        assert len(first) == int(spec.rsplit(":", 1)[1])
    else:
        assert len(first) == sent

    rc, out, err = bot.run(capsys, W06, "--send")
    assert rc == 0, (out, err)

    # the outbox: each mail once, as a file and as a row, nothing half-written left over
    got = bot.mails()
    assert sorted(m["Subject"] for m in got.values()) == sorted(EXPECTED)
    assert not list((bot.outbox / "tmp").iterdir()) and len(outbox_files(bot)) == len(EXPECTED)
    rows = mail_rows(bot)
    assert sorted(r.msgid for r in rows) == sorted(got)
    assert all(r.status == "sent" and r.sent is not None for r in rows), [(r.subject, r.status) for r in rows]
    # SMTP: everything delivered; twice only the one mail the kill caught between the server's
    # "250" and the row marked sent (same Message-ID: one message to every archive and MUA)
    delivered = collections.Counter(handler.msgids())
    assert set(delivered) == set(got)
    twice = {k for k, n in delivered.items() if n > 1}
    if ".sendmail:" in spec:
        n = int(spec.rsplit(":", 1)[1])
        assert twice == {first[n - 1]} and delivered[first[n - 1]] == 2
    else:
        assert twice == set()
    # the state: the range was audited through upstream's head
    assert bot.last_audited() == bot.upstream.head
    # and the week's report covers that range, with its findings
    rep = body(next(m for m in got.values() if m["Subject"] == report_subject("2024-W06")))
    assert f"{base[:12]}..{bot.upstream.head[:12]}" in rep
    assert counts(rep)["violation"] == 1 and counts(rep)["notice"] == 1
    # a further run changes nothing
    assert bot.run(capsys, W06, "--send")[0] == 0
    assert set(bot.mails()) == set(got) and collections.Counter(handler.msgids()) == delivered


def test_child_run_without_a_kill_is_the_reference(week6, capsys):
    """The same pass in a child, unhooked: what every killed run must end up with."""
    bot, handler, base = week6
    done = child("", "run", "--config", str(bot.config), "--today", W06, "--send")
    assert done.returncode == 0, done.stderr
    assert f"{TREE}: ok {base[:12]}..{bot.upstream.head[:12]}: 1 notice, 1 violation" in done.stdout
    assert sorted(m["Subject"] for m in bot.mails().values()) == sorted(EXPECTED)
    assert sorted(handler.msgids()) == sorted(bot.mails())


# -- SMTP down for two weeks, then up ------------------------------------------------------------------


def test_smtp_down_two_weeks_then_everything_delivered_once(tmp_path, capsys, smtp_server):
    port = free_port()  # nothing listens there yet
    bot = Bot(tmp_path, mail=smtp_settings(port, send=True))
    up = bot.upstream

    bot.run(capsys, W02)  # (the exit status of a run whose mail could not be sent is not pinned here)
    # a server that is down fails no mail for good: it stays queued, with the reason; the
    # operator is told (by mail, queued for when the server is back)
    assert [(r.kind, r.status) for r in mail_rows(bot)] == [("report", "queued"), ("operator", "queued")]
    (op,) = [m for m in bot.mails().values() if m["Subject"].startswith("[policybot]")]
    assert f"sending mail through 127.0.0.1:{port}" in body(op) and "refused" in body(op).lower()
    assert [a.addr_spec for a in op["To"].addresses] == ["ops@example.org"]
    up.land("bpf: drop bpf_foo", "2024-01-10", kfuncs={k: v for k, v in BASE_KFUNCS.items() if k != "bpf_foo"})
    bot.run(capsys, W03)
    rows = [r for r in mail_rows(bot) if r.kind != "operator"]  # last week's report and this week's
    assert len(rows) == 2 and all(r.status == "queued" for r in rows)
    assert sorted(r.attempts for r in rows) == [1, 2]
    assert all("refused" in r.last_error.lower() for r in rows)
    assert [r.kind for r in mail_rows(bot)].count("operator") == 2  # one a week

    handler, _ = smtp_server(port)
    up.land("bpf: deprecate bpf_old", "2024-01-17", decls=dict(up.decls, bpf_old="deprecated"))
    rc, out, err = bot.run(capsys, W04)
    assert rc == 0, (out, err)
    got = bot.mails()
    assert len(got) == 6  # W02, W03, W04 reports, the W04 deprecation notice, 2 mails to the operator
    delivered = collections.Counter(handler.msgids())
    assert set(delivered) == set(got) and set(delivered.values()) == {1}
    rows = {r.msgid: r for r in mail_rows(bot) if r.kind != "operator"}
    assert all(r.status == "sent" for r in mail_rows(bot))
    assert sorted(r.attempts for r in rows.values()) == [1, 1, 2, 3]
    # the next run of the week: nothing sent again
    assert bot.run(capsys, W04)[0] == 0
    assert collections.Counter(handler.msgids()) == delivered


# -- the remote cannot be fetched ------------------------------------------------------------------------


def test_fetch_failure_is_reported_and_nothing_stale_is_audited(tmp_path, capsys):
    bot = Bot(tmp_path)
    up = bot.upstream
    assert bot.run(capsys, W02)[0] == 0
    base = up.head
    up.land("bpf: drop bpf_foo", "2024-01-10", kfuncs={k: v for k, v in BASE_KFUNCS.items() if k != "bpf_foo"})
    away = up.path.with_name("upstream-away.git")
    up.path.rename(away)  # the remote is gone for a week

    rc, out, err = bot.run(capsys, W03)
    assert rc == 2, (out, err)
    assert f"{TREE}: fetch-failed" in out and str(up.path) in out
    assert bot.last_audited() == base
    mirror = pygit2.Repository(str(bot.mirror))
    assert str(mirror.references["refs/remotes/policybot/master"].target) == base
    # no report to the list for a week nothing could be audited in; the operator is told, alone
    assert not [m for m in bot.mails().values() if m["Subject"] == report_subject("2024-W03")]
    (op,) = [m for m in bot.mails().values() if m["Subject"] == "[policybot] 1 problem in the run of 2024-01-15"]
    assert [a.addr_spec for a in op["To"].addresses] == ["ops@example.org"]
    assert "fetch" in body(op) and str(up.path) in flat(body(op)), body(op)
    assert not any(m["Subject"].startswith(("[ANN]", "[NOTICE]")) for m in bot.mails().values())
    with bot.state().engine.connect() as conn:
        last = conn.execute(sa.select(runs).order_by(runs.c.id.desc())).first()
    assert (last.status, last.base, last.head) == ("fetch-failed", None, None)
    # the same week again: still failing, still one mail to the operator
    before = set(bot.mails())
    assert bot.run(capsys, W03)[0] == 2
    assert set(bot.mails()) == before

    # upstream is back, with one more change landed meanwhile: the whole range is audited, once
    away.rename(up.path)
    up.land("bpf: deprecate bpf_old", "2024-01-17", decls=dict(up.decls, bpf_old="deprecated"))
    rc, out, err = bot.run(capsys, W04)
    assert rc == 0, (out, err)
    assert f"{TREE}: ok {base[:12]}..{up.head[:12]}" in out
    assert bot.last_audited() == up.head
    (rep4,) = [m for m in bot.mails().values() if m["Subject"] == report_subject("2024-W04")]
    text = body(rep4)
    assert f"{base[:12]}..{up.head[:12]}" in text
    assert counts(text)["violation"] == 1 and counts(text)["notice"] == 1
    assert any(m["Subject"].startswith("[ANN] kfunc deprecation: bpf_old") for m in bot.mails().values())
    before = set(bot.mails())
    rc, out, _ = bot.run(capsys, W04)
    assert rc == 0 and f"{TREE}: unchanged" in out and set(bot.mails()) == before


# -- the state --------------------------------------------------------------------------------------------


def test_lock_excludes_a_second_holder(tmp_path):
    a = State(state_dir=tmp_path / "s")
    b = State(state_dir=tmp_path / "s")
    with a.lock():
        with pytest.raises(PolicybotError, match="another policybot run holds the lock"):
            with b.lock():
                pass
        with pytest.raises(PolicybotError, match="holds the lock"):
            with b.lock(wait=0.3):
                pass
        with b.lock("other"):  # another name is another lock
            pass
    with b.lock():  # released
        pass


def test_run_in_a_child_while_the_lock_is_held(tmp_path):
    bot = Bot(tmp_path)
    with bot.state().lock():
        done = child("", "run", "--config", str(bot.config), "--today", W02)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "holds the lock" in done.stderr and "Traceback" not in done.stderr
    assert bot.last_audited() is None and bot.mails() == {}
    done = child("", "run", "--config", str(bot.config), "--today", W02)
    assert done.returncode == 0, done.stderr
    assert bot.last_audited() == bot.upstream.head


V1_TABLES = """
CREATE TABLE meta (key VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE facts_cache (oid VARCHAR(64) PRIMARY KEY, version INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE commit_dates (repo VARCHAR(512), key VARCHAR(300), value TEXT NOT NULL, PRIMARY KEY (repo, key));
CREATE TABLE mails (msgid VARCHAR(255) PRIMARY KEY, kind VARCHAR(20) NOT NULL, status VARCHAR(20) NOT NULL,
    path TEXT NOT NULL, subject TEXT NOT NULL, recipients TEXT NOT NULL, created DATETIME NOT NULL,
    sent DATETIME, attempts INTEGER NOT NULL, last_error TEXT);
CREATE TABLE mailed_keys (key VARCHAR(512) PRIMARY KEY, msgid VARCHAR(255) NOT NULL);
"""


def v1_database(state_dir: Path, with_meta: bool = True) -> None:
    state_dir.mkdir(parents=True)
    db = sqlite3.connect(state_dir / "policybot.sqlite")
    db.executescript(V1_TABLES)
    if with_meta:
        db.execute("INSERT INTO meta VALUES ('schema', '1')")
    else:
        db.execute("DROP TABLE meta")
    db.execute("INSERT INTO facts_cache VALUES (?, 3, ?)", ("ab" + "0" * 38, '{"kfuncs": 1}'))
    db.execute("INSERT INTO mails VALUES ('<old@example.org>', 'review', 'queued', ?, 'Re: [PATCH] old', ?, "
               "'2024-01-01 00:00:00', NULL, 0, NULL)", (str(state_dir / "outbox" / "new" / "x"),
                                                          json.dumps([LIST])))
    db.execute("INSERT INTO mailed_keys VALUES ('review:<p@x>:KFUNC_REMOVED:bpf_foo', '<old@example.org>')")
    db.commit()
    db.close()


@pytest.mark.parametrize("with_meta", [True, False], ids=["meta-schema-1", "no-meta"])
def test_schema_1_database_is_migrated_keeping_its_data(tmp_path, with_meta):
    d = tmp_path / "s"
    v1_database(d, with_meta)
    state = State(state_dir=d)
    assert state.schema_version == SCHEMA_VERSION == 5
    cols = {c["name"] for c in sa.inspect(state.engine).get_columns("mails")}
    assert "tree" in cols
    with state.engine.connect() as conn:
        (row,) = list(conn.execute(sa.select(mails)))
        assert (row.msgid, row.subject, row.status, row.tree) == ("<old@example.org>", "Re: [PATCH] old",
                                                                  "queued", None)
        assert conn.execute(sa.select(sa.func.count()).select_from(mailed_keys)).scalar() == 1
        tables = set(sa.inspect(conn).get_table_names())
        assert {"tree_state", "runs", "run_findings", "seen_messages", "census"} <= tables
        # schema 4: the caches left the state for their own file (policybot/cache.py)
        assert not tables & {"facts_cache", "commit_dates"}
    outbox = Outbox(state, d / "outbox")
    assert outbox.is_mailed("review:<p@x>:KFUNC_REMOVED:bpf_foo")
    assert [r.msgid for r in outbox.pending()] == ["<old@example.org>"]
    # opening again is a no-op; the data is still there
    again = State(state_dir=d)
    assert again.schema_version == 5
    with again.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(mails)).scalar() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(sa.table("meta"))).scalar() == 1


def test_newer_schema_is_refused(tmp_path):
    d = tmp_path / "s"
    assert State(state_dir=d).schema_version == 5
    db = sqlite3.connect(d / "policybot.sqlite")
    db.execute("UPDATE meta SET value = '6' WHERE key = 'schema'")
    db.commit()
    db.close()
    with pytest.raises(ConfigError, match="has schema 6.*upgrade policybot"):
        State(state_dir=d).schema_version  # the engine opens, and migrates, on first use
