"""``policybot explain RULE``: one rule of the catalogue."""

from __future__ import annotations

import sys

from .. import options


def add(sub) -> None:
    p = options.command(sub, "explain", help="explain one rule",
                        description="Print a rule: its family, what it compares, its verdict per level, "
                                    "its message templates, the fix hint.",
                        epilog="examples:\n  policybot explain KFUNC_FLAGS_TIGHTENED\n"
                               "  policybot explain kfunc_needs_review --format json | jq .messages\n")
    p.add_argument("rule", metavar="RULE", help="a rule id, e.g. KFUNC_REMOVED (case does not matter)")
    options.format_option(p, "rule", "text (default) or json")


def execute(args) -> int:
    from ...app.rules import rule
    from ...render import render
    sys.stdout.write(render("rule", args.format, rule(args.rule)))
    return 0
