"""Recipes: which nets a model trains, with which objectives, in which stages.

A recipe is data, not a branch in the training loop: the loop walks ``recipe.stages`` in order, gives each
stage its share of the steps, optimises the named sub-modules with the stage's objective, and (for
adversarial models) interleaves critic updates. Every trainable model in ``blurtools.models.MODELS`` names its recipe in
``blurtools.train.recipes.RECIPES`` (``spec.recipe``).

Objective contract::

    objective(model, batch, ctx) -> dict[str, Tensor]
        batch["blurry"]: (B, 3, H, W) float in [0, 1] on the training device
        batch["sharp"]:  (B, N, 3, H, W) float in [0, 1], frames in time order (N//2 is the middle)
        returns a dict of scalar tensors; the key "loss" is minimised, every other key is logged.

    critic_objective(model, critic, batch, ctx) -> dict[str, Tensor]   # same, for the critic's update

``ctx`` is an :class:`ObjectiveContext`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import torch
from torch import nn

Objective = Callable[..., Dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Stage:
    """One stage of training.

    Attributes:
        name: shown in logs and stored in checkpoints (resume continues inside the right stage).
        steps_fraction: share of the run's total steps this stage takes; fractions of a recipe sum to 1.
        train: names of model attributes (sub-modules) whose parameters are optimised; ("*",) means all.
            Everything else is frozen (requires_grad False, eval-mode batch norm is NOT forced).
        objective: key into ``Recipe.objectives``.
        lr_scale: learning rate of this stage = config lr * lr_scale.
        lr: absolute learning rate, overrides lr_scale when given (e.g. 2e-5 fine-tuning).
        critic_steps: when > 0, the critic is updated this many times (with ``Recipe.critic_objective``)
            before every generator update.
    """

    name: str
    steps_fraction: float
    train: Tuple[str, ...] = ("*",)
    objective: str = "main"
    lr_scale: float = 1.0
    lr: Optional[float] = None
    critic_steps: int = 0


@dataclass
class ObjectiveContext:
    """What an objective may use besides the model and the batch.

    Attributes:
        weights: loss weights (recipe defaults overridden by the user's ``--loss-weight name=value``).
        step: global step (0-based).
        stage: the current :class:`Stage`.
        perceptual: a callable ``(pred, target) -> scalar`` VGG feature loss, built lazily by the engine
            only when a recipe asks for it (``Recipe.needs_vgg``), else None.
        critic: the critic network when the recipe has one, else None.
        generator: a seeded ``torch.Generator`` for any randomness inside objectives (label noise...).
    """

    weights: Dict[str, float]
    step: int = 0
    stage: Optional[Stage] = None
    perceptual: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None
    critic: Optional[nn.Module] = None
    generator: Optional[torch.Generator] = None
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    """How one model trains.

    Attributes:
        stages: in order.
        objectives: name -> objective (see module docstring).
        default_weights: loss weights, overridable from the CLI.
        critic: factory ``(model_args: dict) -> nn.Module`` for adversarial recipes, else None.
        critic_objective: the critic's objective, when there is a critic.
        needs_vgg: the engine must build the VGG perceptual loss (and stop before training with a clear
            message when the ImageNet weights are missing) when any weight it names is > 0.
        vgg_layers: VGG16 layers the perceptual loss compares (e.g. ("relu2_2", "relu3_3")).
        frames: number of sharp frames the data must carry; None = any.
        critic_weight: the loss weight through which the critic acts on the generator; when the user sets
            it to 0 the critic's updates are skipped (they could not change the generator).
    """

    stages: Tuple[Stage, ...]
    objectives: Dict[str, Objective]
    default_weights: Dict[str, float] = field(default_factory=dict)
    critic: Optional[Callable[[dict], nn.Module]] = None
    critic_objective: Optional[Objective] = None
    needs_vgg: Tuple[str, ...] = ()
    vgg_layers: Tuple[str, ...] = ("relu2_2", "relu3_3")
    frames: Optional[int] = None
    critic_weight: Optional[str] = None


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Within the block, ``module``'s parameters take no gradient (restored afterwards).

    A generator step needs gradients *through* the critic, not *into* it.
    """
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(module.parameters(), flags):
            p.requires_grad_(f)
