"""Scratch directories (policybot/scratch.py): named after their owning process, under the
state directory's scratch/, and removed by the next command once that process is gone (a
SIGKILLed history or review used to leave them in $TMPDIR for ever)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from policybot import scratch
from policybot.cli import main

ROOT = Path(__file__).resolve().parent.parent


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sample") / "linux"
    subprocess.run([sys.executable, str(ROOT / "samples" / "make_sample.py"), str(path)], check=True,
                   capture_output=True)
    return path


def test_orphans_of_dead_processes_go_and_the_living_ones_stay(tmp_path):
    dead = tmp_path / f"policybot-apply-{dead_pid()}-x1"
    mine = scratch.make("grep", tmp_path)
    other = tmp_path / "policybot-notes"  # not a scratch directory's name
    for d in (dead, other):
        d.mkdir()
        (d / "f").write_text("x")
    assert mine.name.startswith(f"policybot-grep-{os.getpid()}-")
    assert scratch.remove_orphans(tmp_path) == [dead]
    assert not dead.exists() and mine.exists() and other.exists()
    assert scratch.remove_orphans(tmp_path / "none") == []


def test_a_command_removes_what_a_killed_one_left_under_the_state(tmp_path, sample, capsys):
    state = tmp_path / "state"
    dead = state / "scratch" / f"policybot-grep-{dead_pid()}-abc"
    dead.mkdir(parents=True)
    (dead / "objects").write_text("left by a SIGKILL")
    live = scratch.make("apply", state / "scratch")
    assert main(["inventory", "--repo", str(sample), "--rev", "v6.2", "--state-dir", str(state)]) == 0
    assert not dead.exists() and live.exists()


@pytest.fixture(scope="module")
def many_new_blobs(tmp_path_factory) -> Path:
    """v6.1, and v6.2 adding 300 .c files: enough new blobs for a blob grep (kernel/scanner.py's
    BLOB_GREP_MIN), whose scratch object directory is what a kill leaves."""
    from policybot.gitbuild import HistoryBuilder
    from kit.trees import BTF_H, FOO, kernel
    path = tmp_path_factory.mktemp("many") / "linux"
    b = HistoryBuilder(path)
    b.commit({"include/linux/btf.h": BTF_H, "kernel/bpf/helpers.c": kernel({"bpf_foo": FOO})}, "v6.1",
             "2022-12-11T12:00:00")
    b.tag("v6.1")
    b.commit({f"drivers/many/f{i}.c": f"int f{i}(void) {{ return {i}; }}\n" for i in range(300)}, "more",
             "2023-02-19T12:00:00")
    b.tag("v6.2")
    return path


@pytest.mark.parametrize("command", [["inventory", "--rev", "v6.2"], ["history"]], ids=["inventory", "history"])
def test_a_killed_command_leaves_its_scratch_where_the_next_command_removes_it(tmp_path, many_new_blobs,
                                                                                 capsys, command):
    """SIGKILL an inventory or a history while its blob grep's scratch exists: the scratch is under
    the state directory, named after the killed process, and the next command removes it (issue
    22: a killed history left 2.3 MB in $TMPDIR in 9 kills of 10)."""
    sample = many_new_blobs
    state = tmp_path / "state"
    assert main(["inventory", "--repo", str(sample), "--rev", "v6.1", "--state-dir", str(state)]) == 0
    env = {**os.environ, "POLICYBOT_STATE_DIR": str(state), "PYTHONPATH": str(ROOT)}
    # the child stops for good once its first scratch directory exists: a kill at that point
    stopper = ("import os, signal, policybot.scratch as s\n"
               "make = s.make\n"
               "def stop(*a, **k):\n"
               "    d = make(*a, **k)\n"
               "    os.kill(os.getpid(), signal.SIGSTOP)\n"
               "    return d\n"
               "s.make = stop\n"
               "from policybot.cli import run\n"
               "import sys; sys.argv = ['policybot', sys.argv[2], '--repo', sys.argv[1], *sys.argv[3:]]; run()\n")
    child = subprocess.Popen([sys.executable, "-c", stopper, str(sample), *command], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not list((state / "scratch").glob(f"policybot-*-{child.pid}-*")):
        time.sleep(0.05)
    left = list((state / "scratch").glob(f"policybot-*-{child.pid}-*"))
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert left, f"{command[0]} made no scratch directory under the state"
    assert main(["inventory", "--repo", str(sample), "--rev", "v6.2", "--state-dir", str(state)]) == 0
    assert not any(d.exists() for d in left)
