"""``policybot run``: one pass of the weekly job."""

from __future__ import annotations

import sys

from ...errors import PolicybotError
from .. import options

JOBS = ("audit", "review", "notices", "report")  # app/weekly.py's, named here so --help loads nothing


def add(sub) -> None:
    p = options.command(
        sub, "run", help="one pass of the weekly job: fetch, audit, review the inbox, notices, report",
        description="Fetch each tracked tree, audit what landed since the last audited commit, "
                    "review new series in the inbox, draft deprecation and expiry notices and the "
                    "weekly report into the outbox, and send if mail.send (or --send). For cron "
                    "and systemd timers; `policybot schedule` runs the same jobs itself.",
        epilog="examples:\n  policybot run --config /etc/policybot/policybot.toml\n"
               "  policybot run --tree bpf-next --job audit --job report\n")
    options.config_option(p)
    p.add_argument("--tree", action="append", metavar="NAME", help="only this tree (repeatable)")
    p.add_argument("--job", action="append", choices=JOBS, help="only these jobs (repeatable; default: all)")
    p.add_argument("--send", action="store_true", help="send queued mail even if mail.send is false")
    options.today_option(p, "run as if on this date (simulation, tests)")
    p.add_argument("--retry-failed", action="store_true",
                   help="try again the inbox messages, trees and mails that failed before")
    options.state_options(p)


def execute(args) -> int:
    from ...app.weekly import weekly_run
    from ...model.vocabulary import RunStatus
    from ...render import render
    ctx = options.context(args)
    cfg = ctx.config
    if not cfg.trees:
        raise PolicybotError(f"{cfg.path}: no [[trees]] configured: nothing to run")
    runner, summary = weekly_run(cfg, ctx.state, args.tree, tuple(args.job or JOBS),
                                 send=True if args.send else None, retry_failed=args.retry_failed,
                                 today=ctx.today, progress=ctx.progress)
    sys.stdout.write(render("run", "text", (runner, summary)))
    return 2 if any(t.status in (RunStatus.FETCH_FAILED, RunStatus.ERROR) for t in summary.trees) else 0
