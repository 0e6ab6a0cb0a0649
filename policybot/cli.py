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
