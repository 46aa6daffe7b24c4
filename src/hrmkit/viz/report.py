"""Training-run reports: ``report.md`` plus PNG curves from a run folder's ``metrics.jsonl``.

One run folder gives a summary and its own curves; several give overlaid curves (one line
per run) and a comparison table. matplotlib is an optional dependency (``hrmkit[viz]``), so
it is imported only when plots are drawn.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from hrmkit.files import atomic_write_text, write_atomically

ACCURACY_THRESHOLDS: tuple[float, ...] = (0.9, 0.95, 0.97, 0.99)
# Keys that hold per-puzzle embeddings or fixed initial states: not learned "model size".
EXCLUDED_PARAMETER_KEYS: tuple[str, ...] = ("puzzle_emb.weights", "H_init", "L_init")
PLOT_DPI = 110
MATPLOTLIB_MISSING = "matplotlib is needed for reports: pip install 'hrmkit[viz]'"


class ReportError(ValueError):
    """A run folder cannot be reported on; the message is one line meant for the user."""


# ---------------------------------------------------------------------------------------
# Reading a run folder
# ---------------------------------------------------------------------------------------


def load_metrics(run_dir: str | Path) -> tuple[list[dict], list[dict]]:
    """Return ``(train, eval)`` records of ``run_dir/metrics.jsonl``, each sorted by step.

    A resumed run appends lines for steps it already logged; the last record for each
    ``(kind, step)`` wins because it comes from the run that went on.
    """
    metrics_path = _require_run_folder(Path(run_dir)) / "metrics.jsonl"
    if not metrics_path.is_file():
        raise ReportError(f"{metrics_path}: missing metrics file")
    latest: dict[tuple[str, int], dict] = {}
    for line_number, line in enumerate(_read_lines(metrics_path), start=1):
        if not line.strip():
            continue
        record = _parse_metrics_line(metrics_path, line_number, line)
        latest[(record["kind"], record["step"])] = record
    if not latest:
        raise ReportError(f"{metrics_path}: no metrics recorded")
    by_step = sorted(latest.items(), key=lambda item: item[0][1])
    train = [record for (kind, _), record in by_step if kind == "train"]
    evals = [record for (kind, _), record in by_step if kind == "eval"]
    return train, evals


def _require_run_folder(run_dir: Path) -> Path:
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: run folder not found")
    return run_dir


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ReportError(f"{path}: not UTF-8 text ({error.reason})") from None


def _parse_metrics_line(path: Path, line_number: int, line: str) -> dict:
    where = f"{path}:{line_number}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ReportError(f"{where}: corrupt line ({error.msg})") from None
    if not isinstance(record, dict):
        raise ReportError(f"{where}: corrupt line (expected a JSON object)")
    step = record.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or not isinstance(record.get("kind"), str):
        raise ReportError(f"{where}: corrupt line (needs an integer 'step' and a 'kind')")
    return record


def load_run_config(run_dir: Path) -> dict:
    """The resolved ``config.yaml`` of a run, or ``{}`` when the folder has none."""
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        return {}
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ReportError(f"{config_path}: unreadable config ({first_line})") from None
    return config if isinstance(config, dict) else {}


def count_parameters(run_folder: Path) -> int | None:
    """Learned parameters of a run's final weights, or ``None`` without them."""
    # Only needed for this one number; keeps plain reports light to import.
    from hrmkit.train.checkpoint import CheckpointError, load_checkpoint_file
    from hrmkit.train.weights import is_weights_folder, tensor_sizes

    final = run_folder / "final"
    try:
        if is_weights_folder(final):
            sizes = tensor_sizes(final)  # the header alone: no tensor is read
        elif (run_folder / "final.pt").is_file():  # a run from before weights folders
            sizes = {key: value.numel() for key, value in load_checkpoint_file(run_folder / "final.pt")["model"].items()}
        else:
            return None
    except CheckpointError as error:
        raise ReportError(str(error)) from None
    except KeyError:
        raise ReportError(f"{run_folder / 'final.pt'}: unreadable checkpoint (no 'model' weights)") from None
    return sum(size for key, size in sizes.items() if not any(part in key for part in EXCLUDED_PARAMETER_KEYS))


