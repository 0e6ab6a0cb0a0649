"""One resolver of an invocation's settings, for every entry point (CLI commands, `run`,
`schedule` and the jobs the scheduler starts).

Precedence, highest first:
  state database  --db, the config's [state] url, $POLICYBOT_DB, SQLite in the state directory
  state directory --state-dir, the config's [state] dir, $POLICYBOT_STATE_DIR,
                  $XDG_STATE_HOME/policybot, ~/.local/state/policybot
  config file     --config, $POLICYBOT_CONFIG, none (built-in defaults)
  policy file     --policy, $POLICYBOT_POLICY, none (built-in defaults)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from .. import paths

if TYPE_CHECKING:  # loaded by the entry points that read a config or a policy (not inventory's)
    from ..policy.config import Policy
    from .config import Config


@dataclass(frozen=True)
class Overrides:
    """What the command line said; None: not said (the config and environment decide)."""
    config: str | None = None
    db: str | None = None
    state_dir: str | None = None

    def job_state(self) -> dict:
        """The state overrides a scheduled job needs to resolve the state its scheduler did."""
        return {k: v for k, v in (("db", self.db), ("state_dir", self.state_dir)) if v}


def load(overrides: Overrides) -> Config:
    """The configuration; its [limits] bound every read of outside bytes from here on."""
    from .. import bounded
    from .config import config_path, load_config
    cfg = load_config(config_path(overrides.config))
    bounded.configure(cfg.limits.reading())
    return cfg


def db_url(overrides: Overrides, cfg: Config | None) -> str | None:
    return overrides.db or (cfg.db_url if cfg else None) or os.environ.get("POLICYBOT_DB") or None


def state_dir(overrides: Overrides, cfg: Config | None) -> Path:
    return paths.state_dir(overrides.state_dir or (cfg.state_dir if cfg else None))


def open_cache(overrides: Overrides, cfg: Config | None):
    """The parse cache in the state directory: what reading trees needs, without the database."""
    from ..cache import Cache
    return Cache(state_dir(overrides, cfg))


def open_state(overrides: Overrides, cfg: Config | None):
    from ..state import State  # imported here: `check` resolves its cache without the database modules
    return State(url=db_url(overrides, cfg), state_dir=state_dir(overrides, cfg))


def policy(path: str | None) -> Policy:
    from ..policy.config import load_policy
    return load_policy(path if path is not None else os.environ.get("POLICYBOT_POLICY"))
