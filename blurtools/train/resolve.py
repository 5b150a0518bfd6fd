"""Resolving a run's knobs against its model, recipe and data: constructor arguments, loss weights, run
length, trainable sub-modules and the perceptual loss."""

from __future__ import annotations

import inspect
import logging
from typing import Any, Dict, List, Mapping, Optional

import torch
from torch import nn

from blurtools.errors import BlurtoolsError, UsageError
from blurtools.train.config import DEFAULT_STEPS, TrainConfig

log = logging.getLogger(__name__)

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
    from blurtools.losses.perceptual import VGGPerceptual  # torchvision: only when a perceptual loss is used

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
