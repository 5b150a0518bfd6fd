"""Progress as plain lines on stderr, for when stderr is not a terminal (make, log files, CI).

At most one line every ``interval`` seconds (BLURTOOLS_PROGRESS_SECONDS, default 30; 0 = every update),
the first after one interval, so quick runs print nothing::

    deblur: 4/10 images (40%), 0.129 images/s, ETA 0:00:47
    blur-synth: 120 samples, 3.2 samples/s            (no total known)

The rate and ETA count what this invocation did (a resumed run starts from where it resumed).
"""

from __future__ import annotations

import datetime
import math
import os
import sys
import time
from typing import Any, Callable, Optional, TextIO

DEFAULT_SECONDS = 30.0


def interval_seconds() -> float:
    """The interval between lines: BLURTOOLS_PROGRESS_SECONDS (a number >= 0), else DEFAULT_SECONDS."""
    try:
        return max(0.0, float(os.environ.get("BLURTOOLS_PROGRESS_SECONDS", DEFAULT_SECONDS)))
    except ValueError:
        return DEFAULT_SECONDS


def _number(rate: float) -> str:
    """A rate in plain digits, three significant ones below 100 (no exponent)."""
    if rate >= 100:
        return f"{rate:.0f}"
    return f"{rate:.{max(0, 2 - math.floor(math.log10(rate)))}f}" if rate > 0 else "0"


class PlainProgress:
    """The ``advance`` / ``update`` progress object of :func:`blurtools.cli.common.progress` as plain lines.

    Args:
        description: the line's prefix (the command).
        total: how many ``unit`` there are, None when unknown.
        unit: what is counted ("images", "steps", ...).
        interval: seconds between lines (None = :func:`interval_seconds`).
        clock: seconds, monotonic (default :func:`time.monotonic`).
        stream: where lines go (default ``sys.stderr``).
    """

    def __init__(self, description: str, total: Optional[int], unit: str = "items", interval: Optional[float] = None,
                 clock: Callable[[], float] = time.monotonic, stream: Optional[TextIO] = None):
        self.description, self.total, self.unit = description, total, unit
        self.interval = interval_seconds() if interval is None else float(interval)
        self.clock, self.stream = clock, stream
        self.completed = self.start_completed = 0
        self.t0 = self.last = clock()

    def advance(self, n: int = 1) -> None:
        self.completed += n
        self._maybe_print()

    def update(self, description: Optional[str] = None, total: Optional[int] = None, completed: Optional[int] = None,
               unit: Optional[str] = None, **_: Any) -> None:
        """Change what is shown; a new ``unit`` (e.g. the windows of one big image) restarts the count."""
        if unit is not None and unit != self.unit:
            self.unit, self.completed, self.start_completed, self.t0 = unit, 0, 0, self.clock()
        if description is not None:
            self.description = description
        if total is not None:
            self.total = int(total)
        if completed is not None:
            self.completed = int(completed)
        self._maybe_print()

    def restart_from(self, completed: int) -> None:
        """Count rates from ``completed`` (a resumed run's first step), not from 0."""
        self.completed = self.start_completed = int(completed)
        self.t0 = self.last = self.clock()

    def _maybe_print(self) -> None:
        now = self.clock()
        if now - self.last < self.interval:
            return
        self.last = now
        stream = self.stream or sys.stderr
        print(self.line(now), file=stream, flush=True)

    def line(self, now: float) -> str:
        done = self.completed - self.start_completed
        rate = done / max(now - self.t0, 1e-9)
        speed = f"{_number(rate)} {self.unit}/s"
        if not self.total:
            return f"{self.description}: {self.completed} {self.unit}, {speed}"
        left = max(self.total - self.completed, 0)
        eta = datetime.timedelta(seconds=math.ceil(left / rate)) if rate > 0 else "?"
        percent = 100 * self.completed // self.total
        return f"{self.description}: {self.completed}/{self.total} {self.unit} ({percent}%), {speed}, ETA {eta}"
