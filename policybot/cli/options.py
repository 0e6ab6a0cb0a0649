"""The options commands share, declared once. ``--format`` comes from the renderer registry
(policybot/render), so a command offers exactly the formats registered for its result."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

from ..errors import PolicybotError
from ..model.vocabulary import VERDICTS
from ..render import formats

EPILOG = """\
exit status: 0 success (audit: nothing at or above --fail-on), 1 findings at or
above --fail-on, 2 usage, configuration or input error (one line on stderr).

environment: POLICYBOT_STATE_DIR (default ~/.local/state/policybot),
POLICYBOT_CONFIG (default config file), POLICYBOT_DB (state database URL).
"""

LAST_YEAR = 9000  # promise windows and notice periods after --today must still be dates


def command(sub, name: str, help: str, description: str, epilog: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=description, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def state_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", metavar="DIR",
                   help="where the cache and state live (default: the config's [state] dir, "
                        "$POLICYBOT_STATE_DIR or ~/.local/state/policybot)")
    p.add_argument("--db", metavar="URL",
                   help="state database URL, e.g. postgresql+psycopg://host/policybot "
                        "(default: the config's [state] url, $POLICYBOT_DB or a SQLite file in the state dir)")


def repo_options(p: argparse.ArgumentParser, rev: bool = True, repo_needed=True) -> None:
    """``--repo`` and the options reading a repository. Without ``--repo``, a command whose
    ``repo_needed(args)`` is true reads the git repository the current directory is in (as
    git finds it); one run outside any repository is an error (default_repo)."""
    p.add_argument("--repo", metavar="PATH",
                   help="kernel git repository, bare or not (no checkout is needed; default: the "
                        "repository the current directory is in, as git finds it)")
    p.set_defaults(repo_needed=repo_needed)
    if rev:
        p.add_argument("--rev", default="HEAD", metavar="REV",
                       help="revision to read: branch, tag, sha, HEAD~3 (default: HEAD)")
    state_options(p)
    p.add_argument("--verify-objects", action="store_true",
                   help="let libgit2 re-hash every object it reads (slower; for untrusted repositories)")


def default_repo(args) -> None:
    """``args.repo`` from the current directory when the command needs a repository and none
    was given (repo_options)."""
    needed = getattr(args, "repo_needed", False)
    if getattr(args, "repo", None) or not (needed(args) if callable(needed) else needed):
        return
    from ..app.context import enclosing_repo
    args.repo = enclosing_repo()


def policy_option(p: argparse.ArgumentParser, what: str = "") -> None:
    p.add_argument("--policy", metavar="FILE", default=os.environ.get("POLICYBOT_POLICY"),
                   help="policy file (default: $POLICYBOT_POLICY, else built-in defaults; see "
                        "config/policy.toml)" + (f": {what}" if what else ""))


def config_option(p: argparse.ArgumentParser, what: str = "") -> None:
    p.add_argument("--config", metavar="FILE",
                   help=f"configuration{f' ({what})' if what else ''} (default: $POLICYBOT_CONFIG)")


def today_option(p: argparse.ArgumentParser, what: str = "judge promises as of this date") -> None:
    p.add_argument("--today", metavar="YYYY-MM-DD", help=what)


def fail_on_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fail-on", default="violation", metavar="LEVEL",
                   help="lowest verdict that makes the exit status 1: violation (default), warning, "
                        "notice, info, or never")


def format_option(p: argparse.ArgumentParser, kind: str, help: str, default: bool = True) -> None:
    """``--format`` with the formats the registry has for ``kind``; the first is the default."""
    choices = formats(kind)
    p.add_argument("--format", choices=choices, default=choices[0] if default else None, help=help)


def fail_on(args) -> str:
    if args.fail_on not in (*VERDICTS, "never"):
        raise PolicybotError(f"--fail-on: unknown level {args.fail_on!r} (violation, warning, notice, info, never)")
    return args.fail_on


def today(args) -> dt.date | None:
    if not getattr(args, "today", None):
        return None
    try:
        day = dt.date.fromisoformat(args.today)
    except ValueError:
        raise PolicybotError(f"--today: expected YYYY-MM-DD, got {args.today!r}") from None
    if day.year > LAST_YEAR:
        raise PolicybotError(f"--today: {args.today} is too far ahead (the last year policybot "
                             f"can judge is {LAST_YEAR})")
    return day


OPEN: list = []  # the contexts of this invocation: main() closes them when the command ends


def context(args, **extra):
    """The run context of this invocation (app/context.py), from the options it has; closed by
    main() when the command ends, whatever its end."""
    from ..app.context import Context
    from ..app.settings import Overrides
    from ..progress import Progress
    overrides = Overrides(config=getattr(args, "config", None), db=getattr(args, "db", None),
                          state_dir=getattr(args, "state_dir", None))
    # progress on the real stderr: its own \r and erase-line are the one escape sequence allowed
    progress = Progress(stream=getattr(sys.stderr, "_stream", sys.stderr))
    ctx = Context(overrides, repo_path=getattr(args, "repo", None), policy_path=getattr(args, "policy", None),
                  today=today(args), verify_objects=getattr(args, "verify_objects", False), progress=progress,
                  from_addr=getattr(args, "from_addr", None), takes_config=hasattr(args, "config"), **extra)
    OPEN.append(ctx)
    return ctx


def close_contexts() -> None:
    while OPEN:
        OPEN.pop().close()
