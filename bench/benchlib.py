"""What every bench script shares: the child's environment, one timed process, medians.

Each measurement is a separate process, as a user runs policybot. The
children run with bytecode caching on (PYTHONDONTWRITEBYTECODE removed from
their environment) and the .pyc files warmed once (``warm_bytecode``): an
installed policybot has them, and compiling every module from source costs
about 2 s a process on the project's machine.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLICYBOT = [sys.executable, "-m", "policybot"]
CODE = [ROOT]  # the checkout whose policybot the children run (bench/run.py --code: an older one)


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    cpu: float  # user + system seconds of the process and every child it waited for
    rss_mb: float  # peak resident set of the process (or its largest waited child)


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # what a user's installed policybot does
    for var in ("POLICYBOT_CONFIG", "POLICYBOT_DB", "POLICYBOT_POLICY", "POLICYBOT_STATE_DIR"):
        env.pop(var, None)
    if CODE[0] != ROOT:
        env["PYTHONPATH"] = str(CODE[0])
    env.update(extra)
    return env


def warm_bytecode() -> None:
    """Write the .pyc files of policybot and of everything it imports, once."""
    import site
    dirs = [str(CODE[0] / "policybot")] + [d for d in site.getsitepackages() if os.path.isdir(d)]
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j0", *dirs], env=child_env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(cmd: list[str], env: dict | None = None, ok=(0,), cwd=None, capture: bool = False):
    """One process: its Sample (and its stdout if ``capture``)."""
    import tempfile
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env if env is not None else child_env(), cwd=cwd or CODE[0],
                                stdout=out if capture else subprocess.DEVNULL, stderr=err)
        _, status, ru = os.wait4(proc.pid, 0)  # this child's usage, with the children it waited for
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in ok:
            err.seek(0)
            sys.stderr.write(err.read().decode("utf-8", "replace")[-2000:])
            raise SystemExit(f"bench: {' '.join(map(str, cmd))} exited {proc.returncode}")
        sample = Sample(wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024)
        if not capture:
            return sample
        out.seek(0)
        return sample, out.read().decode("utf-8", "replace")


def median(samples: list[Sample], what: str = "wall") -> float:
    return statistics.median(getattr(s, what) for s in samples)


def kernel_repo(set_name: str = "tests") -> str:
    """The repository of scripts/kernel-trees: "tests" (v6.1, v6.12, v7.2) or "history" (and v7.3)."""
    cache = os.environ.get("POLICYBOT_KERNEL_CACHE") or str(Path.home() / ".cache" / "policybot-kernels")
    out = subprocess.run([str(ROOT / "scripts" / "kernel-trees"), cache, set_name],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def grep_cmd(repo: str, rev: str) -> list[str]:
    """The reference of a cold inventory: git's threaded C reading every .c blob of the tree."""
    return ["git", "--git-dir", repo, "grep", "-l", "-e", "BTF_ID_FLAGS", "-e", "__bpf_kfunc", rev, "--", "*.c"]
