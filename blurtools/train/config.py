"""The training configuration: defaults, a TOML file, command-line flags (flags win), RUN/config.json, and
resolving the knobs against the model, its recipe and the data (constructor arguments, loss weights, run
length, trainable sub-modules, the perceptual loss).

A TOML file holds the same knobs as the flags, top level or under ``[train]``, with ``-`` or ``_`` in
names, and the tables ``[model_args]`` and ``[loss_weights]``::

    model = "dm"
    data = "sets/gopro.h5"
    steps = 20000
    batch = 16
    lr = 2e-4
    [model_args]
    width = 32
    [loss_weights]
    perceptual = 0.0
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

from blurtools import __version__
from blurtools.errors import UsageError
from blurtools.io.atomic import atomic_write_text
from blurtools.request import coerce_all, option
from blurtools.train.schedule import SCHEDULES

# Checkpoints and recipes (models) import torch, about 2 s: they are imported where a run is settled or the
# model names are listed, so `train --help` and `blurtools --help` start without them.


def _trainable_names() -> Any:
    from blurtools.train.recipes import trainable_names

    return trainable_names()

log = logging.getLogger(__name__)

TOOL = "blurtools train"
AMP_MODES = ("none", "bf16", "fp16")
DEFAULT_STEPS = 10000

# What a resumed run may change: how long it runs and how it reports; everything else is the run's own.
RESUME_OVERRIDABLE = frozenset({"steps", "epochs", "stop_at", "val_every", "log_every", "save_every", "save_minutes",
                                "workers", "device", "val", "val_crop", "val_limit", "preload", "data", "out", "tensorboard"})


@dataclass
class TrainConfig:
    """Every knob of ``blurtools train``: the request object of the training pipeline.

    Each field's help (in its :func:`~blurtools.request.option`) is what ``blurtools train --help`` and the
    man page show; the command-line flags, their defaults and types are derived from these fields, and a
    TOML file (:func:`load_toml`) takes the same names. Notes beyond the help:
    ``steps``/``epochs``: ``epochs`` (passes over the training set at the global batch) is used when
    ``steps`` is None; neither gives DEFAULT_STEPS. ``batch`` is per process (the global batch is batch x
    processes). The schedule knobs are those of :mod:`blurtools.train.schedule`; every stage runs the
    schedule over its own steps from its own base rate. ``adam_betas`` (a file-only knob): Adam's betas for
    the model and the critic. ``init``: its model_args are used unless model_args are given; resume state
    (optimiser, step) is not taken from it. ``stop_at`` stops (after saving last.pt) as if killed.
    """

    model: str = option("", short="-m", help="Model to train", choices=_trainable_names)
    data: str = option("", help="Training data: a .h5 pack or a sample-set folder.")
    val: Optional[str] = option(None, help="Validation data (.h5 or sample set): PSNR/SSIM and best.pt.")
    out: str = option("", short="-o", help="Run folder: config.json, last.pt, best.pt, weights.pt, metrics.jsonl.")
    steps: Optional[int] = option(None, help=f"Training steps (default {DEFAULT_STEPS}).")
    epochs: Optional[float] = option(None, help="Run length in passes over the training set (when --steps is not given).")
    batch: int = option(8, help="Samples per process per step.")
    patch: int = option(128, help="Random square crop side in pixels.")
    lr: float = option(1e-4, help="Learning rate; stages scale or override it.")
    schedule: str = option("cosine", help=f"{'|'.join(SCHEDULES)}, over each stage's steps.")
    warmup: int = option(0, help="Linear warm-up steps at the start of each stage.")
    lr_step: int = option(0, help="Period of the step schedule; 0 = a third of the stage.")
    lr_gamma: float = option(0.5, help="Factor per period of the step schedule.")
    lr_min_ratio: float = option(0.0, help="Cosine floor as a fraction of the base rate.")
    grad_clip: float = option(0.0, help="Clip the gradient norm to this; 0 = off.")
    adam_betas: tuple = option((0.9, 0.999), cli=False, help="Adam's betas (a file-only knob).")
    model_args: Dict[str, Any] = option(default_factory=dict, flag="--model-arg", metavar="NAME=VALUE",
                                        items=lambda v, f: parse_key_values(v, f),
                                        help="Model constructor argument (width, depth...); repeatable.")
    loss_weights: Dict[str, float] = option(default_factory=dict, flag="--loss-weight", metavar="NAME=VALUE",
                                            items=lambda v, f: parse_key_values(v, f),
                                            help="Override a loss weight of the recipe; repeatable.")
    workers: int = option(0, help="Data-loading processes; 0 = in the training process.")
    seed: int = option(0, help="Seed for every random choice.")
    val_every: int = option(1000, help="Validate every N steps.")
    log_every: int = option(50, help="Log training losses every N steps.")
    save_every: int = option(1000, help="Write last.pt every N steps.")
    save_minutes: float = option(10.0, help="Also write last.pt when this many minutes have passed since the last save; "
                                 "0 = by steps only. Ctrl-C or SIGTERM always finish the step, write last.pt and exit 130.")
    val_crop: int = option(256, help="Centre-crop validation images to this side; 0 = whole.")
    val_limit: int = option(0, help="Validate on the first N samples only; 0 = all.")
    amp: str = option("none", help=f"{'|'.join(AMP_MODES)} mixed precision. bf16 also runs on CPUs, fast on those with bf16 "
                      "instructions (AVX512-BF16, AMX); fp16 is CUDA only, float32 with a logged note on the CPU.")
    channels_last: bool = option(True, negatable=True, help="Channels-last memory on CUDA.")
    device: str = option("auto", help="auto|cpu|cuda|cuda:N (under torchrun: cuda:LOCAL_RANK).")
    preload: bool = option(False, negatable=True, help="Decode the whole training set into memory once.")
    pretrained_vgg: bool = option(True, negatable=True, help="--no-pretrained-vgg: random VGG for the perceptual loss, for tests only.")
    augment: bool = option(True, negatable=True, help="Flips, rotations, time reversal on top of the crops.")
    stop_at: Optional[int] = option(None, hidden=True, help="Stop after this many steps, as if killed (tests).")
    init: Optional[str] = option(None, help="Start from the weights of this file of the same model (fine-tuning): a blurtools "
                                 "checkpoint (a weights.pt, the shipped blurtools/weights/deblur.pt) or the authors' released "
                                 "file of the model (e.g. fpn_mobilenet.h5), recognised from its contents.")
    tensorboard: Optional[str] = option(None, metavar="DIR", help="Also write TensorBoard event files (losses, learning "
                                        "rate, validation scores, stages) to this folder; needs the tensorboard package.")

    def validate(self) -> "TrainConfig":
        """Check values; raises UsageError naming the option."""
        if not self.model:
            raise UsageError("--model is required")
        if not self.data:
            raise UsageError("--data is required")
        if not self.out:
            raise UsageError("--out is required")
        positive = dict(batch=self.batch, patch=self.patch, val_every=self.val_every, log_every=self.log_every,
                        save_every=self.save_every)
        for name, value in positive.items():
            if int(value) < 1:
                raise UsageError(f"--{name.replace('_', '-')} {value}: must be >= 1")
        if self.steps is not None and self.steps < 1:
            raise UsageError(f"--steps {self.steps}: must be >= 1")
        if self.epochs is not None and self.epochs <= 0:
            raise UsageError(f"--epochs {self.epochs}: must be > 0")
        if self.save_minutes < 0:
            raise UsageError(f"--save-minutes {self.save_minutes}: must be >= 0")
        if self.lr <= 0:
            raise UsageError(f"--lr {self.lr}: must be > 0")
        if self.schedule not in SCHEDULES:
            raise UsageError(f"--schedule {self.schedule}: expected one of {', '.join(SCHEDULES)}")
        if self.amp not in AMP_MODES:
            raise UsageError(f"--amp {self.amp}: expected one of {', '.join(AMP_MODES)}")
        for name in ("warmup", "workers", "val_crop", "val_limit", "lr_step"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name.replace('_', '-')}: must be >= 0")
        if len(tuple(self.adam_betas)) != 2:
            raise UsageError(f"adam_betas {self.adam_betas}: expected two numbers")
        if self.stop_at is not None and self.stop_at < 1:
            raise UsageError(f"--stop-at {self.stop_at}: must be >= 1")
        return self

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["adam_betas"] = list(self.adam_betas)
        return d


FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def _norm_key(key: str) -> str:
    return key.replace("-", "_")


def parse_key_values(items: "list[str] | None", what: str) -> Dict[str, Any]:
    """``["width=16", "blocks=[2,2]"]`` -> {"width": 16, "blocks": [2, 2]}; values parse as JSON, else text.

    ``what`` names the flag in error messages (e.g. "--model-arg").
    """
    out: Dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise UsageError(f"{what} {item}: expected name=value")
        key, text = item.split("=", 1)
        key = key.strip()
        if not key:
            raise UsageError(f"{what} {item}: empty name")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            lowered = text.strip().lower()
            value = {"true": True, "false": False}.get(lowered, text)
        out[key] = value
    return out


def load_toml(path: "str | Path") -> Dict[str, Any]:
    """Read a config file into a dict of TrainConfig fields (validated names)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--config {path}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"--config {path}: not valid TOML ({exc})") from None
    if isinstance(raw.get("train"), dict):
        raw = {**{k: v for k, v in raw.items() if k != "train"}, **raw["train"]}
    out: Dict[str, Any] = {}
    for key, value in raw.items():
        name = _norm_key(key)
        if name not in FIELDS:
            raise UsageError(f"--config {path}: unknown key {key!r}; known: {', '.join(sorted(FIELDS))}")
        if name in ("model_args", "loss_weights") and not isinstance(value, dict):
            raise UsageError(f"--config {path}: {key} must be a table")
        out[name] = value
    return out


