"""ONNX export of a loaded network, checked against onnxruntime on the CPU before the file appears.

The graph takes what the network's ``forward`` takes: ``blurry`` (B, 3, H, W) float32 RGB in [0, 1], and
gives ``sharp`` (B, 3, H, W) for image models or ``frames`` (B, N, 3, H, W) for video models, same range.
The kernel-basis networks (blurtools' ``kernel-basis``, Carbajal et al.'s ``two-heads``) give their estimate,
``kernels`` (B, K, k, k) and ``mixing`` (B, K, H, W): the Richardson-Lucy deblurring around them is a
classical iteration (FFT convolutions), not a network.
Batch, height and width are dynamic axes where the architecture allows: the graph is traced at a size
that is a multiple of nothing (so every padding branch of the network is recorded with sizes computed
from the input), then checked by onnxruntime at that size and at a second one. A network whose graph
only reproduces its trace size (a size fixed by the architecture) is exported at a fixed size instead,
and the result says so.

The file records how it was made in its metadata (``metadata_props``): tool, version, the source weights
file and its SHA-256, architecture, model arguments, input and output conventions.

onnx and onnxruntime are optional dependencies (``pip install 'blurtools[onnx]'``).

Example::

    report = export_onnx(model, "model.onnx", provenance={"arch": "dm"})
    report["max_abs_diff"]          # onnxruntime against PyTorch, both sizes, e.g. 3e-6
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from blurtools import __version__
from blurtools.errors import BlurtoolsError, UsageError
from blurtools.io.atomic import atomic_path

log = logging.getLogger(__name__)

__all__ = ["export_onnx", "onnx_parity", "TOLERANCE", "TRACE_SIZE", "CHECK_SIZE"]

TOLERANCE = 1e-4
TRACE_SIZE = (131, 197)     # a multiple of nothing: every padding branch is taken while tracing
CHECK_SIZE = (96, 160)      # multiples of 32: the branches that pad nothing must work too
OPSET = 17
TOOL = "blurtools weights export"


_OUTPUTS_DOC = {
    "sharp": "sharp: (B, 3, H, W) RGB, about [0, 1]",
    "frames": "frames: (B, N, 3, H, W) RGB, about [0, 1], in time order",
    "kernels": "kernels: (B, K, k, k) the blur kernel basis; mixing: (B, K, H, W) per-pixel weights "
               "(the deblurring iteration around them is not part of the graph)",
}


def _onnx_modules() -> Tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise BlurtoolsError(f"ONNX export needs the onnx and onnxruntime packages ({exc.name} is missing); "
                             "install them with: pip install 'blurtools[onnx]'") from None
    return onnx, onnxruntime


class KernelEstimate(nn.Module):
    """The network of a kernel-basis model (blurry -> kernels, mixing); its Richardson-Lucy restoration is a
    classical iteration around the network, which ``blurtools deblur`` runs, not part of the graph."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, blurry: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.net.estimate(blurry)


def graph_of(model: nn.Module) -> Tuple[nn.Module, Dict[str, Dict[int, str]]]:
    """The module to export and its outputs with their dynamic axes: the network itself (``sharp`` (B, 3,
    H, W) or ``frames`` (B, N, 3, H, W)), or for the kernel-basis networks (blurtools' own and Carbajal et
    al.'s) their estimate, ``kernels`` (B, K, k, k) and ``mixing`` (B, K, H, W)."""
    from blurtools.models.kernel_basis import KernelBasisNet
    from blurtools.models.two_heads import TwoHeadsNet

    if isinstance(model, (KernelBasisNet, TwoHeadsNet)):
        return KernelEstimate(model), {"kernels": {0: "batch"}, "mixing": {0: "batch", 2: "height", 3: "width"}}
    if model.kind == "video":
        return model, {"frames": {0: "batch", 3: "height", 4: "width"}}
    return model, {"sharp": {0: "batch", 2: "height", 3: "width"}}


def _trace(graph: nn.Module, outputs: Dict[str, Dict[int, str]], path: Path, size: Tuple[int, int], dynamic: bool) -> None:
    example = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
    axes = {"blurry": {0: "batch", 2: "height", 3: "width"}, **outputs}
    with warnings.catch_warnings(), torch.no_grad():
        # the tracer's notes on Python-side shape arithmetic are what the size check below verifies
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (example,), str(path), dynamo=False, input_names=["blurry"], output_names=list(outputs),
                          dynamic_axes=axes if dynamic else None, opset_version=OPSET, do_constant_folding=True)


