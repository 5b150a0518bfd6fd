"""Benchmark: blurtools' overhead over plain torch, per architecture, on one 1280x720 image on the CPU.

For every registered architecture (blurtools' own and the published ones) a checkpoint with seeded random
weights is written to a temporary folder in the layout users hold: blurtools' own checkpoint for the
project's models, the authors' container and key names for the published ones (built by the same helpers
the tests use). Each file is then timed two ways on the same (1, 3, 720, 1280) tensor:

* blurtools: ``load_predictor(kind, weights=FILE, refine="none")`` and ``deblur_image`` (``extract_video`` for
  video models) -- detection, padding to the model's multiple, windows (``--tile`` 0: the whole image, as
  architectures with whole-image statistics need), clamping, the copy back to the CPU;
* plain torch: the same loaded module called directly on the tensor under ``torch.no_grad()``.

The two are called alternately so that both see the same load. It prints the median seconds of each and the
ratio (target: blurtools <= 1.10 x plain torch). Models too
slow for the shared CPU run fewer repetitions (``--repeats``), never a smaller image.

    .venv/bin/python benchmarks/published_overhead.py [--repeats 3] [--only NAME ...] [--threads N] [--tile T]
                                                      [--no-warmup]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))      # the builders of the authors' layouts the tests use

from blurtools.infer.predict import InferOptions, deblur_image  # noqa: E402
from blurtools.infer.extract import ExtractOptions, extract_video  # noqa: E402
from blurtools.infer.loading import load_predictor  # noqa: E402
from blurtools.models.registry import MODELS, create  # noqa: E402

H, W = 720, 1280
TARGET = 1.10
Builder = Callable[[Path, int], Path]


def _blurtools_file(name: str) -> Builder:
    def build(folder: Path, seed: int) -> Path:
        torch.manual_seed(seed)
        net = create(name)
        path = folder / f"{name}.pt"
        torch.save({"format": "blurtools-weights/1", "arch": name, "model_args": dict(net.model_args),
                    "state_dict": net.state_dict(), "kind": net.kind, "frames": net.frames, "config": {},
                    "version": "bench", "tool": "benchmarks/published_overhead.py", "step": 0, "metrics": {}}, path)
        return path
    return build


def _saved(folder: Path, name: str, obj: Dict) -> Path:
    path = folder / name
    torch.save(obj, path)
    return path


def _seeded(module: torch.nn.Module, seed: int, scale: float) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return module


def published_builders() -> Dict[str, Tuple[str, Builder]]:
    """{label: (registry name, builder)} of the authors' released layouts, built as the tests build them."""
    from _authors_2018 import JIN_FILES, write_deblurgan_release, write_jin_release
    from _deblurgan_v2_official import official_file as deblurgan_v2

    def jin(folder: Path, seed: int, centre_only: bool) -> Path:
        write_jin_release(folder / "jin", seed)
        return folder / "jin" / JIN_FILES[0] if centre_only else folder / "jin"

    def nafnet(folder: Path, seed: int) -> Path:
        from blurtools.models.nafnet import NAFNet

        net = _seeded(NAFNet(width=32), seed, 0.05)      # the released NAFNet-GoPro-width32 configuration
        return _saved(folder, "NAFNet-GoPro-width32.pth", {"params": {k[len("net."):]: v for k, v in net.state_dict().items()}})

    def two_heads(folder: Path, seed: int) -> Path:
        from blurtools.models.two_heads import TwoHeadsNet

        return _saved(folder, "TwoHeads.pkl", _seeded(TwoHeadsNet(), seed, 0.03).state_dict())

    def deblurgan(folder: Path, seed: int) -> Path:
        write_deblurgan_release(folder / "latest_net_G.pth", seed)
        return folder / "latest_net_G.pth"

    return {
        "deblurgan (latest_net_G.pth)": ("deblurgan", deblurgan),
        "deblurgan-v2 (fpn_mobilenet.h5)": ("deblurgan-v2", lambda d, s: _saved(d, "fpn_mobilenet.h5", deblurgan_v2(s))),
        "nafnet (NAFNet-GoPro-width32.pth)": ("nafnet", nafnet),
        "two-heads (TwoHeads.pkl)": ("two-heads", two_heads),
        "jin2018-centre (center_v3.pth)": ("jin2018-centre", lambda d, s: jin(d, s, True)),
        "jin2018 (the four files, a folder)": ("jin2018", lambda d, s: jin(d, s, False)),
    }


def timed_pair(ours: Callable[[], object], plain: Callable[[], object], repeats: int, warmup: bool) -> Tuple[float, float]:
    """Median seconds of ``ours()`` and of ``plain()``, called alternately (the order swapped every round) so
    that both see the same load on a shared machine; one warm-up call of each first when ``warmup``."""
    if warmup:
        ours(), plain()
    t_ours, t_plain = [], []
    for r in range(repeats):
        for fn, times in ((ours, t_ours), (plain, t_plain))[::1 if r % 2 == 0 else -1]:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(t_ours), statistics.median(t_plain)


def measure(spec_name: str, path: Path, image: torch.Tensor, repeats: int, tile: int, warmup: bool
            ) -> Tuple[str, float, float]:
    """(kind, blurtools seconds, plain torch seconds) of the file's network on ``image`` (3, H, W)."""
    kind = MODELS[spec_name].cls.kind
    pred = load_predictor(kind, weights=path, refine="none")
    net, x = pred.model, image[None]
    if kind == "image":
        run = lambda: deblur_image(pred, image, InferOptions(tile=tile))  # noqa: E731
    else:
        run = lambda: extract_video(pred, image, ExtractOptions(tile=tile), out_dtype=torch.float32)  # noqa: E731

    def plain() -> torch.Tensor:
        with torch.no_grad():
            return net(x)

    return (kind, *timed_pair(run, plain, repeats, warmup))


def main(argv: List[str] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per path (after one warm-up)")
    ap.add_argument("--only", nargs="*", default=None, help="labels or registry names to time")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    ap.add_argument("--tile", type=int, default=0, help="blurtools' window side (0 = the whole image)")
    ap.add_argument("--no-warmup", action="store_true", help="skip the warm-up calls (slow models on a busy CPU)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cases: Dict[str, Tuple[str, Builder]] = {f"{n} (blurtools checkpoint)": (n, _blurtools_file(n))
                                             for n, spec in MODELS.items() if spec.recipe is not None}
    cases.update({k: v for k, v in published_builders().items() if v[0] in MODELS})
    if args.only:
        cases = {k: v for k, v in cases.items() if k in args.only or v[0] in args.only}
    image = torch.rand(3, H, W, generator=torch.Generator().manual_seed(0))
    print(f"{W}x{H}, CPU, {torch.get_num_threads()} threads, median of {args.repeats} alternating calls"
          f"{'' if args.no_warmup else ' after a warm-up'}; "
          f"blurtools --tile {args.tile} --refine none")
    print(f"{'architecture (file layout)':44s} {'kind':6s} {'blurtools s':>11s} {'torch s':>9s} {'ratio':>7s}")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for label, (name, build) in cases.items():
            path = build(Path(tmp), 0)
            kind, ours, plain = measure(name, path, image, args.repeats, args.tile, not args.no_warmup)
            worst = max(worst, ours / plain)
            print(f"{label:44s} {kind:6s} {ours:11.3f} {plain:9.3f} {ours / plain:7.3f}", flush=True)
    print(f"worst ratio {worst:.3f} (target <= {TARGET:.2f}): {'met' if worst <= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