@dataclass
class Run:
    """Everything a report needs from one run folder."""

    folder: Path
    name: str
    config: dict
    train: list[dict]
    evals: list[dict]
    parameter_count: int | None = None
    config_sections: dict[str, dict] = field(init=False)

    def __post_init__(self) -> None:
        self.config_sections = {
            section: self.config.get(section) if isinstance(self.config.get(section), dict) else {}
            for section in ("model", "data", "train")
        }

    def setting(self, section: str, key: str) -> Any:
        return self.config_sections[section].get(key)


def load_run(run_dir: str | Path) -> Run:
    folder = Path(run_dir)
    train, evals = load_metrics(folder)
    config = load_run_config(folder)
    return Run(
        folder=folder,
        name=str(config.get("run_name") or folder.resolve().name),
        config=config,
        train=train,
        evals=evals,
        parameter_count=count_parameters(folder),
    )


# ---------------------------------------------------------------------------------------
# Derived numbers
# ---------------------------------------------------------------------------------------


def time_to_accuracy(
    evals: list[dict], thresholds: Sequence[float] = ACCURACY_THRESHOLDS
) -> dict[float, dict | None]:
    """For each threshold, the first eval (by step) whose exact accuracy reaches it, else None."""
    ordered = sorted(evals, key=lambda record: record["step"])
    return {
        threshold: next(
            (record for record in ordered if record.get("exact_accuracy", 0.0) >= threshold), None
        )
        for threshold in thresholds
    }


def best_eval(evals: list[dict]) -> dict | None:
    """The eval with the highest exact accuracy; the earliest one wins a tie."""
    scored = [record for record in evals if "exact_accuracy" in record]
    return max(scored, key=lambda record: (record["exact_accuracy"], -record["step"]), default=None)


def median_samples_per_s(train: list[dict]) -> float | None:
    rates = [record["samples_per_s"] for record in train if "samples_per_s" in record]
    return statistics.median(rates) if rates else None


def wall_time_s(evals: list[dict]) -> float | None:
    """Wall time of the run up to its last eval (includes eval and start-up time)."""
    timed = [record for record in evals if "elapsed_s" in record]
    return timed[-1]["elapsed_s"] if timed else None


# ---------------------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100.0 * value:.2f} %"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def _number(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _eval_at(record: dict | None) -> str:
    if record is None:
        return "not reached"
    return f"{_seconds(record.get('train_s'))} (step {record['step']})"


def _last_step(run: Run) -> int:
    return max(record["step"] for record in run.train + run.evals)


def _best_eval_text(evals: list[dict]) -> str:
    best = best_eval(evals)
    if best is None:
        return "n/a"
    return (
        f"{_percent(best['exact_accuracy'])} at step {best['step']}, "
        f"{_seconds(best.get('train_s'))} of training"
    )


def _parameters_text(parameter_count: int | None) -> str:
    if parameter_count is None:
        return "n/a"
    return f"{parameter_count:,} (excluding puzzle embeddings, H_init, L_init)"


def _summary_rows(run: Run) -> list[tuple[str, str]]:
    variant = run.setting("model", "variant") or "n/a"
    hidden_size = _number(run.setting("model", "hidden_size"))
    configured_steps = _number(run.setting("train", "steps"))
    return [
        ("run", run.name),
        ("folder", str(run.folder)),
        ("model", f"{variant}, hidden size {hidden_size}"),
        ("parameters", _parameters_text(run.parameter_count)),
        ("dataset", _number(run.setting("data", "path"))),
        ("steps", f"{_number(_last_step(run))} logged of {configured_steps} configured"),
        ("best eval exact accuracy", _best_eval_text(run.evals)),
        ("median samples/s", _number(median_samples_per_s(run.train))),
        ("wall time", _seconds(wall_time_s(run.evals))),
        ("learning rate", _number(run.setting("train", "lr"))),
        ("global batch size", _number(run.setting("train", "global_batch_size"))),
        ("optimizer", _number(run.setting("train", "optimizer"))),
        ("precision", _number(run.setting("train", "precision"))),
    ]


