"""DistributedDataParallel plumbing for training under ``torchrun``; every helper is a no-op in a single process."""
from __future__ import annotations

import os

import torch
from torch import nn


def join_process_group(device: torch.device) -> tuple[int, int, torch.device]:
    """(rank, world size, this process's device): join the group when started by torchrun, else (0, 1, device)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1, device
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return dist.get_rank(), dist.get_world_size(), device


def wrap(module: nn.Module | None, device: torch.device) -> nn.Module | None:
    """``module`` in DistributedDataParallel (gradients averaged over the processes at each backward)."""
    if module is None:
        return None
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def rank0_decides(flag: bool, device: torch.device, world_size: int) -> bool:
    """Rank 0's ``flag`` on every process, so that all stop (or go on) at the same step."""
    if world_size <= 1:
        return flag
    value = torch.tensor(float(flag), device=device)
    torch.distributed.broadcast(value, src=0)
    return bool(value)


def leave_process_group(world_size: int) -> None:
    """Wait for every process (rank 0's last checkpoint is on disk), then leave the group."""
    if world_size > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
