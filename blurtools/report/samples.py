"""The pictures of each image sample: thumbnails, full-size references and error maps, made in parallel.

For one sample the panels are: the blurry input (when given), each method, the ground truth. Each panel
is a dict for the page's data: label, kind ("input" | "method" | "gt"), thumb (JPEG data URI), full
(relative reference or None), err / err_thumb (the error map against the ground truth) and the scorer's
psnr / ssim / lpips.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from blurtools.io.arrays import read_array
from blurtools.report.assets import AssetFolder, error_map, png_bytes, thumbnail_uri, to_rgb8
from blurtools.report.collect import Method, Results

#: The table's thumbnail: a separate small one, not the viewer's 320 px one scaled down by the browser.
MINI_SIDE = 112


def safe_name(text: str) -> str:
    """A file-name-safe version of a sample or method name (letters, digits, - _ . kept)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"


def _panel(label: str, kind: str, rgb: np.ndarray, source: Path, stem: str, assets: AssetFolder,
           gt: Optional[np.ndarray], row: Optional[Dict[str, Any]], metrics: List[str]) -> Dict[str, Any]:
    panel: Dict[str, Any] = {"label": label, "kind": kind, "thumb": thumbnail_uri(rgb),
                             "full": assets.full_size(source, stem, rgb)}
    if gt is not None and gt.shape == rgb.shape:
        err = error_map(rgb, gt)
        if assets.mode == "none":
            panel["err_thumb"] = thumbnail_uri(err)
        else:
            panel["err"] = assets.write(stem + ".error.png", png_bytes(err))
            panel["err_thumb"] = thumbnail_uri(err, side=MINI_SIDE, quality=60)  # shown while the PNG loads
    for key in metrics:
        if row is not None and key in row:
            panel[key] = row[key]
    return panel


def sample_panels(results: Results, index: int, assets: AssetFolder) -> Dict[str, Any]:
    """The page data of sample ``index``: name, width, height and its panels."""
    name = results.samples[index]
    folder = f"{index:05d}_{safe_name(name)}"
    owners = [m for m in ([results.inputs] if results.inputs else []) + results.methods if name in m.rows]
    gt_source = Path(owners[0].gt_files[name]) if owners else None
    gt = to_rgb8(read_array(gt_source)) if gt_source is not None else None
    panels: List[Dict[str, Any]] = []
    first: Optional[np.ndarray] = None  # the first panel's picture, for the table's thumbnail
    sources: List[Method] = ([results.inputs] if results.inputs else []) + list(results.methods)
    for k, method in enumerate(sources):
        if name not in method.rows:
            continue
        kind = "input" if method is results.inputs else "method"
        rgb = to_rgb8(read_array(method.files[name]))
        first = rgb if first is None else first
        stem = f"{folder}/{k:02d}_{safe_name(method.label)}"
        panels.append(_panel(method.label, kind, rgb, method.files[name], stem, assets, gt, method.rows[name],
                             results.metrics))
    if gt is not None and gt_source is not None:
        panels.append(_panel("ground truth", "gt", gt, gt_source, f"{folder}/gt", assets, None, None, []))
    h, w = (gt.shape[:2] if gt is not None else (0, 0))
    first = first if first is not None else gt
    mini = thumbnail_uri(first, side=MINI_SIDE, quality=70) if first is not None else ""
    return {"name": name, "width": int(w), "height": int(h), "mini": mini, "panels": panels}


def all_sample_panels(results: Results, assets: AssetFolder, workers: int = 2,
                      on_done: Any = None) -> List[Dict[str, Any]]:
    """:func:`sample_panels` for every sample, ``workers`` samples at a time (decoding and JPEG encoding
    release the GIL); in sample order."""

    def one(i: int) -> Dict[str, Any]:
        out = sample_panels(results, i, assets)
        if on_done:
            on_done(1)
        return out

    if workers <= 1:
        return [one(i) for i in range(len(results.samples))]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(len(results.samples))))
