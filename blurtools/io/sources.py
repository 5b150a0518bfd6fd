"""Frame-sequence discovery and windowing: where blur-synth and phase-code get their sharp frames.

A *source* is one sequence of frames (a video file, a folder of frames) or one still photo. Paths given by
a user are expanded into sources:

- a video file (mp4, mov, avi, mkv, webm, gif, ...) -> one ``video`` source;
- an image file -> one ``still`` source (moved along a camera-shake trajectory by the synthesis);
- a folder holding image files -> one ``folder`` source (a frame sequence in natural order), or one
  ``still`` source per image with ``stills=True``;
- a folder with a ``sharp/`` subfolder of frames (GoPro_Large ``GOPRxxxx_yy_zz/{blur,sharp}``) -> the
  ``sharp/`` frames;
- any other folder (GoPro_Large_all, REDS ``train_orig/``, a folder of videos) -> searched recursively,
  in natural order.

Every source gets a unique, deterministic ``name`` used as the stem of sample ids (``<name>_<start:06d>``):
the file stem or folder name of the given path, with the path below it joined by ``-`` for sources found
inside a tree (``train_orig-000``, ``GOPRO_Large_all-GOPR0372_07_00``).

Windows are streamed: :func:`iter_windows` keeps only the current window's frames (plus a few decoded
ahead by a background thread), so memory does not grow with the video's length.
"""

from __future__ import annotations

import collections
import logging
import queue
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Deque, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from blurtools.errors import BlurtoolsError, UsageError
from blurtools.io.arrays import is_image_path, read_array
from blurtools.io.video import is_video_path, iter_frames, list_frame_files, natural_key

log = logging.getLogger(__name__)

_NAME_OK = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class FrameSource:
    """One frame sequence (``video``/``folder``) or one still photo (``still``).

    Attributes:
        name: unique id stem for this source's samples.
        path: the video file, the frame folder or the image file.
        kind: ``video``, ``folder`` or ``still``.
        files: the frame files of a ``folder`` source, in order (empty otherwise).
    """

    name: str
    path: Path
    kind: str
    files: Tuple[Path, ...] = ()


@dataclass
class Window:
    """N consecutive frames of a source: ``frames`` are uint8 or uint16 arrays (H, W, 3), time order."""

    source: FrameSource
    start: int
    frames: List[np.ndarray]


@dataclass
class WindowReport:
    """What :func:`iter_windows` saw of one source; filled in as the stream is consumed."""

    frames: int = 0
    windows: int = 0
    tail: int = 0          # trailing frames that did not fill a window
    too_short: bool = False
    notes: List[str] = field(default_factory=list)


def _clean(text: str) -> str:
    return _NAME_OK.sub("_", text).strip("_") or "source"


def _frame_files(folder: Path) -> List[Path]:
    try:
        return list_frame_files(folder)
    except OSError as exc:
        raise BlurtoolsError(f"{folder}: cannot list the folder ({exc.strerror})") from None


def _subdirs(folder: Path) -> List[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: natural_key(p.name))


def _walk(path: Path, parts: List[str], stills: bool, out: List[FrameSource]) -> None:
    """Append the sources found at ``path`` (a file or folder) to ``out``; ``parts`` name it."""
    name = _clean("-".join(parts))
    if path.is_file():
        if is_video_path(path):
            out.append(FrameSource(name, path, "video"))
        elif is_image_path(path):
            out.append(FrameSource(name, path, "still"))
        elif len(parts) == 1:
            raise BlurtoolsError(f"{path}: neither a video nor an image file")
        return
    sharp = path / "sharp"
    if sharp.is_dir() and _frame_files(sharp):  # GoPro_Large layout: GOPRxxxx_yy_zz/{blur,blur_gamma,sharp}
        out.append(FrameSource(name, sharp, "folder", tuple(_frame_files(sharp))))
        return
    files = _frame_files(path)
    if files:
        if stills:
            out.extend(FrameSource(_clean(f"{name}-{f.stem}"), f, "still") for f in files)
        else:
            out.append(FrameSource(name, path, "folder", tuple(files)))
        return
    for child in sorted((p for p in path.iterdir() if p.is_file() and is_video_path(p) and not p.name.startswith(".")),
                        key=lambda p: natural_key(p.name)):
        out.append(FrameSource(_clean("-".join(parts + [child.stem])), child, "video"))
    for sub in _subdirs(path):
        _walk(sub, parts + [sub.name], stills, out)


