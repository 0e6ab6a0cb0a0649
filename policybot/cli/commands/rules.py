"""``policybot rules``: the rule catalogue."""

from __future__ import annotations

import sys

from .. import options


def add(sub) -> None:
    p = options.command(sub, "rules", help="list the rule catalogue",
                        description="List every rule policybot applies, with its summary.",
                        epilog="example:\n  policybot rules --format json | jq '.[].id'\n")
    options.format_option(p, "rules", "text (default) or json")


def execute(args) -> int:
    from ...app.rules import rules
    from ...render import render
    sys.stdout.write(render("rules", args.format, rules()))
    return 0
