"""Matching predictions to ground truth for scoring.

PRED and GT are each a file or a folder. Folders are matched by relative path without the extension
(``a/b.png`` matches ``a/b.jpg``). GT may also be a sample set: then a prediction named ``ID.*`` (at any
depth) is matched to sample ``ID``; its ground truth is the middle sharp frame, or the whole sharp
sequence for video scoring. For video scoring each prediction is a folder of frames or a GIF/MP4/WebP.

With ``gt_sequences`` (``score --best-of-gt``) each prediction is an image and its ground truth a sequence
of frames: a sample set's sharp frames, or, in a GT folder, the frame folder (or video file) at the
prediction's relative path without extension (``pred/a/b.png`` -> ``gt/a/b/*.png``), as Köhler's benchmark
records one folder of sharp frames per blurry image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Union

from blurtools.errors import BlurtoolsError
from blurtools.io.arrays import IMAGE_EXTENSIONS
from blurtools.io.sampleset import SampleSet, is_sample_set
from blurtools.io.video import is_video_path, list_frame_files, natural_key

GtRef = Union[Path, List[Path]]


@dataclass
class Pair:
    """One thing to score: ``pred`` (image, frame folder or video file) against ``gt``.

    ``gt`` is an image path, a list of frame paths (time order), or a frame folder / video file.
    """

    key: str
    pred: Path
    gt: GtRef


@dataclass
class Matching:
    pairs: List[Pair]
    unmatched_pred: List[str] = field(default_factory=list)
    unmatched_gt: List[str] = field(default_factory=list)


def _key(rel: Path) -> str:
    return rel.with_suffix("").as_posix()


def _image_files(root: Path) -> Dict[str, Path]:
    files: Dict[str, Path] = {}
    for p in sorted(root.rglob("*"), key=lambda q: natural_key(q.as_posix())):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."):
            key = _key(p.relative_to(root))
            if key in files:
                raise BlurtoolsError(f"{root}: two files share the name {key} with different extensions ({files[key].name}, {p.name})")
            files[key] = p
    return files


def _sequences(root: Path) -> Dict[str, Path]:
    """Video predictions/ground truths under ``root``: video files and folders that directly hold frames."""
    seqs: Dict[str, Path] = {}
    for p in sorted(root.rglob("*")):
        if p.name.startswith("."):
            continue
        if p.is_file() and (is_video_path(p) or p.suffix.lower() == ".webp"):
            seqs[_key(p.relative_to(root))] = p
        elif p.is_dir() and list_frame_files(p):
            seqs[p.relative_to(root).as_posix()] = p
    return seqs


def _check_exists(path: Path, what: str) -> None:
    if not path.exists():
        raise BlurtoolsError(f"{path}: no such file or folder ({what})")


def match(pred: "str | Path", gt: "str | Path", video: bool = False, gt_sequences: bool = False) -> Matching:
    """Pair predictions with their ground truth.

    ``video``: predictions and ground truths are sequences. ``gt_sequences``: predictions are images and
    each ground truth is a sequence (a list of frame paths, a frame folder or a video file).

    Raises:
        BlurtoolsError: a missing path, an empty folder, or nothing that matches.
    """
    pred, gt = Path(pred), Path(gt)
    _check_exists(pred, "predictions")
    _check_exists(gt, "ground truth")
    if gt.is_dir() and is_sample_set(gt):
        return _match_sample_set(pred, SampleSet(gt), video, gt_sequences)
    if video:
        return _match_sequences(pred, gt)
    if gt_sequences:
        return _match_image_to_sequences(pred, gt)
    if pred.is_file() and gt.is_file():
        return Matching([Pair(pred.stem, pred, gt)])
    if pred.is_file() or gt.is_file():
        raise BlurtoolsError(f"{pred if pred.is_file() else gt}: a single file can only be scored against a single file "
                             "(or a sample set); give two files or two folders")
    preds, gts = _image_files(pred), _image_files(gt)
    if not preds:
        raise BlurtoolsError(f"{pred}: no images in this folder")
    if not gts:
        raise BlurtoolsError(f"{gt}: no images in this folder")
    pairs = [Pair(k, preds[k], gts[k]) for k in preds if k in gts]
    return Matching(pairs, [k for k in preds if k not in gts], [k for k in gts if k not in preds])


def _is_sequence(path: Path) -> bool:
    return (path.is_file() and (is_video_path(path) or path.suffix.lower() == ".webp")) or \
        (path.is_dir() and bool(list_frame_files(path)))


def _match_image_to_sequences(pred: Path, gt: Path) -> Matching:
    if pred.is_file():
        if not _is_sequence(gt):
            raise BlurtoolsError(f"{gt}: expected a folder of ground-truth frames (or a video) for the single "
                                 f"prediction {pred} (--best-of-gt)")
        return Matching([Pair(pred.stem, pred, gt)])
    preds, gts = _image_files(pred), _sequences(gt)
    if not preds:
        raise BlurtoolsError(f"{pred}: no images in this folder")
    if not gts:
        raise BlurtoolsError(f"{gt}: no frame folders or videos in this folder (--best-of-gt needs a sequence of "
                             "ground-truth frames per prediction: GT/NAME/*.png for PRED/NAME.png)")
    pairs = [Pair(k, preds[k], gts[k]) for k in preds if k in gts]
    return Matching(pairs, [k for k in preds if k not in gts], [k for k in gts if k not in preds])


def _match_sample_set(pred: Path, sset: SampleSet, video: bool, gt_sequences: bool = False) -> Matching:
    by_id = {s.id: s for s in sset.samples}
    if not by_id:
        raise BlurtoolsError(f"{sset.root}: the sample set holds no samples")
    if video:
        if pred.is_file() or (pred.is_dir() and list_frame_files(pred) and not _sequences(pred)):
            candidates = {pred.stem if pred.is_file() else pred.name: pred}
        else:
            candidates = _sequences(pred)
    else:
        candidates = {pred.stem: pred} if pred.is_file() else _image_files(pred)
    if not candidates:
        raise BlurtoolsError(f"{pred}: no {'sequences' if video else 'images'} to score")
    pairs, unmatched = [], []
    seen = set()
    for key, path in candidates.items():
        sid = Path(key).name
        sample = by_id.get(sid)
        if sample is None:
            unmatched.append(key)
            continue
        seen.add(sid)
        pairs.append(Pair(sid, path, list(sample.sharp) if video or gt_sequences else sample.middle))
    return Matching(pairs, unmatched, [s for s in by_id if s not in seen])


def _match_sequences(pred: Path, gt: Path) -> Matching:
    if pred.is_file() or (pred.is_dir() and list_frame_files(pred)):
        if not (gt.is_file() or (gt.is_dir() and list_frame_files(gt))):
            raise BlurtoolsError(f"{gt}: expected a frame folder or video file to match the single sequence {pred}")
        return Matching([Pair(pred.stem if pred.is_file() else pred.name, pred, gt)])
    preds, gts = _sequences(pred), _sequences(gt)
    if not preds:
        raise BlurtoolsError(f"{pred}: no frame folders or videos in this folder")
    if not gts:
        raise BlurtoolsError(f"{gt}: no frame folders or videos in this folder")
    pairs = [Pair(k, preds[k], gts[k]) for k in preds if k in gts]
    return Matching(pairs, [k for k in preds if k not in gts], [k for k in gts if k not in preds])
