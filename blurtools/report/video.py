"""Video results (extract-video frame folders, GIF, MP4) on a report: synchronised players and their scores.

Each sequence is scored by ``score --video``'s scorer, which picks the frame order (forward or reversed,
one choice per sequence: time's direction is ambiguous from one blurry image). The player shows every
method in the order the scorer chose, frame by frame beside the ground truth, with that frame's PSNR.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from html import escape
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from blurtools.io.arrays import read_array
from blurtools.io.video import iter_frames
from blurtools.report.assets import error_map, thumbnail_uri, to_rgb8
from blurtools.report.collect import Results
from blurtools.report.results_page import fmt

FRAME_SIDE = 240
MIDDLE_SIDE = 640


def read_frames(ref: Any) -> List[np.ndarray]:
    """A frame list, frame folder or video file -> uint8 (H, W, 3) frames in file order."""
    if isinstance(ref, list):
        return [to_rgb8(read_array(p)) for p in ref]
    return [to_rgb8(f) for f in iter_frames(Path(ref))]


def _method_panel(label: str, kind: str, frames: List[np.ndarray], row: Dict[str, Any],
                  gt_mid: np.ndarray) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(player panel, viewer panel) of one method: frames in ground-truth order as the scorer chose."""
    if row.get("order") == "reversed":
        frames = frames[::-1]
    mid = frames[len(frames) // 2]
    player = {"label": label, "kind": kind, "order": row.get("order"), "frames": [thumbnail_uri(f, FRAME_SIDE, 78) for f in frames],
              "frame_psnr": row.get("frame_psnr"), "psnr": row.get("psnr"), "ssim": row.get("ssim")}
    viewer = {"label": label, "kind": kind, "thumb": thumbnail_uri(mid, MIDDLE_SIDE), "full": None,
              "psnr": row.get("middle_psnr"), "ssim": row.get("middle_ssim")}
    if mid.shape == gt_mid.shape:
        viewer["err_thumb"] = thumbnail_uri(error_map(mid, gt_mid), MIDDLE_SIDE)
    return player, viewer


def video_sample(results: Results, index: int) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(player data, viewer sample) of sequence ``index``; the viewer shows the middle frames."""
    name = results.samples[index]
    owners = [m for m in results.methods if name in m.rows]
    gt = read_frames(owners[0].gt_files[name])
    gt_mid = gt[len(gt) // 2]
    players, views = [], []
    sources = ([results.inputs] if results.inputs else []) + list(results.methods)
    for method in sources:
        if name not in method.rows:
            continue
        kind = "input" if method is results.inputs else "method"
        p, v = _method_panel(method.label, kind, read_frames(method.files[name]), method.rows[name], gt_mid)
        players.append(p)
        views.append(v)
    players.append({"label": "ground truth", "kind": "gt", "order": None, "frame_psnr": None,
                    "frames": [thumbnail_uri(f, FRAME_SIDE, 78) for f in gt]})
    views.append({"label": "ground truth (middle frame)", "kind": "gt", "thumb": thumbnail_uri(gt_mid, MIDDLE_SIDE),
                  "full": None})
    h, w = gt_mid.shape[:2]
    scale = min(1.0, MIDDLE_SIDE / max(h, w))
    player = {"name": name, "frames": len(gt), "fps": 6, "panels": players}
    viewer = {"name": name, "width": int(round(w * scale)), "height": int(round(h * scale)), "panels": views}
    return player, viewer


def all_video_samples(results: Results, workers: int = 2, on_done: Any = None) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """(players, viewer samples) of every sequence, in sample order."""

    def one(i: int) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        out = video_sample(results, i)
        if on_done:
            on_done(1)
        return out

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pairs = list(pool.map(one, range(len(results.samples))))
    return [p for p, _ in pairs], [v for _, v in pairs]


def players_html(players: Sequence[Dict[str, Any]]) -> str:
    """One player per sequence: every method and the ground truth, frame by frame, per-frame PSNR below."""
    blocks = []
    for i, spec in enumerate(players):
        figures = []
        for panel in spec["panels"]:
            badge = ""
            if panel.get("order"):
                note = "played backwards to match the ground truth" if panel["order"] == "reversed" else "as produced"
                badge = f'<span class="badge {panel["order"]}" title="{note}">{panel["order"]}</span>'
            mean = f' <span class="dim">{fmt(panel.get("psnr"), "psnr")} dB mean</span>' if panel.get("psnr") is not None else ""
            figures.append(f'<figure><img class="frame" src="{panel["frames"][0]}" alt="{escape(panel["label"])}">'
                           f'<figcaption><b>{escape(panel["label"])}</b>{badge}{mean}<br>'
                           f'<span class="frame-score dim"></span></figcaption></figure>')
        blocks.append(f'<div class="player" data-video="{i}"><h3>{escape(spec["name"])} '
                      f'<span class="dim">{spec["frames"]} frames</span></h3><div class="frames">{"".join(figures)}</div>'
                      f'<div class="controls"><button class="play">&#9654; play</button>'
                      f'<input type="range" min="0" value="0" step="1" aria-label="frame"></div></div>')
    return "".join(blocks)
