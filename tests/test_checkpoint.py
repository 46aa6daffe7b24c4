from __future__ import annotations

import pathlib
import random

import numpy as np
import pytest
import torch
from cli_helpers import hrm

from hrmkit.files import atomic_write_text
from hrmkit.train.checkpoint import (
    CheckpointError,
    atomic_torch_save,
    find_resumable,
    is_reference_checkpoint,
    load_checkpoint_file,
    load_reference_config,
    normalize_reference_keys,
    save_checkpoint,
    to_reference_keys,
)


def _state(value: float = 1.0) -> dict:
    return {"model": {"weight": torch.full((2, 2), value)}, "optimizer": {}}


def test_atomic_writes_leave_only_the_target(tmp_path):
    atomic_torch_save({"x": torch.ones(3)}, tmp_path / "a.pt")
    atomic_write_text(tmp_path / "a.txt", "hello\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "a.txt"]
    assert torch.equal(torch.load(tmp_path / "a.pt")["x"], torch.ones(3))
    assert (tmp_path / "a.txt").read_text() == "hello\n"


def test_failed_atomic_save_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "a.pt"
    atomic_torch_save({"x": 1}, path)
    with pytest.raises(Exception):
        atomic_torch_save({"x": lambda: None}, path)  # lambdas cannot be pickled
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]
    assert torch.load(path) == {"x": 1}


def test_save_checkpoint_writes_state_config_and_marker_last(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt", 7, _state(), "arch: {}\n", limit=None)
    assert path == tmp_path / "ckpt" / "step_7.pt"
    assert (tmp_path / "ckpt" / "step_7.yaml").read_text() == "arch: {}\n"
    state = load_checkpoint_file(path, require_complete=True)
    assert state["step"] == 7
    assert list(state)[-1] == "complete" and state["complete"] is True


def test_rotation_keeps_the_newest_by_step_number(tmp_path):
    for step in (5, 20, 100, 40):
        save_checkpoint(tmp_path, step, _state(), "", limit=2)
    names = sorted(p.name for p in tmp_path.iterdir())
    # Newest means highest step, not most recently written: 40 outranks 20 and 5.
    assert names == ["step_100.pt", "step_100.yaml", "step_40.pt", "step_40.yaml"]


def test_rotation_never_removes_the_checkpoint_just_written(tmp_path):
    save_checkpoint(tmp_path, 100, _state(), "", limit=1)
    save_checkpoint(tmp_path, 10, _state(), "", limit=1)
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["step_10.pt", "step_100.pt"]


def test_no_limit_keeps_everything(tmp_path):
    for step in range(4):
        save_checkpoint(tmp_path, step, _state(), "", limit=0)
    assert len(list(tmp_path.glob("*.pt"))) == 4


def test_find_resumable_skips_a_truncated_newest_checkpoint(tmp_path):
    save_checkpoint(tmp_path, 1, _state(1.0), "", limit=None)
    newest = save_checkpoint(tmp_path, 2, _state(2.0), "", limit=None)
    data = newest.read_bytes()
    newest.write_bytes(data[: len(data) // 2])

    path, warnings = find_resumable(tmp_path)
    assert path == tmp_path / "step_1.pt"
    assert len(warnings) == 1 and "step_2.pt" in warnings[0] and "\n" not in warnings[0]


def test_find_resumable_skips_a_file_without_the_complete_marker(tmp_path):
    save_checkpoint(tmp_path, 1, _state(), "", limit=None)
    torch.save({"step": 3}, tmp_path / "step_3.pt")
    path, warnings = find_resumable(tmp_path)
    assert path == tmp_path / "step_1.pt"
    assert "incomplete" in warnings[0]
    assert load_checkpoint_file(tmp_path / "step_3.pt") == {"step": 3}
    with pytest.raises(CheckpointError, match="incomplete"):
        load_checkpoint_file(tmp_path / "step_3.pt", require_complete=True)


def test_find_resumable_in_an_empty_or_missing_folder(tmp_path):
    assert find_resumable(tmp_path / "nothing") == (None, [])
    (tmp_path / "step_1.pt.tmp-123").write_bytes(b"partial")
    assert find_resumable(tmp_path) == (None, [])


def test_load_checkpoint_file_errors_are_one_line(tmp_path):
    garbage = tmp_path / "step_1.pt"
    garbage.write_bytes(b"not a checkpoint\n\n")
    for path in (garbage, tmp_path / "missing.pt"):
        with pytest.raises(CheckpointError) as error:
            load_checkpoint_file(path)
        assert "\n" not in str(error.value) and str(path) in str(error.value)


INNER_KEYS = ["H_level.layers.0.self_attn.qkv_proj.weight", "H_init", "puzzle_emb.weights"]


@pytest.mark.parametrize("compiled", [False, True])
def test_reference_key_round_trip(compiled):
    ours = {key: torch.zeros(1) for key in INNER_KEYS}
    reference = to_reference_keys(ours, compiled=compiled)
    prefix = "_orig_mod.model.inner." if compiled else "model.inner."
    assert list(reference) == [prefix + key for key in INNER_KEYS]
    assert normalize_reference_keys(reference) == ours


def test_normalize_keeps_keys_without_reference_prefix():
    assert list(normalize_reference_keys({"lm_head.weight": 0, "model.inner.x": 1})) == ["lm_head.weight", "x"]


def test_is_reference_checkpoint(tmp_path):
    reference = tmp_path / "step_10"
    torch.save(to_reference_keys({"H_init": torch.zeros(2, dtype=torch.bfloat16)}, compiled=True), reference)
    ours = save_checkpoint(tmp_path / "ours", 1, _state(), "", limit=None)
    plain = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(1)}, plain)
    assert is_reference_checkpoint(reference)
    assert not is_reference_checkpoint(ours)
    assert not is_reference_checkpoint(plain)
    assert not is_reference_checkpoint(tmp_path / "missing")


def test_load_reference_config_reads_all_config_beside_the_checkpoint(tmp_path):
    checkpoint = tmp_path / "step_10"
    with pytest.raises(CheckpointError, match="all_config.yaml"):
        load_reference_config(checkpoint)
    (tmp_path / "all_config.yaml").write_text("arch:\n  name: hrm\n  hidden_size: 512\nlr: 0.0001\n")
    assert load_reference_config(checkpoint) == {"arch": {"name": "hrm", "hidden_size": 512}, "lr": 0.0001}


# ---------------------------------------------------------------------------------------
# Loading never unpickles code: only tensors, plain data and numpy's RNG state load
# ---------------------------------------------------------------------------------------


class _TouchOnLoad:
    """Unpickling this calls ``Path.touch(marker)``: any code could run in its place."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def _hostile_checkpoint(tmp_path) -> tuple[pathlib.Path, pathlib.Path]:
    marker = tmp_path / "code-ran"
    path = tmp_path / "hostile.pt"
    torch.save({"format": "hrmkit", "model": {"weight": _TouchOnLoad(marker)}, "config": {}}, path)
    assert not marker.exists()
    return path, marker


def test_a_hostile_checkpoint_runs_no_code_and_is_one_clear_line(tmp_path):
    path, marker = _hostile_checkpoint(tmp_path)
    try:
        load_checkpoint_file(path)
        message = None
    except CheckpointError as error:
        message = str(error)
    assert not marker.exists(), "loading the checkpoint ran code from it"
    assert message is not None
    assert "\n" not in message and str(path) in message and "other than tensors" in message
    assert not is_reference_checkpoint(path) and not marker.exists()


@pytest.mark.cli
def test_hrm_eval_refuses_a_hostile_checkpoint_in_one_line_exit_2(sudoku4, tmp_path):
    path, marker = _hostile_checkpoint(tmp_path)
    result = hrm("eval", "--checkpoint", str(path), "--data", str(sudoku4), "--out", str(tmp_path / "eval"), check=False)
    assert not marker.exists(), "loading the checkpoint ran code from it"
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert str(path) in result.stderr and "other than tensors" in result.stderr


def _training_state() -> dict:
    """What the trainer's step checkpoints hold today: weights, optimizer, scaler and RNG state."""
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    return {"model": model.state_dict(), "optimizers": [optimizer.state_dict()],
            "schedulers": [torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0).state_dict()],
            "scaler": torch.amp.GradScaler("cpu", enabled=False).state_dict(), "ema": None,
            "task_by_rank": [{"position": 3}], "rng": rng, "best_exact": 0.25,
            "early_stop": {"best_loss": float("inf"), "evals_without_better_loss": 0},
            "config": {"model": {"hidden_size": 32}}}


