"""The report's PNG curves: which figures there are (losses, exact accuracy, ACT steps, learning
rate, throughput) and how one run, or several overlaid, are drawn into them.

matplotlib is an optional dependency (``hrmkit[viz]``): it is imported only when figures are
drawn, so reading runs and writing markdown never need it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hrmkit.files import write_atomically
from hrmkit.viz.run_folder import ReportError, Run

PLOT_DPI = 110
MATPLOTLIB_MISSING = "matplotlib is needed for reports: pip install 'hrmkit[viz]'"


@dataclass(frozen=True)
class Series:
    kind: str  # "train" or "eval"
    key: str
    label: str


@dataclass(frozen=True)
class Panel:
    title: str
    x_key: str
    x_label: str
    y_label: str
    series: tuple[Series, ...]
    log_y: bool = False


@dataclass(frozen=True)
class FigureSpec:
    file_name: str
    caption: str
    panels: tuple[Panel, ...]


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("loss.png", "Losses", (
        Panel("Training losses", "step", "step", "loss", (
            Series("train", "lm_loss", "LM loss"),
            Series("train", "q_halt_loss", "Q-halt loss"),
            Series("train", "q_continue_loss", "Q-continue loss"),
            Series("eval", "loss", "validation loss"),  # HRM-LM's evaluations (what eval_loss_patience watches)
        ), log_y=True),
    )),
    FigureSpec("exact_accuracy.png", "Exact accuracy", (
        Panel("Exact accuracy by step", "step", "step", "exact accuracy", (
            Series("train", "exact_accuracy", "train"),
            Series("eval", "exact_accuracy", "eval"),
        )),
        Panel("Eval exact accuracy by training time", "train_s", "training seconds", "exact accuracy", (
            Series("eval", "exact_accuracy", "eval"),
        )),
    )),
    FigureSpec("act_steps.png", "ACT steps", (
        Panel("Mean ACT steps", "step", "step", "steps", (
            Series("train", "steps", "train: mean steps of finished examples"),
            Series("eval", "steps", "eval: mean halting step"),
        )),
    )),
    FigureSpec("learning_rate.png", "Learning rate", (
        Panel("Learning rate", "step", "step", "learning rate", (Series("train", "lr", "lr"),)),
    )),
    FigureSpec("throughput.png", "Throughput", (
        Panel("Training throughput", "step", "step", "samples / s", (
            Series("train", "samples_per_s", "samples/s"),
        )),
    )),
)

LINE_STYLES = ("-", "--", ":", "-.")


def _figure_class() -> type:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ReportError(MATPLOTLIB_MISSING) from None
    return Figure


def write_figures(runs: list[Run], out_dir: Path) -> list[FigureSpec]:
    """Draw every figure for ``runs`` into ``out_dir``; returns the figures written."""
    figure_class = _figure_class()
    for spec in FIGURES:
        _write_figure(figure_class, spec, runs, out_dir / spec.file_name)
    return list(FIGURES)


def _write_figure(figure_class: type, spec: FigureSpec, runs: list[Run], path: Path) -> None:
    # A bare Figure renders PNGs with the Agg canvas and never touches pyplot's global
    # state, so reports work headless and do not disturb a caller's interactive backend.
    figure = figure_class(figsize=(7.0 * len(spec.panels), 4.5), dpi=PLOT_DPI, layout="constrained")
    for index, panel in enumerate(spec.panels, start=1):
        _draw_panel(figure.add_subplot(1, len(spec.panels), index), panel, runs)
    write_atomically(path, lambda file: figure.savefig(file, format="png", dpi=PLOT_DPI))


def _draw_panel(axes: Any, panel: Panel, runs: list[Run]) -> None:
    # In an overlay colour tells runs apart and line style tells series apart; a single
    # run has only series to tell apart, so they get a colour each as well.
    for run_index, run in enumerate(runs):
        for series_index, series in enumerate(panel.series):
            color = f"C{(series_index if len(runs) == 1 else run_index) % 10}"
            records = run.train if series.kind == "train" else run.evals
            points = [(r[panel.x_key], r[series.key]) for r in records if panel.x_key in r and series.key in r]
            if not points:
                continue
            label = series.label if len(runs) == 1 else f"{run.name}: {series.label}"
            xs, ys = zip(*points)
            marker = "o" if series.kind == "eval" else None
            axes.plot(xs, ys, color=color, linestyle=LINE_STYLES[series_index % len(LINE_STYLES)],
                      marker=marker, markersize=3, label=label)
    axes.set_title(panel.title)
    axes.set_xlabel(panel.x_label)
    axes.grid(True, alpha=0.3)
    # Q losses sit orders of magnitude below the LM loss; a log axis shows both, when it can.
    log_scale = panel.log_y and _all_plotted_positive(axes)
    if log_scale:
        axes.set_yscale("log")
    axes.set_ylabel(f"{panel.y_label} (log scale)" if log_scale else panel.y_label)
    if axes.get_lines():
        axes.legend(fontsize="small")
    else:
        axes.text(0.5, 0.5, "no data", transform=axes.transAxes, ha="center", va="center")


def _all_plotted_positive(axes: Any) -> bool:
    lines = axes.get_lines()
    return bool(lines) and all(min(line.get_ydata()) > 0 for line in lines)
