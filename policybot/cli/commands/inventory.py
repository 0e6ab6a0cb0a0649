"""``policybot inventory``: the kfuncs of a tree at one revision, or of a compiled kernel."""

from __future__ import annotations

import sys

from .. import options


def add(sub) -> None:
    p = options.command(
        sub, "inventory", help="list the kfuncs of a tree at one revision",
        description="List every kfunc a kernel tree registers at one revision: its sets, "
                    "flags, program types, config guards and definition. Test kfuncs "
                    "(selftests, net/bpf/test_run.c) are left out unless --include-tests.",
        epilog="examples:\n  policybot inventory --repo ~/linux --rev v6.12\n"
               "  policybot inventory --repo linux.git --rev HEAD~3 --format json > kfuncs.json\n"
               "  policybot inventory --btf /boot/vmlinuz-$(uname -r)\n"
               "  policybot inventory --btf /sys/kernel/btf/vmlinux --btf nf_conntrack.ko --repo linux.git --rev v6.12\n"
               "\nNotes on what the scanner could not resolve go to stderr as\n"
               "  path:line: note[code]: message\n"
               "With --btf and --repo, a kfunc the BTF tags but the source inventory lacks is\n"
               "an error[scanner-miss] (exit status 1).\n")
    options.repo_options(p, repo_needed=lambda a: not a.btf)
    p.add_argument("--btf", action="append", metavar="FILE",
                   help="list the kfuncs a compiled kernel carries (BTF decl tag bpf_kfunc): a vmlinuz, "
                        "vmlinux or raw BTF such as /sys/kernel/btf/vmlinux; repeat for its modules (.ko). "
                        "With --repo, cross-check them against the source inventory at --rev")
    options.format_option(p, "inventory", "table for people (default), json (schema in docs/inventory.md), csv")
    p.add_argument("--include-tests", action="store_true", help="include test kfuncs")


def execute(args) -> int:
    from ...render import render
    ctx = options.context(args)
    if args.btf:
        from ...app.inventory import compiled_kernel
        from ...render.inventory import cross_check_lines
        kernel, cc = compiled_kernel(ctx, args.btf, args.rev if args.repo else None)
        sys.stdout.write(render("compiled-kernel", args.format, (kernel, cc)))
        if cc is None:
            return 0
        sys.stderr.write(cross_check_lines(kernel, cc))
        return 1 if cc.scanner_misses else 0
    from ...app.inventory import inventory
    inv = inventory(ctx, args.rev)
    sys.stdout.write(render("inventory", args.format, inv, include_tests=args.include_tests))
    for d in inv.diagnostics:
        print(d, file=sys.stderr)
    return 0
