"""Train metrics between two log lines, kept on the device.

A training step hands over its metric *sums* as device tensors (this process's rows) and its
gradient norm; nothing is read on the host while steps run, so a GPU never waits for Python. A
log line reads the window once: one collective over processes and one copy to the host.

Losses and the gradient norm are per step, so they average over steps (the losses are sums over
rows, divided by the global batch). The other metrics are means over the rows a step scored
(``count``: under ACT only rows that halted), so they are weighted by ``count``: a step where no
row halted contributes nothing, not a zero.
"""

from __future__ import annotations

import contextlib
import time

import torch

from hrmkit.model.losses import widest_float
from hrmkit.train import collectives

NOT_METRICS = ("count", "tokens")


class MetricWindow:
    def __init__(self, global_batch_size: int, tokens_per_step: int):
        self.global_batch_size = global_batch_size
        self.tokens_per_step = tokens_per_step  # when a step's sums carry no ``tokens`` count
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.grad_norm: torch.Tensor | float = 0.0
        self.steps, self.start = 0, time.perf_counter()
        self.paused_at: float | None = None

    def _seconds(self) -> float:
        """Training time since the window began: wall time less the pauses."""
        now = time.perf_counter() if self.paused_at is None else self.paused_at
        return now - self.start

    @contextlib.contextmanager
    def paused(self):
        """Time that is not training (an evaluation, a checkpoint save): it counts in no samples/s."""
        self.paused_at = time.perf_counter()
        try:
            yield
        finally:
            self.start += time.perf_counter() - self.paused_at
            self.paused_at = None

    def add(self, step_sums: dict[str, torch.Tensor]) -> None:
        """One step's metric sums over this process's rows, with ``grad_norm`` (the same on every process)."""
        for key, value in step_sums.items():
            if key == "grad_norm":
                self.grad_norm = self.grad_norm + value
            else:
                self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.steps += 1

    def state_dict(self) -> dict:
        """The window so far, for a checkpoint, so that a resumed run's first log line covers the steps the
        uninterrupted run's does. Its sums are summed over processes: every process calls this."""
        return {"sums": collectives.reduce_sums(self.sums), "grad_norm": float(self.grad_norm), "steps": self.steps,
                "seconds": self._seconds()}

    def load_state_dict(self, state: dict | None, device: torch.device, holds_sums: bool) -> None:
        """Go on from a checkpoint's window. The sums are every process's together, so exactly one process
        (``holds_sums``) carries them on; the others start theirs from nothing."""
        self.reset()
        if not state:
            return
        if holds_sums:  # the dtype the steps' sums have (losses.widest_float), so they add up as before
            self.sums = {key: torch.tensor(value, dtype=widest_float(device), device=device)
                         for key, value in state["sums"].items()}
        self.grad_norm, self.steps = state["grad_norm"], state["steps"]
        self.start -= state["seconds"]

    def flush(self) -> dict[str, float]:
        """Means over the window (summed over processes), samples/s, tokens/s and ms/step; then starts anew."""
        steps = max(self.steps, 1)
        sums = collectives.reduce_sums(self.sums)
        seconds = max(self._seconds(), 1e-9)
        rows = sums.get("count", 0.0)
        out = {key: value / (self.global_batch_size * steps) for key, value in sums.items() if key.endswith("loss")}
        if rows > 0:
            out.update({key: value / rows for key, value in sums.items()
                        if not key.endswith("loss") and key not in NOT_METRICS})
        out["grad_norm"] = float(self.grad_norm) / steps
        out["count"] = rows / steps
        tokens = sums.get("tokens", self.tokens_per_step * self.steps)
        out.update(samples_per_s=self.global_batch_size * self.steps / seconds, tokens_per_s=tokens / seconds,
                   ms_per_step=1000 * seconds / steps)
        self.reset()
        return out
