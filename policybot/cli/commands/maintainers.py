"""``policybot maintainers``: who gets mail about a file, as scripts/get_maintainer.pl says."""

from __future__ import annotations

from .. import options


def add(sub) -> None:
    p = options.command(
        sub, "maintainers", help="who gets mail about a file (as scripts/get_maintainer.pl)",
        description="Print the maintainers, reviewers and lists that MAINTAINERS assigns to the "
                    "files, in get_maintainer.pl's order (--nogit --nogit-fallback --norolestats).",
        epilog="example:\n  policybot maintainers --repo ~/linux --rev v6.12 kernel/bpf/helpers.c\n")
    options.repo_options(p)
    p.add_argument("files", nargs="+", metavar="FILE", help="paths in the tree")


def execute(args) -> int:
    from ...app.maintainers import maintainers
    for line in maintainers(options.context(args), args.rev, args.files):
        print(line)
    return 0
