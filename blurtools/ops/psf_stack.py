"""User-given PSF stacks: loading (.npy, .mat) and resampling in time.

A stack holds one colour PSF per instant of the exposure. On disk it is ``(K, h, w, 3)`` (instants,
rows, columns, R/G/B), the layout measured stacks are published in; in memory it is a ``(K, 3, h, w)``
tensor, the layout every convolution here takes.

Channel sums are kept as given: a measured stack sums to 0.87-0.97 per channel because the mask loses
light, and that loss is part of the measurement. Pass ``normalize=True`` (or normalise downstream) to
scale each PSF to sum 1.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from blurtools.errors import BlurtoolsError, UsageError

log = logging.getLogger(__name__)

LAYOUTS = ("KHWC", "HWCK", "KCHW")
RESAMPLE_METHODS = ("average", "sample")


def _numeric_arrays_mat(path: Path) -> dict:
    """Numeric arrays of a MATLAB file: v4-v7.2 through scipy, v7.3 (HDF5) through h5py."""
    try:
        import scipy.io

        data = scipy.io.loadmat(str(path))
        return {k: v for k, v in data.items()
                if not k.startswith("__") and isinstance(v, np.ndarray) and v.dtype.kind in "fiub"}
    except NotImplementedError:
        pass  # a v7.3 file: HDF5 inside
    except Exception as exc:  # scipy raises ValueError/TypeError/OSError variants for corrupt files
        raise BlurtoolsError(f"{path}: cannot read MATLAB file ({exc})") from exc
    try:
        import h5py

        out = {}
        with h5py.File(path, "r") as f:
            for k, v in f.items():
                if isinstance(v, h5py.Dataset) and v.dtype.kind in "fiub":
                    # MATLAB writes column-major: reversing the axes restores MATLAB's own order.
                    out[k] = np.asarray(v).transpose(tuple(range(v.ndim - 1, -1, -1)))
        return out
    except Exception as exc:
        raise BlurtoolsError(f"{path}: cannot read MATLAB v7.3 file ({exc})") from exc


def read_stack_array(path: "str | Path", key: Optional[str] = None) -> np.ndarray:
    """The raw numeric array of a .npy or .mat stack file.

    For .mat files the array is ``key`` if given, else the file's only numeric array.
    Raises BlurtoolsError naming the file when it is missing, unreadable or ambiguous.
    """
    p = Path(path)
    if not p.is_file():
        raise BlurtoolsError(f"{p}: PSF stack file not found")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        if key is not None:
            raise UsageError(f"{p}: a key ({key!r}) only applies to .mat files")
        try:
            arr = np.load(p, allow_pickle=False)
        except Exception as exc:
            raise BlurtoolsError(f"{p}: cannot read .npy file ({exc})") from exc
    elif suffix == ".mat":
        arrays = _numeric_arrays_mat(p)
        if key is not None:
            if key not in arrays:
                raise BlurtoolsError(f"{p}: no numeric array named {key!r} (has: {sorted(arrays) or 'none'})")
            arr = arrays[key]
        elif len(arrays) == 1:
            arr = next(iter(arrays.values()))
        else:
            raise BlurtoolsError(f"{p}: {'no numeric array' if not arrays else 'several numeric arrays'} "
                                 f"({sorted(arrays)}); name the PSF stack's key")
    else:
        raise BlurtoolsError(f"{p}: unsupported PSF stack format {suffix or '(no extension)'}; use .npy or .mat")
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiub":
        raise BlurtoolsError(f"{p}: PSF stack must be a numeric array, got {getattr(arr, 'dtype', type(arr))}")
    return arr


def load_psf_stack(path: "str | Path", key: Optional[str] = None, layout: str = "KHWC",
                   normalize: bool = False, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Load a user PSF stack as a (K, 3, h, w) tensor.

    Args:
        path: .npy, or .mat (MATLAB v4-v7.3; the only numeric array, or ``key``).
        key: array name inside a .mat file.
        layout: axis order in the file: "KHWC" (default, K x h x w x 3), "HWCK" (MATLAB's natural
            h x w x 3 x K) or "KCHW". A 3-D (h, w, 3) array (layout KHWC) is one instant.
        normalize: scale each (instant, channel) PSF to sum 1; off by default (measured light loss kept).
    Returns:
        (K, 3, h, w) tensor of ``dtype`` on the CPU.
    Raises:
        BlurtoolsError naming the file: wrong shape, non-finite or clearly negative values, an empty
        channel.

    Example::

        stack = load_psf_stack("seed000_phase_psfs.npy")   # (7, 3, 27, 27), sums 0.87..0.97
    """
    if layout not in LAYOUTS:
        raise UsageError(f"PSF stack layout must be one of {LAYOUTS}, got {layout!r}")
    p = Path(path)
    arr = read_stack_array(p, key)
    if arr.ndim == 3 and layout == "KHWC":
        arr = arr[None]
    expect = {"KHWC": "K x h x w x 3", "HWCK": "h x w x 3 x K", "KCHW": "K x 3 x h x w"}[layout]
    chan_axis = {"KHWC": 3, "HWCK": 2, "KCHW": 1}[layout]
    if arr.ndim != 4 or arr.shape[chan_axis] != 3:
        raise BlurtoolsError(f"{p}: PSF stack has shape {tuple(arr.shape)}, expected {expect} "
                             f"(layout {layout})")
    if layout == "KHWC":
        arr = arr.transpose(0, 3, 1, 2)
    elif layout == "HWCK":
        arr = arr.transpose(3, 2, 0, 1)
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.shape[0] < 1 or arr.shape[2] < 1 or arr.shape[3] < 1:
        raise BlurtoolsError(f"{p}: PSF stack is empty (shape {tuple(arr.shape)} as K x 3 x h x w)")
    if not np.isfinite(arr).all():
        raise BlurtoolsError(f"{p}: PSF stack has non-finite values")
    peak = float(arr.max())
    # Background subtraction in a measurement leaves tiny negatives; more than that is not a PSF.
    if float(arr.min()) < -1e-3 * max(peak, 0.0):
        raise BlurtoolsError(f"{p}: PSF stack has negative values (min {float(arr.min()):.3g}, max {peak:.3g})")
    sums = arr.sum(axis=(2, 3))
    if (sums <= 0).any():
        k, c = np.argwhere(sums <= 0)[0]
        raise BlurtoolsError(f"{p}: PSF stack instant {k} channel {'RGB'[c]} sums to {sums[k, c]:.3g} (no light)")
    if (sums > 1.05).any():
        log.info("%s: PSF sums up to %.3g (> 1); not a light-loss-only stack", p, float(sums.max()))
    stack = torch.from_numpy(arr)
    if normalize:
        stack = stack / stack.sum(dim=(-2, -1), keepdim=True)
    return stack.to(dtype)


