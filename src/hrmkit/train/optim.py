"""Optimizers, learning-rate schedules and auxiliary losses, chosen by name.

Our own names come first (``adamw``, ``adam_atan2``; the ``cosine``, ``linear`` and
``constant`` schedules); any other name is looked up in pytorch-optimizer.
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from pytorch_optimizer import (
    get_supported_lr_schedulers,
    get_supported_optimizers,
    load_lr_scheduler,
    load_optimizer,
)
from pytorch_optimizer.loss import LOSS_FUNCTIONS
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from hrmkit.model.losses import IGNORE_LABEL_ID, stablemax_cross_entropy, widest_float

ADAM_ATAN2_NAMES = ("adam_atan2", "adamatan2", "adam-atan2")
# The training guide's short names for pytorch-optimizer's bitsandbytes optimizers.
OPTIMIZER_ALIASES = {"adamw_8bit": "bnb_adamw8bit", "adam_8bit": "bnb_adam8bit"}
OUR_SCHEDULES = ("cosine", "linear", "constant")
# pytorch-optimizer's "proportion" wraps another scheduler to schedule SAM's rho, not an lr.
NOT_LR_SCHEDULERS = ("proportion",)
# Cross-entropy variants computed inside the model's loss head, not built by build_loss.
MODEL_HEAD_LOSSES = ("softmax_cross_entropy", "stablemax_cross_entropy")
# Plain token cross-entropy for seq2seq (F.cross_entropy; takes label_smoothing and the like).
CROSS_ENTROPY = "cross_entropy"
# pytorch-optimizer name prefixes that load an optional package (import name, pip name).
OPTIONAL_OPTIMIZER_PACKAGES = {
    "bnb": [("bitsandbytes", "bitsandbytes")],
    "q_galore": [("bitsandbytes", "bitsandbytes"), ("q_galore_torch", "q-galore-torch")],
    "torchao": [("torchao", "torchao")],
}


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
            for param in group["params"]:
                if param.grad is None:
                    continue
                if param.grad.is_sparse:
                    raise RuntimeError("AdamATan2 does not support sparse gradients")
                self._update_parameter(param, self.state[param], group)
        return loss

    @staticmethod
    def _update_parameter(param: torch.Tensor, state: dict, group: dict) -> None:
        if not state:
            # "step" stays a CPU float tensor, like torch's own Adam, so that
            # Optimizer.load_state_dict leaves it alone when casting state to the param dtype.
            state["step"] = torch.zeros((), dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["step"] += 1
        step = state["step"].item()
        beta1, beta2 = group["betas"]
        lr = float(group["lr"])

        opmath = torch.float32 if param.dtype in (torch.float16, torch.bfloat16) else param.dtype
        # The kernel's scalars: float64 (beta ** float32 step), then one rounding to opmath.
        step_size = AdamATan2._round_to(lr * group["a"] / (1 - beta1**step), opmath)
        wd_alpha = AdamATan2._round_to(1 - lr * group["weight_decay"], opmath)
        divisor = AdamATan2._round_to(math.sqrt(1 - beta2**step) / group["b"], opmath)
        mbeta1, mbeta2 = AdamATan2._round_to(1 - beta1, opmath), AdamATan2._round_to(1 - beta2, opmath)

        value = param.to(opmath)
        grad = param.grad.to(opmath)
        exp_avg = state["exp_avg"].to(opmath)
        exp_avg_sq = state["exp_avg_sq"].to(opmath)

        fma, divide = AdamATan2._fma, AdamATan2._divide
        exp_avg = fma(grad, mbeta1, fma(exp_avg, -mbeta1, exp_avg))
        exp_avg_sq = fma(grad * grad, mbeta2, fma(exp_avg_sq, -mbeta2, exp_avg_sq))
        denom = divide(exp_avg_sq.sqrt(), divisor)
        # The kernel's "param *= wd_alpha; param -= step_size * atan2(...)", as nvcc compiles it.
        value = fma(value, wd_alpha, -(torch.atan2(exp_avg, denom) * step_size))

        param.copy_(value)
        state["exp_avg"].copy_(exp_avg)
        state["exp_avg_sq"].copy_(exp_avg_sq)

    @staticmethod
    def _round_to(number: float, dtype: torch.dtype) -> float:
        """``number`` rounded (to nearest even) to ``dtype``, as a Python float."""
        return number if dtype == torch.float64 else torch.tensor(number, dtype=dtype).item()

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


# ---------------------------------------------------------------------------------------
# Optimizers by name
# ---------------------------------------------------------------------------------------


def build_optimizer(
    name: str,
    params: Iterable[torch.Tensor] | Iterable[dict],
    lr: float,
    weight_decay: float,
    betas: tuple[float, ...] | None = None,
    kwargs: dict | None = None,
) -> torch.optim.Optimizer:
    """An optimizer by (case-insensitive) name: ``adamw``, ``adam_atan2``, or any
    pytorch-optimizer name. ``betas`` is passed only when given; ``kwargs`` last."""
    key = name.strip().lower()
    key = OPTIMIZER_ALIASES.get(key, key)
    if key in ADAM_ATAN2_NAMES:
        optimizer_class: type = AdamATan2
    elif key == "adamw":
        optimizer_class = torch.optim.AdamW
    else:
        optimizer_class = _pytorch_optimizer_class(key)
    options: dict[str, Any] = {"lr": lr}
    # A few optimizers (lbfgs, ...) take no weight decay; leaving out a zero one lets them build.
    if weight_decay or "weight_decay" in _keyword_names(optimizer_class):
        options["weight_decay"] = weight_decay
    if betas is not None:
        options["betas"] = tuple(betas)
    options.update(kwargs or {})
    try:
        return optimizer_class(params, **options)
    except TypeError as error:
        raise ValueError(f"cannot build optimizer '{name}': {error}") from None


def _pytorch_optimizer_class(key: str) -> type:
    for prefix, packages in OPTIONAL_OPTIMIZER_PACKAGES.items():
        if key.startswith(prefix):
            _require_packages(key, packages)
            try:
                return load_optimizer(key)
            except (ImportError, NotImplementedError) as error:
                raise ValueError(f"optimizer '{key}' is unavailable here: {error}") from None
    supported = get_supported_optimizers()
    if key not in supported:
        raise ValueError(_unknown_name_message("optimizer", key, [*supported, ADAM_ATAN2_NAMES[0]]))
    return load_optimizer(key)


def _require_packages(key: str, packages: list[tuple[str, str]]) -> None:
    for import_name, pip_name in packages:
        if importlib.util.find_spec(import_name) is None:
            raise ValueError(
                f"optimizer '{key}' needs the {pip_name} package (and a CUDA GPU): "
                f"pip install {pip_name}"
            )


def _keyword_names(target: Callable) -> set[str]:
    """Keyword names of ``target``; for a class whose ``__init__`` forwards ``**kwargs``,
    also those of its base classes (pytorch-optimizer's PolyScheduler does this)."""
    owners = target.__mro__ if isinstance(target, type) else (target,)
    names: set[str] = set()
    for owner in owners:
        function = owner.__dict__.get("__init__") if isinstance(owner, type) else owner
        if function is None or owner is object:
            continue
        parameters = inspect.signature(function).parameters.values()
        names.update(p.name for p in parameters if p.kind is not p.VAR_KEYWORD)
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return names


def _unknown_name_message(kind: str, name: str, known: Iterable[str]) -> str:
    message = f"unknown {kind} '{name}'"
    close = difflib.get_close_matches(name, sorted(set(known)), n=3)
    if close:
        message += " (did you mean " + ", ".join(f"'{match}'" for match in close) + "?)"
    return message


# ---------------------------------------------------------------------------------------
# Learning-rate schedules
# ---------------------------------------------------------------------------------------


def lr_multiplier(
    step: int, warmup_steps: int, total_steps: int, min_ratio: float, schedule: str = "cosine"
) -> float:
    """The factor on the base learning rate after ``step`` optimizer steps.

    Linear warmup from 0 over ``warmup_steps`` (as the HRM reference: ``step / warmup``),
    then ``cosine`` or ``linear`` decay from 1 to ``min_ratio`` at ``total_steps``, or
    ``constant`` 1. Past ``total_steps`` the factor stays at its final value.
    """
    if schedule not in OUR_SCHEDULES:
        raise ValueError(_unknown_name_message("schedule", schedule, OUR_SCHEDULES))
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "cosine":
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return min_ratio + (1.0 - min_ratio) * (1.0 - progress)


class ReplayScheduler:
    """Gives a pytorch-optimizer scheduler without ``state_dict`` a resumable position.

    pytorch-optimizer's warmup schedulers (cosine, linear, poly, ...) keep their position
    in a plain counter and offer no ``state_dict``. Their learning rate is a pure function
    of how many times ``step()`` ran, so saving that count and, on load, rebuilding the
    scheduler and stepping it as many times restores it exactly (each step is a few
    float operations, so even long runs replay instantly).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, factory: Callable[[], Any]):
        self.optimizer = optimizer
        self._factory = factory
        self._scheduler = factory()
        self._steps = 0

    def step(self) -> None:
        self._scheduler.step()
        self._steps += 1

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"step": self._steps}

    def load_state_dict(self, state_dict: dict) -> None:
        self._scheduler = self._factory()
        self._steps = 0
        for _ in range(int(state_dict["step"])):
            self.step()


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    name: str,
    warmup_steps: int,
    total_steps: int,
    min_ratio: float,
    kwargs: dict | None = None,
) -> LRScheduler | ReplayScheduler:
    """A learning-rate scheduler stepped once per optimizer step.

    ``cosine``, ``linear`` and ``constant`` are :func:`lr_multiplier` in a ``LambdaLR``
    (its ``state_dict`` holds the position; the current lr itself is restored with the
    optimizer's state). Any other name is a pytorch-optimizer scheduler built with
    ``kwargs``; options it takes that ``kwargs`` leaves out (``t_max``, ``warmup_steps``,
    ``max_lr``, ``min_lr`` ...) are filled from the arguments here.
    """
    key = name.strip().lower()
    if key in OUR_SCHEDULES:
        if kwargs:
            raise ValueError(f"lr scheduler '{key}' takes no extra options, got {sorted(kwargs)}")
        # LambdaLR asks for the factor of the step about to run as ``steps_done``; the reference
        # counts the step being taken (1 for the first), so the first update is not wasted at lr 0.
        def multiplier(steps_done: int) -> float:
            return lr_multiplier(steps_done + 1, warmup_steps, total_steps, min_ratio, key)

        return LambdaLR(optimizer, multiplier)

    supported = _pytorch_lr_scheduler_names()
    if key not in supported:
        raise ValueError(_unknown_name_message("lr scheduler", key, [*supported, *OUR_SCHEDULES]))
    scheduler_class = load_lr_scheduler(key)
    options = _scheduler_options(scheduler_class, optimizer, warmup_steps, total_steps, min_ratio)
    options.update(kwargs or {})

    def factory() -> Any:
        return scheduler_class(optimizer, **options)

    try:
        scheduler = factory()
    except (TypeError, ValueError) as error:
        raise ValueError(f"cannot build lr scheduler '{key}': {error}") from None
    if isinstance(scheduler, LRScheduler):
        return scheduler
    return ReplayScheduler(optimizer, factory)


def _pytorch_lr_scheduler_names() -> list[str]:
    return [name for name in get_supported_lr_schedulers() if name not in NOT_LR_SCHEDULERS]


def _scheduler_options(
    scheduler_class: Callable,
    optimizer: torch.optim.Optimizer,
    warmup_steps: int,
    total_steps: int,
    min_ratio: float,
) -> dict:
    """Our schedule arguments under the names pytorch-optimizer's schedulers use for them.

    Resolved once, at build time: warmup schedulers overwrite the optimizer's lr, so it
    cannot be read back when a :class:`ReplayScheduler` rebuilds one.
    """
    base_lr = float(optimizer.param_groups[0]["lr"])
    known = {
        "t_max": total_steps,
        "T_max": total_steps,
        "total_steps": total_steps,
        "first_cycle_steps": total_steps,
        "warmup_steps": warmup_steps,
        "num_warmup_steps": warmup_steps,
        "max_lr": base_lr,
        "min_lr": base_lr * min_ratio,
        "eta_min": base_lr * min_ratio,
        "min_lr_ratio": min_ratio,
    }
    accepted = _keyword_names(scheduler_class)
    return {option: value for option, value in known.items() if option in accepted}


# ---------------------------------------------------------------------------------------
# Losses and names
# ---------------------------------------------------------------------------------------


def _loss_class(name: str) -> type | None:
    key = name.strip().lower().replace("_", "").replace("-", "")
    for candidate in (key, key + "loss"):
        if candidate in LOSS_FUNCTIONS:
            return LOSS_FUNCTIONS[candidate]
    return None


def build_loss(name: str, kwargs: dict | None = None) -> torch.nn.Module:
    """A pytorch-optimizer loss by name (``focal``, ``FocalLoss`` and ``focal_loss`` all work).

    The cross-entropy losses (``softmax_cross_entropy``, ``stablemax_cross_entropy``)
    belong to the model's loss head and are rejected here with a message saying so.
    """
    if name.strip().lower() in MODEL_HEAD_LOSSES:
        raise ValueError(f"loss '{name}' is computed by the model's loss head; set it in the model config")
    loss_class = _loss_class(name)
    if loss_class is None:
        raise ValueError(_unknown_name_message("loss", name, LOSS_FUNCTIONS))
    return loss_class(**(kwargs or {}))


def loss_name_problem(name: str) -> str | None:
    """None when ``name`` is a token loss we can build, else why not (for config validation)."""
    if name in (*MODEL_HEAD_LOSSES, CROSS_ENTROPY) or _loss_class(name) is not None:
        return None
    return _unknown_name_message("loss", name, [*MODEL_HEAD_LOSSES, CROSS_ENTROPY, *LOSS_FUNCTIONS])


def build_token_loss(name: str, kwargs: dict | None = None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A function (logits [rows, T, vocab], labels [rows, T] with -100 ignored) -> each row's mean
    token loss [rows] (0 for a row with no label). Every example weighs the same whatever its
    length, so sums over rows add up exactly across micro-batches and processes.

    pytorch-optimizer's losses come from segmentation and classification, return one scalar and
    disagree on the target they take (class indices or one-hot): they run once per row, and one
    probe on a tiny batch picks the target form that works, or fails with the loss's own complaint.
    """
    kwargs = dict(kwargs or {})
    if name == "stablemax_cross_entropy":
        if kwargs:
            raise ValueError(f"{name} takes no keyword arguments, got {sorted(kwargs)}")
        return lambda logits, labels: _row_means(stablemax_cross_entropy(logits, labels), labels)
    if name in ("softmax_cross_entropy", CROSS_ENTROPY):
        def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            flat = F.cross_entropy(logits.float().flatten(0, -2), labels.long().flatten(), ignore_index=IGNORE_LABEL_ID,
                                   reduction="none", **kwargs)
            return _row_means(flat.view(labels.shape), labels)
        return cross_entropy
    try:
        loss_fn = build_loss(name, kwargs)
    except TypeError as error:
        raise ValueError(f"loss '{name}' could not be built with loss_kwargs {kwargs}: {error}") from None
    to_target = _probe_target_form(name, loss_fn)

    def per_row(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        rows = []
        for row_logits, row_labels in zip(logits, labels):
            valid = row_labels != IGNORE_LABEL_ID
            if not valid.any():
                rows.append(row_logits.sum().float() * 0.0)
                continue
            picked = row_labels[valid].long()
            rows.append(loss_fn(row_logits[valid].float(), to_target(picked, row_logits.shape[-1])).float())
        return torch.stack(rows)

    return per_row


def _row_means(token_losses: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    counts = (labels != IGNORE_LABEL_ID).sum(-1).clamp_min(1)
    return token_losses.sum(-1) / counts


def _probe_target_form(name: str, loss_fn: torch.nn.Module):
    forms = (lambda labels, classes: labels, lambda labels, classes: F.one_hot(labels, classes).float())
    logits, labels = torch.randn(4, 5), torch.tensor([0, 1, 2, 4])
    complaint = ""
    for to_target in forms:
        try:
            value = loss_fn(logits, to_target(labels, 5))
        except (RuntimeError, ValueError, IndexError, TypeError) as error:
            complaint = str(error).splitlines()[0]
            continue
        if value.numel() == 1 and torch.isfinite(value):
            return to_target
        complaint = f"it returned shape {tuple(value.shape)}"
    raise ValueError(f"loss '{name}' does not take (logits [tokens, vocab], targets) for token prediction: {complaint}")


def list_names() -> dict[str, list[str]]:
    """Every name accepted for optimizers, lr schedulers and losses (for ``hrm info``)."""
    return {
        "optimizers": sorted({*get_supported_optimizers(), ADAM_ATAN2_NAMES[0]}),
        "lr_schedulers": sorted({*_pytorch_lr_scheduler_names(), *OUR_SCHEDULES}),
        "losses": [*MODEL_HEAD_LOSSES, CROSS_ENTROPY, *sorted(LOSS_FUNCTIONS)],
    }
