"""Choosing what does the work: the shipped default weights, a checkpoint the user gives, or the classical method.

A :class:`Predictor` wraps the choice behind one call, ``predictor.prepare(images)``, which returns the
window function that :func:`blurtools.infer.tiling.run_tiled` applies. Learned models map a window to its
result directly; the classical method first estimates one blur kernel per whole image (a kernel estimated
on a window would differ from window to window) and then deconvolves window by window with it.

Shipped weights live in ``blurtools/weights/`` (``deblur.pt`` for ``deblur``, ``extract_video.pt`` for
``extract-video``): plain checkpoint dicts as ``blurtools train`` writes them.

Example::

    pred = load_predictor("image", device="cpu")                       # the shipped default
    pred = load_predictor("video", weights="runs/niu/weights.pt")       # any checkpoint train wrote
    pred = load_predictor("image", model="classical", kernel=k)         # no weights at all
    fn, min_overlap = pred.prepare(blurry)                             # blurry (B, 3, H, W)
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from blurtools import models
from blurtools.errors import BlurtoolsError, UsageError
from blurtools.infer.classical import DECONVS, METHODS, classical_deblur, classical_video, estimate_kernel
from blurtools.infer.frame_multiply import multiply_frames
from blurtools.io.digest import file_sha256
from blurtools.models.files import read_weights_file
from blurtools.models.jin2018_release import load_cascade, release_part
from blurtools.ops.device import resolve_device

log = logging.getLogger(__name__)

__all__ = ["MODELS", "REFINES", "REFINE_CLASSICAL", "DEFAULT_WEIGHTS", "CLASSICAL_FRAMES", "Predictor", "load_predictor",
           "default_weights_path", "file_sha256"]

MODELS = ("default", "classical")
DEFAULT_WEIGHTS = {"image": "deblur.pt", "video": "extract_video.pt"}
COMMANDS = {"image": "deblur", "video": "extract-video"}
CLASSICAL_FRAMES = 7
# classical_deblur picks a stronger regulariser when it estimated the kernel itself (a blind kernel is
# never exact); here the kernel is estimated once per image and handed over, so that choice is made here.
_BLIND_STRENGTH = {"hqs": 1e-3, "wiener": 1e-2, "rl": 2e-3}
REFINES = ("classical", "none")
# the classical half of the default deblur: a general kernel and HQS, both in linear light (blur-synth's and a
# typical camera's gamma); hqs 2e-3 scored 27.27 dB aligned against 27.16 at 1e-3 on held-out shake <= 20 px
REFINE_CLASSICAL = {"method": "multiscale", "max_size": 63, "deconv": "hqs", "strength": 2e-3, "crf": "gamma:2.2"}
# window sides handed to networks are multiples of 16: a size every registered model takes without
# padding much (each model reflect-pads to its own pad_multiple inside and crops back)
_DEFAULT_MULTIPLE = 16
MIN_WINDOW = 32       # models reflect-pad internally to their multiple, which needs some pixels to reflect


def default_weights_path(kind: str) -> Path:
    """Where the shipped weights of ``kind`` ("image" or "video") live inside the package."""
    import blurtools.weights

    return Path(blurtools.weights.__file__).resolve().parent / DEFAULT_WEIGHTS[kind]


@dataclass
class Predictor:
    """A ready model (or the classical method) for one kind of output.

    Attributes:
        kind: "image" (one sharp image per blurry image) or "video" (N frames).
        name: the architecture ("dm", "niu"...) or "classical".
        device: where windows are computed.
        model: the network in eval mode on ``device``; None for classical.
        frames: video only: the frames the model makes by itself (classical: 7).
        multiple: window sizes handed to the model are multiples of this.
        amp: run CUDA windows under bfloat16 autocast.
        classical: options of the classical method (kernel, method, max_size, deconv, strength, crf).
        refine: networks only: what :mod:`blurtools.infer.refine` blends into the network's result (image:
            the classical predictor; video: the default deblur predictor), or None.
        provenance: what to record in outputs (model, weights file and digest, arch, model_args...).
        context: networks: the overlap windows need to reproduce the whole-image result closely (an
            authors' network's finite receptive field), 0 otherwise.
    """

    kind: str
    name: str
    device: torch.device
    model: Optional[torch.nn.Module] = None
    frames: Optional[int] = None
    multiple: int = _DEFAULT_MULTIPLE
    amp: bool = False
    classical: Dict[str, Any] = field(default_factory=dict)
    refine: Optional["Predictor"] = None
    provenance: Dict[str, Any] = field(default_factory=dict)
    context: int = 0

    @property
    def is_classical(self) -> bool:
        return self.model is None

    def default_tile(self) -> int:
        """The window side when the user gives none: 0 (whole images) for a network whose every output
        pixel depends on the whole input (``receptive_field`` None: instance norm, image-wide pooling), so
        that it computes exactly its own function; else 1024 on a GPU, 512 on the CPU."""
        if self.model is not None and self.model.receptive_field is None:
            return 0
        return 1024 if self.device.type == "cuda" else 512

    def _autocast(self) -> Any:
        if self.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prepare(self, images: torch.Tensor, frames: Optional[int] = None
                ) -> Tuple[Callable[[torch.Tensor], torch.Tensor], int]:
        """The window function for ``images`` and the smallest overlap it needs.

        Args:
            images: (B, 3, H, W) in [0, 1], the whole images the windows will come from (any device).
            frames: video only: frames wanted (None = the model's own count); more or fewer than the
                model makes go through frame multiplication.

        Returns:
            ``(fn, min_overlap)``: ``fn`` maps windows (b, 3, h, w) on ``self.device`` (b a multiple of B,
            window-major: the B images of window 0, then of window 1...) to (b, 3, h, w) or
            (b, N, 3, h, w) float; ``min_overlap`` is the overlap below which windows would show seams
            (the classical deconvolution needs a few kernel lengths; learned models report ``context``).
        """
        if images.dim() != 4 or images.shape[1] != 3:
            raise UsageError(f"prepare: expected images (B, 3, H, W), got {tuple(images.shape)}")
        if self.is_classical:
            return self._prepare_classical(images, frames)
        model = self.model
        want = frames if frames is not None else self.frames

        def fn(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode(), self._autocast():
                if self.kind == "video" and want != self.frames:
                    y = multiply_frames(model, x, want)
                else:
                    y = model(x)
            return y.float()

        return fn, self.context

    def _prepare_classical(self, images: torch.Tensor, frames: Optional[int]
                           ) -> Tuple[Callable[[torch.Tensor], torch.Tensor], int]:
        opts = dict(self.classical)
        user_kernel = opts.pop("kernel", None)
        method, max_size = opts.pop("method", "linear"), opts.pop("max_size", 63)
        deconv, crf = opts.get("deconv", "hqs"), opts.get("crf")
        if user_kernel is not None:
            k = user_kernel.float()[None, None].expand(images.shape[0], 1, *user_kernel.shape)
        else:
            with torch.inference_mode():
                ks = [estimate_kernel(images[i:i + 1].to(self.device).float(), max_size, method, crf).cpu()
                      for i in range(images.shape[0])]
            n = max(k.shape[-1] for k in ks)
            k = torch.stack([F.pad(k, [(n - k.shape[-1]) // 2] * 4) for k in ks])[:, None]
            if opts.get("strength") is None:
                opts["strength"] = _BLIND_STRENGTH[deconv]
        k = k.to(self.device)
        count = frames if frames is not None else (self.frames or CLASSICAL_FRAMES)
        B = images.shape[0]

        def fn(x: torch.Tensor) -> torch.Tensor:
            kk = k.repeat(x.shape[0] // B, 1, 1, 1)
            with torch.inference_mode():
                if self.kind == "video":
                    return classical_video(x, frames=count, kernel=kk, **opts).float()
                return classical_deblur(x, kernel=kk, **opts).float()

        # deconvolution rings for a few kernel lengths from a window's edge; the margin is a quarter overlap
        return fn, 8 * int(k.shape[-1])


def _load_network(kind: str, path: Path, device: torch.device, origin: str, arch: Optional[str] = None
                  ) -> Tuple[torch.nn.Module, Dict[str, Any]]:
    loaded = models.load(path, device=device, model=arch, kind=kind)
    meta = loaded.meta
    prov = {"model": origin, "weights": str(path), "weights_sha256": file_sha256(path), "arch": meta.get("arch"),
            "model_args": dict(loaded.args), "trained_steps": meta.get("step"),
            "trained_with": meta.get("version")}
    if loaded.layout != models.registry.BLURTOOLS_LAYOUT:
        prov["layout"] = loaded.layout
    if kind == "video":
        prov["frames"] = int(loaded.module.frames)
    return loaded.module, prov


def _load_weights(kind: str, paths: List[Path], device: torch.device, arch: Optional[str] = None
                  ) -> Tuple[torch.nn.Module, Dict[str, Any]]:
    """The network of ``--weights``: one checkpoint file (of architecture ``arch`` when given), or (video)
    Jin et al.'s released cascade, given as the folder holding its four files or the four files themselves."""
    single = paths[0] if len(paths) == 1 and not paths[0].is_dir() else None
    if kind == "image" and single is None:
        raise UsageError(f"{paths[0] if len(paths) == 1 else ' '.join(map(str, paths))}: deblur takes one "
                         "checkpoint file (--weights FILE)")
    if single is not None:
        try:
            return _load_network(kind, single, device, "weights", arch)
        except BlurtoolsError:
            if kind == "video" and release_part(read_weights_file(single)) is not None:
                load_cascade([single])        # says which of the four files are missing
            raise
    if arch not in (None, "jin2018"):
        raise UsageError(f"--model {arch}: a folder or several --weights files hold Jin et al.'s cascade (jin2018)")
    cascade, files = load_cascade(paths)
    prov = {"model": "weights", "weights": [str(files[p]) for p in files], "arch": "jin2018",
            "weights_sha256": [file_sha256(files[p]) for p in files], "model_args": dict(cascade.model_args),
            "trained_steps": None, "trained_with": None, "layout": "jin2018-release", "frames": int(cascade.frames)}
    return cascade.to(device), prov


def _split_model(model: str, weights: Any) -> Tuple[str, Optional[str]]:
    """``--model`` as (method, architecture): "default"/"classical" with None, or a registered architecture
    naming what ``--weights`` holds (then the method is "default": a network)."""
    if model in MODELS:
        return model, None
    if model not in models.MODELS:
        raise UsageError(f"--model {model}: choose one of {', '.join(MODELS)}, or with --weights one of the "
                         f"registered architectures ({', '.join(models.MODELS)})")
    if weights is None:
        raise UsageError(f"--model {model} names the architecture of --weights FILE; give the weights")
    return "default", model


def _network(kind: str, weights: Any, device: torch.device, arch: Optional[str]
             ) -> Tuple[torch.nn.Module, Dict[str, Any]]:
    """The network of ``--weights`` (see :func:`load_predictor`), or the shipped default of ``kind``."""
    if weights is None:
        path = default_weights_path(kind)
        if not path.is_file():
            raise BlurtoolsError(f"{path}: the default {COMMANDS[kind]} weights are missing from this installation; "
                                 "give a checkpoint with --weights PATH (from `blurtools train`) or use "
                                 "--model classical")
        return _load_network(kind, path, device, "default")
    paths = [Path(w) for w in ([weights] if isinstance(weights, (str, Path)) else weights)]
    if not paths:
        raise UsageError("--weights: give a checkpoint file")
    if kind == "image" and len(paths) == 1 and paths[0].is_dir():
        raise BlurtoolsError(f"{paths[0]}: is a folder; give the checkpoint file (e.g. {paths[0]}/weights.pt)")
    return _load_weights(kind, paths, device, arch)


def _classical_predictor(kind: str, device: torch.device, kernel: Optional[torch.Tensor], kernel_path: Optional[str],
                         method: str, max_size: int, deconv: str, strength: Optional[float], crf: Optional[str],
                         amp: bool) -> Predictor:
    """The classical method (no weights): blind or known-kernel deconvolution with these options."""
    if method not in METHODS:
        raise UsageError(f"--kernel-method {method}: choose one of {', '.join(METHODS)}")
    if deconv not in DECONVS:
        raise UsageError(f"--deconv {deconv}: choose one of {', '.join(DECONVS)}")
    if max_size < 3:
        raise UsageError(f"--kernel-size {max_size}: must be >= 3")
    opts = dict(kernel=kernel, method=method, max_size=max_size, deconv=deconv, strength=strength, crf=crf)
    prov = {"model": "classical", "kernel": kernel_path if kernel is not None else "estimated",
            "kernel_method": None if kernel is not None else method, "kernel_size": max_size,
            "deconv": deconv, "strength": strength, "crf": crf or "linear"}   # None: the values as given
    if amp:
        log.warning("--amp has no effect on the classical method")
    return Predictor(kind, "classical", device, None, CLASSICAL_FRAMES if kind == "video" else None,
                     multiple=8, classical=opts, provenance=prov)


def _refiner(kind: str, refine: str, device: torch.device, amp: bool, prov: Dict[str, Any],
             shipped: bool) -> Optional[Predictor]:
    """The predictor a network's result is refined with (recorded in ``prov["refine"]``), or None.

    ``shipped``: the network is the shipped default. Its own video frames add nothing the deblur along the
    blur path lacks (MODEL_CARD.md), so its video is made from the deblur alone
    (:mod:`blurtools.infer.motion_video`); a user's network is kept and sharpened.
    """
    if refine != "classical":
        return None
    if kind == "image":
        refiner = load_predictor("image", model="classical", device=device, **REFINE_CLASSICAL)
        prov["refine"] = {"method": "classical", **refiner.provenance}
        return refiner
    if not default_weights_path("image").is_file():
        log.warning("%s: the default deblur weights are missing; frames are not refined", default_weights_path("image"))
        return None
    refiner = load_predictor("image", model="default", device=device, amp=amp, refine="classical")
    prov["refine"] = {"method": "motion" if shipped else "default deblur", **refiner.provenance}
    return refiner


def _window_multiple(net: torch.nn.Module, published: bool) -> int:
    """Window sides handed to ``net`` are multiples of this.

    An authors' network sees windows as they are and pads them itself the way its authors do (NAFNet with
    zeros), with windows overlapping by its receptive field; another network that sees the whole image
    (receptive_field None) gets windows padded only to its own multiple: any more padding would change the
    statistics it computes over the image.
    """
    if published:
        return 1
    if net.receptive_field is None:
        return int(net.pad_multiple)
    return _DEFAULT_MULTIPLE


def load_predictor(kind: str, model: str = "default",
                   weights: "str | Path | Sequence[str | Path] | None" = None,
                   device: "str | torch.device" = "cpu", kernel: Optional[torch.Tensor] = None,
                   kernel_path: Optional[str] = None, method: str = "linear", max_size: int = 63,
                   deconv: str = "hqs", strength: Optional[float] = None, crf: Optional[str] = None,
                   amp: bool = False, refine: Optional[str] = None) -> Predictor:
    """Build the predictor a command asked for.

    Args:
        kind: "image" (deblur) or "video" (extract-video); a checkpoint of the other kind is refused.
        model: "default" (the shipped weights of ``kind``) or "classical" (no weights).
        weights: a checkpoint written by ``blurtools train`` (weights.pt, best.pt or last.pt) or an authors'
            published file of a registered layout (detected from its contents); video: also Jin et al.'s
            released cascade, as the folder holding its four files or a list of the four. Overrides the
            default; contradicts ``model="classical"``.
        device: a torch device or ``auto|cpu|cuda|cuda:N``.
        kernel: classical only: a (kh, kw) kernel for non-blind deconvolution (``kernel_path`` names its
            file for the record). Implies the classical method; contradicts ``weights``.
        method, max_size, deconv, strength, crf: classical options (see :mod:`blurtools.infer.classical`).
        amp: bfloat16 autocast for learned models on CUDA.
        refine: networks only; ``"classical"`` or ``"none"`` (the network's result as it is); None: classical
            for blurtools' own weights, none for an authors' published checkpoint (its network alone).
            Image: blend the classical deconvolution (``REFINE_CLASSICAL``'s options) into the network's
            result where the network or the deconvolution finds evidence of blur. Video, shipped weights:
            the frames are the default deblur's result moved along the estimated blur path
            (:mod:`blurtools.infer.motion_video`; the network's frames are not computed); other
            checkpoints: sharpen every frame with the default deblur's result (network and classical).
            Either holds the video still where that deblur finds no evidence of blur.

    Raises:
        UsageError: contradictory choices. BlurtoolsError: missing default weights, unreadable or
            wrong-kind checkpoints.
    """
    if kind not in DEFAULT_WEIGHTS:
        raise UsageError(f"load_predictor: kind must be 'image' or 'video', got {kind!r}")
    if refine is not None and refine not in REFINES:
        raise UsageError(f"--refine {refine}: choose one of {', '.join(REFINES)}")
    model, arch = _split_model(model, weights)
    if isinstance(device, str):
        device = resolve_device(device)
    if kernel is not None:
        if weights is not None:
            raise UsageError("--kernel deconvolves with a given kernel (the classical method); it cannot be "
                             "combined with --weights")
        model = "classical"
    if model == "classical":
        if weights is not None:
            raise UsageError("--model classical uses no weights; drop --weights (or --model)")
        return _classical_predictor(kind, device, kernel, kernel_path, method, max_size, deconv, strength, crf, amp)
    net, prov = _network(kind, weights, device, arch)
    if refine is None:          # a published network's output is that network's alone unless asked otherwise
        refine = "none" if "layout" in prov else "classical"
    if amp and device.type != "cuda":
        log.warning("--amp only applies on CUDA; running in float32 on %s", device)
    if device.type == "cuda":
        # every window has the same size, so cuDNN's autotuning pays off after the first one
        torch.backends.cudnn.benchmark = True
    prov["amp"] = bool(amp and device.type == "cuda")
    refiner = _refiner(kind, refine, device, amp, prov, shipped=weights is None)
    published = "layout" in prov
    multiple = _window_multiple(net, published)
    return Predictor(kind, prov["arch"] or "model", device, net, net.frames if kind == "video" else None,
                     multiple=multiple, amp=bool(amp), refine=refiner, provenance=prov,
                     context=int(net.receptive_field) if published and net.receptive_field is not None else 0)
