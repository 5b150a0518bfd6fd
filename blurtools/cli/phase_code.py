"""``phase-code``: simulate a camera whose phase-coded lens sweeps focus during the exposure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from blurtools.cli.blur_synth import (BitsOption, CropOption, CrfOption, CutOption, FramesOption, InterpMethodOption,
                                      InterpOption, JsonOption, MaxSamplesOption, NoiseOption, PerStillOption,
                                      PngLevelOption, ResizeOption, SaturationOption, StillsOption, StrideOption,
                                      TrajAnisoOption, TrajExposureOption, TrajLengthOption, WorkersOption,
                                      build_config, build_control, run_synthesis, trajectory_options)
from blurtools.cli.common import (DebugOption, DeviceOption, QuietOption, SeedOption, ShardOption, handle_errors,
                                  run_standalone, setup_logging)

COMMAND_NAME = "phase-code"

MAN_EXAMPLES = [
    ("Coded blurry/sharp pairs from a video, 7 instants per exposure, on the GPU when there is one.",
     "phase-code clip.mp4 -o sets/coded7 --frames 7"),
    ("Write the PSF stack of the default coded lens and a strip to look at.",
     "phase-code psf -o stack.npy --png strip.png"),
    ("Use a measured stack (K x h x w x 3), resampled in time to the window.",
     "phase-code GOPRO_Large_all -o sets/measured --psf-stack psfs.npy"),
    ("A conventional lens: clear pupil, no focus sweep.",
     "phase-code clip.mp4 -o sets/plain --mask none --psi0 0 --psi1 0"),
]
MAN_FILES = [
    ("SET/psf/stack.npy", "The PSF stack every sample of the set used, float32 (K, h, w, 3); each manifest line names it."),
    ("SET/psf/stack.png", "The same stack as a colour strip, one tile per instant."),
]


def _psf_mode(sources: Optional[List[Path]]) -> bool:
    return not sources or (len(sources) == 1 and str(sources[0]) == "psf" and not sources[0].exists())


@handle_errors
def command(
    sources: Optional[List[Path]] = typer.Argument(None, help="Video files, frame folders, dataset trees or still photos; or the word 'psf' to write only the PSF stack."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Sample-set folder (or, with 'psf', the .npy file of the stack)."),
    png: Optional[Path] = typer.Option(None, "--png", help="Also write the PSF stack as a PNG strip (one tile per instant) here."),
    psi0: float = typer.Option(1.0, "--psi0", help="Defocus psi at the first instant of the sweep (at the reference wavelength)."),
    psi1: float = typer.Option(10.0, "--psi1", help="Defocus psi at the last instant of the sweep."),
    mask: str = typer.Option("ring", "--mask", help="Phase mask: ring (default: 10 pi on 0.2..0.7 of the pupil at 455 nm; with the default sweep the streak colours run blue -> cyan -> green -> yellow -> red like the seed's measured stack), ring6pi (6 pi on 0.55..0.8, REFERENCE.md's example), none (clear pupil), or rings inner:outer:phase, comma-separated (phase in radians, 'pi' suffix allowed)."),
    aperture_radius: float = typer.Option(1.14, "--aperture-radius", help="Pupil radius R in mm."),
    ref_wavelength: float = typer.Option(455.0, "--ref-wavelength", help="Wavelength (nm) at which psi and the mask phases are given."),
    focus_distance: float = typer.Option(0.9, "--focus-distance", help="Focus distance in metres (for --object-distance)."),
    object_distance: Optional[float] = typer.Option(None, "--object-distance", help="Object distance in metres: adds (pi R^2/lambda)(1/z - 1/z_focus) to every instant's psi (default: at focus)."),
    focal_length: float = typer.Option(12.0, "--focal-length", help="Focal length in mm (sets the PSF scale on the sensor)."),
    pixel_pitch: float = typer.Option(2.0, "--pixel-pitch", help="Sensor pixel pitch in micrometres."),
    oversample: int = typer.Option(3, "--oversample", help="FFT samples per pixel side (odd) for the optics model."),
    psf_size: int = typer.Option(27, "--psf-size", help="PSF side in pixels (odd)."),
    spectrum_r: str = typer.Option("600,620,640", "--spectrum-r", help="Red channel spectrum: comma-separated wavelengths in nm, each optionally nm:weight."),
    spectrum_g: str = typer.Option("520,540,560", "--spectrum-g", help="Green channel spectrum: comma-separated wavelengths in nm, each optionally nm:weight."),
    spectrum_b: str = typer.Option("440,455,470", "--spectrum-b", help="Blue channel spectrum: comma-separated wavelengths in nm, each optionally nm:weight."),
    psf_stack: Optional[Path] = typer.Option(None, "--psf-stack", help="Use this stack (.npy/.mat, K x h x w x 3) instead of the optics model; resampled in time to the exposure."),
    psf_normalize: bool = typer.Option(False, "--psf-normalize/--no-psf-normalize", help="Scale every PSF of a --psf-stack to sum 1 (by default a measured stack's light loss, e.g. sums of 0.87-0.97, is kept; computed PSFs sum to 1 anyway)."),
    pad: str = typer.Option("reflect", "--pad", help="Border extension for the convolution: reflect or zeros."),
    frames: int = FramesOption,
    stride: Optional[int] = StrideOption,
    crf: str = CrfOption,
    interp: int = InterpOption,
    interp_method: str = InterpMethodOption,
    cut_threshold: float = CutOption,
    noise: str = NoiseOption,
    saturation: bool = SaturationOption,
    stills: bool = StillsOption,
    per_still: int = PerStillOption,
    trajectory_length: float = TrajLengthOption,
    trajectory_anisotropy: Optional[float] = TrajAnisoOption,
    trajectory_exposure: float = TrajExposureOption,
    bits: int = BitsOption,
    max_samples: Optional[int] = MaxSamplesOption,
    resize: Optional[str] = ResizeOption,
    crop: Optional[str] = CropOption,
    seed: int = SeedOption,
    shard: Optional[str] = ShardOption,
    device: str = DeviceOption,
    workers: Optional[int] = WorkersOption,
    png_level: int = PngLevelOption,
    json_out: bool = JsonOption,
    quiet: bool = QuietOption,
    debug: bool = DebugOption,
) -> None:
    """Make blurry/sharp pairs as a phase-coded camera sweeping focus during the exposure would see them.

    Each sharp frame of a window (N frames, or (N-1)M+1 with --interp M) is taken to linear light and convolved per colour channel with the PSF of the coded lens at its instant of the focus sweep (psi0 to psi1); the results are averaged and mapped back through the camera response. The PSF stack is computed once per run (Fourier optics with wavelength-correct sampling) or read with --psf-stack, and saved once as SET/psf/stack.npy (K x h x w x 3), which every sample's manifest line names.

    'phase-code psf -o stack.npy --png strip.png' writes only the stack (K = --frames instants) and a picture of it.
    """
    setup_logging(quiet)
    from blurtools.errors import UsageError
    from blurtools.io.atomic import atomic_write_bytes
    from blurtools.synth.coded_psf import (PhaseOptions, build_stack, channel_summary, parse_mask, parse_spectrum,
                                           stack_digest, stack_to_npy_bytes, strip_png_bytes)
    from blurtools.synth.phase_coding import CodedExposure
    from blurtools.synth.stills import StillMaker

    if pad not in ("reflect", "zeros"):
        raise UsageError(f"--pad {pad}: choose reflect or zeros")
    if psf_size < 1 or psf_size % 2 == 0:
        raise UsageError(f"--psf-size {psf_size}: must be a positive odd number")
    if oversample < 1 or oversample % 2 == 0:
        raise UsageError(f"--oversample {oversample}: must be a positive odd number")
    if psf_stack is not None and not psf_stack.is_file():
        from blurtools.errors import BlurtoolsError

        raise BlurtoolsError(f"{psf_stack}: no such PSF stack file")
    popts = PhaseOptions(psi0=psi0, psi1=psi1, mask=parse_mask(mask), aperture_radius_mm=aperture_radius,
                         ref_wavelength_nm=ref_wavelength, focus_m=focus_distance, object_distance_m=object_distance,
                         focal_length_mm=focal_length, pixel_pitch_um=pixel_pitch, oversample=oversample,
                         psf_size=psf_size, spectra=(parse_spectrum(spectrum_r, "r"), parse_spectrum(spectrum_g, "g"),
                                                     parse_spectrum(spectrum_b, "b")),
                         psf_stack=str(psf_stack) if psf_stack else None, normalize=psf_normalize)
    cfg = build_config(frames, stride, crf, interp, interp_method, cut_threshold, noise, saturation, seed, bits,
                       resize, crop, stills, per_still)
    control = build_control(shard, max_samples, device, workers, png_level)
    instants = (cfg.frames - 1) * cfg.interp + 1
    if _psf_mode(sources):
        if output is None and png is None:
            raise UsageError("phase-code psf: give -o STACK.npy and/or --png STRIP.png")
        stack = build_stack(popts, instants, control.device)
        if output is not None:
            atomic_write_bytes(output, stack_to_npy_bytes(stack))
        if png is not None:
            atomic_write_bytes(png, strip_png_bytes(stack))
        result = {"tool": COMMAND_NAME, "instants": instants, "size": list(stack.shape[-2:]),
                  "npy": str(output) if output else None, "png": str(png) if png else None,
                  "rms_radius_px_rgb": channel_summary(stack), "options": popts.record()}
        print(json.dumps(result, sort_keys=True) if json_out else
              f"{COMMAND_NAME}: PSF stack of {instants} instants, {stack.shape[-2]}x{stack.shape[-1]} px"
              + (f" -> {output}" if output else "") + (f", strip -> {png}" if png else ""), flush=True)
        return
    if output is None:
        raise UsageError("phase-code: -o SET is required (the sample-set folder to write)")
    stack = build_stack(popts, instants, control.device)
    coder = CodedExposure(stack, control.device, pad=pad)
    traj = trajectory_options(trajectory_length, trajectory_anisotropy, trajectory_exposure)
    stills_maker = StillMaker(cfg, traj, control.device)
    options = {**cfg.record(), "trajectory": stills_maker.record(), "sources": [str(s) for s in sources],
               "optics": popts.record(), "pad": pad, "instants": instants, "psf_sha256": stack_digest(stack)}
    shared = {"psf/stack.npy": stack_to_npy_bytes(stack), "psf/stack.png": strip_png_bytes(stack)}
    if png is not None:
        atomic_write_bytes(png, shared["psf/stack.png"])

    def render(exposure):
        exposure.extra["psf"] = "psf/stack.npy"
        return coder.render(exposure)

    run_synthesis(COMMAND_NAME, list(sources), output, cfg, control, options, render=render,
                  still_exposure=stills_maker.exposure_dense, shared_files=shared, quiet=quiet, as_json=json_out)


def main() -> None:
    run_standalone(command, COMMAND_NAME)
