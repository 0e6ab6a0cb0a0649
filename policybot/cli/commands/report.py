"""``policybot report``: the stability page, one self-contained HTML file."""

from __future__ import annotations

import sys

from ...errors import PolicybotError
from .. import options


def add(sub) -> None:
    p = options.command(
        sub, "report", help="the stability page: one self-contained HTML file",
        description="Write one self-contained HTML page (no network assets) for out-of-tree BPF "
                    "authors: a sortable, filterable table of kfuncs with level, since, promise end "
                    "and days left; a timeline of support windows and deprecation periods; the "
                    "current findings; each kfunc's history. Readable without JavaScript, printable.",
        epilog="example:\n  policybot report --repo ~/linux --rev v6.12 --html kfuncs.html\n")
    options.repo_options(p)
    p.add_argument("--html", metavar="FILE", help="write the page here")
    options.format_option(p, "page", "also print the page: its data as json, or the html itself",
                          default=False)
    p.add_argument("--tags", default="v*", metavar="GLOB", help="release tags for the history (default: v*)")
    options.policy_option(p)
    options.today_option(p, "days left and the today line as of this date")


def execute(args) -> int:
    from ...app.page import report
    from ...render import render
    if not args.html and not args.format:
        raise PolicybotError("report: give --html FILE, --format json, or both")
    data, written = report(options.context(args), args.rev, args.tags, args.html)
    if written:
        print(f"wrote {written}", file=sys.stderr)
    if args.format:
        sys.stdout.write(render("page", args.format, data))
    return 0
