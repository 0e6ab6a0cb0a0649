"""``policybot check``: which kfuncs a compiled BPF object can rely on, and whether it loads."""

from __future__ import annotations

import sys

from ...errors import PolicybotError
from .. import options


def add(sub) -> None:
    p = options.command(
        sub, "check", help="which kfuncs a compiled BPF object can rely on, and whether it loads",
        description="Read the kfunc externs of compiled BPF objects (FUNC externs of the .ksyms "
                    "datasec; weak or strong; ___flavor suffixes dropped as libbpf does) and resolve "
                    "each against target kernels: source tree revisions (--rev, --releases; the "
                    "inventory and the promises declared there) or a compiled kernel (--btf). Per "
                    "extern: ok, missing or incompatible (libbpf's prototype rule), its declared level, "
                    "promise end, deprecation, first release and what its flags ask of the program. "
                    "Per object and target: whether it loads (a strong extern that does not resolve "
                    "fails the load; a weak one is left unresolved).",
        epilog="examples:\n  policybot check prog.bpf.o --repo ~/linux --rev v6.12\n"
               "  policybot check prog.bpf.o --repo linux.git --releases 'v6.*' --rev v7.2\n"
               "  policybot check prog.bpf.o --btf /sys/kernel/btf/vmlinux\n"
               "  policybot check *.bpf.o --btf vmlinuz-7.2 --repo linux.git --rev v7.2 --format sarif > check.sarif\n"
               "\noutput lines: file.bpf.c:LINE: verdict[RULE]: what (the call site, from the object's line info)\n"
               "exit status: 0 nothing at or above --fail-on, 1 findings at or above it (default:\n"
               "violation, i.e. an object does not load), 2 bad input (not an ELF, no BTF, ...)\n")
    p.add_argument("objects", nargs="+", metavar="OBJ.bpf.o", help="compiled BPF objects (clang -target bpf -g)")
    options.repo_options(p, rev=False, repo_needed=lambda a: bool(a.rev or a.releases))
    p.add_argument("--rev", action="append", default=[], metavar="REV",
                   help="a source revision of --repo to check against (repeatable)")
    p.add_argument("--releases", metavar="GLOB", help="also every release tag matching GLOB, e.g. 'v6.*'")
    p.add_argument("--btf", action="append", metavar="FILE",
                   help="check against a compiled kernel: vmlinuz, vmlinux or raw BTF; repeat for its "
                        "modules (.ko). With --repo/--rev, the first --rev gives flags and policy")
    options.policy_option(p)
    options.fail_on_option(p)
    options.format_option(p, "check", "text (default; a matrix extern x target with several targets), json "
                                      "(one object per line per object and target), sarif (2.1.0)")
    options.today_option(p)


def execute(args) -> int:
    from ...app.check import check
    from ...model.vocabulary import fails
    from ...render import render
    fail_on = options.fail_on(args)
    if not args.btf and not (args.rev or args.releases):
        raise PolicybotError("check: give a target: --repo PATH --rev REV (or --releases GLOB), or --btf FILE")
    results = check(options.context(args), args.objects, args.rev, args.releases, args.btf)
    sys.stdout.write(render("check", args.format, results))
    return 1 if fails([f.verdict for v in results for f in v.findings], fail_on) else 0
