"""``policybot history``: every kfunc across the release tags."""

from __future__ import annotations

import sys

from .. import options


def add(sub) -> None:
    p = options.command(
        sub, "history", help="every kfunc across the release tags: since when, what changed, renames",
        description="Walk the release tags (v<major>.<minor>, no -rc; --tags narrows them) and list for "
                    "every kfunc its first release, its last (if removed), and each release where its "
                    "signature, flags, program types or declared level changed, and renames. The parse "
                    "cache makes each further tag read only the blobs that changed.",
        epilog="examples:\n  policybot history --repo ~/linux\n"
               "  policybot history --repo linux.git --tags 'v6.*' --format json > history.json\n")
    options.repo_options(p, rev=False)
    p.add_argument("--tags", default="v*", metavar="GLOB", help="release tags to walk (default: v*)")
    options.policy_option(p, "manifest path and overlay for declared levels")
    options.format_option(p, "history", "table (default), json, or csv (one row per event)")


def execute(args) -> int:
    from ...app.history import history
    from ...render import render
    sys.stdout.write(render("history", args.format, history(options.context(args), args.tags)))
    return 0
