"""Processes and data order: torchrun/DDP setup, collectives, and the step-indexed batch stream.

Under ``torchrun --nproc-per-node K -m blurtools train ...`` the environment holds RANK, WORLD_SIZE and
LOCAL_RANK; :func:`setup` joins the process group (nccl on CUDA, each process on cuda:LOCAL_RANK; gloo on
the CPU). Without them it is one process and every collective here is a no-op.

The data order is a pure function of (seed, step, rank): :class:`StepBatches` item ``step`` is this
process's batch at that global step. Global sample positions ``(step * world + rank) * batch + j`` walk a
fresh permutation of the training set every epoch, so the processes see disjoint shards of each global batch
(what DistributedSampler does), and a resumed run picks up the stream exactly where it stopped, whatever the
number of loader workers.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.distributed as dist

from blurtools.errors import BlurtoolsError, UsageError
from blurtools.ops.device import resolve_device

log = logging.getLogger(__name__)


@dataclass
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: Optional[str] = None
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_rank() -> int:
    """RANK from the environment (0 outside torchrun): lets the CLI silence all but rank 0 early."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def setup(device_spec: str = "auto") -> DistInfo:
    """Resolve the device and, under torchrun, join the process group.

    Args:
        device_spec: ``auto|cpu|cuda|cuda:N``. Under torchrun a CUDA choice means cuda:LOCAL_RANK.
    """
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return DistInfo(device=resolve_device(device_spec))
    try:
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError):
        raise UsageError("WORLD_SIZE > 1 but RANK is not set; launch with torchrun") from None
    device = resolve_device(device_spec)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UsageError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA device(s)")
        if device.index not in (None, 0, local_rank):
            log.info("under torchrun each process uses cuda:LOCAL_RANK; --device %s ignored", device_spec)
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world,
                                timeout=datetime.timedelta(minutes=30))
        owns = True
    return DistInfo(rank=rank, world=world, local_rank=local_rank, device=device, backend=backend, owns_group=owns)


def teardown(info: DistInfo) -> None:
    """Leave the process group when :func:`setup` created it."""
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        if info.backend == "nccl":
            dist.barrier(device_ids=[info.local_rank])
        else:
            dist.barrier()


def all_reduce_sum(info: DistInfo, tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over processes in place (returns it); identity for one process."""
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def gather_objects(info: DistInfo, obj: Any) -> List[Any]:
    """Every process's ``obj`` (picklable), in rank order, on every process."""
    if not info.enabled:
        return [obj]
    out: List[Any] = [None] * info.world
    dist.all_gather_object(out, obj)
    return out


def sync_buffers(info: DistInfo, *modules: Any) -> None:
    """Copy rank 0's buffers (batch-norm statistics...) to every process, as DDP does before each forward.

    Each process updates running statistics with its own shard during its last forward; validating, saving
    and finishing use rank 0's, so every replica holds the same state.
    """
    if not info.enabled:
        return
    for module in modules:
        if module is None:
            continue
        for buf in module.buffers():
            dist.broadcast(buf.data, src=0)


def broadcast_object(info: DistInfo, obj: Any) -> Any:
    """Rank 0's ``obj`` on every process."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# ---------------------------------------------------------------- the step-indexed batch stream

def open_training_data(path: str, patch: int, augment: bool, seed: int, preload: bool) -> Any:
    """The training dataset: ``ds[i] -> (blurry (3, P, P), sharp (N, 3, P, P))`` cropped and augmented.

    Without ``preload`` the dataset itself reads just the crop (an HDF5 region, or a decoded PNG cut) with
    the draws of ``sample_rng(seed, epoch, index)``. With ``preload`` the whole images are decoded into
    memory once and :class:`StepBatches` cuts them with the very same draws, so both give the same batches.
    """
    from blurtools.data import Augment, open_dataset

    aug = Augment() if augment else Augment.none()
    if preload:
        full = open_dataset(path, as_tuple=True)
        return Preloaded(full, aug, patch)
    return open_dataset(path, patch=patch, augment=aug, seed=seed, as_tuple=True)


def open_validation_data(path: str) -> Any:
    """Whole validation samples, ``ds[i] -> (blurry (3, H, W), sharp (N, 3, H, W))``."""
    from blurtools.data import open_dataset

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
        from blurtools.data import sample_rng

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


def val_indices(n: int, limit: int, info: DistInfo) -> Sequence[int]:
    """This process's share of the first ``limit`` (0 = all) validation samples."""
    total = n if limit <= 0 else min(n, limit)
    return range(info.rank, total, info.world)


def center_crop(blurry: torch.Tensor, sharp: torch.Tensor, size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Centre square crop of side ``size`` (0 or larger than the image = the whole image, per side)."""
    h, w = blurry.shape[-2:]
    ch, cw = (h, w) if size <= 0 else (min(size, h), min(size, w))
    y, x = (h - ch) // 2, (w - cw) // 2
    return blurry[..., y:y + ch, x:x + cw], sharp[..., y:y + ch, x:x + cw]

