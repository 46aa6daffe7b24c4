"""Each family's symmetries: the inverse undoes the transform, and a transformed solution still
solves the transformed puzzle by the family's own checker."""

import numpy as np
import pytest

from hrmkit.puzzles.check import sudoku_label_faults
from hrmkit.puzzles.format import load_split
from hrmkit.puzzles.maze import is_valid_path
from hrmkit.puzzles.maze_dataset import MazeBuildConfig, build_maze
from hrmkit.puzzles.routing import judge_path
from hrmkit.puzzles.routing_dataset import RoutingBuildConfig, build_routing
from hrmkit.puzzles.sudoku_dataset import SudokuBuildConfig, build_sudoku
from hrmkit.puzzles.symmetries import random_symmetries


def _rows(root):
    split = load_split(root, "test")
    arrays = split.sets["all"]
    return np.asarray(arrays["inputs"]), np.asarray(arrays["labels"]), split.metadata


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("symmetries")
    build_sudoku(SudokuBuildConfig(size=6, train=4, test=6, seed=1), root / "sudoku6")
    build_sudoku(SudokuBuildConfig(size=4, train=4, test=6, seed=1), root / "sudoku4")
    build_maze(MazeBuildConfig(size=9, train=4, test=6, seed=1), root / "maze")
    build_routing(RoutingBuildConfig(size=8, train_bases=2, test_bases=2, seed=1), root / "routing")
    return {name: _rows(root / name) for name in ("sudoku6", "sudoku4", "maze", "routing")}


def _solved(kind, inputs, labels):
    if kind.startswith("sudoku"):
        return sudoku_label_faults(inputs, labels, int(np.sqrt(inputs.shape[1]))) == [None] * len(inputs)
    if kind == "maze":
        return all(is_valid_path(i, l, int(np.sqrt(inputs.shape[1]))) for i, l in zip(inputs, labels))
    side = int(np.sqrt(inputs.shape[1] - 1))
    return all(judge_path(i, l, side)[0] is None for i, l in zip(inputs, labels))


@pytest.mark.parametrize("name", ["sudoku6", "sudoku4", "maze", "routing"])
def test_inverse_undoes_each_symmetry_and_solutions_stay_solutions(datasets, name):
    inputs, labels, meta = datasets[name]
    kind = name.rstrip("46")
    assert _solved(kind, inputs, labels)
    symmetries = random_symmetries(kind, meta.seq_len, meta.vocab_size, 8, np.random.default_rng(0))
    assert len(symmetries) == 8 and np.array_equal(symmetries[0].apply(inputs), inputs)
    changed = 0
    for symmetry in symmetries:
        moved_inputs, moved_labels = symmetry.apply(inputs), symmetry.apply(labels)
        assert _solved(kind, moved_inputs, moved_labels)
        assert np.array_equal(symmetry.inverse().apply(moved_inputs), inputs)
        assert np.array_equal(symmetry.inverse().apply(moved_labels), labels)
        changed += not np.array_equal(moved_inputs, inputs)
    assert changed >= 6  # they really move the puzzle
    if kind == "routing":  # the vehicle token keeps its place
        assert all(np.array_equal(s.apply(inputs)[:, -1], inputs[:, -1]) for s in symmetries)


def test_dihedral_families_draw_eight_distinct_symmetries():
    symmetries = random_symmetries("maze", 81, 6, 8, np.random.default_rng(3))
    assert len({s.positions.tobytes() for s in symmetries}) == 8


def test_unknown_kind_or_count_is_refused():
    with pytest.raises(ValueError, match="no symmetries"):
        random_symmetries("arc", 900, 12, 4, np.random.default_rng(0))
    with pytest.raises(ValueError, match="at least one"):
        random_symmetries("maze", 81, 6, 0, np.random.default_rng(0))
