"""What a run keeps on disk to be resumed: RUN/last.pt written and read back, the --init checkpoint, and
the log lines a killed run wrote after its last checkpoint. A part of :class:`blurtools.train.engine.Trainer`."""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, Optional

from blurtools.errors import BlurtoolsError
from blurtools.io.atomic import atomic_write_text
from blurtools.train import checkpoint as ckpt_io
from blurtools.train import distributed as D

log = logging.getLogger("blurtools.train.engine")


class RunState:
    """The checkpoint half of the trainer."""

    def _init_checkpoint(self) -> Optional[Dict[str, Any]]:
        """The --init file's ``model_args`` and ``state_dict`` (None without --init).

        Any file :func:`blurtools.models.registry.load` reads: a blurtools checkpoint or an authors' released
        file of this run's model (detected from its contents, read with weights_only=True); for ``jin2018``
        also the folder holding the four files of the release.
        """
        if not self.cfg.init:
            return None
        from blurtools.models.convert import open_weights
        from blurtools.models.registry import MODELS, ModelSpec

        # the run's own class reads the file (the registered layouts of its name included)
        known = MODELS.get(self.cfg.model)
        spec = ModelSpec(self.cfg.model, self.arch_cls, None, known.layouts if known is not None else ())
        loaded = open_weights(self.cfg.init, model=self.cfg.model, registry={**MODELS, self.cfg.model: spec})
        log.info("--init %s: %s (%s layout)", self.cfg.init, loaded.spec.name, loaded.layout)
        return {"model_args": dict(loaded.args), "state_dict": loaded.module.state_dict()}

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
        keep = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by the kill
            if rec.get("step", 0) <= step and rec.get("event") != "end":
                keep.append(line + "\n")
        atomic_write_text(path, "".join(keep))

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
