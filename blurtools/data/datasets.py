"""Torch datasets over an HDF5 pack and directly over a sample set.

Both return, per sample, ``{"blurry": (3, h, w), "sharp": (K, 3, h, w), "id": str, "index": int}`` float32
tensors in [0, 1] (or the (blurry, sharp) tuple with ``as_tuple=True``): the stored 8/16-bit values divided
by 255/65535 exactly as :func:`blurtools.io.images.read_image` does, so a pack and its sample set give
bit-identical tensors.

The HDF5 file is opened lazily in the process that reads it (and again after a fork), never in
``__init__``, so one dataset object is safe to hand to DataLoader workers and to every DDP rank. A crop
(``patch``) is read from HDF5 as that region only; sample sets must decode whole PNGs and crop after.

Randomness: sample ``index`` in epoch ``e`` draws everything (crop position, flips, noise) from
``sample_rng(seed, e, index)``; call :meth:`set_epoch` each epoch (as with DistributedSampler). Without
``augment`` a ``patch`` is the centred window (for validation).

Example:
    >>> ds = open_dataset("train.h5", patch=256, augment=Augment(noise_sigma=(0, 0.02)))
    >>> loader = DataLoader(ds, batch_size=8, shuffle=True, num_workers=2)
    >>> batch = next(iter(loader))       # batch["blurry"] (8, 3, 256, 256), batch["sharp"] (8, N, 3, 256, 256)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from blurtools.data.augment import Augment, PatchSpec, center_crop_box, patch_size, random_crop_box, sample_rng
from blurtools.data.h5layout import crc_of, open_h5, open_pack, read_ids
from blurtools.data.sources import probe, read_sample_arrays
from blurtools.errors import BlurtoolsError
from blurtools.io.sampleset import SampleSet, is_sample_set


def select_frames(total: int, frames: Optional[int]) -> Optional[List[int]]:
    """Indices of ``frames`` sharp frames spread evenly over ``total`` (both ends kept; 1 = the middle).

    None (or ``frames == total``) means all of them and returns None.
    """
    if frames is None or frames == total:
        return None
    if not 1 <= frames <= total:
        raise BlurtoolsError(f"frames={frames}: the data has {total} sharp frames per sample")
    if frames == 1:
        return [total // 2]
    return [int(v) for v in np.round(np.linspace(0, total - 1, frames))]


def to_float_chw(array: np.ndarray) -> torch.Tensor:
    """uint8/uint16 (..., H, W, C), any strides -> contiguous float32 tensor (..., C, H, W) in [0, 1].

    The float32 division of read_image, so results are bit-identical to it.
    """
    scale = np.float32(255.0 if array.dtype == np.uint8 else 65535.0)
    chw = np.ascontiguousarray(np.moveaxis(array, -1, -3))  # gathering the bytes first is the faster pass
    out = np.empty(chw.shape, np.float32)
    np.divide(chw, scale, out=out)
    return torch.from_numpy(out)


class _PairDataset(Dataset):
    """Shared sampling logic; subclasses set ``ids`` and provide _where(i), _size(i) and _read(i, box, frames)."""

    def __init__(self, frames: Optional[int], patch: PatchSpec, augment: Optional[Augment], seed: int,
                 as_tuple: bool, total_frames: int):
        if augment is not None and not isinstance(augment, Augment):
            raise BlurtoolsError(f"augment must be a blurtools.data.Augment, got {type(augment).__name__}")
        self.total_frames = total_frames
        self.frame_index = select_frames(total_frames, frames)
        self.frames = total_frames if self.frame_index is None else len(self.frame_index)
        self.patch = patch_size(patch)
        self.augment = augment
        self.seed = int(seed)
        self.epoch = 0
        self.as_tuple = as_tuple

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s random draws (call before creating the epoch's iterator)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.ids)

    def _where(self, index: int) -> str:
        """Where sample ``index`` lives, for error messages; each subclass names its file and sample."""
        raise NotImplementedError(f"{type(self).__name__} must say where sample {index} lives")

    def __getitem__(self, index: int) -> Any:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} samples")
        index = int(index) % n
        h, w = self._size(index)
        rng = sample_rng(self.seed, self.epoch, index)
        try:
            box = random_crop_box(rng, h, w, self.patch) if self.augment is not None else center_crop_box(h, w, self.patch)
        except BlurtoolsError as exc:
            raise BlurtoolsError(f"{self._where(index)}: {exc}") from None
        b, s = self._read(index, box, self.frame_index)
        plan = self.augment.draw(rng, box[2], box[3]) if self.augment is not None else None
        if plan is not None:
            b, s = plan.apply_joint_hwc(b, s)
        blurry, sharp = to_float_chw(b), to_float_chw(s)
        if plan is not None:
            blurry = plan.apply_input(blurry)
        if self.as_tuple:
            return blurry, sharp
        return {"blurry": blurry, "sharp": sharp, "id": self.ids[index], "index": index}


class H5Dataset(_PairDataset):
    """Samples of a ``blurtools-h5/1`` pack (written by pack-h5).

    Args:
        path: the .h5 pack.
        frames: sharp frames per sample to return (spread evenly, 1 = the middle one); None = all N.
        patch: crop size P or (H, W) read from disk as that region only; None = whole samples.
        augment: joint augmentation (random crop position, flips, rotations, time reversal, input noise);
            None = no augmentation, centred crops.
        seed: seed of every random draw (see :func:`blurtools.data.augment.sample_rng`).
        as_tuple: return (blurry, sharp) instead of the dict.
        check_crc: the first read of each sample in a process reads the whole sample (one HDF5 chunk, which
            a crop decodes whole anyway) and checks it against the pack's CRC-32 (/crc); later reads of the
            sample read just the crop.
    Raises:
        BlurtoolsError: naming the file when it is not a complete pack (another layout, truncated,
            unfinished) and, at read time, naming the sample whose data does not read back or fails its
            checksum.
    """

    def __init__(self, path: "str | Path", frames: Optional[int] = None, patch: PatchSpec = None,
                 augment: Optional[Augment] = None, seed: int = 0, as_tuple: bool = False, check_crc: bool = True):
        self.path = Path(path)
        with open_pack(self.path) as f:  # checked and closed again: workers open their own handles
            total = int(f.attrs["frames"])
            self.ids = read_ids(f)
            self.sizes = f["sizes"][()]
            self.crc = f["crc"][()] if check_crc else None
            self.bits = int(f.attrs.get("bits", 8))
            crf = f.attrs.get("crf")
            self.crf = crf.decode() if isinstance(crf, bytes) else (None if crf is None else str(crf))
        super().__init__(frames, patch, augment, seed, as_tuple, total)
        self._file: Any = None
        self._pid: Optional[int] = None
        self._checked: set = set()

    def _where(self, index: int) -> str:
        return f"{self.path}: sample {self.ids[index]}"

    def _size(self, index: int) -> Tuple[int, int]:
        h, w = self.sizes[index]
        return int(h), int(w)

    def _open(self) -> Any:
        if self._file is None or self._pid != os.getpid():
            # After a fork the inherited handle belongs to the parent: open our own.
            try:
                self._file = open_h5(self.path, "r")
            except OSError as exc:
                raise BlurtoolsError(f"{self.path}: cannot open ({str(exc).splitlines()[0]})") from None
            self._pid = os.getpid()
            self._blurry, self._sharp = self._file["blurry"], self._file["sharp"]
        return self._file

    def _read(self, index: int, box: Tuple[int, int, int, int], frames: Optional[Sequence[int]]) -> Tuple[np.ndarray, np.ndarray]:
        self._open()
        y, x, h, w = box
        fsel: Any = slice(None) if frames is None else list(frames)
        try:
            if self.crc is not None and index not in self._checked:
                b, s = self._read_checked(index)
                return b[y:y + h, x:x + w], s[fsel, y:y + h, x:x + w]
            b = self._blurry[index, y:y + h, x:x + w]
            s = self._sharp[index, fsel, y:y + h, x:x + w]
        except (OSError, ValueError, KeyError) as exc:
            raise BlurtoolsError(f"{self._where(index)} (index {index}): data does not read back, the file is "
                                 f"truncated or corrupt ({str(exc).splitlines()[0]})") from None
        return b, s

    def _read_checked(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        """The whole sample ([h, w, 3] and [N, h, w, 3]) after checking it against its CRC-32."""
        h, w = self._size(index)
        b, s = self._blurry[index, :h, :w], self._sharp[index, :, :h, :w]
        for name, data, stored in (("blurry", b, self.crc[index, 0]), ("sharp", s, self.crc[index, 1])):
            if crc_of(data) != int(stored):
                raise BlurtoolsError(f"{self._where(index)} (index {index}): {name} pixels fail their checksum "
                                     f"(corrupt data); pack-h5 --verify {self.path} checks the whole pack")
        self._checked.add(index)
        return b, s

    def close(self) -> None:
        """Close this process's handle (it reopens on the next read)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = self._pid = None

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        for key in ("_file", "_blurry", "_sharp"):
            state.pop(key, None)
        state["_file"] = state["_pid"] = None
        state["_checked"] = set()
        return state

    def __repr__(self) -> str:
        return f"H5Dataset({str(self.path)!r}, samples={len(self)}, frames={self.frames}, patch={self.patch})"


