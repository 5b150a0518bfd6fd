"""Checkpoints: plain dicts written atomically (reading them and building their models: :mod:`blurtools.models`).

Two kinds share one set of keys so every loader reads both:

* weights (``weights.pt``, ``best.pt``): what ``deblur`` / ``extract-video --weights`` load::

    {"format": "blurtools-weights/1", "arch": "dm", "model_args": {...}, "state_dict": {...},
     "kind": "image" | "video", "frames": int | None, "config": {...}, "version": "0.1.0",
     "tool": "blurtools train", "step": int, "metrics": {...}}

* training state (``last.pt``): the same keys (so it loads as weights too) with ``"format":
  "blurtools-train-state/1"`` and what resuming needs: ``stage`` (index whose optimiser is stored),
  ``optimizer``, ``schedule``, ``scaler``, ``critic_state_dict``, ``critic_optimizer``, ``critic_scaler``,
  ``rng`` (one entry per process: python, numpy, torch, cuda, named generators), ``best_psnr``,
  ``log_accum``, ``world_size``.

Nothing but tensors, numbers, strings, lists and dicts is stored, never a pickled object.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import numpy as np
import torch
from torch import nn

from blurtools import __version__
from blurtools.errors import BlurtoolsError
from blurtools.io.atomic import atomic_path
from blurtools.models.contract import KINDS
from blurtools.models.checkpoints import STATE_FORMAT, WEIGHTS_FORMAT, read_checkpoint

log = logging.getLogger(__name__)

__all__ = ["TOOL", "WEIGHTS_FORMAT", "STATE_FORMAT", "read_checkpoint", "save_checkpoint", "cpu_state_dict",
           "weights_record", "capture_rng", "restore_rng", "state_digest", "RUN_FILES", "run_model",
           "check_run_folder"]

TOOL = "blurtools train"


def save_checkpoint(path: "str | Path", obj: Mapping[str, Any]) -> None:
    """Write ``obj`` with torch.save to a temporary file beside ``path``, fsync, rename over ``path``.

    A process killed at any moment leaves the previous file at ``path`` intact (or none).
    """
    with atomic_path(path, suffix=".pt") as tmp:
        with open(tmp, "wb") as f:
            torch.save(dict(obj), f)
            f.flush()
            os.fsync(f.fileno())


def cpu_state_dict(module: nn.Module) -> Dict[str, torch.Tensor]:
    """A detached, contiguous CPU copy of ``module.state_dict()`` (portable across devices and layouts)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in module.state_dict().items()}


def weights_record(model: nn.Module, arch: str, config: Mapping[str, Any], step: int,
                   metrics: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The plain weights dict of ``model`` (see the module docstring); ``model`` follows the model contract
    (:mod:`blurtools.models.contract`: ``kind``, ``frames``, ``model_args``)."""
    kind = model.kind
    if kind not in KINDS:
        raise BlurtoolsError(f"model {arch}: class attribute kind must be 'image' or 'video', got {kind!r}")
    return {
        "format": WEIGHTS_FORMAT,
        "arch": arch,
        "model_args": dict(model.model_args),
        "state_dict": cpu_state_dict(model),
        "kind": kind,
        "frames": int(model.frames) if model.frames is not None else None,
        "config": dict(config),
        "version": __version__,
        "tool": TOOL,
        "step": int(step),
        "metrics": dict(metrics or {}),
    }


# ---------------------------------------------------------------- random number generator states

def capture_rng(generators: Optional[Mapping[str, torch.Generator]] = None) -> Dict[str, Any]:
    """Every RNG state of this process as plain data: python, numpy, torch CPU, CUDA, named generators."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    return {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {"bit_generator": np_state["bit_generator"],
                  "key": torch.from_numpy(np.asarray(np_state["state"]["key"]).astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                  "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
        "cuda": list(cuda),
        "generators": {name: g.get_state() for name, g in (generators or {}).items()},
    }


def restore_rng(state: Mapping[str, Any], generators: Optional[Mapping[str, torch.Generator]] = None) -> None:
    """Put back what :func:`capture_rng` recorded (CUDA states only when CUDA is present)."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    n = state["numpy"]
    np.random.set_state({"bit_generator": n["bit_generator"],
                         "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
                         "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        if len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
        else:
            log.warning("resume: the run had %d CUDA devices, this machine %d; CUDA random states not restored",
                        len(state["cuda"]), torch.cuda.device_count())
    for name, g in (generators or {}).items():
        if name in state.get("generators", {}):
            g.set_state(state["generators"][name])


def state_digest(module_or_state: "nn.Module | Mapping[str, torch.Tensor]") -> str:
    """SHA-256 of a state dict's names, dtypes, shapes and bytes: equal digests mean identical weights."""
    import hashlib

    state = module_or_state.state_dict() if isinstance(module_or_state, nn.Module) else module_or_state
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


RUN_FILES = ("config.json", "last.pt", "best.pt", "weights.pt", "metrics.jsonl")


def run_model(out: "str | Path") -> Optional[str]:
    """The model name of the run in folder ``out`` (from config.json, else last.pt), or None when there is none."""
    out = Path(out)
    cfg = out / "config.json"
    if cfg.is_file():
        import json

        try:
            return str(json.loads(cfg.read_text())["config"]["model"])
        except (ValueError, KeyError, TypeError):
            raise BlurtoolsError(f"{cfg}: corrupt run configuration; choose another --out") from None
    for name in ("last.pt", "weights.pt"):
        if (out / name).is_file():
            return str(read_checkpoint(out / name)["arch"])
    return None


def check_run_folder(out: "str | Path", model: str, resume: bool) -> Optional[Path]:
    """Refuse to mix runs in one folder; returns last.pt to resume from, or None to start fresh.

    Without ``resume`` a folder holding any run (config.json, checkpoints, metrics) is refused, nothing is
    touched. With ``resume`` the run must be of the same model; no last.pt yet means a fresh start.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BlurtoolsError(f"{out}: exists and is not a folder; choose another --out")
    present = [n for n in RUN_FILES if (out / n).exists()]
    existing = run_model(out) if present else None
    if resume:
        if existing is not None and existing != model:
            raise BlurtoolsError(f"{out}: holds a run of model {existing!r}, not {model!r}; --resume continues the "
                                 "folder's own model (nothing was changed)")
        last = out / "last.pt"
        return last if last.is_file() else None
    if present:
        what = f"a run of model {existing!r}" if existing else f"training output ({', '.join(present)})"
        hint = "pass --resume to continue it, or " if existing == model else ""
        raise BlurtoolsError(f"{out}: already holds {what}; {hint}choose another --out (nothing was overwritten)")
    return None
