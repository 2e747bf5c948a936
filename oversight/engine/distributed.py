"""Several GPUs (or processes): data-parallel PPO, launched by `accelerate launch` or `torchrun`.

Each rank samples its own prompts and rollouts, and every minibatch's gradients are averaged over
ranks before the optimiser step (DDP's semantics), so the policies stay identical. The averaging
is done here rather than by wrapping the model in `DistributedDataParallel` because the fast path
(`oversight.engine.fastlm`) calls the model's weights directly, not its `forward`, which DDP hooks.
Only rank 0 writes outputs and the store (`oversight.experiment.run`).

    accelerate launch --config_file conf/accelerate/multi_gpu.yaml -m oversight.train ...
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch
import torch.distributed as dist


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    return rank() == 0


def setup(device: torch.device) -> torch.device:
    """Join the launcher's process group (if any) and pick this rank's device."""
    if world_size() == 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Mean of each gradient over ranks, in one all-reduce of a flat buffer."""
    grads = [p.grad for p in params if p.grad is not None]
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def mean(x: torch.Tensor) -> torch.Tensor:
    """The mean of a tensor over ranks (a copy)."""
    x = x.clone()
    dist.all_reduce(x)
    return x / dist.get_world_size()
