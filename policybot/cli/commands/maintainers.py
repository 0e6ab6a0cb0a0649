"""``policybot maintainers``: who gets mail about a file, as scripts/get_maintainer.pl says."""

from __future__ import annotations

from .. import options


def add(sub) -> None:
    p = options.command(
        sub, "maintainers", help="who gets mail about a file (as scripts/get_maintainer.pl)",
        description="Print the maintainers, reviewers and lists that MAINTAINERS assigns to the "
                    "files, in get_maintainer.pl's order (--nogit --nogit-fallback --norolestats). "
                    "A patch file (a .patch, git format-patch output, an mbox) is read as the script "
                    "reads one: the paths it touches and the K: keywords it matches. A path is read as "
                    "git reads one: inside a checkout relative to the current directory (an absolute "
                    "path inside it too), else relative to the top of the repository. A path that no "
                    "branch or tag has, and that is no patch, is refused.",
        epilog="examples:\n  policybot maintainers --repo ~/linux --rev v6.12 kernel/bpf/helpers.c\n"
               "  cd ~/linux && policybot maintainers 0001-bpf-add-a-kfunc.patch\n")
    options.repo_options(p)
    p.add_argument("files", nargs="+", metavar="FILE", help="paths in the tree, or patch files")


def execute(args) -> int:
    from ...app.maintainers import maintainers
    for line in maintainers(options.context(args), args.rev, args.files):
        print(line)
    return 0
