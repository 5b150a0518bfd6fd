"""One training step: the objective run as a module (so DDP sees it), stages' optimisers and schedules,
mixed precision, gradient clipping and the running loss sums. A part of :class:`blurtools.train.engine.Trainer`."""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from blurtools.errors import BlurtoolsError
from blurtools.train.recipe import ObjectiveContext
from blurtools.train.resolve import trainable_parameters
from blurtools.train.schedule import StageSchedule

log = logging.getLogger("blurtools.train.engine")


class ObjectiveRunner(nn.Module):
    """Runs an objective as a module's forward, so DDP sees every call the objective makes (sub-modules too)."""

    def __init__(self, net: nn.Module, objective: Callable, ctx: ObjectiveContext, other: Optional[nn.Module] = None):
        super().__init__()
        self.net, self.objective, self.ctx = net, objective, ctx
        object.__setattr__(self, "other", other)  # the generator for a critic runner: used, not owned

    def forward(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        if self.other is None:
            return self.objective(self.net, batch, self.ctx)
        return self.objective(self.other, self.net, batch, self.ctx)


class Stepping:
    """The step half of the trainer: entering a stage, and one optimiser update per batch."""

    def _wrap(self, module: nn.Module) -> nn.Module:
        if not self.info.enabled:
            return module
        ids = dict(device_ids=[self.info.local_rank], output_device=self.info.local_rank) if self.cuda else {}
        # Objectives may leave trainable parameters unused on some steps (branches, adversarial terms).
        return DDP(module, find_unused_parameters=True, **ids)

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
        self.runner = self._wrap(ObjectiveRunner(self.model, self.recipe.objectives[stage.objective], self.ctx))
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
