"""Writing HDF5 packs: sample sets -> one ``blurtools-h5/1`` file (layout in h5layout.py).

The pack is written to a temporary file beside the target (``.NAME.XXXX.part``) and renamed over the
target only once complete, checked (``verify=True``) and synced; the ``complete`` attribute is the last
thing written. An interrupted or killed run therefore leaves the previous good file (or none) at the target.
Appending is copy-on-write: a new temporary file receives the old pack's chunks (copied raw, without
re-compressing, when the layout allows) and the new samples, then replaces the old file in one rename.
"""

from __future__ import annotations

import json
import logging
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from blurtools.data.augment import patch_size, random_crop_box
from blurtools.data.h5layout import open_pack, pack_info, read_ids
from blurtools.data.h5write import Unit, write_pack
from blurtools.data.sources import probe
from blurtools.errors import BlurtoolsError, UsageError
from blurtools.io.sampleset import SampleSet

log = logging.getLogger(__name__)

COMPRESSIONS = ("none", "lzf", "gzip")


def _plan_set(sset: SampleSet, source: int, patch: Optional[Tuple[int, int]], per_image: int,
              seed: int) -> Tuple[List[Unit], np.dtype]:
    units, dtype = [], None
    for sample in sset.samples:
        sset.check_files(sample)
        try:
            h, w, dt = probe(sample.blurry)
        except BlurtoolsError as exc:
            raise BlurtoolsError(f"{sset.root}: sample {sample.id}: {exc}") from None
        if dtype is None:
            dtype = dt
        elif dt != dtype:
            raise BlurtoolsError(f"{sset.root}: sample {sample.id} is {8 * dt.itemsize}-bit, earlier samples "
                                 f"are {8 * dtype.itemsize}-bit; a pack keeps one bit depth")
        unit = Unit(source=source, sample=sample, sset=sset)
        if patch is None:
            unit.boxes = [(0, 0, h, w)]
            unit.ids = [sample.id]
        else:
            # Seeded by the sample id, so a sample's patches do not depend on what else is packed with it.
            rng = np.random.default_rng([seed & 0xFFFFFFFF, zlib.crc32(sample.id.encode())])
            try:
                unit.boxes = [random_crop_box(rng, h, w, patch) for _ in range(per_image)]
            except BlurtoolsError as exc:
                raise BlurtoolsError(f"{sset.root}: sample {sample.id}: {exc}") from None
            unit.ids = [f"{sample.id}#{k}" for k in range(per_image)]
        units.append(unit)
    return units, dtype


def _unique_ids(units: List[Unit], names: List[str]) -> None:
    """Make every id unique: a repeated id gets its set's folder name as prefix (then ~k if needed)."""
    seen: set = set()
    renamed = 0
    for unit in units:
        for k, sid in enumerate(unit.ids):
            new = sid
            if new in seen:
                new = f"{names[unit.source]}/{sid}"
                j = 1
                while new in seen:
                    new, j = f"{names[unit.source]}/{sid}~{j}", j + 1
                unit.ids[k] = new
                renamed += 1
            seen.add(new)
    if renamed:
        log.warning("%d sample ids occur in more than one set; they were prefixed with their set's folder name", renamed)


def _check_options(output: Path, sets: Sequence[Any], compression: Optional[str], patch: Any,
                   per_image: Optional[int], append: bool) -> None:
    if output.is_dir():
        raise UsageError(f"-o {output}: is a folder; give the .h5 file to write")
    if not sets:
        raise UsageError("no sample sets given")
    if compression is not None and compression not in COMPRESSIONS:
        raise UsageError(f"--compression {compression}: choose one of {', '.join(COMPRESSIONS)}")
    if (patch is None) != (per_image is None) and not append:
        raise UsageError("--patch and --per-image go together")
    if per_image is not None and per_image < 1:
        raise UsageError(f"--per-image {per_image}: must be at least 1")
    if append and not output.exists():
        raise BlurtoolsError(f"{output}: no pack to append to")


def _append_settings(output: Path, old_info: Dict[str, Any], patch: Any, per_image: Optional[int],
                     compression: Optional[str], seed: int, gzip_level: int) -> Tuple[Any, Optional[int], Optional[str], int, int]:
    """(patch, per_image, compression, seed, gzip_level) of the pack appended to; a given value that differs
    from the pack's is a UsageError."""
    old_opts = old_info["options"]
    old_patch, old_per = old_opts.get("patch"), old_opts.get("per_image")
    if patch is not None and patch_size(patch) != (None if old_patch is None else tuple(old_patch)):
        raise UsageError(f"--patch {patch}: the pack at {output} was made with patch {old_patch}")
    if per_image is not None and per_image != old_per:
        raise UsageError(f"--per-image {per_image}: the pack at {output} was made with per_image {old_per}")
    old_comp = old_info["compression"]
    if compression is not None and compression != old_comp:
        raise UsageError(f"--compression {compression}: the pack at {output} uses {old_comp}; "
                         "repack it to change compression")
    seed = int(old_opts.get("seed", seed)) if old_patch is not None else seed
    return old_patch, old_per, old_comp, seed, int(old_opts.get("gzip_level") or gzip_level)


