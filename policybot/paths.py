"""Where policybot keeps its state when nobody says: light enough for `check` to import."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError


def default_state_dir() -> Path:
    """$POLICYBOT_STATE_DIR, else $XDG_STATE_HOME/policybot, else ~/.local/state/policybot."""
    env = os.environ.get("POLICYBOT_STATE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(xdg) / "policybot"


def state_dir(given: str | os.PathLike | None = None) -> Path:
    """The state directory: the one given (--state-dir, a configuration's [state] dir), else
    the default. app/settings.py decides what is given; this is the rule, light enough for
    a command to ask before its imports."""
    return Path(given) if given else default_state_dir()


def ensure_dir(path: Path, what: str) -> None:
    """Create ``path``; a regular file or an unwritable parent there is the operator's error."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"{path}: the {what} is not a directory") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot create the {what} ({e.strerror})") from None
    if not path.is_dir():
        raise ConfigError(f"{path}: the {what} is not a directory")
