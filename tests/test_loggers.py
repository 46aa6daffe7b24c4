"""train.logger: TensorBoard and W&B get exactly the scalars of metrics.jsonl, at the same steps."""

import importlib.util
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import TINY_MODEL

from hrmkit.config import load_run_config
from hrmkit.config_base import ConfigError, parse_overrides
from hrmkit.puzzles.task import PuzzleTask
from hrmkit.train.loggers import WANDB_ID_FILE, record_scalars
from hrmkit.train.trainer import Trainer

WANDB_MISSING = "wandb is not installed (pip install 'hrmkit[wandb]'); the W&B logger tests are skipped"
needs_wandb = pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason=WANDB_MISSING)


@pytest.fixture(autouse=True)
def quiet_offline_wandb(monkeypatch):
    """No test may reach the network or read a user's W&B settings."""
    for name in ("WANDB_MODE", "WANDB_PROJECT", "WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_ENTITY", "WANDB_RUN_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    # wandb reads the environment once per process (wandb.setup); start each test afresh.
    _wandb_teardown()
    yield
    _wandb_teardown()


def _wandb_teardown():
    if sys.modules.get("wandb") is not None:
        sys.modules["wandb"].teardown()


def tiny_config(data: Path, runs: Path, name: str, steps: int, logger: str):
    overrides = parse_overrides([*TINY_MODEL, f"data.path={data}", f"runs_dir={runs}", f"run_name={name}",
                                 f"train.steps={steps}", "train.eval_interval=3", "train.log_steps=2",
                                 "train.threads=1", "train.ema=false", f"train.logger={logger}"])
    return load_run_config("quickstart_sudoku4", overrides)


def train(data: Path, runs: Path, name: str, steps: int, logger: str) -> Path:
    Trainer(tiny_config(data, runs, name, steps, logger), PuzzleTask, log=lambda *_: None).train()
    return runs / name


def metrics_scalars(run: Path) -> dict[str, dict[int, float]]:
    """tag -> {step: value} as metrics.jsonl has them (a later line for the same step wins)."""
    expected: dict[str, dict[int, float]] = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        for tag, value in record_scalars(record).items():
            expected.setdefault(tag, {})[record["step"]] = value
    return expected


def test_metrics_lines_become_kind_slash_key_scalars():
    record = {"step": 4, "kind": "eval", "exact_accuracy": 0.5, "count": 64, "ok": True, "note": "x"}
    assert record_scalars(record) == {"eval/exact_accuracy": 0.5, "eval/count": 64.0}


def test_an_unknown_logger_is_one_line_naming_the_choices(sudoku4, tmp_path):
    with pytest.raises(ConfigError) as error:
        tiny_config(sudoku4, tmp_path, "run", 2, "tensorbord")
    message = str(error.value)
    assert "train.logger" in message and "'tensorboard'" in message and "'wandb'" in message and "\n" not in message


# ----------------------------------------------------------------------------- TensorBoard


def tensorboard_events(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value), ...] as TensorBoard shows them (events an interrupted attempt left purged)."""
    from tensorboard.backend.event_processing.event_accumulator import (
        SCALARS,
        EventAccumulator,
    )
    events = EventAccumulator(str(folder), size_guidance={SCALARS: 0})  # 0: keep every event
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_tensorboard_event_files_hold_every_metrics_scalar_at_its_step(sudoku4, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'hrmkit[tensorboard]')")
    run = train(sudoku4, tmp_path, "run", 6, "tensorboard")
    expected = metrics_scalars(run)
    logged = tensorboard_events(run / "tensorboard")
    assert {"train/lm_loss", "train/lr", "train/samples_per_s", "train/grad_norm", "eval/exact_accuracy",
            "eval/accuracy"} <= set(logged)
    assert logged.keys() == expected.keys()
    for tag, by_step in expected.items():
        assert [step for step, _ in logged[tag]] == sorted(by_step), tag
        for step, value in logged[tag]:
            assert value == pytest.approx(by_step[step], rel=1e-6, abs=1e-6), (tag, step)
    assert [step for step, _ in logged["eval/exact_accuracy"]] == [3, 6]
    assert [step for step, _ in logged["train/lr"]] == [2, 4, 6]


def test_tensorboard_shows_a_resumed_run_once_per_step(sudoku4, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'hrmkit[tensorboard]')")
    run = train(sudoku4, tmp_path, "run", 6, "tensorboard")
    for name in ("step_6.pt", "step_6.yaml"):  # as if interrupted after step 6 was logged but before it was saved
        (run / "checkpoints" / name).unlink()
    train(sudoku4, tmp_path, "run", 6, "tensorboard")  # resumes from step 3, logs 4..6 again
    logged = tensorboard_events(run / "tensorboard")
    assert [step for step, _ in logged["train/lm_loss"]] == [2, 4, 6]
    assert [step for step, _ in logged["eval/exact_accuracy"]] == [3, 6]
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 2


# ----------------------------------------------------------------------------- W&B (offline)


def wandb_records(path: Path):
    """The records of a W&B transaction log (``run-<id>.wandb``).

    The file is a 7-byte header (``:W&B``, magic, version), then LevelDB-log records in 32 KiB
    blocks: each chunk is crc32c (4 bytes), length (2, little-endian), type (1: full, 2: first,
    3: middle, 4: last), then a piece of a serialized ``wandb_internal_pb2.Record``.
    """
    from wandb.proto import wandb_internal_pb2
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    block, position, pieces = 32768, 7, b""
    while position + 7 <= len(data):
        left = block - position % block
        if left < 7:  # a block's tail too short for a header is padding
            position += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[position:position + 7])
        pieces += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pieces)
            pieces = b""
            yield record


def finished_wandb_records(path: Path, timeout_s: float = 60.0) -> list:
    """The records of a W&B transaction log once it holds the run's exit record. ``run.finish()`` can
    return before W&B's service process has written the log (seen on a busy machine: a log of its 7-byte
    header alone, complete a moment later), so a test that reads it in the same process waits for it."""
    from google.protobuf.message import DecodeError
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            records = list(wandb_records(path))
        except DecodeError:  # a record still being written
            records = []
        if any(record.WhichOneof("record_type") == "exit" for record in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def wandb_history(run: Path) -> tuple[set[str], dict[str, dict[int, float]], dict]:
    """(run ids, tag -> {step: value}, config) from every offline run folder under ``run/wandb``."""
    ids, history, config = set(), {}, {}
    logs = sorted((run / "wandb").glob("offline-run-*/run-*.wandb"))
    assert logs, f"no offline W&B run under {run / 'wandb'}"
    for log in logs:
        for record in finished_wandb_records(log):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                ids.add(record.run.run_id)
                config.update({item.key: json.loads(item.value_json) for item in record.run.config.update})
            elif kind == "history":
                items = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
                for tag, value in items.items():
                    if not tag.startswith("_"):
                        history.setdefault(tag, {})[record.history.step.num] = value
    return ids, history, config


@needs_wandb
def test_wandb_offline_run_holds_every_metrics_scalar_and_the_config(sudoku4, tmp_path):
    run = train(sudoku4, tmp_path, "run", 6, "wandb")
    ids, history, config = wandb_history(run)
    assert ids == {(run / WANDB_ID_FILE).read_text().strip()}
    expected = metrics_scalars(run)
    assert history.keys() == expected.keys()
    for tag, by_step in expected.items():
        assert history[tag].keys() == by_step.keys(), tag
        for step, value in by_step.items():
            assert history[tag][step] == pytest.approx(value), (tag, step)
    assert config["run_name"] == "run" and config["train"]["logger"] == "wandb" and config["train"]["steps"] == 6


@needs_wandb
def test_a_resumed_training_run_resumes_its_wandb_run(sudoku4, tmp_path):
    train(sudoku4, tmp_path, "run", 3, "wandb")
    first_id = (tmp_path / "run" / WANDB_ID_FILE).read_text().strip()
    run = train(sudoku4, tmp_path, "run", 6, "wandb")
    assert (run / WANDB_ID_FILE).read_text().strip() == first_id
    ids, history, _ = wandb_history(run)
    assert ids == {first_id} and len(list((run / "wandb").glob("offline-run-*"))) == 2
    assert sorted(history["train/lm_loss"]) == [2, 3, 4, 6]  # the first attempt ended at step 3


@needs_wandb
def test_wandb_mode_set_by_the_user_is_respected(sudoku4, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    run = train(sudoku4, tmp_path, "run", 2, "wandb")
    assert (run / "metrics.jsonl").exists() and not list((run / "wandb").glob("offline-run-*"))


# ----------------------------------------------------------------------------- missing packages


@pytest.mark.parametrize("logger", ["tensorboard", "wandb"])
def test_a_missing_logger_package_is_one_line_before_training(sudoku4, tmp_path, monkeypatch, logger):
    monkeypatch.setitem(sys.modules, logger, None)  # `import <logger>` now raises ImportError
    with pytest.raises(ConfigError) as error:
        Trainer(tiny_config(sudoku4, tmp_path, "run", 2, logger), PuzzleTask, log=lambda *_: None)
    assert str(error.value) == f"train.logger: {logger} needs the {logger} package: pip install 'hrmkit[{logger}]'"
    assert not (tmp_path / "run").exists()  # nothing written: it stopped before the run began


def test_cli_reports_a_missing_logger_package_in_one_line_exit_2(sudoku4, tmp_path):
    hidden = tmp_path / "hidden"  # first on the child's path: a tensorboard that cannot be imported
    hidden.mkdir()
    (hidden / "tensorboard.py").write_text("raise ImportError('hidden for the test')\n")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(hidden), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-m", "hrmkit", "train", "--config", "quickstart_sudoku4",
                             f"data.path={sudoku4}", f"runs_dir={tmp_path / 'runs'}", "train.logger=tensorboard",
                             *TINY_MODEL], capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: train.logger: tensorboard needs the tensorboard package: "
                                     "pip install 'hrmkit[tensorboard]'")
    assert not (tmp_path / "runs").exists()
