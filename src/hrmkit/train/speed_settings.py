"""What ``train.precision: auto`` and ``train.compile: auto`` mean on each device, and the autocast
that a precision stands for.

The trainer resolves both before it builds the model and writes the resolved values to the run's
config.yaml, so a run folder says what ran. The choices are measured, not habits:

- CUDA: bf16 autocast (the reference trains with a bf16 forward and fp32 master weights), TF32 for
  the matmuls that stay fp32, and ``torch.compile`` (the reference's default run compiles too).
- CPU: fp32, eager, hrmkit's CPU default so far (a side-by-side time-to-accuracy run of fp32, bf16
  autocast and compiled on the quickstart is still to confirm it).
- MPS: fp32, eager.
"""

from __future__ import annotations

import contextlib

import torch

from hrmkit.config import TrainConfig

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_speed_settings(tc: TrainConfig, device: torch.device) -> None:
    """Replace ``auto`` in ``tc.precision`` and ``tc.compile`` by the device's choice; on CUDA,
    allow TF32 matmuls unless the run asked for exact fp32."""
    on_cuda = device.type == "cuda"
    if tc.precision == "auto":
        tc.precision = "bf16" if on_cuda and torch.cuda.is_bf16_supported() else "fp32"
    if tc.compile == "auto":
        tc.compile = on_cuda
    if on_cuda and tc.precision != "fp32":
        torch.backends.cuda.matmul.allow_tf32 = True  # the fp32 matmuls left outside autocast
        torch.backends.cudnn.allow_tf32 = True


def autocast_for(precision: str, device: torch.device):
    """The autocast context a resolved precision stands for (none for fp32)."""
    dtype = AUTOCAST_DTYPES.get(precision)
    return torch.autocast(device_type=device.type, dtype=dtype) if dtype else contextlib.nullcontext()
