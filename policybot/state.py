"""policybot's state: one database, SQLite by default, PostgreSQL by URL.

SQLAlchemy Core only (no ORM): the tables are few. What policybot derives
from git objects is not state but cache (policybot/cache.py), in a file of
its own. Every table is created on open; the schema version lives in
``meta`` so later migrations know where they start.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import hashlib
import os
import time
from pathlib import Path

import sqlalchemy as sa

from .cache import Cache
from .errors import ConfigError, PolicybotError
from .paths import default_state_dir, ensure_dir

SCHEMA_VERSION = 4

metadata = sa.MetaData()

# What a failing database raises (the weekly run stops on it rather than blaming one tree).
DatabaseError = sa.exc.DBAPIError

meta = sa.Table(
    "meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
# Every mail policybot drafted: the once-only record and the send queue.
mails = sa.Table(
    "mails", metadata,
    sa.Column("msgid", sa.String(255), primary_key=True),  # deterministic: see mail/message.py
    sa.Column("kind", sa.String(20), nullable=False),  # review, notice, report
    sa.Column("status", sa.String(20), nullable=False),  # queued, sent, failed (refused for good)
    sa.Column("path", sa.Text, nullable=False),  # the file in the Maildir outbox
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("recipients", sa.Text, nullable=False),  # JSON list of envelope recipients
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("sent", sa.DateTime, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("tree", sa.String(200), nullable=True),  # schema 2
    sa.Column("next_attempt", sa.DateTime, nullable=True),  # schema 3: a temporary refusal backs off
)
# What has been mailed about: one row per (patch, rule, kfunc) or notice key, so
# nothing is mailed twice across runs and restarts.
mailed_keys = sa.Table(
    "mailed_keys", metadata,
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("msgid", sa.String(255), nullable=False),
)


# Per tree: the last commit audited, so each run audits only what landed since.
tree_state = sa.Table(
    "tree_state", metadata,
    sa.Column("tree", sa.String(200), primary_key=True),
    sa.Column("last_audited", sa.String(64), nullable=True),
    sa.Column("updated", sa.DateTime, nullable=False),
)
# Every run and its findings: the weekly report and the history of the bot.
runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tree", sa.String(200), nullable=False),
    sa.Column("job", sa.String(20), nullable=False),
    sa.Column("day", sa.Date, nullable=False),  # the run's (possibly injected) date
    sa.Column("base", sa.String(64), nullable=True),
    sa.Column("head", sa.String(64), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),  # ok, fetch-failed, error
    sa.Column("detail", sa.Text, nullable=True),
)
run_findings = sa.Table(
    "run_findings", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("kfunc", sa.String(200), nullable=False),
    sa.Column("verdict", sa.String(20), nullable=False),
    sa.Column("location", sa.Text, nullable=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("acknowledged", sa.Text, nullable=True),
)
# Inbox messages already looked at (the hourly review job).
seen_messages = sa.Table(
    "seen_messages", metadata,
    sa.Column("msgid", sa.String(512), primary_key=True),
    sa.Column("seen", sa.DateTime, nullable=False),
)
# What could not be processed, and why: a message or a tree that fails is recorded
# here and not tried again every run unless asked (--retry-failed). Schema 3.
failures = sa.Table(
    "failures", metadata,
    sa.Column("kind", sa.String(20), primary_key=True),  # message, tree
    sa.Column("key", sa.String(512), primary_key=True),  # Message-ID, tree name
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("day", sa.Date, nullable=False),  # the run's date
    sa.Column("head", sa.String(64), nullable=True),  # a tree's head when it failed
)


def _migrate_1_to_2(conn) -> None:
    conn.execute(sa.text("ALTER TABLE mails ADD COLUMN tree VARCHAR(200)"))


def _migrate_2_to_3(conn) -> None:
    conn.execute(sa.text("ALTER TABLE mails ADD COLUMN next_attempt TIMESTAMP"))
    # "failed" meant "retried next run"; now it means refused for good
    conn.execute(sa.text("UPDATE mails SET status = 'queued' WHERE status = 'failed'"))


def _migrate_3_to_4(conn) -> None:
    # the parse and date caches moved to their own file (policybot/cache.py)
    conn.execute(sa.text("DROP TABLE IF EXISTS facts_cache"))
    conn.execute(sa.text("DROP TABLE IF EXISTS commit_dates"))


# version reached -> the step that reaches it from the one before; tables new in a
# version are created by create_all, so a step only changes existing tables
MIGRATIONS = {2: _migrate_1_to_2, 3: _migrate_2_to_3, 4: _migrate_3_to_4}


class State:
    def __init__(self, url: str | None = None, state_dir: str | os.PathLike | None = None):
        self.state_dir = Path(state_dir) if state_dir else default_state_dir()
        if not url:
            ensure_dir(self.state_dir, "state directory")
            url = f"sqlite:///{self.state_dir / 'policybot.sqlite'}"
        self.url = url
        where = self.state_dir / "policybot.sqlite" if url.startswith("sqlite:///") else _redact(url)
        try:
            self.engine = sa.create_engine(url, future=True)
            if self.engine.dialect.name == "sqlite":
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            self._migrate()
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as e:
            raise ConfigError(f"state database URL {_redact(url)!r}: {e}") from None
        except sa.exc.DatabaseError as e:  # not a database, corrupted, unreachable, disk full
            raise ConfigError(f"state database {where}: {' '.join(str(e.orig).split())}") from None
        except ValueError as e:  # a meta row that is not a number
            raise ConfigError(f"state database {where}: unreadable schema version ({e})") from None

    def _migrate(self) -> None:
        with self.engine.begin() as conn:
            existing = sa.inspect(conn).get_table_names()
            if "meta" in existing:
                found = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema")).scalar()
            else:
                found = None
            version = int(found) if found is not None else (1 if "facts_cache" in existing else SCHEMA_VERSION)
            if version > SCHEMA_VERSION:
                raise ConfigError(f"state database {_redact(self.url)} has schema {version}; this policybot "
                                  f"knows up to {SCHEMA_VERSION}: upgrade policybot")
            for target in range(version + 1, SCHEMA_VERSION + 1):
                if "mails" in existing or target == 4:  # steps 2 and 3 change mails
                    MIGRATIONS[target](conn)
            metadata.create_all(conn)
            if found is None:
                conn.execute(meta.insert().values(key="schema", value=str(SCHEMA_VERSION)))
            elif version != SCHEMA_VERSION:
                conn.execute(meta.update().where(meta.c.key == "schema").values(value=str(SCHEMA_VERSION)))

    @property
    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema")).scalar())

    @contextlib.contextmanager
    def lock(self, name: str = "run", wait: float = 0.0):
        """One run at a time per state: a file lock, and on PostgreSQL an advisory lock too."""
        ensure_dir(self.state_dir, "state directory")
        path = self.state_dir / f"{name}.lock"
        try:
            fh = open(path, "a+")
        except OSError as e:
            raise ConfigError(f"{path}: cannot open the lock file ({e.strerror})") from None
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.close()
                    raise PolicybotError(f"{path}: another policybot run holds the lock") from None
                time.sleep(0.2)
        conn = None
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        locked = False
        try:
            if self.dialect == "postgresql":
                conn = self.engine.connect()
                locked = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
                conn.commit()
                if not locked:
                    raise PolicybotError(f"{_redact(self.url)}: another policybot run holds the lock")
            yield
        finally:
            if conn is not None:
                if locked:
                    # a pooled connection outlives close(): its session would keep the lock
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
                conn.close()
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()

    @functools.cached_property
    def cache(self) -> Cache:
        """The parse and date cache, a file beside the state in the state directory."""
        return Cache(self.state_dir)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def insert_ignore(self, table: sa.Table):
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table).on_conflict_do_nothing()

    def upsert(self, table: sa.Table, keys: list[str]):
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(table)
        cols = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
        return stmt.on_conflict_do_update(index_elements=keys, set_=cols)

    # -- what could not be processed ----------------------------------------

    def failure(self, kind: str, key: str):
        with self.engine.connect() as conn:
            return conn.execute(sa.select(failures).where(failures.c.kind == kind,
                                                          failures.c.key == key[:512])).first()

    def failures(self) -> list:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(failures).order_by(failures.c.day, failures.c.kind, failures.c.key)))

    def record_failure(self, kind: str, key: str, reason: str, day, head: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.upsert(failures, ["kind", "key"]),
                         [{"kind": kind, "key": key[:512], "reason": reason, "day": day, "head": head}])

    def clear_failure(self, kind: str, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(failures.delete().where(failures.c.kind == kind, failures.c.key == key[:512]))

    # -- the weekly run: trees, runs, messages seen --------------------------

    def last_audited(self, tree: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(tree_state.c.last_audited).where(tree_state.c.tree == tree)).scalar()

    def set_last_audited(self, tree: str, commit: str) -> None:
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        with self.engine.begin() as conn:
            conn.execute(self.upsert(tree_state, ["tree"]),
                         [{"tree": tree, "last_audited": commit, "updated": now}])

    def record_run(self, tree: str, job: str, day, base, head, status: str, detail: str,
                   findings: list[dict]) -> None:
        """One run and its findings (rows of run_findings without run_id), in one transaction."""
        with self.engine.begin() as conn:
            run_id = conn.execute(runs.insert().values(tree=tree, job=job, day=day, base=base, head=head,
                                                       status=str(status), detail=detail)).inserted_primary_key[0]
            if findings:
                conn.execute(run_findings.insert(), [{"run_id": run_id, **row} for row in findings])

    def seen_messages(self) -> set[str]:
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(sa.select(seen_messages.c.msgid))}

    def mark_seen(self, msgids: list[str]) -> None:
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        with self.engine.begin() as conn:
            for msgid in msgids:
                conn.execute(self.insert_ignore(seen_messages), [{"msgid": msgid, "seen": now}])


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _redact(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<invalid url>"
