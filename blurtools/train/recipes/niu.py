"""Training recipe of the Niu et al. one-network video model (``niu``; Symmetry 2021).

One stage, the whole network, with the VGG-like discriminator (:class:`NiuDiscriminator`, their Table 2)
updated once before every generator step:

    loss = content + alpha * adversarial + beta * contiguous,   alpha = 0.001, beta = 0.1

* ``content``: L2 between the predicted and the true frames. A blurry image does not tell the direction
  of time, so each sample's prediction is compared in whichever direction (forward or reversed) fits it
  better: without this a single network learns the average of both directions (our reading; it is
  Jin et al.'s observation applied to a whole sequence).
* ``adversarial``: the non-saturating GAN loss, the discriminator judging single frames (real: the sharp
  frames; fake: the predicted ones).
* ``contiguous``: the contiguous blurry loss (:func:`blurtools.losses.contextual.contiguous_blurry_loss`),
  the contextual loss with its spatial term between averages of consecutive frames, on the VGG16 features
  the engine builds (``vgg_layers``), or on raw 5x5 patches when no VGG is there.

Weights ``content``, ``adversarial``, ``contiguous`` can be set with ``--loss-weight``; with
``contiguous=0`` no VGG is needed. ``shift=R`` (pixels, default 0: the paper's loss) compares the content
term against the true frames moved together by the integer translation within R that fits best
(:mod:`blurtools.losses.shift_tolerant`). Unlike the middle frame alone, the whole sequence is pinned by
the blurry image (its frames average to it), so this mainly forgives a network that is still learning
where the path lies; for the shipped weights it did not help (blurtools/weights/MODEL_CARD.md).
"""

from __future__ import annotations

from typing import Dict

import torch
from torch import nn

from blurtools.errors import BlurtoolsError
from blurtools.losses.adversarial import bce_discriminator_loss, bce_generator_loss
from blurtools.losses.contextual import contiguous_blurry_loss
from blurtools.losses.order_invariant import best_order
from blurtools.losses.pixel import mse
from blurtools.losses.shift_tolerant import align_target
from blurtools.models.niu import NiuDiscriminator
from blurtools.train.recipe import ObjectiveContext, Recipe, Stage, frozen
from blurtools.train.recipes.jin import sequence_target


def make_critic(model_args: dict) -> nn.Module:
    """The discriminator, as wide as the generator (``width``, 64 published)."""
    return NiuDiscriminator(width=int(model_args.get("width", 64)))




def generator_objective(model, batch, ctx: ObjectiveContext) -> Dict[str, torch.Tensor]:
    sharp = sequence_target(model, batch, "niu")
    pred = best_order(model(batch["blurry"]), sharp)
    w = ctx.weights
    out: Dict[str, torch.Tensor] = {}
    target, pred_inner = align_target(pred, sharp, int(w.get("shift", 0.0)))  # radius 0: both unchanged
    out["content"] = mse(pred_inner, target)
    loss = w.get("content", 1.0) * out["content"]
    if w.get("adversarial", 0.0) > 0:
        if ctx.critic is None:
            raise BlurtoolsError("niu: the adversarial weight is > 0 but there is no discriminator in the context")
        with frozen(ctx.critic):
            out["adversarial"] = bce_generator_loss(ctx.critic, pred.flatten(0, 1))
        loss = loss + w["adversarial"] * out["adversarial"]
    if w.get("contiguous", 0.0) > 0:
        features = getattr(ctx.perceptual, "extract", None)
        out["contiguous"] = contiguous_blurry_loss(pred, sharp, features=features)
        loss = loss + w["contiguous"] * out["contiguous"]
    out = {k: v.detach() for k, v in out.items()}
    out["loss"] = loss
    return out


def critic_objective(model, critic, batch, ctx: ObjectiveContext) -> Dict[str, torch.Tensor]:
    sharp = sequence_target(model, batch, "niu discriminator")
    with torch.no_grad():
        fake = model(batch["blurry"])
    return bce_discriminator_loss(critic, sharp.flatten(0, 1), fake.flatten(0, 1), generator=ctx.generator)


RECIPE = Recipe(
    stages=(Stage(name="adversarial", steps_fraction=1.0, objective="generator", critic_steps=1),),
    objectives={"generator": generator_objective},
    default_weights={"content": 1.0, "adversarial": 0.001, "contiguous": 0.1, "shift": 0.0},
    critic=make_critic,
    critic_objective=critic_objective,
    needs_vgg=("contiguous",),
    vgg_layers=("relu3_3",),
    frames=None,
    critic_weight="adversarial",
)
