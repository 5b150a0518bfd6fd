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
import os
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from blurtools import __version__
from blurtools.data.augment import patch_size, random_crop_box
from blurtools.data.h5layout import FORMAT, crc_of, open_pack, pack_info, read_ids, verify_pack
from blurtools.data.sources import probe, read_sample_arrays
from blurtools.errors import BlurtoolsError, UsageError
from blurtools.io.atomic import atomic_path
from blurtools.io.sampleset import Sample, SampleSet

log = logging.getLogger(__name__)

COMPRESSIONS = ("none", "lzf", "gzip")
PER_FRAME_CHUNKS_ABOVE = 1 << 30  # bytes per sample; HDF5 chunks must stay below 4 GiB
PREFETCH_BYTES = 512 << 20


@dataclass
class _Unit:
    """One source sample (a set sample, or one row of the pack being appended to)."""

    source: int
    sample: Optional[Sample] = None
    sset: Optional[SampleSet] = None
    old_index: int = -1
    boxes: List[Tuple[int, int, int, int]] = field(default_factory=list)  # (y, x, h, w) rows it yields
    ids: List[str] = field(default_factory=list)


def _crf_of(meta: Dict[str, Any]) -> Optional[str]:
    crf = (meta.get("options") or {}).get("crf")
    return None if crf is None else str(crf)


def _plan_set(sset: SampleSet, source: int, patch: Optional[Tuple[int, int]], per_image: int,
              seed: int) -> Tuple[List[_Unit], np.dtype]:
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
        unit = _Unit(source=source, sample=sample, sset=sset)
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


def _unique_ids(units: List[_Unit], names: List[str]) -> None:
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


def _load(unit: _Unit) -> Tuple[np.ndarray, np.ndarray]:
    return read_sample_arrays(unit.sset, unit.sample)


def _dataset_filters(dset: Any) -> Tuple[Any, ...]:
    return (dset.dtype, dset.chunks, dset.compression, dset.compression_opts, dset.shuffle)


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

    old = None
    old_info: Dict[str, Any] = {}
    if append:
        if not output.exists():
            raise BlurtoolsError(f"{output}: no pack to append to")
        old_info = pack_info(output)
        old_opts = old_info["options"]
        old_patch, old_per = old_opts.get("patch"), old_opts.get("per_image")
        if patch is not None and patch_size(patch) != (None if old_patch is None else tuple(old_patch)):
            raise UsageError(f"--patch {patch}: the pack at {output} was made with patch {old_patch}")
        if per_image is not None and per_image != old_per:
            raise UsageError(f"--per-image {per_image}: the pack at {output} was made with per_image {old_per}")
        patch, per_image = old_patch, old_per
        old_comp = old_info["compression"]
        if compression is not None and compression != old_comp:
            raise UsageError(f"--compression {compression}: the pack at {output} uses {old_comp}; "
                             "repack it to change compression")
        compression = old_comp
        seed = int(old_opts.get("seed", seed)) if patch is not None else seed
        gzip_level = int(old_opts.get("gzip_level") or gzip_level)
    compression = None if compression in (None, "none") else compression
    psize = patch_size(patch)

    # Plan: every source sample, its rows (whole image or patches), sizes and the common depth/frames.
    ssets = [SampleSet(p) for p in sets]
    frames = {str(s.root): s.frames for s in ssets if s.frames is not None}
    if append:
        frames = {str(output): old_info["frames"], **frames}
    if len(set(frames.values())) > 1:
        listing = ", ".join(f"{k} has {v}" for k, v in frames.items())
        raise BlurtoolsError(f"sample sets differ in frame count ({listing}); pack them separately")
    for s in ssets:
        if len(s) == 0:
            log.warning("%s: empty sample set; nothing to pack from it", s.root)
    n_frames = next(iter(frames.values()), None)
    if n_frames is None:
        raise BlurtoolsError("the sample sets hold no samples; nothing to pack")

    units: List[_Unit] = []
    names: List[str] = []
    sources_attr: List[Dict[str, Any]] = []
    dtype = None
    if append:
        old = open_pack(output)
        old_sizes, old_origin = old["sizes"][()], old["origin"][()]
        old_ids, old_source = read_ids(old), old["source"][()]
        sources_attr = json.loads(old.attrs["sources"])
        names = [Path(s.get("path", f"source{k}")).name for k, s in enumerate(sources_attr)]
        dtype = old["blurry"].dtype
        for i in range(len(old_ids)):
            (h, w), (y, x) = old_sizes[i], old_origin[i]
            units.append(_Unit(source=int(old_source[i]), old_index=i, boxes=[(int(y), int(x), int(h), int(w))], ids=[old_ids[i]]))
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
        return _write(output, units, old, old_info, sources_attr, ssets, n_frames, dtype, psize, per_image,
                      seed, compression, gzip_level, verify, workers, progress)
    finally:
        if old is not None:
            old.close()


