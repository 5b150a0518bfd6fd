"""What a score run says about its rows: identical pairs' PSNR capped, RGB-to-gray conversions counted.

The PSNR of an identical pair is infinite (MSE = 0), which would make a set's mean infinite; evaluation
scripts of the deblurring literature (DeblurGAN's among them) report it as 100 dB, and so does blurtools,
counting the rows it capped so the output can say so.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List

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
