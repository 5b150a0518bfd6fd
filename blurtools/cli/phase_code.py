"""``phase-code``: simulate a camera whose phase-coded lens sweeps focus during the exposure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from blurtools.cli.common import handle_errors, progress, run_standalone, setup_logging, with_requests
from blurtools.errors import UsageError
from blurtools.synth.phase_request import PhaseRequest, run_phase_code, write_psf_stack
from blurtools.synth.request import SynthRequest, summary_text

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
@with_requests({"phase": PhaseRequest, "synth": SynthRequest}, shared=("json_out", "quiet", "debug"))
def command(
    sources: Optional[List[Path]] = typer.Argument(None, help="Video files, frame folders, dataset trees or still photos; or the word 'psf' to write only the PSF stack."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Sample-set folder (or, with 'psf', the .npy file of the stack)."),
    png: Optional[Path] = typer.Option(None, "--png", help="Also write the PSF stack as a PNG strip (one tile per instant) here."),
    *, phase: PhaseRequest, synth: SynthRequest, json_out: bool, quiet: bool, debug: bool,
) -> None:
    """Make blurry/sharp pairs as a phase-coded camera sweeping focus during the exposure would see them.

    Each sharp frame of a window (N frames, or (N-1)M+1 with --interp M) is taken to linear light and convolved per colour channel with the PSF of the coded lens at its instant of the focus sweep (psi0 to psi1); the results are averaged and mapped back through the camera response. The PSF stack is computed once per run (Fourier optics with wavelength-correct sampling) or read with --psf-stack, and saved once as SET/psf/stack.npy (K x h x w x 3), which every sample's manifest line names.

    'phase-code psf -o stack.npy --png strip.png' writes only the stack (K = --frames instants) and a picture of it.
    """
    setup_logging(quiet)
    if _psf_mode(sources):
        result = write_psf_stack(phase, synth, output, png)
        h, w = result["size"]
        print(json.dumps(result, sort_keys=True) if json_out else
              f"{COMMAND_NAME}: PSF stack of {result['instants']} instants, {h}x{w} px"
              + (f" -> {output}" if output else "") + (f", strip -> {png}" if png else ""), flush=True)
        return
    if output is None:
        raise UsageError("phase-code: -o SET is required (the sample-set folder to write)")
    with progress(None, COMMAND_NAME, quiet) as bar:
        stats = run_phase_code(list(sources), output, phase, synth, png=png, on_window=lambda s: bar.advance())
    print(summary_text(COMMAND_NAME, output, stats, json_out), flush=True)


def main() -> None:
    run_standalone(command, COMMAND_NAME)