def _write(output: Path, units: List[_Unit], old: Any, old_info: Dict[str, Any], sources_attr: List[Dict[str, Any]],
           ssets: List[SampleSet], n_frames: int, dtype: np.dtype, psize: Optional[Tuple[int, int]],
           per_image: Optional[int], seed: int, compression: Optional[str], gzip_level: int, verify: bool,
           workers: int, progress: Optional[Callable[[int, int], None]]) -> Dict[str, Any]:
    import h5py

    rows = [(u, k) for u in units for k in range(len(u.boxes))]
    n_rows = len(rows)
    sizes = np.array([u.boxes[k][2:] for u, k in rows], np.int32).reshape(-1, 2)
    slot_h, slot_w = (int(v) for v in sizes.max(0))
    layout = "fixed" if (sizes == (slot_h, slot_w)).all() else "padded"
    if layout == "padded":
        used = float((sizes[:, 0] * sizes[:, 1]).sum()) / (n_rows * slot_h * slot_w)
        log.warning("image sizes differ (%dx%d to %dx%d): packed padded into %dx%d slots (%.0f%% used)%s",
                    sizes[:, 1].min(), sizes[:, 0].min(), slot_w, slot_h, slot_w, slot_h, 100 * used,
                    "" if compression else "; --compression lzf makes the padding nearly free on disk")
    sample_bytes = n_frames * slot_h * slot_w * 3 * dtype.itemsize
    sharp_chunks = (1, 1 if sample_bytes > PER_FRAME_CHUNKS_ABOVE else n_frames, slot_h, slot_w, 3)
    filters: Dict[str, Any] = {}
    if compression:
        filters = {"compression": compression, "shuffle": True}
        if compression == "gzip":
            filters["compression_opts"] = gzip_level

    crfs = {_crf_of(s.get("meta", {})) for s in sources_attr}
    crf = crfs.pop() if len(crfs) == 1 else "mixed"
    if crf == "mixed":
        log.warning("the sets were made with different camera responses; the pack's crf is 'mixed'")
    options = {"compression": compression or "none", "gzip_level": gzip_level if compression == "gzip" else None,
               "patch": list(psize) if psize else None, "per_image": per_image, "seed": seed}
    history = list(old_info.get("history", [])) + [{
        "tool": "pack-h5", "version": __version__, "action": "append" if old is not None else "pack",
        "sets": [str(s.root.resolve()) for s in ssets], "options": options,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}]

    stale = sorted(output.parent.glob(f".{output.name}.*.part")) if output.parent.exists() else []
    if stale:
        log.warning("%s: %d unfinished temporary file(s) from interrupted runs lie beside it (%s); remove them",
                    output, len(stale), stale[0].name)

    total = len(units)
    done = 0
    ids = [u.ids[k] for u, k in rows]
    origin = np.array([u.boxes[k][:2] for u, k in rows], np.int32).reshape(-1, 2)
    source = np.array([u.source for u, _ in rows], np.int32)
    crc = np.zeros((n_rows, 2), np.uint32)
    with atomic_path(output, suffix="") as tmp:
        with h5py.File(tmp, "w", libver="v108") as f:
            blurry = f.create_dataset("blurry", (n_rows, slot_h, slot_w, 3), dtype, chunks=(1, slot_h, slot_w, 3),
                                       fillvalue=0, **filters)
            sharp = f.create_dataset("sharp", (n_rows, n_frames, slot_h, slot_w, 3), dtype, chunks=sharp_chunks,
                                      fillvalue=0, **filters)
            f.attrs["format"] = FORMAT
            f.attrs["complete"] = 0
            raw_copy = old is not None and _dataset_filters(old["blurry"]) == _dataset_filters(blurry) \
                and _dataset_filters(old["sharp"]) == _dataset_filters(sharp)
            row = 0
            if old is not None:
                old_crc = old["crc"][()]
                for u in units:
                    if u.old_index < 0:
                        break
                    i = u.old_index
                    if raw_copy:
                        _copy_chunks(old["blurry"], blurry, i, row)
                        _copy_chunks(old["sharp"], sharp, i, row)
                    else:
                        h, w = u.boxes[0][2:]
                        blurry[row, :h, :w] = old["blurry"][i, :h, :w]
                        sharp[row, :, :h, :w] = old["sharp"][i, :, :h, :w]
                    crc[row] = old_crc[i]
                    row += 1
                    done += 1
                    if progress is not None:
                        progress(done, total)
            new_units = [u for u in units if u.old_index < 0]
            for u, (b, s) in _prefetch(new_units, workers, sample_bytes):
                for (y, x, h, w) in u.boxes:
                    pb, ps = b[y:y + h, x:x + w], s[:, y:y + h, x:x + w]
                    if (h, w) == (slot_h, slot_w):
                        blurry[row] = pb
                        sharp[row] = ps
                    else:
                        blurry[row, :h, :w] = pb
                        sharp[row, :, :h, :w] = ps
                    crc[row] = (crc_of(pb), crc_of(ps))
                    row += 1
                done += 1
                if progress is not None:
                    progress(done, total)
            f.create_dataset("ids", data=np.array(ids, dtype=object), dtype=h5py.string_dtype("utf-8"))
            f.create_dataset("sizes", data=sizes)
            f.create_dataset("source", data=source)
            f.create_dataset("origin", data=origin)
            f.create_dataset("crc", data=crc)
            f.attrs.update({
                "frames": n_frames, "bits": 8 * dtype.itemsize, "layout": layout, "crf": crf or "unknown",
                "sources": json.dumps(sources_attr, sort_keys=True), "options": json.dumps(options, sort_keys=True),
                "history": json.dumps(history), "tool": "pack-h5", "version": __version__,
            })
            f.flush()
            f.attrs["complete"] = 1  # last: a file without it was never finished
        _fsync(tmp)
        _umask_mode(tmp)
        if verify:
            verify_pack(tmp)
    log.debug("%s: %d samples (%d frames, %d-bit, %s, %s)", output, n_rows, n_frames, 8 * dtype.itemsize, layout,
             compression or "uncompressed")
    return pack_info(output)


