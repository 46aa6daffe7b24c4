"""A run folder's metrics.jsonl when the run resumes (hrmkit.train.run_history), through the real trainer."""

import json
import shutil

import pytest
import torch
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


@pytest.mark.cli
def test_a_run_resumed_to_redo_its_final_evaluation_logs_it_once(sudoku4, tmp_path):
    """Killed after its final evaluation was logged but before final/ was written, the rerun evaluates
    again: the stopped attempt's line went, or metrics.jsonl held two final evaluations of step 4."""
    train(sudoku4, tmp_path, 4)
    run = tmp_path / "run"
    shutil.rmtree(run / "final")  # what the kill left: the last checkpoint and the eval line, no final/
    again = train(sudoku4, tmp_path, 4)
    assert "dropped 1 metrics lines logged after step 4" in again.stdout
    assert [r["step"] for r in records(run / "metrics.jsonl") if r["kind"] == "eval"] == [2, 4]
    assert (run / "final" / "metrics.json").is_file()


@pytest.mark.cli
def test_the_last_steps_are_saved_before_the_final_evaluation(sudoku4, tmp_path, monkeypatch):
    """A scheduler that kills a run in its final evaluation (a long one, on a large split) lost every step
    since the last checkpoint: that was saved only after the evaluation."""
    from hrmkit.puzzles.task import PuzzleTask
    evaluate = PuzzleTask.evaluate

    calls = []

    def killed_in_the_final_evaluation(task, model, device, autocast, max_examples):
        calls.append(max_examples)
        if len(calls) == 3:  # after the evaluations of steps 2 and 4: the final one, at step 5
            raise SystemExit("killed")
        return evaluate(task, model, device, autocast, max_examples)

    monkeypatch.setattr(PuzzleTask, "evaluate", killed_in_the_final_evaluation)
    with pytest.raises(SystemExit):
        hrm_here("train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}",
                 "run_name=run", "train.steps=5", "train.eval_interval=2", "train.checkpoint_interval=2", *TINY_MODEL)
    assert sorted(path.name for path in (tmp_path / "run" / "checkpoints").glob("step_*.pt"))[-1] == "step_5.pt"


@pytest.mark.cli
def test_a_best_model_saved_after_the_resumed_checkpoint_does_not_outlive_its_attempt(sudoku4, tmp_path):
    """An attempt killed between an evaluation that wrote best-model/ and its next checkpoint left weights the
    resumed run no longer has; hrm eval of the run read them, and best-model/metrics.json named a step and a
    score that metrics.jsonl did not hold."""
    train(sudoku4, tmp_path, 4)
    run = tmp_path / "run"
    saved = json.loads((run / "best-model" / "metrics.json").read_text())
    saved["step"], saved["metrics"]["exact_accuracy"] = 3, 1.0  # the stopped attempt's, as a later step would be
    (run / "best-model" / "metrics.json").write_text(json.dumps(saved))
    for name in ("final", "checkpoints/step_4.pt", "checkpoints/step_4.yaml"):
        shutil.rmtree(run / name) if (run / name).is_dir() else (run / name).unlink()
    again = train(sudoku4, tmp_path, 4)
    assert "removed best-model/ of step 3: the attempt that stopped saved it after step 2" in again.stdout
    if (run / "best-model").exists():  # written again by this attempt's evaluations, and matching one of them
        best = json.loads((run / "best-model" / "metrics.json").read_text())
        logged = {r["step"]: r for r in records(run / "metrics.jsonl") if r["kind"] == "eval"}
        assert best["metrics"]["exact_accuracy"] == logged[best["step"]]["exact_accuracy"]


