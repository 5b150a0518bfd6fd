"""When a training loop saves and stops: a graceful stop on SIGINT/SIGTERM and a wall-clock save timer.

SIGINT/SIGTERM set a flag that the loop checks between steps.

The first signal asks the loop to finish its step, save and stop (:class:`~blurtools.errors.Interrupted`,
exit 130); a second SIGINT interrupts at once (KeyboardInterrupt). Outside the main thread signals cannot
be caught, so the context is then a no-op flag that is never set.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional

import torch

from blurtools.errors import BlurtoolsError

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Set by a signal handler; ``signal_name`` says which signal asked (None while nobody asked)."""

    def __init__(self) -> None:
        self.signal_name: Optional[str] = None

    def __bool__(self) -> bool:
        return self.signal_name is not None

    def set(self, signum: int) -> None:
        self.signal_name = signal.Signals(signum).name


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Catch SIGINT/SIGTERM for the duration of the block; the previous handlers come back after it."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum: int, frame: Any) -> None:
        if request and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        request.set(signum)
        log.warning("%s: finishing this step, saving last.pt and stopping (Ctrl-C again to stop at once)",
                    request.signal_name)

    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def ignore_interrupts_in_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: loader processes leave Ctrl-C to the training process, which stops
    them itself after saving (a terminal sends SIGINT to the whole process group)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class SaveClock:
    """Says when ``minutes`` of wall-clock time have passed since the last save (never when ``minutes`` is 0).

    ``clock`` returns seconds (default :func:`time.monotonic`).
    """

    def __init__(self, minutes: float, clock: Callable[[], float] = time.monotonic):
        self.seconds, self.clock = float(minutes) * 60.0, clock
        self.last = clock()

    def due(self) -> bool:
        return self.seconds > 0 and self.clock() - self.last >= self.seconds

    def saved(self) -> None:
        self.last = self.clock()


def agree(info: Any, device: torch.device, *flags: bool) -> List[bool]:
    """Each flag set on any process of the job (the processes must save and stop together)."""
    if not info.enabled:
        return list(flags)
    from blurtools.train import distributed as D

    votes = D.all_reduce_sum(info, torch.tensor([float(f) for f in flags], device=device))
    return [bool(v > 0) for v in votes.tolist()]


def next_batch(batches: Any) -> Any:
    """The loader's next batch; a data error raised in a loader process comes back as its own one line
    (the loader wraps it in the worker's traceback)."""
    try:
        return next(batches)
    except BlurtoolsError as exc:
        text = str(exc)
        if "Original Traceback" not in text:
            raise
        last = text.rstrip().splitlines()[-1]
        raise type(exc)(last.split(f"{type(exc).__name__}: ", 1)[-1]) from None


def rotate_log(metrics: Path) -> None:
    """A fresh run in a folder whose earlier run never saved moves the old log to ``metrics.jsonl.1``."""
    if metrics.is_file():
        metrics.replace(metrics.with_name(metrics.name + ".1"))
        log.info("%s: the log of an earlier, unsaved run moved to %s.1", metrics, metrics.name)
