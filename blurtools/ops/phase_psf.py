"""Point-spread functions of a phase-coded aperture swept through focus (Fourier optics).

After Haim, Elmalem, Giryes, Bronstein, Marom, "Depth estimation from a single image using deep learned
phase coded mask", IEEE TCI 2018, and Elmalem, Giryes, Marom, "Motion deblurring using spatiotemporal
phase aperture coding", Optica 2020.

Model (Fourier optics of a pupil with a ring phase mask and defocus psi)::

    P(rho) = circ(rho) * exp(i [phi_mask(rho) + psi * rho^2]),   rho = r / R
    h      = |FFT(P)|^2 / sum,   psi(lambda)     = psi_ref * lambda_ref / lambda
                                 phi_k(lambda)   = phi_k,ref * lambda_ref / lambda

``psi`` values passed to this module are always given at the reference wavelength (455 nm by default).

Wavelength-correct sampling: the image-plane sample pitch of an FFT of the pupil is
``lambda f / (M dx)``. The FFT size ``M`` is fixed here and the pupil is drawn with a radius of
``R M p_fft / (lambda f)`` samples (``p_fft`` = sensor pixel pitch / oversampling), i.e. the pupil is
sampled more coarsely for red than for blue, so every wavelength lands on one pixel grid and a red
diffraction pattern is wider in pixels than a blue one, as it is on a sensor. The oversampled intensity
is then integrated over each sensor pixel (``oversample`` x ``oversample`` box) and cropped.

The default mask and sweep are chosen so the sweep shows the colour order of a measured phase-coded
PSF stack (first instant blue and tight, then cyan, green, yellow, orange, last instant red and widest);
the exact ring radii and phases of the 2020 paper are not published in a form we could confirm, so they
are arguments.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from blurtools.errors import UsageError

log = logging.getLogger(__name__)

Spectrum = Sequence[Tuple[float, float]]  # (wavelength in nm, relative weight) pairs

#: Spectral sensitivity of the R, G, B channels as a few (wavelength nm, weight) samples.
DEFAULT_SPECTRA: Tuple[Spectrum, Spectrum, Spectrum] = (
    ((600.0, 1.0), (620.0, 1.0), (640.0, 1.0)),
    ((520.0, 1.0), (540.0, 1.0), (560.0, 1.0)),
    ((440.0, 1.0), (455.0, 1.0), (470.0, 1.0)),
)


@dataclass(frozen=True)
class Optics:
    """Physical parameters of the coded camera.

    Attributes:
        aperture_radius_mm: pupil radius R (group default 1.14 mm).
        ref_wavelength_nm: wavelength at which psi and the mask phases are given (455 nm, blue).
        focus_m: focus distance z_focus used by :func:`psi_from_distance` (0.9 m).
        focal_length_mm: lens focal length f (unconfirmed; 12 mm gives f/5.3).
        pixel_pitch_um: sensor pixel pitch p (unconfirmed; 2 um puts the blue Airy radius at ~1.5 px).
        oversample: odd number of FFT samples per pixel side; the intensity is integrated over pixels.
        min_pupil_samples: smallest pupil radius in FFT samples (at the longest wavelength) for accuracy.
    """

    aperture_radius_mm: float = 1.14
    ref_wavelength_nm: float = 455.0
    focus_m: float = 0.9
    focal_length_mm: float = 12.0
    pixel_pitch_um: float = 2.0
    oversample: int = 3
    min_pupil_samples: float = 24.0

    def pupil_radius_px(self, wavelength_nm: float, grid_px: int) -> float:
        """Pupil radius, in FFT samples, for an FFT grid spanning ``grid_px`` sensor pixels."""
        return (self.aperture_radius_mm * 1e-3 * grid_px * self.pixel_pitch_um * 1e-6
                / (wavelength_nm * 1e-9 * self.focal_length_mm * 1e-3))

    def blur_px_per_psi(self) -> float:
        """Geometric defocus-blur radius in pixels per unit psi (psi at the reference wavelength)."""
        return self.pupil_radius_px(self.ref_wavelength_nm, 1) ** -1 / math.pi


@dataclass(frozen=True)
class PhaseMask:
    """A radially symmetric phase mask made of rings.

    Attributes:
        rings: ``(inner, outer, phase)`` triples: phase in radians at the reference wavelength on
            ``inner <= rho < outer`` (rho normalised to the pupil radius, 0..1). Rings must not overlap.
        name: label recorded in metadata.
    """

    rings: Tuple[Tuple[float, float, float], ...] = ()
    name: str = "custom"

    def __post_init__(self) -> None:
        for a, b, _ in self.rings:
            if not 0.0 <= a < b <= 1.0:
                raise UsageError(f"phase mask ring ({a}, {b}): need 0 <= inner < outer <= 1")


#: Ready-made masks (ring radii and phases of the 2020 paper are unconfirmed).
#: "ring" (default): one ring 0.2 <= rho < 0.7 of 10 pi at 455 nm. It is a whole number of waves for blue
#: (blue focuses as through a clear lens), ~0.4 pi for green and ~1.3 pi for red, so the colours reach
#: their sharpest at different psi: across the default sweep the sharpest colour runs blue -> cyan ->
#: green -> yellow -> orange -> red, the order a measured phase-coded PSF stack shows.
#: "ring6pi": one ring 0.55 <= rho < 0.8 of 6 pi at 455 nm, the textbook example of the mechanism: green's best
#: focus moves to psi ~ +10 while blue stays at 0.
MASKS: Dict[str, PhaseMask] = {
    "none": PhaseMask((), "none"),
    "ring": PhaseMask(((0.2, 0.7, 10.0 * math.pi),), "ring"),
    "ring6pi": PhaseMask(((0.55, 0.8, 6.0 * math.pi),), "ring6pi"),
}

#: The group's working defocus range (psi at 455 nm).
PSI_RANGE: Tuple[float, float] = (-4.0, 10.0)

#: Default focus sweep over the exposure (psi at 455 nm), first to last instant; inside PSI_RANGE.
DEFAULT_SWEEP: Tuple[float, float] = (1.0, 10.0)


def psi_from_distance(z_object_m: float, optics: Optics = Optics()) -> float:
    """Defocus psi (at the reference wavelength) of an object at ``z_object_m`` metres.

    ``psi = (pi R^2 / lambda) (1/z_o - 1/z_focus)``; positive for objects nearer than focus.
    """
    r = optics.aperture_radius_mm * 1e-3
    lam = optics.ref_wavelength_nm * 1e-9
    return math.pi * r * r / lam * (1.0 / z_object_m - 1.0 / optics.focus_m)


def sweep_psis(psi0: float = DEFAULT_SWEEP[0], psi1: float = DEFAULT_SWEEP[1], k: int = 7) -> torch.Tensor:
    """Mid-instant psi values of a linear focus sweep: ``psi_k = psi0 + (psi1 - psi0)(k + 1/2)/K``.

    Example: ``sweep_psis(0, 7, 7)`` -> ``tensor([0.5, 1.5, ..., 6.5], dtype=float64)``.
    """
    if k < 1:
        raise UsageError(f"sweep_psis: K must be >= 1, got {k}")
    idx = torch.arange(k, dtype=torch.float64)
    return psi0 + (psi1 - psi0) * (idx + 0.5) / k


def resolve_mask(mask: Union[str, PhaseMask, Sequence[Tuple[float, float, float]]]) -> PhaseMask:
    """Accept a name from :data:`MASKS`, a :class:`PhaseMask`, or a list of (inner, outer, phase)."""
    if isinstance(mask, PhaseMask):
        return mask
    if isinstance(mask, str):
        if mask not in MASKS:
            raise UsageError(f"unknown phase mask {mask!r}; choose from {sorted(MASKS)}")
        return MASKS[mask]
    return PhaseMask(tuple((float(a), float(b), float(p)) for a, b, p in mask))


def _grid_size(size: int, wavelengths: Sequence[float], optics: Optics) -> int:
    """Odd number of pixels the FFT grid spans: >= size plus margin, and enough pupil samples."""
    lam_max = max(wavelengths)
    per_px = optics.pupil_radius_px(lam_max, 1)
    n = max(size + 8, int(math.ceil(optics.min_pupil_samples / per_px)))
    return n + 1 - n % 2


def _oversample(n: int, wavelengths: Sequence[float], optics: Optics) -> int:
    """Odd samples per pixel so that the pupil diameter fills at most half the FFT (alias-free |F|^2)."""
    r_max = optics.pupil_radius_px(min(wavelengths), n)
    s = max(int(optics.oversample), int(math.ceil(4.0 * r_max / n)))
    return s + 1 - s % 2


def monochromatic_psfs(psi_ref: torch.Tensor, wavelengths_nm: Sequence[float],
                       mask: Union[str, PhaseMask] = "ring", size: int = 27,
                       optics: Optics = Optics(), device: Optional[torch.device] = None) -> torch.Tensor:
    """PSFs for every (psi, wavelength) pair on the common sensor pixel grid.

    Args:
        psi_ref: (K,) defocus values at the reference wavelength.
        wavelengths_nm: L wavelengths.
        mask: phase mask (see :func:`resolve_mask`).
        size: odd output side in pixels; the PSF centre (chief ray) is pixel ``size // 2``.
    Returns:
        (K, L, size, size) float64 on ``device``, each PSF summing to 1.
    """
    if size < 1 or size % 2 == 0:
        raise UsageError(f"PSF size must be a positive odd number, got {size}")
    pm = resolve_mask(mask)
    dev = torch.device("cpu") if device is None else torch.device(device)
    psi_ref = torch.as_tensor(psi_ref, dtype=torch.float64).reshape(-1).to(dev)
    n = _grid_size(size, wavelengths_nm, optics)
    s = _oversample(n, wavelengths_nm, optics)
    m = n * s
    ratio = torch.tensor([optics.ref_wavelength_nm / float(w) for w in wavelengths_nm],
                         dtype=torch.float64, device=dev)                  # (L,) lambda_ref / lambda
    radius = torch.tensor([optics.pupil_radius_px(float(w), n) for w in wavelengths_nm],
                          dtype=torch.float64, device=dev)                  # (L,) samples
    # Only the pupil's bounding box is filled; fft2(s=...) zero-pads it to M x M. Where the pupil sits
    # in the array only tilts the phase of the spectrum, which |.|^2 removes.
    half = int(math.ceil(float(radius.max()))) + 1
    ax = torch.arange(-half, half + 1, dtype=torch.float64, device=dev)
    d = torch.sqrt(ax[:, None] ** 2 + ax[None, :] ** 2)[None]              # (1, P, P)
    r = radius[:, None, None]                                               # (L, 1, 1)
    # Pixel-coverage (anti-aliased) edges keep the pupil area exact and smooth in radius, so PSFs vary
    # smoothly with wavelength instead of jumping with the integer pixel count of a hard-edged disc.
    amp = (r + 0.5 - d).clamp(0.0, 1.0)                                     # (L, P, P)
    rho2 = (d / r) ** 2
    base = amp.to(torch.complex128)
    for a, b, phase in pm.rings:
        cover = (b * r + 0.5 - d).clamp(0.0, 1.0)
        if a > 0:                                    # a ring from the centre has no inner edge
            cover = cover - (a * r + 0.5 - d).clamp(0.0, 1.0)
        ph = (phase * ratio)[:, None, None]
        # Field averaged over a sample = sum over zones of (area fraction x exp(i phase)).
        base = base + cover * (torch.polar(torch.ones_like(ph), ph) - 1.0)
    base = base.to(torch.complex64)
    span = size * s
    # Keep only the central size x size pixels (size*s samples around zero frequency, wrapped), the
    # sample (M-1)/2 after an fftshift being the middle sample of the middle s x s pixel block (M odd).
    idx = (torch.arange(span, device=dev) - (span - 1) // 2) % m
    # Instants in chunks of ~64 MB of spectrum, so long sweeps (K = 65 for interpolated windows) fit.
    chunk = max(1, int(64e6 // (8 * len(wavelengths_nm) * m * m)))
    parts = []
    for lo in range(0, psi_ref.numel(), chunk):
        psi = psi_ref[lo:lo + chunk]
        defocus = ((psi[:, None, None, None] * ratio[None, :, None, None]) * rho2[None]).to(torch.float32)
        field = base[None] * torch.polar(torch.ones_like(defocus), defocus)        # (k, L, P, P)
        spec = torch.fft.fft2(field, s=(m, m))
        spec = spec.index_select(-2, idx).index_select(-1, idx)
        inten = (spec.real ** 2 + spec.imag ** 2).to(torch.float64)
        k_, l_ = inten.shape[:2]
        parts.append(inten.reshape(k_, l_, size, s, size, s).sum(dim=(3, 5)))  # integrate over pixels
    px = torch.cat(parts)
    return px / px.sum(dim=(-2, -1), keepdim=True)


def phase_psf_stack(psi_values: Union[Sequence[float], torch.Tensor, None] = None,
                    mask: Union[str, PhaseMask, Sequence[Tuple[float, float, float]]] = "ring",
                    size: int = 27, spectra: Sequence[Spectrum] = DEFAULT_SPECTRA,
                    optics: Optics = Optics(), device: Optional[torch.device] = None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Colour PSFs of the coded lens at each instant of a focus sweep.

    Args:
        psi_values: (K,) defocus per instant at the reference wavelength; default
            ``sweep_psis(*DEFAULT_SWEEP, 7)`` (psi 1 -> 10 over the exposure).
        mask: "ring" (default), "none" (clear pupil), a :class:`PhaseMask`, or (inner, outer, phase) rings.
        size: odd PSF side in pixels (27 like the measured stack).
        spectra: three channel spectra (R, G, B), each a sequence of (wavelength nm, weight).
        optics: :class:`Optics` (R = 1.14 mm, lambda_ref = 455 nm, focus 0.9 m, f = 12 mm, p = 2 um).
    Returns:
        (K, 3, size, size) tensor of ``dtype`` on ``device``; every channel PSF sums to 1.

    Example::

        stack = phase_psf_stack(sweep_psis(1, 10, 7))           # (7, 3, 27, 27)
        clear = phase_psf_stack([0.0], mask="none", size=15)     # diffraction-limited Airy pattern
    """
    if psi_values is None:
        psi_values = sweep_psis(*DEFAULT_SWEEP, 7)
    if len(spectra) != 3:
        raise UsageError(f"phase_psf_stack: need 3 channel spectra (R, G, B), got {len(spectra)}")
    lams: list = []
    weights = []
    for ch, spec in enumerate(spectra):
        if len(spec) == 0:
            raise UsageError(f"phase_psf_stack: channel {ch} has an empty spectrum")
        for lam, w in spec:
            if lam <= 0 or w < 0:
                raise UsageError(f"phase_psf_stack: bad spectrum sample ({lam} nm, weight {w})")
            lams.append(float(lam))
        weights.append([float(w) for _, w in spec])
    mono = monochromatic_psfs(torch.as_tensor(psi_values, dtype=torch.float64), lams, mask, size,
                              optics, device)                                  # (K, L, h, w)
    chans = []
    start = 0
    for w in weights:
        wt = torch.tensor(w, dtype=torch.float64, device=mono.device)
        part = mono[:, start:start + len(w)]
        chans.append((part * (wt / wt.sum())[None, :, None, None]).sum(dim=1))
        start += len(w)
    return torch.stack(chans, dim=1).to(dtype)


