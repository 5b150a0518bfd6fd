"""The inference requests of deblur and extract-video: which method, how it runs, and what a run records.

:class:`DeblurRequest` holds the knobs the two commands share (the method: shipped weights, a checkpoint,
classical or a known kernel; the refinement; windows, batch, precision; skipping, sharding, device);
:class:`ExtractRequest` is the same with the video's refinement, and :class:`VideoRequest` the video's own
output knobs. Each field's help is its flag's help. A request validates itself when made (the
device-dependent window and batch defaults are filled in then), loads its predictor, writes its own
provenance record and runs its files.

Example::

    req = DeblurRequest(device="cpu", tile=256)           # checked here (UsageError naming the flag)
    plan = plan_deblur_run(req, ["shots/"], Path("sharp/"))
    outcome = run_deblur(req, ["shots/"], Path("sharp/"), plan)
    print(summary_text("deblur", Path("sharp/"), outcome, as_json=False, noun="image(s)"))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Dict, List, Optional, Sequence, Tuple

from blurtools import __version__
from blurtools.errors import BlurtoolsError, UsageError
from blurtools.io.arrays import IMAGE_EXTENSIONS
from blurtools.request import option, parse_shard

if TYPE_CHECKING:
    from blurtools.infer.loading import Predictor
    from blurtools.infer.predict import InferOptions

# The pipelines (models, kernels, tiling) import torch, about 2 s: they are imported where a request is
# checked or run, so `deblur --help`, `extract-video --help` and `blurtools --help` start without them.

OnDone = Optional[Callable[[Any], None]]
_REFINE_DEFAULT = "Default: classical with blurtools' weights, none with an authors' published checkpoint."
OnWindow = Optional[Callable[[int, int], None]]


def check_tile(tile: int, overlap: int) -> int:
    """``tile`` when it and ``overlap`` are valid window settings, else a UsageError."""
    if tile < 0:
        raise UsageError(f"--tile {tile}: must be >= 0 (0 = no tiling)")
    if 0 < tile < 32:
        raise UsageError(f"--tile {tile}: windows need at least 32 pixels")
    if overlap < 0 or (tile > 0 and overlap >= tile // 2):
        raise UsageError(f"--overlap {overlap}: must be >= 0 and less than half the tile ({tile})")
    return tile


def _paths(value: Any) -> Any:
    """A path or list of paths as text for the record (None stays None)."""
    if not value:
        return None
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)


@dataclass
class InferRequest:
    """How deblur and extract-video run their model (the fields both take; see the two requests below)."""

    kind: ClassVar[str] = "image"
    tool: ClassVar[str] = "deblur"

    model: str = option("default", help="default (the weights shipped with blurtools) or classical (no weights: blind "
                        "motion-kernel estimation and deconvolution); with --weights, optionally the architecture the "
                        "file holds (deblurgan, jin2018...), which is otherwise detected from its contents.")
    weights: Optional[Path] = option(None, help="A checkpoint written by `blurtools train` (weights.pt, best.pt or "
                                     "last.pt), or an authors' published file as distributed (NAFNet-GoPro-width64.pth, "
                                     "TwoHeads.pkl, ...; recognised from its contents), to use instead of the shipped "
                                     "weights.")
    kernel: Optional[Path] = option(None, help="Blur kernel image (gray PNG, any size): non-blind classical "
                                    "deconvolution with it.")
    kernel_size: int = option(63, help="Classical: the longest blur, in pixels, the kernel estimate may have.")
    kernel_method: str = option("multiscale", help="Classical: multiscale (a general kernel, coarse to fine), "
                                "linear (straight motion: length and angle) or auto.")
    deconv: str = option("hqs", help="Classical: hqs (sparse gradients; best), wiener (fastest) or rl (Richardson-Lucy).")
    crf: str = option("gamma:2.2", help="Classical: the camera response undone before the kernel is estimated and the "
                      "image deconvolved (blur happens in linear light): gamma:G, srgb, or linear (work on the values "
                      "as stored).")
    refine: Optional[str] = option(None, help="Networks: classical (blend in the classical deconvolution where the "
                                   "network or the deconvolution finds evidence of blur; see MODEL_CARD.md) or none (the "
                                   "network's result alone). " + _REFINE_DEFAULT)
    tile: Optional[int] = option(None, help="Largest window side in pixels for tiled inference (bounded memory); 0 = "
                                 "whole images (default: 512 on the CPU, 1024 on a GPU; whole images for networks whose "
                                 "every pixel depends on the whole input, such as instance-norm ones).")
    overlap: int = option(32, help="Smallest overlap of neighbouring windows, blended without seams.")
    batch: Optional[int] = option(None, help="Windows, or same-size images, per model call (default: 1 on the CPU, 4 on "
                                  "a GPU).")
    amp: bool = option(False, help="bfloat16 autocast on CUDA (faster; results differ slightly).")
    skip_existing: bool = option(False, help="Leave outputs that exist already (resume an interrupted run).")
    keep_going: bool = option(False, help="Skip inputs that fail (listed on stderr and in meta.json) instead of "
                              "stopping; exit status 1 at the end.")
    shard: Optional[str] = option(None, shared="shard")
    device: str = option("auto", shared="device")

    def __post_init__(self) -> None:
        from blurtools.ops.device import resolve_device

        self._device = resolve_device(self.device)
        self._batch = (4 if self._device.type == "cuda" else 1) if self.batch is None else self.batch
        if self.tile is not None:
            check_tile(self.tile, self.overlap)
        if self._batch < 1:
            raise UsageError(f"--batch {self._batch}: must be >= 1")
        self._shard = parse_shard(self.shard)
        self._tile: Optional[int] = self.tile  # without --tile: the predictor's own default, once it is loaded

    @property
    def shard_part(self) -> Optional[Tuple[int, int]]:
        """(I, N) of --shard I/N, or None."""
        return self._shard

    def refinement(self) -> Optional[str]:
        """The refinement asked for: none for the classical method or a known kernel (networks only); None = the
        loaded model's default."""
        return self.refine if self.model != "classical" and self.kernel is None else "none"

    def predictor(self) -> Predictor:
        """The model (or classical method) this request runs, loaded on its device; fills in the window side
        (``--tile``) the predictor prefers when none was given."""
        from blurtools.infer.classical import read_kernel
        from blurtools.infer.loading import load_predictor

        k = read_kernel(self.kernel) if self.kernel is not None else None
        predictor = load_predictor(self.kind, model=self.model, weights=self.weights or None, device=self._device,
                                   kernel=k, kernel_path=str(self.kernel) if self.kernel else None,
                                   method=self.kernel_method, max_size=self.kernel_size, deconv=self.deconv,
                                   amp=self.amp, crf=None if self.crf == "linear" else self.crf,
                                   refine=self.refinement())
        self._tile = check_tile(predictor.default_tile() if self.tile is None else self.tile, self.overlap)
        return predictor

    def options(self, inputs: Sequence[str], output: Path, predictor: Predictor) -> Dict[str, Any]:
        """The options every output records (resolved: the device, window and batch actually used)."""
        return {"inputs": [str(i) for i in inputs], "output": str(output), "model": predictor.provenance["model"],
                "weights": _paths(self.weights), "kernel": str(self.kernel) if self.kernel else None,
                "tile": self._tile, "overlap": self.overlap, "batch": self._batch, "device": str(self._device),
                "amp": self.amp, "shard": self.shard,
                "refine": "classical" if "refine" in predictor.provenance else "none", "crf": self.crf}

    def record(self, options: Dict[str, Any], predictor: Predictor) -> Dict[str, Any]:
        """The provenance record of every output: tool, version, options and the model's own record."""
        return {"tool": f"blurtools {self.tool}", "version": __version__, "options": options, "model": predictor.provenance}

    def infer_options(self) -> InferOptions:
        from blurtools.infer.predict import InferOptions

        return InferOptions(tile=self._tile, overlap=self.overlap, batch=self._batch, skip_existing=self.skip_existing,
                            keep_going=self.keep_going)


