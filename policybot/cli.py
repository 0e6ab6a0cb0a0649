"""policybot's command line: the only module that prints to users and picks exit codes.

Each command parses its arguments, calls one library function, and renders
the result. Library errors (``PolicybotError``) become one line on stderr
and exit status 2; findings choose 0 or 1 (see ``policybot audit --help``).
"""

from __future__ import annotations

import argparse
import atexit
import csv
import io
import json
import os
import re
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


def _state_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", metavar="DIR",
                   help="where the cache and state live (default: the config's [state] dir, "
                        "$POLICYBOT_STATE_DIR or ~/.local/state/policybot)")
    p.add_argument("--db", metavar="URL",
                   help="state database URL, e.g. postgresql+psycopg://host/policybot "
                        "(default: the config's [state] url, $POLICYBOT_DB or a SQLite file in the state dir)")


def _common(p: argparse.ArgumentParser, rev: bool = True, repo_required: bool = True) -> None:
    p.add_argument("--repo", required=repo_required, metavar="PATH",
                   help="kernel git repository, bare or not (no checkout is needed)")
    if rev:
        p.add_argument("--rev", default="HEAD", metavar="REV",
                       help="revision to read: branch, tag, sha, HEAD~3 (default: HEAD)")
    _state_options(p)
    p.add_argument("--verify-objects", action="store_true",
                   help="let libgit2 re-hash every object it reads (slower; for untrusted repositories)")


def _command(sub, name: str, help: str, description: str, epilog: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=description, epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _policy_option(p: argparse.ArgumentParser, what: str = "") -> None:
    p.add_argument("--policy", metavar="FILE", default=os.environ.get("POLICYBOT_POLICY"),
                   help="policy file (default: $POLICYBOT_POLICY, else built-in defaults; see "
                        "config/policy.toml)" + (f": {what}" if what else ""))


def _config_option(p: argparse.ArgumentParser, what: str = "") -> None:
    p.add_argument("--config", metavar="FILE",
                   help=f"configuration{f' ({what})' if what else ''} (default: $POLICYBOT_CONFIG)")


def _today_option(p: argparse.ArgumentParser, what: str = "judge promises as of this date") -> None:
    p.add_argument("--today", metavar="YYYY-MM-DD", help=what)


def _fail_on_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fail-on", default="violation", metavar="LEVEL",
                   help="lowest verdict that makes the exit status 1: violation (default), warning, "
                        "notice, info, or never")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="policybot",
        description="Keeps the promises made about Linux kernel BPF kfuncs: what a tree "
                    "provides, what was declared stable, and what a change would break.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"policybot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_inventory, _add_audit, _add_review, _add_maintainers, _add_run, _add_schedule,
                _add_notice, _add_outbox, _add_history, _add_report, _add_check, _add_rules):
        add(sub)
    return parser


def _add_inventory(sub) -> None:
    p = _command(
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
    _common(p, repo_required=False)
    p.add_argument("--btf", action="append", metavar="FILE",
                   help="list the kfuncs a compiled kernel carries (BTF decl tag bpf_kfunc): a vmlinuz, "
                        "vmlinux or raw BTF such as /sys/kernel/btf/vmlinux; repeat for its modules (.ko). "
                        "With --repo, cross-check them against the source inventory at --rev")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table",
                   help="table for people (default), json (schema in docs/inventory.md), csv")
    p.add_argument("--include-tests", action="store_true", help="include test kfuncs")
    p.set_defaults(func=cmd_inventory)


def _add_audit(sub) -> None:
    p = _command(
        sub, "audit", help="check a tree, or the changes between two revisions, against the promises",
        description="Diff the kfunc inventories of --base and --rev, classify every change with the "
                    "rule catalogue (policybot rules), and judge it against the declarations valid at "
                    "--base and their promise dates. Without --base, audit the current state alone: "
                    "declaration problems and promises expiring within the horizon.",
        epilog="examples:\n  policybot audit --repo ~/linux --base v6.1 --rev v6.12\n"
               "  policybot audit --repo linux.git --rev bpf-next/master --format json\n"
               "  policybot audit --repo linux.git --base v6.11 --rev v6.12 --fail-on warning\n"
               "\noutput lines: path:line: verdict[RULE]: kfunc what changed\n"
               "verdicts: violation (breaks a live promise), warning, notice (a mail is due), info\n"
               "exit status: 0 nothing at or above --fail-on, 1 findings at or above it, 2 error\n")
    _common(p)
    p.add_argument("--base", metavar="REV", help="the revision whose promises count (e.g. last release)")
    _policy_option(p)
    _fail_on_option(p)
    p.add_argument("--format", choices=("text", "json", "markdown", "sarif"), default="text",
                   help="text: path:line: verdict[RULE] lines (default); json; markdown for a web page; "
                        "sarif (2.1.0) for code scanning")
    _today_option(p, "judge current-state promises as of this date")
    p.set_defaults(func=cmd_audit)


