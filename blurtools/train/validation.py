"""Validation during training: PSNR / SSIM of the model's output and of the blurry input, over processes.

Scores follow the papers' convention (:mod:`blurtools.metrics`): RGB, values rounded to 8 bits
(``data_range=255``), skimage SSIM. Image models are scored against the middle sharp frame; video models
order-invariantly over all frames (:func:`blurtools.metrics.score_video`), with the blurry image repeated N
times as the input's baseline. Every process scores its share of the samples; sums are all-reduced.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Dict, Optional

import torch
from torch import nn

from blurtools.metrics.image import compute_image_metrics
from blurtools.metrics.video import score_video
from blurtools.ops.geometry import centre_crop
from blurtools.train import distributed as D


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Any, info: D.DistInfo, device: torch.device, crop: int = 0, limit: int = 0,
             autocast: Callable[[], Any] = contextlib.nullcontext) -> Optional[Dict[str, float]]:
    """Mean scores over the validation set (its first ``limit`` samples when > 0, centre-cropped to ``crop``).

    Args:
        model: an image or video model (``model.kind``); put in eval mode here and back in train mode after.
        dataset: ``ds[i] -> (blurry (3, H, W), sharp (N, 3, H, W))`` in [0, 1].
        info: the process group (every process must call this).
        autocast: a context factory for mixed precision (the model runs under it; scores in float64).

    Returns:
        {"psnr", "ssim", "blurry_psnr", "blurry_ssim", "samples"}, or None for an empty set.
    """
    D.sync_buffers(info, model)
    was_training = model.training
    model.eval()
    sums = torch.zeros(5, dtype=torch.float64)
    image = model.kind == "image"
    try:
        for i in D.val_indices(len(dataset), limit, info):
            blurry, sharp = dataset[i]
            blurry, sharp = centre_crop(blurry, crop), centre_crop(sharp, crop)
            b = blurry[None].to(device, torch.float32)
            s = sharp.to(device, torch.float32)
            with autocast():
                pred = model(b)
            pred = pred.float().clamp(0, 1)
            if image:
                gt = s[s.shape[0] // 2][None]
                m, base = compute_image_metrics(pred, gt, data_range=255), compute_image_metrics(b, gt, data_range=255)
                row = [m["psnr"].item(), m["ssim"].item(), base["psnr"].item(), base["ssim"].item()]
            else:
                m, base = score_video(pred[0], s, data_range=255), score_video(b.expand_as(s), s, data_range=255)
                row = [m.psnr, m.ssim, base.psnr, base.ssim]
            sums += torch.tensor(row + [1.0], dtype=torch.float64)
    finally:
        model.train(was_training)
    sums = D.all_reduce_sum(info, sums.to(device)).cpu()
    count = int(sums[4].item())
    if count == 0:
        return None
    psnr, ssim, bpsnr, bssim = (sums[:4] / count).tolist()
    return {"psnr": psnr, "ssim": ssim, "blurry_psnr": bpsnr, "blurry_ssim": bssim, "samples": count}
