"""Sources -> windows -> blurry/sharp samples in a sample set, with shards, resume and scene-cut rejection.

The driver shared by blur-synth and phase-code. What turns an :class:`~blurtools.synth.exposure.Exposure`
into a blurry image is the ``render`` callable (averaging, or the phase-coded acquisition); everything else
is here: discovery and checking of sources before anything is written, streamed windows, deterministic
sample ids ``<source>_<start:06d>``, shard membership by a hash of the id (so shards partition any set
exactly and do not depend on the order or number of sources), skipping samples a previous run finished,
rejecting windows that cross a scene cut, sensor realism, quantisation and the threaded writer.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from blurtools.errors import BlurtoolsError, UsageError
from blurtools.io.sources import FrameSource, WindowReport, discover_sources, iter_windows, probe_source, read_frame
from blurtools.ops.crf import Crf, from_linear
from blurtools.synth.averaging import frames_to_tensor
from blurtools.synth.exposure import Exposure, window_exposure
from blurtools.synth.noise import apply_realism, sample_generator
from blurtools.synth.output import SampleWriterPool
from blurtools.synth.scenecut import content_scores

log = logging.getLogger(__name__)

Size = Tuple[int, int]  # (W, H)


@dataclass
class SynthConfig:
    """What determines a sample's content (recorded in meta.json; a resumed run must match it).

    Attributes:
        frames: N, odd. stride: frames between window starts (None = N).
        crf: camera response. interp / interp_method: temporal upsampling before the exposure.
        cut_threshold: content-score threshold for scene cuts; None disables rejection.
        noise: None, ``realblur`` or ``rsblur``. saturation: RSBlur saturation synthesis.
        seed: seeds every random choice (per sample, from the seed and the sample id).
        bits: 8 or 16 for the PNGs. resize / crop: (W, H) applied to every frame, resize first
            (crop is centred). stills: images of a folder are still photos. per_still: samples per still.
    """

    frames: int = 7
    stride: Optional[int] = None
    crf: Crf = field(default_factory=lambda: Crf("gamma", 2.2))
    interp: int = 1
    interp_method: str = "flow"
    cut_threshold: Optional[float] = 27.0
    noise: Optional[str] = None
    saturation: bool = False
    seed: int = 0
    bits: int = 8
    resize: Optional[Size] = None
    crop: Optional[Size] = None
    stills: bool = False
    per_still: int = 1

    def check(self) -> None:
        if self.frames < 1 or self.frames % 2 == 0:
            raise UsageError(f"--frames {self.frames}: the window must be a positive odd number (the middle frame is the ground truth)")
        if self.stride is not None and self.stride < 1:
            raise UsageError(f"--stride {self.stride}: must be >= 1")
        if self.interp < 1:
            raise UsageError(f"--interp {self.interp}: must be >= 1")
        if self.bits not in (8, 16):
            raise UsageError(f"--bits {self.bits}: must be 8 or 16")
        if self.per_still < 1:
            raise UsageError(f"--per-still {self.per_still}: must be >= 1")
        for name, size in (("--resize", self.resize), ("--crop", self.crop)):
            if size is not None and (size[0] < 1 or size[1] < 1):
                raise UsageError(f"{name} {size[0]}x{size[1]}: sizes must be positive")

    def record(self) -> Dict[str, Any]:
        d = asdict(self)
        d["crf"] = str(self.crf)
        d["stride"] = self.stride or self.frames
        d["resize"] = list(self.resize) if self.resize else None
        d["crop"] = list(self.crop) if self.crop else None
        return d


@dataclass
class RunControl:
    """How a run executes, not what it makes (not compared on resume)."""

    shard: Optional[Tuple[int, int]] = None
    max_samples: Optional[int] = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    workers: int = 2
    compress_level: int = 1


@dataclass
class RunStats:
    """Counts a run reports."""

    sources: int = 0
    frames: int = 0
    windows: int = 0
    written: int = 0
    already_done: int = 0
    other_shards: int = 0
    rejected_cuts: int = 0
    too_short: int = 0
    tail_frames: int = 0
    notes: List[str] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def parse_size(text: Optional[str], option: str) -> Optional[Size]:
    """``"WxH"`` -> (W, H); None passes through."""
    if text is None:
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"{option} {text}: expected WxH, e.g. 640x360") from None
    if w < 1 or h < 1:
        raise UsageError(f"{option} {text}: sizes must be positive")
    return w, h


def in_shard(sample_id: str, shard: Optional[Tuple[int, int]]) -> bool:
    """Shard membership by CRC-32 of the id: exact partition, stable under any change of the inputs."""
    if shard is None:
        return True
    return zlib.crc32(sample_id.encode("utf-8")) % shard[1] == shard[0]


def sample_id(source: FrameSource, start: int) -> str:
    return f"{source.name}_{start:06d}"


def _geometry(frames: List[np.ndarray], cfg: SynthConfig, where: str) -> List[np.ndarray]:
    """Resize then centre-crop display frames; returns arrays of the input dtype."""
    if cfg.resize is None and cfg.crop is None:
        return frames
    dtype = frames[0].dtype
    peak = 255.0 if dtype == np.uint8 else 65535.0
    x = frames_to_tensor(frames)
    if cfg.resize is not None:
        w, h = cfg.resize
        if (x.shape[-1], x.shape[-2]) != (w, h):
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    if cfg.crop is not None:
        w, h = cfg.crop
        H, W = x.shape[-2:]
        if w > W or h > H:
            raise BlurtoolsError(f"{where}: --crop {w}x{h} is larger than the frames ({W}x{H})")
        top, left = (H - h) // 2, (W - w) // 2
        x = x[..., top:top + h, left:left + w]
    arr = (x.clamp(0, 1) * peak).round().permute(0, 2, 3, 1).numpy().astype(dtype)
    return [np.ascontiguousarray(a) for a in arr]


def quantize(display: torch.Tensor, bits: int) -> np.ndarray:
    """(3, H, W) in [0, 1] -> uint8/uint16 (H, W, 3), rounded."""
    peak = 255.0 if bits == 8 else 65535.0
    a = (display.clamp(0, 1) * peak).round().permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(a.astype(np.uint8 if bits == 8 else np.uint16))


Render = Callable[[Exposure], torch.Tensor]
StillExposure = Callable[[np.ndarray, str, int], Exposure]


def synthesize(paths: Sequence["str | Path"], output: "str | Path", tool: str, options: Dict[str, Any],
               cfg: SynthConfig, control: RunControl, render: Render,
               still_exposure: Optional[StillExposure] = None,
               shared_files: Optional[Dict[str, bytes]] = None,
               on_window: Optional[Callable[[RunStats], None]] = None) -> RunStats:
    """Make (or resume) a sample set from sharp sources.

    Args:
        paths: sources as the user gave them (see blurtools.io.sources).
        output: the set folder; an existing set made with the same ``options`` is resumed.
        tool: the tool name recorded in meta.json. options: every content-determining option.
        cfg: window, camera and realism settings. control: shard, max samples, device, writer threads.
        render: Exposure -> blurry image in linear light (3, H, W).
        still_exposure: ``(image array, sample id, index) -> Exposure`` for still photos; None refuses stills.
        shared_files: {relative path: bytes} written once into the set (e.g. the PSF stack).
        on_window: called after every window (progress).
    Returns:
        :class:`RunStats`. Raises BlurtoolsError when no source yields a window (nothing is written).
    """
    cfg.check()
    sources = discover_sources(paths, stills=cfg.stills)
    for src in sources:
        if src.kind == "still" and still_exposure is None:
            raise UsageError(f"{src.path}: still photos are not supported by {tool}")
        probe_source(src)
    stats = RunStats(sources=len(sources))
    with SampleWriterPool(output, tool, options, shard=control.shard, bits=cfg.bits, workers=control.workers,
                          compress_level=control.compress_level) as pool:
        run = _SetRun(cfg, control, pool, stats, render, shared_files, on_window)
        for src in sources:
            if not run.budget_left():
                break
            if src.kind == "still":
                run.still(src, still_exposure)
            else:
                run.windows(src)
    if stats.windows == 0 and stats.already_done == 0 and stats.other_shards == 0:
        why = "; ".join(stats.notes) or "no frames"
        raise BlurtoolsError(f"no window of {cfg.frames} frames fits any source ({why}); use a smaller --frames; "
                             "nothing was written")
    return stats


class _SetRun:
    """One run of :func:`synthesize` over its sources: which samples are wanted, and making one."""

    def __init__(self, cfg: SynthConfig, control: RunControl, pool: SampleWriterPool, stats: RunStats, render: Render,
                 shared_files: Optional[Dict[str, bytes]], on_window: Optional[Callable[[RunStats], None]]):
        self.cfg, self.control, self.pool, self.stats, self.render = cfg, control, pool, stats, render
        self.shared_files, self.on_window = shared_files, on_window
        self.produced = 0  # samples in this shard so far (finished earlier or now), for --max-samples
        self.shared_written = False

    def budget_left(self) -> bool:
        return self.control.max_samples is None or self.produced < self.control.max_samples

    def wanted(self, src: FrameSource, start: int) -> bool:
        sid = sample_id(src, start)
        if not in_shard(sid, self.control.shard):
            self.stats.other_shards += 1
            return False
        if self.pool.is_done(sid):
            self.stats.already_done += 1
            self.produced += 1
            return False
        return True

    def emit(self, sid: str, exposure: Exposure, src: FrameSource, start: int, extra: Dict[str, Any]) -> None:
        cfg = self.cfg
        gen = sample_generator(cfg.seed, sid)
        linear = self.render(exposure)
        sharp_t = frames_to_tensor(exposure.sharp, self.control.device) if cfg.saturation else None
        linear, params = apply_realism(linear, sharp_t, cfg.noise, cfg.saturation, gen)
        blurry = quantize(from_linear(linear, cfg.crf), cfg.bits)
        if self.shared_files and not self.shared_written:
            for rel, data in self.shared_files.items():
                self.pool.write_shared(rel, data)
            self.shared_written = True
        rec = {**exposure.extra, **extra, "exposure_frames": exposure.length}
        if params:
            rec["realism"] = params
        self.pool.add(sid, blurry, exposure.sharp, source=str(src.path), start=start, files=exposure.files, **rec)
        self.stats.written += 1
        self.produced += 1
        if self.on_window:
            self.on_window(self.stats)

    def still(self, src: FrameSource, still_exposure: StillExposure) -> None:
        """``per_still`` samples of one still photo, each along its own trajectory."""
        image = None
        for k in range(self.cfg.per_still):
            if not self.budget_left():
                break
            sid = sample_id(src, k)
            if not self.wanted(src, k):
                continue
            if image is None:
                image = _geometry([read_frame(src.path)], self.cfg, str(src.path))[0]
            self.stats.windows += 1
            self.emit(sid, still_exposure(image, sid, k), src, k, {"kind": "still"})

    def windows(self, src: FrameSource) -> None:
        """Every wanted window of a frame sequence; windows across a scene cut are rejected."""
        cfg, stats, n = self.cfg, self.stats, self.cfg.frames
        report = WindowReport()
        for win in iter_windows(src, n, cfg.stride or n, wanted=lambda s: self.wanted(src, s), report=report):
            stats.windows += 1
            frames = _geometry(win.frames, cfg, str(src.path))
            extra: Dict[str, Any] = {}
            if cfg.cut_threshold is not None and n > 1:
                scores = content_scores(frames)
                extra["cut_score_max"] = round(float(scores.max()), 3)
                if float(scores.max()) > cfg.cut_threshold:
                    stats.rejected_cuts += 1
                    log.info("%s: window at frame %d crosses a scene cut (content score %.1f > %g); rejected",
                             src.path, win.start, float(scores.max()), cfg.cut_threshold)
                    continue
            exposure = window_exposure(frames, cfg.crf, cfg.interp, cfg.interp_method, self.control.device)
            self.emit(sample_id(src, win.start), exposure, src, win.start, extra)
            if not self.budget_left():
                break
        stats.frames += report.frames
        if report.too_short:
            stats.too_short += 1
        else:
            stats.tail_frames += report.tail
        for note in report.notes:
            log.warning("%s", note)
            stats.notes.append(note)
