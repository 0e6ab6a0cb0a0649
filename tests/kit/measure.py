"""Run one command and measure it alone: exit status, output, wall seconds and the peak
resident memory of that child (os.wait4), not RUSAGE_CHILDREN's high-water mark over every
child the test session has reaped, which a git or a compile earlier in the run can own."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Measured:
    returncode: int
    output: str
    seconds: float
    max_rss_kb: int


def run_measured(argv: list[str], *, timeout: float = 60, **popen) -> Measured:
    """stdout and stderr together; the child is killed at the timeout (returncode -9)."""
    with tempfile.TemporaryFile() as out:
        start = time.monotonic()
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, **popen)
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - start > timeout:
                os.kill(child.pid, signal.SIGKILL)
                _, status, usage = os.wait4(child.pid, 0)
                break
            time.sleep(0.01)
        seconds = time.monotonic() - start
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here; Popen must not wait again
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    return Measured(child.returncode, text, seconds, usage.ru_maxrss)