def combine(*layers: Mapping[str, Any]) -> Dict[str, Any]:
    """The given values of several layers (later win; None = not given; model_args/loss_weights merge by key)."""
    values: Dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            name = _norm_key(key)
            if name not in FIELDS:
                raise UsageError(f"unknown option {key!r}")
            if value is None:
                continue
            if name in ("model_args", "loss_weights"):
                values[name] = {**values.get(name, {}), **dict(value)}
            else:
                values[name] = value
    return values


def merge(*layers: Mapping[str, Any]) -> TrainConfig:
    """A TrainConfig from defaults and ``layers`` (see :func:`combine`): flags after the TOML file win.

    The names the layers set are remembered (:func:`given_values`), for the resume policy.
    """
    values = coerce_all(TrainConfig, combine(*layers))
    cfg = TrainConfig(**values)
    cfg.adam_betas = tuple(float(b) for b in cfg.adam_betas)
    cfg.loss_weights = {k: float(v) for k, v in cfg.loss_weights.items()}
    cfg._given = frozenset(values)
    return cfg


def given_values(cfg: TrainConfig) -> Dict[str, Any]:
    """The values a user set: the names the layers of :func:`merge` gave, or, for a TrainConfig built
    directly in Python, the fields that differ from the defaults."""
    names = getattr(cfg, "_given", None)
    if names is None:
        defaults = TrainConfig()
        names = [f.name for f in dataclasses.fields(cfg) if getattr(cfg, f.name) != getattr(defaults, f.name)]
    return {name: getattr(cfg, name) for name in names}


