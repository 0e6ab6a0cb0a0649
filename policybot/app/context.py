"""The run context: what a command or a scheduled job works with, resolved once from the
settings (app/settings.py's precedence) and built on first use, so that a command pays only
for what it touches (``check`` against a warm cache never opens the state database).

The CLI builds one per invocation from its options; the scheduler's jobs, one per job.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import settings

if TYPE_CHECKING:
    from ..cache import Cache
    from ..kernel.scanner import Scanner
    from ..mail.message import MailConfig
    from ..mail.outbox import Outbox
    from ..policy.audit import Auditor
    from ..policy.config import Policy
    from ..progress import Progress
    from ..state import State
    from .config import Config


@dataclass
class Context:
    overrides: settings.Overrides = settings.Overrides()
    repo_path: str | None = None  # the kernel repository the command reads
    policy_path: str | None = None  # --policy (None: $POLICYBOT_POLICY, else the defaults)
    today: dt.date | None = None  # judge as of this day (None: the clock's)
    verify_objects: bool = False
    progress: Progress | None = None
    from_addr: str | None = None  # --from: the bot's From address over the configuration's
    takes_config: bool = False  # the command reads a configuration (--config): its [state] counts

    @functools.cached_property
    def config(self) -> Config:
        return settings.load(self.overrides)

    @property
    def config_path(self) -> str | None:
        from .config import config_path
        return config_path(self.overrides.config)

    @functools.cached_property
    def state_dir(self) -> Path:
        return settings.state_dir(self.overrides, self._config_if_named())

    def _config_if_named(self) -> Config | None:
        """The configuration of a command that takes one (its [state] counts); the others do
        not load the config modules."""
        return self.config if self.takes_config else None

    @functools.cached_property
    def cache(self) -> Cache:
        if "state" in self.__dict__:
            return self.state.cache
        from ..cache import Cache
        return Cache(self.state_dir)

    @functools.cached_property
    def state(self) -> State:
        from ..state import State
        state = State(url=settings.db_url(self.overrides, self._config_if_named()), state_dir=self.state_dir)
        if "cache" in self.__dict__:
            state.__dict__["cache"] = self.cache  # one cache connection per command
        return state

    @functools.cached_property
    def scanner(self) -> Scanner:
        """The scanner of the repository (every use case that reads a tree starts here)."""
        from ..kernel.gitrepo import open_repo  # pygit2: not for a compiled kernel's use case
        from ..kernel.scanner import Scanner
        from ..scratch import remove_orphans
        remove_orphans(self.state_dir / "scratch")  # what a killed command left
        return Scanner(open_repo(self.repo_path), self.cache, self.progress, verify_objects=self.verify_objects)

    @functools.cached_property
    def policy(self) -> Policy:
        return settings.policy(self.policy_path)

    @functools.cached_property
    def auditor(self) -> Auditor:
        """The repository's auditor under the policy, as of ``today``: the one place a command's is built."""
        from ..policy.audit import Auditor
        from .census import known_users
        return Auditor(self.scanner.repo, self.scanner, self.policy, self.today, known_users(self.state))

    @property
    def mail(self) -> MailConfig:
        """The configuration's mail settings, with --from on top."""
        config = self.config.mail
        if self.from_addr:
            config = dataclasses.replace(config, from_addr=self.from_addr, msgid_domain="")
        return config

    @functools.cached_property
    def outbox(self) -> Outbox:
        from ..mail.outbox import Outbox
        return Outbox(self.state, self.state.state_dir / "outbox")

    def close(self) -> None:
        """The end of a command: an SQLite state it opened is checkpointed, so that the database
        file alone holds what the command wrote."""
        if "state" in self.__dict__:
            self.state.checkpoint()

    def cache_path(self, name: str) -> str:
        """A file or directory of the state directory, named before the config modules load
        (``check`` and the cold prefetch stay fast): the rule paths.state_dir applies."""
        from ..paths import state_dir
        return str(state_dir(self.overrides.state_dir) / name)


def enclosing_repo() -> str:
    """The repository a command reads when it is given none: the one the current directory is
    in, as git finds it (kernel/gitrepo.py)."""
    from ..kernel.gitrepo import enclosing_repo as found
    return found()
