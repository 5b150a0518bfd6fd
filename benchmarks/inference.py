"""Benchmark: deblur and extract-video speed at 1280x720, and peak memory of a tiled 6000x4000 deblur.

The image is a 1280x720 photo on a 15 px straight blur (:func:`bench_image`). Times, per device (the CPU always; CUDA too when present, synchronised before every clock read):

* deblur of one 1280x720 image: the model's forward pass alone, and the whole pipeline (windows, blend,
  back on the CPU) as ``blurtools deblur`` runs it; the issue's GPU target is <= 0.05 s;
* extract-video of 7 frames from one 1280x720 image, the same two ways; GPU target <= 0.4 s;
* the classical method (no weights), pipeline only;
* the default (network and classical refinement) over the network alone (``--refine none``): issue 18's
  limits are 1.5x for deblur and 2x for extract-video;
* with --amp on CUDA, the bfloat16 pipeline as well.

The models are the shipped default weights, or the checkpoints given with --weights-image/--weights-video.
When neither exists the published configuration of --image-arch/--video-arch is timed with random weights
(the same computation as trained ones) and labelled so.

Peak memory: ``blurtools deblur`` runs in a subprocess on a 6000x4000 PNG (tiled on the CPU) and its
peak resident set size is read from the kernel (limit: 4 GB). The model there is --memory-weights, or
a small random DenseDeblurModule (the pipeline's own buffers are what grows with the image; a model's
activations depend on the window, not the image).

    .venv/bin/python benchmarks/inference.py [--weights-image W] [--weights-video W] [--repeats 3]
                                             [--no-memory] [--no-classical] [--no-gpu] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from blurtools.infer.predict import InferOptions, deblur_image  # noqa: E402
from blurtools.infer.extract import ExtractOptions, extract_video  # noqa: E402
from blurtools.infer.loading import Predictor, default_weights_path, load_predictor  # noqa: E402

H, W = 720, 1280
TARGETS = {"deblur": 0.05, "extract-video": 0.4}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int) -> float:
    """Median seconds of ``fn()``, synchronised on CUDA after one warm-up call (cuDNN autotuning, caches)."""
    if device.type == "cuda":
        fn()
        _sync(device)
    else:
        repeats = max(1, repeats // 3)      # a CPU run is slow and steady: fewer repeats
    times = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def predictor(kind: str, weights: "str | None", arch: str, device: torch.device, amp: bool = False,
              refine: str = "none") -> Predictor:
    path = weights or (str(default_weights_path(kind)) if default_weights_path(kind).is_file() else None)
    if path is not None:
        p = load_predictor(kind, weights=path, device=device, amp=amp, refine=refine)
        p.label = f"{p.name} ({Path(path).name})" + (" + refine" if p.refine is not None else "")
        return p
    if refine != "none":
        return None
    from blurtools.models import MODELS

    torch.manual_seed(0)
    net = MODELS[arch].cls().to(device).eval()
    p = Predictor(kind, arch, device, net, getattr(net, "frames", None), amp=amp)
    p.label = f"{arch} (random weights, published configuration)"
    return p


def bench_image() -> torch.Tensor:
    """(3, 720, 1280) in [0, 1]: scikit-image's astronaut photo, resized, on a 15 px straight blur in linear light
    (the classical refinement's cost depends on the blur it finds); smooth noise when scikit-image is missing."""
    import torch.nn.functional as F

    try:
        from skimage.data import astronaut
    except ImportError:
        g = torch.Generator().manual_seed(0)
        return F.interpolate(torch.rand(1, 3, H // 8, W // 8, generator=g), size=(H, W), mode="bicubic",
                             align_corners=False).clamp(0, 1)[0]
    from blurtools.infer.classical import linear_motion_kernel
    from blurtools.ops.crf import from_linear, to_linear
    from blurtools.ops.filters import fft_conv2d

    x = torch.from_numpy(astronaut()).permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, size=(H, W), mode="bicubic", align_corners=False).clamp(0, 1)
    return from_linear(fft_conv2d(to_linear(x, "gamma:2.2"), linear_motion_kernel(15, 30)), "gamma:2.2")[0]


def bench_device(device: torch.device, args, rows: list) -> None:
    image = bench_image()
    tile = 1024 if device.type == "cuda" else 512
    batch = 4 if device.type == "cuda" else 1
    for kind, task in (("image", "deblur"), ("video", "extract-video")):
        weights = args.weights_image if kind == "image" else args.weights_video
        arch = args.image_arch if kind == "image" else args.video_arch
        variants = [(False, "none"), (False, "classical")] + ([(True, "none")] if device.type == "cuda" and args.amp else [])
        for amp, refine in variants:
            p = predictor(kind, weights, arch, device, amp, refine)
            if p is None:
                continue
            x = image[None].to(device)
            if kind == "image":
                opts = InferOptions(tile=tile, overlap=32, batch=batch)
                pipe = lambda: deblur_image(p, image, opts)  # noqa: E731
            else:
                opts = ExtractOptions(tile=tile, overlap=32, batch=batch, frames=7)
                pipe = lambda: extract_video(p, image, opts)  # noqa: E731
                if p.frames != 7:
                    print(f"note: {p.label} makes {p.frames} frames; 7 go through frame multiplication", file=sys.stderr)
            fwd, _ = p.prepare(x, 7 if kind == "video" else None)
            model_s = timed(lambda: fwd(x), device, args.repeats)
            pipe_s = timed(pipe, device, args.repeats)
            rows.append((str(device), f"{task} {W}x{H}" + (" 7 frames" if kind == "video" else "") + (" amp" if amp else ""),
                         p.label, model_s, pipe_s, TARGETS[task] if device.type == "cuda" else None))
            del p
        if args.no_classical:
            continue
        # the command-line defaults: a general kernel, estimated and deconvolved in linear light
        p = load_predictor(kind, model="classical", device=device, method="multiscale", crf="gamma:2.2")
        opts = (InferOptions(tile=tile, overlap=32) if kind == "image"
                else ExtractOptions(tile=tile, overlap=32, frames=7))
        run = (lambda: deblur_image(p, image, opts)) if kind == "image" else (lambda: extract_video(p, image, opts))
        rows.append((str(device), f"{task} {W}x{H}" + (" 7 frames" if kind == "video" else ""), "classical (blind, multiscale)",
                     None, timed(run, device, max(1, args.repeats // 2)), None))
        if device.type == "cuda":
            torch.cuda.empty_cache()


def memory_run(args, task: str = "deblur") -> "tuple[float, float, str]":
    """(peak RSS in GB, seconds, model) of `blurtools deblur` (or `extract-video` into a frame folder) on a
    6000x4000 PNG, tiled, on the CPU."""

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big = tmp / "big.png"
        g = np.random.default_rng(0)
        coarse = g.integers(0, 256, (4000 // 16, 6000 // 16, 3), dtype=np.uint8)
        image = np.repeat(np.repeat(coarse, 16, axis=0), 16, axis=1)
        import imageio.v3 as iio

        iio.imwrite(big, image, extension=".png", compress_level=1)
        del image, coarse
        from blurtools.train.checkpoint import save_checkpoint, weights_record

        torch.manual_seed(0)
        if task == "deblur" and args.memory_weights:
            weights, label = args.memory_weights, Path(args.memory_weights).name
        elif task == "deblur":
            from blurtools.models.dm import DenseDeblurModule

            net = DenseDeblurModule(width=8, growth=8, rdb_layers=2, blocks=(1, 1, 1), bottleneck=1)
            weights, label = tmp / "small.pt", "small random dm (width 8)"
            save_checkpoint(weights, weights_record(net, "dm", {}, step=0))
        else:
            from blurtools.models.niu import NiuNet

            net = NiuNet(frames=7, width=4, blocks=1)
            weights, label = tmp / "small.pt", "small random niu (width 4), 7 frames"
            save_checkpoint(weights, weights_record(net, "niu", {}, step=0))
        env = dict(os.environ)
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)
        out = tmp / ("out.png" if task == "deblur" else "frames")
        cmd = [sys.executable, "-m", "blurtools", task, str(big), "-o", str(out), "--weights", str(weights),
               "--device", "cpu", "--tile", str(args.memory_tile), "--quiet"]
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)       # this child's own rusage, not every child's maximum
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed with status {proc.returncode}")
        peak_kb = usage.ru_maxrss
        return peak_kb / 1024 ** 2, seconds, label


# issue 18: the default (network + refinement) at most this many times the network alone (--refine none)
REFINE_LIMITS = {"deblur": 1.5, "extract-video": 2.0}


def print_refine_ratios(rows: list) -> None:
    """The default pipeline's time over the network-only pipeline's (``--refine none``), per device and task."""
    for dev, task, label, _, pipe_s, _ in rows:
        if not label.endswith("+ refine"):
            continue
        alone = [r[4] for r in rows if r[0] == dev and r[1] == task and r[2] == label[:-len(" + refine")]]
        if alone:
            name = task.split()[0]
            ratio = pipe_s / alone[0]
            print(f"{dev:7} {task:34} default / --refine none: {ratio:.2f}x (limit {REFINE_LIMITS[name]}x: "
                  f"{'PASS' if ratio <= REFINE_LIMITS[name] else 'FAIL'})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights-image", help="deblur checkpoint (default: the shipped weights)")
    ap.add_argument("--weights-video", help="extract-video checkpoint (default: the shipped weights)")
    ap.add_argument("--image-arch", default="dm", help="architecture timed with random weights when no image weights exist")
    ap.add_argument("--video-arch", default="niu", help="architecture timed with random weights when no video weights exist")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--no-gpu", action="store_true", help="time the CPU only")
    ap.add_argument("--no-cpu", action="store_true", help="time the GPU only")
    ap.add_argument("--amp", action="store_true", help="also time bfloat16 autocast on CUDA")
    ap.add_argument("--no-memory", action="store_true", help="skip the 6000x4000 memory run")
    ap.add_argument("--no-classical", action="store_true", help="skip timing --model classical")
    ap.add_argument("--memory-video", action="store_true", help="also measure extract-video (7 PNG frames) on 6000x4000")
    ap.add_argument("--memory-weights", help="checkpoint for the memory run (default: a small random dm)")
    ap.add_argument("--memory-tile", type=int, default=512)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [] if args.no_cpu else [torch.device("cpu")]
    if torch.cuda.is_available() and not args.no_gpu:
        devices.append(torch.device("cuda"))
        print(f"GPU: {torch.cuda.get_device_name(0)}", file=sys.stderr)
    print(f"CPU: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads; load average "
          f"{os.getloadavg()[0]:.1f}", file=sys.stderr)
    rows: list = []
    for dev in devices:
        bench_device(dev, args, rows)
    print(f"{'device':7} {'task':34} {'model':52} {'model only':>11} {'pipeline':>10}  target")
    for dev, task, label, model_s, pipe_s, target in rows:
        m = f"{model_s:10.3f}s" if model_s is not None else f"{'-':>11}"
        verdict = "" if target is None else f"<= {target} s {'PASS' if pipe_s <= target else 'FAIL'}"
        print(f"{dev:7} {task:34} {label[:52]:52} {m} {pipe_s:9.3f}s  {verdict}")
    print_refine_ratios(rows)
    for task in ([] if args.no_memory else ["deblur"]) + (["extract-video"] if args.memory_video else []):
        gb, seconds, label = memory_run(args, task)
        print(f"peak RSS of `blurtools {task}` on 6000x4000, CPU, --tile {args.memory_tile}, {label}: {gb:.2f} GB "
              f"in {seconds:.1f} s (limit 4 GB: {'PASS' if gb < 4 else 'FAIL'})")


if __name__ == "__main__":
    main()
