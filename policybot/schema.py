"""The state's tables and their migrations (SQLAlchemy Core), and opening an engine on them.

Imported only by what talks to the database through SQLAlchemy: policybot/state.py
loads it on first use, so a command that reads nothing but the once-only record
of an SQLite state (a repeated review) never pays for SQLAlchemy.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa

from .errors import ConfigError

SCHEMA_VERSION = 5

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
# Who uses each kfunc (`policybot census`): one row per program, kfunc and strength, all
# the rows of a source replaced by each census of it. Schema 5.
census = sa.Table(
    "census", metadata,
    sa.Column("source", sa.String(512), primary_key=True),  # deb:NAME, path:DIR, git:REPO:PATH
    sa.Column("kfunc", sa.String(200), primary_key=True),  # the essential name
    sa.Column("program", sa.String(300), primary_key=True),  # the user: sigsnoop-libbpf
    sa.Column("weak", sa.Boolean, primary_key=True),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("version", sa.String(200), nullable=False),
    sa.Column("in_tree", sa.Boolean, nullable=False),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("declared", sa.String(300), nullable=False),
    sa.Column("seen", sa.Date, nullable=False),  # the census's (possibly injected) date
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
def _migrate_4_to_5(conn) -> None:
    pass  # the census table is new: create_all makes it


MIGRATIONS = {2: _migrate_1_to_2, 3: _migrate_2_to_3, 4: _migrate_3_to_4, 5: _migrate_4_to_5}


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def redact(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<invalid url>"


# SQLite's errors of the machine, not of policybot's SQL (a syntax error, a missing table or
# column is an OperationalError too, and a bug): extended codes start with these names
_SQLITE_ENVIRONMENT = ("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_CANTOPEN", "SQLITE_AUTH", "SQLITE_FULL",
                       "SQLITE_IOERR", "SQLITE_BUSY", "SQLITE_LOCKED")
_PERMISSIONS = ("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_CANTOPEN")


def environment_error(e: BaseException, where) -> ConfigError | None:
    """A database error that the machine caused (read-only file, disk full, locked, server gone)
    as one line naming ``where`` and what to check; None for anything else, a bug to show as
    it is. No SQL statement is repeated."""
    if not isinstance(e, sa.exc.OperationalError):
        return None
    orig, name = e.orig, getattr(e.orig, "sqlite_errorname", None)
    if isinstance(orig, sqlite3.Error) and not (name and name.startswith(_SQLITE_ENVIRONMENT)):
        return None
    hint = " (check the owner and permissions of the file and of its directory)" \
        if name and name.startswith(_PERMISSIONS) else ""
    return ConfigError(f"state database {where}: {' '.join(str(orig).split())}{hint}")


def _environment_errors(where):
    """A handle_error listener: environment_error raised in place of SQLAlchemy's exception."""
    def listener(context) -> None:
        if (err := environment_error(context.sqlalchemy_exception, where)) is not None:
            raise err
    return listener


def open_engine(url: str, where) -> sa.engine.Engine:
    """An engine on ``url`` with the schema migrated to SCHEMA_VERSION; errors name ``where``,
    those of the machine in one line (environment_error) for as long as the engine is used."""
    try:
        engine = sa.create_engine(url, future=True)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "handle_error", _environment_errors(where))
        migrate(engine, url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as e:
        raise ConfigError(f"state database URL {redact(url)!r}: {e}") from None
    except sa.exc.DatabaseError as e:  # not a database, corrupted, unreachable, disk full
        raise ConfigError(f"state database {where}: {' '.join(str(e.orig).split())}") from None
    except ValueError as e:  # a meta row that is not a number
        raise ConfigError(f"state database {where}: unreadable schema version ({e})") from None
    return engine


def stored_version(url: str, where) -> int | None:
    """The schema version the database at ``url`` holds, read without migrating or writing
    anything; None for a database without policybot's tables. Errors name ``where``."""
    try:
        engine = sa.create_engine(url, future=True)
        try:
            with engine.connect() as conn:
                existing = sa.inspect(conn).get_table_names()
                if "meta" in existing:
                    found = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema")).scalar()
                    return int(found) if found is not None else None
                return 1 if "facts_cache" in existing else None
        finally:
            engine.dispose()
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as e:
        raise ConfigError(f"state database URL {redact(url)!r}: {e}") from None
    except sa.exc.DatabaseError as e:  # not a database, corrupted, unreachable, unreadable
        raise ConfigError(f"state database {where}: {' '.join(str(e.orig).split())}") from None
    except ValueError as e:
        raise ConfigError(f"state database {where}: unreadable schema version ({e})") from None


def migrate(engine: sa.engine.Engine, url: str) -> None:
    with engine.begin() as conn:
        existing = sa.inspect(conn).get_table_names()
        if "meta" in existing:
            found = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema")).scalar()
        else:
            found = None
        version = int(found) if found is not None else (1 if "facts_cache" in existing else SCHEMA_VERSION)
        if version > SCHEMA_VERSION:
            raise ConfigError(f"state database {redact(url)} has schema {version}; this policybot "
                              f"knows up to {SCHEMA_VERSION}: upgrade policybot")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            if "mails" in existing or target == 4:  # steps 2 and 3 change mails
                MIGRATIONS[target](conn)
        metadata.create_all(conn)
        if found is None:
            conn.execute(meta.insert().values(key="schema", value=str(SCHEMA_VERSION)))
        elif version != SCHEMA_VERSION:
            conn.execute(meta.update().where(meta.c.key == "schema").values(value=str(SCHEMA_VERSION)))
