"""``policybot compat``: a C header that bridges kfunc renames and prototype changes across releases."""

from __future__ import annotations

import sys

from .. import options


def add(sub) -> None:
    p = options.command(
        sub, "compat", help="write a C header that bridges kfunc renames and prototype changes across releases",
        description="For every kfunc whose name, BPF-visible prototype or availability differs between "
                    "the release tags A..B (or only those the given BPF C sources and objects name), "
                    "write weak flavored externs (NAME___vN, one per era, with that era's prototype) and "
                    "one wrapper that calls whichever the running kernel has (bpf_ksym_exists()), with "
                    "the releases each variant covers and its promise. Renames become wrappers from the "
                    "old name to the new; a change that cannot be bridged (an added argument, a value "
                    "returned where there was none) leaves the wrapper out and says why, unless the "
                    "policy file gives a fallback ([compat.\"NAME\"] fallback = \"...\"). Afterwards every "
                    "extern is checked against every release as `check` does.",
        epilog="examples:\n  policybot compat --repo linux.git --releases v6.12..v7.2 > compat.h\n"
               "  policybot compat --repo linux.git --releases v6.12..v7.2 --kfuncs sched.bpf.c > compat.h\n"
               "\nexit status: 0 header written, 1 header written but an extern of it resolves on no\n"
               "release (one line each on stderr), 2 bad input\n")
    options.repo_options(p, rev=False)
    p.add_argument("--releases", required=True, metavar="A..B",
                   help="the oldest and newest release tags the header must load on, e.g. v6.12..v7.2")
    p.add_argument("--kfuncs", nargs="+", default=[], metavar="FILE|OBJ",
                   help="only the kfuncs these BPF C sources name, or the BPF objects in these files "
                        "(a .bpf.o, an executable or shared library that embeds some, a Debian package; "
                        "read as `check` reads them)")
    options.policy_option(p, "fallbacks of wrappers ([compat]), manifest path and overlay")
    options.today_option(p)


def execute(args) -> int:
    from ...app.compat import compat
    from ...render import render
    from ...render.compat import dead_lines
    header = compat(options.context(args), args.releases, args.kfuncs)
    text = render("compat", "c", header)
    sys.stdout.write(text)
    sys.stderr.write(dead_lines(header))
    return 1 if header.dead else 0