def stack_to_array(stack: torch.Tensor) -> np.ndarray:
    """(K, 3, h, w) tensor -> float32 (K, h, w, 3) numpy array, the on-disk layout."""
    _check_stack(stack, "stack_to_array")
    return stack.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).contiguous().numpy()


def _check_stack(stack: torch.Tensor, fn: str) -> None:
    if not isinstance(stack, torch.Tensor) or stack.ndim != 4 or stack.shape[1] != 3:
        shape = tuple(stack.shape) if isinstance(stack, torch.Tensor) else type(stack).__name__
        raise UsageError(f"{fn}: expected a (K, 3, h, w) PSF stack, got {shape}")


def _hat_weights(times: np.ndarray, k: int) -> np.ndarray:
    """(N, K) weights of the piecewise-linear-in-time stack at ``times``; instant i sits at (i+1/2)/K,
    the stack is held constant before the first and after the last instant."""
    u = np.clip(times * k - 0.5, 0.0, k - 1.0)
    i0 = np.minimum(np.floor(u).astype(int), max(k - 2, 0))
    frac = u - i0
    w = np.zeros((len(times), k))
    rows = np.arange(len(times))
    w[rows, i0] += 1.0 - frac
    if k > 1:
        w[rows, i0 + 1] += frac
    return w


def time_resampling_matrix(k_old: int, k_new: int, method: str = "average") -> np.ndarray:
    """(K_new, K_old) matrix W with ``new[j] = sum_i W[j, i] old[i]``; rows sum to 1.

    "average": new instant j is the time average of the piecewise-linear stack over its sub-exposure
    [j/K_new, (j+1)/K_new] (exact: trapezoids between breakpoints). The mean over instants is then
    preserved exactly, so the total blur of the exposure does not change, and shrinking K integrates
    rather than skipping instants.
    "sample": linear interpolation at the new mid-instants (j+1/2)/K_new.
    """
    if k_old < 1 or k_new < 1:
        raise UsageError(f"time resampling needs K >= 1, got {k_old} -> {k_new}")
    if method not in RESAMPLE_METHODS:
        raise UsageError(f"time resampling method must be one of {RESAMPLE_METHODS}, got {method!r}")
    if method == "sample":
        return _hat_weights((np.arange(k_new) + 0.5) / k_new, k_old)
    knots = (np.arange(k_old) + 0.5) / k_old
    rows = []
    for j in range(k_new):
        a, b = j / k_new, (j + 1) / k_new
        pts = np.unique(np.concatenate(([a, b], knots[(knots > a) & (knots < b)])))
        vals = _hat_weights(pts, k_old)                                      # exact at the breakpoints
        seg = np.diff(pts)[:, None]
        rows.append(((vals[:-1] + vals[1:]) * 0.5 * seg).sum(axis=0) / (b - a))
    return np.stack(rows)


def resample_stack_in_time(stack: torch.Tensor, k_new: int, method: str = "average") -> torch.Tensor:
    """Resample a (K, 3, h, w) stack to ``k_new`` instants by linear interpolation over time.

    Instants are the mid-times of K equal sub-exposures. Each new PSF is a convex combination of old
    ones, so per-instant channel sums (the light throughput) are interpolated, never rescaled by K; with
    "average" (default) the mean PSF over the exposure is exactly preserved.

    Args:
        stack: (K, 3, h, w) tensor, any device.
        k_new: number of instants wanted (>= 1).
        method: "average" or "sample" (see :func:`time_resampling_matrix`).
    Returns:
        (k_new, 3, h, w) tensor, same dtype and device.

    Example::

        stack13 = resample_stack_in_time(load_psf_stack("psfs.npy"), 13)
    """
    _check_stack(stack, "resample_stack_in_time")
    k_old = stack.shape[0]
    if k_new == k_old:
        return stack
    w = torch.as_tensor(time_resampling_matrix(k_old, int(k_new), method), device=stack.device)
    out = torch.einsum("ji,ichw->jchw", w.to(torch.float64), stack.to(torch.float64))
    return out.to(stack.dtype)