def _add_review(sub) -> None:
    p = _command(
        sub, "review", help="review a patch series from the list and draft replies",
        description="Apply a patch series in memory (no work tree is touched) on --base, the series' "
                    "base-commit, or --branch; judge each patch against the promises valid at the "
                    "base; print the findings and draft one reply per patch with findings into the "
                    "outbox (a Maildir). Mail is only sent with --send.",
        epilog="examples:\n  b4 mbox -o- <msgid> | policybot review --repo ~/linux -\n"
               "  policybot review --repo linux.git --mbox series.mbox --base bpf-next/master\n"
               "  policybot review --repo linux.git --msgid 20260101.1234-1-dev@example.org --send\n")
    _common(p, rev=False)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--mbox", metavar="FILE", help="an mbox (or a single saved message)")
    src.add_argument("--maildir", metavar="DIR", help="a Maildir holding the series")
    src.add_argument("--msgid", metavar="ID", help="fetch the thread from the public-inbox server")
    src.add_argument("-", dest="stdin", action="store_true", help="read an mbox from standard input")
    p.add_argument("--base", metavar="REV", help="apply on this revision (default: the series' "
                   "base-commit if the repository has it, else --branch)")
    p.add_argument("--branch", default="HEAD", metavar="REV", help="fallback base (default: HEAD)")
    p.add_argument("--inbox-url", metavar="URL",
                   help="public-inbox base URL for --msgid (default: the config's [inbox] url, "
                        "else https://lore.kernel.org/all)")
    _policy_option(p)
    _config_option(p, "mail: From, SMTP, templates")
    p.add_argument("--send", action="store_true", help="deliver the queued mail over SMTP now")
    p.add_argument("--from", dest="from_addr", metavar="ADDR", help="the bot's From address")
    p.add_argument("--list", dest="list_addr", default="bpf@vger.kernel.org", metavar="ADDR",
                   help="list copied on every review (default: %(default)s)")
    p.add_argument("--tree-name", metavar="NAME", help="the tree's name in mails (default: the repository's)")
    _fail_on_option(p)
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text for people (default) or json")
    _today_option(p)
    p.set_defaults(func=cmd_review)


def _add_maintainers(sub) -> None:
    p = _command(
        sub, "maintainers", help="who gets mail about a file (as scripts/get_maintainer.pl)",
        description="Print the maintainers, reviewers and lists that MAINTAINERS assigns to the "
                    "files, in get_maintainer.pl's order (--nogit --nogit-fallback --norolestats).",
        epilog="example:\n  policybot maintainers --repo ~/linux --rev v6.12 kernel/bpf/helpers.c\n")
    _common(p)
    p.add_argument("files", nargs="+", metavar="FILE", help="paths in the tree")
    p.set_defaults(func=cmd_maintainers)


def _add_run(sub) -> None:
    p = _command(
        sub, "run", help="one pass of the weekly job: fetch, audit, review the inbox, notices, report",
        description="Fetch each tracked tree, audit what landed since the last audited commit, "
                    "review new series in the inbox, draft deprecation and expiry notices and the "
                    "weekly report into the outbox, and send if mail.send (or --send). For cron "
                    "and systemd timers; `policybot schedule` runs the same jobs itself.",
        epilog="examples:\n  policybot run --config /etc/policybot/policybot.toml\n"
               "  policybot run --tree bpf-next --job audit --job report\n")
    _config_option(p)
    p.add_argument("--tree", action="append", metavar="NAME", help="only this tree (repeatable)")
    p.add_argument("--job", action="append", choices=("audit", "review", "notices", "report"),
                   help="only these jobs (repeatable; default: all)")
    p.add_argument("--send", action="store_true", help="send queued mail even if mail.send is false")
    _today_option(p, "run as if on this date (simulation, tests)")
    p.add_argument("--retry-failed", action="store_true",
                   help="try again the inbox messages, trees and mails that failed before")
    _state_options(p)
    p.set_defaults(func=cmd_run)