def discover_sources(paths: Sequence["str | Path"], stills: bool = False) -> List[FrameSource]:
    """Expand user paths into frame sources (see the module docstring for the rules).

    Args:
        paths: video files, image files, frame folders or dataset trees.
        stills: treat the images of a folder as independent still photos, not as a frame sequence.
    Returns:
        Sources in a deterministic order (arguments in the given order, trees in natural order).
    Raises:
        BlurtoolsError: a missing path, a file that is neither video nor image, a tree with no frames.
        UsageError: two sources that would get the same name (rename one, or pass their parent folder).

    Example:
        >>> discover_sources(["GOPRO_Large_all"])     # doctest: +SKIP
        [FrameSource(name='GOPRO_Large_all-GOPR0372_07_00', kind='folder', ...), ...]
    """
    if not paths:
        raise UsageError("no sources given")
    out: List[FrameSource] = []
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise BlurtoolsError(f"{path}: no such file or folder")
        found: List[FrameSource] = []
        _walk(path, [path.stem if path.is_file() else (path.resolve().name or "root")], stills, found)
        if not found:
            raise BlurtoolsError(f"{path}: no videos, frame folders or images found here")
        out.extend(found)
    seen = {}
    for s in out:
        if s.name in seen:
            raise UsageError(f"two sources would both be named {s.name!r} ({seen[s.name]} and {s.path}); "
                             "sample ids must be unique: rename one or pass their common parent folder")
        seen[s.name] = s.path
    return out


def _header_size(path: Path) -> Tuple[int, int]:
    """(H, W) from the file header (cheap: no pixel decoding)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
        return h, w
    except Exception:
        a = read_array(path)  # raises a BlurtoolsError naming the file
        return a.shape[0], a.shape[1]


def probe_source(source: FrameSource) -> Tuple[int, int, Optional[int]]:
    """Check a source can be read before any output is written; return (H, W, frame count or None).

    Folders: every frame's header is read and all sizes must agree. Videos: the stream is opened and its
    first frame decoded (a zero-frame or unreadable video fails here). Stills: the image is decoded.

    Raises:
        BlurtoolsError: naming the file and the problem.
    """
    if source.kind == "folder":
        h, w = _header_size(source.files[0])
        for f in source.files[1:]:
            fh, fw = _header_size(f)
            if (fh, fw) != (h, w):
                raise BlurtoolsError(f"{f}: frame size {fw}x{fh} differs from {source.files[0].name}'s {w}x{h} "
                                     f"in {source.path}; a frame folder must hold frames of one size")
        return h, w, len(source.files)
    if source.kind == "still":
        a = read_array(source.path)
        return a.shape[0], a.shape[1], 1
    from blurtools.io.video import video_info

    info = video_info(source.path)
    frames = iter_frames(source.path)
    try:
        first = next(frames, None)
    finally:
        frames.close()
    if first is None:
        raise BlurtoolsError(f"{source.path}: the video has no frames")
    return first.shape[0], first.shape[1], info.frames


def as_rgb(array: np.ndarray, where: str) -> np.ndarray:
    """uint8/uint16 (H, W, 3) from any decoded frame: gray repeated, alpha dropped, floats to uint16."""
    a = np.asarray(array)
    if a.dtype not in (np.uint8, np.uint16):
        if np.issubdtype(a.dtype, np.floating):
            a = (np.clip(a, 0, 1) * 65535.0).round().astype(np.uint16)
        elif a.dtype == bool:
            a = a.astype(np.uint8) * 255
        else:
            a = np.clip(a, 0, 65535).astype(np.uint16)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise BlurtoolsError(f"{where}: unsupported frame shape {a.shape}")
    if a.shape[2] in (2, 4):
        a = a[:, :, :-1]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a)


def read_frame(path: Path) -> np.ndarray:
    """One frame file as uint8/uint16 (H, W, 3), keeping a 16-bit file's precision."""
    return as_rgb(read_array(path), str(path))


