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
                    "A called extern needs a kfunc; one whose address alone is loaded (ld_imm64, e.g. "
                    "bpf_ksym_exists() with no call) resolves against any kernel function of that name "
                    "(a source tree: any function its .c files define; a compiled kernel: any FUNC of "
                    "its BTF). Per object and target: whether it loads as far as its kfunc externs "
                    "go (a strong extern that does not resolve fails the load; a weak one is left "
                    "unresolved); maps, CO-RE relocations and the verifier are not checked. With "
                    "several targets, a weak extern that resolves on none is a dead fallback "
                    "(EXTERN_DEAD_FALLBACK). With --btf and --repo/--rev, the source says why the "
                    "kernel lacks a kfunc (the config guards this build left out) and which tagged "
                    "functions programs may not call (fmod_ret-only sets).",
        epilog="examples:\n  policybot check prog.bpf.o --repo ~/linux --rev v6.12\n"
               "  policybot check prog.bpf.o --repo linux.git --releases 'v6.*' --rev v7.2\n"
               "  policybot check prog.bpf.o --btf /sys/kernel/btf/vmlinux\n"
               "  policybot check *.bpf.o --btf vmlinuz-7.2 --repo linux.git --rev v7.2 --format sarif > check.sarif\n"
               "  policybot check libbpf-tools_0.8_amd64.deb /usr/sbin/runqlat --btf /sys/kernel/btf/vmlinux\n"
               "\noutput lines: file.bpf.c:LINE: verdict[RULE]: what (the call site, from the object's line info)\n"
               "exit status: 0 nothing at or above --fail-on, 1 findings at or above it (default:\n"
               "violation, i.e. an object does not load), 2 bad input (not an ELF, no BTF, ...)\n")
    p.add_argument("objects", nargs="+", metavar="OBJ.bpf.o",
                   help="compiled BPF objects (clang -target bpf -g), or executables, shared libraries and "
                        "Debian packages (.deb): every BPF object embedded in them (libbpf skeletons) is checked")
    options.repo_options(p, rev=False, repo_needed=lambda a: bool(a.rev or a.releases))
    p.add_argument("--rev", action="append", default=[], metavar="REV",
                   help="a source revision of --repo to check against (repeatable)")
    p.add_argument("--releases", metavar="GLOB", help="also every release tag matching GLOB, e.g. 'v6.*'")
    p.add_argument("--btf", action="append", metavar="FILE",
                   help="check against a compiled kernel: vmlinuz, vmlinux or raw BTF; repeat for its "
                        "modules (.ko). With --repo/--rev, the first --rev gives flags and policy; with "
                        "config-REL beside vmlinuz-REL (as in /boot), why a kfunc is missing names the "
                        "options the build left out or built as modules")
    options.policy_option(p)
    options.fail_on_option(p)
    options.format_option(p, "check", "text (default; a matrix extern x target with several targets), json "
                                      "(one object per line per object and target), sarif (2.1.0: one run per "
                                      "target, stable fingerprints; notes only with --fail-on notice or info)")
    options.today_option(p)


def execute(args) -> int:
    from ...app.check import check
    from ...model.vocabulary import fails
    from ...render import render
    fail_on = options.fail_on(args)
    if not args.btf and not (args.rev or args.releases):
        raise PolicybotError("check: give a target: --repo PATH --rev REV (or --releases GLOB), or --btf FILE")
    run = check(options.context(args), args.objects, args.rev, args.releases, args.btf)
    sys.stdout.write(render("check", args.format, run, **({"fail_on": fail_on} if args.format == "sarif" else {})))
    from .. import terminal_safe
    for line in run.bad_inputs:  # checked the rest; the run still could not do all it was asked
        sys.stderr.write(f"policybot: {terminal_safe(line)}\n")
    if run.bad_inputs:
        return 2
    return 1 if fails([f.verdict for f in run.all_findings()], fail_on) else 0
