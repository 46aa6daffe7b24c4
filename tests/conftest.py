import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for cli_helpers

from hrmkit.puzzles.sudoku_dataset import SudokuBuildConfig, build_sudoku  # noqa: E402

KIND_MARKERS = ("cli", "distributed", "gpu")


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(config, items):
    """Every test not marked cli, distributed or gpu is a unit test; gpu tests skip without CUDA."""
    import torch
    cuda = torch.cuda.is_available()
    for item in items:
        if not any(item.get_closest_marker(kind) for kind in KIND_MARKERS):
            item.add_marker(pytest.mark.unit)
        if item.get_closest_marker("gpu") and not cuda:
            item.add_marker(pytest.mark.skip(reason="needs CUDA"))


@pytest.fixture(scope="session")
def sudoku4(tmp_path_factory):
    """A small 4x4 Sudoku dataset in the reference format (300 train, 64 held-out)."""
    root = tmp_path_factory.mktemp("data") / "sudoku4"
    build_sudoku(SudokuBuildConfig(size=4, train=300, test=64, seed=0), root)
    return root


@pytest.fixture(scope="session")
def trained_sudoku_run(sudoku4, tmp_path_factory):
    """One tiny run on sudoku4 shared by every test that needs *a* trained run (weights, eval, viz):
    4 steps, evaluations at 2 and 4 (so best-model/ exists), EMA on, a step checkpoint at 4.
    Read-only: a test that writes into a run folder copies this one first."""
    from hrmkit.config import load_run_config
    from hrmkit.puzzles.task import PuzzleTask
    from hrmkit.train.trainer import Trainer
    runs = tmp_path_factory.mktemp("runs")
    cfg = load_run_config("quickstart_sudoku4", {
        "data": {"path": str(sudoku4)}, "runs_dir": str(runs), "run_name": "tiny",
        "model": {"hidden_size": 32, "L_layers": 1, "H_cycles": 2, "L_cycles": 2, "halt_max_steps": 4,
                  "puzzle_emb_ndim": 32},
        "train": {"steps": 4, "eval_interval": 2, "checkpoint_interval": 4, "global_batch_size": 16, "ema": True,
                  "progress": False, "log_steps": 1, "device": "cpu"}})
    Trainer(cfg, PuzzleTask).train()
    return runs / "tiny"
