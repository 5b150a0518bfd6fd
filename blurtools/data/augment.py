"""Joint augmentation of a blurry input and its sharp target frames.

Geometric transforms (random crop, horizontal/vertical flips, 90-degree rotations) are applied
identically to the input and to every target frame, so pixel (y, x) of the blurry image still corresponds
to pixel (y, x) of each frame. Time reversal reverses the order of the target frames: the blur of a
sequence played backwards is the same image, so the input is untouched. Input-only corruptions (Gaussian
and signal-dependent noise, re-quantisation) come last and touch the input alone.

Every random choice is drawn from a numpy Generator; :func:`sample_rng` gives each sample its own
deterministic generator from (seed, epoch, index), so the same sample gets the same augmentation in any
worker, on any DDP rank, and a different one next epoch.

Example:
    >>> aug = Augment(noise_sigma=(0.0, 0.02))
    >>> rng = sample_rng(seed=0, epoch=3, index=17)
    >>> blurry, sharp = aug(blurry, sharp, rng, patch=256)   # (3, 256, 256), (N, 3, 256, 256)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple, Union

import numpy as np
import torch

from blurtools.errors import BlurtoolsError

PatchSpec = Union[None, int, Tuple[int, int]]


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one sample in one epoch: independent streams for every (seed, epoch, index)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFFFFFFFFFF, int(epoch), int(index)])


def patch_size(patch: PatchSpec) -> Optional[Tuple[int, int]]:
    """Normalise a patch spec (None, P or (H, W)) to None or (H, W) with positive sides."""
    if patch is None:
        return None
    if isinstance(patch, (int, np.integer)):
        ph = pw = int(patch)
    else:
        try:
            ph, pw = (int(v) for v in patch)
        except (TypeError, ValueError):
            raise BlurtoolsError(f"patch must be an int or (height, width), got {patch!r}") from None
    if ph < 1 or pw < 1:
        raise BlurtoolsError(f"patch sides must be positive, got {ph}x{pw}")
    return ph, pw


def _fitting_patch(height: int, width: int, patch: PatchSpec) -> Tuple[int, int]:
    """(ph, pw) of ``patch`` (the whole image when None), checked to fit inside height x width."""
    size = patch_size(patch)
    if size is None:
        return height, width
    ph, pw = size
    if ph > height or pw > width:
        raise BlurtoolsError(f"image {height}x{width} is smaller than the patch {ph}x{pw}")
    return ph, pw


def random_crop_box(rng: np.random.Generator, height: int, width: int, patch: PatchSpec) -> Tuple[int, int, int, int]:
    """A uniformly random window (y, x, h, w) of size ``patch`` inside a height x width image.

    Raises:
        BlurtoolsError: when the image is smaller than the patch.
    """
    if patch_size(patch) is None:
        return 0, 0, height, width  # no draw: the random stream is the same as without a crop step
    ph, pw = _fitting_patch(height, width, patch)
    y = int(rng.integers(0, height - ph + 1))
    x = int(rng.integers(0, width - pw + 1))
    return y, x, ph, pw


def center_crop_box(height: int, width: int, patch: PatchSpec) -> Tuple[int, int, int, int]:
    """The centred window (y, x, h, w) of size ``patch`` (for validation: no randomness)."""
    ph, pw = _fitting_patch(height, width, patch)
    return (height - ph) // 2, (width - pw) // 2, ph, pw


@dataclass(frozen=True)
class Plan:
    """The drawn choices for one sample; apply with :meth:`apply` (pure: same plan, same output).

    rot90 = k quarter turns counter-clockwise (k in 0..3); noise_sigma / shot are the drawn noise levels
    (0 = none); noise_seed seeds the torch generator for the noise values.
    """

    hflip: bool = False
    vflip: bool = False
    rot90: int = 0
    reverse: bool = False
    noise_sigma: float = 0.0
    shot: float = 0.0
    quantize: int = 0
    noise_seed: int = 0

    def apply_joint(self, blurry: torch.Tensor, sharp: torch.Tensor) -> "tuple[torch.Tensor, torch.Tensor]":
        """Flips, rotation and time reversal: blurry (C, H, W), sharp (N, C, H, W), any dtype."""
        _check_pair(blurry, sharp)
        if self.hflip:
            blurry, sharp = blurry.flip(-1), sharp.flip(-1)
        if self.vflip:
            blurry, sharp = blurry.flip(-2), sharp.flip(-2)
        if self.rot90 % 4:
            blurry, sharp = torch.rot90(blurry, self.rot90, (-2, -1)), torch.rot90(sharp, self.rot90, (-2, -1))
        if self.reverse:
            sharp = sharp.flip(0)
        return blurry, sharp

    def apply_joint_hwc(self, blurry: np.ndarray, sharp: np.ndarray) -> "tuple[np.ndarray, np.ndarray]":
        """The same joint transforms on numpy arrays blurry (H, W, C), sharp (N, H, W, C), as views (no copy).

        Datasets transform the stored integers this way before one conversion to float, instead of
        copying float tensors once per flip.
        """
        if blurry.ndim != 3 or sharp.ndim != 4 or sharp.shape[1:] != blurry.shape:
            raise BlurtoolsError(f"augment: expected blurry (H, W, C) and sharp (N, H, W, C), got "
                                 f"{blurry.shape} and {sharp.shape}")
        if self.hflip:
            blurry, sharp = blurry[:, ::-1], sharp[:, :, ::-1]
        if self.vflip:
            blurry, sharp = blurry[::-1], sharp[:, ::-1]
        if self.rot90 % 4:
            # np.rot90 turns from the first axis towards the second, as torch.rot90 does.
            blurry, sharp = np.rot90(blurry, self.rot90, (0, 1)), np.rot90(sharp, self.rot90, (1, 2))
        if self.reverse:
            sharp = sharp[::-1]
        return blurry, sharp

    def apply_input(self, blurry: torch.Tensor) -> torch.Tensor:
        """Input-only corruptions on a float (C, H, W) image in [0, 1]; returns a new tensor in [0, 1]."""
        if not blurry.is_floating_point():
            raise BlurtoolsError(f"input corruptions need a float image, got {blurry.dtype}")
        if self.noise_sigma <= 0 and self.shot <= 0 and not self.quantize:
            return blurry
        out = blurry
        if self.noise_sigma > 0 or self.shot > 0:
            gen = torch.Generator(device="cpu").manual_seed(self.noise_seed)
            z = torch.randn(blurry.shape, generator=gen, dtype=torch.float32).to(blurry.device, blurry.dtype)
            # Poisson-Gaussian in the Gaussian approximation: variance = shot * signal + sigma^2.
            std = (self.shot * blurry.clamp(min=0) + self.noise_sigma ** 2).sqrt()
            out = blurry + std * z
        out = out.clamp(0, 1)
        if self.quantize:
            peak = float(2 ** self.quantize - 1)
            out = (out * peak).round() / peak
        return out

    def apply(self, blurry: torch.Tensor, sharp: torch.Tensor) -> "tuple[torch.Tensor, torch.Tensor]":
        """Joint transforms, then input-only corruptions (float tensors in [0, 1])."""
        blurry, sharp = self.apply_joint(blurry, sharp)
        return self.apply_input(blurry), sharp


def _check_pair(blurry: torch.Tensor, sharp: torch.Tensor) -> None:
    if blurry.dim() != 3 or sharp.dim() != 4:
        raise BlurtoolsError(f"augment: expected blurry (C, H, W) and sharp (N, C, H, W), got "
                             f"{tuple(blurry.shape)} and {tuple(sharp.shape)}")
    if sharp.shape[1:] != blurry.shape:
        raise BlurtoolsError(f"augment: blurry {tuple(blurry.shape)} and sharp frames {tuple(sharp.shape[1:])} differ")


def _range(value: "float | Tuple[float, float]", name: str) -> Tuple[float, float]:
    lo, hi = (value, value) if isinstance(value, (int, float)) else tuple(value)
    if lo < 0 or hi < lo:
        raise BlurtoolsError(f"augment: {name} must be a value >= 0 or a range (lo, hi) with 0 <= lo <= hi, got {value!r}")
    return float(lo), float(hi)


@dataclass(frozen=True)
class Augment:
    """Which augmentations to draw, and how strong.

    Args:
        hflip, vflip: mirror left-right / top-bottom with probability 1/2 each.
        rot90: rotate by k quarter turns, k uniform in 0..3; on a non-square image only k in {0, 2}
            (so every sample of a batch keeps its shape).
        time_reverse: reverse the target frames with probability 1/2 (the blur is unchanged).
        noise_sigma: std of additive Gaussian noise on the input, a value or a range (lo, hi) drawn
            uniformly per sample, in [0, 1] units (0.01 = 2.55 levels of 255).
        shot: signal-dependent (shot) noise variance factor, a value or a range: var = shot * x + sigma^2.
        noise_prob: probability that a sample gets noise at all.
        quantize: 0 (off) or 8/16: round the corrupted input back to that bit depth, like a saved file.

    Example:
        >>> aug = Augment(noise_sigma=(0, 0.02), quantize=8)
        >>> plan = aug.draw(sample_rng(0, 0, 5), 256, 256)
        >>> blurry, sharp = plan.apply(blurry, sharp)
    """

    hflip: bool = True
    vflip: bool = True
    rot90: bool = True
    time_reverse: bool = True
    noise_sigma: "float | Tuple[float, float]" = 0.0
    shot: "float | Tuple[float, float]" = 0.0
    noise_prob: float = 1.0
    quantize: int = 0

    def __post_init__(self) -> None:
        _range(self.noise_sigma, "noise_sigma")
        _range(self.shot, "shot")
        if not 0 <= self.noise_prob <= 1:
            raise BlurtoolsError(f"augment: noise_prob must be in [0, 1], got {self.noise_prob}")
        if self.quantize not in (0, 8, 16):
            raise BlurtoolsError(f"augment: quantize must be 0, 8 or 16, got {self.quantize}")

    @classmethod
    def none(cls) -> "Augment":
        """No augmentation at all (random crops still come from the dataset's ``patch``)."""
        return cls(hflip=False, vflip=False, rot90=False, time_reverse=False)

    def draw(self, rng: np.random.Generator, height: int, width: int) -> Plan:
        """Draw one sample's choices for an image of height x width (after cropping).

        The draws happen in a fixed order whatever is switched on, so turning one augmentation off does
        not change the others' choices for the same (seed, epoch, index).
        """
        u = rng.random(6)
        k = int(rng.integers(0, 4))
        noise_seed = int(rng.integers(0, 2 ** 63 - 1))
        if self.rot90 and height != width:
            k = 2 * (k % 2)  # 0 or 180 degrees: a quarter turn would change the shape
        lo, hi = _range(self.noise_sigma, "noise_sigma")
        slo, shi = _range(self.shot, "shot")
        noisy = u[4] < self.noise_prob
        return Plan(
            hflip=self.hflip and u[0] < 0.5,
            vflip=self.vflip and u[1] < 0.5,
            rot90=k if self.rot90 else 0,
            reverse=self.time_reverse and u[2] < 0.5,
            noise_sigma=(lo + (hi - lo) * u[3]) if noisy else 0.0,
            shot=(slo + (shi - slo) * u[5]) if noisy else 0.0,
            quantize=self.quantize,
            noise_seed=noise_seed,
        )

    def __call__(self, blurry: torch.Tensor, sharp: torch.Tensor, rng: np.random.Generator,
                 patch: PatchSpec = None) -> "tuple[torch.Tensor, torch.Tensor]":
        """Random crop (when ``patch``), joint transforms, then input-only corruptions.

        Args:
            blurry: (C, H, W) float in [0, 1]. sharp: (N, C, H, W) float in [0, 1], time order.
            rng: the sample's generator (:func:`sample_rng`).
            patch: crop size P or (H, W); None keeps the whole image.
        Returns:
            (blurry, sharp) of the same layout, cropped and transformed.
        """
        _check_pair(blurry, sharp)
        y, x, h, w = random_crop_box(rng, blurry.shape[-2], blurry.shape[-1], patch)
        blurry, sharp = blurry[:, y:y + h, x:x + w], sharp[:, :, y:y + h, x:x + w]
        return self.draw(rng, h, w).apply(blurry, sharp)
