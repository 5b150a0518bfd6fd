"""What a weights file is, and its conversion to blurtools' own plain-dict checkpoint.

:func:`weights_info` reads any file :func:`blurtools.models.registry.load` reads (blurtools checkpoints and
every authors' layout a registered model declares) and says what it holds: architecture, configuration,
parameter count, which commands take it, whether it loads (and why not). :func:`convert_weights` writes
the loaded network as a blurtools weights checkpoint (``torch.load(..., weights_only=True)`` loadable)
that records where it came from: the source file's name, SHA-256 and layout, the tool and version.

Example::

    info = weights_info("NAFNet-GoPro-width64.pth")        # info["architecture"] == "nafnet"
    convert_weights("fpn_mobilenet.h5", "deblurgan-v2.pt")  # then: blurtools deblur --weights deblurgan-v2.pt
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import torch
from torch import nn

from blurtools import __version__
from blurtools.errors import BlurtoolsError
from blurtools.io.digest import file_sha256
from blurtools.models.registry import BLURTOOLS_LAYOUT, MODELS, Loaded, ModelSpec, load

log = logging.getLogger(__name__)

__all__ = ["weights_info", "convert_weights", "converted_record", "commands_for", "open_weights", "source_record",
           "CONVERT_TOOL"]

CASCADE_LAYOUT = "jin2018-release"

CONVERT_TOOL = "blurtools weights convert"
WEIGHTS_FORMAT = "blurtools-weights/1"


def open_weights(path: "str | Path", model: Optional[str] = None, registry: Optional[Mapping[str, ModelSpec]] = None
                 ) -> Loaded:
    """:func:`load` of a file, or (a folder) Jin et al.'s released cascade from the four files in it.

    Raises:
        BlurtoolsError: what :func:`load` or :func:`blurtools.models.jin2018_release.load_cascade` raise; a
            folder for another model than ``jin2018``.
    """
    path = Path(path)
    if not path.is_dir():
        return load(path, model=model, registry=registry)
    if model not in (None, "jin2018"):
        raise BlurtoolsError(f"{path}: is a folder; model {model} reads one file (a folder holds Jin et al.'s cascade)")
    from blurtools.models.jin2018_release import load_cascade

    cascade, files = load_cascade([path])
    spec = (registry or MODELS)["jin2018"]
    meta = {"arch": "jin2018", "kind": "video", "layout": CASCADE_LAYOUT, "files": {p: str(f) for p, f in files.items()}}
    return Loaded(module=cascade, spec=spec, args=dict(cascade.model_args), meta=meta, layout=CASCADE_LAYOUT)


def source_record(path: "str | Path") -> Dict[str, Any]:
    """``{"file", "sha256"}`` of a weights file; of a folder, ``{"file", "files": {name: sha256}}``."""
    path = Path(path)
    if path.is_dir():
        return {"file": path.name, "files": {f.name: file_sha256(f) for f in sorted(path.iterdir()) if f.is_file()}}
    return {"file": path.name, "sha256": file_sha256(path)}


def commands_for(loaded: Loaded, path: "str | Path") -> List[str]:
    """The command lines that take this file (deblur or extract-video, train --init when it trains)."""
    name = loaded.spec.name
    lines = [f"blurtools deblur --weights {path}" if loaded.spec.cls.kind == "image"
             else f"blurtools extract-video --weights {path}"]
    if loaded.spec.recipe is not None:
        lines.append(f"blurtools train --model {name} --init {path}")
    lines += [f"blurtools weights convert {path} -o {name}.pt", f"blurtools weights export {path} -o {name}.onnx"]
    return lines


def parameter_count(module: nn.Module) -> int:
    """Number of learned values (parameters, shared ones once)."""
    return sum(p.numel() for p in module.parameters())


def weights_info(path: "str | Path", model: Optional[str] = None) -> Dict[str, Any]:
    """What the file holds, as plain data (JSON-able).

    Returns:
        ``{"file", "size_bytes", "sha256", "loads", "error", "architecture", "layout", "layout_description",
        "kind", "frames", "configuration", "parameters", "commands", "made_by"}``; when the file does not
        load, ``loads`` is False, ``error`` says why and the fields about the network are None.

    Raises:
        BlurtoolsError: only when ``path`` is not a readable file at all.
    """
    path = Path(path)
    if not path.exists():
        raise BlurtoolsError(f"{path}: no such file or folder")
    record = source_record(path)
    size = sum(f.stat().st_size for f in path.iterdir() if f.is_file()) if path.is_dir() else path.stat().st_size
    info: Dict[str, Any] = {"file": str(path), "size_bytes": size, "sha256": record.get("sha256", record.get("files")),
                            "loads": False, "error": None, "architecture": None, "layout": None,
                            "layout_description": None, "kind": None, "frames": None, "configuration": None,
                            "parameters": None, "commands": [], "made_by": None}
    try:
        loaded = open_weights(path, model=model)
    except BlurtoolsError as exc:
        info["error"] = str(exc)
        return info
    module = loaded.module
    layouts = {layout.name: layout.describe for layout in loaded.spec.layouts}
    layouts[CASCADE_LAYOUT] = "Jin et al. 2018 release: the folder holding its four {'state_dict_G': ...} files"
    info.update(loads=True, architecture=loaded.spec.name, layout=loaded.layout,
                layout_description=layouts.get(loaded.layout, "blurtools checkpoint (plain dict, weights_only)"),
                kind=module.kind, frames=getattr(module, "frames", None), configuration=dict(loaded.args),
                parameters=parameter_count(module), commands=commands_for(loaded, path),
                made_by=_made_by(loaded))
    return info


def _made_by(loaded: Loaded) -> Optional[Dict[str, Any]]:
    if loaded.layout != BLURTOOLS_LAYOUT:
        return None
    meta = loaded.meta
    made = {k: meta.get(k) for k in ("tool", "version", "step") if meta.get(k) is not None}
    source = (meta.get("config") or {}).get("source")
    if source:
        made["source"] = source
    return made or None


def converted_record(loaded: Loaded, source: "str | Path") -> Dict[str, Any]:
    """The blurtools weights checkpoint of ``loaded`` (read from ``source``), with its provenance.

    Keys as ``blurtools train`` writes them (format, arch, model_args, state_dict, kind, frames, config,
    version, tool, step, metrics); ``config["source"]`` = ``{"file", "sha256", "layout"}`` of the file it
    came from (for a blurtools checkpoint, its own ``source`` record is kept when it has one).
    """
    source = Path(source)
    meta = loaded.meta
    earlier = (meta.get("config") or {}).get("source") if loaded.layout == BLURTOOLS_LAYOUT else None
    record = {**source_record(source), "layout": loaded.layout}
    if loaded.layout == BLURTOOLS_LAYOUT:
        record.update(tool=meta.get("tool"), version=meta.get("version"))
    module = loaded.module
    return {
        "format": WEIGHTS_FORMAT,
        "arch": loaded.spec.name,
        "model_args": dict(loaded.args),
        "state_dict": {k: v.detach().to("cpu", copy=True).contiguous() for k, v in module.state_dict().items()},
        "kind": module.kind,
        "frames": int(module.frames) if getattr(module, "frames", None) is not None else None,
        "config": {"source": record, **({"converted_from": earlier} if earlier else {})},
        "version": __version__,
        "tool": CONVERT_TOOL,
        "step": int(meta.get("step") or 0),
        "metrics": dict(meta.get("metrics") or {}),
    }


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


def convert_weights(path: "str | Path", out: "str | Path", model: Optional[str] = None) -> Dict[str, Any]:
    """Read ``path`` (any layout :func:`load` reads) and write it to ``out`` as a blurtools checkpoint.

    The output is read back through :func:`load` before it appears at ``out`` (atomically): its network
    must be the source's (same architecture, arguments and tensors).

    Returns:
        ``{"file", "architecture", "layout", "configuration", "parameters", "source_sha256"}``.

    Raises:
        BlurtoolsError: the source does not load, ``out`` is the source itself, or the read-back differs.
    """
    from blurtools.io.atomic import atomic_path

    path, out = Path(path), Path(out)
    if out.exists() and path.exists() and out.resolve() == path.resolve():
        raise BlurtoolsError(f"{out}: is the source file; choose another -o (nothing was written)")
    loaded = open_weights(path, model=model)
    record = converted_record(loaded, path)
    with atomic_path(out, suffix=".pt") as tmp:
        torch.save(record, tmp)
        back = load(tmp)
        if back.spec.name != loaded.spec.name or not _same_state(back.module, loaded.module):
            raise BlurtoolsError(f"{out}: the converted checkpoint does not read back as the source's network "
                                 "(nothing was written)")
    log.info("%s: %s (%s) written from %s", out, loaded.spec.name, loaded.layout, path)
    return {"file": str(out), "architecture": loaded.spec.name, "layout": loaded.layout,
            "configuration": dict(loaded.args), "parameters": parameter_count(loaded.module),
            "source_sha256": record["config"]["source"].get("sha256", record["config"]["source"].get("files"))}
