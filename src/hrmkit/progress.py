"""The progress bars of hrmkit: one rich layout, three uses.

- :class:`BuildProgress` for dataset builders and corpus tools, fed by their
  ``progress(description, completed, total)`` callback (one bar per description);
- :class:`TrainProgress` for training: step, loss, accuracy, samples/s and ETA on one line;
- :class:`ScoringProgress` for ``hrm eval code``: samples scored, pass rate so far, ETA.

Builder and scoring bars draw on stderr and only on a terminal, so pipes stay clean; the training
bar shares stdout with the training log and is switched by ``train.progress``.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(label: str, *fields: str, enabled: bool | None = None, stderr: bool = True) -> Progress:
    """``label  [bar]  n/total  <fields>  elapsed  eta``; ``fields`` are rich format strings over the task.

    ``enabled=None`` draws only when the stream is a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), *(TextColumn(field) for field in fields),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=Console(stderr=stderr),
                    disable=not stream.isatty() if enabled is None else not enabled)


class _Bar:
    progress: Progress

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)


class BuildProgress(_Bar):
    def __init__(self, enabled: bool | None = None):
        self.progress = progress_bar("{task.description}", enabled=enabled)
        self.tasks: dict[str, int] = {}

    def update(self, description: str, completed: int, total: int | None) -> None:
        if description not in self.tasks:
            self.tasks[description] = self.progress.add_task(description, total=total)
        self.progress.update(self.tasks[description], completed=completed, total=total)


class TrainProgress(_Bar):
    def __init__(self, total_steps: int, start_step: int, enabled: bool = True):
        self.enabled = enabled
        self.last_train, self.last_eval = "", ""
        self.progress = progress_bar("[bold]train", "{task.fields[stats]}", enabled=enabled, stderr=False)
        self.task = self.progress.add_task("train", total=total_steps, completed=start_step, stats="")

    def update(self, step: int) -> None:
        if self.enabled:
            self.progress.update(self.task, completed=step, stats=f"{self.last_train}{self.last_eval}")

    def show_train(self, metrics: dict) -> None:
        """The figures of the last log line (read there, so the bar makes the device wait for nothing),
        its samples/s too: the training steps alone, as metrics.jsonl and hrm report count them."""
        loss = metrics.get("lm_loss", metrics.get("loss", float("nan")))
        self.last_train = (f"loss {loss:.3f} acc {metrics.get('accuracy', 0.0):.3f} "
                           f"{metrics.get('samples_per_s', 0.0):.0f} samples/s")

    def show_eval(self, metrics: dict | None) -> None:
        if metrics and "exact_accuracy" in metrics:
            self.last_eval = f" | eval exact {metrics['exact_accuracy']:.3f}"
        elif metrics and "loss" in metrics:
            self.last_eval = f" | eval loss {metrics['loss']:.3f}"


class ScoringProgress(_Bar):
    def __init__(self, enabled: bool | None = None):
        self.progress = progress_bar("scoring", "pass {task.fields[rate]}", enabled=enabled)
        self.task = self.progress.add_task("scoring", total=None, rate="-")

    def update(self, scored: int, total: int, passed: int) -> None:
        self.progress.update(self.task, completed=scored, total=total, rate=f"{passed / scored:.1%}" if scored else "-")
