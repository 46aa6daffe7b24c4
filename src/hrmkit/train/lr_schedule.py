"""Learning-rate schedules by name, stepped once per optimizer step: our ``cosine``, ``linear`` and
``constant`` (the HRM reference's warmup then decay), any other name from pytorch-optimizer; each
resumes by replaying its step count on the schedule the config gives now (``ReplayScheduler``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from pytorch_optimizer import get_supported_lr_schedulers, load_lr_scheduler
from torch.optim.lr_scheduler import LambdaLR

from hrmkit.train.name_lookup import keyword_names, unknown_name_message

OUR_SCHEDULES = ("cosine", "linear", "constant")
# pytorch-optimizer names that are no learning-rate schedule for a run, and why (not listed, refused).
NOT_LR_SCHEDULERS = {
    "proportion": "it wraps another scheduler to schedule SAM's rho, not a learning rate",
    "poly": "pytorch-optimizer's poly raises the rate without bound after warmup "
            "(min_lr + (max_lr - min_lr) * steps ** poly_order: 28x train.lr after 1,000 steps)",
}

# The options that carry train.lr_warmup_steps and train.lr_min_ratio, under pytorch-optimizer's names.
WARMUP_OPTIONS = ("warmup_steps", "num_warmup_steps")
FLOOR_OPTIONS = ("min_lr", "eta_min", "min_lr_ratio")


def lr_multiplier(
    step: int, warmup_steps: int, total_steps: int, min_ratio: float, schedule: str = "cosine"
) -> float:
    """The factor on the base learning rate after ``step`` optimizer steps.

    Linear warmup from 0 over ``warmup_steps`` (as the HRM reference: ``step / warmup``),
    then ``cosine`` or ``linear`` decay from 1 to ``min_ratio`` at ``total_steps``, or
    ``constant`` 1. Past ``total_steps`` the factor stays at its final value.
    """
    if schedule not in OUR_SCHEDULES:
        raise ValueError(unknown_name_message("schedule", schedule, OUR_SCHEDULES))
    if step < warmup_steps:
        return step / max(1, warmup_steps)
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if schedule == "cosine":
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return min_ratio + (1.0 - min_ratio) * (1.0 - progress)


class ReplayScheduler:
    """A scheduler that resumes by replaying its steps on a scheduler built from the run's config as it is
    now, so that a resumed run with a larger ``train.steps`` (or another ``train.lr``) follows the new
    schedule from where it stands. Restoring a scheduler's own ``state_dict`` would bring back the old
    horizon (``T_max``, ``total_steps``, ...) and base rates; pytorch-optimizer's warmup schedulers keep
    no ``state_dict`` at all.

    The learning rate is a function of how many times ``step()`` ran, so replaying that count restores it
    exactly: closed-form ``LambdaLR`` (our schedules) jumps straight there, any other is stepped again
    (a few float operations a step, so even long runs replay in moments).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, factory: Callable[[], Any],
                 unused_settings: Sequence[str] = ()):
        self.optimizer = optimizer
        self._factory = factory
        self._scheduler = factory()
        self._steps = 0
        self.unused_settings = list(unused_settings)  # config settings the scheduler has no option for

    @property
    def name(self) -> str:
        """The class of the scheduler it drives."""
        return type(self._scheduler).__name__

    def step(self) -> None:
        self._scheduler.step()
        self._steps += 1

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"step": self._steps}

    def load_state_dict(self, state_dict: dict) -> None:
        """Replay to ``state_dict``'s step count (an older checkpoint's LambdaLR state gives ``last_epoch``).
        Call after the optimizer's state is loaded and its base rates (``initial_lr``) are the config's."""
        steps = int(state_dict["step"] if "step" in state_dict else state_dict["last_epoch"])
        for group in self.optimizer.param_groups:  # as when first built: a recursive schedule (cosine
            if "initial_lr" in group:              # annealing) starts from the lr the group holds
                group["lr"] = group["initial_lr"]
        self._scheduler = self._factory()
        with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()": a replay, on purpose
            warnings.simplefilter("ignore", UserWarning)
            if isinstance(self._scheduler, LambdaLR):
                self._scheduler.last_epoch = steps - 1
                self._scheduler.step()
            else:
                for _ in range(steps):
                    self._scheduler.step()
        self._steps = steps


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    name: str,
    warmup_steps: int,
    total_steps: int,
    min_ratio: float,
    kwargs: dict | None = None,
) -> ReplayScheduler:
    """A learning-rate scheduler stepped once per optimizer step.

    ``cosine``, ``linear`` and ``constant`` are :func:`lr_multiplier` in a ``LambdaLR``. Any other
    name is a pytorch-optimizer scheduler built with
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

        return ReplayScheduler(optimizer, lambda: LambdaLR(optimizer, multiplier))

    if key in NOT_LR_SCHEDULERS:
        raise ValueError(f"train.lr_schedule '{key}' is not offered: {NOT_LR_SCHEDULERS[key]}")
    supported = pytorch_lr_scheduler_names()
    if key not in supported:
        raise ValueError(unknown_name_message("lr scheduler", key, [*supported, *OUR_SCHEDULES]))
    scheduler_class = load_lr_scheduler(key)
    options = _scheduler_options(scheduler_class, optimizer, warmup_steps, total_steps, min_ratio)
    options.update(kwargs or {})
    # Settings no option carries do nothing (cosine_annealing has no warmup, one_cycle no floor of its own).
    unused = [f"train.{field} {value}" for field, value, carriers in
              (("lr_warmup_steps", warmup_steps, WARMUP_OPTIONS), ("lr_min_ratio", min_ratio, FLOOR_OPTIONS))
              if value and not options.keys() & set(carriers)]

    def factory() -> Any:
        return scheduler_class(optimizer, **options)

    try:
        return ReplayScheduler(optimizer, factory, unused)
    except (TypeError, ValueError) as error:
        raise ValueError(f"cannot build lr scheduler '{key}': {error}") from None


def pytorch_lr_scheduler_names() -> list[str]:
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
        **dict.fromkeys(WARMUP_OPTIONS, warmup_steps),
        "max_lr": base_lr,
        "min_lr": base_lr * min_ratio,
        "eta_min": base_lr * min_ratio,
        "min_lr_ratio": min_ratio,
    }
    accepted = keyword_names(scheduler_class)
    return {option: value for option, value in known.items() if option in accepted}
