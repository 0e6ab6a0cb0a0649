"""``policybot schedule``: the weekly and inbox jobs on a schedule."""

from __future__ import annotations

import sys

from ...errors import PolicybotError
from .. import options


def add(sub) -> None:
    p = options.command(
        sub, "schedule", help="run the weekly and inbox jobs on a schedule (APScheduler)",
        description="Run `policybot run`'s jobs forever: the weekly job (default Monday 06:00 UTC) "
                    "and the inbox job (default hourly), with the job store in the state database. "
                    "Exactly one scheduler per state database. Stops cleanly on SIGTERM.",
        epilog="examples:\n  policybot schedule --config /etc/policybot/policybot.toml\n"
               "  policybot schedule --list\n")
    options.config_option(p)
    p.add_argument("--list", action="store_true", help="print each job's next run time and exit")
    options.state_options(p)


def execute(args) -> int:
    from ...render import render
    from ...scheduler import next_runs, run_forever
    ctx = options.context(args)
    cfg, path, state = ctx.config, ctx.config_path, ctx.state
    if args.list:
        sys.stdout.write(render("schedule", "text", next_runs(cfg, state, path, overrides=ctx.overrides.job_state())))
        return 0
    if not cfg.trees:
        raise PolicybotError(f"{cfg.path}: no [[trees]] configured: nothing to schedule")
    run_forever(cfg, state, path, ctx.overrides.job_state())
    return 0
