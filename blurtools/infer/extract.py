"""The video-extraction pipeline: each blurry image becomes the short sharp video it hides.

* :func:`plan_extract` pairs inputs with outputs; the output's extension picks the format (``.gif``,
  ``.mp4``, ``.webp``; anything else is a folder of numbered PNGs ``0000.png``...). Many inputs go into a
  folder, one output per input (``--format`` picks it, GIF by default), mirroring folder trees.
* :func:`extract_video` runs a video predictor over one image, tiled, with frame multiplication when
  more (or fewer) frames are asked for than the model makes.
* :func:`extract_files` runs the job list and writes each result atomically: a video file appears whole,
  a frame folder is written beside its target and renamed into place.

Every output records the tool, version, options and model: PNG frames in text chunks, GIFs in their
comment, MP4s in their ``comment`` metadata, animated WebPs in XMP, and output folders in ``meta.json``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from blurtools.errors import UsageError
from blurtools.infer.inputs import expand_inputs, read_ahead, read_input
from blurtools.infer.jobs import Outcome, pending_jobs, record_failure
from blurtools.infer.loading import Predictor
from blurtools.infer.outputs import encode_png, provenance_text, write_output_image
from blurtools.infer.predict import InferOptions, deblur_with_evidence, is_oom, run_predictor
from blurtools.infer.refine import blend_video
from blurtools.io.atomic import atomic_write_bytes
from blurtools.io.contact_sheet import contact_sheet, thumbnail
from blurtools.io.images import IMAGE_EXTENSIONS, tensor_to_array
from blurtools.io.video import write_gif, write_mp4, write_webp

log = logging.getLogger(__name__)

__all__ = ["VIDEO_FORMATS", "FORMATS", "VideoJob", "ExtractOptions", "plan_extract", "extract_video",
           "extract_files", "sequence_for_output", "write_video"]

VIDEO_FORMATS = {".gif": "gif", ".mp4": "mp4", ".webp": "webp"}
FORMATS = ("gif", "mp4", "webp", "png")
_FRAME_FILE = re.compile(r"^\d{4,}\.png$|^meta(\.shard-\d+-of-\d+)?\.json$")


@dataclass(frozen=True)
class VideoJob:
    """One blurry input and its output: a video file (gif/mp4/webp) or a frame folder (png)."""

    src: Path
    dst: Path
    fmt: str


@dataclass
class ExtractOptions(InferOptions):
    """InferOptions plus the video's frames (None = the model's own count), frame rate, loop count
    (None = forever for GIF/WebP, once for MP4) and boomerang (forward then back)."""

    frames: Optional[int] = None
    fps: float = 10.0
    loop: Optional[int] = None
    boomerang: bool = False
    sheet_height: int = 0          # > 0: keep thumbnails this high for a contact sheet


def _check_frame_folder(path: Path) -> None:
    if path.exists():
        if not path.is_dir():
            raise UsageError(f"-o {path}: exists and is not a folder (a frame folder was asked for)")
        other = [p.name for p in path.iterdir() if not _FRAME_FILE.match(p.name)]
        if other:
            raise UsageError(f"-o {path}: holds other files ({', '.join(sorted(other)[:3])}); frames go into an "
                             "empty folder or one holding earlier frames only")


def plan_extract(inputs: Sequence["str | Path"], output: Path, fmt: Optional[str] = None) -> Tuple[List[VideoJob], bool]:
    """Pair inputs with outputs. Returns ``(jobs, folder_of_outputs)``.

    One input and no ``fmt``: ``-o x.gif|x.mp4|x.webp`` is that file, any other name a folder of frames.
    Several inputs (or ``fmt`` given with a folder ``-o``): ``-o`` is a folder holding one
    ``<relative path>.<fmt>`` per input (a ``<relative path>/`` frame folder for ``png``).

    Raises:
        UsageError: an unknown format, several inputs into one file, a video or image file name that is
            an existing folder, ``-o x.png`` (one PNG cannot hold a video), clashing outputs.
    """
    output = Path(output)
    suffix = output.suffix.lower()
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    named_file = suffix in VIDEO_FORMATS
    if named_file and output.is_dir():
        raise UsageError(f"-o {output}: is an existing folder, but its name asks for one {suffix} file; give a file "
                         "path, or a folder name without a video extension")
    if named_file and fmt is not None and VIDEO_FORMATS[suffix] != fmt:
        raise UsageError(f"-o {output} is a .{VIDEO_FORMATS[suffix]} file but --format says {fmt}")
    if suffix in IMAGE_EXTENSIONS and not named_file and not output.is_dir():
        raise UsageError(f"-o {output}: one image cannot hold a video; use .gif, .mp4, .webp or a folder for PNG frames "
                         "(--sheet FILE.png writes a contact sheet)")
    items = expand_inputs(inputs, exclude=None if named_file else output)
    if named_file:
        if len(items) > 1:
            raise UsageError(f"-o {output}: {len(items)} inputs need an output folder, not one file")
        return [VideoJob(items[0][0], output, VIDEO_FORMATS[suffix])], False
    if len(items) == 1 and fmt is None:
        _check_frame_folder(output)
        return [VideoJob(items[0][0], output, "png")], False
    if output.exists() and not output.is_dir():
        raise UsageError(f"-o {output}: exists and is not a folder; outputs go into a folder unless -o names a video file")
    fmt = fmt or "gif"
    jobs, seen = [], {}
    for src, rel in items:
        dst = output / (rel.with_suffix("") if fmt == "png" else rel.with_suffix("." + fmt))
        if dst in seen:
            raise UsageError(f"{seen[dst]} and {src} would both write {dst}; process them separately")
        seen[dst] = src
        if fmt == "png":
            _check_frame_folder(dst)
        elif dst.is_dir():
            raise UsageError(f"{dst}: is an existing folder; cannot write the {fmt} of {src} there")
        jobs.append(VideoJob(src, dst, fmt))
    return jobs, True


def extract_video(predictor: Predictor, image: torch.Tensor, opts: Optional[ExtractOptions] = None,
                  out_dtype: torch.dtype = torch.uint8,
                  on_window: Optional[Callable[[int, int], None]] = None,
                  record: Optional[Dict[str, Any]] = None) -> torch.Tensor:
    """The frames hidden in one blurry image (C, H, W) in [0, 1] (gray is taken as RGB).

    Returns (N, 3, H, W) on the CPU: uint8 by default (a 7-frame 24-megapixel video in 0.5 GB), or float
    in [0, 1] with ``out_dtype=torch.float32`` (16-bit frames). With the shipped weights and the default
    refinement the frames are the default deblur moved along the estimated blur path
    (:mod:`blurtools.infer.motion_video`); ``record``, when given, receives what that did (``motion``,
    ``refine``).

    Example::

        frames = extract_video(load_predictor("video", model="classical"), read_image("blurry.png"))
    """
    opts = opts or ExtractOptions()
    if predictor.kind != "video":
        raise UsageError(f"extract_video: needs a video predictor, got an {predictor.kind} one ({predictor.name})")
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise UsageError(f"extract_video: expected (C, H, W) with C = 1 or 3, got {tuple(image.shape)}")
    if opts.frames is not None and opts.frames < 1:
        raise UsageError(f"--frames {opts.frames}: must be >= 1")
    x = image.expand(3, -1, -1)[None]
    if predictor.refine is not None and predictor.provenance.get("refine", {}).get("method") == "motion":
        from blurtools.infer.motion_video import motion_video

        out, info, refined = motion_video(predictor.refine, x.float(), opts, opts.frames or predictor.frames or 7)
        if record is not None:
            record.update(motion=asdict(info), refine=refined)
        return (out * 255).round_().to(torch.uint8) if out_dtype == torch.uint8 else out.to(out_dtype)
    out = run_predictor(predictor, x, opts, frames=opts.frames, out_dtype=out_dtype, on_window=on_window)[0]
    if out_dtype != torch.uint8:
        out.clamp_(0, 1)
    if predictor.refine is not None:
        sharp, evidence, _ = deblur_with_evidence(predictor.refine, x, opts)
        blend_video(out, sharp, evidence[0])
    return out


def sequence_for_output(frames: torch.Tensor, boomerang: bool) -> torch.Tensor:
    """Frames in playing order: with ``boomerang`` forward then back (ends not repeated, so loops are smooth)."""
    if boomerang and frames.shape[0] > 2:
        return torch.cat([frames, frames.flip(0)[1:-1]])
    return frames


def _rgb8(frames: torch.Tensor) -> List[np.ndarray]:
    if frames.dtype != torch.uint8:
        frames = (frames.clamp(0, 1) * 255).round().to(torch.uint8)
    return [np.ascontiguousarray(f.permute(1, 2, 0).numpy()) for f in frames]


def write_video(path: Path, frames: torch.Tensor, fmt: str, fps: float, loop: Optional[int], comment: str) -> None:
    """Write (N, 3, H, W) frames as a GIF, MP4 or animated WebP atomically, with ``comment`` as metadata.

    ``loop``: how many times the animation plays (0 = forever; None = forever for GIF/WebP, once for MP4;
    an MP4 has no loop flag, so its frames are written ``loop`` times over).
    """
    arrays = _rgb8(frames)
    if fmt == "gif":
        write_gif(path, arrays, fps=fps, loop=0 if loop is None else loop, comment=comment)
    elif fmt == "webp":
        write_webp(path, arrays, fps=fps, loop=loop or 0, comment=comment)
    elif fmt == "mp4":
        times = max(1, loop or 1)
        write_mp4(path, (a for _ in range(times) for a in arrays), fps=fps, comment=comment)
    else:
        raise UsageError(f"write_video: unknown format {fmt!r}")


def write_frame_folder(path: Path, frames: torch.Tensor, bits: int, text: Dict[str, str]) -> None:
    """Write frames as ``path/0000.png``... atomically: into a temporary folder beside ``path``, then renamed.

    Earlier frames in ``path`` (and only those: numbered PNGs, meta.json) are replaced as a whole.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)          # mkdtemp makes 0700; the folder that stays should look like any other
    old = None
    try:
        for i, frame in enumerate(frames):
            if frame.dtype == torch.uint8:
                array = np.ascontiguousarray(frame.permute(1, 2, 0).numpy())
            else:
                array = tensor_to_array(frame, bits)
            (tmp / f"{i:04d}.png").write_bytes(encode_png(array, text))
        if path.exists():
            _check_frame_folder(path)
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            path.rename(old / path.name)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists():
            (old / path.name).rename(path)          # put the earlier frames back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def extract_files(predictor: Predictor, jobs: Sequence[VideoJob], opts: ExtractOptions, record: Dict[str, Any],
                  on_done: Optional[Callable[[VideoJob], None]] = None,
                  on_window: Optional[Callable[[int, int], None]] = None
                  ) -> Tuple[Outcome, List[Tuple[str, np.ndarray, List[np.ndarray]]]]:
    """Extract every job's video and write it; returns the outcome and (name, blurry, frames) thumbnails
    (empty unless ``opts.sheet_height`` > 0).

    With ``keep_going`` a failed input is logged and listed and the rest continue; otherwise the first
    failure stops the run (outputs written before stay, each complete). ``on_window(done, total)`` reports
    the windows of each image.
    """
    outcome, thumbs = Outcome(), []
    todo = pending_jobs(jobs, opts.skip_existing, outcome, on_done)
    for job, result, error in read_ahead(todo, read_input):
        try:
            if error is not None:
                raise error
            image, bits = result
            as_float = job.fmt == "png" and bits == 16
            made: Dict[str, Any] = {}
            frames = extract_video(predictor, image, opts, out_dtype=torch.float32 if as_float else torch.uint8,
                                   on_window=on_window, record=made)
            rec = {**record, "source": str(job.src), "frames": int(frames.shape[0]), **made}
            if job.fmt == "png":
                write_frame_folder(job.dst, frames, bits, provenance_text("extract-video", rec))
            else:
                comment = json.dumps({"tool": "blurtools extract-video", **rec}, sort_keys=True, default=str)
                write_video(job.dst, sequence_for_output(frames, opts.boomerang), job.fmt, opts.fps, opts.loop, comment)
            outcome.items.append({"input": str(job.src), "output": str(job.dst), "format": job.fmt,
                                  "frames": int(frames.shape[0]), "width": image.shape[-1], "height": image.shape[-2],
                                  **made})
            if opts.sheet_height > 0:
                h = opts.sheet_height
                thumbs.append((job.src.name, thumbnail(image.expand(3, -1, -1), h), [thumbnail(f, h) for f in frames]))
        except Exception as exc:
            if is_oom(exc):
                raise
            record_failure(outcome, job, exc, opts.keep_going)
        if on_done:
            on_done(job)
    return outcome, thumbs


def write_sheet(path: Path, thumbs: Sequence[Tuple[str, np.ndarray, List[np.ndarray]]], record: Dict[str, Any],
                columns: int = 8) -> None:
    """Compose and write the contact sheet (PNG with provenance; other image formats via imageio)."""
    sheet = contact_sheet([(b, f) for _, b, f in thumbs], columns=columns,
                          titles=[n for n, _, _ in thumbs] if len(thumbs) > 1 else None)
    if path.suffix.lower() == ".png":
        atomic_write_bytes(path, encode_png(sheet, provenance_text("extract-video", {**record, "sheet": True})))
    else:
        write_output_image(path, torch.from_numpy(sheet).permute(2, 0, 1).float() / 255, 8)