def psf_radius(psf: torch.Tensor) -> torch.Tensor:
    """Second-moment (RMS) radius in pixels about the centroid, over the last two dims.

    Args:
        psf: (..., h, w) non-negative. Returns (...,) radii.
    """
    h, w = psf.shape[-2:]
    p = psf / psf.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-30)
    yy = torch.arange(h, dtype=p.dtype, device=p.device)[:, None]
    xx = torch.arange(w, dtype=p.dtype, device=p.device)[None, :]
    cy = (p * yy).sum(dim=(-2, -1), keepdim=True)
    cx = (p * xx).sum(dim=(-2, -1), keepdim=True)
    return torch.sqrt((p * ((yy - cy) ** 2 + (xx - cx) ** 2)).sum(dim=(-2, -1)))


def render_psf_strip(stack: torch.Tensor, scale: int = 8, gamma: float = 0.5, gap: int = 1) -> np.ndarray:
    """Render a PSF stack as an RGB strip, one tile per instant, left to right.

    Each tile is divided by its own maximum (over channels, so colour balance within an instant is kept)
    and gamma-compressed so faint halos show; tiles are separated by ``gap`` black pixels and magnified
    ``scale`` times with nearest-neighbour.

    Args:
        stack: (K, 3, h, w) tensor (or (K, h, w, 3) numpy array), non-negative.
    Returns:
        uint8 numpy array (scale*(h+2*gap), scale*K*(w+2*gap), 3), ready for PNG writing.
    """
    if isinstance(stack, np.ndarray):
        if stack.ndim != 4 or stack.shape[-1] != 3:
            raise UsageError(f"render_psf_strip: expected (K, h, w, 3) array, got {stack.shape}")
        arr = stack.astype(np.float64)
    else:
        if stack.ndim != 4 or stack.shape[1] != 3:
            raise UsageError(f"render_psf_strip: expected (K, 3, h, w) tensor, got {tuple(stack.shape)}")
        arr = stack.detach().to("cpu", torch.float64).permute(0, 2, 3, 1).numpy()
    tiles = []
    for tile in arr:
        peak = tile.max()
        t = np.clip(tile / peak, 0.0, 1.0) if peak > 0 else np.zeros_like(tile)
        tiles.append(np.pad(t ** gamma, ((gap, gap), (gap, gap), (0, 0))))
    strip = np.concatenate(tiles, axis=1)
    strip = np.repeat(np.repeat(strip, scale, axis=0), scale, axis=1)
    return np.round(strip * 255.0).astype(np.uint8)
