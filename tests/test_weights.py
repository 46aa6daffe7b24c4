"""final/ and best-model/ are self-contained weights folders (safetensors + config.yaml); old .pt runs still load."""

import json
import shutil

import pytest
import torch
from cli_helpers import final_weights
from safetensors.torch import load_file

from hrmkit.cli import main
from hrmkit.config_base import config_to_dict
from hrmkit.loading import final_metrics, load_checkpoint, resolve_run_checkpoint
from hrmkit.train.checkpoint import CheckpointError, atomic_torch_save
from hrmkit.train.weights import save_weights_folder


@pytest.fixture
def run(trained_sudoku_run):
    """The shared tiny run (tests/conftest.py): 4 steps, evaluations at 2 and 4, EMA on."""
    return trained_sudoku_run


def test_final_and_best_model_are_safetensors_with_their_config(run):
    for folder in (run / "final", run / "best-model"):
        assert sorted(p.name for p in folder.iterdir()) == ["config.yaml", "metrics.json", "model.safetensors"]
    assert not list(run.rglob("*.tmp-*")) and not (run / "final.pt").exists()
    metrics = json.loads((run / "final" / "metrics.json").read_text())
    assert metrics["step"] == 4 and 0 <= metrics["metrics"]["accuracy"] <= 1
    # The file is plain tensors: safetensors reads it without hrmkit, and it holds the EMA the run evaluated.
    stored = load_file(run / "final" / "model.safetensors")
    ema = torch.load(run / "checkpoints" / "step_4.pt", weights_only=False)["ema"]
    assert set(stored) >= {"lm_head.weight", "q_head.weight", "puzzle_emb.weights"}
    for name, value in ema.items():
        torch.testing.assert_close(stored[name.removeprefix("inner.")], value, rtol=0, atol=0, msg=name)


def test_a_run_folder_a_weights_folder_and_its_file_load_the_same_model(run):
    assert resolve_run_checkpoint(run) == run / "best-model"
    expected = final_weights(run)
    for path in (run / "final", run / "final" / "model.safetensors"):
        model, cfg = load_checkpoint(path)
        assert cfg.model.hidden_size == 32 and not model.training
        for name, value in model.checkpoint_module.state_dict().items():
            if name in expected:
                torch.testing.assert_close(value, expected[name], rtol=0, atol=0, msg=name)
    assert final_metrics(run)[1]["count"] == 64


def test_a_step_checkpoint_loads_the_averaged_weights_the_run_evaluated(run):
    """`hrm eval`, `hrm convert` and the checkpoint vote read a step_N.pt as the run scored it: with the
    EMA, as final/ holds it for the same step; the live weights, kept for resuming, differ."""
    expected = final_weights(run)
    live = torch.load(run / "checkpoints" / "step_4.pt", weights_only=False)["model"]
    assert any(not torch.equal(live[name], expected[name]) for name in expected)
    model, _ = load_checkpoint(run / "checkpoints" / "step_4.pt")
    loaded = model.checkpoint_module.state_dict()
    for name, value in expected.items():
        torch.testing.assert_close(loaded[name], value, rtol=0, atol=0, msg=name)


def test_load_checkpoint_refuses_a_device_name_in_one_line_before_reading(tmp_path):
    with pytest.raises(ValueError, match="device must be auto, cpu, cuda\\[:N\\] or mps, got 'gpu'"):
        load_checkpoint(tmp_path / "no_such_run", device="gpu")


def test_runs_from_before_weights_folders_still_load(run, tmp_path):
    """An older run folder holds final.pt and best-model/best.pt (a torch.save'd dict)."""
    old = tmp_path / "old"
    shutil.copytree(run, old)
    weights, cfg = final_weights(run), load_checkpoint(run / "final")[1]
    for folder, file in ((old / "final", old / "final.pt"), (old / "best-model", old / "best-model" / "best.pt")):
        shutil.rmtree(folder)
        file.parent.mkdir(exist_ok=True)
        atomic_torch_save({"format": "hrmkit", "step": 4, "model": weights, "config": config_to_dict(cfg),
                           "metrics": {"count": 64.0}}, file)
    assert resolve_run_checkpoint(old) == old / "best-model" / "best.pt"
    model, _ = load_checkpoint(old)
    torch.testing.assert_close(model.checkpoint_module.state_dict()["lm_head.weight"], weights["lm_head.weight"])
    assert final_metrics(old) == (old / "final.pt", {"count": 64.0})


