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
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

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


def broadcast_object(info: DistInfo, obj: Any) -> Any:
    """Rank 0's ``obj`` on every process."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


# ---------------------------------------------------------------- the step-indexed batch stream

class Preloaded:
    """A dataset decoded once into memory (``--preload``): ``ds[i]`` returns the cached tensors."""

    def __init__(self, dataset: Any):
        self.frames = getattr(dataset, "frames", None)
        self.items = [dataset[i] for i in range(len(dataset))]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.items[i]


def _epoch_perm(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([int(seed) & 0xFFFFFFFFFFFFFFFF, 0x5EED, int(epoch)]).permutation(n)


class StepBatches(torch.utils.data.Dataset):
    """Item ``step`` = this process's training batch at global step ``step``.

    Args:
        dataset: ``len(ds)`` and ``ds[i] -> (blurry (3, H, W), sharp (N, 3, H, W))`` float in [0, 1].
        batch: samples per process. patch: square crop side.
        seed, rank, world: the stream is a function of these and the step only.
        augment: a :class:`blurtools.data.augment.Augment` (crop + joint transforms), or None for crops only.

    Returns (per item): {"blurry": (B, 3, P, P), "sharp": (B, N, 3, P, P)} float32.

    Example:
        >>> loader = DataLoader(StepBatches(ds, 4, 64, seed=0), batch_size=None, sampler=range(0, 100))
    """

    def __init__(self, dataset: Any, batch: int, patch: int, seed: int = 0, rank: int = 0, world: int = 1,
                 augment: Any = None):
        if len(dataset) == 0:
            raise BlurtoolsError("the training set holds no samples")
        self.dataset, self.batch, self.patch = dataset, int(batch), int(patch)
        self.seed, self.rank, self.world = int(seed), int(rank), int(world)
        self.augment = augment
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
        from blurtools.data.augment import Augment, sample_rng

        epoch, index = self.index_of(position)
        blurry, sharp = self.dataset[index]
        rng = sample_rng(self.seed, epoch, index)
        aug = self.augment if self.augment is not None else Augment.none()
        try:
            blurry, sharp = aug(blurry, sharp, rng, patch=self.patch)
        except BlurtoolsError as exc:
            raise BlurtoolsError(f"training sample {index}: {exc}; lower --patch") from None
        return blurry, sharp

    def __getitem__(self, step: int) -> Dict[str, torch.Tensor]:
        pairs = [self.sample(p) for p in self.positions(step)]
        return {"blurry": torch.stack([b for b, _ in pairs]).float().contiguous(),
                "sharp": torch.stack([s for _, s in pairs]).float().contiguous()}


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


def iterate_loader(loader: Any) -> Iterator[Dict[str, torch.Tensor]]:
    """The loader's batches (a separate function so the engine can close the iterator at will)."""
    yield from loader
