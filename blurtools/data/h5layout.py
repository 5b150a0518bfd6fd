"""The HDF5 pack layout ("blurtools-h5/1"): opening, checking, describing and verifying a pack.

```
/blurry  uint8|uint16 [S, H, W, 3]      sRGB-encoded values as stored in the PNGs; one chunk per sample
/sharp   uint8|uint16 [S, N, H, W, 3]   the N sharp frames in time order; one chunk per sample
/ids     utf-8 string [S]               sample ids (unique in the pack)
/sizes   int32 [S, 2]                   (h, w) of each sample: its pixels are [:h, :w]
/source  int32 [S]                      index of the sample's source set in attrs["sources"]
/origin  int32 [S, 2]                   (y, x) of the sample in its source image ((0, 0) unless patches)
/crc     uint32 [S, 2]                  CRC-32 of the blurry and the sharp pixels of [:h, :w] (--verify)
attrs:   format = "blurtools-h5/1", frames = N, bits = 8|16, layout = "fixed"|"padded", crf,
         sources (JSON list of {path, meta, samples}: each source set's meta.json), options (JSON, the
         pack options), history (JSON list of every pack/append run), tool, version,
         complete = 1 (written last: a file without it was never finished)
```

Sets of different image sizes are packed *padded*: H, W are the largest sizes, each sample occupies
[:h, :w] of its slot (zeros beyond) and /sizes says how much; readers never see the padding. Pack with
``--compression lzf`` to make the padding nearly free on disk, or cut fixed patches with ``--patch``.
Samples larger than 1 GiB get one chunk per frame (HDF5 chunks must stay under 4 GiB).
"""

from __future__ import annotations

import json
import logging
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from blurtools.errors import BlurtoolsError

log = logging.getLogger(__name__)

FORMAT = "blurtools-h5/1"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
REQUIRED = ("blurry", "sharp", "ids", "sizes", "source", "origin", "crc")


def _h5py():
    import h5py

    return h5py


def open_h5(path: "str | Path", mode: str = "r", **kwargs: Any):
    """h5py.File without HDF5's file locking for readers (fails on some network file systems; packs are
    never written in place, so readers need no lock)."""
    h5py = _h5py()
    if mode == "r":
        try:
            return h5py.File(path, mode, locking=False, **kwargs)
        except (TypeError, ValueError):  # an h5py/HDF5 without the locking switch
            pass
    return h5py.File(path, mode, **kwargs)


def is_hdf5(path: "str | Path") -> bool:
    """True when the file starts with an HDF5 superblock signature (at 0, 512, 1024, ...)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            offset = 0
            size = path.stat().st_size
            while offset + 8 <= size:
                f.seek(offset)
                if f.read(8) == HDF5_SIGNATURE:
                    return True
                offset = 512 if offset == 0 else offset * 2
    except OSError:
        return False
    return False


def crc_of(array: np.ndarray) -> int:
    """CRC-32 of an array's bytes in C order (what /crc stores)."""
    return zlib.crc32(np.ascontiguousarray(array).data) & 0xFFFFFFFF


def open_pack(path: "str | Path"):
    """Open a pack read-only after checking it is a complete blurtools-h5/1 file.

    Returns:
        an open h5py.File (the caller closes it).
    Raises:
        BlurtoolsError: naming the file when it is missing, not HDF5, truncated, of another layout,
            or an unfinished write.
    """
    path = Path(path)
    if not path.exists():
        raise BlurtoolsError(f"{path}: no such file")
    if path.is_dir():
        raise BlurtoolsError(f"{path}: is a folder, expected an HDF5 pack")
    if not is_hdf5(path):
        raise BlurtoolsError(f"{path}: not an HDF5 file")
    try:
        f = open_h5(path, "r")
    except OSError as exc:
        raise BlurtoolsError(f"{path}: truncated or corrupt HDF5 file ({_first_line(exc)})") from None
    try:
        check_pack(f, path)
    except BaseException:
        f.close()
        raise
    return f


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().split("\n")[0]


def check_pack(f: Any, path: "str | Path") -> None:
    """Raise BlurtoolsError when the open file is not a complete, consistent blurtools-h5/1 pack."""
    try:
        fmt = f.attrs.get("format")
        fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
        if fmt != FORMAT:
            found = "no format attribute" if fmt is None else f"format {fmt!r}"
            raise BlurtoolsError(f"{path}: an HDF5 file of another layout ({found}), not a {FORMAT} pack; make one with pack-h5")
        if not f.attrs.get("complete", 0):
            raise BlurtoolsError(f"{path}: an unfinished pack (the write was interrupted); pack it again")
        missing = [name for name in REQUIRED if name not in f]
        if missing:
            raise BlurtoolsError(f"{path}: pack lacks dataset(s) {', '.join('/' + m for m in missing)}")
        s = f["blurry"].shape[0]
        n = int(f.attrs["frames"])
        blurry, sharp = f["blurry"], f["sharp"]
        if blurry.ndim != 4 or blurry.shape[3] != 3 or sharp.ndim != 5 or sharp.shape[1] != n:
            raise BlurtoolsError(f"{path}: /blurry {blurry.shape} and /sharp {sharp.shape} do not match the layout "
                                 f"[S, H, W, 3] and [S, {n}, H, W, 3]")
        if sharp.shape[0] != s or sharp.shape[2:] != blurry.shape[1:]:
            raise BlurtoolsError(f"{path}: /blurry {blurry.shape} and /sharp {sharp.shape} disagree")
        for name in ("ids", "sizes", "source", "origin", "crc"):
            if f[name].shape[0] != s:
                raise BlurtoolsError(f"{path}: /{name} has {f[name].shape[0]} entries for {s} samples")
    except BlurtoolsError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise BlurtoolsError(f"{path}: truncated or corrupt HDF5 pack ({_first_line(exc)})") from None