class SampleSetDataset(_PairDataset):
    """Samples of a sample-set folder, decoded from its PNGs on every read (no packing needed).

    Same arguments and output as :class:`H5Dataset`; slower, since PNGs are decoded whole.

    Raises:
        BlurtoolsError: naming the set and the sample for a missing or unreadable frame file, and for a
            corrupt manifest line (at construction).
    """

    def __init__(self, path: "str | Path", frames: Optional[int] = None, patch: PatchSpec = None,
                 augment: Optional[Augment] = None, seed: int = 0, as_tuple: bool = False):
        self.set = SampleSet(path)
        self.path = self.set.root
        if len(self.set) == 0:
            raise BlurtoolsError(f"{self.path}: the sample set holds no samples")
        self.ids = self.set.ids()
        super().__init__(frames, patch, augment, seed, as_tuple, int(self.set.frames))

    def _where(self, index: int) -> str:
        return f"{self.path}: sample {self.ids[index]}"

    def _size(self, index: int) -> Tuple[int, int]:
        sample = self.set[index]
        self.set.check_files(sample)
        try:
            h, w, _ = probe(sample.blurry)
        except BlurtoolsError as exc:
            raise BlurtoolsError(f"{self._where(index)}: {exc}") from None
        return h, w

    def _read(self, index: int, box: Tuple[int, int, int, int], frames: Optional[Sequence[int]]) -> Tuple[np.ndarray, np.ndarray]:
        return read_sample_arrays(self.set, self.set[index], frames=frames, box=box)

    def __repr__(self) -> str:
        return f"SampleSetDataset({str(self.path)!r}, samples={len(self)}, frames={self.frames}, patch={self.patch})"


def open_dataset(path: "str | Path", **kwargs: Any) -> "H5Dataset | SampleSetDataset":
    """The dataset for ``path``: :class:`H5Dataset` for a file, :class:`SampleSetDataset` for a set folder.

    Keyword arguments go to the dataset (frames, patch, augment, seed, as_tuple).

    Raises:
        BlurtoolsError: naming the path when it is missing, a folder that is not a sample set, or a file
            that is not a complete blurtools-h5/1 pack (another HDF5 layout, truncated, unfinished).
    """
    path = Path(path)
    if not path.exists():
        raise BlurtoolsError(f"{path}: no such file or folder")
    if path.is_dir():
        if not is_sample_set(path):
            raise BlurtoolsError(f"{path}: a folder that is not a sample set (no meta.json)")
        return SampleSetDataset(path, **kwargs)
    return H5Dataset(path, **kwargs)
