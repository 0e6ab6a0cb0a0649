"""Snapshot files: a whole output kept in tests/snapshots/ and compared byte for byte.

POLICYBOT_UPDATE_SNAPSHOTS=1 writes them instead; review `git diff tests/snapshots/` after.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
UPDATE = os.environ.get("POLICYBOT_UPDATE_SNAPSHOTS", "") not in ("", "0")


def check(directory: Path, name: str, text: str) -> None:
    """``text`` against ``directory/name.txt`` (written instead when updating); a difference
    fails with a unified diff."""
    path = directory / f"{name}.txt"
    if UPDATE:
        directory.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        return
    assert path.exists(), f"no snapshot {path.name}: run with POLICYBOT_UPDATE_SNAPSHOTS=1 and review it"
    want = path.read_bytes().decode("utf-8")
    if text != want:
        diff = "".join(difflib.unified_diff(want.splitlines(keepends=True), text.splitlines(keepends=True),
                                            str(path.relative_to(ROOT)), "output now"))
        pytest.fail(f"{path.name} differs (POLICYBOT_UPDATE_SNAPSHOTS=1 regenerates it; review the diff):\n{diff}",
                    pytrace=False)


def all_checked(directory: Path, names: tuple[str, ...]) -> None:
    """Every snapshot of ``directory`` is one a test checks: one whose test was removed would rot unseen."""
    found = {p.stem for p in directory.glob("*.txt")}
    assert found == set(names), found ^ set(names)