class _Prefetch:
    """Run an iterator in a daemon thread, ``depth`` items ahead; errors re-raise in the consumer.

    Decoding (ffmpeg pipe reads, PNG inflate) releases the GIL, so it overlaps the consumer's work.
    """

    _END = object()

    def __init__(self, make: Callable[[], Iterator], depth: int):
        self._q: "queue.Queue" = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(make,), daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, make: Callable[[], Iterator]) -> None:
        it = None
        try:
            it = make()
            for item in it:
                if not self._put(item):
                    break
            self._put(self._END)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator:
        try:
            while True:
                item = self._q.get()
                if item is self._END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def close(self) -> None:
        self._stop.set()


def window_starts(total: int, n: int, stride: int) -> range:
    """Start indices of the windows of ``n`` frames every ``stride`` frames in a sequence of ``total``."""
    return range(0, max(0, total - n + 1), stride)


def iter_windows(source: FrameSource, n: int, stride: int, wanted: Optional[Callable[[int], bool]] = None,
                 report: Optional[WindowReport] = None, prefetch: int = 8) -> Iterator[Window]:
    """Stream the windows of ``n`` frames, every ``stride`` frames, of a video or folder source.

    Only the current window is held (a deque of ``n`` frames). Frames of a folder that belong to no
    wanted window are never read; a video is decoded in order in a background thread.

    Args:
        source: a ``video`` or ``folder`` source.
        n: frames per window (>= 1). stride: frames between window starts (>= 1).
        wanted: ``wanted(start)`` False skips building that window (finished or another shard's).
        report: filled with the frame count, windows and the trailing frames that fill no window.
    Yields:
        :class:`Window` objects in order of ``start``.
    Raises:
        BlurtoolsError: unreadable frames, or a frame whose size differs from the first.
    """
    if n < 1 or stride < 1:
        raise UsageError(f"window {n} and stride {stride} must be >= 1")
    if source.kind == "still":
        raise BlurtoolsError(f"{source.path}: a still photo has no frame windows")
    report = report if report is not None else WindowReport()
    want = wanted or (lambda s: True)
    if source.kind == "folder":
        files = source.files
        report.frames = len(files)
        starts = list(window_starts(len(files), n, stride))
        chosen = [s for s in starts if want(s)]
        needed = sorted({i for s in chosen for i in range(s, s + n)})
        cache: "collections.OrderedDict[int, np.ndarray]" = collections.OrderedDict()
        shape = None
        frames_it = iter(_Prefetch(lambda: ((i, read_frame(files[i])) for i in needed), prefetch))
        for s in chosen:
            for old in [k for k in cache if k < s]:
                del cache[old]
            while len(cache) == 0 or next(reversed(cache)) < s + n - 1:
                i, frame = next(frames_it)
                if shape is None:
                    shape = frame.shape
                elif frame.shape != shape:
                    raise BlurtoolsError(f"{files[i]}: frame size {frame.shape[1]}x{frame.shape[0]} differs from the "
                                         f"first frame's {shape[1]}x{shape[0]} in {source.path}")
                cache[i] = frame
            report.windows += 1
            yield Window(source, s, [cache[i] for i in range(s, s + n)])
        _finish(report, source, len(files), starts, n)
        return
    buf: Deque[np.ndarray] = collections.deque(maxlen=n)
    index = -1
    starts_seen: List[int] = []
    shape = None
    for index, frame in enumerate(_Prefetch(lambda: iter_frames(source.path), prefetch)):
        if shape is None:
            shape = frame.shape
        elif frame.shape != shape:
            raise BlurtoolsError(f"{source.path}: frame {index} has size {frame.shape[1]}x{frame.shape[0]}, "
                                 f"the first frame {shape[1]}x{shape[0]}")
        buf.append(frame)
        start = index - n + 1
        if start >= 0 and start % stride == 0:
            starts_seen.append(start)
            if want(start):
                report.windows += 1
                yield Window(source, start, list(buf))
    total = index + 1
    report.frames = total
    if total == 0:
        raise BlurtoolsError(f"{source.path}: the video has no frames")
    _finish(report, source, total, starts_seen, n)


def _finish(report: WindowReport, source: FrameSource, total: int, starts: Sequence[int], n: int) -> None:
    if not starts:
        report.too_short = True
        report.tail = total
        report.notes.append(f"{source.path}: {total} frame(s), fewer than the window of {n}; skipped")
        return
    report.tail = total - (starts[-1] + n)
    if report.tail > 0:
        report.notes.append(f"{source.path}: the last {report.tail} frame(s) do not fill a window of {n}; skipped")
