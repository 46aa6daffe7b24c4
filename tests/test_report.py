"""Tests for ``hrmkit.viz.report``: metrics parsing, derived numbers, report files and errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from hrmkit.viz.report import write_report
from hrmkit.viz.run_folder import ReportError, load_metrics
from hrmkit.viz.run_stats import time_to_accuracy

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURE_FILES = ("loss.png", "exact_accuracy.png", "act_steps.png", "learning_rate.png", "throughput.png")


def train_record(step: int, lm_loss: float = 1.0) -> dict:
    return {
        "step": step, "kind": "train", "lm_loss": lm_loss, "accuracy": 0.5, "exact_accuracy": 0.1,
        "q_halt_loss": 0.01, "q_halt_accuracy": 0.9, "q_continue_loss": 0.02, "steps": 3.0,
        "count": 8.0, "grad_norm": 0.5, "samples_per_s": 100.0 + step, "tokens_per_s": 3600.0,
        "ms_per_step": 10.0, "lr": 1e-3,
    }


def eval_record(step: int, exact_accuracy: float, train_s: float) -> dict:
    return {
        "step": step, "kind": "eval", "exact_accuracy": exact_accuracy, "accuracy": 0.99,
        "halted_exact_accuracy": exact_accuracy, "halted_accuracy": 0.99, "steps": 2.5,
        "count": 100.0, "elapsed_s": train_s * 1.5, "train_s": train_s,
    }


# Eval accuracy climbs past 90 % at step 20 and 95 % at step 30, never 97 %; best is step 30.
EVALS = [eval_record(10, 0.5, 10.0), eval_record(20, 0.92, 20.0), eval_record(30, 0.96, 30.0), eval_record(40, 0.95, 40.0)]


def make_run(parent: Path, name: str, lines: list[str] | None = None) -> Path:
    run_dir = parent / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(
        f"run_name: {name}\nmodel:\n  variant: trm\n  hidden_size: 64\ndata:\n  path: /data/sudoku\n"
        "train:\n  steps: 40\n  global_batch_size: 8\n  lr: 0.001\n  optimizer: adamw\n  precision: fp32\n"
    )
    if lines is None:
        records = [train_record(step) for step in (10, 20, 30, 40)] + EVALS
        lines = [json.dumps(record) for record in records]
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return run_dir


def test_load_metrics_keeps_last_record_per_step_sorted(tmp_path: Path) -> None:
    # A resume re-logs step 20; its later line must replace the first one.
    lines = [json.dumps(r) for r in (train_record(20, lm_loss=9.0), train_record(10), eval_record(20, 0.1, 5.0))]
    lines += ["", json.dumps(train_record(20, lm_loss=2.0)), json.dumps(eval_record(20, 0.3, 6.0))]
    train, evals = load_metrics(make_run(tmp_path, "resumed", lines))
    assert [r["step"] for r in train] == [10, 20]
    assert train[1]["lm_loss"] == 2.0
    assert [(r["step"], r["exact_accuracy"]) for r in evals] == [(20, 0.3)]


def test_time_to_accuracy_finds_first_eval_reaching_each_threshold() -> None:
    reached = time_to_accuracy(list(reversed(EVALS)))
    assert reached[0.9]["step"] == 20
    assert reached[0.95]["step"] == 30
    assert reached[0.97] is None and reached[0.99] is None


def test_single_run_report_summarises_and_draws_valid_pngs(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "alpha")
    report_path = write_report([run_dir])
    assert report_path == run_dir / "report.md"
    report = report_path.read_text()
    assert "# Training report: alpha" in report
    assert "96.00 % at step 30 (highest logged, 100 examples), 30.0 s of training" in report
    assert "| 90.00 % | 20.0 s (step 20) |" in report
    assert "| 95.00 % | 30.0 s (step 30) |" in report
    assert "| 97.00 % | not reached |" in report
    assert "trm, hidden size 64" in report and "/data/sudoku" in report and "adamw" in report
    assert "| wall time | 60.0 s |" in report  # last eval's elapsed_s
    assert "| parameters | n/a |" in report  # no final weights
    for file_name in FIGURE_FILES:
        png = (run_dir / file_name).read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 1000, file_name
        assert f"]({file_name})" in report
    assert not list(run_dir.glob("*.tmp-*"))  # atomic writes leave no temporaries behind


def test_the_best_evaluation_is_what_best_model_holds(tmp_path: Path) -> None:
    """The report took the highest logged exact accuracy, while the trainer ranks a final evaluation on the
    interim evaluations' examples (unlogged) and keeps the first of equals: the report named step 10 where
    best-model/ held step 40."""
    run_dir = make_run(tmp_path, "ranked", [json.dumps(record) for record in (
        {**eval_record(10, 0.5, 10.0), "count": 20.0}, eval_record(40, 0.45, 40.0))])
    (run_dir / "best-model").mkdir()
    (run_dir / "best-model" / "metrics.json").write_text(json.dumps({"step": 40, "metrics": eval_record(40, 0.45, 40.0)}))
    report = write_report([run_dir]).read_text()
    assert "| best eval exact accuracy | 45.00 % at step 40 (best-model/, 100 examples), 40.0 s of training |" in report
    other = make_run(tmp_path, "other")
    comparison = write_report([run_dir, other], tmp_path / "both").read_text()
    assert "| 45.00 % (step 40) |" in comparison and "| 96.00 % (step 30) |" in comparison


def test_parameter_count_excludes_puzzle_embeddings_and_initial_states(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "counted")
    model_state = {
        "lm_head.weight": torch.zeros(3, 4),
        "q_head.bias": torch.zeros(2),
        "puzzle_emb.weights": torch.zeros(1000, 4),
        "H_init": torch.zeros(4),
        "L_init": torch.zeros(4),
    }
    torch.save({"model": model_state, "step": 40}, run_dir / "final.pt")
    report = write_report([run_dir], tmp_path / "out").read_text()
    assert "| parameters | 14 (" in report


def test_overlay_of_two_runs_writes_comparison_table(tmp_path: Path) -> None:
    runs = [make_run(tmp_path, "alpha"), make_run(tmp_path, "beta")]
    out_dir = tmp_path / "compare"
    report = write_report(runs, out_dir).read_text()
    table_rows = [line for line in report.splitlines() if line.startswith("| alpha") or line.startswith("| beta")]
    assert len(table_rows) == 2
    assert "96.00 % (step 30)" in table_rows[0] and "not reached" in table_rows[0]
    for file_name in FIGURE_FILES:
        assert (out_dir / file_name).read_bytes().startswith(PNG_MAGIC)
    assert not (runs[0] / "report.md").exists()


def test_overlaid_runs_of_one_name_are_told_apart_by_their_folders(tmp_path: Path) -> None:
    """A run and its own generations/1/ (after --reset_progress) share a run_name: the comparison called both
    'gen', in its title, its table and every legend."""
    run = make_run(tmp_path, "gen")
    (run / "generations").mkdir()
    earlier = make_run(run / "generations", "1")
    (earlier / "config.yaml").write_text((run / "config.yaml").read_text())  # the same run_name: gen
    report = write_report([run, earlier], tmp_path / "compare").read_text()
    assert report.splitlines()[0] == f"# Training comparison: {run}, {earlier}"
    assert len([line for line in report.splitlines() if line.startswith(f"| {run} |")]) == 1
    assert len([line for line in report.splitlines() if line.startswith(f"| {earlier} |")]) == 1


def test_overlay_needs_an_output_folder(tmp_path: Path) -> None:
    runs = [make_run(tmp_path, "alpha"), make_run(tmp_path, "beta")]
    with pytest.raises(ValueError, match="output folder"):
        write_report(runs)


def assert_one_line_report_error(run_dir: Path, expected: str) -> None:
    with pytest.raises(ReportError) as caught:
        write_report([run_dir])
    message = str(caught.value)
    assert "\n" not in message and expected in message, message


def test_missing_run_folder_is_reported(tmp_path: Path) -> None:
    assert_one_line_report_error(tmp_path / "nope", "run folder not found")


def test_missing_and_empty_metrics_are_reported(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "empty", lines=[""])
    assert_one_line_report_error(run_dir, "no metrics recorded")
    (run_dir / "metrics.jsonl").unlink()
    assert_one_line_report_error(run_dir, "missing metrics file")


def test_corrupt_line_names_file_and_line_number(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "corrupt", lines=[json.dumps(train_record(10)), '{"step": 20, "kind": "tr'])
    assert_one_line_report_error(run_dir, f"{run_dir / 'metrics.jsonl'}:2: corrupt line")
    (run_dir / "metrics.jsonl").write_text('{"kind": "train"}\n')
    assert_one_line_report_error(run_dir, "metrics.jsonl:1: corrupt line (needs an integer 'step'")


def test_a_torn_last_line_is_skipped_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # What a training process killed mid-write leaves: a record cut short, no newline after it.
    records = sorted([train_record(step) for step in (10, 20, 30, 40)] + EVALS, key=lambda record: record["step"])
    run_dir = make_run(tmp_path, "killed", [json.dumps(record) for record in records])
    metrics = run_dir / "metrics.jsonl"
    with metrics.open("a") as file:
        file.write('{"step": 50, "kind": "tra')
    train, evals = load_metrics(run_dir)
    assert [r["step"] for r in train] == [10, 20, 30, 40] and evals == EVALS
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: {metrics}:9: corrupt line"), warnings
    assert "96.00 % at step 30" in write_report([run_dir]).read_text()
    # Only the last line, only without its newline: a cut-short line inside the file is still refused.
    metrics.write_text(metrics.read_text() + "\n" + json.dumps(train_record(50)) + "\n")
    assert_one_line_report_error(run_dir, f"{metrics}:9: corrupt line")


def test_missing_matplotlib_gives_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = make_run(tmp_path, "headless")
    # A None entry in sys.modules makes the import fail as if the package were absent.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert_one_line_report_error(run_dir, "pip install 'hrmkit[viz]'")


def test_load_metrics_drops_what_an_attempt_logged_after_the_checkpoint_a_resume_started_from(tmp_path: Path) -> None:
    # Logged to step 80, killed with the newest checkpoint at 40: the rerun logs 50 and 60 again and
    # stops. The first attempt's 70, 80 and its evaluation at 80 came from weights that are gone.
    first = [train_record(step, lm_loss=9.0) for step in range(10, 90, 10)] + [eval_record(40, 0.4, 4.0), eval_record(80, 0.8, 8.0)]
    first.sort(key=lambda record: record["step"])
    rerun = [train_record(50, lm_loss=2.0), train_record(60, lm_loss=2.0)]
    train, evals = load_metrics(make_run(tmp_path, "resumed", [json.dumps(r) for r in first + rerun]))
    assert [r["step"] for r in train] == [10, 20, 30, 40, 50, 60]
    assert [r["lm_loss"] for r in train[-2:]] == [2.0, 2.0]
    assert [r["step"] for r in evals] == [40]


def test_load_metrics_of_a_restarted_run_shows_the_restart_only(tmp_path: Path) -> None:
    # A run folder from before generations/: a run to step 30, then a restart from step 0 to step 20.
    lines = [train_record(step) for step in (10, 20, 30)] + [eval_record(30, 0.9, 3.0)]
    lines += [train_record(step) for step in (10, 20)] + [eval_record(20, 0.5, 2.0)]
    train, evals = load_metrics(make_run(tmp_path, "restarted", [json.dumps(r) for r in lines]))
    assert [r["step"] for r in train] == [10, 20] and [(r["step"], r["exact_accuracy"]) for r in evals] == [(20, 0.5)]


def test_an_hrm_lm_report_shows_the_validation_loss_and_names_each_final_figure(tmp_path: Path) -> None:
    """HRM-LM's evaluations log a validation loss (what eval_loss_patience watches): the report showed it
    nowhere, and a puzzle run's 'steps' row (the mean halting step) read like the training steps."""
    records = []
    for step in (10, 20):
        records += [train_record(step), {"step": step, "kind": "eval", "loss": 2.5 - step / 20, "accuracy": 0.4,
                                         "teacher_forced_exact": 0.25, "exact_accuracy": 0.125, "count": 90.0,
                                         "elapsed_s": float(step), "train_s": step / 2}]
    run = make_run(tmp_path, "lm", [json.dumps(record) for record in records])
    report = write_report([run]).read_text()
    assert "| validation loss (each answer's token mean, averaged over answers) | 1.5 |" in report
    assert "| teacher-forced exact accuracy | 25.00 % |" in report and "| examples | 90 |" in report
    puzzle = write_report([make_run(tmp_path, "puzzle")]).read_text()
    assert "| mean halting step | 2.5 |" in puzzle and "| steps |" not in puzzle.split("## Final eval")[1]
