"""``policybot doctor``: is the deployment ready to run?"""

from __future__ import annotations

import sys

from ...errors import PolicybotError
from .. import options


def add(sub) -> None:
    p = options.command(
        sub, "doctor", help="check a deployment: config, trees, SMTP, state database, templates",
        description="Check what the weekly run needs, each part on its own, and print one line per "
                    "problem naming what to fix: the configuration loads; each tree's mirror opens and "
                    "its branch exists (on the remote as it is now: nothing is fetched); the SMTP "
                    "server takes a connection, EHLO, STARTTLS and AUTH as configured (no mail is "
                    "sent); the state database opens read-only with a schema this policybot knows; "
                    "every template compiles. Nothing is written. Exit status 0: ready to run; 1: a "
                    "problem found; 2: doctor could not run (no configuration named).",
        epilog="examples:\n  policybot doctor --config /etc/policybot/policybot.toml\n"
               "  sudo -u policybot env POLICYBOT_STATE_DIR=/var/lib/policybot policybot doctor "
               "--config /etc/policybot/policybot.toml\n"
               "  policybot doctor --format json\n")
    options.config_option(p)
    options.format_option(p, "doctor", "output format (default: text)")
    options.state_options(p)


def execute(args) -> int:
    from ...app.doctor import doctor
    from ...model.doctor import CheckStatus
    from ...render import render
    ctx = options.context(args)
    if ctx.config_path is None:
        raise PolicybotError("doctor checks a configuration: give --config FILE or set $POLICYBOT_CONFIG")
    results = doctor(ctx.overrides)
    sys.stdout.write(render("doctor", args.format, results))
    return 1 if any(r.status == CheckStatus.PROBLEM for r in results) else 0
