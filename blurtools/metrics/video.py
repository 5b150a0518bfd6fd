"""Order-invariant scoring of a video recovered from one blurry image.

The direction of time is ambiguous from a single blurry image, so a prediction played backwards is as
right as one played forwards. Per sequence we pick the order (forward or reversed) once, by the mean
PSNR over frames, report every metric under that order, and report the middle frame alone as well.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from blurtools.errors import BlurtoolsError, UsageError
from blurtools.metrics.image import compute_image_metrics
from blurtools.metrics.lpips_metric import LpipsMetric
from blurtools.metrics.psnr import psnr

ORDERS = ("forward", "reversed")


@dataclass(frozen=True)
class VideoScore:
    """Scores of one predicted sequence against its ground truth.

    ``order`` is "forward" (pred[i] vs gt[i]) or "reversed" (pred[N-1-i] vs gt[i]). ``psnr``, ``ssim``,
    ``lpips`` are means over the N frames under that order; ``middle_*`` compare gt[N//2] with the
    prediction aligned to it. ``frame_psnr`` holds the per-frame PSNR in ground-truth order.
    ``lpips`` / ``middle_lpips`` are None when no LPIPS metric was given. PSNR is inf for identical
    frames (and so is a mean containing one).
    """

    order: str
    frames: int
    psnr: float
    ssim: float
    lpips: float | None
    middle_psnr: float
    middle_ssim: float
    middle_lpips: float | None
    frame_psnr: tuple[float, ...]

    def as_dict(self) -> dict:
        """Plain JSON-friendly dict (frame_psnr as a list)."""
        d = asdict(self)
        d["frame_psnr"] = list(self.frame_psnr)
        return d


def score_video(
    pred: torch.Tensor,
    gt: torch.Tensor,
    data_range: float = 1.0,
    ssim_mode: str = "skimage",
    y_channel: bool = False,
    crop_border: int = 0,
    lpips: LpipsMetric | None = None,
    quantize: bool | None = None,
) -> VideoScore:
    """Score one predicted frame sequence against the ground-truth sequence, order-invariantly.

    Args:
        pred: predicted frames (N, C, H, W) float in [0, 1], in the model's time order.
        gt: ground-truth frames (N, C, H, W), same shape, in true time order.
        data_range, ssim_mode, y_channel, crop_border, quantize: as in :func:`compute_image_metrics`.
        lpips: an :class:`LpipsMetric` to add LPIPS, or None.

    Returns:
        :class:`VideoScore`. The order with the higher mean PSNR wins; a tie keeps "forward".

    Raises:
        BlurtoolsError: pred and gt hold different numbers of frames.
        UsageError: shapes are not (N, C, H, W) or the frames differ in size.

    Example:
        >>> gt = torch.rand(7, 3, 24, 24)
        >>> pred = (gt + 0.02 * torch.randn_like(gt)).clamp(0, 1)
        >>> score_video(pred.flip(0), gt, data_range=255).order
        'reversed'
    """
    for name, t in (("pred", pred), ("gt", gt)):
        if not isinstance(t, torch.Tensor) or t.dim() != 4:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise UsageError(
                f"score_video: {name} must be one sequence (N, C, H, W), got {shape}; "
                "score a batch (B, N, C, H, W) one sequence at a time"
            )
    if pred.shape[0] != gt.shape[0]:
        raise BlurtoolsError(
            f"score_video: the prediction has {pred.shape[0]} frames but the ground truth has "
            f"{gt.shape[0]}; both must hold the same number of frames"
        )
    if pred.shape[0] == 0:
        raise BlurtoolsError("score_video: empty sequence (0 frames)")
    opts = dict(data_range=data_range, crop_border=crop_border, y_channel=y_channel, quantize=quantize)
    fwd = psnr(pred, gt, **opts)
    rev = psnr(pred.flip(0), gt, **opts)
    # Identical frames score inf dB; cap them for the choice only, so a sequence that is exact in one
    # order (all inf) still beats the other order, whose mean is also inf when its middle frame is exact.
    cap = lambda v: v.clamp(max=1000.0)  # noqa: E731
    order = "forward" if cap(fwd).mean() >= cap(rev).mean() else "reversed"
    aligned = pred if order == "forward" else pred.flip(0)
    m = compute_image_metrics(aligned, gt, ssim_mode=ssim_mode, lpips=lpips, **opts)
    mid = gt.shape[0] // 2
    lp = m.get("lpips")
    return VideoScore(
        order=order,
        frames=int(gt.shape[0]),
        psnr=float(m["psnr"].mean()),
        ssim=float(m["ssim"].mean()),
        lpips=None if lp is None else float(lp.mean()),
        middle_psnr=float(m["psnr"][mid]),
        middle_ssim=float(m["ssim"][mid]),
        middle_lpips=None if lp is None else float(lp[mid]),
        frame_psnr=tuple(float(v) for v in m["psnr"]),
    )
