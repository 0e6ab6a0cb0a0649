"""``policybot notice``: the [ANN] deprecation announcement of a kfunc."""

from __future__ import annotations

import datetime as dt
import sys

from ...errors import PolicybotError
from .. import options


def add(sub) -> None:
    p = options.command(
        sub, "notice", help="draft the deprecation announcement of a kfunc",
        description="Draft the [ANN] deprecation notice of KFUNC into the outbox, with the dates "
                    "computed from its declarations and the policy. A removal date earlier than the "
                    "promise allows is refused, with the reason.",
        epilog="example:\n  policybot notice bpf_obj_new_impl --repo ~/linux --replacement bpf_obj_new\n")
    p.add_argument("kfunc", metavar="KFUNC", help="the kfunc to deprecate")
    options.repo_options(p)
    options.config_option(p, "mail settings")
    options.policy_option(p)
    p.add_argument("--replacement", metavar="NAME", help="the kfunc programs should move to")
    p.add_argument("--removal-not-before", metavar="YYYY-MM-DD", help="announce this removal date")
    options.today_option(p, "deprecate as of this date")


def execute(args) -> int:
    from ...app.announce import notice
    from ...render import render
    removal = None
    ctx = options.context(args)
    if args.removal_not_before:
        try:
            removal = dt.date.fromisoformat(args.removal_not_before)
        except ValueError:
            raise PolicybotError(f"--removal-not-before: expected YYYY-MM-DD, got {args.removal_not_before!r}") from None
    sys.stdout.write(render("notice", "text", notice(ctx, args.rev, args.kfunc, args.replacement, removal)))
    return 0
