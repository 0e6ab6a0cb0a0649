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


# What is being processed, innermost last: the CLI's last-resort guard names it.
PROCESSING: list[str] = []


class processing:
    """``with processing("tree bpf-next"):`` names the work for an unexpected failure."""

    def __init__(self, what: str):
        self.what = what

    def __enter__(self):
        PROCESSING.append(self.what)
        return self

    def __exit__(self, *exc):
        PROCESSING.pop()
        return False


def describe(e: BaseException) -> str:
    """One line about an exception, for a failure record or the terminal."""
    if isinstance(e, PolicybotError):
        text = str(e)
    elif isinstance(e, OSError) and e.strerror:
        text = f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    elif isinstance(e, RecursionError):
        text = "RecursionError: input nested too deeply"
    else:
        text = f"{type(e).__name__}: {e}"
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:1000]
