"""The PSF stack of a phase-code run: from the Fourier-optics model or a user's file, once per run.

A run needs one PSF (3 channels) per instant of its exposure, K = L instants (L = N, or (N-1) M + 1 with
``--interp M``). :func:`build_stack` makes it from :class:`PhaseOptions` with blurtools.ops.phase_psf
(psi swept linearly psi0 -> psi1, psi_k = psi0 + (psi1 - psi0)(k + 1/2)/K), or loads a user stack
(K' x h x w x 3, .npy or .mat) and resamples it in time to K when K' differs (blurtools.ops.psf_stack).

On disk (``psf/stack.npy`` in a set, or ``phase-code psf -o FILE``) a stack is float32 (K, h, w, 3), the
layout users give, so a written stack can be passed back with ``--psf-stack``.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from blurtools.errors import BlurtoolsError, UsageError
from blurtools.synth.phase_coding import normalize_stack

Spectrum = Tuple[Tuple[float, float], ...]


@dataclass
class PhaseOptions:
    """Physical parameters of the coded camera (defaults: the camera of Elmalem et al., pupil radius
    1.14 mm, reference wavelength 455 nm, focus at 0.9 m; see blurtools.ops.phase_psf).

    Attributes:
        psi0, psi1: defocus at the first and last instant of the sweep (at the reference wavelength).
        mask: ``ring`` (one 10 pi ring on 0.2..0.7 of the pupil, see blurtools.ops.phase_psf.MASKS), ``ring6pi``, ``none`` (clear pupil) or explicit rings
            ``((inner, outer, phase_rad), ...)`` at the reference wavelength.
        aperture_radius_mm (1.14), ref_wavelength_nm (455), focus_m (0.9 m): the lens and its focus.
        object_distance_m: an object off the focus adds ``(pi R^2 / lambda)(1/z - 1/z_focus)`` to every
            instant's psi; None = the object is at the focus distance.
        focal_length_mm (12), pixel_pitch_um (2), oversample (3): the sensor sampling (unconfirmed values).
        psf_size: odd PSF side in pixels (27).
        spectra: (R, G, B) spectra as ((nm, weight), ...).
        psf_stack: a user stack file instead of the model. normalize: scale each PSF to sum 1.
    """

    psi0: float = 1.0
    psi1: float = 10.0
    mask: Any = "ring"
    aperture_radius_mm: float = 1.14
    ref_wavelength_nm: float = 455.0
    focus_m: float = 0.9
    object_distance_m: Optional[float] = None
    focal_length_mm: float = 12.0
    pixel_pitch_um: float = 2.0
    oversample: int = 3
    psf_size: int = 27
    spectra: Tuple[Spectrum, Spectrum, Spectrum] = field(default_factory=lambda: _default_spectra())
    psf_stack: Optional[str] = None
    normalize: bool = False

    def record(self) -> Dict[str, Any]:
        d = asdict(self)
        d["mask"] = self.mask if isinstance(self.mask, str) else [list(r) for r in self.mask]
        d["spectra"] = [[list(p) for p in s] for s in self.spectra]
        return d


def _default_spectra() -> Tuple[Spectrum, Spectrum, Spectrum]:
    from blurtools.ops.phase_psf import DEFAULT_SPECTRA

    return tuple(tuple((float(a), float(b)) for a, b in s) for s in DEFAULT_SPECTRA)  # type: ignore[return-value]


def parse_mask(text: str) -> Any:
    """``none``, ``ring``, or rings ``inner:outer:phase[,inner:outer:phase...]`` (phase in radians; a
    trailing ``pi`` multiplies by pi, e.g. ``0.55:0.8:6pi``)."""
    t = text.strip().lower()
    from blurtools.ops.phase_psf import MASKS

    if t in MASKS:
        return t
    rings = []
    for part in t.split(","):
        try:
            a, b, p = part.split(":")
            phase = float(p[:-2] or 1) * math.pi if p.endswith("pi") else float(p)
            rings.append((float(a), float(b), phase))
        except ValueError:
            raise UsageError(f"--mask {text}: expected none, ring, or inner:outer:phase[,...] e.g. 0.55:0.8:6pi") from None
        if not 0 <= rings[-1][0] < rings[-1][1] <= 1:
            raise UsageError(f"--mask {text}: ring radii need 0 <= inner < outer <= 1 (fractions of the pupil radius)")
    return tuple(rings)


def parse_spectrum(text: str, channel: str) -> Spectrum:
    """``nm[:weight],...`` -> ((nm, weight), ...); weights default to 1."""
    out = []
    for part in text.split(","):
        try:
            bits = part.split(":")
            nm, w = float(bits[0]), float(bits[1]) if len(bits) > 1 else 1.0
        except (ValueError, IndexError):
            raise UsageError(f"--spectrum-{channel} {text}: expected nm[:weight],... e.g. 600,620,640") from None
        if nm <= 0 or w < 0:
            raise UsageError(f"--spectrum-{channel} {text}: wavelengths must be positive and weights >= 0")
        out.append((nm, w))
    if not out or sum(w for _, w in out) <= 0:
        raise UsageError(f"--spectrum-{channel} {text}: needs at least one wavelength with a positive weight")
    return tuple(out)


def model_stack(opts: PhaseOptions, instants: int, device: "torch.device | str" = "cpu") -> torch.Tensor:
    """(K, 3, h, w) float32 PSFs of the Fourier-optics model, each channel summing to 1."""
    from blurtools.ops.phase_psf import Optics, phase_psf_stack, psi_from_distance, sweep_psis

    optics = Optics(aperture_radius_mm=opts.aperture_radius_mm, ref_wavelength_nm=opts.ref_wavelength_nm,
                    focus_m=opts.focus_m, focal_length_mm=opts.focal_length_mm, pixel_pitch_um=opts.pixel_pitch_um,
                    oversample=opts.oversample)
    psis = sweep_psis(opts.psi0, opts.psi1, instants)
    if opts.object_distance_m is not None:
        if opts.object_distance_m <= 0:
            raise UsageError(f"--object-distance {opts.object_distance_m}: must be positive (metres)")
        psis = psis + psi_from_distance(opts.object_distance_m, optics)
    stack = phase_psf_stack(psis, mask=opts.mask, size=opts.psf_size, spectra=opts.spectra, optics=optics,
                            device=torch.device(device), dtype=torch.float32)
    return stack


def user_stack(path: "str | Path", instants: int) -> torch.Tensor:
    """A user's (K', h, w, 3) stack from .npy/.mat as (K, 3, h, w), resampled in time to K = ``instants``."""
    from blurtools.ops import psf_stack as ps

    stack = ps.load_psf_stack(path)
    if stack.shape[0] != instants:
        stack = ps.resample_stack_in_time(stack, instants)
    return stack.float()


def build_stack(opts: PhaseOptions, instants: int, device: "torch.device | str" = "cpu") -> torch.Tensor:
    """The run's (K, 3, h, w) float32 stack on ``device`` (normalised unless ``opts.normalize`` is False)."""
    if instants < 1:
        raise UsageError(f"a PSF stack needs at least one instant, got {instants}")
    stack = user_stack(opts.psf_stack, instants) if opts.psf_stack else model_stack(opts, instants, device)
    if not bool(torch.isfinite(stack).all()) or bool((stack < 0).any()):
        raise BlurtoolsError(f"{opts.psf_stack or 'PSF model'}: the PSF stack has negative or non-finite values")
    if opts.normalize:
        stack = normalize_stack(stack)
    return stack.to(device, torch.float32)


def stack_to_npy_bytes(stack: torch.Tensor) -> bytes:
    """(K, 3, h, w) -> .npy bytes of float32 (K, h, w, 3)."""
    buf = io.BytesIO()
    np.save(buf, stack.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).contiguous().numpy())
    return buf.getvalue()


def stack_digest(stack: torch.Tensor) -> str:
    """SHA-256 of the stack's float32 bytes (recorded so a resumed run checks it uses the same PSFs)."""
    return hashlib.sha256(stack_to_npy_bytes(stack)).hexdigest()


def strip_png_bytes(stack: torch.Tensor, scale: int = 8) -> bytes:
    """A PNG strip of the stack, one tile per instant, colour-coded (blurtools.ops.phase_psf)."""
    from blurtools.ops.phase_psf import render_psf_strip
    from blurtools.synth.output import encode_png8

    return encode_png8(render_psf_strip(stack.detach().cpu(), scale=scale), compress_level=6)


def channel_summary(stack: torch.Tensor) -> List[List[float]]:
    """Per instant, the RMS radius in pixels of the R, G, B PSFs (what a person checks first)."""
    from blurtools.ops.phase_psf import psf_radius

    return [[round(float(v), 3) for v in row] for row in psf_radius(stack.detach().cpu().double())]
