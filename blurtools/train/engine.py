"""One training loop for every model: stages from the recipe, checkpoints, resume, AMP, DDP.

The loop walks ``recipe.stages``: each stage trains the named sub-modules (everything else frozen) with its
objective and its own Adam optimiser, learning rate and schedule, for its share of the steps; adversarial
stages update the critic ``critic_steps`` times before every generator update. The data stream, the
schedule and every random state are functions of the step or saved in last.pt, so a run stopped and
resumed follows the uninterrupted run's trajectory (exactly, on the CPU).

Reporting goes through ``callback(record)``, never print: records are dicts with ``event`` in
{"start", "stage", "step", "train", "val", "end"}; "train"/"val" records are also appended to
RUN/metrics.jsonl. Only rank 0 calls the callback and writes files.

The trainer is put together from its jobs: set-up and the loop here, one step in :mod:`.steps`, the
resume state in :mod:`.run_state`, reporting and validation in :mod:`.reporting`.

Example::

    from blurtools.train.config import TrainConfig
    cfg = TrainConfig(model="dm", data="train.h5", val="val.h5", out="runs/dm", steps=2000,
                      model_args={"width": 32})
    result = train(cfg)          # validated, resume policy applied, model and recipe looked up by name
    print(result.best_psnr, result.weights)
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import numpy as np
import torch

from blurtools.data.stream import StepBatches, data_frames, open_training_data, open_validation_data
from blurtools.errors import BlurtoolsError
from blurtools.train import checkpoint as ckpt_io
from blurtools.train import distributed as D
from blurtools.train.config import TrainConfig, settle_run, write_config_json
from blurtools.train.recipe import ObjectiveContext, Recipe
from blurtools.train.recipes import lookup_model
from blurtools.train.reporting import Reporting
from blurtools.train.resolve import build_perceptual, resolve_model_args, resolve_weights, total_steps
from blurtools.train.run_state import RunState
from blurtools.train.schedule import plan_stages
from blurtools.train.steps import ObjectiveRunner, Stepping
from blurtools.train.tensorboard import with_event_log

log = logging.getLogger(__name__)

Callback = Callable[[Dict[str, Any]], None]


@dataclass
class TrainResult:
    """What a run produced. ``finished`` is False when ``stop_at`` ended it early (no weights.pt then)."""

    out: Path
    step: int
    total_steps: int
    finished: bool
    best_psnr: Optional[float]
    last_val: Optional[Dict[str, float]]
    weights: Optional[Path]
    config: Optional[TrainConfig] = None


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    torch.manual_seed(seed)


class _Trainer(Stepping, RunState, Reporting):
    """One run: set-up, the loop over stages and steps, the end (the parts live in steps, run_state, reporting)."""

    def __init__(self, cfg: TrainConfig, arch_cls: type, recipe: Recipe, resume: bool, resume_from: Optional[Path],
                 callback: Optional[Callback], info: D.DistInfo):
        self.cfg, self.arch_cls, self.recipe, self.info = cfg, arch_cls, recipe, info
        self.resume, self.resume_from, self.callback = resume, resume_from, callback
        self.device = info.device
        self.cuda = self.device.type == "cuda"
        self.out = Path(cfg.out)
        # bf16 autocast runs on CPUs too (fast where the CPU has bf16 instructions: AVX512-BF16, AMX);
        # fp16 needs CUDA's loss scaling
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16 if self.cuda else None}.get(cfg.amp)
        self.best_psnr: Optional[float] = None
        self.last_val: Optional[Dict[str, float]] = None
        self.sums: Dict[str, torch.Tensor] = {}
        self.counts: Dict[str, int] = {}

    # -------------------------------------------------------------------------------------- set-up
    def prepare(self) -> None:
        cfg, info, recipe = self.cfg, self.info, self.recipe
        self.weights = resolve_weights(recipe.default_weights, cfg.loss_weights, cfg.model)
        # The VGG file is checked before anything else is loaded, so a missing file stops the run at once.
        self.perceptual = build_perceptual(recipe, self.weights, cfg.pretrained_vgg, self.device, cfg.seed)
        D.barrier(info)  # every process has checked the folder (settle_run) before rank 0 writes into it
        self.train_ds = open_training_data(cfg.data, cfg.patch, cfg.augment, cfg.seed, cfg.preload)
        self.val_ds = open_validation_data(cfg.val) if cfg.val else None
        self.frames = data_frames(self.train_ds, cfg.data, recipe.frames, cfg.model)
        if self.val_ds is not None:
            val_frames = data_frames(self.val_ds, cfg.val, recipe.frames, cfg.model)
            if val_frames != self.frames:
                raise BlurtoolsError(f"{cfg.val}: validation samples hold {val_frames} frames, the training "
                                     f"samples {self.frames}")
        _seed_all(cfg.seed)
        init = self._init_checkpoint()
        given_args = cfg.model_args or (init["model_args"] if init else {})
        args = resolve_model_args(self.arch_cls, given_args, self.frames, cfg.model)
        self.model = self.arch_cls(**args)
        if init is not None:
            try:
                self.model.load_state_dict(init["state_dict"])
            except RuntimeError as exc:
                raise BlurtoolsError(f"{cfg.init}: its weights do not fit {cfg.model} with {args} "
                                     f"({str(exc).splitlines()[0]})") from None
        if self.model.kind == "video" and int(self.model.frames) != self.frames:
            raise BlurtoolsError(f"{cfg.data}: samples hold {self.frames} sharp frames but model {cfg.model} "
                                 f"makes {self.model.frames}; set --model-arg frames={self.frames} or use other data")
        self.critic = recipe.critic(dict(self.model.model_args)) if recipe.critic is not None else None
        if not self.cuda and cfg.amp == "fp16":
            log.info("--amp fp16 is a CUDA feature; training in float32 on the CPU (--amp bf16 runs on CPUs)")
        if self.cuda and cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.model.to(self.device)
        if self.critic is not None:
            self.critic.to(self.device)
        self.total = total_steps(cfg, len(self.train_ds), info.world)
        self.bounds = plan_stages([s.steps_fraction for s in recipe.stages], self.total)
        self.end = min(self.total, cfg.stop_at) if cfg.stop_at else self.total
        self.ctx_gen = torch.Generator(device=self.device)
        self.ctx = ObjectiveContext(weights=dict(self.weights), perceptual=self.perceptual, critic=self.critic,
                                    generator=self.ctx_gen)
        self.critic_opt = None
        # A critic whose only effect on the generator is weighted 0 need not train (saves most of a GAN step).
        self._critic_idle = recipe.critic_weight is not None and self.weights.get(recipe.critic_weight, 1.0) == 0
        if self.critic is not None:
            self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.lr, betas=tuple(cfg.adam_betas))
            self.critic_scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp == "fp16" and self.cuda)
            self.critic_runner = self._wrap(ObjectiveRunner(self.critic, recipe.critic_objective, self.ctx, self.model))
        # Per-process streams after the (identical) initialisation, so dropout and noise differ by rank.
        _seed_all(cfg.seed * 1009 + 7 + info.rank)
        self.ctx_gen.manual_seed(cfg.seed * 1009 + 11 + info.rank)
        self.step, self.state = 0, None
        if self.resume_from is not None:
            self._load_state(ckpt_io.read_checkpoint(self.resume_from))
        elif self.resume:
            log.info("%s: no last.pt yet; starting a fresh run", self.out)

    # -------------------------------------------------------------------------------------- the run
    def run(self) -> TrainResult:
        cfg, info = self.cfg, self.info
        self.prepare()
        resolved = {"device": str(self.device), "world_size": info.world, "total_steps": self.total,
                    "global_batch": cfg.batch * info.world, "model_args": dict(self.model.model_args),
                    "loss_weights": self.weights, "frames": self.frames, "train_samples": len(self.train_ds),
                    "stages": [{"name": s.name, "start": a, "end": b} for s, (a, b) in zip(self.recipe.stages, self.bounds)]}
        if info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_config_json(self.out / "config.json", cfg, resolved)
        saved_rng = self.state["rng"] if self.state is not None else None
        stream = StepBatches(self.train_ds, cfg.batch, cfg.seed, info.rank, info.world)
        # A private generator keeps the loader from drawing on the global RNG (resume must not shift it).
        loader = torch.utils.data.DataLoader(stream, batch_size=None, sampler=range(self.step, self.end),
                                             num_workers=cfg.workers, pin_memory=self.cuda,
                                             generator=torch.Generator().manual_seed(cfg.seed))
        self.emit({"event": "start", "step": self.step, "total": self.total, "end": self.end,
                   "resumed": self.resume_from is not None, **resolved})
        if saved_rng is not None:
            if len(saved_rng) == info.world:
                ckpt_io.restore_rng(saved_rng[info.rank], {"ctx": self.ctx_gen})
        self.t0 = self.window_time = time.perf_counter()
        self.window_step = self.step
        self.model.train()
        self.stage_index, self.stage, self.lr = -1, self.recipe.stages[0], cfg.lr
        batches = iter(loader)
        for index, (start, end) in enumerate(self.bounds):
            if end <= self.step or self.step >= self.end:
                continue
            if end == start:
                log.warning("stage %s gets no steps out of %d; skipped", self.recipe.stages[index].name, self.total)
                continue
            self._enter_stage(index)
            while self.step < min(end, self.end):
                self._train_step(self._to_device(next(batches)))
                self.step += 1
                self._after_step(stage_end=end)
        if self.stage_index < 0:  # nothing left to train (a finished run resumed): still report a stage
            self._enter_stage(len(self.bounds) - 1)
        return self._finish()

    def _after_step(self, stage_end: int) -> None:
        cfg, step = self.cfg, self.step
        self.emit({"event": "step", "step": step, "total": self.total})
        if step % cfg.log_every == 0 or step == stage_end:
            self._log_train()
        if self.val_ds is not None and (step % cfg.val_every == 0 or step == self.total):
            self._validate()
        if step % cfg.save_every == 0 or step == stage_end or step == self.end:
            self._save_state()

    def _finish(self) -> TrainResult:
        info, finished = self.info, self.step >= self.total
        weights = None
        if finished:
            if self.val_ds is not None and self.last_val is None:
                self._validate()
            D.sync_buffers(info, self.model, self.critic)
            digests = D.gather_objects(info, ckpt_io.state_digest(self.model))
            if len(set(digests)) != 1:
                raise BlurtoolsError(f"the {info.world} processes ended with different weights {digests}")
            if info.is_main:
                weights = self.out / "weights.pt"
                rec = ckpt_io.weights_record(self.model, self.cfg.model, self.cfg.to_dict(), self.step, self.last_val)
                ckpt_io.save_checkpoint(weights, rec)
            self.emit({"event": "end", "step": self.step, "best_psnr": self.best_psnr, "rank_digests": digests,
                       **(self.last_val or {})}, to_file=True)
        D.barrier(info)
        return TrainResult(out=self.out, step=self.step, total_steps=self.total, finished=finished,
                           best_psnr=self.best_psnr, last_val=self.last_val, weights=weights, config=self.cfg)


def train(cfg: TrainConfig, arch_cls: Optional[type] = None, recipe: Optional[Recipe] = None, *,
          resume: bool = False, callback: Optional[Callback] = None) -> TrainResult:
    """Train model ``cfg.model`` as ``cfg`` says; under torchrun, as one process of the job.

    Args:
        cfg: a :class:`TrainConfig`; validated here (``settle_run``), with the resume policy applied.
        arch_cls, recipe: the model class (its contract: ``kind``, ``model_args``, ``frames``) and its
            :class:`Recipe`; None = the registered ones of ``cfg.model``.
        resume: continue from RUN/last.pt (a fresh start when there is none yet), keeping the run's stored
            configuration except the keys a resumed run may change. Without it, a folder that already holds
            a run is refused.
        callback: receives progress records on rank 0 (see the module docstring); with
            ``cfg.tensorboard`` they also go to TensorBoard event files (:mod:`blurtools.train.tensorboard`).

    Returns:
        :class:`TrainResult` (its ``config`` is the configuration the run used).

    Raises:
        BlurtoolsError / UsageError: bad data, folder, options, missing VGG weights, divergence.
    """
    cfg, resume_from = settle_run(cfg, resume)
    if arch_cls is None or recipe is None:
        arch_cls, recipe = lookup_model(cfg.model)
    callback, events = with_event_log(cfg.tensorboard, callback)
    info = D.setup(cfg.device)
    try:
        return _Trainer(cfg, arch_cls, recipe, resume, resume_from, callback, info).run()
    finally:
        if events is not None:
            events.close()
        D.teardown(info)