FINAL_EVAL_KEYS = (
    "exact_accuracy", "accuracy", "halted_exact_accuracy", "halted_accuracy",
    "steps", "count", "train_s", "elapsed_s",
)


def _final_eval_rows(run: Run) -> list[tuple[str, str]]:
    final = run.evals[-1]
    rows = [("step", _number(final["step"]))]
    for key in FINAL_EVAL_KEYS:
        if key in final:
            value = final[key]
            rows.append((key, _format_eval_value(key, value)))
    return rows


def _format_eval_value(key: str, value: Any) -> str:
    if "accuracy" in key:
        return _percent(value)
    return _seconds(value) if key.endswith("_s") else _number(value)


def _figure_lines(figures: list[FigureSpec]) -> list[str]:
    lines = ["## Curves", ""]
    for spec in figures:
        lines += [f"### {spec.caption}", "", f"![{spec.caption}]({spec.file_name})", ""]
    return lines


def single_run_markdown(run: Run, figures: list[FigureSpec]) -> str:
    lines = [f"# Training report: {run.name}", ""]
    lines += _table(("", "value"), _summary_rows(run)) + [""]
    lines += ["## Time to accuracy", ""]
    lines += ["Training seconds (excluding eval) to the first eval at or above each exact accuracy.", ""]
    reached = [(_percent(threshold), _eval_at(record)) for threshold, record in time_to_accuracy(run.evals).items()]
    lines += _table(("exact accuracy", "training time"), reached) + [""]
    lines += ["## Final eval", ""]
    final_eval = _table(("metric", "value"), _final_eval_rows(run)) if run.evals else ["No eval recorded."]
    lines += final_eval + [""]
    return "\n".join(lines + _figure_lines(figures))


def comparison_markdown(runs: list[Run], figures: list[FigureSpec]) -> str:
    header = ["run", "model", "parameters", "steps", "best eval exact", "final eval exact",
              "median samples/s", "wall time"] + [f"time to {_percent(t)}" for t in ACCURACY_THRESHOLDS]
    rows = []
    for run in runs:
        best = best_eval(run.evals)
        final = run.evals[-1].get("exact_accuracy") if run.evals else None
        rows.append([
            run.name,
            f"{run.setting('model', 'variant') or 'n/a'} h{_number(run.setting('model', 'hidden_size'))}",
            _number(run.parameter_count),
            _number(_last_step(run)),
            "n/a" if best is None else f"{_percent(best['exact_accuracy'])} (step {best['step']})",
            _percent(final),
            _number(median_samples_per_s(run.train)),
            _seconds(wall_time_s(run.evals)),
        ] + [_eval_at(record) for record in time_to_accuracy(run.evals).values()])
    lines = [f"# Training comparison: {', '.join(run.name for run in runs)}", ""]
    lines += _table(header, rows) + [""]
    lines += ["Times are training seconds (excluding eval) to the first eval at or above the accuracy.", ""]
    return "\n".join(lines + _figure_lines(figures))


# ---------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------


def write_report(run_dirs: list[Path], out_dir: Path | None = None) -> Path:
    """Write ``report.md`` and PNG curves for one run, or an overlay of several; return the report path.

    One run writes into its own folder unless ``out_dir`` is given; several runs need
    ``out_dir`` because no single run folder owns the comparison.
    """
    if not run_dirs:
        raise ReportError("no run folders given")
    if len(run_dirs) > 1 and out_dir is None:
        raise ReportError("comparing several runs needs an output folder (--out DIR)")
    runs = [load_run(run_dir) for run_dir in run_dirs]
    target = Path(out_dir) if out_dir is not None else runs[0].folder
    target.mkdir(parents=True, exist_ok=True)
    figures = write_figures(runs, target)
    markdown = single_run_markdown(runs[0], figures) if len(runs) == 1 else comparison_markdown(runs, figures)
    report_path = target / "report.md"
    atomic_write_text(report_path, markdown)
    return report_path
