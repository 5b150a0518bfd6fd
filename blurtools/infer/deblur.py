"""The deblurring pipeline: inputs (files, folders, globs) to outputs, through a predictor and tiling.

* :func:`expand_inputs` turns what the user typed into image files, each with the relative path its
  output takes (a folder's tree is mirrored; a glob is mirrored below its first wildcard).
* :func:`plan_deblur` pairs every input with its output: ``-o file.png`` for one input, else a folder.
* :func:`deblur_image` deblurs one image tensor (gray in, gray out), tiled.
* :func:`deblur_files` runs the whole job list: reads ahead on a thread, groups same-size images into
  one batch, writes on a thread, records provenance (PNG text chunks and the folder's ``meta.json``).

Provenance: every PNG written carries two tEXt chunks, ``Software`` (``blurtools <version> deblur``) and
``blurtools`` (JSON: tool, version, source, options, model); an output folder gets ``meta.json``
(``meta.shard-I-of-N.json`` for a shard) with the same record and the list of inputs and outputs.
Other formats (JPEG, TIFF...) carry no text; the folder's meta.json covers them.
"""

from __future__ import annotations

import glob
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePath
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from blurtools import __version__
from blurtools.errors import BlurtoolsError, UsageError
from blurtools.infer.loading import MIN_WINDOW, Predictor
from blurtools.infer.tiling import run_tiled
from blurtools.io.images import IMAGE_EXTENSIONS, array_to_tensor, is_image_path, read_array, tensor_to_array

log = logging.getLogger(__name__)

__all__ = ["Job", "InferOptions", "expand_inputs", "plan_deblur", "shard_jobs", "deblur_image", "deblur_with_evidence",
           "deblur_files",
           "run_predictor", "read_input", "encode_png", "write_output_image", "write_meta", "read_ahead"]


@dataclass(frozen=True)
class Job:
    """One input file and where its result goes."""

    src: Path
    dst: Path


@dataclass
class InferOptions:
    """How to run: window size and overlap (tile 0 = whole images), windows or images per model call,
    and what to do with outputs that exist already or inputs that fail."""

    tile: int = 512
    overlap: int = 32
    batch: int = 1
    skip_existing: bool = False
    keep_going: bool = False


# ------------------------------------------------------------------------------------------- inputs

def _visible(rel: PurePath) -> bool:
    return not any(part.startswith(".") for part in rel.parts)


def expand_inputs(inputs: Sequence["str | Path"], exclude: Optional[Path] = None) -> List[Tuple[Path, PurePath]]:
    """Image files named by ``inputs``, each with the relative path its output mirrors.

    A file stands for itself (relative path: its name); a folder for every image below it (hidden
    files and folders skipped, natural order; relative path inside the folder); a pattern with ``*``,
    ``?`` or ``[`` (``**`` recurses) for the files it matches (relative to the folder before the first
    wildcard). Files under ``exclude`` (the output folder) are left out.

    Raises:
        BlurtoolsError: a name that does not exist, a folder without images, a pattern matching nothing.
    """
    from blurtools.io.video import natural_key

    ex = exclude.resolve() if exclude is not None else None

    def keep(p: Path) -> bool:
        return ex is None or not p.resolve().is_relative_to(ex)

    out: List[Tuple[Path, PurePath]] = []
    for spec in inputs:
        p = Path(spec)
        if p.is_dir():
            files = [f for f in p.rglob("*") if f.is_file() and is_image_path(f) and _visible(f.relative_to(p)) and keep(f)]
            if not files:
                raise BlurtoolsError(f"{p}: no images in this folder ({', '.join(IMAGE_EXTENSIONS)})")
            files.sort(key=lambda f: [natural_key(part) for part in f.relative_to(p).parts])
            out += [(f, f.relative_to(p)) for f in files]
        elif p.exists():
            out.append((p, PurePath(p.name)))
        elif glob.has_magic(str(spec)):
            parts = Path(spec).parts
            first = next(i for i, q in enumerate(parts) if glob.has_magic(q))
            base = Path(*parts[:first]) if first else Path(".")
            files = sorted((Path(m) for m in glob.glob(str(spec), recursive=True)), key=lambda f: natural_key(str(f)))
            files = [f for f in files if f.is_file() and keep(f)]
            if not files:
                raise BlurtoolsError(f"{spec}: no file matches")
            out += [(f, f.relative_to(base)) for f in files]
        else:
            raise BlurtoolsError(f"{spec}: no such file or folder")
    return out


