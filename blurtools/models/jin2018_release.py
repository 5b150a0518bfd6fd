"""The files of Jin et al.'s released cascade: recognising each of the four, and assembling the cascade.

The authors distribute four PyTorch 0.3 files (Python 2.7 pickles, legacy format), each
``{'state_dict_G': state_dict}`` with their own layer names (see :mod:`blurtools.models.jin2018`):

=========  =======================================  =============================================
part       file name as distributed                 what it holds
=========  =======================================  =============================================
centre     ``center_v3.pth``                        the centre frame x4 (keys ``conv1_B``, ``fuse4``...)
pair35     ``F35_N8.pth``                           ``generateFrame3``, ``generateFrame5``
pair26     ``F26_N9_from_F35_N8.pth``               ``generateFrame2_6``
pair17     ``F17_N9_from_F26_N9_from_F35_N8.pth``   ``generateFrame1_7``
=========  =======================================  =============================================

Files are recognised by their contents, never by their names; a folder is searched for the
distributed names first, then for any ``.pth``/``.pt``/``.pkl`` file. The legacy InstanceNorm running
statistics are dropped (never used, see :mod:`blurtools.models.files`).

Example::

    part = release_part(read_weights_file("center_v3.pth"))        # "centre"
    cascade, files = load_cascade(["models/"])                      # Jin2018Cascade, the four paths
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from blurtools.errors import BlurtoolsError, UsageError
from blurtools.models.files import drop_running_stats, read_weights_file, strip_prefix
from blurtools.models.jin2018 import Jin2018Cascade, Jin2018Centre

__all__ = ["PARTS", "RELEASE_FILES", "release_part", "release_state", "is_centre", "is_pair", "convert_centre",
           "load_cascade", "refuse_pair"]

PARTS = ("centre", "pair35", "pair26", "pair17")
RELEASE_FILES = {"centre": "center_v3.pth", "pair35": "F35_N8.pth", "pair26": "F26_N9_from_F35_N8.pth",
                 "pair17": "F17_N9_from_F26_N9_from_F35_N8.pth"}
_MARKERS = {"centre": ("conv1_B.weight", "fuse4.0.conv1.weight", "GlobalGrad.0.conv4.weight"),
            "pair35": ("generateFrame3.conv1_B.weight", "generateFrame5.conv1_B.weight"),
            "pair26": ("generateFrame2_6.conv1_B.weight",),
            "pair17": ("generateFrame1_7.conv1_B.weight",)}
_WHAT = {"centre": "the centre-frame network", "pair35": "the 3/5 pair networks", "pair26": "the 2/6 pair network",
         "pair17": "the 1/7 pair network"}
_SUFFIXES = (".pth", ".pt", ".pkl", ".tar")


def release_state(top: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """The state dict inside a ``{'state_dict_G': ...}`` container (``module.`` stripped), or None."""
    sd = top.get("state_dict_G") if isinstance(top, Mapping) else None
    if not isinstance(sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        return None
    return strip_prefix(sd)


def release_part(top: Mapping[str, Any]) -> Optional[str]:
    """Which of the four released networks a loaded file holds ("centre", "pair35"...), or None."""
    sd = release_state(top)
    if sd is None:
        return None
    for part, markers in _MARKERS.items():
        if all(m in sd for m in markers):
            if part == "centre" and tuple(sd["conv1_B.weight"].shape) != (144, 16, 5, 5):
                continue
            return part
    return None


def is_centre(top: Mapping[str, Any]) -> bool:
    """Whether a loaded file is the released centre-frame network (``center_v3.pth``)."""
    return release_part(top) == "centre"


def is_pair(top: Mapping[str, Any]) -> bool:
    """Whether a loaded file is one of the released pair networks (3/5, 2/6 or 1/7)."""
    return release_part(top) in ("pair35", "pair26", "pair17")


def _fitted(module: nn.Module, sd: Mapping[str, Any], what: str) -> Dict[str, Any]:
    """``sd`` without legacy running statistics, checked key by key and shape by shape against ``module``."""
    sd = drop_running_stats(sd)
    want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in sd.items()}
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    wrong = sorted(k for k in set(want) & set(got) if want[k] != got[k])
    if missing or extra or wrong:
        parts = [f"{len(missing)} missing (e.g. {', '.join(missing[:3])})" if missing else "",
                 f"{len(extra)} unexpected (e.g. {', '.join(extra[:3])})" if extra else "",
                 f"{len(wrong)} of another shape (e.g. {wrong[0]}: {got[wrong[0]]} for {want[wrong[0]]})" if wrong else ""]
        raise BlurtoolsError(f"{what}: looks like Jin et al.'s release but does not fit its architecture: "
                             + "; ".join(p for p in parts if p))
    return {k: v.float() for k, v in sd.items()}


def convert_centre(top: Mapping[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``center_v3.pth`` contents -> (model_args, state dict) for :class:`Jin2018Centre`."""
    return {}, _fitted(Jin2018Centre(), release_state(top) or {}, "center_v3.pth")


def refuse_pair(top: Mapping[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """A pair file alone makes no picture: the error that says what it is and what to give instead."""
    part = release_part(top) or "pair"
    raise UsageError(f"this file is {_WHAT[part]} of Jin et al.'s released cascade ({RELEASE_FILES[part]}); "
                     "it needs the other three: give extract-video the folder holding the four files "
                     "(--weights DIR) or the four files (--weights A --weights B ...)")


def _candidates(paths: Sequence[Path]) -> List[Path]:
    files: List[Path] = []
    for p in paths:
        if p.is_dir():
            named = [p / n for n in RELEASE_FILES.values() if (p / n).is_file()]
            files += named if len(named) == len(PARTS) else sorted(
                f for f in p.iterdir() if f.is_file() and f.suffix.lower() in _SUFFIXES)
        elif p.is_file():
            files.append(p)
        else:
            raise BlurtoolsError(f"{p}: no such file or folder")
    return files


def load_cascade(paths: Sequence["str | Path"]) -> Tuple[Jin2018Cascade, Dict[str, Path]]:
    """The released cascade from a folder holding the four files, or from the four files themselves.

    Args:
        paths: one folder, or the four files in any order (recognised by their contents).

    Returns:
        ``(cascade, files)``: the :class:`Jin2018Cascade` (eval mode, CPU) and the file of each part.

    Raises:
        BlurtoolsError: a part missing or given twice, a file that is none of the four, an unreadable file.
    """
    found: Dict[str, Path] = {}
    states: Dict[str, Mapping[str, Any]] = {}
    for f in _candidates([Path(p) for p in paths]):
        top = read_weights_file(f)
        part = release_part(top)
        if part is None:
            if len(paths) > 1 or Path(paths[0]).is_file():
                raise BlurtoolsError(f"{f}: is none of the four networks of Jin et al.'s released cascade")
            continue                           # another file in the folder
        if part in found:
            raise BlurtoolsError(f"{f}: {_WHAT[part]} given twice (also {found[part]})")
        found[part], states[part] = f, release_state(top) or {}
    missing = [p for p in PARTS if p not in found]
    if missing:
        where = ", ".join(str(p) for p in paths)
        raise BlurtoolsError(f"{where}: Jin et al.'s cascade needs four files; missing "
                             + ", ".join(f"{_WHAT[p]} ({RELEASE_FILES[p]})" for p in missing))
    cascade = Jin2018Cascade()
    for part in PARTS:
        module = getattr(cascade, part)
        module.load_state_dict(_fitted(module, states[part], str(found[part])))
    return cascade.eval(), found
