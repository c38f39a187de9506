"""Progress bars: tqdm on stderr, quiet when not wanted.

- :func:`progress` is a plain tqdm bar (``with progress(total, "label") as bar: bar.update()``);
- :class:`WeightedProgress` fills and estimates the time left by estimated cost (seconds of
  work per item) while it counts items, and says so on the bar, for work whose items differ in
  cost by orders of magnitude (study points, ngspice runs of growing arrays);
- :class:`Progress` keeps the older ``Progress(total, label, enabled)`` interface (a context
  manager with ``update(steps, note)``) on top of tqdm.

tqdm prints "?" for the time left until the first item is done, never a made-up number.
"""
from __future__ import annotations

import sys

#: Bar layout of :class:`WeightedProgress`: the percentage is of estimated work, not of items.
WEIGHTED_FORMAT = "{desc}: {percentage:3.0f}% of estimated work |{bar}| [{elapsed} elapsed, {remaining} left{postfix}]"


def progress(total, desc: str = "", enabled: bool = True, **options):
    """A tqdm bar on stderr (``disable`` when not ``enabled``); ``options`` go to tqdm."""
    from tqdm import tqdm

    stream = options.pop("file", None) or sys.stderr
    tty = getattr(stream, "isatty", lambda: False)()
    options.setdefault("mininterval", 0.5 if tty else 30.0)  # short logs where \r does not redraw
    return tqdm(total=total, desc=desc, disable=not enabled, file=stream, dynamic_ncols=True, **options)


class WeightedProgress:
    """Items of unequal cost: the bar and its time left follow the summed estimated cost
    (``total_cost``, any unit), the text counts items (``items``) and failures."""

    def __init__(self, total_cost: float, items: int, desc: str, enabled: bool = True, noun: str = "items",
                 file=None):
        self.items = int(items)
        self.noun = noun
        self.done = 0
        self.failed = 0
        self.label = desc
        self.total_cost = max(float(total_cost), 1e-12)
        self.bar = progress(self.total_cost, self._desc(), enabled and self.items > 0, bar_format=WEIGHTED_FORMAT,
                            file=file)

    def _desc(self) -> str:
        return (f"{self.label} {self.done}/{self.items} {self.noun}"
                + (f" ({self.failed} failed)" if self.failed else ""))

    def _postfix(self, note: str = "") -> None:
        self.bar.set_description_str(self._desc(), refresh=False)
        self.bar.set_postfix_str(note, refresh=False)

    def update(self, cost: float, failed: bool = False, note: str = "") -> None:
        self.done += 1
        self.failed += bool(failed)
        self._postfix(note)
        self.bar.update(min(float(cost), self.total_cost - self.bar.n))

    def close(self) -> None:
        if self.done >= self.items and self.bar.n < self.total_cost:
            self.bar.update(self.total_cost - self.bar.n)
        self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Progress:
    """``with Progress(total, "label", enabled=True) as bar: ... bar.update(steps, note)``:
    the older interface, drawn by tqdm on stderr (or ``stream``)."""

    def __init__(self, total: int, label: str = "", enabled: bool = True, stream=None):
        self.total = max(int(total), 1)
        self.done = 0
        self.bar = progress(self.total, label, enabled, file=stream)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.bar.close()
        return False

    def update(self, steps: int = 1, note: str = "") -> None:
        steps = min(steps, self.total - self.done)
        self.done += steps
        if note:
            self.bar.set_postfix_str(note, refresh=False)
        self.bar.update(steps)

    def close(self) -> None:
        self.bar.close()
