"""One call in a forked child: its value comes back; any failure is the parent's to redo."""

import os
import time

import pytest

from policybot.forked import ChildFailed, Forked


def test_the_child_returns_its_value_and_sees_the_parents_memory():
    table = {"bpf_foo": [1, 2, 3]}
    child = Forked(lambda: (os.getpid(), table["bpf_foo"] + [4]))
    pid, value = child.result()
    assert pid != os.getpid() and value == [1, 2, 3, 4]


def test_what_the_child_raises_is_a_child_failure_with_its_words():
    def work():
        raise MemoryError("out of memory in the child")

    with pytest.raises(ChildFailed, match="MemoryError: out of memory in the child"):
        Forked(work).result()


def test_a_child_that_dies_or_sends_what_cannot_be_read_is_a_child_failure():
    with pytest.raises(ChildFailed, match="status"):
        Forked(lambda: os._exit(3)).result()
    with pytest.raises(ChildFailed, match="MemoryError|PicklingError|pickle"):
        Forked(lambda: lambda: None).result()  # a value pickle cannot send


def test_in_child_runs_in_the_child_only():
    marks = []
    child = Forked(lambda: list(marks), in_child=lambda: marks.append("child"))
    assert child.result() == ["child"] and marks == []


def test_closing_stops_a_child_still_running_and_reaps_it():
    child = Forked(lambda: time.sleep(60))
    pid, start = child.pid, time.monotonic()
    child.close()
    assert time.monotonic() - start < 5
    with pytest.raises(ChildProcessError):  # reaped: no zombie left behind
        os.waitpid(pid, os.WNOHANG)


def test_nothing_the_child_raises_runs_on_as_a_copy_of_the_parent():
    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("no words for it")

    def work():
        raise Unprintable()

    parent = os.getpid()
    with pytest.raises(ChildFailed, match="^Unprintable$"):
        Forked(work).result()
    assert os.getpid() == parent  # (a child that escaped would be here too, failing this line)


def test_a_fork_that_fails_is_a_child_failure_and_leaks_no_descriptor(monkeypatch):
    def no_fork():
        raise OSError(11, "Resource temporarily unavailable")

    before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "fork", no_fork)
    child = Forked(lambda: 1)
    with pytest.raises(ChildFailed, match="no child process: Resource temporarily unavailable"):
        child.result()
    child.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_both_runs_here_and_there_and_redoes_a_failed_child_here_after_here():
    from policybot.forked import both
    order = []
    assert both(lambda: order.append("here") or os.getpid(), lambda: os.getpid())[0] == os.getpid()

    def there():
        raise MemoryError("the child ran out")

    def here():
        order.append("here")
        return 1

    assert both(here, there, redo=lambda: order.append("redo") or 2) == (1, 2)
    assert order == ["here", "here", "redo"]
    pid_here, pid_there = both(os.getpid, os.getpid)
    assert pid_here == os.getpid() != pid_there