def _add_schedule(sub) -> None:
    p = _command(
        sub, "schedule", help="run the weekly and inbox jobs on a schedule (APScheduler)",
        description="Run `policybot run`'s jobs forever: the weekly job (default Monday 06:00 UTC) "
                    "and the inbox job (default hourly), with the job store in the state database. "
                    "Exactly one scheduler per state database. Stops cleanly on SIGTERM.",
        epilog="examples:\n  policybot schedule --config /etc/policybot/policybot.toml\n"
               "  policybot schedule --list\n")
    _config_option(p)
    p.add_argument("--list", action="store_true", help="print each job's next run time and exit")
    _state_options(p)
    p.set_defaults(func=cmd_schedule)


def _add_notice(sub) -> None:
    p = _command(
        sub, "notice", help="draft the deprecation announcement of a kfunc",
        description="Draft the [ANN] deprecation notice of KFUNC into the outbox, with the dates "
                    "computed from its declarations and the policy. A removal date earlier than the "
                    "promise allows is refused, with the reason.",
        epilog="example:\n  policybot notice bpf_obj_new_impl --repo ~/linux --replacement bpf_obj_new\n")
    p.add_argument("kfunc", metavar="KFUNC", help="the kfunc to deprecate")
    _common(p)
    _config_option(p, "mail settings")
    _policy_option(p)
    p.add_argument("--replacement", metavar="NAME", help="the kfunc programs should move to")
    p.add_argument("--removal-not-before", metavar="YYYY-MM-DD", help="announce this removal date")
    _today_option(p, "deprecate as of this date")
    p.set_defaults(func=cmd_notice)


def _add_outbox(sub) -> None:
    p = _command(sub, "outbox", help="list queued mail, or send it",
                 description="List the mail waiting in the outbox (queued, or failed with the "
                             "last error); --send delivers it over SMTP (exit status 1 if a "
                             "delivery fails).",
                 epilog="examples:\n  policybot outbox --config /etc/policybot/policybot.toml\n"
                        "  policybot outbox --config /etc/policybot/policybot.toml --send\n")
    _config_option(p, "SMTP settings")
    _state_options(p)
    p.add_argument("--send", action="store_true", help="deliver queued mail now")
    p.add_argument("--retry-failed", action="store_true",
                   help="queue again the mail a server refused for good (5xx), then send")
    p.set_defaults(func=cmd_outbox)


def _add_history(sub) -> None:
    p = _command(
        sub, "history", help="every kfunc across the release tags: since when, what changed, renames",
        description="Walk the release tags (v<major>.<minor>, no -rc; --tags narrows them) and list for "
                    "every kfunc its first release, its last (if removed), and each release where its "
                    "signature, flags, program types or declared level changed, and renames. The parse "
                    "cache makes each further tag read only the blobs that changed.",
        epilog="examples:\n  policybot history --repo ~/linux\n"
               "  policybot history --repo linux.git --tags 'v6.*' --format json > history.json\n")
    _common(p, rev=False)
    p.add_argument("--tags", default="v*", metavar="GLOB", help="release tags to walk (default: v*)")
    _policy_option(p, "manifest path and overlay for declared levels")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table",
                   help="table (default), json, or csv (one row per event)")
    p.set_defaults(func=cmd_history)


def _add_report(sub) -> None:
    p = _command(
        sub, "report", help="the stability page: one self-contained HTML file",
        description="Write one self-contained HTML page (no network assets) for out-of-tree BPF "
                    "authors: a sortable, filterable table of kfuncs with level, since, promise end "
                    "and days left; a timeline of support windows and deprecation periods; the "
                    "current findings; each kfunc's history. Readable without JavaScript, printable.",
        epilog="example:\n  policybot report --repo ~/linux --rev v6.12 --html kfuncs.html\n")
    _common(p)
    p.add_argument("--html", metavar="FILE", help="write the page here")
    p.add_argument("--format", choices=("json",), help="also print the page's data as JSON")
    p.add_argument("--tags", default="v*", metavar="GLOB", help="release tags for the history (default: v*)")
    _policy_option(p)
    _today_option(p, "days left and the today line as of this date")
    p.set_defaults(func=cmd_report)


def _add_rules(sub) -> None:
    p = _command(sub, "rules", help="list the rule catalogue",
                 description="List every rule policybot applies, with its summary.",
                 epilog="example:\n  policybot rules --format json | jq '.[].id'\n")
    p.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or json")
    p.set_defaults(func=cmd_rules)
    p = _command(sub, "explain", help="explain one rule",
                 description="Print a rule: its family, what it compares, its verdict per level, "
                             "its message templates, the fix hint.",
                 epilog="examples:\n  policybot explain KFUNC_FLAGS_TIGHTENED\n"
                        "  policybot explain kfunc_needs_review --format json | jq .messages\n")
    p.add_argument("rule", metavar="RULE", help="a rule id, e.g. KFUNC_REMOVED (case does not matter)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or json")
    p.set_defaults(func=cmd_explain)




