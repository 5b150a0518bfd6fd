"""The model registry: every network by the name users type, how to build it, and how to load its files.

One :class:`ModelSpec` per model in :data:`MODELS`: the class (a :class:`blurtools.models.contract.Model`),
the training recipe of the same name in ``blurtools.train.recipes.RECIPES`` (``None`` for models that are
only run), and the foreign checkpoint layouts the model reads (the authors' published files).
:func:`create` builds a model by name with its constructor arguments recorded on it; :func:`load` reads a
checkpoint file (``weights_only=True`` always), finds out what it holds and returns the model ready to run.

Example::

    net = create("dm", width=32)                     # net.model_args == every constructor argument
    loaded = load("RUN/weights.pt", device="cpu")    # a blurtools checkpoint or any registered layout
    sharp = loaded.module(blurry)                    # blurry (B, 3, H, W) in [0, 1]

Adding a model: one file in ``blurtools/models/`` with a :class:`~blurtools.models.contract.Model`
subclass, and one line in :data:`MODELS` below (plus its recipe in ``blurtools/train/recipes/`` when it
trains).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import torch
from torch import nn

from blurtools.errors import BlurtoolsError
from blurtools.models.bringing_alive import BringingAlive
from blurtools.models.contract import KINDS
from blurtools.models.deblurgan import DeblurGANGenerator
from blurtools.models.deblurgan_release import convert_deblurgan_2018, is_deblurgan_2018
from blurtools.models.deblurgan_v2 import DESCRIBE as DEBLURGAN_V2_DESCRIBE
from blurtools.models.deblurgan_v2 import DeblurGANv2, convert_official, detect_official
from blurtools.models.dm import DenseDeblurModule
from blurtools.models.checkpoints import check_blurtools, describe, is_blurtools
from blurtools.models.files import read_weights_file
from blurtools.models.jin import Jin
from blurtools.models.jin2018 import Jin2018Cascade, Jin2018Centre
from blurtools.models.jin2018_release import convert_centre, is_centre, is_pair, refuse_pair
from blurtools.models import nafnet, spandrel_net, two_heads
from blurtools.models.kernel_basis import KernelBasisNet
from blurtools.models.niu import NiuNet

__all__ = ["Layout", "ModelSpec", "MODELS", "Loaded", "create", "load", "BLURTOOLS_LAYOUT"]

BLURTOOLS_LAYOUT = "blurtools"


@dataclass(frozen=True)
class Layout:
    """A foreign checkpoint layout a model reads (an authors' published file).

    Attributes:
        name: short name, e.g. ``"nafnet-official"``.
        describe: for people, e.g. ``"NAFNet release: {'params': state_dict}"``.
        detect: the loaded top-level dict -> whether this layout matches it.
        convert: the loaded dict -> ``(model_args, state_dict)`` for the spec's class.
    """

    name: str
    describe: str
    detect: Callable[[Mapping[str, Any]], bool]
    convert: Callable[[Mapping[str, Any]], Tuple[dict, dict]]


@dataclass(frozen=True)
class ModelSpec:
    """One registered model: ``name`` (what ``--model`` takes), ``cls``, ``recipe`` (training recipe name
    or None when the model is inference-only) and the foreign ``layouts`` it reads."""

    name: str
    cls: type
    recipe: Optional[str]
    layouts: Tuple[Layout, ...] = ()


# the authors' published files (their containers and key names, PyTorch 0.x legacy files included)
DEBLURGAN_2018 = Layout("deblurgan-2018", "DeblurGAN release latest_net_G.pth: bare state dict, model.N keys",
                        is_deblurgan_2018, convert_deblurgan_2018)
JIN2018_CENTRE = Layout("jin2018-centre", "Jin et al. 2018 release center_v3.pth: {'state_dict_G': ...}",
                        is_centre, convert_centre)
JIN2018_PAIR = Layout("jin2018-pair", "Jin et al. 2018 release F35_N8.pth, F26_N9..., F17_N9...: one of the "
                      "cascade's pairs (extract-video --weights DIR takes the four files)", is_pair, refuse_pair)
DEBLURGAN_V2 = Layout("deblurgan-v2-official", DEBLURGAN_V2_DESCRIBE, detect_official, convert_official)

MODELS: Dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("dm", DenseDeblurModule, recipe="dm"),
    ModelSpec("deblurgan", DeblurGANGenerator, recipe="deblurgan", layouts=(DEBLURGAN_2018,)),
    ModelSpec("jin2018-centre", Jin2018Centre, recipe="jin2018-centre", layouts=(JIN2018_CENTRE,)),
    ModelSpec("jin2018", Jin2018Cascade, recipe="jin2018", layouts=(JIN2018_PAIR,)),
    ModelSpec("kernel-basis", KernelBasisNet, recipe="kernel-basis"),
    ModelSpec("jin", Jin, recipe="jin"),
    ModelSpec("bringing-alive", BringingAlive, recipe="bringing-alive"),
    ModelSpec("niu", NiuNet, recipe="niu"),
    ModelSpec("deblurgan-v2", DeblurGANv2, recipe="deblurgan-v2", layouts=(DEBLURGAN_V2,)),
    ModelSpec("nafnet", nafnet.NAFNet, recipe="nafnet", layouts=(Layout(
        "nafnet-release", "NAFNet release (Chen et al. 2022): {'params': state_dict}",
        nafnet.detect_release, nafnet.convert_release),)),
    ModelSpec("two-heads", two_heads.TwoHeadsNet, recipe="two-heads", layouts=(Layout(
        "two-heads-release", "TwoHeads.pkl (Carbajal et al. 2021): bare state dict (inc_rgb..., kernels_end...)",
        two_heads.detect_release, two_heads.convert_release),)),
    # last: recognising these files needs spandrel imported (seconds), which the layouts above avoid
    ModelSpec("spandrel", spandrel_net.SpandrelNet, recipe=None, layouts=(Layout(
        "spandrel", f"{', '.join(spandrel_net.DEBLUR_ARCHS)} release, as spandrel recognises it",
        spandrel_net.detect_release, spandrel_net.spandrel_args),)),
)}


@dataclass(frozen=True)
class Loaded:
    """A model read from a file.

    Attributes:
        module: the network in eval mode on the requested device.
        spec: its registry entry.
        args: the constructor arguments it was built with (``module.model_args``).
        meta: what the file says about how it was made: for blurtools checkpoints ``format``, ``arch``,
            ``kind``, ``frames``, ``config``, ``version``, ``tool``, ``step``, ``metrics`` (absent keys None);
            for foreign layouts ``{"arch": spec.name, "layout": ...}``.
        layout: ``"blurtools"`` or the name of the foreign :class:`Layout` that matched.
    """

    module: nn.Module
    spec: ModelSpec
    args: Dict[str, Any]
    meta: Dict[str, Any] = field(default_factory=dict)
    layout: str = BLURTOOLS_LAYOUT


def _spec(name: str, registry: Mapping[str, ModelSpec], where: str) -> ModelSpec:
    if name not in registry:
        raise BlurtoolsError(f"{where}: model {name!r} is not known to this blurtools ({', '.join(sorted(registry))})")
    return registry[name]


def create(name: str, *, registry: Optional[Mapping[str, ModelSpec]] = None, **args: Any) -> nn.Module:
    """Build model ``name`` with constructor arguments ``args`` (recorded on it as ``model_args``).

    Raises:
        BlurtoolsError: an unknown name, or arguments the class does not take or rejects.
    """
    spec = _spec(name, MODELS if registry is None else registry, "create")
    try:
        return spec.cls(**args)
    except TypeError as exc:
        raise BlurtoolsError(f"cannot build {name} with {args} ({exc})") from None


def _build(spec: ModelSpec, args: Mapping[str, Any], state: Mapping[str, torch.Tensor], where: str,
           registry: Mapping[str, ModelSpec]) -> nn.Module:
    """``spec.cls(**args)`` with ``state`` loaded strictly; BlurtoolsError naming ``where`` otherwise."""
    try:
        module = create(spec.name, registry=registry, **dict(args))
    except BlurtoolsError as exc:
        raise BlurtoolsError(f"{where}: {exc}") from None
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()
        raise BlurtoolsError(f"{where}: weights do not fit model {spec.name} with {dict(args)} "
                             f"({' '.join(s.strip() for s in first[:3])[:400]})") from None
    return module


def _refuse_kind(path: Path, kind: Optional[str], found: str, arch: str, frames: Optional[int]) -> None:
    if kind is None or found == kind:
        return
    what = f"a video model ({arch}, {frames} frames)" if found == "video" else f"an image model ({arch})"
    need = "an image (deblurring) model" if kind == "image" else "a video (frame-extraction) model"
    raise BlurtoolsError(f"{path}: is {what}; this command needs {need}")


def _load_blurtools(ckpt: Dict[str, Any], path: Path, model: Optional[str], kind: Optional[str],
                    registry: Mapping[str, ModelSpec]) -> Tuple[nn.Module, ModelSpec, Dict[str, Any]]:
    check_blurtools(ckpt, path)
    arch, found_kind, frames = ckpt["arch"], ckpt["kind"], ckpt.get("frames")
    if model is not None and arch != model:
        raise BlurtoolsError(f"{path}: checkpoint of model {arch!r}, not {model!r}")
    _refuse_kind(path, kind, found_kind, arch, frames)
    spec = _spec(arch, registry, str(path))
    module = _build(spec, ckpt["model_args"], ckpt["state_dict"], str(path), registry)
    if getattr(module, "kind", None) != found_kind:  # classes outside the registry may lack the contract
        raise BlurtoolsError(f"{path}: says kind {found_kind!r} but model {arch} is {getattr(module, 'kind', None)!r}")
    meta = {k: ckpt.get(k) for k in ("format", "arch", "kind", "frames", "config", "version", "tool", "step", "metrics")}
    return module, spec, meta


def _load_foreign(obj: Any, path: Path, model: Optional[str], kind: Optional[str],
                  registry: Mapping[str, ModelSpec]) -> Tuple[nn.Module, ModelSpec, Dict[str, Any], str]:
    specs = [_spec(model, registry, str(path))] if model is not None else list(registry.values())
    for spec in specs:
        for layout in spec.layouts:
            if isinstance(obj, Mapping) and layout.detect(obj):
                _refuse_kind(path, kind, spec.cls.kind, spec.name, spec.cls.frames)
                args, state = layout.convert(obj)
                module = _build(spec, args, state, f"{path} ({layout.name})", registry)
                return module, spec, {"arch": spec.name, "kind": spec.cls.kind, "layout": layout.name}, layout.name
    known = [f"{layout.name} ({spec.name}: {layout.describe})" for spec in specs for layout in spec.layouts]
    scope = f"model {model}" if model is not None else "this blurtools"
    raise BlurtoolsError(f"{path}: not a checkpoint {scope} reads: {describe(obj)}; known layouts: blurtools "
                         f"checkpoints (format blurtools-weights/1 or blurtools-train-state/1)"
                         + "".join(f", {k}" for k in known))


def load(path: "str | Path", device: "str | torch.device" = "cpu", model: Optional[str] = None, *,
         kind: Optional[str] = None, registry: Optional[Mapping[str, ModelSpec]] = None) -> Loaded:
    """Read a checkpoint file and return its model in eval mode on ``device``.

    The file is read with ``torch.load(weights_only=True)``; what it holds is found from its contents: a
    blurtools checkpoint (``weights.pt``, ``best.pt``, ``last.pt``, the shipped weights) or any foreign
    :class:`Layout` a registered model declares.

    Args:
        path: the file.
        device: where the returned module lives.
        model: refuse a file of another model (and try only this model's layouts); None = any.
        kind: ``"image"`` (deblur) or ``"video"`` (extract-video) to refuse the other kind; None = any.
        registry: the models to consider (default :data:`MODELS`).

    Raises:
        BlurtoolsError: missing or unreadable file, unknown model, wrong model or kind, weights that do not
            fit, or a file no layout matches (the message says what the file looked like and which
            layouts are known).
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
    registry = MODELS if registry is None else registry
    path = Path(path)
    obj = read_weights_file(path, map_location="cpu")
    if is_blurtools(obj) or (isinstance(obj, dict) and "format" in obj and "arch" in obj):
        module, spec, meta = _load_blurtools(obj, path, model, kind, registry)
        layout = BLURTOOLS_LAYOUT
    else:
        module, spec, meta, layout = _load_foreign(obj, path, model, kind, registry)
    return Loaded(module=module.to(device).eval(), spec=spec, args=dict(getattr(module, "model_args", {})),
                  meta=meta, layout=layout)
