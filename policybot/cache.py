"""policybot's cache: what it derived from git objects, kept by their ids.

Parse results of C files, Kbuild and Kconfig files and whole directories (by
blob or tree id), and the release a commit first shipped in (by commit id).
Nothing here is ever *wrong* for its key, so nothing is migrated: a format
change bumps the version its rows are stored under, and deleting the file
loses nothing but time.

The cache is a local SQLite file in the state directory, read through the
standard library, whatever database holds the state (SQLite or PostgreSQL):
the commands that only read trees (inventory, audit, check, history) then
never load SQLAlchemy (0.3 s a process), and a cold scan's tens of thousands
of rows never cross a network.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from pathlib import Path

from .errors import ConfigError
from .paths import ensure_dir, state_dir as resolve_state_dir

CACHE_FILE = "cache.sqlite"
FORMAT = 2  # PRAGMA user_version of the file; another value: the file is rebuilt empty
_CHUNK = 5000  # keys per IN (...) query

_SCHEMA = """
CREATE TABLE IF NOT EXISTS facts (key TEXT PRIMARY KEY, version INTEGER NOT NULL, data TEXT NOT NULL)
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS commits (repo TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                                    PRIMARY KEY (repo, key));
"""


class Cache:
    def __init__(self, state_dir: str | os.PathLike | None = None):
        self.state_dir = resolve_state_dir(state_dir)
        ensure_dir(self.state_dir, "state directory")
        self.path = self.state_dir / CACHE_FILE
        self._local = threading.local()  # one connection per thread (the scheduler runs jobs in threads)
        with self._guard():
            conn = self._conn()
            if conn.execute("PRAGMA user_version").fetchone()[0] != FORMAT:
                with conn:
                    conn.executescript("DROP TABLE IF EXISTS facts; DROP TABLE IF EXISTS commits;" + _SCHEMA
                                       + f"PRAGMA user_version = {FORMAT};")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA cache_size=-32768")  # KiB: a cold scan's inserts stay in memory
            self._local.conn = conn
        return conn

    def _guard(self):
        return _Errors(self.path)

    def after_fork(self) -> None:
        """In a forked child: new connections from here on. The parent's stay open, unused and
        never closed (closing one here could checkpoint the parent's write-ahead log)."""
        self._forked_away = getattr(self, "_forked_away", []) + [self._local]
        self._local = threading.local()

    # -- parse results, by object id ------------------------------------------------

    def load_facts(self, version: int, keys: list[str] | None = None) -> dict[str, str]:
        """Cached rows of the given keys (every row of ``version`` if ``keys`` is None)."""
        out: dict[str, str] = {}
        with self._guard():
            conn = self._conn()
            if keys is None:
                out.update(conn.execute("SELECT key, data FROM facts WHERE version = ?", (version,)))
                return out
            for i in range(0, len(keys), _CHUNK):
                chunk = keys[i:i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                out.update(conn.execute(f"SELECT key, data FROM facts WHERE version = ? AND key IN ({marks})",
                                        (version, *chunk)))
        return out

    def has_facts(self, version: int) -> bool:
        """Whether anything is cached for this version (a fresh cache skips every lookup)."""
        with self._guard():
            return self._conn().execute("SELECT 1 FROM facts WHERE version = ? LIMIT 1",
                                        (version,)).fetchone() is not None

    def store_facts(self, version: int, rows: dict[str, str]) -> None:
        if not rows:
            return
        with self._guard():
            conn = self._conn()
            # in key order: a cold scan's tens of thousands of rows go in at half the cost
            conn.executemany("INSERT OR REPLACE INTO facts (key, version, data) VALUES (?, ?, ?)",
                             ((k, version, rows[k]) for k in sorted(rows)))
            self._commit(conn)

    def _commit(self, conn: sqlite3.Connection) -> None:
        """Commit a store, unless it is part of a batch (which commits at its end)."""
        if not getattr(self._local, "batch", False):
            conn.commit()

    @contextlib.contextmanager
    def batch(self):
        """Every store inside is one transaction, committed at the end or not at all: a cold
        scan stores its guesses early (while git grep runs) and what corrects them last."""
        conn = self._conn()
        self._local.batch = True
        try:
            yield
            with self._guard():
                conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            self._local.batch = False

    # -- small values by commit (release tags, promise dates) ------------------------

    def get_cached(self, repo: str, key: str):
        with self._guard():
            row = self._conn().execute("SELECT value FROM commits WHERE repo = ? AND key = ?",
                                       (repo, key)).fetchone()
        return None if row is None else json.loads(row[0])

    def put_cached(self, repo: str, key: str, value) -> None:
        with self._guard():
            conn = self._conn()
            conn.execute("INSERT OR REPLACE INTO commits (repo, key, value) VALUES (?, ?, ?)",
                         (repo, key, json.dumps(value)))
            self._commit(conn)


class _Errors:
    """A cache file that is not a database, is locked too long or cannot be written: one line
    naming it (the file is left as it is: the operator decides; deleting it is safe)."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, kind, err, tb):
        if isinstance(err, sqlite3.Error):
            raise ConfigError(f"cache {self.path}: {' '.join(str(err).split())} "
                              "(a cache: deleting the file is safe)") from None
        return False
