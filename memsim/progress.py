"""A minimal progress bar with an ETA, on stderr (no dependency; silent when not wanted)."""
from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress(total, "calibrate") as bar: ... bar.update()``.

    Draws ``label [#####.....] k/total  elapsed  ETA`` on stderr, redrawn in place on a
    terminal and every 10 % otherwise (so CI logs stay short).  ``enabled=False`` silences it.
    """

    def __init__(self, total: int, label: str = "", enabled: bool = True, stream=None):
        self.total = max(int(total), 1)
        self.label = label
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.done = 0
        self.start = time.perf_counter()
        self._last_decile = -1
        self._drawn = -1

    def __enter__(self):
        self._draw()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._draw(final=True)
        return False

    def update(self, steps: int = 1, note: str = "") -> None:
        self.done = min(self.done + steps, self.total)
        self._draw(note=note)

    def _draw(self, note: str = "", final: bool = False) -> None:
        if not self.enabled:
            return
        tty = getattr(self.stream, "isatty", lambda: False)()
        decile = (10 * self.done) // self.total
        if not tty and decile == self._last_decile and (not final or self._drawn == self.done):
            return
        self._last_decile = decile
        self._drawn = self.done
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        filled = int(30 * self.done / self.total)
        text = (f"{self.label} [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} "
                f"{elapsed:6.1f}s  ETA {eta:6.1f}s {note}")
        end = "\n" if (final or not tty) else ""
        self.stream.write(("\r" if tty else "") + text[:120] + end)
        self.stream.flush()