def plan_deblur(inputs: Sequence["str | Path"], output: Path) -> Tuple[List[Job], bool]:
    """Pair inputs with outputs. Returns ``(jobs, folder_mode)``.

    One input file and ``-o`` with an image extension: that file (its extension picks the format).
    Otherwise ``-o`` is a folder and each output is ``OUT/<relative path>.png`` (PNG: lossless, 16-bit).

    Raises:
        UsageError: several inputs into one file, an image-named ``-o`` that is an existing folder, two
            inputs that would write the same output.
    """
    output = Path(output)
    single_file = output.suffix.lower() in IMAGE_EXTENSIONS
    if single_file and output.is_dir():
        raise UsageError(f"-o {output}: is an existing folder, but its name asks for one image file; give a file "
                         "path, or a folder name without an image extension")
    if not single_file and output.exists() and not output.is_dir():
        raise UsageError(f"-o {output}: exists and is not a folder; outputs go into a folder unless -o names an image file")
    items = expand_inputs(inputs, exclude=None if single_file else output)
    if not items:
        raise BlurtoolsError("no input images")
    if single_file:
        if len(items) > 1:
            raise UsageError(f"-o {output}: {len(items)} inputs need an output folder, not one file")
        return [Job(items[0][0], output)], False
    jobs, seen = [], {}
    for src, rel in items:
        dst = output / rel.with_suffix(".png")
        if dst in seen:
            raise UsageError(f"{seen[dst]} and {src} would both write {dst}; process them separately")
        seen[dst] = src
        jobs.append(Job(src, dst))
    return jobs, True


def shard_jobs(jobs: Sequence[Any], shard: Optional[Tuple[int, int]]) -> List[Any]:
    """Every N-th job starting at I (``shard = (I, N)``), so shards get similar mixes of sizes."""
    if shard is None:
        return list(jobs)
    i, n = shard
    return [j for k, j in enumerate(jobs) if k % n == i]


# ------------------------------------------------------------------------------------------ outputs

def encode_png(array: np.ndarray, text: Optional[Dict[str, str]] = None) -> bytes:
    """PNG bytes of a uint8 or uint16 (H, W) / (H, W, 3) array, with tEXt chunks ``text`` after IHDR."""
    from blurtools.io.png16 import encode_png as _encode

    return _encode(array, compress_level=6, text=text)


def provenance_text(tool: str, record: Dict[str, Any]) -> Dict[str, str]:
    """The PNG text chunks of an output: Software and the JSON record (ASCII)."""
    return {"Software": f"blurtools {__version__} {tool}", "blurtools": json.dumps(record, sort_keys=True, default=str)}


def write_output_image(path: Path, image: torch.Tensor, bits: int, text: Optional[Dict[str, str]] = None) -> None:
    """Write float (C, H, W) in [0, 1] atomically: PNG with provenance text, other extensions via imageio.

    16 bits only fit PNG; other formats are written with 8 (a warning says so).
    """
    from blurtools.io.atomic import atomic_write_bytes
    from blurtools.io.images import write_image

    if path.suffix.lower() == ".png":
        atomic_write_bytes(path, encode_png(tensor_to_array(image, bits), text))
        return
    if bits == 16:
        log.warning("%s: 16-bit input written with 8 bits (only .png holds 16)", path)
    write_image(path, image, bits=8)


def write_meta(folder: Path, tool: str, options: Dict[str, Any], model: Dict[str, Any], items: List[Dict[str, Any]],
               shard: Optional[Tuple[int, int]] = None, extra: Optional[Dict[str, Any]] = None) -> Path:
    """Write the output folder's ``meta.json`` (``meta.shard-I-of-N.json`` for a shard), atomically."""
    from blurtools.io.atomic import atomic_write_text

    name = "meta.json" if shard is None else f"meta.shard-{shard[0]}-of-{shard[1]}.json"
    doc = {"format": "blurtools-results/1", "tool": f"blurtools {tool}", "version": __version__,
           "options": options, "model": model, "items": items, **(extra or {})}
    path = Path(folder) / name
    atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    return path


# ------------------------------------------------------------------------------------------ running

def read_input(path: Path) -> Tuple[torch.Tensor, int]:
    """Read an input image as float (C, H, W) in [0, 1] (C = 1 for gray, else 3) and its bit depth."""
    array = read_array(path)
    if array.ndim < 2 or min(array.shape[:2]) == 0:
        raise BlurtoolsError(f"{path}: zero-size image ({'x'.join(str(s) for s in array.shape[:2][::-1])})")
    bits = 16 if array.dtype == np.uint16 else 8
    try:
        return array_to_tensor(array, keep_gray=True), bits
    except BlurtoolsError as exc:
        raise BlurtoolsError(f"{path}: {exc}") from None


def _is_oom(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)) or "out of memory" in text or "can't allocate memory" in text


