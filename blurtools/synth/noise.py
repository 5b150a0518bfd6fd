"""Sensor realism for synthetic blur, after RSBlur (Rim et al. 2022): saturation and Poisson-Gaussian noise.

Both act on the blurry image in linear light, before the camera response maps it back:

- Saturation: a real long exposure clips where the scene is brighter than the sensor's range, but frames
  averaged from an 8-bit video only reach the clipped value 1. RSBlur restores the missing energy: the
  pixels saturated in the sharp frames (every channel at the top code) form a mask per frame; the mean of
  those masks over the exposure, scaled by ``a ~ U(0.25, 1.75)``, is added and the result clipped to 1.
- Noise: ``y = K * Poisson(x / K) + N(0, s)`` with shot gain ``K ~ U(0.5, 1.5) * b1`` and read-noise
  variance ``s ~ U(0.5, 1.5) * b2`` (the Poisson-Gaussian model, variance ``K x + s``; b2 is taken as a
  variance as in the usual camera-noise calibration), then clipped to [0, 1]. RSBlur also re-mosaics
  and uses camera colour matrices; this module keeps the noise per RGB channel in linear light.

Presets (b1, b2) of Rim et al. 2022 (RSBlur): ``realblur`` (8.8915e-5, 2.9430e-5), ``rsblur`` (1e-4, 9.1504e-4).
Every random draw comes from the ``generator`` passed in, so a sample's noise depends only on its seed.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch

from blurtools.errors import BlurtoolsError, UsageError

NOISE_PRESETS: Dict[str, Tuple[float, float]] = {
    "realblur": (8.8915e-5, 2.9430e-5),
    "rsblur": (1e-4, 9.1504e-4),
}


def _uniform(lo: float, hi: float, generator: torch.Generator) -> float:
    return float(lo + (hi - lo) * torch.rand((), generator=generator, dtype=torch.float64))


def saturation_mask(frames: torch.Tensor, level: float = 1.0 - 0.5 / 255.0) -> torch.Tensor:
    """Mean over time of the masks of saturated pixels (every channel >= ``level``).

    Args:
        frames: (N, 3, H, W) display (or linear) values in [0, 1]; saturation is the same in both.
    Returns:
        (1, H, W) float in [0, 1].
    """
    if frames.dim() != 4:
        raise BlurtoolsError(f"saturation_mask: expected (N, 3, H, W), got {tuple(frames.shape)}")
    return (frames.min(dim=1).values >= level).to(frames.dtype if frames.is_floating_point() else torch.float32).mean(dim=0, keepdim=True)


def add_saturation(linear: torch.Tensor, mask: torch.Tensor, generator: torch.Generator,
                   scale: Tuple[float, float] = (0.25, 1.75)) -> Tuple[torch.Tensor, float]:
    """``clip(linear + a * mask, 0, 1)`` with ``a ~ U(scale)``; returns the image and ``a``.

    Args:
        linear: (3, H, W) blurry image in linear light. mask: (1, H, W) from :func:`saturation_mask`.
    """
    a = _uniform(scale[0], scale[1], generator)
    return (linear + a * mask.to(linear.device, linear.dtype)).clamp(0.0, 1.0), a


def add_poisson_gaussian(linear: torch.Tensor, preset: str, generator: torch.Generator
                         ) -> Tuple[torch.Tensor, Dict[str, float]]:
    """Poisson-Gaussian sensor noise on a linear image, parameters drawn around a preset.

    Args:
        linear: (..., H, W) in [0, 1], linear light, any device (noise is drawn on the CPU with
            ``generator`` so results do not depend on the device).
        preset: ``realblur`` or ``rsblur``.
    Returns:
        (noisy image clipped to [0, 1], {"shot_gain": K, "read_variance": s}).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> y, p = add_poisson_gaussian(torch.full((3, 8, 8), 0.5), "rsblur", g)
    """
    if preset not in NOISE_PRESETS:
        raise UsageError(f"--noise {preset}: choose one of {', '.join(NOISE_PRESETS)}")
    b1, b2 = NOISE_PRESETS[preset]
    k = _uniform(0.5, 1.5, generator) * b1
    s = _uniform(0.5, 1.5, generator) * b2
    x = linear.detach().to("cpu", torch.float64).clamp(0.0, 1.0)
    shot = torch.poisson(x / k, generator=generator) * k
    read = torch.randn(x.shape, generator=generator, dtype=torch.float64) * s ** 0.5
    y = (shot + read).clamp(0.0, 1.0).to(linear.device, linear.dtype)
    return y, {"shot_gain": k, "read_variance": s}


def sample_generator(seed: int, sample_id: str) -> torch.Generator:
    """A CPU generator seeded from (run seed, sample id): a sample's randomness is the same in every
    run, shard or resume, whatever else the run does."""
    import hashlib

    digest = hashlib.sha256(f"{int(seed)}:{sample_id}".encode("utf-8")).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


def apply_realism(linear: torch.Tensor, sharp_display: Optional[torch.Tensor], noise: Optional[str],
                  saturation: bool, generator: torch.Generator) -> Tuple[torch.Tensor, Dict[str, float]]:
    """Saturation (when asked, needs the sharp frames) then noise (when ``noise`` names a preset).

    Returns:
        (image in linear light, the drawn parameters to record with the sample).
    """
    params: Dict[str, float] = {}
    if saturation:
        if sharp_display is None:
            raise BlurtoolsError("saturation synthesis needs the sharp frames")
        linear, params["saturation_gain"] = add_saturation(linear, saturation_mask(sharp_display), generator)
    if noise:
        linear, p = add_poisson_gaussian(linear, noise, generator)
        params.update(p)
    return linear, params
