"""Training recipe of the dense deblurring module (``dm``, Purohit et al. CVPR 2019).

One stage, all parameters, a pixel loss on the middle sharp frame. The default is L1; ``mse``,
``charbonnier``, ``psnr`` (minus the PSNR, NAFNet's loss) and a VGG ``perceptual`` term (relu2_2 +
relu3_3) can be mixed in with ``--loss-weight name=value`` (the engine builds the VGG loss only when its
weight is > 0).

``--loss-weight shift=R`` (R > 0, pixels) compares against the middle frame moved by the integer
translation within R that best matches the prediction (:mod:`blurtools.losses.shift_tolerant`): for still
photos on random camera-shake trajectories the blurry image does not tell where the mid-exposure position
lies inside the blur, and a plain pixel loss then rewards staying blurry. 0 (the default) is the paper's
plain loss.
"""

from __future__ import annotations

from typing import Dict

import torch

from blurtools.errors import BlurtoolsError
from blurtools.losses.pixel import charbonnier, l1, mse, psnr_loss
from blurtools.losses.shift_tolerant import align_target
from blurtools.train.recipe import ObjectiveContext, Recipe, Stage


def middle_target(batch: Dict[str, torch.Tensor], name: str) -> torch.Tensor:
    """The middle sharp frame sharp[:, N//2] of a batch, (B, 3, H, W), after checking the batch's shapes."""
    blurry, sharp = batch["blurry"], batch["sharp"]
    if sharp.dim() != 5 or blurry.dim() != 4 or sharp.shape[0] != blurry.shape[0] \
            or sharp.shape[2:] != blurry.shape[1:]:
        raise BlurtoolsError(f"{name}: batch must hold blurry (B, 3, H, W) and sharp (B, N, 3, H, W), got "
                             f"{tuple(blurry.shape)} and {tuple(sharp.shape)}")
    return sharp[:, sharp.shape[1] // 2]


def perceptual_term(pred: torch.Tensor, target: torch.Tensor, ctx: ObjectiveContext, name: str) -> torch.Tensor:
    """ctx.perceptual(pred, target), or a clear error when a perceptual weight is set but no VGG was built."""
    if ctx.perceptual is None:
        raise BlurtoolsError(f"{name}: the perceptual loss weight is > 0 but no VGG perceptual loss was built")
    return ctx.perceptual(pred, target)


def objective(model, batch, ctx: ObjectiveContext) -> Dict[str, torch.Tensor]:
    target = middle_target(batch, "dm")
    pred = model(batch["blurry"])
    w = ctx.weights
    target, pred = align_target(pred, target, int(w.get("shift", 0.0)))  # radius 0: both unchanged
    out: Dict[str, torch.Tensor] = {}
    loss = pred.new_zeros(())
    for key, fn in (("l1", l1), ("mse", mse), ("charbonnier", charbonnier), ("psnr", psnr_loss)):
        if w.get(key, 0.0) > 0:
            out[key] = fn(pred, target)
            loss = loss + w[key] * out[key]
    if w.get("perceptual", 0.0) > 0:
        out["perceptual"] = perceptual_term(pred, target, ctx, "dm")
        loss = loss + w["perceptual"] * out["perceptual"]
    out["loss"] = loss
    return out


RECIPE = Recipe(
    stages=(Stage(name="main", steps_fraction=1.0, objective="main"),),
    objectives={"main": objective},
    default_weights={"l1": 1.0, "mse": 0.0, "charbonnier": 0.0, "psnr": 0.0, "perceptual": 0.0, "shift": 0.0},
    needs_vgg=("perceptual",),
    vgg_layers=("relu2_2", "relu3_3"),
)
