"""What the trainer needs from a task family: the `Task` protocol, and how metric sums become means.

The trainer owns the loop (steps, precision, accumulation, checkpoints, resume, logging,
processes); a task owns its data, its model and its loss. The trainer imports no family: it
calls exactly these hooks, so a new family is a new class with these methods, never a change
to the loop.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import torch


class Task(Protocol):
    """One training job of a family, built per process as ``task_factory(cfg, rank, world_size)``."""

    #: Whether ``evaluate`` may be given the compiled model (under ``train.compile``): its batches keep one
    #: shape, so evaluation compiles once, as the reference's compiled evaluation does.
    evaluates_compiled: bool

    @property
    def steps_per_epoch(self) -> float:
        """Optimizer steps for one pass over the training data, a fraction where a pass does not fill
        its last batch (``train.epochs`` and ``train.eval_interval_epochs`` convert with it)."""

    @property
    def tokens_per_example(self) -> int:
        """Tokens per example, for tokens/s when a step's metrics carry no ``tokens`` count."""

    def fill_model_config(self) -> None:
        """Copy what the data decides (vocabulary, lengths) into ``cfg.model``; refuse a mismatch."""

    def build_model(self) -> torch.nn.Module:
        """The model, from ``cfg.model`` alone (it exposes ``checkpoint_module``)."""

    def extra_optimizers(self, model: torch.nn.Module) -> list[torch.optim.Optimizer]:
        """Optimizers for state the main optimizer does not own (the puzzle embedding's sparse SignSGD)."""

    def before_step(self, model: torch.nn.Module, step: int) -> None:
        """Called before each step and each evaluation with the number of steps done (HRM-LM's gate warmup)."""

    def next_micro_batches(self) -> Sequence[dict[str, torch.Tensor]]:
        """This process's share of the next global batch, one dict per accumulation slot."""

    def train_loss(self, model: torch.nn.Module, batch: dict[str, torch.Tensor],
                   slot: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(loss summed over the micro-batch's rows, metric sums with ``count``) for one slot; the progress
        bar shows ``lm_loss`` (else ``loss``) and ``accuracy`` where the sums have them."""

    def evaluate(self, model: torch.nn.Module, device: torch.device, autocast: Callable[[], contextlib.AbstractContextManager],
                 max_examples: int) -> dict[str, float] | None:
        """Metric sums with ``count`` over this process's share of the evaluation; None without eval data.
        ``best-model/`` keeps the weights of the highest ``exact_accuracy`` (a tie going to the lower ``loss``,
        else the higher ``accuracy``), or of the lowest ``loss`` for a task without one; ``loss`` also drives
        ``train.eval_loss_patience``."""

    def state_dict(self) -> dict:
        """Where this process's data stream stands (sampler position, ACT carries), for resume."""

    def load_state_dict(self, state: dict, device: torch.device) -> None: ...

    def save_assets(self, folder: Path) -> None:
        """Files a weights folder needs beside the weights (HRM-LM: the tokenizer and corpus meta)."""


def metric_means(sums: dict) -> dict[str, float]:
    """Metric sums → means over ``count`` (``count`` itself is kept; nested results are dropped)."""
    count = max(sums.get("count", 0.0), 1.0)
    return {k: (v if k == "count" else v / count) for k, v in sums.items() if not isinstance(v, dict)}
