"""Processes: torchrun/DDP setup and the collectives training needs (the data order they rely on is
:mod:`blurtools.data.stream`).

Under ``torchrun --nproc-per-node K -m blurtools train ...`` the environment holds RANK, WORLD_SIZE and
LOCAL_RANK; :func:`setup` joins the process group (nccl on CUDA, each process on cuda:LOCAL_RANK; gloo on
the CPU). Without them it is one process and every collective here is a no-op.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

import torch
import torch.distributed as dist

from blurtools.errors import UsageError
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


def val_indices(n: int, limit: int, info: DistInfo) -> Sequence[int]:
    """This process's share of the first ``limit`` (0 = all) validation samples."""
    total = n if limit <= 0 else min(n, limit)
    return range(info.rank, total, info.world)