@dataclass
class DeblurRequest(InferRequest):
    """The request of deblur: the inference knobs, and where to write a kernel-basis network's estimates."""

    save_kernels: Optional[Path] = option(None, help="Kernel-basis networks (the released TwoHeads.pkl, kernel-basis "
                                          "checkpoints): write each input's basis kernels (STEM.kernels.npy, K x k x k), "
                                          "mixing maps (STEM.mixing.npy, K x H x W), their record (STEM.kernels.json) "
                                          "and a picture (STEM.kernels.png) into this folder.")

    def options(self, inputs: Sequence[str], output: Path, predictor: Predictor) -> Dict[str, Any]:
        return {**super().options(inputs, output, predictor),
                "save_kernels": str(self.save_kernels) if self.save_kernels else None}


@dataclass
class ExtractRequest(InferRequest):
    """The inference knobs of extract-video: those of deblur, with the video's weights (a checkpoint, or the
    files of a released cascade) and refinement."""

    kind: ClassVar[str] = "video"
    tool: ClassVar[str] = "extract-video"

    weights: Optional[List[Path]] = option(None, help="A checkpoint written by `blurtools train`, or an authors' "
                                           "published checkpoint (detected from its contents); Jin et al.'s released "
                                           "cascade as the folder holding its four files, or the four files (--weights A "
                                           "--weights B ...).")
    refine: Optional[str] = option(None, help="Networks: classical (with the shipped weights: the default deblur, network "
                                   "and classical, moved along the estimated blur path, each frame as sharp as deblur's "
                                   "output; with a checkpoint of yours: its frames sharpened by that deblur; a still video "
                                   "where the deblur finds no evidence of blur) or none (the video network alone). "
                                   + _REFINE_DEFAULT)


