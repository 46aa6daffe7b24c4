"""Training-run reports: ``report.md`` plus PNG curves from a run folder's ``metrics.jsonl``.

One run folder gives a summary and its own curves; several give overlaid curves (one line
per run) and a comparison table. This module writes the markdown and ties the pieces
together; reading a run is ``run_folder``, its derived numbers ``run_stats``, the curves
``run_figures``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from hrmkit.files import atomic_write_text, output_folder
from hrmkit.viz.run_figures import FigureSpec, write_figures
from hrmkit.viz.run_folder import ReportError, Run, load_run
from hrmkit.viz.run_stats import (
    ACCURACY_THRESHOLDS,
    best_eval,
    median_samples_per_s,
    time_to_accuracy,
    wall_time_s,
)


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


def _best(run: Run) -> tuple[dict | None, str]:
    """The best evaluation and where it comes from: what best-model/ holds, where the run kept one (the
    trainer ranks a final evaluation on the examples the interim ones scored, which metrics.jsonl
    does not log), else the highest exact accuracy logged."""
    if run.best_model is not None:
        return run.best_model, "best-model/"
    return best_eval(run.evals), "highest logged"


def _best_eval_text(run: Run) -> str:
    best, source = _best(run)
    if best is None:
        return "n/a"
    return (
        f"{_percent(best['exact_accuracy'])} at step {best['step']} ({source}, {_number(best.get('count'))} examples), "
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
        ("best eval exact accuracy", _best_eval_text(run)),
        ("median samples/s", _number(median_samples_per_s(run.train))),
        ("wall time", _seconds(wall_time_s(run.evals))),
        ("learning rate", _number(run.setting("train", "lr"))),
        ("global batch size", _number(run.setting("train", "global_batch_size"))),
        ("optimizer", _number(run.setting("train", "optimizer"))),
        ("precision", _number(run.setting("train", "precision"))),
    ]


# An eval line's metrics as the final-eval table names them (in this order, where the line has them).
FINAL_EVAL_ROWS = {
    "loss": "validation loss (each answer's token mean, averaged over answers)", "exact_accuracy": "exact_accuracy",
    "accuracy": "accuracy",
    "teacher_forced_exact": "teacher-forced exact accuracy", "halted_exact_accuracy": "halted_exact_accuracy",
    "halted_accuracy": "halted_accuracy", "steps": "mean halting step", "count": "examples",
    "train_s": "train_s", "elapsed_s": "elapsed_s",
}


def _final_eval_rows(run: Run) -> list[tuple[str, str]]:
    final = run.evals[-1]
    rows = [("step", _number(final["step"]))]
    for key, label in FINAL_EVAL_ROWS.items():
        if key in final:
            rows.append((label, _format_eval_value(key, final[key])))
    return rows


def _format_eval_value(key: str, value: Any) -> str:
    if "accuracy" in key or key.endswith("_exact"):
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
        best, _ = _best(run)
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
    names = Counter(run.name for run in runs)
    for run, run_dir in zip(runs, run_dirs):
        if names[run.name] > 1:  # a run and its own generations/<n>/, or copies of one run: name them apart
            run.name = str(run_dir)
    target = Path(out_dir) if out_dir is not None else runs[0].folder
    output_folder(target)
    figures = write_figures(runs, target)
    markdown = single_run_markdown(runs[0], figures) if len(runs) == 1 else comparison_markdown(runs, figures)
    report_path = target / "report.md"
    atomic_write_text(report_path, markdown)
    return report_path