@pytest.mark.cli
@pytest.mark.parametrize("flag", [[], ["--reset_progress"]])
def test_a_reset_stopped_before_its_first_checkpoint_starts_again_from_the_loaded_weights(flag, sudoku4, tmp_path):
    """--reset_progress moves the run into generations/<n>/ and then saves the new generation's step 0; a
    kill between the two left no checkpoint, and the rerun trained from random weights without a word."""
    from cli_helpers import final_weights

    from hrmkit.train.run_history import start_new_generation
    reference, stopped = tmp_path / "reference", tmp_path / "stopped"
    train(sudoku4, reference, 2)
    shutil.copytree(reference / "run", stopped / "run")
    hrm_here("train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={reference}", "run_name=run",
             "train.steps=2", "train.eval_interval=2", "train.checkpoint_interval=2", *TINY_MODEL, "--reset_progress")
    start_new_generation(stopped / "run")  # what the kill left
    rerun = hrm_here("train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={stopped}",
                     "run_name=run", "train.steps=2", "train.eval_interval=2", "train.checkpoint_interval=2",
                     *TINY_MODEL, *flag)
    assert f"--reset_progress moved the run to {stopped / 'run' / 'generations' / '1'} and stopped" in rerun.stdout
    assert sorted(path.name for path in (stopped / "run" / "generations").iterdir()) == ["1"]
    expected, got = final_weights(reference / "run"), final_weights(stopped / "run")
    assert expected.keys() == got.keys() and all(torch.equal(expected[name], got[name]) for name in expected)


@pytest.mark.cli
def test_a_run_whose_newest_checkpoint_a_kill_damaged_is_read_from_the_one_before(sudoku4, tmp_path):
    """hrm eval / viz / info of a run with no weights folder read the newest step_N.pt as it was, and a
    truncated one failed with 'OSError: [Errno 22] Invalid argument'; a resumed run skips it."""
    train(sudoku4, tmp_path, 4)
    run = tmp_path / "run"
    shutil.rmtree(run / "final")
    shutil.rmtree(run / "best-model")
    newest = run / "checkpoints" / "step_4.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    result = hrm_here("eval", "--checkpoint", run, "--data", sudoku4, "--out", tmp_path / "eval")
    assert result.returncode == 0 and "warning: skipping unusable checkpoint" in result.stderr
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["evaluated"]["checkpoints"] == [
        str(run / "checkpoints" / "step_2.pt")]


@pytest.mark.cli
def test_a_second_process_training_the_same_run_is_refused_while_the_first_runs(sudoku4, tmp_path):
    """Two hrm train of one run_name both ran: the second rewrote metrics.jsonl under the first, mixed its
    checkpoints with the first's and called the first's lines 'logged by the attempt that stopped'."""
    import signal
    import subprocess
    import sys
    import time
    args = ["train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}", "run_name=run",
            "train.steps=100000", *TINY_MODEL]
    first = subprocess.Popen([sys.executable, "-m", "hrmkit", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    metrics = tmp_path / "run" / "metrics.jsonl"
    try:
        deadline = time.monotonic() + 120
        while not (metrics.is_file() and metrics.stat().st_size) and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert first.poll() is None, first.communicate()
        logged = metrics.read_text()
        second = hrm_here(*args[:-len(TINY_MODEL) - 1], "train.steps=3", *TINY_MODEL, check=False)  # short if it runs
        assert second.returncode == 2
        assert second.stderr == (f"error: {tmp_path / 'run'} is being trained by another process (pid {first.pid}); "
                                 "wait for it to end, or pick another run_name\n")
        assert metrics.read_text().startswith(logged)  # the first's lines are all still there
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert first.returncode == 130
    assert hrm_here(*args[:-len(TINY_MODEL) - 1], "train.steps=1", *TINY_MODEL, check=False).returncode == 0


@pytest.mark.cli
def test_a_checkpoint_save_clears_the_unfinished_file_a_killed_save_left(sudoku4, tmp_path):
    """Killed while writing step_N.pt, a save left step_N.pt.tmp-<pid> (checkpoint-sized) for good: no later
    save writes that name."""
    import subprocess
    import sys
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    leftover = tmp_path / "run" / "checkpoints" / f"step_3.pt.tmp-{child.pid}"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a checkpoint")
    train(sudoku4, tmp_path, 4)
    assert not leftover.exists() and (tmp_path / "run" / "checkpoints" / "step_4.pt").is_file()