def _common_frames(ssets: List[SampleSet], frames: Dict[str, int]) -> int:
    """The frame count every set (and the pack appended to, in ``frames``) holds; a BlurtoolsError otherwise."""
    frames = {**frames, **{str(s.root): s.frames for s in ssets if s.frames is not None}}
    if len(set(frames.values())) > 1:
        listing = ", ".join(f"{k} has {v}" for k, v in frames.items())
        raise BlurtoolsError(f"sample sets differ in frame count ({listing}); pack them separately")
    for s in ssets:
        if len(s) == 0:
            log.warning("%s: empty sample set; nothing to pack from it", s.root)
    n_frames = next(iter(frames.values()), None)
    if n_frames is None:
        raise BlurtoolsError("the sample sets hold no samples; nothing to pack")
    return n_frames


def _old_rows(old: Any) -> Tuple[List[Unit], List[Dict[str, Any]], List[str], np.dtype]:
    """The rows of an open pack being appended to, its sources, their folder names and its dtype."""
    old_sizes, old_origin = old["sizes"][()], old["origin"][()]
    old_ids, old_source = read_ids(old), old["source"][()]
    sources_attr = json.loads(old.attrs["sources"])
    names = [Path(s.get("path", f"source{k}")).name for k, s in enumerate(sources_attr)]
    units = []
    for i in range(len(old_ids)):
        (h, w), (y, x) = old_sizes[i], old_origin[i]
        units.append(Unit(source=int(old_source[i]), old_index=i, boxes=[(int(y), int(x), int(h), int(w))], ids=[old_ids[i]]))
    return units, sources_attr, names, old["blurry"].dtype


def pack_sets(sets: Sequence["str | Path"], output: "str | Path", *, compression: Optional[str] = None,
              gzip_level: int = 4, patch: "int | Tuple[int, int] | None" = None, per_image: Optional[int] = None,
              seed: int = 0, append: bool = False, verify: bool = False, workers: int = 4,
              progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, Any]:
    """Pack sample sets into an HDF5 file (or append them to one), atomically.

    Args:
        sets: sample-set folders; their frame counts and bit depths must agree.
        output: the .h5 file to write (replaced atomically when it exists, unless ``append``).
        compression: None/"none", "lzf" or "gzip" (level ``gzip_level``). With ``append`` None keeps the pack's.
        patch, per_image: cut ``per_image`` random patch x patch windows from every image (seeded by
            ``seed`` and the sample id) instead of storing whole images. With ``append`` None keeps the pack's.
        append: add the sets to the existing pack at ``output`` (copy-on-write; the old file stays
            intact until the new one is complete).
        verify: read the finished temporary file back (chunks and checksums) before the rename.
        workers: threads decoding PNGs ahead of the writer.
        progress: called as progress(done, total) in source samples.
    Returns:
        :func:`pack_info` of the written pack.
    Raises:
        BlurtoolsError: bad or incompatible input, naming the set/sample/file. UsageError: bad options.

    Example:
        >>> pack_sets(["sets/gopro7"], "train.h5", compression="lzf")["samples"]
        2103
    """
    output = Path(output)
    _check_options(output, sets, compression, patch, per_image, append)
    old = None
    old_info: Dict[str, Any] = {}
    if append:
        old_info = pack_info(output)
        patch, per_image, compression, seed, gzip_level = _append_settings(output, old_info, patch, per_image,
                                                                           compression, seed, gzip_level)
    compression = None if compression in (None, "none") else compression
    psize = patch_size(patch)

    # Plan: every source sample, its rows (whole image or patches), sizes and the common depth/frames.
    ssets = [SampleSet(p) for p in sets]
    n_frames = _common_frames(ssets, {str(output): old_info["frames"]} if append else {})

    units: List[Unit] = []
    names: List[str] = []
    sources_attr: List[Dict[str, Any]] = []
    dtype = None
    if append:
        old = open_pack(output)
        units, sources_attr, names, dtype = _old_rows(old)
    try:
        packed, given = {s.get("path") for s in sources_attr}, set()
        for sset in ssets:
            where = str(sset.root.resolve())
            if where in packed:
                raise BlurtoolsError(f"{sset.root}: this set is already in {output}; repack to bring it up to date")
            if where in given:
                raise UsageError(f"{sset.root}: the same set is given twice")
            given.add(where)
            set_units, set_dtype = _plan_set(sset, len(sources_attr), psize, per_image or 1, seed)
            if set_dtype is not None:
                if dtype is not None and set_dtype != dtype:
                    raise BlurtoolsError(f"{sset.root}: {8 * set_dtype.itemsize}-bit images, but "
                                         f"{'the pack' if append else 'the other sets'} hold {8 * dtype.itemsize}-bit ones; "
                                         "a pack keeps one bit depth")
                dtype = set_dtype
            units.extend(set_units)
            names.append(sset.root.resolve().name)
            sources_attr.append({"path": str(sset.root.resolve()), "meta": sset.meta,
                                 "samples": sum(len(u.ids) for u in set_units)})
        _unique_ids(units, names)
        return write_pack(output, units, old, old_info, sources_attr, ssets, n_frames, dtype, psize, per_image,
                          seed, compression, gzip_level, verify, workers, progress)
    finally:
        if old is not None:
            old.close()


