"""Running a predictor over whole images: tiled, batched, retried with smaller windows on out-of-memory, and
for deblurring the refinement and the evidence of blur.

* :func:`run_predictor` runs any predictor (image or video) over (B, 3, H, W) images.
* :func:`deblur_image` deblurs one image tensor (gray in, gray out); :func:`deblur_with_evidence` also says
  per image how much blur was found and what the refinement did.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from blurtools.errors import BlurtoolsError, UsageError
from blurtools.infer.loading import MIN_WINDOW, Predictor
from blurtools.infer.refine import blend_classical, blur_evidence, correction_db
from blurtools.infer.tiling import run_tiled

log = logging.getLogger(__name__)

__all__ = ["InferOptions", "is_oom", "run_predictor", "deblur_image", "deblur_with_evidence"]


@dataclass
class InferOptions:
    """How to run: window size and overlap (tile 0 = whole images), windows or images per model call,
    and what to do with outputs that exist already or inputs that fail."""

    tile: int = 512
    overlap: int = 32
    batch: int = 1
    skip_existing: bool = False
    keep_going: bool = False


def is_oom(exc: BaseException) -> bool:
    """Whether ``exc`` reports running out of memory (CUDA or host)."""
    text = str(exc).lower()
    return isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)) or "out of memory" in text or "can't allocate memory" in text


def run_predictor(predictor: Predictor, images: torch.Tensor, opts: InferOptions, frames: Optional[int] = None,
                  out_dtype: torch.dtype = torch.float32,
                  on_window: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> the predictor's output on the CPU, tiled; halves the tile on out-of-memory.

    Image predictors give (B, 3, H, W) float, video predictors (B, N, 3, H, W) (``out_dtype`` uint8 to save
    memory). The classical method widens the overlap (and tile) to what its deconvolution needs.
    """
    fn, min_overlap = predictor.prepare(images, frames)
    tile, overlap = opts.tile, opts.overlap
    while True:
        t, ov = tile, overlap
        if t > 0 and min_overlap > ov:
            ov = min_overlap
            t = max(t, 4 * ov)
        try:
            return run_tiled(fn, images, tile=t, overlap=ov, multiple=predictor.multiple, batch=opts.batch,
                             device=predictor.device, out_dtype=out_dtype, min_size=MIN_WINDOW,
                             align_time=not predictor.is_classical, on_window=on_window)
        except (RuntimeError, MemoryError) as exc:
            if not is_oom(exc):
                raise
            if predictor.device.type == "cuda":
                torch.cuda.empty_cache()
            side = max(images.shape[-2:]) if tile <= 0 else tile
            if side <= 2 * max(MIN_WINDOW, 2 * overlap):
                raise BlurtoolsError(f"out of memory on {predictor.device} even with {side}-pixel windows; try "
                                     "--device cpu or a smaller --batch") from None
            tile = side // 2
            log.warning("out of memory on %s; retrying with --tile %d", predictor.device, tile)


def deblur_image(predictor: Predictor, image: torch.Tensor, opts: Optional[InferOptions] = None,
                 on_window: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """Deblur (C, H, W) or (B, C, H, W) in [0, 1], C = 1 or 3; returns the same shape, clamped, on the CPU.

    Gray images go through as RGB (the three channels equal) and come back as the channels' mean.

    Example::

        sharp = deblur_image(load_predictor("image", model="classical"), read_image("photo.png"))
    """
    return deblur_with_evidence(predictor, image, opts, on_window)[0]


def deblur_with_evidence(predictor: Predictor, image: torch.Tensor, opts: Optional[InferOptions] = None,
                         on_window: Optional[Callable[[int, int], None]] = None
                         ) -> Tuple[torch.Tensor, List[float], List[Optional[Dict[str, Any]]]]:
    """:func:`deblur_image`, and per image the evidence of blur in [0, 1] and what the refinement did (a
    :class:`blurtools.infer.refine.RefineInfo` as a dict; None without one). The evidence is the refinement's
    (the network's correction or the deconvolution's sparsity gain, whichever says more) when there is one,
    else the network's correction alone (:func:`blurtools.infer.refine.blur_evidence`); 1 for the classical
    method, which always deconvolves."""
    opts = opts or InferOptions()
    if predictor.kind != "image":
        raise UsageError(f"deblur_image: needs an image predictor, got a {predictor.kind} one ({predictor.name})")
    single = image.dim() == 3
    x = image[None] if single else image
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise UsageError(f"deblur_image: expected (C, H, W) or (B, C, H, W) with C = 1 or 3, got {tuple(image.shape)}")
    gray = x.shape[1] == 1
    rgb = x.expand(-1, 3, -1, -1) if gray else x
    y = run_predictor(predictor, rgb, opts, on_window=on_window)
    changes = None if predictor.is_classical else correction_db(y, rgb.to(y))
    infos: List[Optional[Dict[str, Any]]] = [None] * y.shape[0]
    if predictor.refine is not None:
        y, done = blend_classical(rgb.to(y), y, lambda: run_predictor(predictor.refine, rgb, opts).to(y),
                                  changes=changes)
        evidence = [i.evidence for i in done]
        infos = [{k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(i).items()} for i in done]
    else:
        evidence = [1.0] * y.shape[0] if changes is None else [blur_evidence(float(c)) for c in changes]
    y = (y.mean(1, keepdim=True) if gray else y).clamp_(0, 1)
    return (y[0] if single else y), evidence, infos