def run_predictor(predictor: Predictor, images: torch.Tensor, opts: InferOptions, frames: Optional[int] = None,
                  out_dtype: torch.dtype = torch.float32,
                  on_window: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> the predictor's output on the CPU, tiled; halves the tile on out-of-memory.

    Image predictors give (B, 3, H, W) float, video predictors (B, N, 3, H, W) (``out_dtype`` uint8 to save
    memory). The classical method widens the overlap (and tile) to what its deconvolution needs.
    """
    fn, min_overlap = predictor.prepare(images, frames)
    tile, overlap = opts.tile, opts.overlap
    while True:
        t, ov = tile, overlap
        if t > 0 and min_overlap > ov:
            ov = min_overlap
            t = max(t, 4 * ov)
        try:
            return run_tiled(fn, images, tile=t, overlap=ov, multiple=predictor.multiple, batch=opts.batch,
                             device=predictor.device, out_dtype=out_dtype, min_size=MIN_WINDOW,
                             align_time=not predictor.is_classical, on_window=on_window)
        except (RuntimeError, MemoryError) as exc:
            if not _is_oom(exc):
                raise
            if predictor.device.type == "cuda":
                torch.cuda.empty_cache()
            side = max(images.shape[-2:]) if tile <= 0 else tile
            if side <= 2 * max(MIN_WINDOW, 2 * overlap):
                raise BlurtoolsError(f"out of memory on {predictor.device} even with {side}-pixel windows; try "
                                     "--device cpu or a smaller --batch") from None
            tile = side // 2
            log.warning("out of memory on %s; retrying with --tile %d", predictor.device, tile)


def deblur_image(predictor: Predictor, image: torch.Tensor, opts: Optional[InferOptions] = None,
                 on_window: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """Deblur (C, H, W) or (B, C, H, W) in [0, 1], C = 1 or 3; returns the same shape, clamped, on the CPU.

    Gray images go through as RGB (the three channels equal) and come back as the channels' mean.

    Example::

        sharp = deblur_image(load_predictor("image", model="classical"), read_image("photo.png"))
    """
    return deblur_with_evidence(predictor, image, opts, on_window)[0]


def deblur_with_evidence(predictor: Predictor, image: torch.Tensor, opts: Optional[InferOptions] = None,
                         on_window: Optional[Callable[[int, int], None]] = None
                         ) -> Tuple[torch.Tensor, List[float], List[Optional[Dict[str, Any]]]]:
    """:func:`deblur_image`, and per image the evidence of blur in [0, 1] and what the refinement did (a
    :class:`blurtools.infer.refine.RefineInfo` as a dict; None without one). The evidence is the refinement's
    (the network's correction or the deconvolution's sparsity gain, whichever says more) when there is one,
    else the network's correction alone (:func:`blurtools.infer.refine.blur_evidence`); 1 for the classical
    method, which always deconvolves."""
    from blurtools.infer.refine import blend_classical, blur_evidence, correction_db

    opts = opts or InferOptions()
    if predictor.kind != "image":
        raise UsageError(f"deblur_image: needs an image predictor, got a {predictor.kind} one ({predictor.name})")
    single = image.dim() == 3
    x = image[None] if single else image
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise UsageError(f"deblur_image: expected (C, H, W) or (B, C, H, W) with C = 1 or 3, got {tuple(image.shape)}")
    gray = x.shape[1] == 1
    rgb = x.expand(-1, 3, -1, -1) if gray else x
    y = run_predictor(predictor, rgb, opts, on_window=on_window)
    changes = None if predictor.is_classical else correction_db(y, rgb.to(y))
    infos: List[Optional[Dict[str, Any]]] = [None] * y.shape[0]
    if predictor.refine is not None:
        y, done = blend_classical(rgb.to(y), y, lambda: run_predictor(predictor.refine, rgb, opts).to(y),
                                  changes=changes)
        evidence = [i.evidence for i in done]
        infos = [{k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(i).items()} for i in done]
    else:
        evidence = [1.0] * y.shape[0] if changes is None else [blur_evidence(float(c)) for c in changes]
    y = (y.mean(1, keepdim=True) if gray else y).clamp_(0, 1)
    return (y[0] if single else y), evidence, infos


def pending_jobs(jobs: Sequence[Any], skip_existing: bool, outcome: Any,
                 on_done: Optional[Callable[[Any], None]] = None) -> List[Any]:
    """The jobs still to do; with ``skip_existing`` those whose output exists are counted as skipped."""
    todo = []
    for job in jobs:
        if skip_existing and job.dst.exists():
            outcome.skipped += 1
            if on_done:
                on_done(job)
        else:
            todo.append(job)
    return todo


def read_ahead(jobs: Sequence[Job], read: Callable[[Path], Any], depth: int = 2) -> Iterator[Tuple[Job, Any, Optional[BaseException]]]:
    """Yield ``(job, read(job.src), error)`` in order while a thread reads up to ``depth`` jobs ahead."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="blurtools-read") as pool:
        futures: List[Any] = []
        it = iter(jobs)
        for job in it:
            futures.append((job, pool.submit(read, job.src)))
            if len(futures) > depth:
                break
        while futures:
            job, fut = futures.pop(0)
            nxt = next(it, None)
            if nxt is not None:
                futures.append((nxt, pool.submit(read, nxt.src)))
            try:
                yield job, fut.result(), None
            except Exception as exc:  # handed to the caller, which stops or keeps going
                yield job, None, exc


@dataclass
class _Outcome:
    items: List[Dict[str, Any]] = field(default_factory=list)
    failed: List[Tuple[str, str]] = field(default_factory=list)
    skipped: int = 0


def _fail(outcome: _Outcome, job: Job, exc: BaseException, keep_going: bool) -> None:
    msg = str(exc) if isinstance(exc, BlurtoolsError) else f"{job.src}: {type(exc).__name__}: {exc}"
    if not keep_going:
        if isinstance(exc, BlurtoolsError):
            raise exc
        raise BlurtoolsError(msg) from exc
    log.warning("skipped: %s", msg)
    outcome.failed.append((str(job.src), msg))


def deblur_files(predictor: Predictor, jobs: Sequence[Job], opts: InferOptions, record: Dict[str, Any],
                 on_done: Optional[Callable[[Job], None]] = None,
                 on_window: Optional[Callable[[int, int], None]] = None,
                 on_images: Optional[Callable[[List[Job], torch.Tensor], None]] = None) -> _Outcome:
    """Deblur every job's input into its output; returns the items written, skipped and failed.

    ``record`` (tool options and model provenance) goes into every PNG's text chunks. Same-size inputs
    that follow each other share a model call (up to ``opts.batch`` images). With ``keep_going`` a failed
    input is logged and listed and the rest continue; otherwise the first failure stops the run (outputs
    already written stay, each complete). ``on_window(done, total)`` reports the windows of each image;
    ``on_images(jobs, images)`` sees each group's inputs (B, C, H, W) before they are deblurred (its
    failure is the group's failure).
    """
    from concurrent.futures import ThreadPoolExecutor

    outcome = _Outcome()
    todo = pending_jobs(jobs, opts.skip_existing, outcome, on_done)
    pending: List[Any] = []

    def flush(group: List[Tuple[Job, torch.Tensor, int]]) -> None:
        images = torch.stack([g[1] for g in group])
        try:
            if on_images is not None:
                on_images([g[0] for g in group], images)
            sharp, _, infos = deblur_with_evidence(predictor, images, opts, on_window=on_window)
        except Exception as exc:
            if _is_oom(exc) or not opts.keep_going:
                raise
            for job, _, _ in group:
                _fail(outcome, job, exc, True)
            return
        for (job, image, bits), out, info in zip(group, sharp, infos):
            extra = {"refine": info} if info is not None else {}
            text = provenance_text("deblur", {**record, "source": str(job.src), **extra})
            pending.append((job, writer.submit(write_output_image, job.dst, out, bits, text)))
            outcome.items.append({"input": str(job.src), "output": str(job.dst), "width": image.shape[-1],
                                  "height": image.shape[-2], "bits": bits, **extra})
        while len(pending) > 2:
            _collect(pending.pop(0))

    def _collect(item: Tuple[Job, Any], stopping: bool = False) -> None:
        job, fut = item
        try:
            fut.result()
        except Exception as exc:
            if stopping:      # the run is already failing with its own error; do not mask it
                log.warning("%s: not written (%s)", job.dst, exc)
                return
            _fail(outcome, job, exc, opts.keep_going)
        if on_done:
            on_done(job)

    with ThreadPoolExecutor(1, thread_name_prefix="blurtools-write") as writer:
        try:
            group: List[Tuple[Job, torch.Tensor, int]] = []
            for job, result, error in read_ahead(todo, read_input):
                if error is not None:
                    _fail(outcome, job, error, opts.keep_going)
                    if on_done:
                        on_done(job)
                    continue
                image, bits = result
                if group and (len(group) >= opts.batch or group[0][1].shape != image.shape):
                    flush(group)
                    group = []
                group.append((job, image, bits))
            if group:
                flush(group)
            while pending:
                _collect(pending.pop(0))
        finally:
            # outputs already encoding are finished (each appears whole), even when the run stops
            while pending:
                _collect(pending.pop(0), stopping=True)
    return outcome
