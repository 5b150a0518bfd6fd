"""Benchmark: phase-coded acquisition of one 720p window vs scipy.signal.fftconvolve per frame and channel.

One window = 7 linear-light frames 1280x720x3 and a 7-instant PSF stack of 27x27x3 (the default coded
lens). The baseline convolves every frame and channel with its PSF by ``scipy.signal.fftconvolve``
(mode "same") and averages, in float64 as numpy code written by hand is (``frame / 255.0``) and in
float32. blurtools' path (CodedExposure: one batched FFT of the window, cached PSF spectra, one inverse
FFT per channel) is timed on the CPU (pinned to ``--cores``) and on the GPU when there is one, and the
straightforward batched ``fft_conv2d`` form is shown for reference. Medians of ``--repeats`` runs; GPU
times are taken after ``torch.cuda.synchronize()``.

    .venv/bin/python benchmarks/phase_code.py [--cores 2] [--repeats 5]

Target: >= 5x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(fn, repeats: int, sync=None) -> float:
    fn()
    if sync:
        sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--frames", type=int, default=7)
    args = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))[:args.cores]
    os.sched_setaffinity(0, cpus)
    os.environ["OMP_NUM_THREADS"] = str(args.cores)
    import scipy.signal
    import torch

    from blurtools.ops.phase_psf import phase_psf_stack, sweep_psis
    from blurtools.synth.phase_coding import CodedExposure, coded_exposure_reference

    torch.set_num_threads(args.cores)
    k = args.frames
    stack = phase_psf_stack(sweep_psis(-4, 10, k))                       # (K, 3, 27, 27)
    g = torch.Generator().manual_seed(0)
    frames8 = (torch.rand(k, 3, 90, 160, generator=g) * 255).to(torch.uint8)
    frames8 = torch.nn.functional.interpolate(frames8.float(), size=(720, 1280), mode="bilinear").to(torch.uint8)
    x = (frames8.float() / 255) ** 2.2
    x64 = x.double().numpy()
    x32 = x.numpy()
    psf64 = stack.double().numpy()
    psf32 = stack.numpy()

    def scipy_window(xs, ps):
        out = np.zeros(xs.shape[1:], xs.dtype)
        for i in range(xs.shape[0]):
            for c in range(3):
                out[c] += scipy.signal.fftconvolve(xs[i, c], ps[i, c], mode="same")
        return out / xs.shape[0]

    t64 = timed(lambda: scipy_window(x64, psf64), max(1, args.repeats // 2))
    t32 = timed(lambda: scipy_window(x32, psf32), max(1, args.repeats // 2))
    coder = CodedExposure(stack, "cpu", pad="zeros")
    t_cpu = timed(lambda: coder(x), args.repeats)
    t_ref = timed(lambda: coded_exposure_reference(x, stack, pad="zeros"), args.repeats)
    ours = coder(x).numpy()
    err = np.abs(ours - scipy_window(x64, psf64)).max()
    print(f"one window: {k} frames 1280x720x3, PSF stack {tuple(stack.shape)}, CPU pinned to {len(cpus)} cores")
    print(f"scipy.signal.fftconvolve per frame and channel, float64: {t64 * 1000:7.0f} ms")
    print(f"scipy.signal.fftconvolve per frame and channel, float32: {t32 * 1000:7.0f} ms")
    print(f"blurtools fft_conv2d batched, then mean (cpu):         {t_ref * 1000:7.0f} ms  ({t64 / t_ref:.1f}x / {t32 / t_ref:.1f}x)")
    print(f"blurtools CodedExposure (cpu):                          {t_cpu * 1000:7.0f} ms  ({t64 / t_cpu:.1f}x / {t32 / t_cpu:.1f}x)")
    print(f"max |difference| vs scipy: {err:.2e} (linear light, 0..1)")
    if torch.cuda.is_available():
        dev = torch.device("cuda")
        gpu = CodedExposure(stack, dev, pad="zeros")
        xg = x.to(dev)
        sync = torch.cuda.synchronize
        t_gpu = timed(lambda: gpu(xg), args.repeats * 4, sync)
        xu = frames8.to(dev)
        lut = ((torch.arange(256, device=dev, dtype=torch.float32) / 255) ** 2.2)
        t_gpu_e2e = timed(lambda: gpu(lut[xu.int()]), args.repeats * 4, sync)
        t_gpu_ref = timed(lambda: coded_exposure_reference(xg, stack.to(dev), pad="zeros"), args.repeats * 4, sync)
        print(f"blurtools fft_conv2d batched ({torch.cuda.get_device_name()}): {t_gpu_ref * 1000:7.1f} ms  ({t64 / t_gpu_ref:.0f}x / {t32 / t_gpu_ref:.0f}x)")
        print(f"blurtools CodedExposure (GPU):                          {t_gpu * 1000:7.1f} ms  ({t64 / t_gpu:.0f}x / {t32 / t_gpu:.0f}x)")
        print(f"  incl. uint8 -> linear on the GPU:                     {t_gpu_e2e * 1000:7.1f} ms")
    else:
        print("no GPU here: GPU timing skipped")


if __name__ == "__main__":
    main()
