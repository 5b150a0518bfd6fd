"""What a score run says about its rows: identical pairs' PSNR capped, RGB-to-gray conversions counted, the
means of the metric columns (:func:`summarize`), JSON without inf or NaN (:func:`json_safe`). No torch: the
command line uses these before torch has loaded, and after ``--merge`` without it.

The PSNR of an identical pair is infinite (MSE = 0), which would make a set's mean infinite; evaluation
scripts of the deblurring literature (DeblurGAN's among them) report it as 100 dB, and so does blurtools,
counting the rows it capped so the output can say so.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

IDENTICAL_PSNR_DB = 100.0
"""PSNR reported for an identical pair (MSE = 0, where the formula gives inf), as evaluation scripts of the
deblurring literature (DeblurGAN's among them) cap it, so a set's mean stays finite."""


def finish_rows(rows: List[Dict[str, Any]]) -> Dict[str, int]:
    """Cap the PSNR of identical images (and of identical frames, before a sequence's mean) at
    IDENTICAL_PSNR_DB and drop the rows' private notes; returns what was done: ``{"psnr_capped": rows
    with a capped value, "converted_to_gray": RGB predictions scored as gray against gray ground truth}``."""
    capped = gray = 0
    for row in rows:
        gray += bool(row.pop("_converted_to_gray", False))
        hit = False
        if isinstance(row.get("frame_psnr"), list):
            frames = [min(v, IDENTICAL_PSNR_DB) for v in row["frame_psnr"]]
            hit = frames != row["frame_psnr"]
            if hit:
                row["frame_psnr"] = frames
                row["psnr"] = float(np.mean(frames))
        for key in ("psnr", "middle_psnr"):
            if isinstance(row.get(key), float) and math.isinf(row[key]) and row[key] > 0:
                row[key], hit = IDENTICAL_PSNR_DB, True
        capped += hit
    return {"psnr_capped": capped, "converted_to_gray": gray}


def _finite(v: float) -> Optional[float]:
    return None if v is None or math.isinf(v) or math.isnan(v) else float(v)


NUMERIC_SKIP = ("width", "height", "frame_psnr", "frames", "gt_frame", "gt_frames", "dx", "dy", "alpha")


def summarize(rows: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Mean of every numeric metric column over the rows (PSNR's mean is inf when any image is identical).

    Rows whose metrics are None (pairs that could not be aligned) are left out of the means; ``unaligned``
    counts them when the rows come from aligned scoring.
    """
    summary: Dict[str, Any] = {"count": len(rows)}
    if not rows:
        return summary

    def numeric(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    for key in rows[0]:
        # A metric column stays in the summary (as None) even when no row could be scored.
        if key in NUMERIC_SKIP or not (key in ("psnr", "ssim", "lpips") or any(numeric(r.get(key)) for r in rows)):
            continue
        vals = [r[key] for r in rows if numeric(r.get(key))]
        summary[key] = float(np.mean(vals)) if vals else None
    if "status" in rows[0]:
        summary["unaligned"] = sum(1 for r in rows if r["status"] != "ok")
    if "order" in rows[0]:
        summary["reversed"] = sum(1 for r in rows if r["order"] == "reversed")
    return summary


def json_safe(value: Any) -> Any:
    """Replace inf/nan (not valid JSON) by None, recursively."""
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
