"""One training loop for every model: stages from the recipe, checkpoints, resume, AMP, DDP.

The loop walks ``recipe.stages``: each stage trains the named sub-modules (everything else frozen) with its
objective and its own Adam optimiser, learning rate and schedule, for its share of the steps; adversarial
stages update the critic ``critic_steps`` times before every generator update. The data stream, the
schedule and every random state are functions of the step or saved in last.pt, so a run stopped and
resumed follows the uninterrupted run's trajectory (exactly, on the CPU).

Reporting goes through ``callback(record)``, never print: records are dicts with ``event`` in
{"start", "stage", "step", "train", "val", "end"}; "train"/"val" records are also appended to
RUN/metrics.jsonl. Only rank 0 calls the callback and writes files.

Example::

    from blurtools.train.config import TrainConfig
    cfg = TrainConfig(model="dm", data="train.h5", val="val.h5", out="runs/dm", steps=2000,
                      model_args={"width": 32}).validate()
    result = train(cfg, MODELS["dm"].cls, RECIPES[MODELS["dm"].recipe])
    print(result.best_psnr, result.weights)
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
from torch import nn

from blurtools.errors import BlurtoolsError
from blurtools.train import checkpoint as ckpt_io
from blurtools.train import distributed as D
from blurtools.train.config import TrainConfig, settle_run, write_config_json
from blurtools.train.recipe import ObjectiveContext, Recipe
from blurtools.train.recipes import lookup_model
from blurtools.train.resolve import (build_perceptual, resolve_model_args, resolve_weights, total_steps,
                                     trainable_parameters)
from blurtools.train.schedule import StageSchedule, plan_stages
from blurtools.train.tensorboard import with_event_log
from blurtools.train.validation import evaluate

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


class _Runner(nn.Module):
    """Runs an objective as a module's forward, so DDP sees every call the objective makes (sub-modules too)."""

    def __init__(self, net: nn.Module, objective: Callable, ctx: ObjectiveContext, other: Optional[nn.Module] = None):
        super().__init__()
        self.net, self.objective, self.ctx = net, objective, ctx
        object.__setattr__(self, "other", other)  # the generator for a critic runner: used, not owned

    def forward(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        if self.other is None:
            return self.objective(self.net, batch, self.ctx)
        return self.objective(self.other, self.net, batch, self.ctx)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    torch.manual_seed(seed)


class _Trainer:
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

    # -------------------------------------------------------------------------------------- reporting
    def emit(self, record: Dict[str, Any], to_file: bool = False) -> None:
        if not self.info.is_main:
            return
        if to_file:
            with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record, sort_keys=True) + "\n")
        if self.callback is not None:
            self.callback(dict(record))

    # -------------------------------------------------------------------------------------- set-up
    def _init_checkpoint(self) -> Optional[Dict[str, Any]]:
        """The --init checkpoint, checked to be of this run's architecture (None without --init)."""
        if not self.cfg.init:
            return None
        rec = ckpt_io.read_checkpoint(self.cfg.init)
        if rec.get("arch") != self.cfg.model:
            raise BlurtoolsError(f"{self.cfg.init}: a checkpoint of {rec.get('arch')!r}, not of {self.cfg.model!r}")
        return rec

    def prepare(self) -> None:
        cfg, info, recipe = self.cfg, self.info, self.recipe
        self.weights = resolve_weights(recipe.default_weights, cfg.loss_weights, cfg.model)
        # The VGG file is checked before anything else is loaded, so a missing file stops the run at once.
        self.perceptual = build_perceptual(recipe, self.weights, cfg.pretrained_vgg, self.device, cfg.seed)
        D.barrier(info)  # every process has checked the folder (settle_run) before rank 0 writes into it
        self.train_ds = D.open_training_data(cfg.data, cfg.patch, cfg.augment, cfg.seed, cfg.preload)
        self.val_ds = D.open_validation_data(cfg.val) if cfg.val else None
        self.frames = D.data_frames(self.train_ds, cfg.data, recipe.frames, cfg.model)
        if self.val_ds is not None:
            val_frames = D.data_frames(self.val_ds, cfg.val, recipe.frames, cfg.model)
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
            self.critic_runner = self._wrap(_Runner(self.critic, recipe.critic_objective, self.ctx, self.model))
        # Per-process streams after the (identical) initialisation, so dropout and noise differ by rank.
        _seed_all(cfg.seed * 1009 + 7 + info.rank)
        self.ctx_gen.manual_seed(cfg.seed * 1009 + 11 + info.rank)
        self.step, self.state = 0, None
        if self.resume_from is not None:
            self._load_state(ckpt_io.read_checkpoint(self.resume_from))
        elif self.resume:
            log.info("%s: no last.pt yet; starting a fresh run", self.out)

    def _wrap(self, module: nn.Module) -> nn.Module:
        if not self.info.enabled:
            return module
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = dict(device_ids=[self.info.local_rank], output_device=self.info.local_rank) if self.cuda else {}
        # Objectives may leave trainable parameters unused on some steps (branches, adversarial terms).
        return DDP(module, find_unused_parameters=True, **ids)

    def _load_state(self, state: Dict[str, Any]) -> None:
        where = self.resume_from
        if state.get("format") != ckpt_io.STATE_FORMAT:
            raise BlurtoolsError(f"{where}: not a training state (format {state.get('format')!r}); cannot resume")
        if state["arch"] != self.cfg.model:
            raise BlurtoolsError(f"{where}: checkpoint of model {state['arch']!r}, not {self.cfg.model!r}")
        try:
            self.model.load_state_dict(state["state_dict"])
            if self.critic is not None:
                self.critic.load_state_dict(state["critic_state_dict"])
                self.critic_opt.load_state_dict(state["critic_optimizer"])
                self.critic_scaler.load_state_dict(state["critic_scaler"])
        except (RuntimeError, KeyError) as exc:
            raise BlurtoolsError(f"{where}: does not fit model {self.cfg.model} {self.model.model_args} "
                                 f"({str(exc).splitlines()[0][:300]})") from None
        self.step = int(state["step"])
        if self.step > self.total:
            raise BlurtoolsError(f"{where}: the run is at step {self.step}, past --steps {self.total}")
        if int(state.get("total_steps", self.total)) != self.total:
            log.warning("resume: the run had %s steps, now %d: stage boundaries and schedules follow the new length",
                        state.get("total_steps"), self.total)
        if int(state.get("world_size", 1)) != self.info.world:
            log.warning("resume: the run used %s process(es), this one %d: the data order changes from here",
                        state.get("world_size"), self.info.world)
        self.best_psnr = state.get("best_psnr")
        self.last_val = state.get("metrics") or None
        acc = state.get("log_accum") or {}
        self.sums = {k: v.to(self.device) for k, v in acc.get("sums", {}).items()}
        self.counts = dict(acc.get("counts", {}))
        self.state = state
        self._trim_metrics(self.step)

    def _trim_metrics(self, step: int) -> None:
        # A run killed after its last checkpoint logged steps that the resumed run will log again.
        path = self.out / "metrics.jsonl"
        if not self.info.is_main or not path.is_file():
            return
        from blurtools.io.atomic import atomic_write_text

        keep = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by the kill
            if rec.get("step", 0) <= step and rec.get("event") != "end":
                keep.append(line + "\n")
        atomic_write_text(path, "".join(keep))

    # -------------------------------------------------------------------------------------- stages
    def _enter_stage(self, index: int) -> None:
        cfg, stage = self.cfg, self.recipe.stages[index]
        self.stage_index, self.stage = index, stage
        if stage.objective not in self.recipe.objectives:
            raise BlurtoolsError(f"recipe of {cfg.model}: stage {stage.name} names objective {stage.objective!r}, "
                                 f"not one of {sorted(self.recipe.objectives)}")
        if stage.critic_steps > 0 and self.critic is None:
            raise BlurtoolsError(f"recipe of {cfg.model}: stage {stage.name} has critic steps but no critic")
        params = trainable_parameters(self.model, stage.train, cfg.model)
        for p in self.model.parameters():
            p.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
        self.params = params
        lr = stage.lr if stage.lr is not None else cfg.lr * stage.lr_scale
        self.opt = torch.optim.Adam(params, lr=lr, betas=tuple(cfg.adam_betas))
        start, end = self.bounds[index]
        self.stage_start = start
        self.sched = StageSchedule(self.opt, total=end - start, schedule=cfg.schedule, warmup=cfg.warmup,
                                   min_ratio=cfg.lr_min_ratio, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp == "fp16" and self.cuda)
        self.runner = self._wrap(_Runner(self.model, self.recipe.objectives[stage.objective], self.ctx))
        saved = self.state
        if saved is not None and saved.get("stage") == index and saved.get("optimizer") is not None:
            self.opt.load_state_dict(saved["optimizer"])
            self.sched.load_state_dict(saved["schedule"])
            self.scaler.load_state_dict(saved["scaler"])
        self.state = None
        self.ctx.stage = stage
        log.info("stage %d/%d %s: steps %d-%d, training %s, lr %g", index + 1, len(self.recipe.stages), stage.name,
                 start, end, ",".join(stage.train), lr)
        self.emit({"event": "stage", "stage": stage.name, "index": index, "start": start, "end": end, "lr": lr})

    # -------------------------------------------------------------------------------------- one step
    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def _update(self, runner: nn.Module, batch: Dict[str, torch.Tensor], opt: torch.optim.Optimizer,
                scaler: Any, params: List[torch.nn.Parameter], prefix: str) -> None:
        opt.zero_grad(set_to_none=True)
        with self._autocast():
            out = runner(batch)
        if "loss" not in out:
            raise BlurtoolsError(f"recipe of {self.cfg.model}: objective returned no 'loss' ({sorted(out)})")
        scaler.scale(out["loss"]).backward()
        if self.cfg.grad_clip > 0:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        for key, value in out.items():
            key = prefix + key
            v = value.detach().float().reshape(()).to(torch.float64)
            self.sums[key] = self.sums[key] + v if key in self.sums else v
            self.counts[key] = self.counts.get(key, 0) + 1

    def _train_step(self, batch: Dict[str, torch.Tensor]) -> None:
        k = self.step - self.stage_start
        self.lr = self.sched.set(k)
        self.ctx.step = self.step
        if self.stage.critic_steps > 0 and not self._critic_idle:
            for g in self.critic_opt.param_groups:
                g["lr"] = self.lr
            critic_params = list(self.critic.parameters())
            for _ in range(self.stage.critic_steps):
                self._update(self.critic_runner, batch, self.critic_opt, self.critic_scaler, critic_params, "critic_")
        self._update(self.runner, batch, self.opt, self.scaler, self.params, "")

    def _to_device(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        out = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        if self.cuda and self.cfg.channels_last:
            out["blurry"] = out["blurry"].contiguous(memory_format=torch.channels_last)
        return out

    # -------------------------------------------------------------------------------------- logging, saving
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

    def _save_state(self) -> None:
        D.sync_buffers(self.info, self.model, self.critic)
        rngs = D.gather_objects(self.info, ckpt_io.capture_rng({"ctx": self.ctx_gen}))
        if not self.info.is_main:
            return
        rec = ckpt_io.weights_record(self.model, self.cfg.model, self.cfg.to_dict(), self.step, self.last_val)
        rec.update({
            "format": ckpt_io.STATE_FORMAT, "stage": self.stage_index, "stage_name": self.stage.name,
            "optimizer": self.opt.state_dict(), "schedule": self.sched.state_dict(),
            "scaler": self.scaler.state_dict(), "rng": rngs, "best_psnr": self.best_psnr,
            "log_accum": {"sums": {k: v.cpu() for k, v in self.sums.items()}, "counts": dict(self.counts)},
            "world_size": self.info.world, "total_steps": self.total,
        })
        if self.critic is not None:
            rec.update({"critic_state_dict": ckpt_io.cpu_state_dict(self.critic),
                        "critic_optimizer": self.critic_opt.state_dict(),
                        "critic_scaler": self.critic_scaler.state_dict()})
        ckpt_io.save_checkpoint(self.out / "last.pt", rec)

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
        stream = D.StepBatches(self.train_ds, cfg.batch, cfg.seed, info.rank, info.world)
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
