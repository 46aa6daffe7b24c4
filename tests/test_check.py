"""Dataset audit: clean builds pass, and each deliberately planted fault is named in the report."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hrmkit.data.check import check_dataset, main_check, path_split_kind, path_validity
from hrmkit.data.puzzle_format import load_split
from hrmkit.data.maze import MazeBuildConfig, build_maze
from hrmkit.data.sudoku import SudokuBuildConfig, build_sudoku

WALL, OPEN, START, GOAL, PATH = 1, 2, 3, 4, 5


@pytest.fixture(scope="module")
def sudoku_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("check") / "sudoku"
    build_sudoku(SudokuBuildConfig(size=4, train=50, test=10, seed=0), root)
    return root


@pytest.fixture(scope="module")
def maze_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("check") / "maze"
    build_maze(MazeBuildConfig(size=9, train=30, test=10, seed=0), root)
    return root


def copy_of(root: Path, tmp_path: Path) -> Path:
    """A private copy to break; the module-scoped originals stay clean."""
    return Path(shutil.copytree(root, tmp_path / root.name))


def load(root: Path, split: str, name: str) -> np.ndarray:
    return np.load(root / split / f"all__{name}.npy")


def save(root: Path, split: str, name: str, array: np.ndarray) -> None:
    np.save(root / split / f"all__{name}.npy", array)


def run_check(root: Path, tmp_path: Path) -> tuple[int, dict]:
    json_path = tmp_path / "report.json"
    code = main_check(root, str(json_path))
    return code, json.loads(json_path.read_text())


def detail(report: dict, name: str) -> str:
    return next(check["detail"] for check in report["checks"] if check["name"] == name)


def open_field_maze() -> np.ndarray:
    """9x9: wall border around an open 7x7 field, S at (1,1), G at (1,3); the shortest route is (1,2)."""
    grid = np.full((9, 9), WALL, dtype=np.uint8)
    grid[1:8, 1:8] = OPEN
    grid[1, 1], grid[1, 3] = START, GOAL
    return grid


def with_path(maze: np.ndarray, cells: list[tuple[int, int]]) -> np.ndarray:
    label = maze.copy()
    for cell in cells:
        label[cell] = PATH
    return label


DETOUR = [(2, 1), (3, 1), (3, 2), (3, 3), (2, 3)]  # a valid S->G route 4 steps longer than needed


@pytest.mark.parametrize("fixture", ["sudoku_root", "maze_root"])
def test_clean_datasets_pass_every_check(fixture, request, tmp_path):
    root = request.getfixturevalue(fixture)
    code, report = run_check(root, tmp_path)
    assert code == 0 and report["ok"] and report["failed"] == []
    names = {check["name"] for check in report["checks"]}
    kind = "sudoku" if fixture == "sudoku_root" else "maze"
    assert {"structure:train", "structure:test", "overlap:train/test", f"{kind}:train", f"{kind}:test"} <= names
    assert report["stats"]["train"]["examples"] == (50 if kind == "sudoku" else 30)
    assert report["stats"]["test"]["examples_per_group"] == {"min": 1, "mean": 1.0, "max": 1}


def test_reference_built_datasets_are_recognised_without_the_build_summary(sudoku_root, maze_root, tmp_path):
    for root, kind in ((sudoku_root, "sudoku"), (maze_root, "maze")):
        broken = copy_of(root, tmp_path)
        (broken / "hrmkit_build.json").unlink()
        names = {check.name for check in check_dataset(broken).checks}
        assert f"{kind}:train" in names and f"{kind}:test" in names


def test_train_test_overlap_is_named(sudoku_root, tmp_path):
    root = copy_of(sudoku_root, tmp_path)
    train_inputs = load(root, "train", "inputs")
    train_inputs[7] = load(root, "test", "inputs")[3]
    save(root, "train", "inputs", train_inputs)
    code, report = run_check(root, tmp_path)
    assert code == 1
    assert "overlap:train/test" in report["failed"]
    assert detail(report, "overlap:train/test").startswith("1 of 10 test inputs")


def test_maze_path_through_a_wall_is_invalid(maze_root, tmp_path):
    root = copy_of(maze_root, tmp_path)
    labels = load(root, "test", "labels")
    labels[4, np.flatnonzero(labels[4] == WALL)[0]] = PATH
    save(root, "test", "labels", labels)
    code, report = run_check(root, tmp_path)
    assert code == 1 and report["failed"] == ["maze:test"]
    assert "first invalid: example 4" in detail(report, "maze:test")


def test_maze_detour_is_valid_but_not_optimal(maze_root, tmp_path):
    root = copy_of(maze_root, tmp_path)
    inputs, labels = load(root, "train", "inputs"), load(root, "train", "labels")
    maze = open_field_maze()
    inputs[2], labels[2] = maze.reshape(-1), with_path(maze, DETOUR).reshape(-1)
    save(root, "train", "inputs", inputs)
    save(root, "train", "labels", labels)
    code, report = run_check(root, tmp_path)
    assert code == 1 and report["failed"] == ["maze:train"]
    assert detail(report, "maze:train").startswith("30 of 30 labels valid, 29 optimal")
    assert "first non-optimal: example 2" in detail(report, "maze:train")


def test_truncated_npy_fails_structure_naming_the_file(sudoku_root, tmp_path):
    root = copy_of(sudoku_root, tmp_path)
    path = root / "train" / "all__labels.npy"
    path.write_bytes(path.read_bytes()[:-40])
    code, report = run_check(root, tmp_path)
    assert code == 1 and report["failed"] == ["structure:train"]
    assert "all__labels.npy" in detail(report, "structure:train")
    assert "train" not in report["stats"]  # content checks skipped for the broken split


def test_sudoku_row_violation_names_the_example(sudoku_root, tmp_path):
    root = copy_of(sudoku_root, tmp_path)
    labels = load(root, "test", "labels")
    labels[6, 1] = labels[6, 0]  # duplicate digit in row 0
    save(root, "test", "labels", labels)
    code, report = run_check(root, tmp_path)
    assert code == 1 and report["failed"] == ["sudoku:test"]
    assert "first bad: example 6: row 0 is not a permutation" in detail(report, "sudoku:test")


def test_all_ignore_labels_and_empty_group_are_violations(sudoku_root, tmp_path):
    root = copy_of(sudoku_root, tmp_path)
    save(root, "test", "labels", np.zeros_like(load(root, "test", "labels")))
    groups = load(root, "train", "group_indices")
    groups[2] = groups[1]  # group 1 now holds no puzzle, group 2 holds two
    save(root, "train", "group_indices", groups)
    report = check_dataset(root)
    assert {"labels:test", "augmentation:train"} <= set(report.failed)
    assert "1 group(s) hold no puzzle" in next(c.detail for c in report.checks if c.name == "augmentation:train")
    assert "FAIL  labels:test" in report.format()


def test_path_validity_scores_answers():
    maze = open_field_maze()
    assert path_validity(maze, with_path(maze, [(1, 2)]), 9) == (True, True)
    assert path_validity(maze, with_path(maze, DETOUR), 9) == (True, False)
    assert path_validity(maze, maze, 9) == (False, False)  # no route at all
    assert path_validity(maze, with_path(maze, [(1, 2), (6, 6)]), 9) == (False, False)  # stray 'o'
    assert path_validity(maze, with_path(maze, [(2, 1), (3, 1)]), 9) == (False, False)  # route breaks off
    assert path_validity(maze, with_path(maze, [(1, 2), (0, 2)]), 9) == (False, False)  # 'o' on a wall


def test_path_split_kind_scores_mazes_as_paths_and_leaves_sudoku_alone(sudoku_root, maze_root):
    assert path_split_kind(maze_root, load_split(maze_root, "test")) == "maze"
    assert path_split_kind(sudoku_root, load_split(sudoku_root, "test")) is None


def test_cli_check_exits_1_on_a_fault_and_eval_scores_maze_paths(maze_root, tmp_path, capsys):
    from hrmkit.cli import main
    from hrmkit.config import ModelConfig, RunConfig
    from hrmkit.config_base import config_to_dict
    from hrmkit.model.act import ACTModel

    assert main(["data", "check", str(maze_root), "--json", str(tmp_path / "report.json")]) == 0
    assert json.loads((tmp_path / "report.json").read_text())["ok"] is True
    broken = copy_of(maze_root, tmp_path)
    inputs = load(broken, "train", "inputs")
    inputs[0] = load(broken, "test", "inputs")[0]
    save(broken, "train", "inputs", inputs)
    assert main(["data", "check", str(broken)]) == 1
    assert "FAIL" in capsys.readouterr().out

    cfg = RunConfig(model=ModelConfig(hidden_size=32, num_heads=2, L_layers=1, halt_max_steps=2, vocab_size=6, seq_len=81))
    model = ACTModel(cfg.model)
    torch.save({"format": "hrmkit", "step": 0, "model": model.inner.state_dict(), "config": config_to_dict(cfg),
                "metrics": None}, tmp_path / "untrained.pt")
    assert main(["eval", "--checkpoint", str(tmp_path / "untrained.pt"), "--data", str(maze_root),
                 "--out", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert 0.0 <= metrics["optimal_path"] <= metrics["valid_path"] <= 1.0