def test_a_training_checkpoint_with_numpy_rng_state_loads_and_restores_the_rng(tmp_path):
    state = _training_state()
    path = save_checkpoint(tmp_path, 3, state, "", limit=None)  # written exactly as the trainer writes it
    assert find_resumable(tmp_path) == (path, [])
    loaded = load_checkpoint_file(path, require_complete=True)
    assert torch.equal(loaded["model"]["weight"], state["model"]["weight"])
    assert loaded["optimizers"][0]["state"][0]["step"] == state["optimizers"][0]["state"][0]["step"]
    draws = []
    for rng in (loaded["rng"], state["rng"]):
        random.setstate(rng["python"])
        np.random.set_state(rng["numpy"])
        torch.set_rng_state(rng["torch"])
        draws.append((random.random(), np.random.rand(), torch.rand(1).item()))
    assert draws[0] == draws[1]


def test_rng_state_pickled_under_numpy_1_names_loads(tmp_path):
    """numpy 1.x pickles arrays with ``numpy.core.multiarray._reconstruct``, numpy 2 with ``numpy._core``."""
    path = tmp_path / "step_1.pt"
    torch.save({"rng": {"numpy": np.random.get_state()}}, path, _use_new_zipfile_serialization=False)
    data = path.read_bytes()
    for old, new in ((b"numpy._core.multiarray", b"numpy.core.multiarray"), (b"numpy.core.multiarray", b"numpy._core.multiarray")):
        if old in data:
            path.write_bytes(data.replace(old, new))
            break
    assert path.read_bytes() != data
    loaded = load_checkpoint_file(path)["rng"]["numpy"]
    assert loaded[0] == "MT19937" and np.array_equal(loaded[1], np.random.get_state()[1])


@pytest.mark.parametrize("value", [np.zeros(3), np.float64(1.5), np.zeros(2, dtype=object)],
                         ids=["float64-array", "numpy-scalar", "object-array"])
def test_only_numpy_rng_state_is_allowed_not_numpy_in_general(tmp_path, value):
    path = tmp_path / "numpy.pt"
    torch.save({"value": value}, path)
    with pytest.raises(CheckpointError, match="other than tensors"):
        load_checkpoint_file(path)
    before = torch.serialization.get_safe_globals()
    load_checkpoint_file(save_checkpoint(tmp_path, 1, _training_state(), "", limit=None))
    # the allow-list is never left installed (torch may list its own entries in another order)
    assert set(torch.serialization.get_safe_globals()) == set(before)


def test_every_checkpoint_load_goes_through_the_one_loader():
    src = pathlib.Path(__file__).parents[1] / "src" / "hrmkit"
    loaders = sorted(str(p.relative_to(src)) for p in src.rglob("*.py") if "torch.load(" in p.read_text())
    assert loaders == ["train/checkpoint.py"]
