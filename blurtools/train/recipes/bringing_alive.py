"""Training recipe of "Bringing Alive Blurred Moments" (``bringing-alive``; Purohit et al. CVPR 2019).

Stages, in order:

1. ``deblur`` (``dm``): the deblurring module on its own, L1 to the middle sharp frame (``deblur``).
2. ``autoencoder`` (``video_encoder`` + ``decoder``): the recurrent video autoencoder on the sharp
   sequences alone: the encoder reads the N frames, the decoder remakes them by warping the middle frame.
   Loss: multi-scale L1 (``reconstruction``) between the middle frame warped by the flow of each scale
   and the ground-truth frame average-pooled to that scale, scale weights ``scale1`` .. ``scale8``
   (1, 0.5, 0.25, 0.125 here; the paper's values are unconfirmed), plus ``tv`` = mu = 0.02 times the
   total variation of the flows of every scale.
3. ``blur_encoder`` (BIE, the decoder frozen): the BIE maps [blurry, middle frame] into the decoder's
   state; order-invariant loss (``order_invariant``) between the decoded and the true sequences, since a
   blurry image does not tell the direction of time, plus the flows' TV. ``latent`` (0 by default)
   adds an L2 pull of the BIE state towards the frozen RVE's state of the true sequence.
4. ``finetune`` (BIE + decoder at lr 2e-5): the same objective.

Stages 3 and 4 feed the ground-truth middle frame to the BIE and the decoder, as the paper does during
training (the DM's estimate replaces it only at test time, in ``forward``), so the video networks learn
motion, not deblurring, and do not depend on the DM's progress. The data may carry any number of frames.
"""

from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F

from blurtools.losses.order_invariant import order_invariant_loss
from blurtools.losses.pixel import l1
from blurtools.losses.smoothness import multiscale_total_variation
from blurtools.models.bringing_alive import warp
from blurtools.train.recipe import ObjectiveContext, Recipe, Stage
from blurtools.train.recipes.dm import middle_target

SCALE_KEYS = ("scale1", "scale2", "scale4", "scale8")


def _crop(x: torch.Tensor, hw: Tuple[int, int], factor: int) -> torch.Tensor:
    return x[..., :math.ceil(hw[0] / factor), :math.ceil(hw[1] / factor)]


def multiscale_reconstruction(centre: torch.Tensor, flows: Sequence[torch.Tensor], target: torch.Tensor,
                              hw: Tuple[int, int], weights: Sequence[float]) -> torch.Tensor:
    """Weighted L1 over scales between ``centre`` warped by each flow and the pooled target frames.

    Args:
        centre: (B, 3, H, W) padded middle frame; flows: [(B, N, 2, H/s, W/s) for s = 1, 2, 4, 8];
        target: (B, N, 3, H, W) padded ground truth; hw: the unpadded size (the loss ignores padding).
    """
    b, n = target.shape[:2]
    total = centre.new_zeros(())
    for i, (flow, wgt) in enumerate(zip(flows, weights)):
        if wgt <= 0:
            continue
        f = 2 ** i
        c = F.avg_pool2d(centre, f) if f > 1 else centre
        t = F.avg_pool2d(target.flatten(0, 1), f) if f > 1 else target.flatten(0, 1)
        c = c.unsqueeze(1).expand(b, n, *c.shape[1:]).flatten(0, 1)
        warped = warp(c, flow.flatten(0, 1))
        total = total + wgt * l1(_crop(warped, hw, f), _crop(t, hw, f))
    return total


def _scale_weights(ctx: ObjectiveContext) -> List[float]:
    return [ctx.weights.get(k, 0.0) for k in SCALE_KEYS]


def deblur_objective(model, batch, ctx: ObjectiveContext) -> Dict[str, torch.Tensor]:
    """The DM: L1 between dm(blurry) and the middle sharp frame."""
    target = middle_target(batch, "bringing-alive deblur")
    term = l1(model.dm(batch["blurry"]), target)
    return {"loss": ctx.weights.get("deblur", 1.0) * term, "deblur": term.detach()}


def autoencoder_objective(model, batch, ctx: ObjectiveContext) -> Dict[str, torch.Tensor]:
    """RVE + RVD on the sharp frames: multi-scale warping L1 + mu * TV of the flows."""
    middle_target(batch, "bringing-alive autoencoder")
    sharp, hw = model.pad(batch["sharp"])
    n = sharp.shape[1]
    centre = sharp[:, n // 2]
    _, flows = model.decoder(model.video_encoder(sharp), centre, n)
    w = ctx.weights
    rec = multiscale_reconstruction(centre, flows, sharp, hw, _scale_weights(ctx))
    tv = multiscale_total_variation(flows)
    loss = w.get("reconstruction", 1.0) * rec + w.get("tv", 0.0) * tv
    return {"loss": loss, "reconstruction": rec.detach(), "tv": tv.detach()}


def blur_objective(model, batch, ctx: ObjectiveContext) -> Dict[str, torch.Tensor]:
    """BIE (+ decoder when it is trained): order-invariant loss of the decoded video + mu * TV (+ latent)."""
    middle_target(batch, "bringing-alive blur encoder")
    h, w_ = batch["blurry"].shape[-2:]
    blurry, _ = model.pad(batch["blurry"])
    sharp, _ = model.pad(batch["sharp"])
    n = sharp.shape[1]
    centre = sharp[:, n // 2]
    state = model.blur_encoder(blurry, centre)
    frames, flows = model.decoder(state, centre, n)
    w = ctx.weights
    oi = order_invariant_loss(frames[..., :h, :w_], batch["sharp"])
    tv = multiscale_total_variation(flows)
    out = {"order_invariant": oi.detach(), "tv": tv.detach()}
    loss = w.get("order_invariant", 1.0) * oi + w.get("tv", 0.0) * tv
    if w.get("latent", 0.0) > 0:
        with torch.no_grad():
            target_h, target_c = model.video_encoder(sharp)
        latent = F.mse_loss(state[0], target_h) + F.mse_loss(state[1], target_c)
        out["latent"] = latent.detach()
        loss = loss + w["latent"] * latent
    out["loss"] = loss
    return out


RECIPE = Recipe(
    stages=(
        Stage(name="deblur", steps_fraction=0.25, train=("dm",), objective="deblur"),
        Stage(name="autoencoder", steps_fraction=0.35, train=("video_encoder", "decoder"), objective="autoencoder"),
        Stage(name="blur_encoder", steps_fraction=0.25, train=("blur_encoder",), objective="blur"),
        Stage(name="finetune", steps_fraction=0.15, train=("blur_encoder", "decoder"), objective="blur", lr=2e-5),
    ),
    objectives={"deblur": deblur_objective, "autoencoder": autoencoder_objective, "blur": blur_objective},
    default_weights={"deblur": 1.0, "reconstruction": 1.0, "tv": 0.02, "scale1": 1.0, "scale2": 0.5,
                     "scale4": 0.25, "scale8": 0.125, "order_invariant": 1.0, "latent": 0.0},
    frames=None,
)
