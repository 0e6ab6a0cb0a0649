"""``policybot outbox``: the mail waiting in the outbox, or sending it."""

from __future__ import annotations

import sys

from .. import options


def add(sub) -> None:
    p = options.command(sub, "outbox", help="list queued mail, or send it",
                        description="List the mail waiting in the outbox (queued, or failed with the "
                                    "last error); --send delivers it over SMTP (exit status 1 if a "
                                    "delivery fails).",
                        epilog="examples:\n  policybot outbox --config /etc/policybot/policybot.toml\n"
                               "  policybot outbox --config /etc/policybot/policybot.toml --send\n")
    options.config_option(p, "SMTP settings")
    options.state_options(p)
    p.add_argument("--send", action="store_true", help="deliver queued mail now")
    p.add_argument("--retry-failed", action="store_true",
                   help="queue again the mail a server refused for good (5xx), then send")


def execute(args) -> int:
    from ...app import outbox
    from ...render import render
    ctx = options.context(args)
    if args.send or args.retry_failed:
        report = outbox.send(ctx, args.retry_failed)
        sys.stdout.write(render("sent", "text", report))
        return 1 if report.failed else 0
    sys.stdout.write(render("outbox", "text", outbox.listing(ctx)))
    return 0
