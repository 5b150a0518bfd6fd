"""``blur-synth``: blurry/sharp training pairs from sharp video, frame folders, dataset trees and photos."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from blurtools.cli.common import (DebugOption, DeviceOption, QuietOption, SeedOption, ShardOption, handle_errors,
                                  parse_shard, progress, run_standalone, setup_logging)

COMMAND_NAME = "blur-synth"

MAN_EXAMPLES = [
    ("GoPro-style pairs: 7-frame windows of every sequence of a GoPro_Large_all tree, gamma 2.2.",
     "blur-synth GOPRO_Large_all -o sets/gopro7 --frames 7 --crf gamma:2.2"),
    ("REDS-style: 8x flow interpolation before averaging, sRGB response, RSBlur noise and saturation.",
     "blur-synth train_orig -o sets/reds --interp 8 --crf srgb --noise rsblur --saturation"),
    ("Split a big job over two machines writing into one set (re-run to resume).",
     "blur-synth clips/ -o sets/big --shard 0/2    # and --shard 1/2 on the other"),
    ("Still photos moved along camera-shake trajectories, 4 samples each.",
     "blur-synth photos/ --stills --per-still 4 -o sets/shake"),
]
MAN_FILES = [
    ("SET/meta.json", "Tool, version and every option that determines the samples."),
    ("SET/samples.jsonl", "One line per finished sample (samples.shard-I-of-N.jsonl for --shard runs)."),
    ("SET/blurry/ID.png, SET/sharp/ID/K.png", "The blurry image and its N sharp frames (K = 0000..N-1)."),
    ("SET/kernel/ID.npy", "For still photos: the whole-exposure blur kernel (float32, sums to 1)."),
]

# Options shared with phase-code (imported there).
OutputOption = typer.Option(..., "--output", "-o", help="Sample-set folder to write (an existing set made with the same options is resumed).")
FramesOption = typer.Option(7, "--frames", "-n", help="Frames per window N (odd); the middle frame N//2 is the ground truth.")
StrideOption = typer.Option(None, "--stride", help="Frames between window starts (default: N, disjoint windows).")
CrfOption = typer.Option("gamma:2.2", "--crf", help="Camera response: linear, gamma, gamma:G or srgb; light is averaged in linear space.")
InterpOption = typer.Option(1, "--interp", help="Temporal upsampling M: M-1 frames interpolated between neighbours before the exposure.")
InterpMethodOption = typer.Option("flow", "--interp-method", help="flow (classical optical flow) or linear (cross-fade).")
CutOption = typer.Option(27.0, "--cut-threshold", help="Reject windows whose content score (PySceneDetect HSV difference) exceeds this; 0 disables.")
NoiseOption = typer.Option("none", "--noise", help="Sensor noise on the blurry image: none, realblur or rsblur (RSBlur Poisson-Gaussian presets).")
SaturationOption = typer.Option(False, "--saturation/--no-saturation", help="RSBlur saturation synthesis (off by default).")
BitsOption = typer.Option(8, "--bits", help="PNG bit depth, 8 or 16.")
MaxSamplesOption = typer.Option(None, "--max-samples", help="Stop when this shard of the set holds this many samples.")
ResizeOption = typer.Option(None, "--resize", metavar="WxH", help="Resize every frame to WxH first.")
CropOption = typer.Option(None, "--crop", metavar="WxH", help="Centre-crop every frame to WxH (after --resize).")
StillsOption = typer.Option(False, "--stills", help="Treat the images of a folder as still photos, not as a frame sequence.")
PerStillOption = typer.Option(1, "--per-still", help="Samples (trajectories) per still photo.")
TrajLengthOption = typer.Option(60.0, "--trajectory-length", help="Camera-shake trajectory: maximum path length in pixels.")
TrajAnisoOption = typer.Option(None, "--trajectory-anisotropy", help="Trajectory anisotropy (Boracchi-Foi 'expl', 0.001..0.01) (default: random in that range).")
TrajExposureOption = typer.Option(1.0, "--trajectory-exposure", help="Fraction of the trajectory the shutter sees (1/1000, 1/10, 1/2, 1).")
WorkersOption = typer.Option(None, "--workers", help="PNG-encoding threads (default: CPU count).")
PngLevelOption = typer.Option(1, "--png-level", help="zlib level 0..9 of the PNGs (1 is fast and ~10% larger than 6).")
JsonOption = typer.Option(False, "--json", help="Print the run summary as JSON.")


def trajectory_options(length: float, anisotropy: Optional[float], exposure: float) -> Dict[str, Any]:
    return {"max_length": length, "anisotropy": anisotropy, "exposure": exposure}


def summary(tool: str, output: Path, stats: Any, as_json: bool) -> str:
    """The run's result line (stdout)."""
    d = stats.as_dict()
    if as_json:
        return json.dumps({"tool": tool, "output": str(output), **d}, sort_keys=True)
    parts = [f"{d['already_done']} already done", f"{d['rejected_cuts']} rejected at scene cuts",
             f"{d['other_shards']} in other shards", f"{d['too_short']} source(s) shorter than the window",
             f"{d['tail_frames']} trailing frame(s) unused"]
    return f"{tool}: wrote {d['written']} sample(s) to {output} ({', '.join(parts)})"


