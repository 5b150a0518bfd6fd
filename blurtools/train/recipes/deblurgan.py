"""Training recipe of DeblurGAN with a WGAN-GP critic (Kupyn et al. CVPR 2018).

One stage. Before every generator update the critic is updated ``critic_steps`` = 5 times (DeblurGAN's
default) with the WGAN-GP loss, gradient penalty weight ``gp`` = 10, and label noise: for a fraction
``label_noise`` = 0.1 of the samples of each critic batch the real and the restored image swap roles (that
sample's restored image is scored as real and its sharp image as fake).

Generator loss = adv * (-mean D(G(blurry))) + perceptual * VGG(G(blurry), sharp) + l1 * L1 + mse * MSE
(``mse`` 0 here; the DeblurGAN-v2 recipe uses the same objectives with its own weights).
The content loss is DeblurGAN's perceptual loss (VGG relu3_3; DeblurGAN took VGG19 conv3_3) with weight
100. Without ImageNet VGG weights, train with ``--loss-weight perceptual=0 --loss-weight l1=100`` (or
another L1 weight). ``gp`` and ``label_noise`` live in the weights so they can be overridden the same way.
"""

from __future__ import annotations

from typing import Dict

import torch
from torch import nn

from blurtools.errors import BlurtoolsError
from blurtools.losses.adversarial import wgan_generator_loss, wgan_gp_critic_loss
from blurtools.losses.pixel import l1, mse
from blurtools.models.deblurgan import DeblurGANCritic
from blurtools.train.recipe import ObjectiveContext, Recipe, Stage, frozen
from blurtools.train.recipes.dm import middle_target, perceptual_term


def make_critic(model_args: dict) -> nn.Module:
    """The PatchGAN critic, as wide as the generator (``width``, 64 by default)."""
    return DeblurGANCritic(width=int(model_args.get("width", 64)))




def _critic(ctx: ObjectiveContext, name: str) -> nn.Module:
    if ctx.critic is None:
        raise BlurtoolsError(f"{name}: the deblurgan recipe needs a critic in the objective context")
    return ctx.critic


def generator_objective(model, batch, ctx: ObjectiveContext) -> Dict[str, torch.Tensor]:
    target = middle_target(batch, "deblurgan")
    pred = model(batch["blurry"])
    w = ctx.weights
    out: Dict[str, torch.Tensor] = {}
    loss = pred.new_zeros(())
    if w.get("adv", 0.0) > 0:
        critic = _critic(ctx, "deblurgan")
        with frozen(critic):
            out["adv"] = wgan_generator_loss(critic, pred)
        loss = loss + w["adv"] * out["adv"]
    if w.get("perceptual", 0.0) > 0:
        out["perceptual"] = perceptual_term(pred, target, ctx, "deblurgan")
        loss = loss + w["perceptual"] * out["perceptual"]
    for key, fn in (("l1", l1), ("mse", mse)):
        if w.get(key, 0.0) > 0:
            out[key] = fn(pred, target)
            loss = loss + w[key] * out[key]
    out["loss"] = loss
    return out


def critic_objective(model, critic, batch, ctx: ObjectiveContext) -> Dict[str, torch.Tensor]:
    target = middle_target(batch, "deblurgan critic")
    with torch.no_grad():
        fake = model(batch["blurry"])
    return wgan_gp_critic_loss(critic, target, fake, gp_weight=ctx.weights.get("gp", 10.0),
                               label_noise=ctx.weights.get("label_noise", 0.0), generator=ctx.generator)


RECIPE = Recipe(
    stages=(Stage(name="adversarial", steps_fraction=1.0, objective="generator", critic_steps=5),),
    objectives={"generator": generator_objective},
    default_weights={"adv": 1.0, "perceptual": 100.0, "l1": 0.0, "mse": 0.0, "gp": 10.0, "label_noise": 0.1},
    critic=make_critic,
    critic_objective=critic_objective,
    needs_vgg=("perceptual",),
    vgg_layers=("relu3_3",),
    critic_weight="adv",
)