@pytest.mark.cli
def test_hrm_eval_takes_the_run_folder_and_writes_beside_the_weights(run, sudoku4, tmp_path, capsys):
    run = shutil.copytree(run, tmp_path / "run")  # eval writes into the run folder
    assert main(["eval", "--checkpoint", str(run), "--data", str(sudoku4)]) == 0
    assert "exact accuracy" in capsys.readouterr().out
    assert (run / "best-model" / f"eval-{sudoku4.name}-test" / "metrics.json").is_file()


@pytest.mark.cli
def test_hrm_eval_says_when_the_split_it_scores_picked_the_weights(run, sudoku4, tmp_path, capsys):
    """best-model/ is the best of the run's evaluations on the test split; scored on that split again, the
    figure is picked by the data it is scored on. hrm eval printed it as any other score."""
    run = shutil.copytree(run, tmp_path / "run")
    best = json.loads((run / "best-model" / "metrics.json").read_text())
    (run / "best-model" / "metrics.json").write_text(json.dumps({**best, "step": 2}))  # the step-2 evaluation won
    other = tmp_path / "other"  # another dataset: sudoku4's training puzzles as its test split
    shutil.copytree(sudoku4 / "train", other / "test")
    shutil.copy(sudoku4 / "identifiers.json", other / "identifiers.json")
    said = {}
    for name, checkpoint, data in (("run", run, sudoku4), ("final", run / "final", sudoku4), ("other", run, other)):
        assert main(["eval", "--checkpoint", str(checkpoint), "--data", str(data), "--out", str(tmp_path / name)]) == 0
        said[name] = (capsys.readouterr().out,
                      json.loads((tmp_path / name / "metrics.json").read_text())["evaluated"]["checkpoint_picked_on_this_split"])
    assert f"note: {run / 'best-model'} (step 2) is the best of the run's evaluations on this test split" in said["run"][0]
    assert f"--checkpoint {run / 'final'}" in said["run"][0] and said["run"][1] is True
    for name in ("final", "other"):
        assert "note:" not in said[name][0] and said[name][1] is False, name


@pytest.mark.cli
def test_hrm_eval_on_another_dataset_keeps_the_first_datasets_results(run, sudoku4, tmp_path):
    run = shutil.copytree(run, tmp_path / "run")
    other = tmp_path / "sudoku4_train_as_test"  # a dataset whose test split is sudoku4's 300 training puzzles
    shutil.copytree(sudoku4 / "train", other / "test")
    shutil.copy(sudoku4 / "identifiers.json", other / "identifiers.json")
    for data in (sudoku4, other):
        assert main(["eval", "--checkpoint", str(run / "final"), "--data", str(data), "--precision", "fp32"]) == 0
    first = json.loads((run / "final" / f"eval-{sudoku4.name}-test" / "metrics.json").read_text())
    second = json.loads((run / "final" / "eval-sudoku4_train_as_test-test" / "metrics.json").read_text())
    assert first["count"] == 64 and second["count"] == 300


