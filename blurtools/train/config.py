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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import torch
from torch import nn

from blurtools import __version__
from blurtools.errors import BlurtoolsError, UsageError
from blurtools.io.atomic import atomic_write_text
from blurtools.train.schedule import SCHEDULES

log = logging.getLogger(__name__)

TOOL = "blurtools train"
AMP_MODES = ("none", "bf16", "fp16")
DEFAULT_STEPS = 10000

# What a resumed run may change: how long it runs and how it reports; everything else is the run's own.
RESUME_OVERRIDABLE = frozenset({"steps", "epochs", "stop_at", "val_every", "log_every", "save_every", "workers",
                                "device", "val", "val_crop", "val_limit", "preload", "data", "out"})


@dataclass
class TrainConfig:
    """Every knob of ``blurtools train``.

    Attributes:
        model: model name (a key of blurtools.models.MODELS with a recipe).
        data: training data, a ``.h5`` pack or a sample-set folder.
        val: validation data (same kinds), or None (then no best.pt).
        out: the RUN/ folder.
        steps / epochs: run length; ``epochs`` (passes over the training set at the global batch) is used
            when ``steps`` is None; neither gives DEFAULT_STEPS.
        batch: samples per process per step (the global batch is batch x processes).
        patch: square random crop side in pixels.
        lr, schedule, warmup, lr_min_ratio, lr_step, lr_gamma: see :mod:`blurtools.train.schedule`;
            every stage runs the schedule over its own steps from its own base rate.
        adam_betas: Adam's betas for the model (and the critic).
        grad_clip: max gradient norm, 0 = none.
        model_args: keyword arguments of the model's constructor (width, depth...).
        loss_weights: overrides of the recipe's default loss weights.
        workers: data-loading processes (0 = in the training process).
        seed: every random choice (init, data order, crops, flips) follows from it.
        val_every / log_every / save_every: in steps.
        val_crop: validation images are centre-cropped to this square side (0 = whole images).
        val_limit: validate on the first N samples only (0 = all).
        amp: "none", "bf16" (CUDA or CPU autocast) or "fp16" (CUDA only; float32 with a logged note on the CPU).
        channels_last: use channels-last memory on CUDA.
        device: auto|cpu|cuda|cuda:N (under torchrun, each process takes cuda:LOCAL_RANK).
        preload: decode the whole training set into memory once, so loading is never the bottleneck.
        pretrained_vgg: False gives the perceptual loss a randomly initialised VGG (for tests only).
        augment: random horizontal/vertical flips on top of the random crop.
        stop_at: stop (after saving last.pt) once this many steps are done, as if killed; for tests.
        init: a checkpoint (weights.pt, best.pt, last.pt, or a shipped default) of the same architecture
            whose weights the run starts from (fine-tuning); its model_args are used unless model_args
            are given. Resume state (optimiser, step) is not taken from it.
    """

    model: str = ""
    data: str = ""
    val: Optional[str] = None
    out: str = ""
    steps: Optional[int] = None
    epochs: Optional[float] = None
    batch: int = 8
    patch: int = 128
    lr: float = 1e-4
    schedule: str = "cosine"
    warmup: int = 0
    lr_min_ratio: float = 0.0
    lr_step: int = 0
    lr_gamma: float = 0.5
    adam_betas: tuple = (0.9, 0.999)
    grad_clip: float = 0.0
    model_args: Dict[str, Any] = field(default_factory=dict)
    loss_weights: Dict[str, float] = field(default_factory=dict)
    workers: int = 0
    seed: int = 0
    val_every: int = 1000
    log_every: int = 50
    save_every: int = 1000
    val_crop: int = 256
    val_limit: int = 0
    amp: str = "none"
    channels_last: bool = True
    device: str = "auto"
    preload: bool = False
    pretrained_vgg: bool = True
    augment: bool = True
    stop_at: Optional[int] = None
    init: Optional[str] = None

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


_INTS = ("steps", "batch", "patch", "warmup", "lr_step", "workers", "seed", "val_every", "log_every", "save_every",
         "val_crop", "val_limit", "stop_at")
_FLOATS = ("epochs", "lr", "lr_min_ratio", "lr_gamma", "grad_clip")
_BOOLS = ("channels_last", "preload", "pretrained_vgg", "augment")
_STRS = ("model", "data", "val", "out", "schedule", "amp", "device")