def run() -> None:
    """The process's entry point (``policybot``, ``python -m policybot``): main(), then exit
    without tearing down every object one by one (0.05-0.1 s after a scan). Output is
    flushed and the exit handlers (a prefetching git grep's kill, logging's flush) run first;
    every write to the cache or the state has been committed by then."""
    status = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        status = status or 2
    atexit._run_exitfuncs()
    os._exit(status)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `policybot ... | head` ends quietly
    if not isinstance(sys.stdout, _SafeStream):
        sys.stdout, sys.stderr = _SafeStream(sys.stdout), _SafeStream(sys.stderr)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except PolicybotError as e:
        print(f"policybot: {terminal_safe(' '.join(str(e).splitlines()))}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        print("policybot: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # the last resort: one line naming what was being processed, never a traceback
        from .errors import PROCESSING, describe
        where = f" ({PROCESSING[-1]})" if PROCESSING else ""
        print(f"policybot: {args.command}{where}: {terminal_safe(describe(e))}", file=sys.stderr)
        return 2


# C0 (but tab and newline), DEL, C1, and the Unicode line separators and bidi overrides
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """Input shown on a terminal: escape sequences and other control characters made visible."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                       else f"\\u{ord(m.group()):04x}", text)


class _SafeStream:
    """stdout/stderr that never pass an escape sequence from input to the terminal."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        return self._stream.write(terminal_safe(text))

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _progress():
    """Progress on the real stderr: its own \\r and erase-line are the one escape sequence allowed."""
    from .progress import Progress
    return Progress(stream=getattr(sys.stderr, "_stream", sys.stderr))


def _overrides(args):
    from .app.settings import Overrides
    return Overrides(config=getattr(args, "config", None), db=getattr(args, "db", None),
                     state_dir=getattr(args, "state_dir", None))


def _policy(args):
    """The policy, as app/settings.py resolves it for every entry point."""
    from .app.settings import policy
    return policy(args.policy)


def _state(args, cfg=None):
    """The state, as app/settings.py resolves it for every entry point."""
    from .app.settings import open_state
    if cfg is None and hasattr(args, "config"):  # commands with --config: its [state] counts
        cfg = _config(args)[0]
    return open_state(_overrides(args), cfg)


def _cache(args, cfg=None):
    """The parse cache, in the state directory app/settings.py resolves."""
    from .app.settings import open_cache
    if cfg is None and hasattr(args, "config"):  # commands with --config: its [state] counts
        cfg = _config(args)[0]
    return open_cache(_overrides(args), cfg)


def _scanner(args, cfg=None):
    from .app.inventory import scanner
    return scanner(args.repo, _cache(args, cfg), _progress(), verify_objects=args.verify_objects)


def _prefetch_cold(args, rev: str | None, cache_file: str | None = None) -> None:
    """An empty cache: start git grep on ``rev``'s tree before the scanner's imports (pygit2's too).

    ``cache_file``: where this command's cache is (default: --state-dir's). A wrong
    guess of ``rev`` costs CPU, not correctness: the scanner takes a grep of its own tree only.
    """
    from .cache import CACHE_FILE
    from .kernel.grep import prefetch_grep
    if not rev or args.verify_objects or (os.cpu_count() or 1) < 2:
        return
    if os.path.exists(cache_file or _cache_dir(args, CACHE_FILE)):
        return  # a cache: the scanner reads only what it lacks
    prefetch_grep(args.repo, rev)


_BASE_COMMIT = re.compile(rb"^base-commit:[ \t]*([0-9a-f]{7,40})[ \t]*\r?$", re.M)


def _review_base_guess(args) -> str | None:
    """The base review_series will choose (--base, else an mbox file's base-commit, else --branch),
    read without b4: the first 1 MiB of an mbox holds its cover letter's base-commit line. None
    for a thread not yet read (stdin, a Maildir, a Message-ID): a wrong guess would cost cores."""
    if args.base:
        return args.base
    if not args.mbox:
        return None
    try:
        with open(args.mbox, "rb") as f:
            m = _BASE_COMMIT.search(f.read(1 << 20))
    except OSError:
        return None  # read_series says why, in its words
    return m.group(1).decode() if m else args.branch


def cmd_inventory(args) -> int:
    if args.btf:
        return _inventory_btf(args)
    if not args.repo:
        raise PolicybotError("inventory: give --repo PATH (a source tree) or --btf FILE (a compiled kernel)")
    _prefetch_cold(args, args.rev)
    from .app.inventory import inventory
    inv = inventory(_scanner(args), args.rev)
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
    from .app.audit import audit
    from .policy.rules import fails
    from .policy.audit import check_fail_on
    from .report import render_json, render_markdown, render_text
    from .sarif import render_audit

    fail_on = check_fail_on(args.fail_on)
    result = audit(_scanner(args), _policy(args), args.rev, args.base, _today(args))
    render = {"text": render_text, "json": render_json, "markdown": render_markdown,
              "sarif": render_audit}[args.format]
    sys.stdout.write(render(result))
    return 1 if fails([result.worst()], fail_on) else 0


LAST_YEAR = 9000


def _today(args):
    import datetime as dt
    if not getattr(args, "today", None):
        return None
    try:
        today = dt.date.fromisoformat(args.today)
    except ValueError:
        raise PolicybotError(f"--today: expected YYYY-MM-DD, got {args.today!r}") from None
    if today.year > LAST_YEAR:  # promise windows and notice periods after it must still be dates
        raise PolicybotError(f"--today: {args.today} is too far ahead (the last year policybot "
                             f"can judge is {LAST_YEAR})")
    return today


def cmd_review(args) -> int:
    from .app.settings import state_dir
    from .cache import CACHE_FILE
    cfg, _ = _config(args)
    _prefetch_cold(args, _review_base_guess(args), str(state_dir(_overrides(args), cfg) / CACHE_FILE))
    from .app.review import ReplySettings, read_series, review
    from .kernel.gitrepo import repo_name
    from .mail.drafts import template_env
    from .policy.audit import check_fail_on
    from .policy.rules import fails
    from .report import finding_line

    fail_on = check_fail_on(args.fail_on)
    policy = _policy(args)
    scanner = _scanner(args, cfg)
    state = _state(args, cfg)
    limits = cfg.limits
    series = read_series(state.state_dir, limits, msgid=args.msgid, inbox_url=args.inbox_url or cfg.inbox_url,
                         data=sys.stdin.buffer.read() if args.stdin else None, path=args.mbox or args.maildir,
                         cache=scanner.cache)
    outbox, config = _outbox(args, state)
    replies = ReplySettings(outbox, config, args.tree_name or repo_name(scanner.repo), args.list_addr,
                            cfg.review_min_verdict, template_env(cfg.templates or None), limits)
    reviewed = review(scanner.repo, scanner, policy, series, replies, args.base, args.branch, _today(args))
    result, queued = reviewed.result, reviewed.queued
    unsent = [f"no reply drafted to {r.subject!r}: {r.reason}" for r in reviewed.refused]
    result.notes += unsent
    sent = outbox.send(config) if (args.send or config.send) else None

    if args.format == "json":
        from .report import finding_json
        json.dump({
            "schema": 1, "series": {"subject": series.subject, "revision": series.revision,
                                    "author": series.author, "missing": series.missing},
            "base": {"rev": result.base_rev, "commit": result.base_commit, "how": result.base_how},
            "notes": result.notes,
            "patches": [{"msgid": r.patch.msgid, "subject": r.patch.subject, "applied": r.applied,
                         "problem": r.problem or None, "files": list(r.files),
                         "findings": [finding_json(f) for f in r.findings]} for r in result.reviews],
            "drafted": queued, "outbox": str(outbox.maildir),
        }, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for note in result.notes:
            print(f"policybot: note: {note}")
        for r in result.reviews:
            status = "applied" if r.applied else f"could not apply {r.patch.counter}/{r.patch.expected} on {result.base_rev}: {r.problem}"
            print(f"{r.patch.subject}: {status}")
            for f in r.findings:
                print(f"  {finding_line(f)}")
        for note in unsent:
            print(f"policybot: note: {note}")
        n = len(result.findings())
        np = len(result.reviews)
        print(f"review of {series.subject!r} (v{series.revision}, {np} patch{'es' if np != 1 else ''}) on "
              f"{result.base_rev}: {n} finding{'s' if n != 1 else ''}; drafted {len(queued)} "
              f"mail{'s' if len(queued) != 1 else ''} to {outbox.maildir}")
        if sent is not None:
            print(f"sent {len(sent.sent)}, failed {len(sent.failed)}")
    return 1 if fails([f.verdict for f in result.findings() if f.counts], fail_on) else 0


def _outbox(args, state):
    """The outbox (STATE_DIR/outbox) and mail settings: the configuration's, with --from on top."""
    import dataclasses

    from .mail.outbox import Outbox
    cfg, _ = _config(args)
    config = cfg.mail
    if getattr(args, "from_addr", None):
        config = dataclasses.replace(config, from_addr=args.from_addr, msgid_domain="")
    return Outbox(state, state.state_dir / "outbox"), config


def _config(args):
    """The configuration of this invocation, read once however many helpers ask."""
    from .app.settings import load
    from .app.config import config_path
    if not hasattr(args, "_loaded_config"):
        args._loaded_config = (load(_overrides(args)), config_path(getattr(args, "config", None)))
    return args._loaded_config


def cmd_run(args) -> int:
    from .app.weekly import JOBS, weekly_run
    cfg, _ = _config(args)
    if not cfg.trees:
        raise PolicybotError(f"{cfg.path}: no [[trees]] configured: nothing to run")
    runner, summary = weekly_run(cfg, _state(args, cfg), args.tree, tuple(args.job or JOBS),
                                 send=True if args.send else None, retry_failed=args.retry_failed,
                                 today=_today(args), progress=_progress())
    for t in summary.trees:
        rng = f"{t.base[:12]}..{t.head[:12]}" if t.base else (t.head[:12] if t.head else "-")
        counts = {}
        for f in t.findings:
            if f.counts:
                counts[f.verdict] = counts.get(f.verdict, 0) + 1
        what = ", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "no findings"
        print(f"{t.tree}: {t.status} {rng}: {what}" + (f" ({t.detail})" if t.detail else ""))
    for s in summary.reviewed:
        print(f"reviewed: {s}")
    for failure in summary.failures:
        print(f"failed: {failure.what}: {failure.reason}")
    print(f"drafted {len(summary.queued)} mail{'s' if len(summary.queued) != 1 else ''} to "
          f"{runner.outbox.maildir}" + (f"; sent {len(summary.sent)}, failed {len(summary.send_failed)}"
                                       if summary.sent or summary.send_failed else ""))
    from .vocabulary import RunStatus
    return 2 if any(t.status in (RunStatus.FETCH_FAILED, RunStatus.ERROR) for t in summary.trees) else 0


def cmd_schedule(args) -> int:
    from .scheduler import next_runs, run_forever
    cfg, path = _config(args)
    state = _state(args, cfg)
    if args.list:
        for job_id, when, trigger in next_runs(cfg, state, path, overrides=_overrides(args).job_state()):
            print(f"{job_id:8} {when.isoformat() if when else 'never':28} {trigger}")
        return 0
    if not cfg.trees:
        raise PolicybotError(f"{cfg.path}: no [[trees]] configured: nothing to schedule")
    run_forever(cfg, state, path, _overrides(args).job_state())
    return 0


def cmd_notice(args) -> int:
    import datetime as dt

    from .app.inventory import scanner as open_scanner
    from .app.notice import notice
    from .app.weekly import Runner
    from .app.config import Tree
    from .kernel.gitrepo import repo_name
    cfg, _ = _config(args)
    state = _state(args, cfg)
    removal = None
    if args.removal_not_before:
        try:
            removal = dt.date.fromisoformat(args.removal_not_before)
        except ValueError:
            raise PolicybotError(f"--removal-not-before: expected YYYY-MM-DD, got {args.removal_not_before!r}") from None
    scanner = open_scanner(args.repo, state.cache, _progress(), verify_objects=args.verify_objects)
    tree = Tree(repo_name(scanner.repo), args.repo, policy=_policy(args))
    runner = Runner(cfg, state, _today(args))
    draft = notice(runner, scanner.repo, scanner, tree, args.rev, args.kfunc, args.replacement, removal)
    print(f"Subject: {draft.subject}\nTo: {', '.join(draft.to)}\nCc: {', '.join(draft.cc)}\n")
    print(draft.body)
    print(f"drafted to {runner.outbox.maildir}")
    return 0


def cmd_outbox(args) -> int:
    from .mail.outbox import Outbox
    cfg, _ = _config(args)
    state = _state(args, cfg)
    outbox = Outbox(state, state.state_dir / "outbox")
    if args.send or args.retry_failed:
        report = outbox.send(cfg.mail, retry_failed=args.retry_failed)
        for msgid in report.sent:
            print(f"sent    {msgid}")
        for failure in report.failed:
            print(f"failed  {failure.msgid}: {failure.error}")
        return 1 if report.failed else 0
    rows = outbox.pending()
    for row in rows:
        why = f"\n        {row.last_error}" if row.last_error else ""
        wait = f" (next try after {row.next_attempt:%Y-%m-%d %H:%M} UTC)" if row.next_attempt else ""
        print(f"{row.status:7} {row.kind:7} {row.msgid}  {row.subject}{wait}{why}")
    print(f"{len(rows)} queued in {outbox.maildir}")
    for f in state.failures():  # trees and inbox messages `run` could not process
        print(f"failed  {f.kind} {f.key}: {f.reason} ({f.day}; `run --retry-failed` tries again)")
    return 0


def cmd_maintainers(args) -> int:
    from .kernel.gitrepo import open_repo, resolve
    from .kernel.maintainers import maintainers_at
    repo = open_repo(args.repo)
    maint = maintainers_at(repo, resolve(repo, args.rev).tree)
    if maint is None:
        raise PolicybotError(f"{args.repo}: no MAINTAINERS file at {args.rev}")
    for line in maint.for_files(args.files).all():
        print(line)
    return 0


def cmd_history(args) -> int:
    from .app.history import history_csv, history_json, history_table, kfunc_history
    scanner = _scanner(args)
    if scanner.repo.head_is_unborn:
        raise PolicybotError(f"{args.repo}: repository has no commits")
    hs = kfunc_history(scanner.repo, scanner, args.tags, _policy(args))
    sys.stdout.write({"table": history_table, "json": history_json, "csv": history_csv}[args.format](hs))
    return 0


def cmd_report(args) -> int:
    from .app.page import dashboard_json, page, write_page
    if not args.html and not args.format:
        raise PolicybotError("report: give --html FILE, --format json, or both")
    scanner = _scanner(args)
    data = page(scanner.repo, scanner, _policy(args), args.rev, _today(args), args.tags)
    if args.html:
        try:
            out = write_page(data, args.html)
        except OSError as e:
            raise PolicybotError(f"{args.html}: {e.strerror}") from None
        print(f"wrote {out}", file=sys.stderr)
    if args.format == "json":
        sys.stdout.write(dashboard_json(data))
    return 0


def rule_json(r) -> dict:
    """A rule as `policybot rules --format json` and `explain --format json` print it."""
    from .policy.rules import DEFAULT_VARIANT
    return {"id": r.id, "family": r.family, "summary": r.summary, "compares": r.compares, "verdict": r.verdict,
            "message": r.messages.get(DEFAULT_VARIANT),  # as rules.toml: one message, or named variants
            "messages": {v: t for v, t in r.messages.items() if v != DEFAULT_VARIANT},
            "hint": r.hint, "reference": r.reference, "aliases": list(r.aliases)}


def cmd_rules(args) -> int:
    from .policy.rules import catalogue
    rules = catalogue()
    if args.format == "json":
        json.dump([rule_json(r) for r in rules.values()], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    width = max(len(r) for r in rules)
    family_width = max(len(r.family) for r in rules.values())
    for r in rules.values():
        print(f"{r.id.ljust(width)}  {r.family.ljust(family_width)}  {r.summary}")
    return 0


def cmd_explain(args) -> int:
    from .policy.rules import lookup
    from .vocabulary import LEVEL_KEYS
    rule = lookup(args.rule)
    if rule is None:
        raise PolicybotError(f"unknown rule {args.rule!r} (see `policybot rules`)")
    if args.format == "json":
        json.dump(rule_json(rule), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"{rule.id}: {rule.summary}")
    print(f"family: {rule.family}")
    print(f"\ncompares: {rule.compares}")
    print("\nverdict by the kfunc's status at the base:")
    for level in LEVEL_KEYS:
        print(f"  {level:15} {rule.verdict[level]}")
    print("\nmessage:" if len(rule.messages) == 1 else "\nmessages:")
    for variant, template in rule.messages.items():
        print(f"  {variant}: {template}" if variant else f"  {template}")
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



# -- policybot check, and inventory --btf: compiled BPF objects and kernels ----------------

def _add_check(sub) -> None:
    p = _command(
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
    _common(p, rev=False, repo_required=False)
    p.add_argument("--rev", action="append", default=[], metavar="REV",
                   help="a source revision to check against (repeatable; needs --repo)")
    p.add_argument("--releases", metavar="GLOB", help="also every release tag matching GLOB, e.g. 'v6.*'")
    p.add_argument("--btf", action="append", metavar="FILE",
                   help="check against a compiled kernel: vmlinuz, vmlinux or raw BTF; repeat for its "
                        "modules (.ko). With --repo/--rev, the first --rev gives flags and policy")
    _policy_option(p)
    _fail_on_option(p)
    p.add_argument("--format", choices=("text", "json", "sarif"), default="text",
                   help="text (default; a matrix extern x target with several targets), json (one "
                        "object per line per object and target), sarif (2.1.0)")
    _today_option(p)
    p.set_defaults(func=cmd_check)


def _cache_dir(args, name: str) -> str:
    from .paths import state_dir  # the rule app/settings.py applies, without its imports (check stays fast)
    return os.path.join(state_dir(args.state_dir), name)


def _compiled_kernel(args):
    from .app.inventory import compiled_kernel
    return compiled_kernel(args.btf, _cache_dir(args, "btf"))


def cmd_check(args) -> int:
    from .policy.rules import fails
    from .btf.program import read_object
    from .check import btf_target, check, render_text, source_targets, verdict_json
    from .vocabulary import VERDICTS

    fail_on = args.fail_on
    if fail_on not in (*VERDICTS, "never"):
        raise PolicybotError(f"--fail-on: expected violation, warning, notice, info or never, got {fail_on!r}")
    if (args.rev or args.releases) and not args.repo:
        raise PolicybotError("check: --rev and --releases need --repo PATH")
    if not args.btf and not (args.rev or args.releases):
        raise PolicybotError("check: give a target: --repo PATH --rev REV (or --releases GLOB), or --btf FILE")
    objects = [read_object(o) for o in args.objects]  # bad input fails before any tree is read
    targets = []
    if args.repo and (args.rev or args.releases):
        targets = source_targets(args.repo, args.rev, args.releases, lambda: _cache(args), args.policy,
                                 _today(args), args.verify_objects, cache_dir=_cache_dir(args, "check"))
    if args.btf:
        kernel = _compiled_kernel(args)
        targets = [btf_target(kernel, targets[0] if targets else None)]
    verdicts = [check(o, t) for o in objects for t in targets]
    if args.format == "json":
        for v in verdicts:
            sys.stdout.write(json.dumps(verdict_json(v)) + "\n")
    elif args.format == "sarif":
        from .sarif import render_check
        sys.stdout.write(render_check(verdicts))
    else:
        sys.stdout.write(render_text(verdicts))
    return 1 if fails([f.verdict for v in verdicts for f in v.findings], fail_on) else 0


def _inventory_btf(args) -> int:
    from .check import cross_check
    kernel = _compiled_kernel(args)
    cc = cross_check(kernel, _scanner(args), args.rev) if args.repo else None
    out = sys.stdout
    if args.format == "json":
        doc = {"schema": 1, "btf": list(kernel.files), "types": kernel.types, "count": len(kernel.kfuncs),
               "kfuncs": [{"name": k.name, "prototype": k.prototype, "origin": k.origin, "btf_id": k.btf_id,
                           "tag_id": k.tag_id} for k in kernel.kfuncs.values()]}
        if cc is not None:
            doc["cross_check"] = {"rev": cc.rev, "commit": cc.commit, "scanner_misses": list(cc.scanner_misses),
                                  "fmodret_only": cc.fmodret_only, "not_built": list(cc.not_built)}
        json.dump(doc, out, indent=2)
        out.write("\n")
    elif args.format == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["name", "prototype", "origin", "btf_id"])
        for k in kernel.kfuncs.values():
            w.writerow([k.name, k.prototype, k.origin, k.btf_id])
        out.write(buf.getvalue())
    else:
        width = max((len(n) for n in kernel.kfuncs), default=4)
        for k in kernel.kfuncs.values():
            out.write(f"{k.name.ljust(width)}  {k.origin:<14}  {k.prototype}\n")
        out.write(f"{len(kernel.kfuncs)} kfuncs tagged bpf_kfunc in {', '.join(kernel.files)}\n")
    if cc is None:
        return 0
    for name in cc.scanner_misses:
        k = kernel.kfuncs[name]
        print(f"{kernel.files[0]}: error[scanner-miss]: {name} is tagged bpf_kfunc in the BTF "
              f"({k.origin}: FUNC [{k.btf_id}] {k.prototype}, DECL_TAG [{k.tag_id}]) but not in the "
              f"inventory of {cc.rev}", file=sys.stderr)
    for name, where in cc.fmodret_only.items():
        print(f"{where}: note[fmodret-only]: {name} is tagged bpf_kfunc (its set is a BTF_KFUNCS set) but "
              f"registered only with register_btf_fmodret_id_set: fmod_ret can attach to it, programs "
              f"cannot call it", file=sys.stderr)
    for name in cc.not_built:
        print(f"{kernel.files[0]}: note[not-built]: {name} is not built in this kernel "
              f"(a module not given, or a Kconfig option it lacks)", file=sys.stderr)
    print(f"cross-check with {cc.rev}: {len(cc.scanner_misses)} scanner misses, {len(cc.fmodret_only)} "
          f"fmodret-only, {len(cc.not_built)} kfuncs not built in this kernel", file=sys.stderr)
    return 1 if cc.scanner_misses else 0


if __name__ == "__main__":
    raise SystemExit(main())
