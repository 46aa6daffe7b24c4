"""A run folder's metrics.jsonl when the run resumes (hrmkit.train.run_history), through the real trainer."""

import json

import pytest
from cli_helpers import TINY_MODEL, hrm_here

from hrmkit.train.run_history import drop_metrics_after


def train(data, runs, steps):
    return hrm_here("train", "--config", "quickstart_sudoku4", f"data.path={data}", f"runs_dir={runs}",
                    "run_name=run", f"train.steps={steps}", "train.eval_interval=2", "train.checkpoint_interval=2",
                    *TINY_MODEL)


def records(metrics):
    return [json.loads(line) for line in metrics.read_text().splitlines()]  # every line parses


@pytest.mark.cli
def test_a_resume_drops_the_torn_line_a_killed_attempt_left_and_logs_its_new_steps_on_lines_of_their_own(
        sudoku4, tmp_path):
    train(sudoku4, tmp_path, 2)
    metrics = tmp_path / "run" / "metrics.jsonl"
    before = metrics.read_text()
    with metrics.open("a") as file:
        file.write('{"step": 3, "kind": "tra')  # what a SIGKILL during the write of step 3's record leaves
    resumed = train(sudoku4, tmp_path, 4)
    assert metrics.read_text().startswith(before)
    assert [(r["step"], r["kind"]) for r in records(metrics)[-3:]] == [(3, "train"), (4, "train"), (4, "eval")]
    assert f"warning: {metrics}:" in resumed.stdout and "torn last line" in resumed.stdout


def test_an_unreadable_line_inside_the_file_is_kept_and_the_file_ends_in_a_newline(tmp_path, capsys):
    # What cannot be read is not destroyed; a whole last record without its newline stays, newline added,
    # so the trainer's next record starts a line of its own, even when no record is dropped.
    metrics = tmp_path / "metrics.jsonl"
    lines = ['{"step": 1, "kind": "train"}', "not json", '{"step": 2, "kind": "eval"}']
    metrics.write_text("\n".join(lines))
    assert drop_metrics_after(metrics, 2) == 0
    assert metrics.read_text() == "".join(f"{line}\n" for line in lines)
    assert capsys.readouterr().out == ""  # a whole record is no torn line