def _coerce(values: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(values)
    for name, value in values.items():
        try:
            if name in _INTS:
                if isinstance(value, bool) or float(value) != int(float(value)):
                    raise ValueError
                out[name] = int(float(value))
            elif name in _FLOATS:
                out[name] = float(value)
            elif name in _BOOLS:
                if not isinstance(value, bool):
                    raise ValueError
            elif name in _STRS:
                out[name] = str(value)
        except (TypeError, ValueError):
            kind = "an integer" if name in _INTS else "a number" if name in _FLOATS else "true or false"
            raise UsageError(f"{name} = {value!r}: expected {kind}") from None
    return out


def merge(*layers: Mapping[str, Any]) -> TrainConfig:
    """A TrainConfig from defaults and ``layers`` (see :func:`combine`): flags after the TOML file win."""
    cfg = TrainConfig(**_coerce(combine(*layers)))
    cfg.adam_betas = tuple(float(b) for b in cfg.adam_betas)
    cfg.loss_weights = {k: float(v) for k, v in cfg.loss_weights.items()}
    return cfg


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


def write_config_json(path: "str | Path", cfg: TrainConfig, resolved: Mapping[str, Any]) -> None:
    """RUN/config.json: tool, version, the configuration and what was resolved from it."""
    doc = {"tool": TOOL, "version": __version__, "config": cfg.to_dict(), "resolved": dict(resolved)}
    atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")


# ---------------------------------------------------------------- resolving the knobs against model and data

def resolve_weights(default_weights: Mapping[str, float], given: Mapping[str, float], model: str) -> Dict[str, float]:
    """The recipe's default loss weights with the user's overrides; unknown names are a UsageError."""
    unknown = sorted(set(given) - set(default_weights))
    if unknown:
        raise UsageError(f"--loss-weight {unknown[0]}: model {model} has no such loss; its weights are "
                         f"{', '.join(f'{k}={v:g}' for k, v in sorted(default_weights.items())) or '(none)'}")
    return {**{k: float(v) for k, v in default_weights.items()}, **{k: float(v) for k, v in given.items()}}


def resolve_model_args(arch_cls: type, given: Mapping[str, Any], frames: Optional[int], model: str) -> Dict[str, Any]:
    """Constructor keyword arguments: the user's (checked against the signature), plus ``frames`` = the
    data's frame count for a video model that takes ``frames`` when the user did not set it."""
    import inspect

    params = inspect.signature(arch_cls.__init__).parameters
    names = [n for n, p in params.items() if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    args = dict(given)
    unknown = sorted(k for k in args if k not in names)
    if unknown and not takes_any:
        raise UsageError(f"--model-arg {unknown[0]}: model {model} takes {', '.join(names) or 'no arguments'}")
    if arch_cls.kind == "video" and "frames" in names and "frames" not in args and frames:
        args["frames"] = int(frames)
    return args


def total_steps(cfg: TrainConfig, samples: int, world: int) -> int:
    """``cfg.steps``, or ``cfg.epochs`` passes over ``samples`` at the global batch, or DEFAULT_STEPS."""
    if cfg.steps is not None:
        return int(cfg.steps)
    if cfg.epochs is not None:
        return max(1, int(-(-cfg.epochs * samples // (cfg.batch * world))))
    return DEFAULT_STEPS


def build_perceptual(recipe: Any, weights: Dict[str, float], pretrained: bool, device: torch.device,
                     seed: int = 0) -> Optional[nn.Module]:
    """The VGG perceptual loss when a weight named in ``recipe.needs_vgg`` is > 0, else None.

    Raises BlurtoolsError (from VGGPerceptual) naming the missing ImageNet file: no silent fallback.
    """
    if not any(weights.get(name, 0.0) > 0 for name in recipe.needs_vgg):
        return None
    from blurtools.losses.perceptual import VGGPerceptual

    if not pretrained:
        log.warning("perceptual loss with a randomly initialised VGG (--no-pretrained-vgg): for tests only")
    # A random trunk must be the same one in every run with this seed (and after a resume).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VGGPerceptual(layers=recipe.vgg_layers, pretrained=pretrained).to(device)


def trainable_parameters(model: nn.Module, names: "tuple[str, ...]", arch: str) -> List[nn.Parameter]:
    """Parameters of the sub-modules (or parameters) ``names`` of ``model``; ("*",) = all of them."""
    if "*" in names:
        params = list(model.parameters())
    else:
        params, seen = [], set()
        for name in names:
            part = getattr(model, name, None)
            if isinstance(part, nn.Module):
                found = list(part.parameters())
            elif isinstance(part, nn.Parameter):
                found = [part]
            else:
                raise BlurtoolsError(f"recipe of {arch}: stage trains {name!r}, which model {arch} does not have")
            params += [p for p in found if id(p) not in seen]
            seen.update(id(p) for p in found)
    if not params:
        raise BlurtoolsError(f"recipe of {arch}: stage trains {names}, which hold no parameters")
    return params
