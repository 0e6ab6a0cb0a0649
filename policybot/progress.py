"""Progress for long work: on a terminal only, on stderr, at most ten updates a second."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, enabled: bool | None = None, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._label, self._total, self._unit, self._last = "", 0, "", 0.0

    def start(self, label: str, total: int, unit: str = "") -> None:
        self._label, self._total, self._unit, self._last = label, total, unit, 0.0

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and done < self._total:
            return
        self._last = now
        pct = 100 * done // self._total if self._total else 100
        self.stream.write(f"\r{self._label}: {done}/{self._total} {self._unit} ({pct}%)\x1b[K")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self._last:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        self._last = 0.0
