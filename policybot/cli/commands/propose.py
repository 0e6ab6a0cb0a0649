"""``policybot propose``: which kfuncs the evidence says to declare, and the patches that do."""

from __future__ import annotations

import sys

from .. import options


def add(sub) -> None:
    p = options.command(
        sub, "propose", help="propose declarations from evidence: stable and deprecating candidates",
        description="For every kfunc of REV, the evidence (first release, releases unchanged, known users from "
                    "`policybot census`, build guards, successors, the declared level) and the candidates: "
                    "for stable, undeclared or unstable kfuncs with enough out-of-tree users and unchanged for "
                    "enough releases (the policy's [propose] min_users, default 2, and "
                    "min_unchanged_releases, default 4); for deprecating, those a NAME_v2, NAME___v2 or NAME2 "
                    "replaces, or that nothing uses and whose kernel-doc names a replacement. A declared "
                    "kfunc is never proposed. --format mbox writes the declarations into the tree's manifest "
                    "as a patch series: a cover letter with the evidence, one patch per MAINTAINERS subsystem "
                    "to its maintainers and lists, base-commit: REV, for `git am`, `b4 send` or "
                    "`git send-email`.",
        epilog="examples:\n  policybot census ~/src/scx@main:scheds /srv/debs/*.deb\n"
               "  policybot propose --repo ~/linux --rev v7.2\n"
               "  policybot propose --repo ~/linux --rev v7.2 --format mbox > declare.mbox\n"
               "  git am --empty=drop declare.mbox     # the cover letter has no diff\n")
    options.repo_options(p)
    p.add_argument("--tags", default="v*", metavar="GLOB", help="release tags for the evidence (default: v*)")
    options.policy_option(p, "manifest path, overlay and the [propose] criteria")
    options.config_option(p, "[state] (the census) and [mail] from (the series' From:)")
    p.add_argument("--from", dest="from_addr", metavar="ADDR", help="From: of the series (default: the config's "
                   "[mail] from)")
    options.format_option(p, "propose", "text (default), json, or mbox (the patch series)")
    options.today_option(p)


def execute(args) -> int:
    from ...app.propose import declaration_series, propose
    from ...render import render
    ctx = options.context(args)
    proposal = propose(ctx, args.rev, args.tags)
    if args.format == "mbox":
        declaration_series(ctx, proposal, str(ctx.mail.sender))
    sys.stdout.write(render("propose", args.format, proposal))
    return 0
