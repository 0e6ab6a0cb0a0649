"""One call in a forked child process, its result sent back pickled: the second core for
work that holds the GIL (linking and judging a series' second half while the parent does
the first).

Only from a process with one thread (a fork copies no other thread, and any lock one held
stays locked in the child): ``available()`` says whether forking is safe here. The child
exits through ``os._exit``: no atexit handler, no flush of the parent's buffers, no
cleanup that belongs to the parent. A child that fails, for any reason, is the caller's
to redo in-process: ``result()`` raises ``ChildFailed``, and the caller's own run of the
same work then fails (or not) exactly as it would have without the child.
"""

from __future__ import annotations

import os
import pickle
import threading
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class ChildFailed(Exception):
    """The child raised, died or sent nothing usable: redo its work here."""


def available() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1 and (os.cpu_count() or 1) > 1


class Forked(Generic[T]):
    def __init__(self, work: Callable[[], T], in_child: Callable[[], None] = lambda: None):
        """Start ``work()`` in a child; ``in_child()`` runs there first (e.g. to drop database
        connections that belong to the parent)."""
        read_end, write_end = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child
            os.close(read_end)
            try:
                in_child()
                payload = pickle.dumps((True, work()), protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException as e:  # noqa: BLE001 - reported to the parent, which redoes the work
                payload = pickle.dumps((False, f"{type(e).__name__}: {e}"))
            try:
                with os.fdopen(write_end, "wb") as out:
                    out.write(payload)
            finally:
                os._exit(0)
        os.close(write_end)
        self._read_end = read_end

    def close(self) -> None:
        """Stop the child if it still runs (the parent failed first) and reap it."""
        if self.pid:
            try:
                os.kill(self.pid, 9)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = 0
        if self._read_end is not None:
            try:
                os.close(self._read_end)
            except OSError:
                pass
            self._read_end = None

    def result(self) -> T:
        """What ``work()`` returned, or ChildFailed."""
        with os.fdopen(self._read_end, "rb") as f:
            data = f.read()
        self._read_end = None
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
