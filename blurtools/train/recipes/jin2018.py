"""Fine-tuning recipes of Jin et al.'s released networks (CVPR 2018): the centre network and the cascade.

``jin2018-centre`` (``center_v3.pth``, the middle frame): L2 + 0.75 x perceptual (VGG16 relu2_2 + relu3_3)
against the middle sharp frame, the paper's loss of the middle network. ``jin2018`` (the four files as one
seven-frame cascade): every network together, the order-invariant loss over the sequence plus the same
middle-frame terms (the joint objective of :mod:`blurtools.train.recipes.jin`); the data must hold seven
sharp frames. Both one stage over every parameter. Start from the release with ``--init center_v3.pth``
or ``--init FOLDER`` (the folder holding the four files). Without ImageNet VGG weights:
``--loss-weight perceptual=0``.
"""

from __future__ import annotations

from typing import Dict

import torch

from blurtools.train.recipe import ObjectiveContext, Recipe, Stage
from blurtools.train.recipes.dm import middle_target
from blurtools.train.recipes.jin import middle_terms, joint_objective

WEIGHTS = {"l2": 1.0, "perceptual": 0.75, "pair": 1.0}


def centre_objective(model, batch, ctx: ObjectiveContext) -> Dict[str, torch.Tensor]:
    """The centre network's image against the middle sharp frame: L2 + perceptual."""
    out: Dict[str, torch.Tensor] = {}
    target = middle_target(batch, "jin2018-centre")
    out["loss"] = middle_terms(model(batch["blurry"]), target, ctx, "jin2018-centre", out)
    return out


CENTRE = Recipe(
    stages=(Stage(name="main", steps_fraction=1.0, objective="main"),),
    objectives={"main": centre_objective},
    default_weights={"l2": 1.0, "perceptual": 0.75},
    needs_vgg=("perceptual",),
    vgg_layers=("relu2_2", "relu3_3"),
)

CASCADE = Recipe(
    stages=(Stage(name="joint", steps_fraction=1.0, objective="joint"),),
    objectives={"joint": joint_objective},
    default_weights=dict(WEIGHTS),
    needs_vgg=("perceptual",),
    vgg_layers=("relu2_2", "relu3_3"),
    frames=7,
)
