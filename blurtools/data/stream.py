"""The step-indexed training batch stream: the data order as a pure function of (seed, step, rank).

:class:`StepBatches` item ``step`` is this process's batch at that global step. Global sample positions
``(step * world + rank) * batch + j`` walk a fresh permutation of the training set every epoch, so the
processes see disjoint shards of each global batch (what DistributedSampler does), and a resumed run picks
up the stream exactly where it stopped, whatever the number of loader workers.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from blurtools.data.augment import Augment, sample_rng
from blurtools.data.datasets import open_dataset
from blurtools.errors import BlurtoolsError

__all__ = ["open_training_data", "open_validation_data", "Preloaded", "StepBatches", "data_frames"]


def open_training_data(path: str, patch: int, augment: bool, seed: int, preload: bool) -> Any:
    """The training dataset: ``ds[i] -> (blurry (3, P, P), sharp (N, 3, P, P))`` cropped and augmented.

    Without ``preload`` the dataset itself reads just the crop (an HDF5 region, or a decoded PNG cut) with
    the draws of ``sample_rng(seed, epoch, index)``. With ``preload`` the whole images are decoded into
    memory once and :class:`StepBatches` cuts them with the very same draws, so both give the same batches.
    """
    aug = Augment() if augment else Augment.none()
    if preload:
        full = open_dataset(path, as_tuple=True)
        return Preloaded(full, aug, patch)
    return open_dataset(path, patch=patch, augment=aug, seed=seed, as_tuple=True)


def open_validation_data(path: str) -> Any:
    """Whole validation samples, ``ds[i] -> (blurry (3, H, W), sharp (N, 3, H, W))``."""
    return open_dataset(path, as_tuple=True)


class Preloaded:
    """A dataset decoded whole into memory (``--preload``); ``crop`` draws the sample's crop and augmentation."""

    def __init__(self, dataset: Any, augment: Any, patch: int):
        self.frames = getattr(dataset, "frames", None)
        self.path = getattr(dataset, "path", None)
        self.augment, self.patch = augment, int(patch)
        self.items = [_compact(*dataset[i]) for i in range(len(dataset))]

    def __len__(self) -> int:
        return len(self.items)

    def crop(self, index: int, seed: int, epoch: int) -> Tuple[torch.Tensor, torch.Tensor]:
        blurry, sharp = (_expand(t) for t in self.items[index])
        try:
            return self.augment(blurry, sharp, sample_rng(seed, epoch, index), patch=self.patch)
        except BlurtoolsError as exc:
            raise BlurtoolsError(f"{self.path}: sample {index}: {exc}") from None


def _compact(*images: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Keep 8-bit images as uint8 in memory (4x less than float32); others stay float32."""
    out = []
    for t in images:
        q = torch.round(t * 255.0)
        out.append(q.to(torch.uint8) if torch.equal(q / 255.0, t) else t)
    return tuple(out)


def _expand(t: torch.Tensor) -> torch.Tensor:
    """Back to float32 in [0, 1], bit-identical to what the dataset returned."""
    return t.to(torch.float32) / 255.0 if t.dtype == torch.uint8 else t


def _epoch_perm(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([int(seed) & 0xFFFFFFFFFFFFFFFF, 0x5EED, int(epoch)]).permutation(n)


class StepBatches(torch.utils.data.Dataset):
    """Item ``step`` = this process's training batch at global step ``step``.

    Args:
        dataset: from :func:`open_training_data` (crops and augments sample ``index`` of epoch ``e`` with
            ``sample_rng(seed, e, index)``).
        batch: samples per process. seed, rank, world: the stream is a function of these and the step only.

    Returns (per item): {"blurry": (B, 3, P, P), "sharp": (B, N, 3, P, P)} float32.

    Example:
        >>> loader = DataLoader(StepBatches(ds, 4, seed=0), batch_size=None, sampler=range(0, 100))
    """

    def __init__(self, dataset: Any, batch: int, seed: int = 0, rank: int = 0, world: int = 1):
        if len(dataset) == 0:
            raise BlurtoolsError("the training set holds no samples")
        self.dataset, self.batch = dataset, int(batch)
        self.seed, self.rank, self.world = int(seed), int(rank), int(world)
        self._perms: Dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return 1 << 62  # indexed by step; the sampler says which steps

    def positions(self, step: int) -> List[int]:
        """Global sample positions of this process's batch at ``step``."""
        first = (int(step) * self.world + self.rank) * self.batch
        return list(range(first, first + self.batch))

    def index_of(self, position: int) -> Tuple[int, int]:
        """(epoch, dataset index) of a global sample position."""
        n = len(self.dataset)
        epoch = position // n
        perm = self._perms.get(epoch)
        if perm is None:
            if len(self._perms) > 2:
                self._perms.clear()
            perm = self._perms[epoch] = _epoch_perm(self.seed, epoch, n)
        return epoch, int(perm[position % n])

    def sample(self, position: int) -> Tuple[torch.Tensor, torch.Tensor]:
        epoch, index = self.index_of(position)
        if isinstance(self.dataset, Preloaded):
            return self.dataset.crop(index, self.seed, epoch)
        self.dataset.set_epoch(epoch)
        return self.dataset[index]

    def __getitem__(self, step: int) -> Dict[str, torch.Tensor]:
        pairs = [self.sample(p) for p in self.positions(step)]
        return {"blurry": torch.stack([b for b, _ in pairs]).float().contiguous(),
                "sharp": torch.stack([s for _, s in pairs]).float().contiguous()}


def data_frames(dataset: Any, path: str, recipe_frames: Optional[int], model: str) -> int:
    """The number of sharp frames per sample, checked against the recipe's requirement."""
    frames = getattr(dataset, "frames", None)
    if frames is None:
        frames = int(dataset[0][1].shape[0])
    if recipe_frames is not None and int(frames) != int(recipe_frames):
        raise BlurtoolsError(f"{path}: samples hold {frames} sharp frames; model {model} trains on "
                             f"{recipe_frames} (make the data with {recipe_frames} frames per sample)")
    return int(frames)
