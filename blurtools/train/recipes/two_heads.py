"""Fine-tuning recipe of Carbajal et al.'s released two-head kernel network (``TwoHeads.pkl``, 2021).

The network estimates the blur (K correlation kernels and per-pixel mixing maps); the restoration is
Richardson-Lucy, which learns nothing. As the authors train it, the loss is the reblur loss in linear
light: ``mean((sum_k m_k * (sharp^g correlated with c_k) - blurry^g)^2)`` on the valid region (pixels at
least half a kernel from the border), g the network's gamma (2.2 for the release). One stage over every
parameter, on the middle sharp frame; crops must be larger than the kernels (``--patch`` >= 64 for 33x33).
Start from the release with ``blurtools train --model two-heads --init TwoHeads.pkl``.
"""

from __future__ import annotations

from typing import Dict

import torch

from blurtools.losses.reblur import reblur_loss
from blurtools.train.recipe import ObjectiveContext, Recipe, Stage
from blurtools.train.recipes.dm import middle_target


def reblur_objective(model, batch, ctx: ObjectiveContext) -> Dict[str, torch.Tensor]:
    """Reblur loss of the estimated correlation kernels and mixing, in the network's linear light."""
    sharp, blurry = middle_target(batch, "two-heads"), batch["blurry"]
    kernels, mixing = model.estimate(blurry)
    g = float(model.gamma)
    # reblur convolves; a correlation with c_k is a convolution with c_k flipped
    rb = reblur_loss(sharp.clamp(0, 1) ** g, blurry.clamp(0, 1) ** g, torch.flip(kernels, dims=(-2, -1)), mixing)
    return {"loss": ctx.weights.get("reblur", 1.0) * rb, "reblur": rb}


RECIPE = Recipe(
    stages=(Stage(name="kernels", steps_fraction=1.0, objective="reblur"),),
    objectives={"reblur": reblur_objective},
    default_weights={"reblur": 1.0},
)
