"""Image registration: align a prediction to its ground truth (the Köhler and RealBlur procedures), in torch.

Real-blur benchmarks cannot pixel-align a restored image with its ground truth, so their published
numbers are computed after the best alignment:

- ``"translation"`` (Köhler et al. 2012): the intensity scale ``alpha`` and the sub-pixel shift that
  minimise ||gt - shift(alpha * pred)||^2. Found coarse-to-fine: phase correlation (FFT) gives the
  integer shift, then Gauss-Newton (Lucas-Kanade) on (alpha, dx, dy) refines it to ~0.01 px.
- ``"homography"`` (Rim et al. 2020, RealBlur): the same translation as a start, then an ECC
  homography (Evangelidis & Psarakis 2008: Gauss-Newton on the 8 parameters maximising the enhanced
  correlation coefficient, coarse-to-fine over an image pyramid), then the intensity scale.

Both estimate on luma (0.299 R + 0.587 G + 0.114 B) smoothed by a Gaussian (sigma 1 px), then warp the
full-colour prediction (Keys bicubic, a = -0.5) and take ``alpha`` in closed form over the valid
region. Conventions (pixel coordinates: x = column, y = row, origin at the top-left pixel's centre):

- ``homography`` (3x3, h33 = 1) maps ground-truth coordinates to prediction coordinates, so
  ``aligned(x) = alpha * pred(H x)``. For a translation, H = [[1, 0, dx], [0, 1, dy], [0, 0, 1]].
- ``shift`` = (dx, dy) = H(c) - c for the image centre c: where the prediction's content sits relative
  to the ground truth (a prediction moved 3 px right has dx = +3).
- ``alpha`` multiplies the prediction (a prediction 10 % too dark has alpha ~ 1.11).
- ``mask``: the pixels whose source lies at least 1 px inside the prediction (all bicubic taps real).

Against the reference scripts (the numbers agree closely but not bit for bit): Köhler's benchmark code
searches the shift with an FFT (whole pixels, as far as is known here); this refines it to sub-pixel.
RealBlur's ``evaluate_RealBlur.py`` takes alpha on the unaligned pair, runs OpenCV's ECC from the identity
on gray images (gaussFiltSize 5) and warps with OpenCV's bicubic (a = -0.75) and reflected borders; this
takes alpha after the warp (the scale that minimises the error actually scored), starts ECC from the
translation estimate over a pyramid, and uses Keys' bicubic inside the valid region only.

A pair that cannot be aligned is flagged (``ok`` False, ``reasons`` says why) instead of scored: the
phase-correlation peak or the final warp moves a point by more than ``max_shift`` px, the valid region
covers less than ``min_overlap`` of the frame, the zero-mean normalised correlation of the aligned
pair is below ``min_corr``, or ECC stopped because the images are uncorrelated.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import List, Tuple

import torch
import torch.nn.functional as F

from blurtools.errors import UsageError
from blurtools.ops.color import to_gray
from blurtools.ops.filters import gaussian_blur
from blurtools.ops.homography import apply_homography, pixel_grid, translation_matrix, warp_homography

log = logging.getLogger(__name__)

MODELS = ("translation", "homography")


@dataclass
class Alignment:
    """Alignment of a batch. ``aligned`` = alpha * warp(pred), 0 outside ``mask``; see the module docstring.

    Attributes:
        aligned: (B, C, H, W) float64. mask: (B, 1, H, W) bool. homography: (B, 3, 3) float64.
        alpha: (B,) float64. shift: (B, 2) float64 (dx, dy). corr: (B,) float64 in [-1, 1].
        ok: (B,) bool. reasons: B strings, "" where ok.
    """

    aligned: torch.Tensor
    mask: torch.Tensor
    homography: torch.Tensor
    alpha: torch.Tensor
    shift: torch.Tensor
    corr: torch.Tensor
    ok: torch.Tensor
    reasons: List[str]


def phase_correlation(pred: torch.Tensor, gt: torch.Tensor, max_shift: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Integer shift of ``pred`` relative to ``gt`` ((B, 1, H, W) each) by phase correlation.

    Returns (shift (B, 2) float (dx, dy), the best within ``max_shift``; beyond (B,) bool: the strongest
    peak overall lies farther than ``max_shift``). Hann window against the wrap-around edges; the
    correlation surface is smoothed (sigma 1 px) so the noisy phase of weak high frequencies cannot win.
    """
    b, _, h, w = pred.shape
    win = torch.outer(torch.hann_window(h, periodic=False, dtype=pred.dtype, device=pred.device),
                      torch.hann_window(w, periodic=False, dtype=pred.dtype, device=pred.device))
    fp = torch.fft.rfft2((pred[:, 0] - pred.mean(dim=(-3, -2, -1)).view(-1, 1, 1)) * win)
    fg = torch.fft.rfft2((gt[:, 0] - gt.mean(dim=(-3, -2, -1)).view(-1, 1, 1)) * win)
    cross = fp * fg.conj()
    cross = cross / (cross.abs() + 1e-12 * cross.abs().amax(dim=(-2, -1), keepdim=True) + 1e-30)
    fy = torch.fft.fftfreq(h, device=pred.device, dtype=pred.dtype).view(-1, 1)
    fx = torch.fft.rfftfreq(w, device=pred.device, dtype=pred.dtype).view(1, -1)
    cross = cross * torch.exp(-2 * math.pi ** 2 * (fx * fx + fy * fy))
    surface = torch.fft.irfft2(cross, s=(h, w))  # peak at +d when pred(x) = gt(x - d)
    dy = torch.fft.fftfreq(h, 1.0 / h, device=pred.device).round().view(-1, 1).expand(h, w)
    dx = torch.fft.fftfreq(w, 1.0 / w, device=pred.device).round().view(1, -1).expand(h, w)
    inside = (dx.abs() <= max_shift) & (dy.abs() <= max_shift)
    flat = surface.flatten(1)
    best_in = flat.masked_fill(~inside.flatten(), -math.inf).argmax(dim=1)
    best_all = flat.argmax(dim=1)
    beyond = (~inside.flatten()[best_all]) & (flat.gather(1, best_all[:, None])[:, 0] > flat.gather(1, best_in[:, None])[:, 0])
    shift = torch.stack((dx.flatten()[best_in], dy.flatten()[best_in]), dim=1).to(pred.dtype)
    return shift, beyond