def _copy_chunks(src: Any, dst: Any, i: int, j: int) -> None:
    """Copy the stored (possibly compressed) chunks of sample i of ``src`` to sample j of ``dst``."""
    per_sample = [range(0, n, c) for n, c in zip(src.shape[1:], src.chunks[1:])]
    for offs in np.stack(np.meshgrid(*per_sample, indexing="ij"), -1).reshape(-1, len(per_sample)):
        offs = tuple(int(v) for v in offs)
        mask, data = src.id.read_direct_chunk((i, *offs))
        dst.id.write_direct_chunk((j, *offs), data, mask)


def _prefetch(units: List[_Unit], workers: int, sample_bytes: int) -> Iterator[Tuple[_Unit, Tuple[np.ndarray, np.ndarray]]]:
    """Decode samples in threads, a bounded number ahead of the writer, yielding them in order."""
    if workers <= 1 or len(units) <= 1:
        for u in units:
            yield u, _load(u)
        return
    ahead = max(1, min(2 * workers, PREFETCH_BYTES // max(1, 2 * sample_bytes)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pack-h5-read") as pool:
        pending = [pool.submit(_load, u) for u in units[:ahead]]
        try:
            for k, u in enumerate(units):
                result = pending[k].result()
                pending[k] = None  # type: ignore[call-overload]
                if k + ahead < len(units):
                    pending.append(pool.submit(_load, units[k + ahead]))
                yield u, result
        finally:
            for fut in pending:
                if fut is not None:
                    fut.cancel()


def _umask_mode(path: Path) -> None:
    """Give the pack the permissions a plain open() would (the temporary file is created 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
