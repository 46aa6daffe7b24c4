"""Process layout: one process without torchrun, a process group under torchrun.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; without them nothing distributed happens (world
size 1, no process group), so the same training code runs both ways.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from hrmkit.config import device_problem
from hrmkit.train import collectives


@dataclass
class ProcessInfo:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def local_rank() -> int:
    """This process's index on its machine under torchrun (which GPU it takes), else 0."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def pick_device(requested: str, local_rank: int = 0) -> torch.device:
    """The torch device a device name (auto, cpu, cuda[:N], mps) means here; a name that is not one, or
    a device this machine lacks, raises ValueError (one line: bad input)."""
    problem = device_problem(requested)
    if problem:
        raise ValueError(problem)
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{requested}' was requested but torch sees no CUDA device")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device '{requested}' was requested but torch sees {torch.cuda.device_count()} CUDA "
                         f"device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device 'mps' was requested but this torch build has no MPS support")
    return device


def init_processes(device: torch.device) -> ProcessInfo:
    """Join torchrun's process group when launched by it (gloo on CPU, nccl on CUDA), also as its
    only process: ``torchrun --nproc_per_node 1`` then runs every collective exactly as a larger
    launch does, which is how one GPU checks the NCCL path.

    On CUDA the rank's device becomes the current one and the group is bound to it, so object
    collectives (checkpoint gathers) stage on this rank's GPU rather than every rank on cuda:0.
    Collectives themselves live in ``collectives``.
    """
    if "RANK" not in os.environ:
        return ProcessInfo()
    info = ProcessInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]))
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
            dist.init_process_group(backend="nccl", device_id=device)
        else:
            dist.init_process_group(backend="gloo")
    return info


def shutdown_processes(together: bool = True) -> bool:
    """Leave the process group, if there is one; True when there was (asked after this, ``collectives.active()``
    says False). ``together``: wait for every process first; False for a process leaving on an error
    the others may not share (they would never reach the wait)."""
    if not (dist.is_available() and dist.is_initialized()):
        return False
    if together:
        # Leave together: a rank tearing down while rank 0 still writes its files can make gloo
        # abort the other side (seen as a SIGABRT at exit).
        collectives.barrier()
    dist.destroy_process_group()
    return True


def local_batch_size(global_batch_size: int, rank: int, world_size: int) -> int:
    """This rank's share of a global batch; every rank must get the same number of rows."""
    if global_batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {global_batch_size}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside a world of size {world_size}")
    if global_batch_size % world_size:
        raise ValueError(
            f"global batch size {global_batch_size} is not divisible by world size {world_size}; "
            "every rank must get the same number of rows"
        )
    return global_batch_size // world_size
