"""Training recipe of the kernel-basis network (Carbajal et al. 2021).

Two stages over all parameters:

1. ``kernels`` (30% of the steps): the reblur loss alone, ||reblur(sharp, k, m) - blurry||^2 on the valid
   region (Carbajal et al. train the kernels by reblurring the sharp image), so that the estimator gives usable
   kernels before anything is asked of the restoration;
2. ``joint`` (70%): reblur loss + ``l1`` * L1(restored, sharp), the restoration being the model's unrolled
   Richardson-Lucy iterations under the estimated kernels (``forward``), which trains the estimator end to
   end for deblurring.

Weights: ``reblur`` = 1, ``l1`` = 0.1 (the reblur MSE is ~1e-3 on natural images, the L1 ~1e-2).
"""

from __future__ import annotations

from typing import Dict

import torch

from blurtools.losses.pixel import l1
from blurtools.losses.reblur import reblur_loss
from blurtools.train.recipe import ObjectiveContext, Recipe, Stage
from blurtools.train.recipes.dm import middle_target


def reblur_objective(model, batch, ctx: ObjectiveContext) -> Dict[str, torch.Tensor]:
    sharp = middle_target(batch, "kernel-basis")
    kernels, mixing = model.estimate(batch["blurry"])
    rb = reblur_loss(sharp, batch["blurry"], kernels, mixing)
    return {"loss": ctx.weights.get("reblur", 1.0) * rb, "reblur": rb}


def joint_objective(model, batch, ctx: ObjectiveContext) -> Dict[str, torch.Tensor]:
    sharp = middle_target(batch, "kernel-basis")
    blurry = batch["blurry"]
    kernels, mixing = model.estimate(blurry)
    w = ctx.weights
    rb = reblur_loss(sharp, blurry, kernels, mixing)
    out = {"reblur": rb}
    loss = w.get("reblur", 1.0) * rb
    if w.get("l1", 0.0) > 0:
        out["l1"] = l1(model.restore(blurry, kernels, mixing), sharp)
        loss = loss + w["l1"] * out["l1"]
    out["loss"] = loss
    return out


RECIPE = Recipe(
    stages=(Stage(name="kernels", steps_fraction=0.3, objective="reblur"),
            Stage(name="joint", steps_fraction=0.7, objective="joint")),
    objectives={"reblur": reblur_objective, "joint": joint_objective},
    default_weights={"reblur": 1.0, "l1": 0.1},
)
