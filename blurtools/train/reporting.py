"""What a run reports: progress records to the callback and RUN/metrics.jsonl, averaged training losses,
and validation with best.pt. A part of :class:`blurtools.train.engine.Trainer`."""

from __future__ import annotations

import json
import math
import time
from typing import Any, Dict

import torch

from blurtools.errors import BlurtoolsError
from blurtools.train import checkpoint as ckpt_io
from blurtools.train import distributed as D
from blurtools.train.validation import evaluate


class Reporting:
    """The reporting half of the trainer (rank 0 writes and calls back)."""

    def emit(self, record: Dict[str, Any], to_file: bool = False) -> None:
        if not self.info.is_main:
            return
        if to_file:
            with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")
        if self.callback is not None:
            self.callback(dict(record))

    def _log_train(self) -> None:
        if not self.sums:
            return
        keys = sorted(self.sums)
        means = torch.stack([self.sums[k] / self.counts[k] for k in keys]).to(torch.float64)
        means = D.all_reduce_sum(self.info, means) / self.info.world
        values = dict(zip(keys, means.tolist()))
        now = time.perf_counter()
        steps = self.step - self.window_step
        rate = steps * self.cfg.batch * self.info.world / max(now - self.window_time, 1e-9)
        self.window_time, self.window_step = now, self.step
        self.sums, self.counts = {}, {}
        if not math.isfinite(values.get("loss", 0.0)):
            raise BlurtoolsError(f"training diverged: loss {values.get('loss')} at step {self.step} (stage "
                                 f"{self.stage.name}); lower --lr, set --grad-clip, or use --amp bf16/none")
        n = len(self.train_ds)
        record = {"event": "train", "step": self.step, "total": self.total, "stage": self.stage.name, "lr": self.lr,
                  "epoch": self.step * self.cfg.batch * self.info.world / n, "samples_per_s": rate,
                  "elapsed_s": now - self.t0, **values}
        self.emit(record, to_file=True)

    def _validate(self) -> None:
        scores = evaluate(self.model, self.val_ds, self.info, self.device, self.cfg.val_crop, self.cfg.val_limit,
                          self._autocast)
        if scores is None:
            return
        best = self.best_psnr is None or scores["psnr"] > self.best_psnr
        self.last_val = {"val_psnr": scores["psnr"], "val_ssim": scores["ssim"], "val_step": self.step}
        if best:
            self.best_psnr = scores["psnr"]
            if self.info.is_main:
                rec = ckpt_io.weights_record(self.model, self.cfg.model, self.cfg.to_dict(), self.step, self.last_val)
                ckpt_io.save_checkpoint(self.out / "best.pt", rec)
        self.emit({"event": "val", "step": self.step, **scores, "best": best}, to_file=True)