@dataclass
class VideoRequest:
    """What extract-video makes of each input: frame count, rate, looping, a contact sheet, the format."""

    frames: Optional[int] = option(None, short="-n", help="Frames to make (default: the model's own count, 7 for "
                                   "classical); other counts go through frame multiplication.")
    fps: float = option(10.0, help="Frames per second of GIF, MP4 and WebP outputs.")
    loop: Optional[int] = option(None, help="Times the animation plays, 0 = forever (default: forever for GIF and WebP; "
                                 "MP4 has no loop flag: N writes the frames N times).")
    boomerang: bool = option(False, help="Play forward then back (hides which way time runs, which one blurry image "
                             "cannot tell).")
    sheet: Optional[Path] = option(None, help="Also write a contact sheet: each blurry input beside its frames (PNG).")
    fmt: Optional[str] = option(None, flag="--format", help="gif, mp4, webp or png (a frame folder) for each input in "
                                "the folder -o (default: from -o's extension; gif for many inputs).")

    def __post_init__(self) -> None:
        if self.frames is not None and self.frames < 1:
            raise UsageError(f"--frames {self.frames}: must be >= 1")
        if self.fps <= 0:
            raise UsageError(f"--fps {self.fps}: must be > 0")
        if self.loop is not None and self.loop < 0:
            raise UsageError(f"--loop {self.loop}: must be >= 0")
        if self.sheet is not None:
            if self.sheet.suffix.lower() not in IMAGE_EXTENSIONS:
                raise UsageError(f"--sheet {self.sheet}: give an image file name, e.g. sheet.png")
            if self.sheet.is_dir():
                raise UsageError(f"--sheet {self.sheet}: is an existing folder; give an image file name")

    def options(self) -> Dict[str, Any]:
        return {"format": self.fmt, "frames": self.frames, "fps": self.fps, "loop": self.loop,
                "boomerang": self.boomerang, "sheet": str(self.sheet) if self.sheet else None}


@dataclass
class Plan:
    """The jobs of this shard and whether -o is a folder of outputs."""

    jobs: List[Any]
    folder_mode: bool


def plan_deblur_run(request: InferRequest, inputs: Sequence[str], output: "str | Path") -> Plan:
    """The plan for ``-o output`` as typed (a trailing / asks for a folder; see infer/output_names.py)."""
    from blurtools.infer.inputs import plan_deblur, shard_jobs

    jobs, folder_mode = plan_deblur(inputs, output)
    return Plan(shard_jobs(jobs, request.shard_part), folder_mode)


