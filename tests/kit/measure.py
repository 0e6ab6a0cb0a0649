"""Run one command and measure it alone: exit status, output, wall seconds and its peak resident
memory. Peak memory is hard to get right: RUSAGE_CHILDREN is the high-water mark over every
child the test session has reaped, and a child's own ru_maxrss starts at its parent's size when
it was forked (Linux keeps the high-water mark across exec), which is pytest's, often hundreds
of MB. So a small launcher (python -S) forks the command and reports its wait4 rusage: the
command's peak is then counted from the launcher's 10 MB, not pytest's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kit.series import PROXY_VARS

ROOT = Path(__file__).resolve().parent.parent.parent

LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) % 256 if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
"""


@dataclass(frozen=True)
class Measured:
    returncode: int  # -9 when killed at the timeout
    output: str  # stdout and stderr together
    seconds: float
    max_rss_kb: int


def run_measured(argv: list[str], *, timeout: float = 60, **popen) -> Measured:
    with tempfile.TemporaryDirectory() as tmp, open(os.path.join(tmp, "out"), "w+b") as out:
        rss_file = os.path.join(tmp, "rss")
        start = time.monotonic()
        child = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, rss_file, *argv], stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                 **popen)
        try:
            returncode = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            returncode = -9
        seconds = time.monotonic() - start
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
        rss = int(open(rss_file).read() or 0) if os.path.exists(rss_file) else 0
    return Measured(returncode, text, seconds, rss)


def run_policybot(*args: str, timeout: float = 60, **env: str) -> Measured:
    """``python -m policybot ARGS`` of this checkout, measured alone, with ``env`` added to the
    environment and no proxy (the tests' servers are on 127.0.0.1)."""
    child_env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS} | env
    return run_measured([sys.executable, "-m", "policybot", *args], cwd=ROOT, env=child_env, timeout=timeout)

