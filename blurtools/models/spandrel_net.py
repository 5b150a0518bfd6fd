"""Other published deblurring networks, as spandrel recognises them from their state dicts.

spandrel (MIT; https://github.com/chaiNNer-org/spandrel) detects an architecture and its hyperparameters from
a state dict's key names and shapes. Of the architectures in its permissively licensed core, blurtools takes
the motion-deblurring ones listed in :data:`DEBLUR_ARCHS` (NAFNet has its own model, :mod:`blurtools.models.nafnet`):

* FFTformer (Kong et al., "Efficient Frequency Domain-based Transformers for High-Quality Image Deblurring",
  CVPR 2023): GoPro / RealBlur releases; sides padded to a multiple of 32.
* Uformer (Wang et al., "Uformer: A General U-Shaped Transformer for Image Restoration", CVPR 2022): the
  GoPro deblurring release (and its denoisers, same layout); square inputs, sides a multiple of 128.

The wrapper pads the input right/bottom to the architecture's size requirement (reflect, then replicate
when the pad exceeds the side, as spandrel does), runs the network on RGB in [0, 1] and crops back. The output
is not clamped.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from blurtools.errors import BlurtoolsError
from blurtools.models.contract import Model

__all__ = ["SpandrelNet", "DEBLUR_ARCHS", "find_architecture", "unwrap_state_dict", "spandrel_args", "detect_release"]

DEBLUR_ARCHS = ("FFTformer", "Uformer")


def _architecture(name: str) -> Any:
    from spandrel import MAIN_REGISTRY

    if name not in DEBLUR_ARCHS or name not in MAIN_REGISTRY:
        raise BlurtoolsError(f"spandrel architecture {name!r}: not one of the deblurring networks blurtools runs "
                             f"({', '.join(DEBLUR_ARCHS)})")
    return MAIN_REGISTRY[name].architecture


def unwrap_state_dict(obj: Mapping[str, Any]) -> Dict[str, Any]:
    """The state dict inside a published file: under ``params``/``params_ema``/``state_dict``/``model``/``net``
    when one of those holds a dict, without a ``module.`` prefix common to all keys."""
    from spandrel import canonicalize_state_dict

    return dict(canonicalize_state_dict(dict(obj)))


def find_architecture(obj: Mapping[str, Any]) -> "str | None":
    """The name in :data:`DEBLUR_ARCHS` whose spandrel detector accepts the file's state dict, or None."""
    sd = unwrap_state_dict(obj)
    if not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        return None
    for name in DEBLUR_ARCHS:
        try:
            if _architecture(name).detect(sd):
                return name
        except (BlurtoolsError, KeyError):
            continue
    return None


class SpandrelNet(Model):
    """A spandrel-built deblurring network of :data:`DEBLUR_ARCHS`, padded to its size requirement.

    Args:
        arch: the architecture's name (``"FFTformer"``, ``"Uformer"``).
        config: its hyperparameters (spandrel's ``hyperparameters``, as :func:`spandrel_args` reads them).

    Shapes: ``forward((B, 3, H, W) in [0, 1]) -> (B, 3, H, W)``, not clamped.
    """

    kind = "image"
    frames = None
    pad_multiple = 1
    receptive_field = None          # frequency-domain and window attention: every pixel sees the whole input

    def __init__(self, arch: str = "FFTformer", config: "Dict[str, Any] | None" = None):
        super().__init__()
        architecture = _architecture(arch)
        module_cls = _module_class(arch)
        try:
            self.net = module_cls(**dict(config or {}))
        except TypeError as exc:
            raise BlurtoolsError(f"{arch}: cannot build with {config} ({exc})") from None
        self.arch = arch
        self._requirement = _requirement(architecture, self.net)
        self.pad_multiple = self._requirement.multiple_of

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise BlurtoolsError(f"{self.arch}: expected (B, C, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        pw, ph = self._requirement.get_padding(w, h)
        if ph or pw:
            rh, rw = min(ph, h - 1), min(pw, w - 1)
            x = F.pad(x, (0, rw, 0, rh), mode="reflect")
            x = F.pad(x, (0, pw - rw, 0, ph - rh), mode="replicate")
        return self.net(x)[..., :h, :w]


def _module_class(arch: str) -> type:
    import importlib

    return getattr(importlib.import_module(f"spandrel.architectures.{arch}"), arch)


def _requirement(architecture: Any, net: nn.Module) -> Any:
    """The size requirement spandrel states for this architecture (it may depend on the hyperparameters)."""
    descriptor = architecture.load(net.state_dict())
    return descriptor.size_requirements


def _plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def spandrel_args(obj: Mapping[str, Any]) -> Tuple[Dict[str, Any], Dict[str, torch.Tensor]]:
    """``(model_args, state_dict)`` of :class:`SpandrelNet` for a published file spandrel recognises."""
    sd = unwrap_state_dict(obj)
    name = find_architecture(sd)
    if name is None:
        raise BlurtoolsError("not a deblurring network spandrel recognises")
    descriptor = _architecture(name).load(sd)
    # spandrel records classes among some defaults (Uformer's norm layers); those are the defaults, left out
    config = {k: v for k, v in dict(getattr(descriptor.model, "hyperparameters", {}) or {}).items() if _plain(v)}
    return {"arch": name, "config": config}, {f"net.{k}": v for k, v in descriptor.model.state_dict().items()}


def detect_release(obj: Mapping[str, Any]) -> bool:
    """Whether spandrel recognises one of :data:`DEBLUR_ARCHS` in a loaded file."""
    return find_architecture(obj) is not None
