"""VGG16 feature (perceptual) loss.

Johnson, Alahi, Fei-Fei, ECCV 2016; DeblurGAN (Kupyn et al. 2018) uses one layer around conv3_3 with
weight 100. The trunk is torchvision's VGG16 ``features``; its ImageNet weights are read from the file
torchvision would download, ``vgg16-397923af.pth`` in ``torch.hub.get_dir()/checkpoints``. Nothing is ever
downloaded: when the file is missing the constructor raises :class:`BlurtoolsError` naming the file and
the folder it belongs in.
"""

from __future__ import annotations

import logging
import os
from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from blurtools.errors import BlurtoolsError

log = logging.getLogger(__name__)

VGG16_FILE = "vgg16-397923af.pth"

# Index of each named layer inside torchvision's vgg16().features.
_VGG16_CFG = ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))


def _vgg16_layer_index() -> Dict[str, int]:
    idx, names = 0, {}
    for block, convs in _VGG16_CFG:
        for c in range(1, convs + 1):
            names[f"conv{block}_{c}"] = idx
            names[f"relu{block}_{c}"] = idx + 1
            idx += 2
        names[f"pool{block}"] = idx
        idx += 1
    return names


VGG16_LAYERS: Dict[str, int] = _vgg16_layer_index()

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg16_weights_path() -> str:
    """Where the ImageNet VGG16 weights must be: ``torch.hub.get_dir()/checkpoints/vgg16-397923af.pth``."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", VGG16_FILE)


def vgg16_features(upto: int = 30) -> nn.Sequential:
    """torchvision's ``vgg16().features`` layers 0..upto (same layout and state-dict keys), randomly initialised.

    Built here rather than through ``torchvision.models.vgg16`` so that no 100M-parameter classifier is
    allocated just to be thrown away.
    """
    layers = []
    cin = 3
    for block, convs in _VGG16_CFG:
        cout = min(64 * 2 ** (block - 1), 512)
        for _ in range(convs):
            conv = nn.Conv2d(cin, cout, 3, padding=1)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
            # Not in place: a tapped conv output must survive the ReLU that follows it.
            layers += [conv, nn.ReLU()]
            cin = cout
        layers.append(nn.MaxPool2d(2, 2))
        if len(layers) > upto:
            break
    return nn.Sequential(*layers[: upto + 1])


def _load_vgg16_features(pretrained: bool, upto: int) -> nn.Sequential:
    if not pretrained:
        return vgg16_features(upto)
    path = vgg16_weights_path()
    if not os.path.isfile(path):
        raise BlurtoolsError(
            f"{path}: VGG16 ImageNet weights missing; put {VGG16_FILE} in {os.path.dirname(path)} "
            "(the file torchvision downloads for vgg16(weights='IMAGENET1K_V1')), or set the loss "
            "weights that use it to 0")
    features = vgg16_features(upto)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        wanted = set(features.state_dict())
        feats = {k[len("features."):]: v for k, v in state.items()
                 if k.startswith("features.") and k[len("features."):] in wanted}
        features.load_state_dict(feats)
    except Exception as exc:  # a truncated or foreign file: say which one
        raise BlurtoolsError(f"{path}: cannot load VGG16 weights ({exc})") from exc
    log.debug("loaded VGG16 features 0..%d from %s", upto, path)
    return features


class VGGPerceptual(nn.Module):
    """Distance between VGG16 features of a prediction and a target.

    Args:
        layers: layer names to compare, e.g. ("relu2_2", "relu3_3"); any of conv{b}_{c}, relu{b}_{c},
            pool{b} of VGG16 (relu1_2, relu2_2, relu3_3, relu4_3 are the usual ones).
        pretrained: load the ImageNet weights from :func:`vgg16_weights_path` (raise BlurtoolsError when
            the file is absent); False gives a randomly initialised trunk (tests).
        criterion: "mse" (DeblurGAN, Johnson et al.) or "l1" between feature maps.
        layer_weights: one weight per layer (default 1 each); the loss is their weighted sum of means.

    Call: ``loss = vgg(pred, target)`` with pred, target (B, 3, H, W) RGB in [0, 1] (ImageNet mean/std
    normalisation happens inside); returns a 0-dim tensor. Gradients flow into ``pred`` only; the trunk is
    frozen and always in eval mode.

    Example::

        vgg = VGGPerceptual(layers=("relu3_3",), pretrained=False)
        loss = vgg(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))
    """

    def __init__(self, layers: Sequence[str] = ("relu2_2", "relu3_3"), pretrained: bool = True,
                 criterion: str = "mse", layer_weights: Sequence[float] = ()):
        super().__init__()
        layers = tuple(layers)
        if not layers:
            raise BlurtoolsError("VGGPerceptual: no layers given")
        unknown = [n for n in layers if n not in VGG16_LAYERS]
        if unknown:
            raise BlurtoolsError(f"VGGPerceptual: unknown VGG16 layer(s) {unknown}; known: {sorted(VGG16_LAYERS)}")
        if criterion not in ("mse", "l1"):
            raise BlurtoolsError(f"VGGPerceptual: criterion must be 'mse' or 'l1', got {criterion!r}")
        weights = tuple(float(w) for w in layer_weights) or (1.0,) * len(layers)
        if len(weights) != len(layers):
            raise BlurtoolsError(f"VGGPerceptual: {len(weights)} layer weights for {len(layers)} layers")
        self.layers: Tuple[str, ...] = layers
        self.layer_weights = weights
        self.criterion = criterion
        self._taps = {VGG16_LAYERS[n]: i for i, n in enumerate(layers)}
        last = max(self._taps)
        self.features = _load_vgg16_features(pretrained, last)
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.features.eval()
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "VGGPerceptual":
        # The trunk is a fixed feature extractor whatever mode the training loop sets.
        super().train(mode)
        self.features.eval()
        return self

    def extract(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Features of ``x`` ((B, 3, H, W) in [0, 1]) at ``self.layers``, in that order."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise BlurtoolsError(f"VGGPerceptual: expected (B, 3, H, W) RGB, got {tuple(x.shape)}")
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out = [None] * len(self.layers)
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self._taps:
                out[self._taps[i]] = h
        return tuple(out)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape:
            raise BlurtoolsError(f"VGGPerceptual: prediction {tuple(pred.shape)} and target "
                                 f"{tuple(target.shape)} differ in shape")
        fp = self.extract(pred)
        with torch.no_grad():
            ft = self.extract(target)
        dist = F.mse_loss if self.criterion == "mse" else F.l1_loss
        total = pred.new_zeros(())
        for w, a, b in zip(self.layer_weights, fp, ft):
            total = total + w * dist(a, b)
        return total
