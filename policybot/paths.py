"""Where policybot keeps its state when nobody says: light enough for `check` to import."""

from __future__ import annotations

import os
from pathlib import Path


def default_state_dir() -> Path:
    """$POLICYBOT_STATE_DIR, else $XDG_STATE_HOME/policybot, else ~/.local/state/policybot."""
    env = os.environ.get("POLICYBOT_STATE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(xdg) / "policybot"
