"""One error hierarchy. The CLI turns these into one line and exit status 2.

"Found problems" is not an error: findings are data and choose exit 1.
"""


class PolicybotError(Exception):
    """Could not run: bad input, configuration or environment."""

    exit_status = 2


class InputError(PolicybotError):
    """A repository, revision, file or message policybot was given is unusable."""


class ConfigError(PolicybotError):
    """The operator's configuration is invalid. The message names file and line."""
