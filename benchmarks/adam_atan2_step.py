"""Side by side in one process: AdamATan2's step on flat buckets against the per-parameter update it replaced.

    python benchmarks/adam_atan2_step.py [--config hrm_v1] [--device cpu|cuda] [--dtype float32|bfloat16] [--steps 10]

Builds the preset's model, gives each parameter a random gradient, and times ``optimizer.step()``
alone for ``AdamATan2`` (a constant number of tensor operations per bucket of parameters) and for
``PerParameterAdamATan2`` below (the old step: about 15 operations per parameter), each on its own
copy of the parameters. Steps alternate between the two, each going first every other round (the
second of a pair ran up to 15 % slower on a 2-core CPU), so both see the same machine state; the
first two rounds warm up, then medians. On CUDA each step is timed between synchronisations.
"""

import argparse
import math
import platform
import statistics
import time

import torch

from hrmkit.config import load_run_config
from hrmkit.model.act import ACTModel
from hrmkit.train.adam_atan2 import AdamATan2


class PerParameterAdamATan2(AdamATan2):
    """AdamATan2.step as it was before it went flat: one parameter at a time, same rounding."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                state["step"] += 1
                step = state["step"].item()
                beta1, beta2 = group["betas"]
                lr = float(group["lr"])
                opmath = torch.float32 if param.dtype in (torch.float16, torch.bfloat16) else param.dtype
                step_size = AdamATan2._round_to(lr * group["a"] / (1 - beta1**step), opmath)
                wd_alpha = AdamATan2._round_to(1 - lr * group["weight_decay"], opmath)
                divisor = AdamATan2._round_to(math.sqrt(1 - beta2**step) / group["b"], opmath)
                mbeta1, mbeta2 = AdamATan2._round_to(1 - beta1, opmath), AdamATan2._round_to(1 - beta2, opmath)
                value, grad = param.to(opmath), param.grad.to(opmath)
                exp_avg, exp_avg_sq = state["exp_avg"].to(opmath), state["exp_avg_sq"].to(opmath)
                fma, divide = AdamATan2._fma, AdamATan2._divide
                exp_avg = fma(grad, mbeta1, fma(exp_avg, -mbeta1, exp_avg))
                exp_avg_sq = fma(grad * grad, mbeta2, fma(exp_avg_sq, -mbeta2, exp_avg_sq))
                denom = divide(exp_avg_sq.sqrt(), divisor)
                value = fma(value, wd_alpha, -(torch.atan2(exp_avg, denom) * step_size))
                param.copy_(value)
                state["exp_avg"].copy_(exp_avg)
                state["exp_avg_sq"].copy_(exp_avg_sq)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="hrm_v1")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    torch.manual_seed(0)
    model = ACTModel(load_run_config(args.config).model).to(device=device, dtype=dtype)
    variants = {"per-parameter (old)": PerParameterAdamATan2, "bucketed (new)": AdamATan2}
    params, optimizers = {}, {}
    for name, optimizer_class in variants.items():
        params[name] = [param.detach().clone().requires_grad_(True) for param in model.parameters()]
        optimizers[name] = optimizer_class(params[name], lr=1e-4, weight_decay=0.1)
    generator = torch.Generator(device).manual_seed(0)
    grads = [torch.randn(param.shape, generator=generator, device=device).to(dtype) for param in model.parameters()]
    for name in variants:
        for param, grad in zip(params[name], grads):
            param.grad = grad.clone()

    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_index in range(args.steps + 2):  # the first two rounds warm up
        order = list(optimizers.items())
        for name, optimizer in order if round_index % 2 else order[::-1]:  # who goes second runs slower
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if round_index >= 2:
                times[name].append(time.perf_counter() - started)

    old, new = (statistics.median(times[name]) for name in variants)
    same = all(torch.equal(a, b) for a, b in zip(*params.values()))
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads")
    print(f"{args.config}: {len(grads)} parameters, {sum(g.numel() for g in grads) / 1e6:.1f} M {args.dtype} "
          f"on {machine}, torch {torch.__version__}, median of {args.steps} steps")
    for name, seconds in zip(variants, (old, new)):
        print(f"  {name:20s} {seconds * 1000:8.2f} ms/step  ({old / seconds:.2f}x the old step's speed)")
    print(f"  parameters bit for bit the same after {args.steps + 2} steps: {same}"
          + ("" if same or device.type == "cuda" else " (CPU atan2 is position-dependent: see AdamATan2)"))


if __name__ == "__main__":
    main()
