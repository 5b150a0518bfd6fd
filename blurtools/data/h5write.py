"""Writing one pack file: the rows' layout and chunking, an old pack's rows copied, new samples decoded in
threads and written with their checksums, then the index datasets and attributes (format in h5layout.py).

:func:`write_pack` is the second half of :func:`blurtools.data.h5pack.pack_sets`, which plans the rows.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from blurtools import __version__
from blurtools.data.h5layout import FORMAT, crc_of, pack_info, verify_pack
from blurtools.data.sources import read_sample_arrays
from blurtools.io.atomic import atomic_path
from blurtools.io.prefetch import Prefetch
from blurtools.io.sampleset import Sample, SampleSet

log = logging.getLogger("blurtools.data.h5pack")

PER_FRAME_CHUNKS_ABOVE = 1 << 30  # bytes per sample; HDF5 chunks must stay below 4 GiB
PREFETCH_BYTES = 512 << 20
Progress = Optional[Callable[[int, int], None]]


@dataclass
class Unit:
    """One source sample (a set sample, or one row of the pack being appended to)."""

    source: int
    sample: Optional[Sample] = None
    sset: Optional[SampleSet] = None
    old_index: int = -1
    boxes: List[Tuple[int, int, int, int]] = field(default_factory=list)  # (y, x, h, w) rows it yields
    ids: List[str] = field(default_factory=list)


def crf_of(meta: Dict[str, Any]) -> Optional[str]:
    crf = (meta.get("options") or {}).get("crf")
    return None if crf is None else str(crf)


def _load(unit: Unit) -> Tuple[np.ndarray, np.ndarray]:
    return read_sample_arrays(unit.sset, unit.sample)


def _dataset_filters(dset: Any) -> Tuple[Any, ...]:
    return (dset.dtype, dset.chunks, dset.compression, dset.compression_opts, dset.shuffle)


def _slots(sizes: np.ndarray, compression: Optional[str]) -> Tuple[int, int, str]:
    """(slot height, slot width, layout): "fixed" when every row fills the slot, else "padded" (logged)."""
    slot_h, slot_w = (int(v) for v in sizes.max(0))
    layout = "fixed" if (sizes == (slot_h, slot_w)).all() else "padded"
    if layout == "padded":
        used = float((sizes[:, 0] * sizes[:, 1]).sum()) / (len(sizes) * slot_h * slot_w)
        log.warning("image sizes differ (%dx%d to %dx%d): packed padded into %dx%d slots (%.0f%% used)%s",
                    sizes[:, 1].min(), sizes[:, 0].min(), slot_w, slot_h, slot_w, slot_h, 100 * used,
                    "" if compression else "; --compression lzf makes the padding nearly free on disk")
    return slot_h, slot_w, layout


def _filters(compression: Optional[str], gzip_level: int) -> Dict[str, Any]:
    if not compression:
        return {}
    filters: Dict[str, Any] = {"compression": compression, "shuffle": True}
    if compression == "gzip":
        filters["compression_opts"] = gzip_level
    return filters


def _records(sources_attr: List[Dict[str, Any]], old_info: Dict[str, Any], appending: bool, ssets: List[SampleSet],
             options: Dict[str, Any]) -> Tuple[str, List[Dict[str, Any]]]:
    """(the pack's crf, or "mixed"; its history with this run appended)."""
    crfs = {crf_of(s.get("meta", {})) for s in sources_attr}
    crf = crfs.pop() if len(crfs) == 1 else "mixed"
    if crf == "mixed":
        log.warning("the sets were made with different camera responses; the pack's crf is 'mixed'")
    history = list(old_info.get("history", [])) + [{
        "tool": "pack-h5", "version": __version__, "action": "append" if appending else "pack",
        "sets": [str(s.root.resolve()) for s in ssets], "options": options,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}]
    return crf, history


def _warn_stale(output: Path) -> None:
    stale = sorted(output.parent.glob(f".{output.name}.*.part")) if output.parent.exists() else []
    if stale:
        log.warning("%s: %d unfinished temporary file(s) from interrupted runs lie beside it (%s); remove them",
                    output, len(stale), stale[0].name)


def _copy_old_rows(old: Any, units: List[Unit], blurry: Any, sharp: Any, crc: np.ndarray, total: int,
                   progress: Progress) -> int:
    """The appended-to pack's rows into the new file (raw chunks when the filters match); returns the rows."""
    raw_copy = _dataset_filters(old["blurry"]) == _dataset_filters(blurry) \
        and _dataset_filters(old["sharp"]) == _dataset_filters(sharp)
    old_crc = old["crc"][()]
    row = 0
    for u in units:
        if u.old_index < 0:
            break
        i = u.old_index
        if raw_copy:
            copy_chunks(old["blurry"], blurry, i, row)
            copy_chunks(old["sharp"], sharp, i, row)
        else:
            h, w = u.boxes[0][2:]
            blurry[row, :h, :w] = old["blurry"][i, :h, :w]
            sharp[row, :, :h, :w] = old["sharp"][i, :, :h, :w]
        crc[row] = old_crc[i]
        row += 1
        if progress is not None:
            progress(row, total)
    return row


def _write_new_rows(units: List[Unit], row: int, done: int, blurry: Any, sharp: Any, crc: np.ndarray, total: int,
                    workers: int, sample_bytes: int, progress: Progress) -> None:
    """Decode the new samples (threads, in order) and write their rows and checksums from ``row`` on."""
    slot_h, slot_w = blurry.shape[1:3]
    for u, (b, s) in prefetch([u for u in units if u.old_index < 0], workers, sample_bytes):
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


def write_pack(output: Path, units: List[Unit], old: Any, old_info: Dict[str, Any], sources_attr: List[Dict[str, Any]],
               ssets: List[SampleSet], n_frames: int, dtype: np.dtype, psize: Optional[Tuple[int, int]],
               per_image: Optional[int], seed: int, compression: Optional[str], gzip_level: int, verify: bool,
               workers: int, progress: Progress) -> Dict[str, Any]:
    """Write the planned rows of ``units`` (an open ``old`` pack's first) to ``output``, atomically; returns
    :func:`pack_info` of the written pack."""
    import h5py

    rows = [(u, k) for u in units for k in range(len(u.boxes))]
    n_rows = len(rows)
    sizes = np.array([u.boxes[k][2:] for u, k in rows], np.int32).reshape(-1, 2)
    slot_h, slot_w, layout = _slots(sizes, compression)
    sample_bytes = n_frames * slot_h * slot_w * 3 * dtype.itemsize
    sharp_chunks = (1, 1 if sample_bytes > PER_FRAME_CHUNKS_ABOVE else n_frames, slot_h, slot_w, 3)
    filters = _filters(compression, gzip_level)
    options = {"compression": compression or "none", "gzip_level": gzip_level if compression == "gzip" else None,
               "patch": list(psize) if psize else None, "per_image": per_image, "seed": seed}
    crf, history = _records(sources_attr, old_info, old is not None, ssets, options)
    _warn_stale(output)
    total = len(units)
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
            row = _copy_old_rows(old, units, blurry, sharp, crc, total, progress) if old is not None else 0
            _write_new_rows(units, row, row, blurry, sharp, crc, total, workers, sample_bytes, progress)
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


def copy_chunks(src: Any, dst: Any, i: int, j: int) -> None:
    """Copy the stored (possibly compressed) chunks of sample i of ``src`` to sample j of ``dst``."""
    per_sample = [range(0, n, c) for n, c in zip(src.shape[1:], src.chunks[1:])]
    for offs in np.stack(np.meshgrid(*per_sample, indexing="ij"), -1).reshape(-1, len(per_sample)):
        offs = tuple(int(v) for v in offs)
        mask, data = src.id.read_direct_chunk((i, *offs))
        dst.id.write_direct_chunk((j, *offs), data, mask)


def prefetch(units: List[Unit], workers: int, sample_bytes: int) -> Iterator[Tuple[Unit, Tuple[np.ndarray, np.ndarray]]]:
    """Decode samples in threads, a bounded number ahead of the writer (:class:`blurtools.io.prefetch.Prefetch`,
    at most PREFETCH_BYTES of them), yielding (unit, arrays) in order; what has not started when the writer
    stops is cancelled."""
    ahead = max(1, min(2 * workers, PREFETCH_BYTES // max(1, 2 * sample_bytes)))
    stream = Prefetch(lambda u: (u, _load(u)), units, workers if len(units) > 1 else 1, ahead)
    try:
        yield from stream
    finally:
        stream.close()


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
