"""``deblur --save-kernels``: the kernel basis and mixing maps a kernel-basis network estimates, per input.

Two networks estimate a blur as K basis kernels and K per-pixel mixing maps: Carbajal et al.'s released
two-head network (:class:`~blurtools.models.two_heads.TwoHeadsNet`, correlation kernels) and the project's
own :class:`~blurtools.models.kernel_basis.KernelBasisNet` (point-spread functions). For each input image
the whole image goes through the network's ``estimate`` (the kernel head averages over the whole image)
and :func:`blurtools.io.kernel_maps.write_kernel_maps` writes ``STEM.kernels.npy`` (K, k, k),
``STEM.mixing.npy`` (K, H, W), ``STEM.kernels.json`` and the picture ``STEM.kernels.png``.

Example::

    check_kernel_model(predictor)                        # UsageError for a network without a kernel basis
    write_estimates(predictor, images, ["a", "b"], Path("kernels"), record)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Sequence

import torch

from blurtools.errors import UsageError
from blurtools.infer.loading import Predictor
from blurtools.io.kernel_maps import write_kernel_maps
from blurtools.models.kernel_basis import KernelBasisNet
from blurtools.models.two_heads import TwoHeadsNet

log = logging.getLogger(__name__)

__all__ = ["KERNEL_MODELS", "check_kernel_model", "write_estimates"]

# the networks that estimate a kernel basis, and the orientation of their kernels
KERNEL_MODELS = {TwoHeadsNet: "correlation", KernelBasisNet: "convolution"}


def check_kernel_model(predictor: Predictor) -> str:
    """The kernels' orientation of the predictor's network; UsageError when it estimates no kernel basis."""
    for cls, orientation in KERNEL_MODELS.items():
        if isinstance(predictor.model, cls):
            return orientation
    names = ", ".join(sorted(c.__name__ for c in KERNEL_MODELS))
    raise UsageError(f"--save-kernels: {predictor.name} estimates no kernel basis; it needs the weights of a "
                     f"kernel-basis network ({names}, e.g. the released TwoHeads.pkl)")


def write_estimates(predictor: Predictor, images: torch.Tensor, stems: Sequence[str], folder: Path,
                    record: Dict[str, Any]) -> List[Path]:
    """Estimate kernels and mixing for each image of ``images`` and write them as ``folder/stem.*``.

    Args:
        predictor: a predictor whose network :func:`check_kernel_model` accepts.
        images: (B, C, H, W) in [0, 1], C = 1 (gray, estimated as RGB) or 3; any device.
        stems: B output names (may contain ``/`` for sub-folders).
        record: provenance (tool, version, options, model) stored beside each estimate.

    Returns:
        Every path written.
    """
    orientation = check_kernel_model(predictor)
    if len(stems) != images.shape[0]:
        raise UsageError(f"write_estimates: {len(stems)} names for {images.shape[0]} images")
    rgb = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
    written: List[Path] = []
    for i, stem in enumerate(stems):
        x = rgb[i:i + 1].to(predictor.device).float()
        with torch.inference_mode():
            kernels, mixing = predictor.model.estimate(x)
        written += write_kernel_maps(folder, stem, rgb[i].cpu(), kernels[0].float().cpu().numpy(),
                                     mixing[0].float().cpu().numpy(), orientation, {**record, "source": stem})
        log.debug("%s: kernel basis %s and mixing %s written to %s", stem, tuple(kernels.shape[1:]),
                  tuple(mixing.shape[1:]), folder)
    return written