def _json_attr(f: Any, name: str, default: Any) -> Any:
    raw = f.attrs.get(name)
    if raw is None:
        return default
    if isinstance(raw, bytes):
        raw = raw.decode()
    try:
        return json.loads(raw)
    except (TypeError, json.JSONDecodeError):
        return default


def read_ids(f: Any) -> List[str]:
    """The sample ids of an open pack, as str."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in f["ids"][()]]


def pack_info(path: "str | Path") -> Dict[str, Any]:
    """What a pack holds, as a JSON-ready dict.

    Keys: path, format, samples, frames, bits, dtype, layout, shape (H, W of the slots), sizes (min and
    max h, w over samples), compression, chunks, file_bytes, crf, sources (path, samples, tool, options),
    options, history, tool, version.

    Example:
        >>> pack_info("train.h5")["samples"]
        1200
    """
    path = Path(path)
    with open_pack(path) as f:
        blurry, sharp = f["blurry"], f["sharp"]
        sizes = f["sizes"][()]
        source = f["source"][()]
        sources = _json_attr(f, "sources", [])
        counts = np.bincount(source, minlength=len(sources)) if len(source) else np.zeros(len(sources), int)
        src_rows = []
        for k, src in enumerate(sources):
            meta = src.get("meta", {}) if isinstance(src, dict) else {}
            src_rows.append({"path": src.get("path", "?"), "samples": int(counts[k]) if k < len(counts) else 0,
                             "tool": meta.get("tool"), "version": meta.get("version"), "options": meta.get("options", {})})
        info = {
            "path": str(path),
            "format": FORMAT,
            "samples": int(blurry.shape[0]),
            "frames": int(f.attrs["frames"]),
            "bits": int(f.attrs.get("bits", 16 if blurry.dtype == np.uint16 else 8)),
            "dtype": str(blurry.dtype),
            "layout": str(f.attrs.get("layout", "fixed")),
            "shape": [int(blurry.shape[1]), int(blurry.shape[2])],
            "sizes": {"min": [int(v) for v in sizes.min(0)], "max": [int(v) for v in sizes.max(0)]} if len(sizes) else None,
            "compression": blurry.compression or "none",
            "chunks": {"blurry": list(blurry.chunks or ()), "sharp": list(sharp.chunks or ())},
            "file_bytes": path.stat().st_size,
            "crf": _str_attr(f, "crf"),
            "sources": src_rows,
            "options": _json_attr(f, "options", {}),
            "history": _json_attr(f, "history", []),
            "tool": _str_attr(f, "tool"),
            "version": _str_attr(f, "version"),
        }
    return info


def _str_attr(f: Any, name: str) -> Optional[str]:
    v = f.attrs.get(name)
    return v.decode() if isinstance(v, bytes) else (None if v is None else str(v))


def _expected_chunks(dset: Any) -> int:
    chunks = dset.chunks or dset.shape
    return int(np.prod([-(-s // c) for s, c in zip(dset.shape, chunks)]))


def verify_pack(path: "str | Path", progress: Optional[Callable[[int], None]] = None) -> Dict[str, Any]:
    """Read back every chunk of a pack and check every sample's CRC-32.

    Args:
        progress: called with 1 after each sample.
    Returns:
        {"path", "samples", "chunks", "ok": True}.
    Raises:
        BlurtoolsError: naming the file and the first failing sample (unreadable chunk, chunk never
            written, checksum mismatch, size out of range).
    """
    path = Path(path)
    with open_pack(path) as f:
        blurry, sharp = f["blurry"], f["sharp"]
        s = blurry.shape[0]
        ids = read_ids(f)
        if len(set(ids)) != len(ids):
            raise BlurtoolsError(f"{path}: duplicate sample ids in /ids")
        sizes, crc = f["sizes"][()], f["crc"][()]
        chunks = 0
        for dset in (blurry, sharp):
            expected = _expected_chunks(dset)
            try:
                stored = dset.id.get_num_chunks()
            except (AttributeError, RuntimeError):  # old HDF5: the CRCs below still catch missing data
                stored = expected
            if stored != expected:
                raise BlurtoolsError(f"{path}: /{dset.name.strip('/')} stores {stored} of its {expected} chunks (an incomplete write)")
            chunks += expected
        for i in range(s):
            h, w = (int(v) for v in sizes[i])
            if not (0 < h <= blurry.shape[1] and 0 < w <= blurry.shape[2]):
                raise BlurtoolsError(f"{path}: sample {ids[i]} (index {i}): size {h}x{w} outside the slots {blurry.shape[1]}x{blurry.shape[2]}")
            try:
                b = blurry[i, :h, :w]
                sh = sharp[i, :, :h, :w]
            except (OSError, ValueError) as exc:
                raise BlurtoolsError(f"{path}: sample {ids[i]} (index {i}): chunk does not read back ({_first_line(exc)})") from None
            if crc_of(b) != int(crc[i, 0]) or crc_of(sh) != int(crc[i, 1]):
                which = "blurry" if crc_of(b) != int(crc[i, 0]) else "sharp"
                raise BlurtoolsError(f"{path}: sample {ids[i]} (index {i}): {which} pixels fail their checksum (corrupt data)")
            if progress is not None:
                progress(1)
    return {"path": str(path), "samples": s, "chunks": chunks, "ok": True}
