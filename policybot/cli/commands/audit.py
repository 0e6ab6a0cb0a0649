"""``policybot audit``: a tree, or the changes between two revisions, against the promises."""

from __future__ import annotations

import sys

from .. import options


def add(sub) -> None:
    p = options.command(
        sub, "audit", help="check a tree, or the changes between two revisions, against the promises",
        description="Diff the kfunc inventories of --base and --rev, classify every change with the "
                    "rule catalogue (policybot rules), and judge it against the declarations valid at "
                    "--base and their promise dates. Without --base, audit the current state alone: "
                    "declaration problems and promises expiring within the horizon.",
        epilog="examples:\n  policybot audit --repo ~/linux --base v6.1 --rev v6.12\n"
               "  policybot audit --repo linux.git --rev bpf-next/master --format json\n"
               "  policybot audit --repo linux.git --base v6.11 --rev v6.12 --fail-on warning\n"
               "\noutput lines: path:line: verdict[RULE]: kfunc what changed\n"
               "verdicts: violation (breaks a live promise), warning, notice (a mail is due), info\n"
               "exit status: 0 nothing at or above --fail-on, 1 findings at or above it, 2 error\n")
    options.repo_options(p)
    p.add_argument("--base", metavar="REV", help="the revision whose promises count (e.g. last release)")
    options.policy_option(p)
    options.fail_on_option(p)
    options.format_option(p, "audit", "text: path:line: verdict[RULE] lines (default); json; markdown for a "
                                      "web page; sarif (2.1.0) for code scanning")
    options.today_option(p, "judge current-state promises as of this date")


def execute(args) -> int:
    from ...app.audit import audit
    from ...model.vocabulary import fails
    from ...render import render
    fail_on = options.fail_on(args)
    result = audit(options.context(args), args.rev, args.base)
    sys.stdout.write(render("audit", args.format, result))
    return 1 if fails([result.worst()], fail_on) else 0
