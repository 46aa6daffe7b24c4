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
