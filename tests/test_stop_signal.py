"""Ctrl-C or SIGTERM stops a training run after the step in flight, with a checkpoint of that step."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from cli_helpers import TINY_MODEL, final_weights, free_port, hrm, hrm_here, torchrun

from hrmkit.config import load_run_config
from hrmkit.puzzles.task import PuzzleTask
from hrmkit.train.stop_request import RunStopped
from hrmkit.train.trainer import Trainer


class SignalArrived(Exception):
    """What a signal raises in this test when the trainer does not catch it (so a regression fails the
    test instead of killing pytest)."""


@pytest.fixture
def signals_raise():
    def raise_(signum, _frame):
        raise SignalArrived(signal.Signals(signum).name)
    previous = {sig: signal.signal(sig, raise_) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield raise_
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def tiny_trainer(data, runs, steps=6, log_steps=1):
    cfg = load_run_config("quickstart_sudoku4", {
        "data": {"path": str(data)}, "runs_dir": str(runs), "run_name": "r",
        "model": {"hidden_size": 32, "L_layers": 1, "H_cycles": 2, "L_cycles": 2, "halt_max_steps": 4},
        "train": {"steps": steps, "eval_interval": 0, "checkpoint_interval": 0, "global_batch_size": 16,
                  "progress": False, "log_steps": log_steps, "device": "cpu"}})
    return Trainer(cfg, PuzzleTask, log=lambda *_: None)


def send_during_step(trainer, step, *signals):
    """Send ``signals`` to this process as optimizer step ``step`` (1-based) begins."""
    before = trainer._before_step

    def before_step():
        before()
        if trainer.step == step - 1:
            for sig in signals:
                os.kill(os.getpid(), sig)
    trainer._before_step = before_step


def checkpoints(runs):
    return sorted(path.name for path in (runs / "r" / "checkpoints").glob("*.pt"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_saves_the_step_in_flight_and_the_rerun_matches_the_uninterrupted_run(
        sudoku4, tmp_path, signals_raise, sig):
    # Log lines at steps 4 and 6: the stop at step 3 falls inside the first one's window.
    tiny_trainer(sudoku4, tmp_path / "straight", log_steps=4).train()
    stopped = tiny_trainer(sudoku4, tmp_path / "stopped", log_steps=4)
    send_during_step(stopped, 3, sig)
    with pytest.raises(RunStopped, match=f"{sig.name} at step 3"):
        stopped.train()
    assert checkpoints(tmp_path / "stopped") == ["step_3.pt"]
    assert signal.getsignal(sig) is signals_raise  # the handler from before the run is back

    resumed = tiny_trainer(sudoku4, tmp_path / "stopped", log_steps=4)
    assert resumed.step == 3
    resumed.train()
    straight, again = final_weights(tmp_path / "straight" / "r"), final_weights(tmp_path / "stopped" / "r")
    assert straight.keys() == again.keys()
    for key in straight:
        assert torch.equal(straight[key], again[key]), key
    # The step-4 line averages steps 1-4 in both runs (it averaged step 4 alone after the resume).
    timing = ("samples_per_s", "tokens_per_s", "ms_per_step")

    def train_lines(run):
        lines = (run / "r" / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k not in timing}
                for line in lines if json.loads(line)["kind"] == "train"]
    assert [line["step"] for line in train_lines(tmp_path / "straight")] == [4, 6]
    assert train_lines(tmp_path / "stopped") == train_lines(tmp_path / "straight")


def test_a_stop_signal_in_the_last_step_lets_the_run_finish_with_its_final_weights(sudoku4, tmp_path, signals_raise):
    trainer = tiny_trainer(sudoku4, tmp_path, steps=6)
    send_during_step(trainer, 6, signal.SIGINT)
    result = trainer.train()  # a checkpoint of the last step without final/ would leave a run that never finishes
    assert result["step"] == 6 and (tmp_path / "r" / "final" / "model.safetensors").is_file()


def test_a_second_signal_interrupts_at_once_as_without_the_stop_request(sudoku4, tmp_path, signals_raise):
    trainer = tiny_trainer(sudoku4, tmp_path)
    send_during_step(trainer, 3, signal.SIGINT, signal.SIGINT)
    with pytest.raises(SignalArrived):  # the handler from before the run, put back by the first signal
        trainer.train()
    assert checkpoints(tmp_path) == []


@pytest.mark.cli
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_process_group_with_batch_workers_stops_cleanly_and_the_rerun_resumes(sudoku4, tmp_path, sig):
    """Ctrl-C in a terminal (SIGINT) and a scheduler's SIGTERM reach the training process and its
    data-loader workers alike; a worker killed by one made the loader raise 'DataLoader worker is killed
    by signal' in the step the run was finishing."""
    args = ["train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}", "run_name=r",
            "train.eval_interval=0", "train.checkpoint_interval=0", "data.workers=2", *TINY_MODEL]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = subprocess.Popen([sys.executable, "-m", "hrmkit", *args, "train.steps=100000"], env=env,
                           start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "r" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        assert run.poll() is None and time.monotonic() < deadline, "the run did not start training"
        time.sleep(0.1)
    os.killpg(run.pid, sig)
    _, stderr = run.communicate(timeout=120)

    assert run.returncode == 130, stderr
    assert "Traceback" not in stderr
    stopped_at = int(stderr.split(f"{sig.name} at step ")[1].split(",")[0])
    assert checkpoints(tmp_path) == [f"step_{stopped_at}.pt"]
    logged = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert logged[-1] == stopped_at  # the step the checkpoint holds is the last one trained

    rerun = hrm(*args, f"train.steps={stopped_at + 2}")
    assert "resumed from" in rerun.stdout + rerun.stderr
    assert json.loads(metrics.read_text().splitlines()[-1])["step"] == stopped_at + 2


@pytest.mark.cli
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_under_torchrun_the_processes_stop_after_the_same_step_and_save_it(sudoku4, tmp_path, sig):
    """Ctrl-C reaches torchrun alone (its workers run in sessions of their own); it passes the signal
    on to each worker, which gets it at its own moment, and kills them 30 s later. Before, each worker
    was interrupted mid-step and every step since the newest checkpoint was lost."""
    args = ["train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}", "run_name=r",
            "train.eval_interval=0", "train.checkpoint_interval=0", "train.log_steps=1", *TINY_MODEL]
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
              "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "-m", "hrmkit", *args,
              "train.steps=100000"]
    run = subprocess.Popen(launch, env=dict(os.environ, OMP_NUM_THREADS="1"), start_new_session=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "r" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        assert run.poll() is None and time.monotonic() < deadline, "the run did not start training"
        time.sleep(0.1)
    os.kill(run.pid, sig)  # the launcher only, as a terminal's Ctrl-C or a scheduler's signal to the job
    _, stderr = run.communicate(timeout=120)

    said = [line for line in stderr.splitlines() if line.startswith("interrupted:")]
    assert len(said) == 1, stderr[-3000:]  # rank 0 speaks for both
    stopped_at = int(said[0].split(" at step ")[1].split(",")[0])
    assert checkpoints(tmp_path) == [f"step_{stopped_at}.pt"]
    logged = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert logged[-1] == stopped_at  # the checkpoint holds the last step trained

    rerun = torchrun(*args, f"train.steps={stopped_at + 2}")
    assert "resumed from" in rerun.stdout + rerun.stderr
    assert json.loads(metrics.read_text().splitlines()[-1])["step"] == stopped_at + 2


@pytest.mark.parametrize(("command", "says"), [
    (["info", "--config", "hrm_v1"], "interrupted: the command stopped before it finished"),
    (["train", "--config", "quickstart_sudoku4"], "interrupted: rerun the same command to resume"),
    (["train", "--config", "quickstart_sudoku4", "--reset_progress"], "interrupted: rerun the command without --reset_progress"),
])
def test_ctrl_c_promises_a_resume_only_where_rerunning_resumes(monkeypatch, command, says):
    """Rerunning a --reset_progress command resets again, and no other verb resumes."""
    def interrupted(*_args):
        raise KeyboardInterrupt
    module = "hrmkit.cli.info" if command[0] == "info" else "hrmkit.cli.train"
    monkeypatch.setattr(f"{module}.run", interrupted)
    result = hrm_here(*command, check=False)
    assert result.returncode == 130
    assert result.stderr.strip().startswith(says), result.stderr


@pytest.mark.parametrize(("rank", "lines"), [("0", 1), ("1", 0)])
def test_under_torchrun_only_rank_0_says_it_was_interrupted(monkeypatch, rank, lines):
    """Ctrl-C reaches every process of a torchrun job; each printed the same line."""
    def interrupted(*_args):
        raise KeyboardInterrupt
    monkeypatch.setattr("hrmkit.cli.train.run", interrupted)
    monkeypatch.setenv("RANK", rank)
    result = hrm_here("train", "--config", "quickstart_sudoku4", check=False)
    assert result.returncode == 130
    assert len(result.stderr.splitlines()) == lines, result.stderr


@pytest.mark.cli
def test_sigterm_stops_a_builder_as_ctrl_c_does_leaving_no_unfinished_output(tmp_path):
    """Only hrm train caught SIGTERM: a builder killed by it (a scheduler, `kill`) exited 143 in silence and
    left its unfinished output under a temporary name for good (368 MB for this ARC build in a user audit)."""
    out = tmp_path / "arc"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    build = subprocess.Popen([sys.executable, "-m", "hrmkit", "prepare", "arc", "--source", "arc1", "--num-aug", "100",
                              "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("arc.tmp-*")) and build.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert build.poll() is None, "the build ended before its output was being written"
    build.send_signal(signal.SIGTERM)
    _, err = build.communicate(timeout=120)
    assert build.returncode == 130
    assert err.splitlines()[-1] == "interrupted: SIGTERM; the command stopped before it finished"
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_a_module_imports_is_an_interruption_not_a_traceback(monkeypatch):
    """Ctrl-C in the first second, while torch imports, surfaced as the import's own error (ImportError:
    partially initialized module 'torch', RuntimeError: duplicate registrations...): 50-96 lines, exit 1."""
    def importing(*_args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise ImportError("cannot import name 'nn' from partially initialized module 'torch'") from None
    monkeypatch.setattr("hrmkit.cli.info.run", importing)
    result = hrm_here("info", "--config", "hrm_v1", check=False)
    assert result.returncode == 130
    assert result.stderr == "interrupted: the command stopped before it finished\n"


def test_an_error_not_raised_by_an_interrupt_still_surfaces(monkeypatch):
    def broken(*_args):
        raise ImportError("a real bug")
    monkeypatch.setattr("hrmkit.cli.info.run", broken)
    with pytest.raises(ImportError, match="a real bug"):
        hrm_here("info", "--config", "hrm_v1", check=False)
