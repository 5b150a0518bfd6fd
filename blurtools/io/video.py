"""Streaming frames in and out: video files (mp4, mov, avi, mkv, gif, webp) and frame folders.

Frames are uint8 numpy arrays (H, W, 3) yielded one at a time, so a video is never held whole in memory.
Frame folders are read in natural numeric order (``2.png`` before ``10.png``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence

import numpy as np

from blurtools.errors import BlurtoolsError
from blurtools.io.atomic import atomic_path, atomic_write_bytes
from blurtools.io.arrays import IMAGE_EXTENSIONS, read_array

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".gif")


def natural_key(text: str) -> list:
    """Sort key that orders embedded numbers by value: ``frame2`` < ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def is_video_path(path: "str | Path") -> bool:
    """True when the path names a video file blurtools can stream."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def list_frame_files(folder: "str | Path") -> List[Path]:
    """Image files directly inside ``folder``, in natural numeric order."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")]
    return sorted(files, key=lambda p: natural_key(p.name))


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a frame source before decoding it: size, frame rate and frame count (if known)."""

    width: int
    height: int
    fps: Optional[float]
    frames: Optional[int]


def _to_rgb8(array: np.ndarray, where: str) -> np.ndarray:
    a = np.asarray(array)
    if a.dtype == np.uint16:
        a = (a.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float32), 0, 1) * 255).round().astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.shape[2] == 2:
        a = np.repeat(a[:, :, :1], 3, axis=2)
    if a.shape[2] == 4:
        a = a[:, :, :3]
    if a.ndim != 3 or a.shape[2] != 3:
        raise BlurtoolsError(f"{where}: unsupported frame shape {a.shape}")
    return np.ascontiguousarray(a)


def video_info(path: "str | Path") -> VideoInfo:
    """Size, fps and frame count of a video file or frame folder, without decoding every frame."""
    path = Path(path)
    if path.is_dir():
        files = list_frame_files(path)
        if not files:
            raise BlurtoolsError(f"{path}: no image frames in this folder")
        h, w = read_array(files[0]).shape[:2]
        return VideoInfo(w, h, None, len(files))
    if not path.exists():
        raise BlurtoolsError(f"{path}: no such file")
    if path.suffix.lower() == ".gif":
        first = next(iter_frames(path), None)
        if first is None:
            raise BlurtoolsError(f"{path}: the GIF has no frames")
        return VideoInfo(first.shape[1], first.shape[0], None, None)
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path))
    try:
        meta = next(gen)
    except (RuntimeError, OSError, StopIteration) as exc:
        raise BlurtoolsError(f"{path}: cannot read as a video ({str(exc).splitlines()[0] if str(exc) else 'no stream'})") from None
    finally:
        gen.close()
    w, h = meta["size"]
    fps = meta.get("fps")
    n = None
    if meta.get("duration") and fps:
        n = int(round(meta["duration"] * fps))
    return VideoInfo(int(w), int(h), float(fps) if fps else None, n)


def iter_frames(path: "str | Path") -> Iterator[np.ndarray]:
    """Yield the frames of a video file or frame folder as uint8 (H, W, 3), in order, one at a time.

    Raises:
        BlurtoolsError: unreadable video, empty folder, or a frame whose size differs from the first
            (naming the frame).
    """
    path = Path(path)
    if path.is_dir():
        files = list_frame_files(path)
        if not files:
            raise BlurtoolsError(f"{path}: no image frames in this folder")
        shape = None
        for f in files:
            frame = _to_rgb8(read_array(f), str(f))
            if shape is None:
                shape = frame.shape
            elif frame.shape != shape:
                raise BlurtoolsError(f"{f}: frame size {frame.shape[1]}x{frame.shape[0]} differs from the first frame's {shape[1]}x{shape[0]} in {path}")
            yield frame
        return
    if not path.exists():
        raise BlurtoolsError(f"{path}: no such file")
    if path.suffix.lower() in (".gif", ".webp"):
        import imageio.v3 as iio

        try:
            for frame in iio.imiter(path):
                yield _to_rgb8(frame, str(path))
        except BlurtoolsError:
            raise
        except Exception as exc:
            raise BlurtoolsError(f"{path}: cannot read frames ({type(exc).__name__})") from None
        return
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        meta = next(gen)
    except (RuntimeError, OSError, StopIteration) as exc:
        gen.close()
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else "no video stream"
        raise BlurtoolsError(f"{path}: cannot read as a video ({msg})") from None
    w, h = meta["size"]
    try:
        for buf in gen:
            yield np.frombuffer(buf, np.uint8).reshape(h, w, 3)
    except RuntimeError as exc:
        raise BlurtoolsError(f"{path}: video decoding failed ({str(exc).strip().splitlines()[-1]})") from None
    finally:
        gen.close()


def _xmp_description(text: str) -> bytes:
    """An XMP packet carrying ``text`` as dc:description (how WebP files hold a comment)."""
    esc = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:description>'
            f'{esc}</dc:description></rdf:Description></rdf:RDF></x:xmpmeta>').encode()


def write_gif(path: "str | Path", frames: Sequence[np.ndarray], fps: float = 10.0, loop: int = 0,
              comment: Optional[str] = None) -> None:
    """Write uint8 (H, W, 3) frames as an animated GIF atomically, every frame kept (identical ones too).

    ``loop``: how many times the animation plays, 0 = forever. ``comment`` is stored in the GIF.
    """
    from blurtools.io.animation import gif_bytes

    frames = [_to_rgb8(f, str(path)) for f in frames]
    if not frames:
        raise BlurtoolsError(f"{path}: no frames to write")
    atomic_write_bytes(path, gif_bytes(frames, fps, loop=loop, comment=comment))


def write_webp(path: "str | Path", frames: Sequence[np.ndarray], fps: float = 10.0, loop: int = 0,
               comment: Optional[str] = None) -> None:
    """Write a lossless animated WebP atomically, every frame kept (``loop`` 0 = forever; ``comment`` as XMP)."""
    from blurtools.io.animation import webp_bytes

    frames = [_to_rgb8(f, str(path)) for f in frames]
    if not frames:
        raise BlurtoolsError(f"{path}: no frames to write")
    atomic_write_bytes(path, webp_bytes(frames, fps, loop=loop, xmp=_xmp_description(comment) if comment else None))


def write_mp4(path: "str | Path", frames: Iterable[np.ndarray], fps: float = 10.0, quality: int = 8,
              comment: Optional[str] = None) -> None:
    """Encode frames as H.264 MP4 (yuv420p; yuv444p for odd sizes) atomically; ``comment`` as metadata."""
    import imageio_ffmpeg

    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise BlurtoolsError(f"{path}: no frames to write")
    first = _to_rgb8(first, str(path))
    h, w = first.shape[:2]
    params = ["-metadata", f"comment={comment}"] if comment else None
    with atomic_path(path, suffix=".mp4") as tmp:
        writer = imageio_ffmpeg.write_frames(str(tmp), (w, h), fps=fps, quality=quality, macro_block_size=1,
                                             pix_fmt_out="yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p",
                                             output_params=params, ffmpeg_log_level="error")
        writer.send(None)
        writer.send(first)
        for frame in it:
            writer.send(_to_rgb8(frame, str(path)))
        writer.close()