def onnx_parity(model: nn.Module, onnx_path: "str | Path", sizes: Sequence[Tuple[int, int]], batch: int = 1,
                seed: int = 0) -> List[float]:
    """Largest |onnxruntime - PyTorch| per size (over every output) on seeded uniform [0, 1] (batch, 3, h, w).

    Raises:
        BlurtoolsError: onnxruntime cannot open or run the graph at a size (the message says which).
    """
    _, ort = _onnx_modules()
    graph, _ = graph_of(model)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(seed)
    diffs = []
    for h, w in sizes:
        x = torch.rand(batch, 3, h, w, generator=g)
        with torch.no_grad():
            want = graph(x)
        want = [t.float().numpy() for t in (want if isinstance(want, tuple) else (want,))]
        try:
            got = session.run(None, {"blurry": x.numpy()})
        except Exception as exc:  # onnxruntime raises its own exception types for shape errors
            raise BlurtoolsError(f"onnxruntime cannot run the graph at {h}x{w} ({str(exc).splitlines()[0][:200]})") from None
        if [g.shape for g in got] != [t.shape for t in want]:
            raise BlurtoolsError(f"onnxruntime gives shapes {[g.shape for g in got]} at {h}x{w}, PyTorch "
                                 f"{[t.shape for t in want]}")
        diffs.append(max(float(abs(g - t).max()) for g, t in zip(got, want)))
    return diffs


def _stamp(onnx, path: Path, meta: Mapping[str, Any]) -> None:
    graph = onnx.load(str(path))
    del graph.metadata_props[:]
    for key, value in meta.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = str(key), value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    graph.producer_name, graph.producer_version = "blurtools", __version__
    onnx.save(graph, str(path))


def export_onnx(model: nn.Module, out: "str | Path", provenance: Optional[Mapping[str, Any]] = None,
                size: Optional[Tuple[int, int]] = None, tolerance: float = TOLERANCE) -> Dict[str, Any]:
    """Write ``model`` (eval mode, CPU) as ONNX to ``out`` after checking it under onnxruntime.

    Args:
        model: a network with ``kind`` "image" or "video"; moved to the CPU and put in eval mode.
        out: the .onnx file, written atomically (nothing is left when the check fails).
        provenance: recorded in the file's metadata (source file, sha256, arch, model_args...).
        size: (H, W) for a fixed-size graph; None = dynamic height and width where the architecture allows.
        tolerance: the largest |onnxruntime - PyTorch| accepted (1e-4).

    Returns:
        ``{"file", "dynamic", "sizes", "max_abs_diff", "per_size", "opset", "tolerance"}``.

    Raises:
        BlurtoolsError: onnx/onnxruntime missing, the network uses an operation ONNX cannot express, or
            onnxruntime disagrees with PyTorch by more than ``tolerance``.
    """
    onnx, _ = _onnx_modules()
    if size is not None and (len(size) != 2 or min(size) < 32):
        raise UsageError(f"export size {size}: need height and width >= 32")
    model = model.to("cpu").eval()
    graph, outputs = graph_of(model)
    out = Path(out)
    with atomic_path(out, suffix=".onnx") as tmp:
        dynamic = size is None
        sizes = [TRACE_SIZE, CHECK_SIZE] if dynamic else [tuple(size)]
        diffs = _export_checked(model, tmp, sizes[0], dynamic, sizes, tolerance)
        if dynamic and diffs is None:
            log.info("%s: the graph reproduces only its trace size; exporting at a fixed %dx%d", out, *TRACE_SIZE)
            dynamic, sizes = False, [TRACE_SIZE]
            diffs = _export_checked(model, tmp, TRACE_SIZE, False, sizes, tolerance)
        if diffs is None or max(diffs) > tolerance:
            worst = "cannot run" if diffs is None else f"{max(diffs):.3g}"
            raise BlurtoolsError(f"{out}: onnxruntime disagrees with PyTorch ({worst} > {tolerance:g}); nothing written")
        meta = {"tool": TOOL, "version": __version__, "input": "blurry: (B, 3, H, W) float32 RGB in [0, 1]",
                "outputs": _OUTPUTS_DOC[next(iter(outputs))],
                "dynamic_height_width": dynamic, "sizes_checked": [list(s) for s in sizes],
                "max_abs_diff": max(diffs), **dict(provenance or {})}
        _stamp(onnx, tmp, meta)
    return {"file": str(out), "dynamic": dynamic, "sizes": [list(s) for s in sizes], "max_abs_diff": max(diffs),
            "per_size": diffs, "opset": OPSET, "tolerance": tolerance}


def _export_checked(model: nn.Module, tmp: Path, trace: Tuple[int, int], dynamic: bool,
                    sizes: Sequence[Tuple[int, int]], tolerance: float) -> Optional[List[float]]:
    """Trace ``model`` to ``tmp`` and return its parity per size, or None when the graph fails a size."""
    graph, outputs = graph_of(model)
    try:
        _trace(graph, outputs, tmp, trace, dynamic)
    except Exception as exc:  # the exporter raises many types for operations it cannot express
        raise BlurtoolsError(f"{type(model).__name__} cannot be exported to ONNX ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:240]})") from None
    try:
        diffs = onnx_parity(model, tmp, sizes)
    except BlurtoolsError as exc:
        if not dynamic:
            raise
        log.debug("dynamic graph failed: %s", exc)
        return None
    return diffs if not dynamic or max(diffs) <= tolerance else None
