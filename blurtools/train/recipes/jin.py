"""Training recipe of the Jin et al. cascade (``jin``; CVPR 2018, section 4).

Stages, in order, each optimising one network with the others frozen, as the paper trains them:

1. ``middle`` (phi_4): L2 + lambda * perceptual (VGG16 relu2_2 + relu3_3) on the middle frame;
   lambda = 0.75 and lr 1e-4 were the best in the paper (1e-4 is also the engine's default ``--lr``).
2. ``pair1`` .. ``pairP`` (phi_3,5, phi_2,6, phi_1,7, ...): each on the frames the frozen earlier networks
   estimate, with Jin's order-invariant pair loss | |xa^+xb^| - |xa+xb| | + | |xa^-xb^| - |xa-xb| |.
3. ``joint`` (ours, optional, 10% of the steps at lr/10): everything fine-tuned together with the
   order-invariant loss over the whole sequence plus the middle-frame terms, so the later networks'
   errors can correct the earlier ones. ``make_recipe(frames, joint=False)`` drops it.

Weights (``--loss-weight``): ``l2`` and ``perceptual`` on the middle frame, ``pair`` on the pair losses.
Without ImageNet VGG weights train with ``--loss-weight perceptual=0``.
``RECIPE`` is for 7 frames; ``make_recipe(9)`` gives the recipe of a 9-frame model.
"""

from __future__ import annotations

from typing import Dict

import torch

from blurtools.errors import BlurtoolsError
from blurtools.losses.order_invariant import order_invariant_loss, pair_loss
from blurtools.losses.pixel import mse
from blurtools.train.recipe import ObjectiveContext, Recipe, Stage
from blurtools.train.recipes.dm import middle_target, perceptual_term


def sequence_target(model, batch, name: str) -> torch.Tensor:
    """batch["sharp"] (B, N, 3, H, W) after checking the batch and that N is the model's frame count."""
    middle_target(batch, name)  # shape checks
    sharp = batch["sharp"]
    if sharp.shape[1] != model.frames:
        raise BlurtoolsError(f"{name}: the model makes {model.frames} frames but the data has {sharp.shape[1]}")
    return sharp


def middle_terms(pred: torch.Tensor, target: torch.Tensor, ctx: ObjectiveContext, name: str,
                  out: Dict[str, torch.Tensor]) -> torch.Tensor:
    w = ctx.weights
    loss = pred.new_zeros(())
    if w.get("l2", 0.0) > 0:
        out["l2"] = mse(pred, target)
        loss = loss + w["l2"] * out["l2"]
    if w.get("perceptual", 0.0) > 0:
        out["perceptual"] = perceptual_term(pred, target, ctx, name)
        loss = loss + w["perceptual"] * out["perceptual"]
    return loss


def middle_objective(model, batch, ctx: ObjectiveContext) -> Dict[str, torch.Tensor]:
    """phi_4 alone: L2 + perceptual between phi_4(blurry) and the middle sharp frame."""
    sharp = sequence_target(model, batch, "jin middle")
    out: Dict[str, torch.Tensor] = {}
    out["loss"] = middle_terms(model.middle(batch["blurry"]), sharp[:, sharp.shape[1] // 2], ctx,
                                "jin middle", out)
    return out


def pair_objective(k: int):
    """Objective of pair network k (1 = innermost): its two frames against ground truth, order-invariantly."""

    def objective(model, batch, ctx: ObjectiveContext) -> Dict[str, torch.Tensor]:
        sharp = sequence_target(model, batch, f"jin pair{k}")
        blurry = batch["blurry"]
        # The earlier networks are frozen in this stage: their frames are inputs, not something to train.
        with torch.no_grad():
            inner = model.extract(blurry, k - 1)
        before, after = model.pairs[k - 1](blurry, inner)
        m = sharp.shape[1] // 2
        term = pair_loss(before, after, sharp[:, m - k], sharp[:, m + k])
        return {"loss": ctx.weights.get("pair", 1.0) * term, "pair": term.detach()}

    objective.__name__ = f"pair{k}_objective"
    return objective


def joint_objective(model, batch, ctx: ObjectiveContext) -> Dict[str, torch.Tensor]:
    """Every network: order-invariant loss over all pairs + the middle-frame terms."""
    sharp = sequence_target(model, batch, "jin joint")
    pred = model(batch["blurry"])
    out: Dict[str, torch.Tensor] = {}
    loss = middle_terms(pred[:, sharp.shape[1] // 2], sharp[:, sharp.shape[1] // 2], ctx, "jin joint", out)
    if ctx.weights.get("pair", 1.0) > 0:
        out["pair"] = order_invariant_loss(pred, sharp, middle="none")
        loss = loss + ctx.weights.get("pair", 1.0) * out["pair"]
    out["loss"] = loss
    return out


def make_recipe(frames: int = 7, joint: bool = True) -> Recipe:
    """The recipe for a ``frames``-frame Jin model (odd, >= 3)."""
    if frames < 3 or frames % 2 == 0:
        raise BlurtoolsError(f"jin recipe: frames must be odd and >= 3, got {frames}")
    pairs = frames // 2
    middle_share, joint_share = 0.3, (0.1 if joint else 0.0)
    pair_share = round((1.0 - middle_share - joint_share) / pairs, 6)
    stages = [Stage(name="middle", steps_fraction=middle_share, train=("middle",), objective="middle")]
    objectives = {"middle": middle_objective}
    for k in range(1, pairs + 1):
        share = pair_share if k < pairs or joint else round(1.0 - middle_share - pair_share * (pairs - 1), 6)
        stages.append(Stage(name=f"pair{k}", steps_fraction=share, train=(f"pair{k}",), objective=f"pair{k}"))
        objectives[f"pair{k}"] = pair_objective(k)
    if joint:
        # The last stage takes what is left (up to float rounding).
        rest = round(1.0 - middle_share - pair_share * pairs, 6)
        stages.append(Stage(name="joint", steps_fraction=rest, train=("*",), objective="joint", lr_scale=0.1))
        objectives["joint"] = joint_objective
    return Recipe(
        stages=tuple(stages),
        objectives=objectives,
        default_weights={"l2": 1.0, "perceptual": 0.75, "pair": 1.0},
        needs_vgg=("perceptual",),
        vgg_layers=("relu2_2", "relu3_3"),
        frames=frames,
    )


RECIPE = make_recipe(7)
