"""Scratch directories: named after the process that owns them, so that whatever a killed
process left behind is found and removed by the next command (paths.state_dir's scratch/)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

_OWNED = re.compile(r"^policybot-[a-z]+-(\d+)-")


def make(prefix: str, parent: str | os.PathLike | None = None) -> Path:
    """A new directory ``policybot-PREFIX-PID-random`` in ``parent`` (default: the system's temp)."""
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"policybot-{prefix}-{os.getpid()}-", dir=parent))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_orphans(parent: str | os.PathLike) -> list[Path]:
    """Remove the scratch directories in ``parent`` whose owning process is gone; what went."""
    gone = []
    try:
        entries = list(Path(parent).iterdir())
    except OSError:
        return gone  # no scratch directory yet
    for entry in entries:
        m = _OWNED.match(entry.name)
        if m and entry.is_dir() and not entry.is_symlink() and not alive(int(m.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            gone.append(entry)
    return gone
