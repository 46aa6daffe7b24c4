"""What ``train.precision``, ``train.compile``, ``data.workers`` and ``model.state_dtype`` set to
``auto`` mean on each device, the autocast that a precision stands for, and how a batch reaches the
device without stopping the host.

The trainer resolves them before it builds the model and writes the resolved values to the run's
config.yaml, so a run folder says what ran. The choices are measured, not habits:

- CUDA: bf16 autocast (the reference trains with a bf16 forward and fp32 master weights), TF32 for
  the matmuls that stay fp32, the ACT carry and the residual stream in bf16 as the reference's bf16
  forward keeps them, and ``torch.compile`` (the reference's default run compiles too); one
  worker process prepares the training batches (choosing a batch's rows is milliseconds of Python
  that would otherwise hold the GIL the step's kernel launches need).
- CPU: bf16 autocast where the CPU multiplies bf16 natively (AVX-512 BF16 or AMX), else fp32; the
  carry and the residual stream in float32 (bf16 states trained the quickstart slower and no better,
  section 17); eager;
  batches prepared in the training process (a worker took a core from the step: the quickstart trained
  10 % slower with one, section 17).
  On the quickstart (2 cores of an Intel Xeon with AMX) bf16 reached 99 % held-out exact in 62 s of
  training against 86 s for fp32, same final accuracy; torch.compile's warm-up (about 30 s) cost
  more than its faster steps saved in a run of that length (docs/BENCHMARKS.md, section 16).
- MPS: fp32, eager.
"""

from __future__ import annotations

import contextlib
import functools

import torch

from hrmkit.config import RunConfig
from hrmkit.model.core import states_follow_autocast

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX tiles); without it bf16
    matmuls are emulated and slower than fp32."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def resolve_speed_settings(cfg: RunConfig, device: torch.device) -> None:
    """Replace ``auto`` in ``train.precision``, ``train.compile``, ``data.workers`` and
    ``model.state_dtype`` by the device's choice; on CUDA, allow TF32 matmuls unless the run asked for
    exact fp32."""
    tc = cfg.train
    on_cuda = device.type == "cuda"
    tc.precision = resolve_precision(tc.precision, device)
    if tc.compile == "auto":
        tc.compile = on_cuda
    if cfg.data.workers == "auto":
        cfg.data.workers = 1 if on_cuda else 0
    if cfg.model.state_dtype == "auto":
        cfg.model.state_dtype = "autocast" if states_follow_autocast("auto", device.type) else "float32"
    allow_tf32_under(tc.precision, device)


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``'s meaning on ``device`` (bf16 where the device multiplies it natively, else fp32); any
    other precision as it is."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


def allow_tf32_under(precision: str, device: torch.device) -> None:
    """On CUDA under autocast, TF32 for the fp32 matmuls left outside it; ``fp32`` stays exact."""
    if device.type == "cuda" and precision != "fp32":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def compiled_for_evaluation(model: torch.nn.Module, device: torch.device, run_compile, requested: str = "run"
                            ) -> torch.nn.Module:
    """The model ``hrm eval`` runs: ``requested="run"`` compiles it where its run's evaluations ran compiled
    (``run_compile``, the run's ``train.compile``: a run records what it resolved to; ``auto`` means none
    was recorded, as in a reference checkpoint, and compiles on CUDA, as hrm train would), so the figures
    are the ones the run logged (compiled and eager forwards differ in rounding); ``true`` / ``false``
    by hand. Otherwise the model itself."""
    if requested == "run":
        compile_it = device.type == "cuda" if run_compile == "auto" else bool(run_compile)
    else:
        compile_it = requested == "true"
    return torch.compile(model) if compile_it else model


def evaluation_precision(run_precision: str, device: torch.device, requested: str = "run"):
    """``(precision, autocast factory)`` to run a trained model as its run evaluated it: ``requested="run"``
    takes the run's own ``train.precision`` (a run records the resolved value; ``auto`` means none was
    recorded, as in a reference checkpoint, and gives exact fp32), anything else is taken as named; TF32 as
    the trainer allows it. hrm eval, viz, generate and eval code use it, so their figures and answers are
    the ones the run's evaluations produced."""
    if requested == "run":
        requested = "fp32" if run_precision == "auto" else run_precision
    precision = resolve_precision(requested, device)
    allow_tf32_under(precision, device)
    return precision, functools.partial(autocast_for, precision, device)


def batch_to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """A batch on the device. On CUDA the host copies come from pinned memory with ``non_blocking``:
    a copy from ordinary (pageable) memory makes the host wait until the GPU has finished all queued
    work, which would stop the host preparing the next batch while the current step runs."""
    if device.type != "cuda":
        return {k: v.to(device) for k, v in batch.items()}
    return {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}


def synchronize(device: torch.device) -> None:
    """Waits until the device has done all the work queued on it (nothing to wait for on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def autocast_for(precision: str, device: torch.device):
    """The autocast context a resolved precision stands for (none for fp32)."""
    dtype = AUTOCAST_DTYPES.get(precision)
    return torch.autocast(device_type=device.type, dtype=dtype) if dtype else contextlib.nullcontext()
