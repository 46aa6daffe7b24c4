"""A rich progress bar for training: step, loss, accuracy, samples/s and ETA on one line."""

from __future__ import annotations

import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainProgress:
    def __init__(self, total_steps: int, start_step: int, samples_per_step: int, enabled: bool = True):
        self.enabled = enabled
        self.samples_per_step = samples_per_step
        self.start_step = start_step
        self.last_eval = ""
        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), disable=not enabled, transient=False)
        self.task = self.progress.add_task("train", total=total_steps, completed=start_step, stats="")
        self.started = time.perf_counter()

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def update(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        rate = (step - self.start_step) / max(time.perf_counter() - self.started, 1e-9)
        stats = f"loss {metrics.get('lm_loss', float('nan')):.3f} acc {metrics.get('accuracy', 0.0):.3f} {rate * self.samples_per_step:.0f} samples/s"
        self.progress.update(self.task, completed=step, stats=stats + self.last_eval)

    def show_eval(self, metrics: dict | None) -> None:
        if metrics:
            self.last_eval = f" | eval exact {metrics['exact_accuracy']:.3f}"