def run_synthesis(tool: str, sources: List[Path], output: Path, cfg: Any, control: Any, options: Dict[str, Any],
                  render: Any, still_exposure: Any, shared_files: Any, quiet: bool, as_json: bool) -> None:
    from blurtools.synth.pipeline import synthesize

    with progress(None, tool, quiet, unit="samples") as bar:
        stats = synthesize(sources, output, tool, options, cfg, control, render, still_exposure=still_exposure,
                           shared_files=shared_files, on_window=lambda s: bar.advance())
    print(summary(tool, output, stats, as_json), flush=True)


def build_config(frames: int, stride: Optional[int], crf: str, interp: int, interp_method: str, cut_threshold: float,
                 noise: str, saturation: bool, seed: int, bits: int, resize: Optional[str], crop: Optional[str],
                 stills: bool, per_still: int) -> Any:
    from blurtools.errors import UsageError
    from blurtools.ops.crf import parse_crf
    from blurtools.synth.noise import NOISE_PRESETS
    from blurtools.synth.pipeline import SynthConfig, parse_size

    noise_l = (noise or "none").lower()
    if noise_l != "none" and noise_l not in NOISE_PRESETS:
        raise UsageError(f"--noise {noise}: choose none, {', '.join(NOISE_PRESETS)}")
    cfg = SynthConfig(frames=frames, stride=stride, crf=parse_crf(crf), interp=interp, interp_method=interp_method,
                      cut_threshold=cut_threshold if cut_threshold and cut_threshold > 0 else None,
                      noise=None if noise_l == "none" else noise_l, saturation=saturation, seed=seed, bits=bits,
                      resize=parse_size(resize, "--resize"), crop=parse_size(crop, "--crop"), stills=stills,
                      per_still=per_still)
    cfg.check()
    return cfg


def _cpus() -> int:
    """CPUs this process may run on (respects taskset/cgroup affinity, unlike os.cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 2


def build_control(shard: Optional[str], max_samples: Optional[int], device: str, workers: Optional[int],
                  png_level: int) -> Any:
    from blurtools.errors import UsageError
    from blurtools.ops.device import resolve_device
    from blurtools.synth.pipeline import RunControl

    if max_samples is not None and max_samples < 1:
        raise UsageError(f"--max-samples {max_samples}: must be >= 1")
    if not 0 <= png_level <= 9:
        raise UsageError(f"--png-level {png_level}: must be 0..9")
    if workers is not None and workers < 1:
        raise UsageError(f"--workers {workers}: must be >= 1")
    return RunControl(shard=parse_shard(shard), max_samples=max_samples, device=resolve_device(device),
                      workers=workers or _cpus(), compress_level=png_level)


@handle_errors
def command(
    sources: List[Path] = typer.Argument(..., help="Video files, frame folders, dataset trees (GoPro_Large_all, REDS train_orig) or still photos."),
    output: Path = OutputOption,
    frames: int = FramesOption,
    stride: Optional[int] = StrideOption,
    crf: str = CrfOption,
    interp: int = InterpOption,
    interp_method: str = InterpMethodOption,
    cut_threshold: float = CutOption,
    noise: str = NoiseOption,
    saturation: bool = SaturationOption,
    stills: bool = StillsOption,
    per_still: int = PerStillOption,
    trajectory_length: float = TrajLengthOption,
    trajectory_anisotropy: Optional[float] = TrajAnisoOption,
    trajectory_exposure: float = TrajExposureOption,
    bits: int = BitsOption,
    max_samples: Optional[int] = MaxSamplesOption,
    resize: Optional[str] = ResizeOption,
    crop: Optional[str] = CropOption,
    seed: int = SeedOption,
    shard: Optional[str] = ShardOption,
    device: str = DeviceOption,
    workers: Optional[int] = WorkersOption,
    png_level: int = PngLevelOption,
    json_out: bool = JsonOption,
    quiet: bool = QuietOption,
    debug: bool = DebugOption,
) -> None:
    """Make blurry/sharp pairs by averaging N consecutive sharp frames in linear light.

    Each window of N frames (every --stride frames) becomes one sample: the blurry image g(mean g^-1(S_i)) and all N sharp frames; the middle one, N//2, is the single-image ground truth. Windows crossing a scene cut are rejected, and trailing frames that fill no window are skipped; both are counted in the summary. Still photos are moved along random camera-shake trajectories (their kernels are saved as kernel/ID.npy). Re-running over an existing set skips finished samples; --shard I/N writes only that shard, and shards may share one output folder.
    """
    setup_logging(quiet)
    from blurtools.synth.stills import StillMaker

    cfg = build_config(frames, stride, crf, interp, interp_method, cut_threshold, noise, saturation, seed, bits,
                       resize, crop, stills, per_still)
    control = build_control(shard, max_samples, device, workers, png_level)
    traj = trajectory_options(trajectory_length, trajectory_anisotropy, trajectory_exposure)
    stills_maker = StillMaker(cfg, traj, control.device)
    options = {**cfg.record(), "trajectory": stills_maker.record(), "sources": [str(s) for s in sources]}
    run_synthesis(COMMAND_NAME, sources, output, cfg, control, options,
                  render=lambda exposure: exposure.average(), still_exposure=stills_maker.exposure_for_blur,
                  shared_files=None, quiet=quiet, as_json=json_out)


def main() -> None:
    run_standalone(command, COMMAND_NAME)
