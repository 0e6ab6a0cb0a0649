"""``policybot census``: who uses each kfunc."""

from __future__ import annotations

import sys

from .. import options


def add(sub) -> None:
    p = options.command(
        sub, "census", help="who uses each kfunc: read BPF programs, keep their kfunc externs",
        description="Read each SOURCE and keep, per kfunc, the programs that call it: BPF C sources "
                    "(kfunc externs declared __ksym, and what the headers' wrappers call), compiled "
                    "objects (.bpf.o), executables and shared libraries (every embedded BPF object, "
                    "as libbpf skeletons carry them) and Debian packages (.deb, read without installing). "
                    "SOURCE is a file or directory (never through a symbolic link), or a git repository "
                    "at a revision, REPO@REV[:PATH], read without a checkout. A new census of a source "
                    "replaces what its last one found. In a kernel tree, programs under tools/ and "
                    "samples/ are in-tree; findings name the out-of-tree users. A file that cannot be "
                    "read is one line on stderr, the rest is read, and the exit status is 2.",
        epilog="examples:\n"
               "  policybot census bpfilter_0.6.0-2_amd64.deb /usr/sbin/sigsnoop-libbpf\n"
               "  policybot census ~/linux@v7.2:tools/sched_ext\n"
               "  policybot census --name scx --version 1.0.14 ~/src/scx/scheds\n"
               "  policybot census --list --by user --format csv\n")
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="what to read (none with --list)")
    p.add_argument("--name", help="the project's name for a directory or file (default: the "
                                  "directory's name; a package's own; linux for a kernel tree)")
    p.add_argument("--version", dest="project_version", metavar="VERSION",
                   help="the project's version (default: a package's own, the revision, or none)")
    p.add_argument("--list", action="store_true", help="show what is kept, without reading anything")
    p.add_argument("--by", choices=("kfunc", "user"), default="kfunc",
                   help="--list: one entry per kfunc (default) or per user")
    options.state_options(p)
    options.config_option(p, "[state] and [limits]")
    options.format_option(p, "census", "text (default), json, or csv (one row per use)")
    options.today_option(p, "the date the census is kept under")


def execute(args) -> int:
    import datetime as dt
    from ...app.census import census_table, take_census
    from ...errors import PolicybotError
    from ...render import render
    ctx = options.context(args)
    if args.list:
        if args.sources:
            raise PolicybotError("census --list reads nothing: give no SOURCE")
        sys.stdout.write(render("census-table", args.format, census_table(ctx.state, args.by)))
        return 0
    if not args.sources:
        raise PolicybotError("census: give a SOURCE to read, or --list")
    run = take_census(ctx.state, args.sources, ctx.today or dt.date.today(), args.name, args.project_version)
    sys.stdout.write(render("census", args.format, run))
    for problem in run.problems:
        sys.stderr.write(f"policybot: {problem}\n")
    return 2 if run.problems else 0
