"""Writing samples fast: PNG encoding in a thread pool, then the manifest line, through SampleSetWriter.

PNG encoding dominates the cost of blur synthesis (a 7-frame window writes 8 PNGs of 1280x720). Two things
make it cheap: the encoder here uses one PNG filter (Up) and a low zlib level (1 by default: about 9x faster
than Pillow's default level 6 for files ~10% larger), and zlib/numpy release the GIL, so a pool of threads
encodes several samples while the main thread decodes and blurs the next window.

The sample set's layout and the resume/shard bookkeeping are SampleSetWriter's (blurtools.io.sampleset):
this module only adds the pool. A sample's manifest line is appended after all its files exist, so an
interrupted run leaves only complete samples listed. The set folder and meta.json are created on the first
sample, so a run that fails before producing anything leaves nothing behind.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from blurtools.errors import BlurtoolsError
from blurtools.io.atomic import atomic_write_bytes
from blurtools.io.png16 import encode_png8, encode_png16
from blurtools.io.sampleset import SampleSetWriter, is_sample_set, sample_paths

log = logging.getLogger(__name__)


def to_bits(array: np.ndarray, bits: int) -> np.ndarray:
    """uint8/uint16 image array converted to ``bits`` (8 or 16) per sample, exactly where possible."""
    if bits == 8:
        if array.dtype == np.uint8:
            return array
        return ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if array.dtype == np.uint16:
        return array
    return array.astype(np.uint16) * 257


def write_png(path: Path, array: np.ndarray, compress_level: int = 1) -> None:
    """Write a uint8 or uint16 (H, W[, 3]) array as PNG atomically."""
    data = encode_png8(array, compress_level) if array.dtype == np.uint8 else encode_png16(array, compress_level)
    atomic_write_bytes(path, data)


class SampleWriterPool:
    """Writes samples of a set with PNG encoding in ``workers`` threads.

    Args:
        root: the set folder. tool, options, shard, bits: as for SampleSetWriter.
        workers: encoding threads. compress_level: zlib level 0..9 for the PNGs.
        max_pending: samples queued or being written at once (bounds memory).

    Use as a context manager; :meth:`close` waits for every queued sample and re-raises a write error.
    """

    def __init__(self, root: "str | Path", tool: str, options: Dict[str, Any],
                 shard: "Optional[Tuple[int, int]]" = None, bits: int = 8, workers: int = 2,
                 compress_level: int = 1, max_pending: Optional[int] = None):
        if bits not in (8, 16):
            raise BlurtoolsError(f"bit depth must be 8 or 16, got {bits}")
        if not 0 <= compress_level <= 9:
            raise BlurtoolsError(f"PNG compression level must be 0..9, got {compress_level}")
        self.root = Path(root)
        self.tool, self.options, self.shard, self.bits = tool, options, shard, bits
        self.compress_level = compress_level
        self._writer: Optional[SampleSetWriter] = None
        if is_sample_set(self.root):
            self._writer = self._open()
        elif self.root.exists() and (not self.root.is_dir() or any(self.root.iterdir())):
            raise BlurtoolsError(f"{self.root}: exists and is not a sample set; choose another output folder")
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="png")
        self._slots = threading.BoundedSemaphore(max_pending or 2 * max(1, workers))
        self._lock = threading.Lock()
        self._futures: List[Future] = []
        self._added: Set[str] = set()
        self.written = 0

    def _open(self) -> SampleSetWriter:
        return SampleSetWriter(self.root, self.tool, self.options, shard=self.shard, bits=self.bits)

    def is_done(self, sample_id: str) -> bool:
        """True when the set already lists this sample (a resumed run skips it)."""
        return sample_id in self._added or (self._writer is not None and self._writer.is_done(sample_id))

    @property
    def writer(self) -> SampleSetWriter:
        """The underlying SampleSetWriter, creating the set (meta.json) on first use."""
        if self._writer is None:
            self._writer = self._open()
        return self._writer

    def _raise_failed(self) -> None:
        done = [f for f in self._futures if f.done()]
        self._futures = [f for f in self._futures if not f.done()]
        for f in done:
            f.result()

    def add(self, sample_id: str, blurry: np.ndarray, sharp: Sequence[np.ndarray], source: str = "",
            start: int = 0, files: Optional[Dict[str, bytes]] = None, **extra: Any) -> None:
        """Queue one sample: ``blurry`` and ``sharp`` are uint8/uint16 (H, W, 3) arrays (converted to the
        set's bit depth); ``files`` are extra {relative path: bytes} written before the manifest line."""
        self._raise_failed()
        writer = self.writer
        self._slots.acquire()
        self._added.add(sample_id)
        try:
            fut = self._pool.submit(self._write, writer, sample_id, blurry, list(sharp), source, start, files or {}, extra)
        except BaseException:
            self._slots.release()
            raise
        self._futures.append(fut)

    def _write(self, writer: SampleSetWriter, sample_id: str, blurry: np.ndarray, sharp: List[np.ndarray],
               source: str, start: int, files: Dict[str, bytes], extra: Dict[str, Any]) -> None:
        try:
            blurry_rel, sharp_rel = sample_paths(sample_id, len(sharp))
            write_png(self.root / blurry_rel, to_bits(blurry, self.bits), self.compress_level)
            for rel, frame in zip(sharp_rel, sharp):
                write_png(self.root / rel, to_bits(frame, self.bits), self.compress_level)
            for rel, data in files.items():
                atomic_write_bytes(self.root / rel, data)
            writer.append_record(sample_id, blurry_rel, sharp_rel, source, start, **extra)  # once every file exists
            with self._lock:
                self.written += 1
        finally:
            self._slots.release()

    def write_shared(self, rel: str, data: bytes) -> None:
        """Write a file shared by every sample (e.g. ``psf/stack.npy``) atomically, creating the set."""
        self.writer
        atomic_write_bytes(self.root / rel, data)

    def close(self) -> None:
        """Wait for every queued sample; re-raise the first write error."""
        try:
            for f in self._futures:
                f.result()
        finally:
            self._futures = []
            self._pool.shutdown(wait=True)

    def __enter__(self) -> "SampleWriterPool":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            # Finish what is queued (each sample is complete or absent), then let the error through.
            try:
                self.close()
            except Exception as secondary:  # the original error is the one to report; keep this one in the log
                log.warning("while stopping after an error, a queued sample also failed: %s", secondary)
