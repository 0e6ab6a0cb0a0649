"""The state on disk: an SQLite state is whole in its database file when a command ends (its
write-ahead log checkpointed), and `policybot state backup FILE` writes a consistent copy."""

from __future__ import annotations

import shutil
import sqlite3

from policybot.cli import main
from kit.weekly import W02, Bot


def keys(db) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {k for (k,) in conn.execute("SELECT key FROM mailed_keys")}
    finally:
        conn.close()


def test_the_database_file_alone_holds_what_a_run_wrote(tmp_path, capsys):
    bot = Bot(tmp_path)
    assert bot.run(capsys, W02)[0] == 0
    db = bot.state_dir / "policybot.sqlite"
    wal = db.with_name(db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # checkpointed when the command ended
    alone = tmp_path / "copied" / "policybot.sqlite"
    alone.parent.mkdir()
    shutil.copyfile(db, alone)  # the file only, as a naive backup would take it
    assert keys(alone) and keys(alone) == keys(db)


def test_state_backup_writes_a_consistent_copy(tmp_path, capsys):
    bot = Bot(tmp_path)
    assert bot.run(capsys, W02)[0] == 0
    target = tmp_path / "backup.sqlite"
    capsys.readouterr()
    assert main(["state", "backup", str(target), "--config", str(bot.config)]) == 0
    assert f"backed up to {target}" in capsys.readouterr().out
    assert keys(target) and keys(target) == keys(bot.state_dir / "policybot.sqlite")
    assert not target.with_name(target.name + ".tmp").exists()


def test_state_backup_of_postgresql_says_pg_dump(tmp_path, capsys):
    rc = main(["state", "backup", str(tmp_path / "b.sqlite"), "--db",
               "postgresql+psycopg://user:secret@127.0.0.1:1/policybot", "--state-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert rc == 2 and "pg_dump" in err and "secret" not in err and len(err.splitlines()) == 1


def test_state_backup_into_a_missing_directory_is_one_line(tmp_path, capsys):
    rc = main(["state", "backup", str(tmp_path / "no" / "such" / "b.sqlite"), "--state-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.splitlines()) == 1 and "cannot write the backup" in err
