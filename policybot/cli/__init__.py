"""policybot's command line: the only package that prints to users and picks exit codes.

One module per command in ``commands/``: it declares its options (``add``) and
runs (``execute``: parse what is left, one call into the application layer,
render through the registry, the exit status). Library errors
(``PolicybotError``) become one line on stderr and exit status 2; findings
choose 0 or 1 (see ``policybot audit --help``). A command's own imports wait
until it runs, so ``policybot --help`` loads none of the stages.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import re
import signal
import sys

from .. import __version__
from ..errors import PolicybotError
from .options import EPILOG, close_contexts, default_repo

# in the order `policybot --help` lists them
COMMANDS = ("inventory", "audit", "review", "maintainers", "run", "schedule", "doctor", "notice", "outbox",
            "state", "history", "report", "check", "compat", "census", "propose", "rules", "explain")


def _module(name: str):
    return importlib.import_module(f"{__name__}.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="policybot",
        description="Keeps the promises made about Linux kernel BPF kfuncs: what a tree "
                    "provides, what was declared stable, and what a change would break.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"policybot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        _module(name).add(sub)
    return parser


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
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        try:
            default_repo(args)
            return _module(args.command).execute(args) or 0
        finally:
            close_contexts()
    except PolicybotError as e:
        print(f"policybot: {terminal_safe(' '.join(str(e).splitlines()))}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        print("policybot: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # the last resort: one line naming what was being processed, never a traceback
        from ..errors import PROCESSING, describe
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
