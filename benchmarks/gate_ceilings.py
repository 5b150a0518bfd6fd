"""What the #7 quality gates allow at best on the held-out camera-shake photos: oracle bounds, no networks.

`benchmarks/default_weights.py` measures the shipped tools. This script asks what *any* method could
score on the same held-out sets, given knowledge no method has, so the gates' figures can be read
against them. It uses blur-synth's own records of each sample: the true kernel (`kernel/ID.npy`, centred
on the mid-exposure position) and the seven sharp frames. All figures are PSNR (dB) on 8-bit images; the
baselines are the blurry image (deblur) and the blurry image repeated 7 times (video, order-invariant).

Bounds printed per set:

- ``perfect@centroid``: the true middle frame itself, moved (bicubic) to the centroid of the true kernel
  (``kernel_path(k, 1)``: the whole mass as one part). A blurry image does not say where inside its blur
  the mid-exposure position lies; a method that only undoes the blur puts its result at the blur's
  centroid. This is what a *perfect* deblur scores there against the middle frame, i.e. the ceiling of
  the plain deblur gate for such a method.
- ``perfect@path``: the true middle frame moved to the 7 positions that
  :func:`blurtools.infer.classical.kernel_path` reads off the *true* kernel (mass ordered along its
  principal axis): a perfect image with a perfectly known blur, only the time order read from its shape.
  ``path error`` is the median distance (px) between those positions and the true ones (from aligning
  each sharp frame onto the middle one), under the better of the two time directions.
- ``true kernel``: the classical method given the true kernel: HQS deconvolution in linear light (lam
  2e-3, as the default deblur's classical half), scored aligned (``score --align translation``) and as a
  video along ``kernel_path``. ``estimated``: the same with the kernel the default deblur estimates
  (multiscale, linear light). The difference is what a better blind kernel estimate is worth.

    .venv/bin/python benchmarks/gate_ceilings.py [--work DIR] [--per-still 3]

``--work`` may point at an existing `benchmarks/default_weights.py` work folder: its ``stills20`` and
``stills40`` sets are reused (same seeds, so the same sets either way).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from statistics import mean, median

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from default_weights import heldout_photo_sets  # noqa: E402  (the same sets, the same seed)

import blurtools  # noqa: E402
from blurtools.infer.classical import kernel_path  # noqa: E402
from blurtools.infer.loading import REFINE_CLASSICAL  # noqa: E402
from blurtools.io.images import read_image  # noqa: E402
from blurtools.ops.registration import align  # noqa: E402
from blurtools.metrics.masked import masked_psnr  # noqa: E402
from blurtools.metrics.psnr import psnr  # noqa: E402
from blurtools.ops.blind_kernel import estimate_kernel  # noqa: E402
from blurtools.ops.crf import from_linear, to_linear  # noqa: E402
from blurtools.ops.deconv import hqs_deconv  # noqa: E402
from blurtools.ops.warp import shift  # noqa: E402

CRF = REFINE_CLASSICAL["crf"]
LAM = REFINE_CLASSICAL["strength"]


def plain(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """PSNR of two (1, C, H, W) images in [0, 1] as saved at 8 bits."""
    return float(psnr(pred.clamp(0, 1), gt, data_range=255)[0])


def aligned(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """PSNR after the best translation and intensity scale (Köhler et al.), as ``score --align translation``."""
    a = align((pred.clamp(0, 1) * 255).round() / 255, gt)
    return float(masked_psnr(a.aligned.float(), gt, a.mask)[0])


def video(frames, gts) -> float:
    """Order-invariant mean PSNR of 7 predicted frames against the 7 true ones."""
    fwd = mean(plain(p, g) for p, g in zip(frames, gts))
    rev = mean(plain(p, g) for p, g in zip(frames[::-1], gts))
    return max(fwd, rev)


def moved(x: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    return shift(x, torch.tensor([dx], dtype=x.dtype), torch.tensor([dy], dtype=x.dtype), mode="bicubic").clamp(0, 1)


def along(x: torch.Tensor, kernel: torch.Tensor):
    """x moved to the 7 positions kernel_path reads off ``kernel`` (relative to its centre tap)."""
    return [moved(x, float(p[0]), float(p[1])) for p in kernel_path(kernel.double(), 7)]


def deconvolve(blurry: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    k = kernel.to(blurry.dtype)[None, None]
    return from_linear(hqs_deconv(to_linear(blurry, CRF), k, lam=LAM), CRF).clamp(0, 1)


def path_error(kernel: torch.Tensor, gts) -> float:
    """Median distance (px) between kernel_path's positions and the frames' true ones, best time direction."""
    true = np.array([align(g, gts[len(gts) // 2]).shift[0].numpy() for g in gts])
    est = kernel_path(kernel.double(), len(gts)).numpy()
    return min(float(np.median(np.linalg.norm(e - true, axis=1))) for e in (est, est[::-1]))


def evaluate(set_dir: Path) -> dict:
    rows = []
    for line in (set_dir / "samples.jsonl").read_text().splitlines():
        s = json.loads(line)
        blurry = read_image(set_dir / s["blurry"])[None]
        gts = [read_image(set_dir / p)[None] for p in s["sharp"]]
        mid = gts[len(gts) // 2]
        k_true = torch.from_numpy(np.load(set_dir / s["kernel"])).float()
        k_est = estimate_kernel(blurry, REFINE_CLASSICAL["max_size"], REFINE_CLASSICAL["method"], CRF)
        x_true, x_est = deconvolve(blurry, k_true), deconvolve(blurry, k_est)
        rows.append({
            "id": s["id"],
            "blurry": plain(blurry, mid), "blurry_aligned": aligned(blurry, mid),
            "repeat": video([blurry] * len(gts), gts),
            "perfect_at_centroid": plain(moved(mid, *map(float, kernel_path(k_true.double(), 1)[0])), mid),
            "perfect_along_path": video(along(mid, k_true), gts),
            "path_error_px": path_error(k_true, gts),
            "true_kernel_aligned": aligned(x_true, mid), "true_kernel_video": video(along(x_true, k_true), gts),
            "estimated_aligned": aligned(x_est, mid), "estimated_video": video(along(x_est, k_est), gts),
        })
        print(f"  {s['id']}: " + ", ".join(f"{k} {v:.2f}" for k, v in rows[-1].items() if k != "id"), flush=True)
    summary = {k: (median if k == "path_error_px" else mean)(r[k] for r in rows) for k in rows[0] if k != "id"}
    return {"samples": rows, "summary": summary}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--per-still", type=int, default=3)
    ap.add_argument("--data", type=Path, default=ROOT / ".weights-data" / "dev",
                    help="development data from scripts/dev_data.py (made when missing)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bt-ceilings-"))
    results = {}
    for name, d in heldout_photo_sets(work, args.data, args.per_still).items():
        print(f"{name} ({d})")
        results[name] = evaluate(d)
    print("\nPSNR dB; deblur against the middle frame, video order-invariant over 7 frames")
    head = ("set", "blurry", "perfect@centroid", "repeat", "perfect@path", "path error px",
            "true k aligned", "est. k aligned", "blurry aligned", "true k video", "est. k video")
    print(" | ".join(head))
    for name, r in results.items():
        m = r["summary"]
        print(" | ".join([name] + [f"{m[k]:.2f}" for k in (
            "blurry", "perfect_at_centroid", "repeat", "perfect_along_path", "path_error_px", "true_kernel_aligned",
            "estimated_aligned", "blurry_aligned", "true_kernel_video", "estimated_video")]))
    made_by = {"tool": "benchmarks/gate_ceilings.py", "version": blurtools.__version__,
               "options": {k: str(v) for k, v in vars(args).items()}, "lam": LAM, "crf": CRF}
    (work / "ceilings.json").write_text(json.dumps({"made_by": made_by, **results}, indent=2))
    print(f"\nper-sample figures: {work / 'ceilings.json'}")


if __name__ == "__main__":
    main()