def resume_merge(stored: Mapping[str, Any], given: Mapping[str, Any]) -> TrainConfig:
    """The configuration of a resumed run: the run's own, with only RESUME_OVERRIDABLE keys taken from
    ``given`` (non-None values). Any other given value that differs from the run's is a UsageError."""
    # stop_at belongs to one invocation, never to the run.
    base = {k: v for k, v in stored.items() if k in FIELDS and k != "stop_at"}
    changes: Dict[str, Any] = {}
    for key, value in given.items():
        name = _norm_key(key)
        if value is None or name not in FIELDS:
            continue
        old = base.get(name)
        if name in ("model_args", "loss_weights"):
            value = {**(old or {}), **dict(value)}
        if name == "adam_betas":
            value, old = list(value), list(old or [])
        if value == old:
            continue
        if name not in RESUME_OVERRIDABLE:
            raise UsageError(f"--resume: {name} is {old!r} in this run, not {value!r}; a resumed run keeps its "
                             f"configuration (only {', '.join(sorted(RESUME_OVERRIDABLE))} may change)")
        changes[name] = value
    return merge(base, changes)


def settle_run(cfg: TrainConfig, resume: bool = False) -> Tuple[TrainConfig, Optional[Path]]:
    """The resume policy, validation and the run-folder check, done once for a run.

    Without ``resume``, or with it while RUN/last.pt does not exist yet, the run is ``cfg`` itself. With
    ``resume`` and RUN/last.pt, the run keeps its stored configuration and takes only the
    RESUME_OVERRIDABLE keys of ``cfg``'s given values (:func:`given_values`); another given value that
    differs is a UsageError. The folder must not hold another run (see ``check_run_folder``).

    Returns:
        (the validated configuration of the run, RUN/last.pt to resume from or None).
    """
    from blurtools.train.checkpoint import check_run_folder, read_checkpoint

    run = Path(cfg.out) if cfg.out else None
    if resume and run is not None and (run / "last.pt").is_file():
        given = given_values(cfg)
        stored = read_checkpoint(run / "last.pt")["config"]
        check_run_folder(run, given.get("model") or stored.get("model"), resume=True)
        cfg = resume_merge(stored, given)
    cfg.validate()
    return cfg, check_run_folder(cfg.out, cfg.model, resume)


def write_config_json(path: "str | Path", cfg: TrainConfig, resolved: Mapping[str, Any]) -> None:
    """RUN/config.json: tool, version, the configuration and what was resolved from it."""
    doc = {"tool": TOOL, "version": __version__, "config": cfg.to_dict(), "resolved": dict(resolved)}
    atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
