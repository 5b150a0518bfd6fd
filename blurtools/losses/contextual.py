"""Contextual loss with a spatial term (compares images that are not aligned pixel to pixel).

Mechrez, Talmi, Zelnik-Manor, "The Contextual Loss for Image Transformation with Non-Aligned Data",
ECCV 2018, and Mechrez, Talmi, Shama, Zelnik-Manor, "Maintaining Natural Image Statistics with the
Contextual Loss", ACCV 2018 (the spatial term). Niu, Xia, Pan (Symmetry 2021, eqs 5-10) build their
contiguous blurry loss on it. With x_i the feature vectors of the prediction X and y_j those of the
target Y (one vector per position):

    d_ij   = 1 - cos(x_i - mu_y, y_j - mu_y)              cosine distance, centred on the target's mean
    d_ij  += w_s * |p_i - p_j|^2                           spatial term, p = position scaled to [0, 1]^2
    d~_ij  = d_ij / (min_k d_ik + eps)                     relative distance
    w_ij   = exp((1 - d~_ij) / h)                          h: band width
    CX_ij  = w_ij / sum_k w_ik
    CX     = (1 / |Y|) sum_j max_i CX_ij
    loss   = -log(CX)

CX is near 1 when every target feature has a distinct close match in the prediction, wherever it is
(up to the spatial term), so a shifted copy scores far better than a different image.
The inputs are feature maps (e.g. VGG activations) or raw image patches (:func:`image_patches`).
:func:`contiguous_blurry_loss` applies it to averages of consecutive frames (Niu et al.).
Spatial weight and band width are options (Niu et al.'s values are unconfirmed; defaults w_s = 0.1 as in
the contextual-bilateral variant, h = 0.5).

Example::

    >>> import torch
    >>> x = torch.rand(1, 3, 16, 16)
    >>> near = contextual_image_loss(torch.roll(x, 2, dims=3), x)
    >>> far = contextual_image_loss(torch.rand(1, 3, 16, 16), x)
    >>> bool(near < far)
    True
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from blurtools.errors import BlurtoolsError


def _positions(h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    ys = torch.linspace(0.0, 1.0, h, device=like.device, dtype=like.dtype)
    xs = torch.linspace(0.0, 1.0, w, device=like.device, dtype=like.dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gy.reshape(-1), gx.reshape(-1)), dim=1)  # (h*w, 2)


def _shrink(x: torch.Tensor, y: torch.Tensor, max_positions: int):
    # The distance matrix is (HW)^2 per sample: average-pool both maps until it fits.
    while x.shape[-2] * x.shape[-1] > max_positions and min(x.shape[-2:]) >= 2:
        x = F.avg_pool2d(x, 2)
        y = F.avg_pool2d(y, 2)
    return x, y


def contextual_loss(x: torch.Tensor, y: torch.Tensor, band_width: float = 0.5, spatial_weight: float = 0.1,
                    max_positions: int = 4096, eps: float = 1e-5) -> torch.Tensor:
    """Contextual loss -log CX(X, Y) of prediction features ``x`` against target features ``y``.

    Args:
        x: prediction features (B, C, H, W); gradients flow into it.
        y: target features (B, C, H, W), same shape.
        band_width: h > 0; smaller is more selective.
        spatial_weight: w_s >= 0, weight of the squared position distance added to the cosine distance.
        max_positions: both maps are 2x average-pooled until H*W is at most this (memory is
            B * (H*W)^2 floats).
        eps: the relative-distance guard.
    Returns:
        0-dim tensor, the batch mean of -log CX; >= 0, 0 only for a perfect one-to-one match.
    """
    if x.dim() != 4 or x.shape != y.shape:
        raise BlurtoolsError(f"contextual_loss: expected two (B, C, H, W) maps of one shape, got "
                             f"{tuple(x.shape)} and {tuple(y.shape)}")
    if band_width <= 0 or spatial_weight < 0:
        raise BlurtoolsError(f"contextual_loss: band_width must be > 0 and spatial_weight >= 0, got "
                             f"{band_width} and {spatial_weight}")
    x, y = _shrink(x, y, max_positions)
    b, c, h, w = x.shape
    mu = y.mean(dim=(2, 3), keepdim=True)
    xv = F.normalize((x - mu).reshape(b, c, h * w), dim=1, eps=1e-8)
    yv = F.normalize((y - mu).reshape(b, c, h * w), dim=1, eps=1e-8)
    dist = 1.0 - torch.bmm(xv.transpose(1, 2), yv)  # (B, HWx, HWy)
    if spatial_weight > 0:
        pos = _positions(h, w, x)
        dist = dist + spatial_weight * torch.cdist(pos, pos).pow(2).unsqueeze(0)
    dist = dist.clamp_min(0.0)
    rel = dist / (dist.min(dim=2, keepdim=True).values + eps)
    cx = torch.softmax((1.0 - rel) / band_width, dim=2)  # normalised over the targets k for each x_i
    score = cx.max(dim=1).values.mean(dim=1)  # best x_i for every y_j, averaged over j
    return -torch.log(score.clamp_min(1e-12)).mean()


def image_patches(img: torch.Tensor, size: int = 5, stride: int = 2) -> torch.Tensor:
    """Raw patches as feature vectors: (B, C, H, W) -> (B, C*size*size, H', W') (valid positions only)."""
    if img.dim() != 4:
        raise BlurtoolsError(f"image_patches: expected (B, C, H, W), got {tuple(img.shape)}")
    if size < 1 or stride < 1 or size > min(img.shape[-2:]):
        raise BlurtoolsError(f"image_patches: patch size {size} / stride {stride} do not fit an image of "
                             f"{img.shape[-2]}x{img.shape[-1]}")
    b, c, h, w = img.shape
    cols = F.unfold(img, kernel_size=size, stride=stride)
    ho = (h - size) // stride + 1
    wo = (w - size) // stride + 1
    return cols.reshape(b, c * size * size, ho, wo)


def contextual_image_loss(pred: torch.Tensor, target: torch.Tensor, patch: int = 5, stride: int = 2,
                          band_width: float = 0.5, spatial_weight: float = 0.1,
                          max_positions: int = 4096) -> torch.Tensor:
    """:func:`contextual_loss` on raw ``patch`` x ``patch`` image patches taken every ``stride`` pixels.

    Args:
        pred, target: (B, C, H, W) images (any range; both the same).
    """
    if pred.shape != target.shape:
        raise BlurtoolsError(f"contextual_image_loss: prediction {tuple(pred.shape)} and target "
                             f"{tuple(target.shape)} differ in shape")
    return contextual_loss(image_patches(pred, patch, stride), image_patches(target, patch, stride),
                           band_width=band_width, spatial_weight=spatial_weight, max_positions=max_positions)


def contiguous_windows(frames: int, window: int = 3, stride: int = 2) -> List[Tuple[int, int]]:
    """[start, stop) of the windows of ``window`` consecutive frames, every ``stride``, covering 0..frames-1.

    The last window is moved back to end at the last frame when the stride does not land there.
    """
    if frames < 1 or window < 1 or stride < 1:
        raise BlurtoolsError(f"contiguous_windows: frames, window and stride must be >= 1, got "
                             f"{frames}, {window}, {stride}")
    window = min(window, frames)
    starts = list(range(0, frames - window + 1, stride))
    if starts[-1] + window < frames:
        starts.append(frames - window)
    return [(s, s + window) for s in starts]


def contiguous_blurry_loss(pred: torch.Tensor, target: torch.Tensor,
                           features: Optional[Callable[[torch.Tensor], Sequence[torch.Tensor]]] = None,
                           window: int = 3, stride: int = 2, band_width: float = 0.5, spatial_weight: float = 0.1,
                           max_positions: int = 1024) -> torch.Tensor:
    """Niu et al.'s contiguous blurry loss: contextual loss between averages of consecutive frames.

    Averaging ``window`` consecutive frames re-creates a (shorter) blurry image; comparing these partial
    blurs of prediction and ground truth with the contextual loss models the blurring process while
    tolerating misalignment. Our reading of Niu et al. (Symmetry 2021, eqs 5-10); window 3 every 2
    frames is our choice (their values are unconfirmed).

    Args:
        pred, target: (B, N, C, H, W) sequences in the same direction of time.
        features: maps a (B, 3, H, W) image in [0, 1] to a sequence of feature maps (e.g.
            ``VGGPerceptual.extract``); None compares raw 5x5 patches (:func:`contextual_image_loss`).
        window, stride: see :func:`contiguous_windows`.
        band_width, spatial_weight, max_positions: as in :func:`contextual_loss`.
    Returns:
        0-dim tensor: the mean over windows (and feature layers) of the contextual loss.
    """
    if pred.dim() != 5 or pred.shape != target.shape:
        raise BlurtoolsError(f"contiguous_blurry_loss: expected two (B, N, C, H, W) sequences of one shape, got "
                             f"{tuple(pred.shape)} and {tuple(target.shape)}")
    spans = contiguous_windows(pred.shape[1], window, stride)
    # All windows in one batch: one feature pass and one distance computation per layer.
    p = torch.cat([pred[:, a:b].mean(1) for a, b in spans], dim=0)
    t = torch.cat([target[:, a:b].mean(1) for a, b in spans], dim=0)
    opts = dict(band_width=band_width, spatial_weight=spatial_weight, max_positions=max_positions)
    if features is None:
        return contextual_image_loss(p, t, **opts)
    fp = features(p)
    with torch.no_grad():
        ft = features(t)
    terms = [contextual_loss(a, b, **opts) for a, b in zip(fp, ft)]
    return torch.stack(terms).mean()
