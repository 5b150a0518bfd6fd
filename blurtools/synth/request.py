"""The synthesis request: what blur-synth and phase-code share, from the windows to how the run executes.

:class:`SynthRequest` is the request object of both synthesis commands; its fields (with their help) are
the commands' flags. It validates itself when made, turns into the pipeline's :class:`SynthConfig` (what
determines a sample), :class:`RunControl` (how the run executes) and the camera-shake trajectory of still
photos, writes its own provenance record, and runs the pipeline with a given ``render``.

Example::

    req = SynthRequest(frames=7, crf="srgb", noise="rsblur", device="cpu")
    stats = run_blur_synth([Path("clip.mp4")], Path("sets/clip"), req)
    print(summary_text("blur-synth", Path("sets/clip"), stats))
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Sequence

from blurtools.errors import UsageError
from blurtools.request import option, parse_shard

if TYPE_CHECKING:
    from blurtools.synth.pipeline import RunControl, RunStats, SynthConfig
    from blurtools.synth.stills import StillMaker

# The pipeline, the camera response and the noise model import torch (about 2 s): they are imported where a
# request is checked or run, so `blur-synth --help` and `blurtools --help` start without them.


def _cpus() -> int:
    """CPUs this process may run on (respects taskset/cgroup affinity, unlike os.cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 2


@dataclass
class SynthRequest:
    """Every knob blur-synth and phase-code share (each field's help is its flag's help)."""

    frames: int = option(7, short="-n", help="Frames per window N (odd); the middle frame N//2 is the ground truth.")
    stride: Optional[int] = option(None, help="Frames between window starts (default: N, disjoint windows).")
    crf: str = option("gamma:2.2", help="Camera response: linear, gamma, gamma:G or srgb; light is averaged in linear space.")
    interp: int = option(1, help="Temporal upsampling M: M-1 frames interpolated between neighbours before the exposure.")
    interp_method: str = option("flow", help="flow (classical optical flow) or linear (cross-fade).")
    cut_threshold: float = option(27.0, help="Reject windows whose content score (PySceneDetect HSV difference) exceeds "
                                  "this; 0 disables.")
    noise: str = option("none", help="Sensor noise on the blurry image: none, realblur or rsblur (RSBlur Poisson-Gaussian presets).")
    saturation: bool = option(False, negatable=True, help="RSBlur saturation synthesis.")
    stills: bool = option(False, help="Treat the images of a folder as still photos, not as a frame sequence.")
    per_still: int = option(1, help="Samples (trajectories) per still photo.")
    trajectory_length: float = option(60.0, help="Camera-shake trajectory: maximum path length in pixels.")
    trajectory_anisotropy: Optional[float] = option(None, help="Trajectory anisotropy (Boracchi-Foi 'expl', 0.001..0.01) "
                                                    "(default: random in that range).")
    trajectory_exposure: float = option(1.0, help="Fraction of the trajectory the shutter sees (1/1000, 1/10, 1/2, 1).")
    bits: int = option(8, help="PNG bit depth, 8 or 16.")
    max_samples: Optional[int] = option(None, help="Stop when this shard of the set holds this many samples.")
    resize: Optional[str] = option(None, metavar="WxH", help="Resize every frame to WxH first.")
    crop: Optional[str] = option(None, metavar="WxH", help="Centre-crop every frame to WxH (after --resize).")
    seed: int = option(0, shared="seed")
    shard: Optional[str] = option(None, shared="shard")
    device: str = option("auto", shared="device")
    workers: Optional[int] = option(None, help="PNG-encoding threads (default: CPU count).")
    png_level: int = option(1, help="zlib level 0..9 of the PNGs (1 is fast and ~10% larger than 6).")

    def __post_init__(self) -> None:
        self._config = self._check_config()
        if self.max_samples is not None and self.max_samples < 1:
            raise UsageError(f"--max-samples {self.max_samples}: must be >= 1")
        if not 0 <= self.png_level <= 9:
            raise UsageError(f"--png-level {self.png_level}: must be 0..9")
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"--workers {self.workers}: must be >= 1")
        parse_shard(self.shard)

    def config(self) -> SynthConfig:
        """What determines a sample's content (checked when the request was made; compared on resume)."""
        return self._config

    def _check_config(self) -> SynthConfig:
        from blurtools.ops.crf import parse_crf
        from blurtools.synth.noise import NOISE_PRESETS
        from blurtools.synth.pipeline import SynthConfig, parse_size

        noise = (self.noise or "none").lower()
        if noise != "none" and noise not in NOISE_PRESETS:
            raise UsageError(f"--noise {self.noise}: choose none, {', '.join(NOISE_PRESETS)}")
        cfg = SynthConfig(frames=self.frames, stride=self.stride, crf=parse_crf(self.crf), interp=self.interp,
                          interp_method=self.interp_method,
                          cut_threshold=self.cut_threshold if self.cut_threshold and self.cut_threshold > 0 else None,
                          noise=None if noise == "none" else noise, saturation=self.saturation, seed=self.seed,
                          bits=self.bits, resize=parse_size(self.resize, "--resize"), crop=parse_size(self.crop, "--crop"),
                          stills=self.stills, per_still=self.per_still)
        cfg.check()
        return cfg

    def control(self) -> RunControl:
        """How the run executes: shard, sample cap, device (resolved here), encoder threads, PNG level."""
        from blurtools.ops.device import resolve_device
        from blurtools.synth.pipeline import RunControl

        return RunControl(shard=parse_shard(self.shard), max_samples=self.max_samples,
                          device=resolve_device(self.device), workers=self.workers or _cpus(),
                          compress_level=self.png_level)

    def trajectory(self) -> Dict[str, Any]:
        """The camera-shake trajectory options of still photos (checked by :class:`StillMaker`)."""
        return {"max_length": self.trajectory_length, "anisotropy": self.trajectory_anisotropy,
                "exposure": self.trajectory_exposure}

    def record(self, cfg: SynthConfig, stills: StillMaker, sources: Sequence[Path]) -> Dict[str, Any]:
        """The options meta.json records: the sample-determining config, the trajectory and the sources."""
        return {**cfg.record(), "trajectory": stills.record(), "sources": [str(s) for s in sources]}


