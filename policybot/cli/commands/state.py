"""``policybot state backup FILE``: a consistent copy of the state database."""

from __future__ import annotations

from .. import options


def add(sub) -> None:
    p = options.command(
        sub, "state", help="back up the state database",
        description="backup FILE writes a consistent copy of an SQLite state database (SQLite's online "
                    "backup: safe while a run or the scheduler writes). To restore, stop policybot and "
                    "copy FILE over policybot.sqlite in the state directory. A PostgreSQL state is "
                    "backed up with pg_dump and restored with pg_restore or psql.",
        epilog="examples:\n  policybot state backup /var/backups/policybot-$(date +%F).sqlite\n"
               "  policybot state backup policybot.sqlite --config /etc/policybot/policybot.toml\n")
    p.add_argument("action", choices=("backup",), help="what to do with the state")
    p.add_argument("file", metavar="FILE", help="where the copy goes (replaced if it exists)")
    options.config_option(p, "its [state]")
    options.state_options(p)


def execute(args) -> int:
    from ...app.backup import backup
    print(f"backed up to {backup(options.context(args), args.file)}")
    return 0