def _solve(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batched a x = b in float64 with a whisper of damping so flat images give a zero step, not NaN."""
    a, b = a.to(torch.float64), b.to(torch.float64)
    damp = 1e-9 * a.diagonal(dim1=-2, dim2=-1).abs().mean(dim=-1).clamp_min(1e-30)
    a = a + damp[:, None, None] * torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    return torch.linalg.solve(a, b.unsqueeze(-1)).squeeze(-1)


def _gradients(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) -> (B, 3, H, W): the image, d/dx and d/dy (central differences)."""
    gy, gx = torch.gradient(x, dim=(-2, -1))
    return torch.cat((x, gx, gy), dim=1)


def _inner(h: int, w: int, border: int, like: torch.Tensor) -> torch.Tensor:
    """(1, 1, H, W) mask of the pixels at least ``border`` px from the edge."""
    m = torch.zeros(1, 1, h, w, dtype=torch.bool, device=like.device)
    m[..., border:h - border, border:w - border] = True
    return m


def refine_translation(pred: torch.Tensor, gt: torch.Tensor, shift: torch.Tensor, iters: int = 30,
                       tol: float = 1e-3, border: int = 0) -> torch.Tensor:
    """Gauss-Newton on ||gt - alpha * pred(x + d)||^2 over (alpha, dx, dy), from ``shift`` (B, 2).

    ``pred``, ``gt``: (B, 1, H, W) luma. alpha starts each step at its closed form. ``border``: pixels
    next to either image's edge that are left out (a pre-filter's padding altered them). Returns d (B, 2).
    """
    stack = _gradients(pred)
    inner = _inner(pred.shape[-2], pred.shape[-1], border, pred)
    d = shift.clone()
    active = torch.ones(d.shape[0], dtype=torch.bool, device=d.device)
    for _ in range(iters):
        warped, mask = warp_homography(stack, translation_matrix(d), margin=1.0 + border)
        m = (mask & inner).to(pred.dtype)
        p, px, py = warped.split(1, dim=1)
        alpha = (m * gt * p).sum(dim=(1, 2, 3)) / (m * p * p).sum(dim=(1, 2, 3)).clamp_min(1e-30)
        a = alpha.view(-1, 1, 1, 1)
        r = (gt - a * p) * m
        jac = torch.cat((p, a * px, a * py), dim=1) * m
        step = _solve(torch.einsum("bihw,bjhw->bij", jac, jac), torch.einsum("bihw,bhw->bi", jac, r[:, 0]))
        step = torch.nan_to_num(step[:, 1:], nan=0.0).clamp(-1.0, 1.0).to(d.dtype)
        d = d + step * active[:, None]
        active &= step.abs().amax(dim=1) >= tol
        if not active.any():
            break
    return d


def _level_matrix(level: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Full-resolution pixel coordinates -> pixel coordinates after ``level`` 2x average-poolings."""
    s = 0.5 ** level
    return torch.tensor([[s, 0, (s - 1) / 2], [0, s, (s - 1) / 2], [0, 0, 1]], dtype=dtype, device=device)


def _norm_matrix(h: int, w: int, dtype: torch.dtype, device: torch.device) -> Tuple[torch.Tensor, float]:
    """Pixel -> centred coordinates scaled to about [-1, 1] (keeps the 8x8 Gauss-Newton system well conditioned)."""
    s = max(h, w) / 2.0
    return torch.tensor([[1 / s, 0, -(w - 1) / (2 * s)], [0, 1 / s, -(h - 1) / (2 * s)], [0, 0, 1]],
                        dtype=dtype, device=device), s


def _corners(h: int, w: int, dtype: torch.dtype, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    xs = torch.tensor([0, w - 1, 0, w - 1, (w - 1) / 2], dtype=dtype, device=device)
    ys = torch.tensor([0, 0, h - 1, h - 1, (h - 1) / 2], dtype=dtype, device=device)
    return xs, ys


def refine_homography(pred: torch.Tensor, gt: torch.Tensor, hm: torch.Tensor, iters: int = 40, tol: float = 1e-3,
                      border: int = 0, min_side: int = 64, max_levels: int = 3) -> Tuple[torch.Tensor, torch.Tensor]:
    """ECC (enhanced correlation coefficient) homography from ``hm`` (B, 3, 3), coarse to fine.

    ``pred``, ``gt``: (B, 1, H, W) luma. Each level runs the forward-additive ECC iteration (as OpenCV's
    ``findTransformECC``) until no corner moves by more than ``tol`` px; ``border`` (full-resolution px
    next to the edges) is left out as in :func:`refine_translation`. Returns (H (B, 3, 3) float64,
    failed (B,) bool: ECC found the images uncorrelated or the warp degenerated).
    """
    b, _, h, w = pred.shape
    levels = 1
    while levels < max_levels and min(h, w) >> levels >= min_side:
        levels += 1
    pyr_p, pyr_g = [pred], [gt]
    for _ in range(levels - 1):
        pyr_p.append(F.avg_pool2d(pyr_p[-1], 2))
        pyr_g.append(F.avg_pool2d(pyr_g[-1], 2))
    hm = hm.to(torch.float64) / hm[:, 2:3, 2:3].to(torch.float64)
    failed = torch.zeros(b, dtype=torch.bool, device=pred.device)
    for level in reversed(range(levels)):
        p, g = pyr_p[level], pyr_g[level]
        lh, lw = p.shape[-2:]
        nrm, scale = _norm_matrix(lh, lw, torch.float64, pred.device)
        to_level = nrm @ _level_matrix(level, torch.float64, pred.device)
        hn = to_level @ hm @ torch.linalg.inv(to_level)
        hn = hn / hn[:, 2:3, 2:3]
        stack = _gradients(p) * torch.tensor([1.0, scale, scale], dtype=p.dtype, device=p.device).view(1, 3, 1, 1)
        xs, ys = pixel_grid(lh, lw, p.dtype, p.device)
        xn, yn = (xs - (lw - 1) / 2) / scale, (ys - (lh - 1) / 2) / scale
        cx, cy = _corners(lh, lw, torch.float64, p.device)
        cx, cy = (cx - (lw - 1) / 2) / scale, (cy - (lh - 1) / 2) / scale
        active = ~failed
        inv_nrm = torch.linalg.inv(nrm)
        lb = -(-border // (2 ** level))
        inner = _inner(lh, lw, lb, p)
        for _ in range(iters):
            hpx = inv_nrm @ hn @ nrm  # normalised -> pixel for sampling
            warped, mask = warp_homography(stack, hpx.to(p.dtype), margin=1.0 + lb)
            m = (mask & inner).to(p.dtype)
            count = m.sum(dim=(1, 2, 3)).clamp_min(1.0)
            iw, gx, gy = warped.split(1, dim=1)
            un, vn, den = apply_homography(hn.to(p.dtype), xn, yn)
            den = torch.where(den > 0, den, torch.ones_like(den))  # outside the mask anyway; keeps 0 * inf out
            un, vn = torch.nan_to_num(un) * m[:, 0], torch.nan_to_num(vn) * m[:, 0]
            gu, gv = gx[:, 0] / den, gy[:, 0] / den
            mix = -(gu * un + gv * vn)
            jac = torch.stack((gu * xn, gu * yn, gu, gv * xn, gv * yn, gv, mix * xn, mix * yn), dim=1) * m

            def zero_mean(t: torch.Tensor) -> torch.Tensor:
                return (t - (t * m).sum(dim=(-2, -1), keepdim=True) / count.view(-1, 1, 1, 1)) * m

            jac, tz, iz = zero_mean(jac), zero_mean(g), zero_mean(iw)
            hess = torch.einsum("bihw,bjhw->bij", jac, jac).to(torch.float64)
            tproj = torch.einsum("bihw,bhw->bi", jac, tz[:, 0]).to(torch.float64)
            iproj = torch.einsum("bihw,bhw->bi", jac, iz[:, 0]).to(torch.float64)
            hinv_i = _solve(hess, iproj)
            hinv_t = _solve(hess, tproj)
            lam_n = iz.square().sum(dim=(1, 2, 3)).to(torch.float64) - (iproj * hinv_i).sum(dim=1)
            lam_d = (tz * iz).sum(dim=(1, 2, 3)).to(torch.float64) - (tproj * hinv_i).sum(dim=1)
            bad = ~(lam_d > 0) | (count < 64)
            lam = lam_n / torch.where(bad, torch.ones_like(lam_d), lam_d)
            delta = lam[:, None] * hinv_t - hinv_i
            bad |= ~torch.isfinite(delta).all(dim=1)
            failed |= bad & active
            active &= ~bad
            delta = torch.where(active[:, None], torch.nan_to_num(delta), torch.zeros_like(delta))
            new = hn.clone()
            new.view(b, 9)[:, :8] += delta
            ou, ov, _ = apply_homography(hn, cx, cy)
            nu, nv, _ = apply_homography(new, cx, cy)
            moved = torch.maximum((nu - ou).abs(), (nv - ov).abs()).amax(dim=1) * scale
            hn = new
            active &= moved >= tol
            if not active.any():
                break
        hm = torch.linalg.inv(to_level) @ hn @ to_level
        hm = hm / hm[:, 2:3, 2:3]
    return hm, failed


def _check_inputs(pred: torch.Tensor, gt: torch.Tensor, model: str) -> None:
    if model not in MODELS:
        raise UsageError(f"align: unknown model {model!r}; choose one of {', '.join(MODELS)}")
    for name, t in (("pred", pred), ("gt", gt)):
        if not isinstance(t, torch.Tensor) or t.dim() != 4 or not t.is_floating_point():
            raise UsageError(f"align: {name} must be a float tensor (B, C, H, W), got {getattr(t, 'shape', type(t).__name__)}")
    if pred.shape != gt.shape:
        raise UsageError(f"align: pred shape {tuple(pred.shape)} differs from gt shape {tuple(gt.shape)}")
    if min(pred.shape[-2:]) < 16:
        raise UsageError(f"align: images of {pred.shape[-2]}x{pred.shape[-1]} are too small to align (need >= 16 px)")


def align(pred: torch.Tensor, gt: torch.Tensor, model: str = "translation", max_shift: float = 64.0,
          min_corr: float = 0.5, min_overlap: float = 0.5, smooth: float = 1.0) -> Alignment:
    """Align each prediction to its ground truth; see the module docstring for the procedure and conventions.

    Args:
        pred, gt: float (B, C, H, W) on one device, values in [0, 1] (already rounded to the file's
            integers when scoring files); H, W >= 16.
        model: "translation" (Köhler) or "homography" (RealBlur).
        max_shift: largest displacement, in px, of any image corner or the centre that counts as aligned.
        min_corr: smallest zero-mean normalised correlation (luma, over the valid region) after alignment.
        min_overlap: smallest fraction of the frame the valid region may cover.
        smooth: sigma (px) of the Gaussian applied to both luma images before estimating (not before scoring).

    Returns:
        :class:`Alignment`; its ``ok`` says which pairs were aligned and ``reasons`` why the others were not.

    Example:
        >>> gt = torch.rand(1, 3, 64, 64)
        >>> a = align(0.9 * torch.roll(gt, 2, dims=-1), gt)
        >>> a.shift.round()                              # the prediction sits 2 px to the right
        tensor([[2., 0.]], dtype=torch.float64)
    """
    _check_inputs(pred, gt, model)
    b, _, h, w = pred.shape
    est_p = to_gray(pred.to(torch.float32))
    est_g = to_gray(gt.to(torch.float32))
    border = 0
    if smooth > 0:
        est_p, est_g = gaussian_blur(est_p, smooth), gaussian_blur(est_g, smooth)
        border = int(3.5 * smooth + 0.5)  # the blur's radius: its padding altered these pixels
    coarse, beyond = phase_correlation(est_p, est_g, max_shift)
    shift = refine_translation(est_p, est_g, coarse, border=border)
    hm = translation_matrix(shift.to(torch.float64))
    failed = torch.zeros(b, dtype=torch.bool, device=pred.device)
    if model == "homography":
        hm, failed = refine_homography(est_p, est_g, hm, border=border)
    hm = torch.where(torch.isfinite(hm).all(dim=(1, 2))[:, None, None], hm, translation_matrix(shift.to(torch.float64)))

    p64, g64 = pred.to(torch.float64), gt.to(torch.float64)
    warped, mask = warp_homography(p64, hm)
    m = mask.to(torch.float64)
    alpha = (m * g64 * warped).sum(dim=(1, 2, 3)) / (m * warped * warped).sum(dim=(1, 2, 3)).clamp_min(1e-30)
    aligned = alpha.view(-1, 1, 1, 1) * warped * m
    count = m.sum(dim=(1, 2, 3)).clamp_min(1.0)
    la, lg = to_gray(aligned), to_gray(g64)
    la = (la - (la * m).sum(dim=(1, 2, 3), keepdim=True) / count.view(-1, 1, 1, 1)) * m
    lg = (lg - (lg * m).sum(dim=(1, 2, 3), keepdim=True) / count.view(-1, 1, 1, 1)) * m
    corr = (la * lg).sum(dim=(1, 2, 3)) / (la.square().sum(dim=(1, 2, 3)) * lg.square().sum(dim=(1, 2, 3))).sqrt().clamp_min(1e-30)
    cx, cy = _corners(h, w, torch.float64, pred.device)
    u, v, _ = apply_homography(hm, cx, cy)
    centre = torch.stack((u[:, 4] - cx[4], v[:, 4] - cy[4]), dim=1)
    moved = torch.maximum((u - cx).abs(), (v - cy).abs()).amax(dim=1)
    overlap = mask.flatten(1).to(torch.float64).mean(dim=1)

    reasons: List[str] = []
    for i in range(b):
        if failed[i]:
            why = "ECC stopped: the images look uncorrelated (or the warp degenerated)"
        elif beyond[i]:
            why = f"the strongest correlation peak lies beyond --max-shift {max_shift:g} px"
        elif not moved[i] <= max_shift:
            why = f"the alignment moves the image by {float(moved[i]):.1f} px, beyond --max-shift {max_shift:g}"
        elif not overlap[i] >= min_overlap:
            why = f"the aligned images overlap on {100 * float(overlap[i]):.0f}% of the frame, below {100 * min_overlap:.0f}%"
        elif not corr[i] >= min_corr:
            why = f"correlation {float(corr[i]):.2f} after alignment is below --min-corr {min_corr:g}"
        else:
            why = ""
        reasons.append(why)
    ok = torch.tensor([r == "" for r in reasons], dtype=torch.bool, device=pred.device)
    log.debug("align %s: shift %s alpha %s corr %s", model, centre.tolist(), alpha.tolist(), corr.tolist())
    return Alignment(aligned=aligned, mask=mask, homography=hm, alpha=alpha, shift=centre, corr=corr, ok=ok,
                     reasons=reasons)