def run_synthesis(tool: str, sources: Sequence[Path], output: Path, cfg: SynthConfig, control: RunControl,
                  options: Dict[str, Any], render: Callable[[Any], Any], still_exposure: Callable[..., Any],
                  shared_files: Optional[Dict[str, bytes]] = None,
                  on_window: Optional[Callable[[Any], None]] = None) -> RunStats:
    """Run the pipeline (:func:`~blurtools.synth.pipeline.synthesize`) with a ``render`` of exposures."""
    from blurtools.synth.pipeline import synthesize

    return synthesize(list(sources), output, tool, options, cfg, control, render, still_exposure=still_exposure,
                      shared_files=shared_files, on_window=on_window)


def run_blur_synth(sources: Sequence[Path], output: Path, request: SynthRequest,
                   on_window: Optional[Callable[[Any], None]] = None, tool: str = "blur-synth") -> RunStats:
    """blur-synth: every window's blurry image is the average of its frames in linear light."""
    from blurtools.synth.stills import StillMaker

    cfg, control = request.config(), request.control()
    stills = StillMaker(cfg, request.trajectory(), control.device)
    return run_synthesis(tool, sources, output, cfg, control, request.record(cfg, stills, sources),
                         render=lambda exposure: exposure.average(), still_exposure=stills.exposure_for_blur,
                         on_window=on_window)


def summary_text(tool: str, output: Path, stats: RunStats, as_json: bool = False) -> str:
    """The run's result line: what was written and why the rest was not (JSON with ``as_json``)."""
    d = stats.as_dict()
    if as_json:
        return json.dumps({"tool": tool, "output": str(output), **d}, sort_keys=True)
    parts = [f"{d['already_done']} already done", f"{d['rejected_cuts']} rejected at scene cuts",
             f"{d['other_shards']} in other shards", f"{d['too_short']} source(s) shorter than the window",
             f"{d['tail_frames']} trailing frame(s) unused"]
    return f"{tool}: wrote {d['written']} sample(s) to {output} ({', '.join(parts)})"

