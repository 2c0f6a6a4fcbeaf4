"""Data-parallel training with ``torch.distributed`` (DDP), launched by ``torchrun``.

``torchrun`` sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init_from_env` reads them and joins the process group (NCCL on CUDA, gloo on CPU).
Without them everything here is a no-op for a single process.

Launch lines (see docs/training.md)::

    # one machine, 4 GPUs
    torchrun --standalone --nproc-per-node 4 -m ferlib train --model ma-net --dataset rafdb \
        --root /data/RAF-DB --profile full
    # two machines with 8 GPUs each (run on both; node-rank 0 and 1)
    torchrun --nnodes 2 --node-rank 0 --nproc-per-node 8 --rdzv-backend c10d \
        --rdzv-endpoint host0:29500 -m ferlib train --model ma-net --dataset rafdb --root /data/RAF-DB --profile full
    # CPU check with two processes
    torchrun --standalone --nproc-per-node 2 -m ferlib train --model ma-net --profile smoke --device cpu
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_CONTEXT = DistContext()


def current_context() -> DistContext:
    return _CONTEXT


def init_from_env(device: str = "auto") -> DistContext:
    """Join the process group described by torchrun's environment (idempotent)."""
    global _CONTEXT
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        _CONTEXT = DistContext()
        return _CONTEXT
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    _CONTEXT = DistContext(rank=rank, local_rank=local_rank, world_size=world, device=dev)
    return _CONTEXT


def configure_cpu_threads(device: torch.device, threads: int | None, ctx: DistContext) -> None:
    """On CPU, split the cores between the local processes (or honour ``--cpu-threads``)."""
    if device.type != "cpu":
        return
    if threads is None:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", ctx.world_size))
        if local <= 1:
            return  # torch's default: one thread per physical core
        threads = max(1, (os.cpu_count() or 1) // local)
    torch.set_num_threads(max(1, int(threads)))


def wrap_ddp(model: nn.Module, ctx: DistContext) -> nn.Module:
    """DDP wrapper over the *currently trainable* parameters (re-wrap after ``set_stage``)."""
    if ctx.world_size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    # Some networks have branches a given stage or variant does not use: let DDP skip them.
    return DDP(model, device_ids=ids, find_unused_parameters=True)


def all_reduce_sum(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if ctx.world_size == 1:
        return t
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_gather_object(obj: Any) -> list[Any]:
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, ctx: DistContext) -> Any:
    if ctx.world_size == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx: DistContext) -> None:
    if ctx.world_size > 1:
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
