"""Every collective operation hrmkit runs, with its tensors on the process group's device.

NCCL takes only tensors on the rank's own CUDA device and gloo only CPU tensors, while callers
hold tensors wherever they live (evaluation sums on the CPU, gradients on the training device).
Each function here moves what it sends to ``group_device()`` and hands results back on the
caller's device. Without a process group every function is the local identity, so training code
calls them unconditionally and one code path serves one process and many.

No other module calls ``torch.distributed`` collectives (tests/dist_guard.py checks this under
torchrun), and every rank calls each function the same number of times in the same order, even
when it has nothing of its own to contribute.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from hrmkit.model.losses import widest_float


def active() -> bool:
    """A process group is running (under torchrun, also one of a single process)."""
    return dist.is_available() and dist.is_initialized()


def group_device() -> torch.device:
    """Where the group's collectives need their tensors: the rank's CUDA device for NCCL (set by
    ``distributed.init_processes``), the CPU for gloo and without a group."""
    if active() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def reduce_sums(values: dict) -> dict[str, float]:
    """Sum per-process metric sums (tensors or numbers) over processes, in one collective."""
    if not values:
        return {}
    keys = sorted(values)
    tensors = [torch.as_tensor(values[k]).detach().reshape(()) for k in keys]
    source = tensors[0].device  # one stack where the sums live, then one copy: one host sync in all
    stacked = torch.stack([t.to(source, widest_float(source)) for t in tensors])
    device = group_device()  # the CPU or CUDA: float64, the reference's precision for metric sums
    stacked = stacked.to(device).to(widest_float(device))
    if active():
        dist.all_reduce(stacked)
    return dict(zip(keys, stacked.tolist()))


def all_gather_rows(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Every process's rows of each tensor, concatenated in rank order along dim 0.

    Processes may hold different numbers of rows (none at all, too), so sizes are exchanged first
    and rows padded to the largest; the tensors must agree in every other dimension and dtype.
    """
    if not active():
        return tensors
    device = group_device()
    rows = torch.tensor([tensors[0].shape[0]], device=device)
    sizes = [torch.zeros_like(rows) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, rows)
    sizes = [int(size) for size in sizes]
    largest = max(sizes)
    gathered = []
    for tensor in tensors:
        padded = tensor.new_zeros((largest, *tensor.shape[1:]), device=device)
        padded[: tensor.shape[0]] = tensor.to(device)
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        gathered.append(torch.cat([part[:size] for part, size in zip(parts, sizes)]).to(tensor.device))
    return tuple(gathered)


def gather_objects(obj) -> list:
    """Every process's picklable ``obj``, in rank order."""
    if not active():
        return [obj]
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def any_process(flag: bool) -> bool:
    """Whether ``flag`` is true on any process. The vote travels over gloo on the host, beside NCCL
    under CUDA, so it never waits for the GPU: the trainer asks it after every step (has a process
    been asked to stop?) without a device synchronisation."""
    if not active():
        return flag
    vote = torch.tensor([int(flag)])
    dist.all_reduce(vote, group=_host_group())
    return bool(vote.item())


_host_groups: dict = {}  # the gloo group beside a NCCL world, keyed by that world


def _host_group():
    """A group whose collectives run on CPU tensors: the world itself under gloo, else a gloo group over
    the same processes, made once (every process reaches its first use at the same call)."""
    if dist.get_backend() == "gloo":
        return None
    world = dist.group.WORLD
    if world not in _host_groups:
        _host_groups.clear()  # a group of an earlier, destroyed world
        _host_groups[world] = dist.new_group(backend="gloo")
    return _host_groups[world]


def barrier() -> None:
    if active():
        dist.barrier()


def sum_gradients(parameters: list[torch.nn.Parameter]) -> None:
    """Sum every parameter's gradient over processes, in one collective.

    A process whose forward did not reach a parameter (an MoE expert that got no token) has no
    gradient there; it contributes zeros, so every process sends a buffer of the same layout. A
    gradient that no process has stays None, as it would in one process with the whole batch, so
    optimizers still skip that parameter.
    """
    if not active() or not parameters:
        return
    device = group_device()
    dtype = next((p.grad.dtype for p in parameters if p.grad is not None), parameters[0].dtype)
    # The first len(parameters) entries count the processes that hold each gradient.
    flat = torch.zeros(len(parameters) + sum(p.numel() for p in parameters), dtype=dtype, device=device)
    offset = len(parameters)
    for index, p in enumerate(parameters):
        if p.grad is not None:
            flat[index] = 1
            flat[offset:offset + p.numel()] = p.grad.reshape(-1).to(device, dtype)
        offset += p.numel()
    dist.all_reduce(flat)
    holders = flat[: len(parameters)].tolist()  # one read of the counts, not one per parameter
    offset = len(parameters)
    for p, held in zip(parameters, holders):
        if held > 0:
            summed = flat[offset:offset + p.numel()].view_as(p).to(p.device, p.grad.dtype if p.grad is not None else p.dtype)
            if p.grad is None:
                p.grad = summed.clone()
            else:
                p.grad.copy_(summed)
        offset += p.numel()
