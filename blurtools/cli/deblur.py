"""``blurtools deblur``: sharp images from motion-blurred ones (shipped weights, any checkpoint, or classical)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from blurtools.cli.common import (DebugOption, DeviceOption, QuietOption, ShardOption, handle_errors, parse_shard,
                                  progress, setup_logging)

COMMAND_NAME = "deblur"

# Options shared with extract-video (imported there).
OutputOption = typer.Option(..., "--output", "-o", help="Output file (one input) or folder (mirrors the inputs' trees).")
ModelOption = typer.Option("default", "--model", help="default (the weights shipped with blurtools) or classical (no weights: blind motion-kernel estimation and deconvolution); with --weights, optionally the architecture the file holds (deblurgan, jin2018...), which is otherwise detected from its contents.")
WeightsOption = typer.Option(None, "--weights", help="A checkpoint written by `blurtools train` (weights.pt, best.pt or last.pt), or an authors' published file as distributed (NAFNet-GoPro-width64.pth, TwoHeads.pkl, ...; recognised from its contents), to use instead of the shipped weights.")
KernelOption = typer.Option(None, "--kernel", help="Blur kernel image (gray PNG, any size): non-blind classical deconvolution with it.")
KernelSizeOption = typer.Option(63, "--kernel-size", help="Classical: the longest blur, in pixels, the kernel estimate may have.")
KernelMethodOption = typer.Option("multiscale", "--kernel-method", help="Classical: multiscale (a general kernel, coarse to fine; the default), linear (straight motion: length and angle) or auto.")
CrfOption = typer.Option("gamma:2.2", "--crf", help="Classical: the camera response undone before the kernel is estimated and the image deconvolved (blur happens in linear light): gamma:G, srgb, or linear (work on the values as stored).")
DeconvOption = typer.Option("hqs", "--deconv", help="Classical: hqs (sparse gradients; best), wiener (fastest) or rl (Richardson-Lucy).")
TileOption = typer.Option(None, "--tile", help="Largest window side in pixels for tiled inference (bounded memory); 0 = whole images (default: 512 on the CPU, 1024 on a GPU; whole images for networks whose every pixel depends on the whole input, such as instance-norm ones).")
OverlapOption = typer.Option(32, "--overlap", help="Smallest overlap of neighbouring windows, blended without seams.")
BatchOption = typer.Option(None, "--batch", help="Windows, or same-size images, per model call (default: 1 on the CPU, 4 on a GPU).")
AmpOption = typer.Option(False, "--amp", help="bfloat16 autocast on CUDA (faster; results differ slightly).")
SkipOption = typer.Option(False, "--skip-existing", help="Leave outputs that exist already (resume an interrupted run).")
KeepGoingOption = typer.Option(False, "--keep-going", help="Skip inputs that fail (listed on stderr and in meta.json) instead of stopping; exit status 1 at the end.")
JsonOption = typer.Option(False, "--json", help="Print the run summary as JSON.")
RefineOption = typer.Option(None, "--refine", help="Networks: classical (blend in the classical deconvolution where the network or the deconvolution finds evidence of blur; see MODEL_CARD.md) or none (the network's result alone). Default: classical with blurtools' weights, none with an authors' published checkpoint.")
SaveKernelsOption = typer.Option(None, "--save-kernels", help="Kernel-basis networks (the released TwoHeads.pkl, kernel-basis checkpoints): write each input's basis kernels (STEM.kernels.npy, K x k x k), mixing maps (STEM.mixing.npy, K x H x W), their record (STEM.kernels.json) and a picture (STEM.kernels.png) into this folder.")


def resolve_runtime(device: str, tile: Optional[int], overlap: int, batch: Optional[int]) -> Any:
    """(torch device, tile, overlap, batch) with the device-dependent defaults filled in and checked."""
    from blurtools.errors import UsageError
    from blurtools.ops.device import resolve_device

    dev = resolve_device(device)
    gpu = dev.type == "cuda"
    batch = (4 if gpu else 1) if batch is None else batch
    if tile is not None:
        check_tile(tile, overlap)
    if batch < 1:
        raise UsageError(f"--batch {batch}: must be >= 1")
    return dev, tile, overlap, batch


def check_tile(tile: int, overlap: int) -> int:
    """``tile`` when it and ``overlap`` are valid window settings, else a UsageError."""
    from blurtools.errors import UsageError

    if tile < 0:
        raise UsageError(f"--tile {tile}: must be >= 0 (0 = no tiling)")
    if 0 < tile < 32:
        raise UsageError(f"--tile {tile}: windows need at least 32 pixels")
    if overlap < 0 or (tile > 0 and overlap >= tile // 2):
        raise UsageError(f"--overlap {overlap}: must be >= 0 and less than half the tile ({tile})")
    return tile


def build_predictor(kind: str, model: str, weights: Any, kernel: Optional[Path], kernel_size: int,
                    kernel_method: str, deconv: str, dev: Any, amp: bool, crf: str = "gamma:2.2",
                    refine: Optional[str] = "none") -> Any:
    from blurtools.infer.loading import load_predictor

    k = None
    if kernel is not None:
        from blurtools.infer.classical import read_kernel

        k = read_kernel(kernel)
    return load_predictor(kind, model=model, weights=weights, device=dev, kernel=k,
                          kernel_path=str(kernel) if kernel else None, method=kernel_method, max_size=kernel_size,
                          deconv=deconv, amp=amp, crf=None if crf == "linear" else crf, refine=refine)


def finish(tool: str, output: Path, outcome: Any, total: int, as_json: bool, noun: str) -> None:
    """Print the summary on stdout; a failed input (with --keep-going) makes the run fail at the end."""
    from blurtools.errors import BlurtoolsError

    doc = {"tool": f"blurtools {tool}", "output": str(output), "written": len(outcome.items),
           "skipped": outcome.skipped, "failed": [{"input": s, "error": m} for s, m in outcome.failed]}
    if as_json:
        print(json.dumps(doc, sort_keys=True), flush=True)
    else:
        print(f"{tool}: wrote {len(outcome.items)} {noun} to {output} ({outcome.skipped} skipped, "
              f"{len(outcome.failed)} failed)", flush=True)
    if outcome.failed:
        raise BlurtoolsError(f"{len(outcome.failed)} of {total} input(s) failed; first: {outcome.failed[0][1]}")


def kernel_writer(predictor: Any, jobs: List[Any], output_folder: Optional[Path], folder: Optional[Path],
                  record: Dict[str, Any]) -> Any:
    """``deblur_files``'s ``on_images`` hook writing each input's kernel estimate into ``folder`` (None: no hook).

    Names mirror the outputs: ``folder/<output path relative to -o, without extension>`` in folder mode,
    the input's stem for one file.
    """
    if folder is None:
        return None
    from blurtools.infer.kernel_estimates import check_kernel_model, write_estimates

    check_kernel_model(predictor)
    stems = {job.dst: (job.dst.relative_to(output_folder).with_suffix("").as_posix() if output_folder is not None
                       else job.src.stem) for job in jobs}
    return lambda group, images: write_estimates(predictor, images, [stems[j.dst] for j in group], folder, record)


@handle_errors
def command(
    inputs: List[str] = typer.Argument(..., help="Blurry images: files, folders (searched recursively) or quoted globs such as 'shots/**/*.jpg'."),
    output: Path = OutputOption,
    model: str = ModelOption,
    weights: Optional[Path] = WeightsOption,
    kernel: Optional[Path] = KernelOption,
    kernel_size: int = KernelSizeOption,
    kernel_method: str = KernelMethodOption,
    deconv: str = DeconvOption,
    crf: str = CrfOption,
    refine: Optional[str] = RefineOption,
    save_kernels: Optional[Path] = SaveKernelsOption,
    tile: Optional[int] = TileOption,
    overlap: int = OverlapOption,
    batch: Optional[int] = BatchOption,
    amp: bool = AmpOption,
    skip_existing: bool = SkipOption,
    keep_going: bool = KeepGoingOption,
    shard: Optional[str] = ShardOption,
    device: str = DeviceOption,
    json_out: bool = JsonOption,
    quiet: bool = QuietOption,
    debug: bool = DebugOption,
) -> None:
    """Deblur images: one file to -o FILE, or many (folders, globs) into the folder -o OUT.

    Any size runs in bounded memory through overlapping windows blended without seams (--tile). 16-bit inputs give 16-bit PNGs, gray stays gray. Folder outputs are PNGs mirroring the input tree, with a meta.json that records the tool, version, options and model; every PNG also carries that record in its text chunks. Without --weights the shipped default weights are used, with the classical deconvolution blended in where the network or the deconvolution finds evidence of blur (--refine); --model classical needs no weights, and --kernel K.png deconvolves with a known kernel.
    """
    from blurtools import __version__
    from blurtools.infer.deblur import InferOptions, deblur_files, plan_deblur, shard_jobs, write_meta

    setup_logging(quiet)
    dev, tile, overlap, batch = resolve_runtime(device, tile, overlap, batch)
    part = parse_shard(shard)
    jobs, folder_mode = plan_deblur(inputs, output)
    jobs = shard_jobs(jobs, part)
    predictor = build_predictor("image", model, weights, kernel, kernel_size, kernel_method, deconv, dev, amp, crf,
                                refine if model != "classical" and kernel is None else "none")
    tile = check_tile(predictor.default_tile() if tile is None else tile, overlap)
    options: Dict[str, Any] = {"inputs": [str(i) for i in inputs], "output": str(output), "model": predictor.provenance["model"],
                               "weights": str(weights) if weights else None, "kernel": str(kernel) if kernel else None,
                               "tile": tile, "overlap": overlap, "batch": batch, "device": str(dev), "amp": amp,
                               "shard": shard, "refine": "classical" if "refine" in predictor.provenance else "none", "crf": crf,
                               "save_kernels": str(save_kernels) if save_kernels else None}
    record = {"tool": "blurtools deblur", "version": __version__, "options": options, "model": predictor.provenance}
    opts = InferOptions(tile=tile, overlap=overlap, batch=batch, skip_existing=skip_existing, keep_going=keep_going)
    on_images = kernel_writer(predictor, jobs, output if folder_mode else None, save_kernels, record)
    single = len(jobs) == 1          # one image: the bar counts its windows instead
    with progress(None if single else len(jobs), "deblur", quiet) as bar:
        outcome = deblur_files(predictor, jobs, opts, record,
                                on_done=None if single else (lambda job: bar.advance()),
                                on_window=(lambda done, total: bar.update(total=total, completed=done)) if single else None,
                                on_images=on_images)
    if folder_mode:
        write_meta(output, "deblur", options, predictor.provenance, outcome.items, part,
                   extra={"skipped": outcome.skipped, "failed": [{"input": s, "error": m} for s, m in outcome.failed]})
    finish("deblur", output, outcome, len(jobs), json_out, "image(s)")


MAN_EXAMPLES = [
    ("Deblur one photo with the shipped weights.", "blurtools deblur photo.jpg -o sharp.png"),
    ("A folder tree of photos on the GPU, into a mirrored tree of PNGs.", "blurtools deblur shots/ -o sharp/ --device cuda"),
    ("A checkpoint from `blurtools train`, big windows, split over two machines.",
     "blurtools deblur 'raw/**/*.png' -o out/ --weights runs/dm/weights.pt --tile 1024 --shard 0/2"),
    ("No weights: blind estimation of a general kernel and deconvolution.",
     "blurtools deblur blurry.png -o sharp.png --model classical"),
    ("Non-blind deconvolution with a measured kernel.", "blurtools deblur blurry.png -o sharp.png --kernel psf.png"),
    ("NAFNet as its authors publish it (the network alone), 16-bit in and out.",
     "blurtools deblur photo16.png -o sharp16.png --weights NAFNet-GoPro-width64.pth"),
    ("Carbajal et al.'s kernel basis and their Richardson-Lucy restoration, with the kernels written out.",
     "blurtools deblur shots/ -o sharp/ --weights TwoHeads.pkl --save-kernels kernels/"),
]
MAN_FILES = [
    ("blurtools/weights/deblur.pt", "The shipped default weights (see blurtools/weights/MODEL_CARD.md)."),
    ("OUT/meta.json", "Tool, version, options, model and the list of inputs and outputs (meta.shard-I-of-N.json for a shard)."),
]
