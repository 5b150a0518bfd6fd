"""The phase-code request: the coded lens and its focus sweep, and the runs that use it.

:class:`PhaseRequest` holds the optics knobs of ``phase-code`` (each field's help is its flag's help); with
a :class:`~blurtools.synth.request.SynthRequest` it makes a phase-coded sample set
(:func:`run_phase_code`: every exposure is rendered through the PSF stack of the coded lens) or only the
PSF stack and its picture (:func:`write_psf_stack`).

Example::

    phase, synth = PhaseRequest(mask="none", psi0=0, psi1=0), SynthRequest(frames=7)
    stats = run_phase_code([Path("clip.mp4")], Path("sets/plain"), phase, synth)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Sequence

from blurtools.errors import BlurtoolsError, UsageError
from blurtools.io.atomic import atomic_write_bytes
from blurtools.request import option
from blurtools.synth.request import SynthRequest, run_synthesis

if TYPE_CHECKING:
    from blurtools.synth.coded_psf import PhaseOptions
    from blurtools.synth.pipeline import RunStats

# The optics (coded_psf, phase_coding) import scipy.fft and torch: measured +0.45 s and about 2 s on every
# `blurtools --help`, so they (and the stills' renderer) are imported where a phase-code run needs them.

TOOL = "phase-code"
PADS = ("reflect", "zeros")


@dataclass
class PhaseRequest:
    """The coded camera of phase-code: pupil mask, focus sweep, optics, sensor, spectra, or a measured stack."""

    psi0: float = option(1.0, help="Defocus psi at the first instant of the sweep (at the reference wavelength).")
    psi1: float = option(10.0, help="Defocus psi at the last instant of the sweep.")
    mask: str = option("ring", help="Phase mask: ring (default: 10 pi on 0.2..0.7 of the pupil at 455 nm; with the "
                       "default sweep the streak colours run blue -> cyan -> green -> yellow -> red), ring6pi (6 pi on "
                       "0.55..0.8), none (clear pupil), or rings inner:outer:phase, comma-separated (phase in radians, 'pi' suffix "
                       "allowed).")
    aperture_radius: float = option(1.14, help="Pupil radius R in mm.")
    ref_wavelength: float = option(455.0, help="Wavelength (nm) at which psi and the mask phases are given.")
    focus_distance: float = option(0.9, help="Focus distance in metres (for --object-distance).")
    object_distance: Optional[float] = option(None, help="Object distance in metres: adds (pi R^2/lambda)(1/z - 1/z_focus) "
                                              "to every instant's psi (default: at focus).")
    focal_length: float = option(12.0, help="Focal length in mm (sets the PSF scale on the sensor).")
    pixel_pitch: float = option(2.0, help="Sensor pixel pitch in micrometres.")
    oversample: int = option(3, help="FFT samples per pixel side (odd) for the optics model.")
    psf_size: int = option(27, help="PSF side in pixels (odd).")
    spectrum_r: str = option("600,620,640", help="Red channel spectrum: comma-separated wavelengths in nm, each optionally nm:weight.")
    spectrum_g: str = option("520,540,560", help="Green channel spectrum: comma-separated wavelengths in nm, each optionally nm:weight.")
    spectrum_b: str = option("440,455,470", help="Blue channel spectrum: comma-separated wavelengths in nm, each optionally nm:weight.")
    psf_stack: Optional[Path] = option(None, help="Use this stack (.npy/.mat, K x h x w x 3) instead of the optics model; "
                                       "resampled in time to the exposure.")
    psf_normalize: bool = option(False, negatable=True, help="Scale every PSF of a --psf-stack to sum 1 (by default a "
                                 "measured stack's light loss, e.g. sums of 0.87-0.97, is kept; computed PSFs sum to 1 "
                                 "anyway).")
    pad: str = option("reflect", help="Border extension for the convolution: reflect or zeros.")

    def __post_init__(self) -> None:
        from blurtools.synth.coded_psf import PhaseOptions, parse_mask, parse_spectrum

        if self.pad not in PADS:
            raise UsageError(f"--pad {self.pad}: choose reflect or zeros")
        if self.psf_size < 1 or self.psf_size % 2 == 0:
            raise UsageError(f"--psf-size {self.psf_size}: must be a positive odd number")
        if self.oversample < 1 or self.oversample % 2 == 0:
            raise UsageError(f"--oversample {self.oversample}: must be a positive odd number")
        if self.psf_stack is not None and not Path(self.psf_stack).is_file():
            raise BlurtoolsError(f"{self.psf_stack}: no such PSF stack file")
        self._optics = PhaseOptions(
            psi0=self.psi0, psi1=self.psi1, mask=parse_mask(self.mask), aperture_radius_mm=self.aperture_radius,
            ref_wavelength_nm=self.ref_wavelength, focus_m=self.focus_distance, object_distance_m=self.object_distance,
            focal_length_mm=self.focal_length, pixel_pitch_um=self.pixel_pitch, oversample=self.oversample,
            psf_size=self.psf_size, spectra=(parse_spectrum(self.spectrum_r, "r"), parse_spectrum(self.spectrum_g, "g"),
                                             parse_spectrum(self.spectrum_b, "b")),
            psf_stack=str(self.psf_stack) if self.psf_stack else None, normalize=self.psf_normalize)

    def optics(self) -> "PhaseOptions":
        """The physical parameters of the coded camera (parsed and checked when the request was made)."""
        return self._optics


def instants(synth: SynthRequest) -> int:
    """Sharp instants K of one exposure: N frames, or (N-1)M+1 with temporal upsampling M."""
    cfg = synth.config()
    return (cfg.frames - 1) * cfg.interp + 1


def write_psf_stack(phase: PhaseRequest, synth: SynthRequest, npy: Optional[Path], png: Optional[Path]) -> Dict[str, Any]:
    """Only the PSF stack (K = the window's instants): as .npy (float32, K x h x w x 3) and/or a PNG strip.

    Returns the result record: tool, instants, (h, w), the files, the RMS radius per channel, the optics.
    """
    from blurtools.synth.coded_psf import build_stack, channel_summary, stack_to_npy_bytes, strip_png_bytes

    if npy is None and png is None:
        raise UsageError("phase-code psf: give -o STACK.npy and/or --png STRIP.png")
    k = instants(synth)
    stack = build_stack(phase.optics(), k, synth.control().device)
    if npy is not None:
        atomic_write_bytes(npy, stack_to_npy_bytes(stack))
    if png is not None:
        atomic_write_bytes(png, strip_png_bytes(stack))
    return {"tool": TOOL, "instants": k, "size": list(stack.shape[-2:]), "npy": str(npy) if npy else None,
            "png": str(png) if png else None, "rms_radius_px_rgb": channel_summary(stack),
            "options": phase.optics().record()}


def run_phase_code(sources: Sequence[Path], output: Path, phase: PhaseRequest, synth: SynthRequest,
                   png: Optional[Path] = None, on_window: Optional[Callable[[Any], None]] = None) -> RunStats:
    """A phase-coded sample set: each instant's sharp frame is convolved per channel with the coded lens's PSF
    at that instant of the sweep, and the results averaged in linear light. The stack is computed once and
    saved as SET/psf/stack.npy (and .png; ``png`` writes the strip there too), which every manifest line names.
    """
    from blurtools.synth.coded_psf import build_stack, stack_digest, stack_to_npy_bytes, strip_png_bytes
    from blurtools.synth.phase_coding import CodedExposure
    from blurtools.synth.stills import StillMaker

    cfg, control = synth.config(), synth.control()
    k = instants(synth)
    stack = build_stack(phase.optics(), k, control.device)
    coder = CodedExposure(stack, control.device, pad=phase.pad)
    stills = StillMaker(cfg, synth.trajectory(), control.device)
    options = {**synth.record(cfg, stills, sources), "optics": phase.optics().record(), "pad": phase.pad,
               "instants": k, "psf_sha256": stack_digest(stack)}
    shared = {"psf/stack.npy": stack_to_npy_bytes(stack), "psf/stack.png": strip_png_bytes(stack)}
    if png is not None:
        atomic_write_bytes(png, shared["psf/stack.png"])

    def render(exposure: Any) -> Any:
        exposure.extra["psf"] = "psf/stack.npy"
        return coder.render(exposure)

    return run_synthesis(TOOL, sources, output, cfg, control, options, render=render,
                         still_exposure=stills.exposure_dense, shared_files=shared, on_window=on_window)
