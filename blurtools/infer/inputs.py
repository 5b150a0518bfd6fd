"""Inputs of the inference pipelines: what the user typed expanded into image files, paired with outputs,
sharded, and read (ahead, on a thread).

* :func:`expand_inputs` turns files, folders and globs into image files, each with the relative path its
  output takes (a folder's tree is mirrored; a glob is mirrored below its first wildcard).
* :func:`plan_deblur` pairs every input with its output: ``-o file.png`` for one input, else a folder.
* :func:`read_input` reads one image as a float tensor; :func:`read_ahead` reads the next ones on a thread.
"""

from __future__ import annotations

import glob
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from blurtools.errors import BlurtoolsError, UsageError
from blurtools.io.images import IMAGE_EXTENSIONS, array_to_tensor, is_image_path, read_array
from blurtools.io.video import natural_key

__all__ = ["Job", "expand_inputs", "plan_deblur", "shard_jobs", "read_input", "read_ahead"]


@dataclass(frozen=True)
class Job:
    """One input file and where its result goes."""

    src: Path
    dst: Path


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


def read_ahead(jobs: Sequence[Job], read: Callable[[Path], Any], depth: int = 2) -> Iterator[Tuple[Job, Any, Optional[BaseException]]]:
    """Yield ``(job, read(job.src), error)`` in order while a thread reads up to ``depth`` jobs ahead."""
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
