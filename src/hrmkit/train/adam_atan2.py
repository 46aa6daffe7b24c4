"""AdamATan2: the optimizer the HRM reference trains with, in plain PyTorch on any device.

It stands alone because it is a numerical reimplementation pinned to one CUDA kernel (the
``adam-atan2`` package) rounding by rounding; choosing an optimizer by name is
``hrmkit.train.optimizers``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable

import torch

from hrmkit.model.losses import widest_float


class AdamATan2(torch.optim.Optimizer):
    """Adam with ``atan2`` in place of the ``eps``-guarded division (Everett et al. 2024), computed
    as the CUDA kernel of the ``adam-atan2`` package, version 0.0.3, that the HRM reference trains
    with (``csrc/adam_atan2.cu``), but in plain PyTorch on any device.

    Per parameter and step, with the step count ``t`` (a float32 tensor) raised by one first::

        bc1, bc2 = 1 - beta1**t, 1 - beta2**t
        param = param * (1 - lr * weight_decay)                   # decoupled weight decay
        exp_avg = lerp(exp_avg, grad, 1 - beta1)
        exp_avg_sq = lerp(exp_avg_sq, grad * grad, 1 - beta2)     # a lerp too, as the kernel
        param = param - (lr * a / bc1) * atan2(exp_avg, sqrt(exp_avg_sq) / (sqrt(bc2) / b))

    The first bias correction scales the step outside ``atan2``, the second divides the
    denominator inside it. With the defaults ``a = b = 1`` (``betas = (0.9, 0.999)``,
    ``weight_decay = 0.01``, as the package's) this is the kernel's update; ``a`` scales the
    step and ``b`` the denominator. There is no ``eps``: ``atan2`` is bounded, and 0 when
    both moments are 0.

    Precision, as the kernel: the scalars ``lr * a / bc1``, ``1 - lr * weight_decay``,
    ``sqrt(bc2) / b``, ``1 - beta1`` and ``1 - beta2`` are worked out in float64 and rounded
    once to the arithmetic type: float32 for float16 and bfloat16 parameters, the parameter's
    own dtype otherwise. Moments are kept in the parameter's dtype. Each element goes through
    the kernel's operations in the arithmetic type, rounded where the compiled kernel rounds:
    ``lerp(v0, v1, w)`` is ``fma(w, v1, fma(-w, v0, v0))``, the denominator a true division,
    and the decay and the step are one ``fma(param, 1 - lr * weight_decay, -(step_size *
    atan2(...)))``, which is how nvcc compiles the kernel's two statements. Float32 fmas and
    quotients are computed in float64 and rounded to float32: exactly the float32 result, but
    for an fma whose float64 sum rounds onto a float32 tie (vanishingly rare). On an H200,
    against the package's kernel built from its source, float32, bfloat16 and float16
    parameters came out bit for bit the same over 6 steps. ``atan2`` is the device's: on
    CUDA it is the kernel's ``atan2f``; on CPU it can differ from it in the last bit. For
    float64 parameters there is no wider type: each fma is a product and a sum, rounded
    apart, so float64 results drift from the kernel's by rounding.

    A step runs per bucket, not per parameter. On CUDA a group's parameters that have a gradient
    share a bucket when they share device, dtype and step count (the scalars depend on nothing
    else): their values, gradients and moments are concatenated into flat tensors, updated by one
    pass of the operations above and copied back with ``torch._foreach_copy_``, so a step launches
    a constant number of kernels per bucket however many parameters there are; the price is
    temporaries the size of the bucket. On the CPU, where a launch costs next to nothing, each
    parameter is a bucket of its own (``shares_buckets``). The operations are elementwise, so the
    result is the per-parameter one bit for bit, except on the CPU's ``atan2``: torch rounds it
    differently in the last bit for the elements that fill a SIMD vector and for the leftover ones,
    so there an element's result depends on where it sits in its (own) tensor, as before.

    A tensor ``lr`` is read as a number each step. State per parameter: ``step`` (a CPU
    float32 scalar tensor), ``exp_avg`` and ``exp_avg_sq``, the package's names.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        weight_decay: float = 1e-2,
        a: float = 1.0,
        b: float = 1.0,
    ):
        if not 0.0 <= float(lr):
            raise ValueError(f"invalid learning rate: {lr}")
        if not all(0.0 <= beta < 1.0 for beta in betas):
            raise ValueError(f"invalid betas: {betas} (each must be in [0, 1))")
        if weight_decay < 0.0:
            raise ValueError(f"invalid weight_decay: {weight_decay}")
        if not b > 0.0:
            raise ValueError(f"invalid b: {b} (must be > 0)")
        defaults = dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay, a=a, b=b)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [param for param in group["params"] if param.grad is not None]
            if any(param.grad.is_sparse for param in params):
                raise RuntimeError("AdamATan2 does not support sparse gradients")
            if not params:
                continue
            states = [self.state[param] for param in params]
            for param, state in zip(params, states):
                if not state:
                    # "step" stays a CPU float tensor, like torch's own Adam, so that
                    # Optimizer.load_state_dict leaves it alone when casting state to the param dtype.
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            torch._foreach_add_([state["step"] for state in states], 1)
            buckets: dict[tuple, tuple[list, list]] = {}
            for param, state in zip(params, states):
                # Reading a step count (a CPU tensor) waits for no device.
                step = state["step"].item()
                alone = () if self.shares_buckets(param.device) else (len(buckets),)
                bucket = buckets.setdefault((param.device, param.dtype, step, *alone), ([], []))
                bucket[0].append(param)
                bucket[1].append(state)
            for (_, _, step, *_), (bucket_params, bucket_states) in buckets.items():
                self._update_bucket(bucket_params, bucket_states, step, group)
        return loss

    @staticmethod
    def shares_buckets(device: torch.device) -> bool:
        """Whether parameters on ``device`` share buckets. On CUDA, yes: one launch per operation instead
        of one per parameter. On the CPU, where a launch costs next to nothing, each parameter is its own
        bucket: concatenating into bucket-sized temporaries made hrm_v1's step 2.1x slower there
        (2 cores, docs/BENCHMARKS.md section 17)."""
        return device.type != "cpu"

    @staticmethod
    def _update_bucket(params: list[torch.Tensor], states: list[dict], step: float, group: dict) -> None:
        """One step for parameters of one group, device, dtype and step count, as flat tensors."""
        beta1, beta2 = group["betas"]
        lr = float(group["lr"])
        opmath = torch.float32 if params[0].dtype in (torch.float16, torch.bfloat16) else params[0].dtype
        # The kernel's scalars: float64 (beta ** float32 step), then one rounding to opmath.
        step_size = AdamATan2._round_to(lr * group["a"] / (1 - beta1**step), opmath)
        wd_alpha = AdamATan2._round_to(1 - lr * group["weight_decay"], opmath)
        divisor = AdamATan2._round_to(math.sqrt(1 - beta2**step) / group["b"], opmath)
        mbeta1, mbeta2 = AdamATan2._round_to(1 - beta1, opmath), AdamATan2._round_to(1 - beta2, opmath)

        exp_avgs, exp_avg_sqs = [state["exp_avg"] for state in states], [state["exp_avg_sq"] for state in states]

        def flat(tensors: list[torch.Tensor]) -> torch.Tensor:
            flattened = [tensor.reshape(-1) for tensor in tensors]
            return (torch.cat(flattened) if len(flattened) > 1 else flattened[0]).to(opmath)

        value, grad = flat(params), flat([param.grad for param in params])
        exp_avg, exp_avg_sq = flat(exp_avgs), flat(exp_avg_sqs)

        fma, divide = AdamATan2._fma, AdamATan2._divide
        exp_avg = fma(grad, mbeta1, fma(exp_avg, -mbeta1, exp_avg))
        exp_avg_sq = fma(grad * grad, mbeta2, fma(exp_avg_sq, -mbeta2, exp_avg_sq))
        denom = divide(exp_avg_sq.sqrt(), divisor)
        # The kernel's "param *= wd_alpha; param -= step_size * atan2(...)", as nvcc compiles it.
        value = fma(value, wd_alpha, -(torch.atan2(exp_avg, denom) * step_size))

        sizes = [param.numel() for param in params]
        for targets, result in ((params, value), (exp_avgs, exp_avg), (exp_avg_sqs, exp_avg_sq)):
            # Each target takes its piece of the flat result, rounded to its dtype, as copy_ rounds.
            if len(targets) == 1:  # the CPU's case: copy_ measured 15 % faster there than the foreach copy
                targets[0].copy_(result.view(targets[0].shape))
                continue
            pieces = [piece.view(target.shape) for piece, target in zip(result.split(sizes), targets)]
            torch._foreach_copy_(targets, pieces)

    @staticmethod
    def _round_to(number: float, dtype: torch.dtype) -> float:
        """``number`` rounded (to nearest even) to ``dtype`` (float32 or float64), as a Python float.
        Rounded on the host by ``struct``: no tensor is made, so nothing is read back from a device."""
        return number if dtype == torch.float64 else struct.unpack("f", struct.pack("f", number))[0]

    @staticmethod
    def _fma(tensor: torch.Tensor, scale: float, addend: torch.Tensor) -> torch.Tensor:
        """``tensor * scale + addend`` rounded once to the dtype, as CUDA's ``fma``. Float32
        goes through float64, where the product is exact; float64 has no wider type, so
        there the product and the sum are rounded apart (as float32 on a device without float64)."""
        if tensor.dtype != torch.float32 or widest_float(tensor.device) != torch.float64:
            return tensor * scale + addend
        return (tensor.double() * scale + addend.double()).float()

    @staticmethod
    def _divide(tensor: torch.Tensor, divisor: float) -> torch.Tensor:
        """``tensor / divisor`` correctly rounded, as the kernel's ``/`` (torch on CUDA turns a
        division by a Python number into a product with its reciprocal). Float32 goes through
        float64, whose quotient rounds to the float32 one (where the device has float64)."""
        if tensor.dtype != torch.float32 or widest_float(tensor.device) != torch.float64:
            return tensor / torch.tensor(divisor, dtype=tensor.dtype, device=tensor.device)
        return (tensor.double() / divisor).float()