@pytest.mark.cli
@pytest.mark.parametrize(("precision", "compiled"), [("bf16", False), ("fp32", False), ("fp32", True), ("bf16", True)])
def test_hrm_eval_scores_in_the_precision_the_run_evaluated_in_and_reproduces_its_figures(sudoku4, tmp_path, precision,
                                                                                         compiled):
    """A compiling run evaluates its compiled model (as the reference's does); hrm eval, by default, scores
    in the run's precision and compiled where the run's evaluations were, and reproduces their figures
    (it compiled on CUDA only: a run compiled on the CPU was scored eager, off by rounding)."""
    from hrmkit.config import load_run_config
    from hrmkit.puzzles.task import PuzzleTask
    from hrmkit.train.trainer import Trainer
    cfg = load_run_config("quickstart_sudoku4", {
        "data": {"path": str(sudoku4)}, "runs_dir": str(tmp_path), "run_name": "r",
        "model": {"hidden_size": 32, "L_layers": 1, "H_cycles": 2, "L_cycles": 2, "halt_max_steps": 4},
        "train": {"steps": 30, "eval_interval": 0, "global_batch_size": 16, "progress": False, "device": "cpu",
                  "precision": precision, "compile": compiled}})
    Trainer(cfg, PuzzleTask, log=lambda *_: None).train()
    logged = json.loads((tmp_path / "r" / "final" / "metrics.json").read_text())["metrics"]
    assert main(["eval", "--checkpoint", str(tmp_path / "r" / "final"), "--data", str(sudoku4)]) == 0
    scored = json.loads((tmp_path / "r" / "final" / f"eval-{sudoku4.name}-test" / "metrics.json").read_text())
    assert (scored["precision"], scored["compiled"]) == (precision, compiled)
    for name in ("exact_accuracy", "accuracy", "steps"):
        assert scored[name] == pytest.approx(logged[name], abs=1e-9), name


@pytest.mark.cli
def test_a_weights_folder_without_its_config_is_one_clear_error(run, sudoku4, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(run / "final", broken)
    (broken / "config.yaml").unlink()
    with pytest.raises(CheckpointError, match="no config.yaml beside it"):
        load_checkpoint(broken)
    assert main(["eval", "--checkpoint", str(broken), "--data", str(sudoku4)]) == 2
    err = capsys.readouterr().err
    assert "config.yaml" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_damaged_weights_file_is_one_clear_error(run, tmp_path):
    broken = tmp_path / "damaged"
    shutil.copytree(run / "final", broken)
    (broken / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(broken)


def test_a_failed_save_leaves_the_previous_weights_in_place(run, tmp_path):
    folder = tmp_path / "best-model"
    shutil.copytree(run / "best-model", folder)
    before = (folder / "model.safetensors").read_bytes()

    def failing_assets(staging):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_weights_folder(folder, {"x": torch.zeros(2)}, {"task": "puzzle"}, 9, None, failing_assets)
    assert (folder / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best-model"]


def test_load_checkpoint_for_a_dataset_the_model_cannot_read_is_one_line(trained_sudoku_run, tmp_path):
    """With dataset= naming another puzzle family the model loaded, and its first forward ended in an
    IndexError or a shape error."""
    other = tmp_path / "sudoku6"
    assert main(["prepare", "sudoku", "--size", "6", "--train", "4", "--test", "2", "--out", str(other)]) == 0
    with pytest.raises(ValueError, match="sudoku6/(test|train): the model expects vocab 6 / seq_len 16, dataset has"):
        load_checkpoint(trained_sudoku_run, dataset=other)


@pytest.mark.cli
def test_an_eval_stopped_between_its_writes_leaves_no_figures_of_another_evaluation(trained_sudoku_run, sudoku4,
                                                                                       tmp_path, monkeypatch):
    """hrm eval into an --out folder an earlier evaluation wrote: stopped after its predictions.npz, it left
    the earlier metrics.json beside them, naming another checkpoint, other flags and other figures."""
    import numpy as np
    from cli_helpers import hrm_here
    out = tmp_path / "eval"
    hrm_here("eval", "--checkpoint", trained_sudoku_run, "--data", sudoku4, "--out", out)
    assert (out / "metrics.json").is_file()

    def killed(*_args, **_kwargs):
        raise SystemExit("killed while writing predictions.npz")
    monkeypatch.setattr(np, "savez_compressed", killed)
    with pytest.raises(SystemExit):
        hrm_here("eval", "--checkpoint", trained_sudoku_run, "--data", sudoku4, "--out", out, "--tta", "2")
    assert not (out / "metrics.json").exists()
