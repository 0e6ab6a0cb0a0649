"""One call in a forked child process, its result sent back pickled: the second core for
work that holds the GIL (linking and judging a series' later part while the parent does
the first).

Only from a process with one thread (a fork copies no other thread, and any lock one held
stays locked in the child): ``available()`` says whether forking is safe here. The child
always leaves through ``os._exit``: no atexit handler, no flush of the parent's buffers, no
cleanup that belongs to the parent, whatever it raised. A child that fails, for any reason
(and a fork that fails), is the caller's to redo in-process: ``result()`` raises
``ChildFailed``, and the caller's own run of the same work then fails (or not) exactly as it
would have without the child. A child dies with its parent (Linux's PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class ChildFailed(Exception):
    """The child raised, died or sent nothing usable, or could not be started: redo its work here."""


def available() -> bool:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return hasattr(os, "fork") and threading.active_count() == 1 and cores > 1


class Forked(Generic[T]):
    def __init__(self, work: Callable[[], T], in_child: Callable[[], None] = lambda: None):
        """Start ``work()`` in a child; ``in_child()`` runs there first (e.g. to drop database
        connections that belong to the parent)."""
        self.pid, self._read_end, self._failed = 0, None, ""
        try:
            read_end, write_end = os.pipe()
        except OSError as e:
            self._failed = f"no pipe for a child process: {e.strerror}"
            return
        try:
            pid = os.fork()
        except OSError as e:  # EAGAIN, ENOMEM: this process does the work itself
            os.close(read_end)
            os.close(write_end)
            self._failed = f"no child process: {e.strerror}"
            return
        if pid == 0:
            _child(read_end, write_end, work, in_child)  # never returns
        os.close(write_end)
        self.pid, self._read_end = pid, read_end

    def close(self) -> None:
        """Stop the child if it still runs (the parent failed first) and reap it."""
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = 0
        fd, self._read_end = self._read_end, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def result(self) -> T:
        """What ``work()`` returned, or ChildFailed."""
        if self._failed:
            raise ChildFailed(self._failed)
        fd, self._read_end = self._read_end, None  # the file object below owns it now
        with os.fdopen(fd, "rb") as f:
            data = f.read()
        _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        if status != 0 or not data:
            raise ChildFailed(f"the child process ended with status {status} and sent {len(data)} bytes")
        try:
            ok, value = pickle.loads(data)
        except Exception as e:  # noqa: BLE001
            raise ChildFailed(f"the child's result cannot be read: {e}") from None
        if not ok:
            raise ChildFailed(value)
        return value


A = TypeVar("A")


def both(here: Callable[[], A], there: Callable[[], T], redo: Callable[[], T] | None = None,
         in_child: Callable[[], None] = lambda: None) -> tuple[A, T]:
    """``here()`` in this process while ``there()`` runs in a forked child: both results.
    A child that fails has its work redone here, after ``here()``: by ``redo()`` if given
    (e.g. when the child would have started from state only it built), else ``there()``."""
    child = Forked(there, in_child)
    try:
        mine = here()
        try:
            return mine, child.result()
        except ChildFailed:
            return mine, (redo or there)()
    finally:
        child.close()


def _child(read_end: int, write_end: int, work, in_child) -> None:
    """The child's whole life: nothing it raises may run on as a second copy of the parent."""
    status = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the parent stops it and redoes nothing
        _die_with_parent()
        os.close(read_end)
        try:
            in_child()
            payload = pickle.dumps((True, work()), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as e:  # noqa: BLE001 - reported to the parent, which redoes the work
            payload = pickle.dumps((False, _describe(e)))
        with os.fdopen(write_end, "wb") as out:
            out.write(payload)
        status = 0
    finally:
        os._exit(status)


def _describe(e: BaseException) -> str:
    try:
        return f"{type(e).__name__}: {e}"
    except BaseException:  # noqa: BLE001 - an exception whose text cannot be made
        return type(e).__name__


def _die_with_parent() -> None:
    """Linux: the child gets SIGKILL when the parent dies (kill PID, KillMode=process)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
