"""TensorBoard event files of a training run (``train --tensorboard DIR``), the field's habit.

The trainer's progress records (see :mod:`blurtools.train.engine`) are written as scalars through
``torch.utils.tensorboard``: every numeric value of a "train" record under ``train/NAME`` (loss terms,
lr, samples_per_s, epoch), every numeric value of a "val" record under ``val/NAME`` (psnr, ssim and the
blurry input's), each stage's start as text, all at the record's step. RUN/metrics.jsonl stays the
record of the run; the event files are a view of it for TensorBoard.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from blurtools.errors import UsageError

Callback = Callable[[Dict[str, Any]], None]
INSTALL_HINT = "pip install tensorboard"


def check_available() -> None:
    """UsageError (one line, what to install) when the tensorboard package is missing."""
    try:
        found = importlib.util.find_spec("tensorboard") is not None
    except ImportError:  # a broken or blocked installation counts as missing
        found = False
    if not found:
        raise UsageError(f"--tensorboard needs the tensorboard package, which is not installed: {INSTALL_HINT}")


class EventLog:
    """A callback that writes each progress record to TensorBoard event files in ``folder``.

    The writer is opened at the first record, so only the process that reports (rank 0) creates files.
    """

    def __init__(self, folder: "str | Path"):
        check_available()
        self.folder = Path(folder)
        self.writer: Any = None

    def __call__(self, record: Dict[str, Any]) -> None:
        event = record.get("event")
        if event not in ("train", "val", "stage", "end"):
            return
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.folder.mkdir(parents=True, exist_ok=True)
            self.writer = SummaryWriter(log_dir=str(self.folder))
        step = int(record.get("step", record.get("start", 0)))
        if event == "stage":
            self.writer.add_text("stage", f"{record['stage']} from step {record['start']} (lr {record['lr']:g})", step)
        elif event in ("train", "val"):
            for key, value in record.items():
                if key not in ("step", "total", "best") and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(f"{event}/{key}", float(value), step)
        self.writer.flush()
        if event == "end":
            self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def with_event_log(folder: Optional[str], callback: Optional[Callback]) -> "tuple[Optional[Callback], Optional[EventLog]]":
    """(the callback to give the trainer, the EventLog to close afterwards): ``callback`` as it is without
    a folder; with one, a callback that feeds both."""
    if not folder:
        return callback, None
    log = EventLog(folder)

    def both(record: Dict[str, Any]) -> None:
        log(record)
        if callback is not None:
            callback(record)

    return both, log
