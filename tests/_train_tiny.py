"""Tiny real models, recipes and data for the training-engine tests (imported by tests/test_train_*.py and
run as a torchrun entry point by the DDP test).

``python tests/_train_tiny.py train --model tiny ...`` runs the real ``blurtools train`` command with the
tiny models registered, so the CLI can be tested under torchrun before (and independently of) the real
architectures.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from blurtools.io.sampleset import SampleSetWriter  # noqa: E402
from blurtools.models.contract import Model  # noqa: E402
from blurtools.losses.adversarial import wgan_generator_loss, wgan_gp_critic_loss  # noqa: E402
from blurtools.train.recipe import Recipe, Stage  # noqa: E402


class TinyNet(Model):
    """A small residual conv net following the model contract (image kind)."""

    kind = "image"
    frames = None
    pad_multiple = 1
    receptive_field = 7

    def __init__(self, width: int = 8, depth: int = 2, dropout: float = 0.0, norm: bool = False):
        super().__init__()
        self.head = nn.Conv2d(3, width, 3, padding=1)
        # dropout draws on the global torch RNG (resume must restore it); batch norm keeps running statistics
        # per process (DDP replicas must still end identical)
        self.body = nn.Sequential(*[nn.Sequential(nn.Conv2d(width, width, 3, padding=1),
                                                  nn.BatchNorm2d(width) if norm else nn.Identity(), nn.ReLU(),
                                                  nn.Dropout(dropout)) for _ in range(depth)])
        self.tail = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, blurry: torch.Tensor) -> torch.Tensor:
        return blurry + self.tail(self.body(F.relu(self.head(blurry))))


class TinyVideo(Model):
    """A small conv net producing ``frames`` frames (video kind)."""

    kind = "video"
    frames = 3
    pad_multiple = 1
    receptive_field = 5

    def __init__(self, width: int = 8, frames: int = 3):
        super().__init__()
        self.frames = frames
        self.body = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 3 * frames, 3, padding=1))

    def forward(self, blurry: torch.Tensor) -> torch.Tensor:
        b, _, h, w = blurry.shape
        return blurry[:, None] + self.body(blurry).view(b, self.frames, 3, h, w)


class TinyCritic(nn.Module):
    def __init__(self, width: int = 8):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _middle(batch: Dict[str, torch.Tensor]) -> torch.Tensor:
    return batch["sharp"][:, batch["sharp"].shape[1] // 2]


def l1_objective(model, batch, ctx):
    pred = model(batch["blurry"])
    l1 = (pred - _middle(batch)).abs().mean()
    out = {"l1": l1, "loss": ctx.weights.get("l1", 1.0) * l1}
    if ctx.weights.get("perceptual", 0.0) > 0:
        out["perceptual"] = ctx.perceptual(pred, _middle(batch))
        out["loss"] = out["loss"] + ctx.weights["perceptual"] * out["perceptual"]
    return out


def staged_objective(model, batch, ctx):
    # Calls the sub-modules directly, as multi-network recipes do, so DDP must see calls inside forward.
    feat = F.relu(model.head(batch["blurry"]))
    pred = batch["blurry"] + model.tail(model.body(feat))
    return {"loss": (pred - _middle(batch)).square().mean()}


def video_objective(model, batch, ctx):
    pred = model(batch["blurry"])
    return {"loss": (pred - batch["sharp"]).abs().mean()}


def generator_objective(model, batch, ctx):
    pred = model(batch["blurry"])
    l1 = (pred - _middle(batch)).abs().mean()
    adv = wgan_generator_loss(ctx.critic, pred)
    return {"loss": ctx.weights["l1"] * l1 + ctx.weights["adv"] * adv, "l1": l1, "adv": adv}


def critic_objective(model, critic, batch, ctx):
    with torch.no_grad():
        fake = model(batch["blurry"])
    return wgan_gp_critic_loss(critic, _middle(batch), fake, gp_weight=10.0, label_noise=0.1, generator=ctx.generator)


TINY = Recipe(stages=(Stage("main", 1.0),), objectives={"main": l1_objective},
              default_weights={"l1": 1.0, "perceptual": 0.0}, needs_vgg=("perceptual",), vgg_layers=("relu1_2",))
STAGED = Recipe(
    stages=(Stage("head", 0.4, train=("head", "body"), objective="s"),
            Stage("tail", 0.3, train=("tail",), objective="s", lr_scale=0.5),
            Stage("all", 0.3, objective="s", lr=3e-4)),
    objectives={"s": staged_objective})
VIDEO = Recipe(stages=(Stage("main", 1.0),), objectives={"main": video_objective}, frames=3)
ADVERSARIAL = Recipe(stages=(Stage("adv", 1.0, critic_steps=2),), objectives={"main": generator_objective},
                     default_weights={"l1": 1.0, "adv": 0.01}, critic=lambda args: TinyCritic(args["width"]),
                     critic_objective=critic_objective)

MODELS = {"tiny": (TinyNet, TINY), "tiny-staged": (TinyNet, STAGED), "tiny-video": (TinyVideo, VIDEO),
          "tiny-gan": (TinyNet, ADVERSARIAL)}
ARCHS = {"tiny": TinyNet, "tiny-staged": TinyNet, "tiny-video": TinyVideo, "tiny-gan": TinyNet}


def make_set(root: "str | Path", samples: int = 6, frames: int = 3, size: int = 24, seed: int = 0) -> Path:
    """A sample set of smooth random images moving sideways; blurry = mean of the sharp frames."""
    g = torch.Generator().manual_seed(seed)
    writer = SampleSetWriter(root, tool="test", options={"seed": seed, "frames": frames, "size": size})
    for i in range(samples):
        base = F.interpolate(torch.rand(1, 3, size // 4 + 2, size // 4 + 2 + frames, generator=g), scale_factor=4,
                             mode="bilinear", align_corners=False)[0]
        sharp = [base[:, :size, k:k + size].clamp(0, 1) for k in range(frames)]
        blurry = torch.stack(sharp).mean(0)
        writer.add(f"s{i:03d}", blurry, sharp)
    return Path(root)


def install(setitem=None) -> None:
    """Register the tiny models with the model tables the training engine looks names up in.

    ``setitem`` is pytest's ``monkeypatch.setitem`` (undone after the test); None sets them for good (the
    process run by the torchrun test).
    """
    from blurtools.models import MODELS as REGISTRY
    from blurtools.models import ModelSpec
    from blurtools.train.recipes import RECIPES

    def put(table, key, value):
        table[key] = value

    setitem = setitem or put
    for name, (cls, recipe) in MODELS.items():
        setitem(REGISTRY, name, ModelSpec(name, cls, recipe=name))
        setitem(RECIPES, name, recipe)


if __name__ == "__main__":
    install()
    from blurtools.cli.main import app

    app(prog_name="blurtools")
