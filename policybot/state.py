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
import sqlite3
import time
from pathlib import Path
from typing import NamedTuple

from .cache import Cache
from .errors import ConfigError, PolicybotError
from .paths import ensure_dir, state_dir as resolve_state_dir


class CensusRecord(NamedTuple):
    source: str
    kfunc: str
    program: str
    weak: bool
    project: str
    version: str
    in_tree: bool
    location: str
    declared: str
    seen: dt.date


def inspect(url: str | None, state_dir: str | os.PathLike | None) -> tuple[str, int | None]:
    """(where, schema version) of the state database as it is: opened read-only, created and
    changed in nothing. None: it does not exist yet, or has no tables (the first run makes
    them). Raises ConfigError when it cannot be read (not a database, corrupted, unreachable)."""
    from .schema import redact, stored_version
    if url and not url.startswith("sqlite:///"):
        return redact(url), stored_version(url, redact(url))
    path = sqlite_path(url) if url else resolve_state_dir(state_dir) / "policybot.sqlite"
    if not path.exists():
        return str(path), None
    if not os.access(path, os.R_OK | os.W_OK):
        raise ConfigError(f"state database {path}: not readable and writable by this user")
    from urllib.parse import quote
    return str(path), stored_version(f"sqlite:///file:{quote(str(path))}?mode=ro&uri=true", path)


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (``sqlite:///PATH``, ``sqlite:///file:PATH?mode=ro&uri=true``),
    to name in messages; None for another database."""
    if not url.startswith("sqlite:///"):
        return None
    from urllib.parse import unquote
    path = url[len("sqlite:///"):].split("?", 1)[0]
    return Path(unquote(path.removeprefix("file:") if "uri=true" in url else path))


class State:
    def __init__(self, url: str | None = None, state_dir: str | os.PathLike | None = None):
        self.state_dir = resolve_state_dir(state_dir)
        if not url:
            ensure_dir(self.state_dir, "state directory")
            url = f"sqlite:///{self.state_dir / 'policybot.sqlite'}"
        self.url = url
        # an SQLite file is read through the standard library where that is enough (is_mailed)
        self.sqlite_file = Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") and "?" not in url \
            else None
        self._reader: sqlite3.Connection | None = None

    @functools.cached_property
    def engine(self):
        """The SQLAlchemy engine, the schema migrated: opened on first use."""
        from .schema import open_engine, redact
        return open_engine(self.url, self.sqlite_file or sqlite_path(self.url) or redact(self.url))

    def is_mailed(self, key: str) -> bool:
        """Whether ``key`` is in the once-only record (``mailed_keys``).

        Before anything opened the engine, an SQLite state is read through the
        standard library: a review that drafts nothing new loads no SQLAlchemy
        (0.3 s). A state that does not exist yet has mailed nothing."""
        if self.sqlite_file is not None and "engine" not in self.__dict__:
            if not self.sqlite_file.exists():
                return False
            try:
                if self._reader is None:
                    self._reader = sqlite3.connect(self.sqlite_file, timeout=10)
                row = self._reader.execute("SELECT 1 FROM mailed_keys WHERE key = ?", (key,)).fetchone()
                return row is not None
            except sqlite3.DatabaseError as e:  # not a database, corrupted (a missing table: the engine makes it)
                if not (isinstance(e, sqlite3.OperationalError) and "no such table" in str(e)):
                    raise ConfigError(f"state database {self.sqlite_file}: {' '.join(str(e).split())}") from None
        from .schema import mailed_keys, sa
        with self.engine.connect() as conn:
            return conn.execute(sa.select(mailed_keys.c.key).where(mailed_keys.c.key == key)).first() is not None

    def checkpoint(self) -> None:
        """An SQLite state's write-ahead log moved into the database file, so that the file alone
        holds everything (a copy of it is a backup). Nothing to do before the engine opened."""
        if self.sqlite_file is not None and "engine" in self.__dict__:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def backup(self, target: str | os.PathLike) -> Path:
        """A consistent copy of an SQLite state at ``target`` (SQLite's online backup, safe while
        another policybot writes), written beside it and renamed into place."""
        from .schema import redact
        if self.sqlite_file is None:
            raise ConfigError(f"{redact(self.url)}: not an SQLite state; back up a PostgreSQL state with "
                              f"pg_dump (and restore it with pg_restore or psql)")
        self.engine  # noqa: B018 - opened and migrated: a state that does not exist yet is made, then copied
        out = Path(target)
        tmp = out.with_name(out.name + ".tmp")
        try:
            src = sqlite3.connect(self.sqlite_file, timeout=30)
            try:
                dst = sqlite3.connect(tmp)
                try:
                    src.backup(dst)
                finally:
                    dst.close()
            finally:
                src.close()
            os.replace(tmp, out)
        except (OSError, sqlite3.Error) as e:
            tmp.unlink(missing_ok=True)
            raise ConfigError(f"{out}: cannot write the backup ({' '.join(str(e).split())})") from None
        return out

    @property
    def schema_version(self) -> int:
        from .schema import meta, sa
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema")).scalar())

    @contextlib.contextmanager
    def lock(self, name: str = "run", wait: float = 0.0):
        """One run at a time per state: a file lock, and on PostgreSQL an advisory lock too."""
        from .schema import redact, sa
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
                    raise PolicybotError(f"{redact(self.url)}: another policybot run holds the lock")
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

    def insert_ignore(self, table):
        from .schema import sa
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table).on_conflict_do_nothing()

    def upsert(self, table, keys: list[str]):
        from .schema import sa
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(table)
        cols = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
        return stmt.on_conflict_do_update(index_elements=keys, set_=cols)

    # -- what could not be processed ----------------------------------------

    def failure(self, kind: str, key: str):
        from .schema import failures, sa
        with self.engine.connect() as conn:
            return conn.execute(sa.select(failures).where(failures.c.kind == kind,
                                                          failures.c.key == key[:512])).first()

    def failures(self) -> list:
        from .schema import failures, sa
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(failures).order_by(failures.c.day, failures.c.kind, failures.c.key)))

    def record_failure(self, kind: str, key: str, reason: str, day, head: str | None = None) -> None:
        from .schema import failures
        with self.engine.begin() as conn:
            conn.execute(self.upsert(failures, ["kind", "key"]),
                         [{"kind": kind, "key": key[:512], "reason": reason, "day": day, "head": head}])

    def clear_failure(self, kind: str, key: str) -> None:
        from .schema import failures
        with self.engine.begin() as conn:
            conn.execute(failures.delete().where(failures.c.kind == kind, failures.c.key == key[:512]))

    # -- the weekly run: trees, runs, messages seen --------------------------

    def last_audited(self, tree: str) -> str | None:
        from .schema import sa, tree_state
        with self.engine.connect() as conn:
            return conn.execute(sa.select(tree_state.c.last_audited).where(tree_state.c.tree == tree)).scalar()

    def set_last_audited(self, tree: str, commit: str) -> None:
        from .schema import tree_state
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        with self.engine.begin() as conn:
            conn.execute(self.upsert(tree_state, ["tree"]),
                         [{"tree": tree, "last_audited": commit, "updated": now}])

    def record_run(self, tree: str, job: str, day, base, head, status: str, detail: str,
                   findings: list[dict]) -> None:
        """One run and its findings (rows of run_findings without run_id), in one transaction."""
        from .schema import run_findings, runs
        with self.engine.begin() as conn:
            run_id = conn.execute(runs.insert().values(tree=tree, job=job, day=day, base=base, head=head,
                                                       status=str(status), detail=detail)).inserted_primary_key[0]
            if findings:
                conn.execute(run_findings.insert(), [{"run_id": run_id, **row} for row in findings])

    def seen_messages(self) -> set[str]:
        from .schema import sa, seen_messages
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(sa.select(seen_messages.c.msgid))}

    # -- the usage census ---------------------------------------------------------

    def replace_census(self, source: str, uses: list, day) -> None:
        """``source``'s rows become ``uses`` (model.census.Use), seen on ``day``, in one transaction."""
        from .schema import census
        rows, keys = [], set()
        for u in uses:
            row = {"source": source[:512], "kfunc": u.kfunc[:200], "program": u.user[:300], "weak": u.weak,
                   "project": u.project[:200], "version": u.version[:200], "in_tree": u.in_tree,
                   "location": u.location, "declared": u.declared[:300], "seen": day}
            key = (row["kfunc"], row["program"], row["weak"])
            if key not in keys:  # names cut to the columns' widths may meet
                keys.add(key)
                rows.append(row)
        with self.engine.begin() as conn:
            conn.execute(census.delete().where(census.c.source == source[:512]))
            if rows:
                conn.execute(census.insert(), rows)

    def census_rows(self) -> list[CensusRecord]:
        """Every kept use. An SQLite state is read through the standard library when nothing
        opened the engine: every audit asks (findings name known users), few need SQLAlchemy."""
        order = "kfunc, program, weak, source"
        if self.sqlite_file is not None and "engine" not in self.__dict__:
            if not self.sqlite_file.exists():
                return []
            try:
                if self._reader is None:
                    self._reader = sqlite3.connect(self.sqlite_file, timeout=10)
                rows = self._reader.execute(f"SELECT {', '.join(CensusRecord._fields)} FROM census "
                                            f"ORDER BY {order}").fetchall()
            except sqlite3.OperationalError as e:
                if "no such table" in str(e):
                    return []
                raise ConfigError(f"state database {self.sqlite_file}: {' '.join(str(e).split())}") from None
            except sqlite3.DatabaseError as e:
                raise ConfigError(f"state database {self.sqlite_file}: {' '.join(str(e).split())}") from None
            return [CensusRecord(*r[:3], bool(r[3]), *r[4:6], bool(r[6]), *r[7:9], dt.date.fromisoformat(r[9]))
                    for r in rows]
        from .schema import census, sa
        with self.engine.connect() as conn:
            return [CensusRecord(*r) for r in conn.execute(
                sa.select(*(census.c[f] for f in CensusRecord._fields)).order_by(sa.text(order)))]

    def mark_seen(self, msgids: list[str]) -> None:
        from .schema import seen_messages
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        with self.engine.begin() as conn:
            for msgid in msgids:
                conn.execute(self.insert_ignore(seen_messages), [{"msgid": msgid, "seen": now}])


def __getattr__(name: str):
    """The tables, SCHEMA_VERSION and DatabaseError, from policybot/schema.py on first use."""
    if name in _SCHEMA_NAMES:
        from . import schema
        return getattr(schema, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_SCHEMA_NAMES = {"SCHEMA_VERSION", "DatabaseError", "metadata", "meta", "mails", "mailed_keys", "tree_state", "census",
                 "runs", "run_findings", "seen_messages", "failures", "MIGRATIONS"}
