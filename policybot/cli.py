"""policybot's command line: the only module that prints to users and picks exit codes.

Each command parses its arguments, calls one library function, and renders
the result. Library errors (``PolicybotError``) become one line on stderr
and exit status 2; findings choose 0 or 1 (see ``policybot audit --help``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import signal
import sys

from . import __version__
from .errors import PolicybotError

EPILOG = """\
exit status: 0 success (audit: nothing at or above --fail-on), 1 findings at or
above --fail-on, 2 usage, configuration or input error (one line on stderr).

environment: POLICYBOT_STATE_DIR (default ~/.local/state/policybot),
POLICYBOT_CONFIG (default config file), POLICYBOT_DB (state database URL).
"""


def _common(p: argparse.ArgumentParser, rev: bool = True) -> None:
    p.add_argument("--repo", required=True, metavar="PATH",
                   help="kernel git repository, bare or not (no checkout is needed)")
    if rev:
        p.add_argument("--rev", default="HEAD", metavar="REV",
                       help="revision to read: branch, tag, sha, HEAD~3 (default: HEAD)")
    p.add_argument("--state-dir", metavar="DIR",
                   help="where the cache and state live (default: $POLICYBOT_STATE_DIR "
                        "or ~/.local/state/policybot)")
    p.add_argument("--db", metavar="URL",
                   help="state database URL, e.g. postgresql+psycopg://host/policybot "
                        "(default: $POLICYBOT_DB or a SQLite file in the state dir)")
    p.add_argument("--verify-objects", action="store_true",
                   help="let libgit2 re-hash every object it reads (slower; for untrusted repositories)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="policybot",
        description="Keeps the promises made about Linux kernel BPF kfuncs: what a tree "
                    "provides, what was declared stable, and what a change would break.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"policybot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "inventory", help="list the kfuncs of a tree at one revision",
        description="List every kfunc a kernel tree registers at one revision: its sets, "
                    "flags, program types, config guards and definition. Test kfuncs "
                    "(selftests, net/bpf/test_run.c) are left out unless --include-tests.",
        epilog="examples:\n  policybot inventory --repo ~/linux --rev v6.12\n"
               "  policybot inventory --repo linux.git --rev HEAD~3 --format json > kfuncs.json\n"
               "\nNotes on what the scanner could not resolve go to stderr as\n"
               "  path:line: note[code]: message\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(p)
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--include-tests", action="store_true", help="include test kfuncs")
    p.set_defaults(func=cmd_inventory)

    p = sub.add_parser(
        "audit", help="check a tree, or the changes between two revisions, against the promises",
        description="Diff the kfunc inventories of --base and --rev, classify every change with the "
                    "rule catalogue (policybot rules), and judge it against the declarations valid at "
                    "--base and their promise dates. Without --base, audit the current state alone: "
                    "declaration problems and promises expiring within the horizon.",
        epilog="examples:\n  policybot audit --repo ~/linux --base v6.1 --rev v6.12\n"
               "  policybot audit --repo linux.git --rev bpf-next/master --format json\n"
               "  policybot audit --repo linux.git --base v6.11 --rev v6.12 --fail-on warning\n"
               "\noutput lines: path:line: verdict[RULE]: kfunc what changed\n"
               "verdicts: violation (breaks a live promise), warning, notice (a mail is due), info\n"
               "exit status: 0 nothing at or above --fail-on, 1 findings at or above it, 2 error\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(p)
    p.add_argument("--base", metavar="REV", help="the revision whose promises count (e.g. last release)")
    p.add_argument("--policy", metavar="FILE", default=os.environ.get("POLICYBOT_POLICY"),
                   help="policy file (default: $POLICYBOT_POLICY, else built-in defaults; "
                        "see config/policy.toml)")
    p.add_argument("--fail-on", default="violation", metavar="LEVEL",
                   help="lowest verdict that makes the exit status 1: violation (default), warning, "
                        "notice, info, or never")
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text")
    p.add_argument("--today", metavar="YYYY-MM-DD", help="judge current-state promises as of this date")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("rules", help="list the rule catalogue",
                       description="List every rule policybot applies, with its summary.")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_rules)
    p = sub.add_parser("explain", help="explain one rule",
                       description="Print a rule: what it compares, its verdict per level, the fix hint.")
    p.add_argument("rule", metavar="RULE")
    p.set_defaults(func=cmd_explain)
    return parser


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `policybot ... | head` ends quietly
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except PolicybotError as e:
        print(f"policybot: {e}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        print("policybot: interrupted", file=sys.stderr)
        return 130


def _state(args):
    from .state import State
    return State(url=args.db or os.environ.get("POLICYBOT_DB"), state_dir=args.state_dir)


def _scanner(args):
    from .kernel.gitrepo import open_repo
    from .kernel.scanner import Scanner
    from .progress import Progress
    repo = open_repo(args.repo)
    return Scanner(repo, _state(args), Progress(), verify_objects=args.verify_objects)


def cmd_inventory(args) -> int:
    inv = _scanner(args).inventory(args.rev)
    out = sys.stdout
    if args.format == "json":
        json.dump(inv.to_json(args.include_tests), out, indent=2)
        out.write("\n")
    elif args.format == "csv":
        out.write(inventory_csv(inv, args.include_tests))
    else:
        out.write(inventory_table(inv, args.include_tests))
    for d in inv.diagnostics:
        print(d, file=sys.stderr)
    return 0


def cmd_audit(args) -> int:
    import datetime as dt

    from .policy.audit import Auditor, check_fail_on
    from .policy.config import load_policy
    from .policy.rules import severity
    from .report import render_json, render_markdown, render_text

    fail_on = check_fail_on(args.fail_on)
    policy = load_policy(args.policy)
    today = None
    if args.today:
        try:
            today = dt.date.fromisoformat(args.today)
        except ValueError:
            raise PolicybotError(f"--today: expected YYYY-MM-DD, got {args.today!r}") from None
    scanner = _scanner(args)
    result = Auditor(scanner.repo, scanner, policy, today).audit(args.rev, args.base)
    render = {"text": render_text, "json": render_json, "markdown": render_markdown}[args.format]
    sys.stdout.write(render(result))
    worst = result.worst()
    if fail_on != "never" and worst is not None and severity(worst) >= severity(fail_on):
        return 1
    return 0


def cmd_rules(args) -> int:
    from .policy.rules import catalogue
    rules = catalogue()
    if args.format == "json":
        json.dump([{"id": r.id, "summary": r.summary, "compares": r.compares, "verdict": r.verdict,
                    "hint": r.hint, "reference": r.reference, "aliases": list(r.aliases)}
                   for r in rules.values()], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    width = max(len(r) for r in rules)
    for r in rules.values():
        print(f"{r.id.ljust(width)}  {r.summary}")
    return 0


def cmd_explain(args) -> int:
    from .policy.rules import LEVEL_KEYS, lookup
    rule = lookup(args.rule)
    if rule is None:
        raise PolicybotError(f"unknown rule {args.rule!r} (see `policybot rules`)")
    print(f"{rule.id}: {rule.summary}")
    print(f"\ncompares: {rule.compares}")
    print("\nverdict by the kfunc's status at the base:")
    for level in LEVEL_KEYS:
        print(f"  {level:15} {rule.verdict[level]}")
    print(f"\nhint: {rule.hint}")
    print(f"reference: {rule.reference}")
    if rule.aliases:
        print(f"aliases: {', '.join(rule.aliases)}")
    return 0


def inventory_table(inv, include_tests: bool) -> str:
    rows = [("KFUNC", "FLAGS", "PROGRAM TYPES", "DEFINED AT")]
    for k in inv.selected(include_tests):
        d = k.definition
        rows.append((k.name + (" [test]" if k.test else ""),
                     ",".join(f.removeprefix("KF_") for f in k.flags) or "-",
                     ",".join(k.prog_types) or "-",
                     str(d.location) if d else "?"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows]
    n = len(rows) - 1
    lines.append(f"{n} kfunc{'s' if n != 1 else ''} at {inv.rev} ({inv.commit[:12]})"
                 + ("" if include_tests else ", test kfuncs excluded"))
    return "\n".join(lines) + "\n"


def inventory_csv(inv, include_tests: bool) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "test", "flags", "prog_types", "guards", "sets", "set_locations",
                "definition", "signature", "stability", "deprecated"])
    for k in inv.selected(include_tests):
        d = k.definition
        doc = d.doc if d else None
        w.writerow([k.name, int(k.test), "|".join(k.flags), "|".join(k.prog_types),
                    "|".join(k.guards), "|".join(m.set_name for m in k.memberships),
                    "|".join(str(m.location) for m in k.memberships),
                    str(d.location) if d else "", d.signature.render(k.name) if d else "",
                    doc.stability if doc else "", doc.deprecated if doc else ""])
    return buf.getvalue()


if __name__ == "__main__":
    raise SystemExit(main())
