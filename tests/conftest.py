import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for cli_helpers

from hrmkit.puzzles.sudoku import SudokuBuildConfig, build_sudoku  # noqa: E402


@pytest.fixture(scope="session")
def sudoku4(tmp_path_factory):
    """A small 4x4 Sudoku dataset in the reference format (300 train, 64 held-out)."""
    root = tmp_path_factory.mktemp("data") / "sudoku4"
    build_sudoku(SudokuBuildConfig(size=4, train=300, test=64, seed=0), root)
    return root