def plan_extract_run(request: ExtractRequest, video: VideoRequest, inputs: Sequence[str], output: "str | Path") -> Plan:
    """The plan for ``-o output`` as typed (a trailing / asks for a folder; see infer/output_names.py)."""
    from blurtools.infer.extract import plan_extract
    from blurtools.infer.inputs import shard_jobs

    jobs, folder_mode = plan_extract(inputs, output, video.fmt.lower() if video.fmt else None)
    return Plan(shard_jobs(jobs, request.shard_part), folder_mode)


def _meta_extra(outcome: Any) -> Dict[str, Any]:
    return {"skipped": outcome.skipped, "failed": [{"input": s, "error": m} for s, m in outcome.failed]}


def kernel_writer(predictor: Predictor, jobs: List[Any], output_folder: Optional[Path], folder: Optional[Path],
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


def run_deblur(request: DeblurRequest, inputs: Sequence[str], output: "str | Path", plan: Plan,
               on_done: OnDone = None, on_window: OnWindow = None) -> Any:
    """Deblur the plan's jobs; a folder output also gets its meta.json. Returns the outcome (items, skipped, failed)."""
    from blurtools.infer.deblur import deblur_files
    from blurtools.infer.outputs import write_meta

    output = Path(output)
    predictor = request.predictor()
    options = request.options(inputs, output, predictor)
    record = request.record(options, predictor)
    on_images = kernel_writer(predictor, plan.jobs, output if plan.folder_mode else None, request.save_kernels, record)
    outcome = deblur_files(predictor, plan.jobs, request.infer_options(), record, on_done=on_done, on_window=on_window,
                           on_images=on_images)
    if plan.folder_mode:
        write_meta(output, request.tool, options, predictor.provenance, outcome.items, request.shard_part,
                   extra=_meta_extra(outcome))
    return outcome


def run_extract(request: ExtractRequest, video: VideoRequest, inputs: Sequence[str], output: "str | Path",
                plan: Plan, on_done: OnDone = None, on_window: OnWindow = None) -> Any:
    """Extract the plan's videos (and the contact sheet); output folders get their meta.json. Returns the outcome."""
    from blurtools.infer.extract import ExtractOptions, extract_files, write_sheet
    from blurtools.infer.outputs import write_meta

    output = Path(output)
    predictor = request.predictor()
    base = request.options(inputs, output, predictor)
    options = {**{k: base[k] for k in ("inputs", "output")}, **video.options(), **base}
    record = request.record(options, predictor)
    infer = request.infer_options()
    opts = ExtractOptions(**vars(infer), frames=video.frames, fps=video.fps, loop=video.loop,
                          boomerang=video.boomerang, sheet_height=192 if video.sheet else 0)
    outcome, thumbs = extract_files(predictor, plan.jobs, opts, record, on_done=on_done, on_window=on_window)
    if video.sheet is not None and thumbs:
        write_sheet(video.sheet, thumbs, record)
    jobs = plan.jobs
    meta_dir = output if plan.folder_mode else (output if jobs and jobs[0].fmt == "png" and output.is_dir() else None)
    if meta_dir is not None:
        write_meta(meta_dir, request.tool, options, predictor.provenance, outcome.items, request.shard_part,
                   extra=_meta_extra(outcome))
    return outcome


def summary_text(tool: str, output: Path, outcome: Any, as_json: bool, noun: str) -> str:
    """The run's result line: written, skipped, failed (JSON with ``as_json``)."""
    doc = {"tool": f"blurtools {tool}", "output": str(output), "written": len(outcome.items),
           "skipped": outcome.skipped, "failed": [{"input": s, "error": m} for s, m in outcome.failed]}
    if as_json:
        return json.dumps(doc, sort_keys=True)
    return (f"{tool}: wrote {len(outcome.items)} {noun} to {output} ({outcome.skipped} skipped, "
            f"{len(outcome.failed)} failed)")


def check_failures(outcome: Any, total: int) -> None:
    """A failed input (with --keep-going) makes the run fail at the end: BlurtoolsError naming the first."""
    if outcome.failed:
        raise BlurtoolsError(f"{len(outcome.failed)} of {total} input(s) failed; first: {outcome.failed[0][1]}")
